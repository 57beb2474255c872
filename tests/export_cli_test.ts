// `deno task export` re-exports a stored variant through the runner's own exportVariant: the
// files it writes are the ones the run wrote, byte for byte.
import { join } from "node:path";
import { cli } from "./helpers.ts";
import { tempDir } from "./tmp.ts";
import { assert } from "./assert.ts";

Deno.test("export: re-exporting a finished run's variant writes the run's own export files, byte for byte", async () => {
  const out = await tempDir();
  const run = await cli([
    "lib/cli/run.ts",
    "experiments/smoke.ts",
    "--quick",
    "--variants",
    "qat-4",
    "--out",
    out,
    "--quiet",
  ]);
  assert.strictEqual(run.code, 0, run.stderr);
  const runDir = join(out, "smoke", [...Deno.readDirSync(join(out, "smoke"))][0].name);
  const again = join(await tempDir(), "again");
  const ex = await cli(["lib/cli/export.ts", runDir, "--out", again]);
  assert.strictEqual(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /qat-4/);
  for (const f of ["model.qgt", "model_data.c", "model.tflite", "summary.json", "summary.md"]) {
    const a = await Deno.readFile(join(runDir, "variants", "qat-4", "export", f));
    const b = await Deno.readFile(join(again, "qat-4", f));
    assert.deepStrictEqual(b, a, `${f} differs from the run's`);
  }
});

// Training one variant: BatchNorm re-estimation, and the fine-tuning stream QAT and QGT share.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { runExperiment } from "../lib/experiment/runner.ts";
import { consoleProgress, type ProgressSink } from "../lib/util/progress.ts";
import { assert } from "./assert.ts";
import { SMALL } from "./helpers.ts";

const quiet = consoleProgress({ quiet: true });

/** Runs the smoke experiment (SMALL) with `variants` in place of its own, as experiment `id`, without exports. */
async function runSmokeWith(
  id: string,
  variants: Record<string, unknown>,
  progress: ProgressSink = quiet,
): Promise<{ r: Awaited<ReturnType<typeof runExperiment>>; metrics: string }> {
  const dir = await tempDir();
  const smokeUrl = new URL("../experiments/smoke.ts", import.meta.url).href;
  const path = join(dir, `${id}.ts`);
  await Deno.writeTextFile(
    path,
    `import smoke from ${JSON.stringify(smokeUrl)};\n` +
      `export default { ...smoke, id: ${JSON.stringify(id)}, variants: ${
        JSON.stringify(variants)
      } };\n`,
  );
  const r = await runExperiment({
    path,
    resolve: { set: SMALL },
    outRoot: join(dir, "runs"),
    progress,
    exporter: null,
  });
  return { r, metrics: await Deno.readTextFile(join(r.runDir, "metrics.csv")) };
}

Deno.test("bnReestimate: training is unchanged, the final BatchNorm statistics (and so the result) are re-estimated", async () => {
  const qat = { mode: "qat", bits: 2, epochs: 1, liveBatchNorm: true };
  const lines: string[] = [];
  const { r, metrics } = await runSmokeWith("bnre", {
    float: {},
    qat: { qgt: qat },
    "qat-bnre": { qgt: { ...qat, bnReestimate: { images: 96 } } },
  }, { status() {}, line: (t) => lines.push(t) });
  const row = (v: string) => r.summary.find((s) => s.variant === v)!;
  const curve = (v: string) =>
    metrics.split("\n").filter((l) => l.startsWith(`${v},`) && /,train,/.test(l))
      .map((l) => l.split(",").slice(2).join(","));
  assert.ok(curve("qat").length > 0);
  assert.deepStrictEqual(curve("qat-bnre"), curve("qat"));
  assert.notEqual(row("qat-bnre").loss, row("qat").loss);
  assert.ok(
    lines.some((l) =>
      /^qat-bnre: BatchNorm statistics re-estimated on 96 training images with quantized weights \(largest variance change [0-9.]+ % in \w+\)$/
        .test(l)
    ),
    lines.join("\n"),
  );
  assert.ok(!lines.some((l) => l.startsWith("qat: BatchNorm")));
});

Deno.test("quantized variants fine-tune on the same batches: QGT with lambda 0 reproduces QAT exactly", async () => {
  // the fine-tuning data stream is shared per seed, so a QGT variant whose
  // pull is zero takes exactly QAT's steps; a non-zero pull must change them
  const qgt = (lambda: number, decoupled: boolean) => ({
    qgt: {
      mode: "qgt",
      bits: 2,
      epochs: 1,
      fakeQuant: true,
      liveBatchNorm: true,
      decoupled,
      lambda: { type: "constant", lambda },
    },
  });
  const { r, metrics } = await runSmokeWith("paired", {
    float: {},
    qat: { qgt: { mode: "qat", bits: 2, epochs: 1, liveBatchNorm: true } },
    "qgt-0": qgt(0, false),
    "qgt-dec-0": qgt(0, true),
    "qgt-dec-300": qgt(300, true),
  });
  const row = (v: string) => r.summary.find((s) => s.variant === v)!;
  const curve = (v: string) =>
    metrics.split("\n").filter((l) => l.startsWith(`${v},`) && /,(loss|accuracy),/.test(l))
      .map((l) => l.split(",").slice(2).join(","));
  for (const v of ["qgt-0", "qgt-dec-0"]) {
    assert.equal(row(v).accuracy, row("qat").accuracy, v);
    assert.equal(row(v).loss, row("qat").loss, v);
    assert.deepStrictEqual(curve(v), curve("qat"), v);
  }
  assert.notEqual(row("qgt-dec-300").loss, row("qat").loss);
});

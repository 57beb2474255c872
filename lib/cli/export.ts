/**
 * `deno task export <run-dir> [--variant NAME] [--out DIR]`: (re)exports the
 * quantized variants of a finished run from their saved codes (model.qgt and
 * model.tflite, the standard int8 TFLite model), and evaluates each on the
 * run's validation set: model.qgt with the integer interpreter, model.tflite
 * in LiteRT. `deno task export --upgrade <model.qgt> [--out FILE]` rewrites a
 * model.qgt of format version 1-3 as version 4, the one the C runtime reads
 * (the same model: the same integers on every input).
 * @module
 */
import { join } from "node:path";
import { parseFlags, runMain, UsageError } from "../util/cli.ts";
import { initBackend } from "../backend/mod.ts";
import { loadDataset } from "../data/registry.ts";
import { formatRows } from "../util/tables.ts";
import { loadingProgress } from "../util/progress.ts";
import { readRunRecord, readSummary } from "../run/run_dir.ts";
import { exportStoredVariant } from "../export/stored.ts";
import { upgradeQgt } from "../format/model_file.ts";
import { readModel } from "../run/model_images.ts";
import { writeFileAtomic } from "../util/fs.ts";

const USAGE =
  "usage: deno task export <run-dir> [--variant NAME] [--out DIR]\n       deno task export --upgrade <model.qgt> [--out FILE]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    variant: {
      type: "string",
      arg: "NAME",
      help: "export only this variant (default: every quantized one)",
    },
    out: {
      type: "string",
      arg: "DIR",
      help:
        "write <DIR>/<variant>/ (default: each variant's export/ in the run); with --upgrade, the file to write (default: the model itself)",
    },
    upgrade: {
      type: "boolean",
      help: "rewrite a model.qgt of format version 1-3 as version 4 (same model)",
    },
  }, USAGE);
  if (positionals.length !== 1) {
    throw new UsageError(USAGE);
  }
  if (f.upgrade) {
    if (f.variant) throw new UsageError(`--variant: not with --upgrade\n${USAGE}`);
    await upgradeFile(positionals[0], (f.out as string | undefined) ?? positionals[0]);
    return;
  }
  const runDir = positionals[0];
  const rec = await readRunRecord(runDir);
  let names = Object.keys(rec.variants).filter((v) => rec.variants[v].status === "complete");
  if (f.variant) {
    if (!names.includes(f.variant as string)) {
      throw new UsageError(
        `--variant: ${runDir} has no complete variant ${JSON.stringify(f.variant)} (has ${
          names.join(", ")
        })`,
      );
    }
    names = [f.variant as string];
  }

  const summary = await readSummary(runDir);
  const floats = new Set(summary.filter((r) => r.mode === "float").map((r) => r.variant));
  const quantized = names.filter((n) => !floats.has(n));
  if (!quantized.length) {
    const all = summary.filter((r) => r.mode !== "float").map((r) => r.variant);
    throw new UsageError(
      `${
        f.variant ? `--variant ${f.variant}` : runDir
      }: a float variant has no quantized model to export` +
        ` (quantized variants: ${all.join(", ") || "none"})`,
    );
  }
  names = quantized;
  await initBackend("wasm");
  const { train, val } = await loadDataset(rec.dataset.name, {
    ...rec.dataset.options,
    onProgress: loadingProgress(),
  });
  const floatRow = summary.find((r) => r.mode === "float");
  const floatAcc = floatRow ? Number(floatRow.accuracy) : null;
  const rows = [];
  for (const name of names) {
    const dir = f.out ? join(f.out as string, name) : undefined;
    console.error(`${name}: exporting, then measuring on ${val.labels.length} validation images`);
    const x = await exportStoredVariant({
      runDir,
      record: rec,
      name,
      train,
      val,
      dir,
      floatAccuracy: floatAcc,
    });
    if (!x) continue; // float variant: nothing to pack
    if (!x.files.length) {
      console.error(
        `${name}: activations are not 8-bit; the int8 export needs 8-bit ones, skipped`,
      );
      continue;
    }
    rows.push({
      variant: name,
      bytes: x.bytes,
      "x smaller": Number((x.float32Bytes / x.bytes).toFixed(2)),
      "accuracy %": Number((x.accuracy * 100).toFixed(2)),
      "agreement %": Number((x.agreement * 100).toFixed(2)),
      "tflite bytes": x.tflite ? x.tflite.bytes : "-",
      "tflite agreement %": x.tflite ? Number((x.tflite.agreement * 100).toFixed(2)) : "-",
      dir: x.dir,
    });
  }
  console.log(formatRows(rows));
});

/** `--upgrade`: the model in version 4 at `out` (nothing written when it already is). */
async function upgradeFile(path: string, out: string): Promise<void> {
  const { bytes, file } = await readModel(path);
  const version = file.version;
  if (version >= 4 && out === path) {
    console.log(`${path}: already format version ${version}; nothing to do`);
    return;
  }
  const v4 = upgradeQgt(bytes, path);
  await writeFileAtomic(out, v4);
  console.log(`${out}: format version ${version} -> 4 (${bytes.length} -> ${v4.length} bytes)`);
}

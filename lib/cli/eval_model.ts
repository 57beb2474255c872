/**
 * `deno task eval-model <model.qgt> [--dataset NAME] [--data DIR]`: runs an
 * exported model with the integer interpreter and prints its accuracy and its
 * bytes by part. The images: the run's validation set when the model sits in
 * a run directory (`variants/<name>/export/model.qgt`), else the dataset its
 * header's provenance names (format version 2), else a guess from its classes
 * (version 1); `--dataset` / `--data` override. It always says which it used.
 * @module
 */
import { dirname, join } from "node:path";
import { parseFlags, runMain, UsageError } from "../util/cli.ts";
import { DATASET_OPTIONS, type DatasetName, DATASETS, loadDataset } from "../data/registry.ts";
import { parseQgt, type QgtHeader } from "../export/format.ts";
import { evaluateInterpreter } from "../export/export.ts";
import { readRunRecord, RUN_FILES } from "../run/run_dir.ts";
import { exists } from "../util/fs.ts";

const USAGE =
  "usage: deno task eval-model <model.qgt> [--dataset NAME] [--data DIR] [--skip-bad-images]";

/** Which images to evaluate on, and why. */
interface Choice {
  name: string;
  options: Record<string, unknown>;
  why: string;
}

/** The run directory a model file sits in (`<run>/variants/<name>/export/model.qgt`), if any. */
async function enclosingRun(path: string): Promise<string | null> {
  const run = dirname(dirname(dirname(dirname(path))));
  const inVariants = dirname(dirname(dirname(path))).endsWith("variants");
  return inVariants && await exists(join(run, RUN_FILES.record)) ? run : null;
}

async function chooseData(
  path: string,
  h: QgtHeader,
  f: { dataset?: string; data?: string; "skip-bad-images"?: boolean },
): Promise<Choice> {
  const [size, , channels] = h.input.shape;
  // the model's input size and channels, for the datasets that render or resize to them
  const shaped = (name: string) =>
    DATASET_OPTIONS[name as DatasetName]?.includes("size") ? { size, channels } : {};
  if (f.dataset || f.data) {
    const name = f.dataset ?? (h.classes.length === 10 ? "fashion-mnist" : "vww");
    if (!(DATASETS as readonly string[]).includes(name)) {
      throw new UsageError(
        `--dataset: expected one of ${DATASETS.join(", ")}, got ${JSON.stringify(name)}`,
      );
    }
    return {
      name,
      options: {
        ...shaped(name),
        ...(f.data ? { dir: f.data } : {}),
        ...(f["skip-bad-images"] ? { skipBadImages: true } : {}),
      },
      why: "as the flags say",
    };
  }
  const run = await enclosingRun(path);
  if (run) {
    const rec = await readRunRecord(run);
    return { ...rec.dataset, why: `the validation set of run ${rec.runId}` };
  }
  const p = h.provenance;
  if (p) {
    return {
      ...p.dataset,
      why:
        `the validation set its provenance names (${p.experiment} v${p.version}, seed ${p.seed}, variant ${p.variant}, commit ${
          p.commit.slice(0, 7)
        })`,
    };
  }
  const name = h.classes.length === 10 ? "fashion-mnist" : "synthetic-person";
  return {
    name,
    options: shaped(name),
    why:
      "a guess from its classes (a version-1 file records no dataset; --dataset / --data choose)",
  };
}

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    dataset: { type: "string" },
    data: { type: "string" },
    "skip-bad-images": { type: "boolean" },
  });
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const path = positionals[0];
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(
      e instanceof Deno.errors.NotFound
        ? `${path}: file not found`
        : `${path}: cannot read: ${(e as Error).message}`,
    );
  }
  const file = parseQgt(bytes, path);
  for (const n of file.notes) console.error(`note: ${n}`);
  const h = file.header;
  const choice = await chooseData(path, h, f as Parameters<typeof chooseData>[2]);
  const { val } = await loadDataset(choice.name, choice.options);
  const r = await evaluateInterpreter(bytes, val, path);
  const p = file.parts;
  console.log(
    `${path}: ${h.name}, format version ${file.version}, ${h.layers.length} layers, ${p.total} bytes ` +
      `(codes ${p.codes}, scales ${p.scales}, zero points ${p.zeroPoints}, biases ${p.biases}, header ${p.header})`,
  );
  console.log(
    `images: ${choice.why}: ${choice.name} ${
      JSON.stringify(choice.options)
    }, ${val.name}, ${val.labels.length} images`,
  );
  console.log(
    `accuracy ${(r.accuracy * 100).toFixed(2)}% ` +
      `(${((r.seconds / Math.max(1, val.labels.length)) * 1000).toFixed(1)} ms per image)`,
  );
});

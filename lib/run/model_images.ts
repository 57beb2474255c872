/**
 * Which images an exported model is evaluated on: the validation set of the
 * run it sits in (`variants/<name>/export/model.qgt`), else the dataset its
 * header's provenance names (format version 2), else a guess from its classes
 * (version 1), unless flags choose; with a sentence saying which and why.
 * @module
 */
import { dirname, join } from "node:path";
import { UsageError } from "../util/cli.ts";
import { DATASET_OPTIONS, type DatasetName, DATASETS } from "../data/registry.ts";
import { parseQgt, type QgtFile, type QgtHeader } from "../export/format.ts";
import { readRunRecord, RUN_FILES } from "./run_dir.ts";
import { exists } from "../util/fs.ts";

/** Which images to evaluate on, and why. */
export interface ModelImages {
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

/**
 * The dataset (name and options) a model should be evaluated on, and why.
 *
 * @example
 * ```ts ignore
 * const c = await modelImages("runs/x/r/variants/q/export/model.qgt", header, {});
 * ```
 */
export async function modelImages(
  path: string,
  h: QgtHeader,
  f: { dataset?: string; data?: string; "skip-bad-images"?: boolean },
): Promise<ModelImages> {
  const [size, , channels] = h.input.shape;
  // the model's input size and channels, for the datasets that render or resize to them
  const shaped = (name: string) =>
    DATASET_OPTIONS[name as DatasetName]?.includes("size") ? { size, channels } : {};
  const recorded = await recordedImages(path, h);
  if (f.dataset || f.data) {
    // the flags change the recorded dataset (or the guess): --dataset its name, --data its folder
    const name = f.dataset ?? recorded?.name ?? (h.classes.length === 10 ? "fashion-mnist" : "vww");
    if (!(DATASETS as readonly string[]).includes(name)) {
      throw new UsageError(
        `--dataset: expected one of ${DATASETS.join(", ")}, got ${JSON.stringify(name)}`,
      );
    }
    const same = recorded?.name === name;
    return {
      name,
      options: {
        ...(same ? recorded.options : shaped(name)),
        ...(f.data ? { dir: f.data } : {}),
        ...(f["skip-bad-images"] ? { skipBadImages: true } : {}),
      },
      why: same ? `${recorded.why}, as the flags change it` : "as the flags say",
    };
  }
  if (recorded) return recorded;
  const name = h.classes.length === 10 ? "fashion-mnist" : "synthetic-person";
  return {
    name,
    options: shaped(name),
    why:
      "a guess from its classes (a version-1 file records no dataset; --dataset / --data choose)",
  };
}

/** The images a model's run record (or else its provenance) names, if any. */
async function recordedImages(path: string, h: QgtHeader): Promise<ModelImages | null> {
  const run = await enclosingRun(path);
  if (run) {
    const rec = await readRunRecord(run);
    return { ...rec.dataset, why: `the validation set of run ${rec.runId}` };
  }
  const p = h.provenance;
  if (!p) return null;
  return {
    ...p.dataset,
    why:
      `the validation set its provenance names (${p.experiment} v${p.version}, seed ${p.seed}, variant ${p.variant}, commit ${
        p.commit.slice(0, 7)
      })`,
  };
}

/**
 * Reads and validates a `model.qgt` given on a command line: a missing or
 * unreadable file or a damaged model is one error naming the path.
 *
 * @example
 * ```ts ignore
 * const { bytes, file } = await readModel("model.qgt");
 * for (const n of file.notes) console.error(`note: ${n}`);
 * ```
 */
export async function readModel(path: string): Promise<{ bytes: Uint8Array; file: QgtFile }> {
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
  return { bytes, file: parseQgt(bytes, path) };
}

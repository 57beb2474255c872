/**
 * Which images an exported model is evaluated on: the validation set of the
 * run it sits in (`variants/<name>/export/model.qgt`), else the dataset its
 * header's provenance names (format version 2), else a guess from its classes
 * (version 1), unless flags choose; with a sentence saying which and why.
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { UsageError } from "../util/cli.ts";
import { DATASET_OPTIONS, type DatasetName, DATASETS, loadDataset } from "../data/registry.ts";
import { type Dataset, firstImages } from "../data/dataset.ts";
import { REPO_ROOT } from "../util/path.ts";
import { loadingProgress } from "../util/progress.ts";
import { parseQgt, type QgtFile, type QgtHeader } from "../format/model_file.ts";
import { DEFAULT_RUNS_ROOT, readRunRecord, RUN_FILES } from "./run_dir.ts";
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

/** Which images of the chosen dataset a task scores. */
export type Split = "val" | "all";

/** The splits `--split` takes. */
export const SPLITS: readonly Split[] = ["val", "all"];

/** The images a task scores, with the sentence that says which. */
export interface ScoredImages {
  images: Dataset;
  /** The training split too (calibration needs it), as loaded. */
  train: Dataset;
  /** e.g. "500 of the 2,000 validation images of synthetic-person". */
  what: string;
}

/**
 * Throws one line naming both lists unless the model's recorded classes are
 * the data's, with the same names in the same order: a model scored on
 * another task's images gives a number that means nothing.
 *
 * @example
 * ```ts
 * import { checkClasses } from "./model_images.ts";
 * checkClasses(["a", "b"], ["a", "b"], "m.qgt", "d");
 * let msg = "";
 * try { checkClasses(["a", "b", "c"], ["a", "b"], "m.qgt", "d"); } catch (e) { msg = (e as Error).message; }
 * if (msg !== 'm.qgt: the model\'s classes ["a","b","c"] are not the data\'s ["a","b"] (d)') throw new Error(msg);
 * ```
 */
export function checkClasses(model: string[], data: string[], file: string, dataName: string) {
  if (model.length === data.length && model.every((c, i) => c === data[i])) return;
  throw new Error(
    `${file}: the model's classes ${JSON.stringify(model)} are not the data's ${
      JSON.stringify(data)
    } (${dataName})`,
  );
}

/**
 * Loads the images a task scores a model on: the chosen dataset's validation
 * split (`split` "val") or all of its images ("all": training then
 * validation), the first `count` of them when given, after checking the
 * model's classes against the data's ({@link checkClasses}).
 *
 * @example
 * ```ts ignore
 * const s = await scoredImages(path, header, choice, { split: "val", count: 100 });
 * console.log(`images: ${s.what}`);
 * ```
 */
export async function scoredImages(
  path: string,
  h: QgtHeader,
  choice: ModelImages,
  o: { split?: Split; count?: number } = {},
): Promise<ScoredImages> {
  const { train, val } = await loadDataset(choice.name, {
    ...choice.options,
    onProgress: loadingProgress(),
  });
  checkClasses(h.classes, val.classNames, path, `${choice.name}: ${choice.why}`);
  const split = o.split ?? "val";
  if (split === "val" && !val.labels.length) {
    throw new Error(
      `${choice.name}${
        choice.options.dir ? ` ${choice.options.dir}` : ""
      }: no validation images (${choice.why}); score every image with --split all`,
    );
  }
  const whole = split === "val" ? val : concat(train, val);
  const n = Math.min(o.count ?? Infinity, whole.labels.length);
  const images = n < whole.labels.length ? firstImages(whole, n) : whole;
  const of = split === "val" ? "validation images" : "images (training and validation)";
  const lead = n < whole.labels.length
    ? `the first ${n} of the ${whole.labels.length}`
    : `all ${n}`;
  const opts = Object.keys(choice.options).length ? ` ${JSON.stringify(choice.options)}` : "";
  return { images, train, what: `${lead} ${of} of ${choice.name}${opts}, ${choice.why}` };
}

/** Two datasets of the same shape and classes as one (a's images first). */
function concat(a: Dataset, b: Dataset): Dataset {
  const images = new Uint8Array(a.images.length + b.images.length);
  images.set(a.images);
  images.set(b.images, a.images.length);
  const labels = new Uint8Array(a.labels.length + b.labels.length);
  labels.set(a.labels);
  labels.set(b.labels, a.labels.length);
  return { ...a, name: `${a.name}+${b.name}`, images, labels };
}

/** Where the committed results live: derived files never go there. */
export const RESULTS_ROOT: string = join(REPO_ROOT, "reports", "results");

/**
 * Where a task writes files derived from a model (`mcu/`, `model.tflite`):
 * beside the model, unless the model sits in the committed results
 * (`reports/results/`), whose files then go to the same place under the
 * ignored runs root (`reports/runs/derived/...`).
 *
 * @example
 * ```ts
 * import { derivedPath, RESULTS_ROOT } from "./model_images.ts";
 * import { join } from "node:path";
 * if (derivedPath("/tmp/r/model.qgt", "mcu") !== "/tmp/r/mcu") throw new Error();
 * const p = derivedPath(join(RESULTS_ROOT, "x", "model.qgt"), "mcu");
 * if (p.startsWith(RESULTS_ROOT) || !p.endsWith(join("derived", "x", "mcu"))) throw new Error(p);
 * ```
 */
export function derivedPath(modelPath: string, name: string): string {
  const dir = resolve(dirname(modelPath));
  const rel = relative(RESULTS_ROOT, dir);
  if (rel.startsWith("..") || rel === dir) return join(dirname(modelPath), name);
  return join(DEFAULT_RUNS_ROOT, "derived", rel, name);
}

/**
 * Datasets by name, as experiments declare them: `synthetic-person` (the
 * embedded default), `vww` (Visual Wake Words from a directory),
 * `fashion-mnist` (Debian's IDX files) and `folder` (your images, one
 * subfolder per class). Each returns a train and a validation
 * set (Fashion-MNIST's validation set is its 10,000-image test split).
 * @module
 */
import { type Dataset, firstImages, imageRange } from "./dataset.ts";
import { loadSyntheticPerson } from "./synthetic_person.ts";
import { loadVww } from "./vww.ts";
import { type FolderData, loadImageFolder } from "./folder.ts";
import { FASHION_MNIST_DIR, loadFashionMnist } from "./fashion_mnist.ts";
import { DATA_DIR } from "./cache.ts";

/** Dataset names. */
export const DATASETS = ["synthetic-person", "vww", "fashion-mnist", "folder"] as const;
/** A dataset name. */
export type DatasetName = typeof DATASETS[number];

/**
 * Options of the datasets; each dataset reads the fields
 * {@link DATASET_OPTIONS} lists for it (and `cacheRoot`), and
 * {@link loadDataset} rejects any other.
 */
export interface DatasetOptions {
  /**
   * synthetic-person: training images (default 8000); fashion-mnist: the
   * first N training images (default all 60,000 less the holdout); vww: at
   * most N training images, a fixed subset by path hash (default all).
   */
  trainCount?: number;
  /**
   * fashion-mnist: validate on the last N training images (disjoint from the
   * first trainCount) instead of the test set, to tune settings without
   * looking at the test set.
   */
  holdout?: number;
  /** synthetic-person: validation images (default 2000); vww: at most N, as trainCount (default all). */
  valCount?: number;
  /**
   * synthetic-person: index of the first validation image (default
   * trainCount, so validation follows training in the seed's stream). A larger
   * offset draws a fresh test set no run with the default offset has seen,
   * e.g. to re-evaluate exported models on more images.
   */
  valOffset?: number;
  /** synthetic-person: generator seed (default 1). */
  seed?: number;
  /** Square image size (synthetic-person, vww; default 96). */
  size?: number;
  /** 1 (grayscale, default) or 3. */
  channels?: 1 | 3;
  /** vww / fashion-mnist: data directory. */
  dir?: string;
  /** vww, folder: validation fraction (default 0.1). */
  valFraction?: number;
  /** vww, folder: file listing validation images. */
  splitFile?: string;
  /** folder: a folder of the same layout with the validation images. */
  valDir?: string;
  /** folder: the class folders in label order (default: every subfolder, sorted). */
  classes?: string[];
  /** vww, folder: skip unreadable images. */
  skipBadImages?: boolean;
  /** Cache root (default `data/`). */
  cacheRoot?: string;
  /** Hears of images generated or decoded (not of cached ones): `what` says which. */
  onProgress?: (done: number, total: number, what: string) => void;
}

/** The options each dataset reads. */
export const DATASET_OPTIONS: Record<DatasetName, readonly (keyof DatasetOptions)[]> = {
  "synthetic-person": ["trainCount", "valCount", "valOffset", "seed", "size", "channels"],
  vww: [
    "dir",
    "trainCount",
    "valCount",
    "size",
    "channels",
    "valFraction",
    "splitFile",
    "skipBadImages",
  ],
  "fashion-mnist": ["dir", "trainCount", "holdout"],
  folder: [
    "dir",
    "classes",
    "trainCount",
    "valCount",
    "size",
    "channels",
    "valFraction",
    "valDir",
    "splitFile",
    "skipBadImages",
  ],
};

/** The notes of an image-folder load: skipped files and capped splits. */
function folderNotes(name: string, r: FolderData, o: DatasetOptions): string[] {
  const notes = r.skipped.length
    ? [`${name}: skipped ${r.skipped.length} unreadable images, e.g. ${r.skipped[0]}`]
    : [];
  const { train: at, val: av } = r.available;
  if ((o.trainCount ?? Infinity) < at || (o.valCount ?? Infinity) < av) {
    notes.push(
      `${name}: ${Math.min(at, o.trainCount ?? at)} of ${at} training and ${
        Math.min(av, o.valCount ?? av)
      } of ${av} validation images (options.trainCount / valCount; a fixed subset by path hash)`,
    );
  }
  return notes;
}

/**
 * The first field of `options` set (not undefined) that dataset `name` does
 * not read (see {@link DATASET_OPTIONS}; `cacheRoot` is read by all), or
 * undefined.
 *
 * @example
 * ```ts
 * import { unreadOption } from "./registry.ts";
 * if (unreadOption("vww", { dir: "/d", trainCount: 10 }) !== undefined) throw new Error();
 * if (unreadOption("vww", { dir: "/d", valOffset: 10 }) !== "valOffset") throw new Error();
 * if (unreadOption("synthetic-person", { dir: undefined }) !== undefined) throw new Error();
 * ```
 */
export function unreadOption(name: DatasetName, options: object): string | undefined {
  const reads: readonly string[] = DATASET_OPTIONS[name];
  return Object.entries(options).find(([k, v]) =>
    v !== undefined && k !== "cacheRoot" && k !== "onProgress" && !reads.includes(k)
  )?.[0];
}

/** A loaded dataset pair. */
export interface DatasetPair {
  train: Dataset;
  val: Dataset;
  notes: string[];
}

/**
 * Loads a dataset by name.
 *
 * @example
 * ```ts ignore
 * const { train, val } = await loadDataset("fashion-mnist", {});
 * ```
 */
export async function loadDataset(name: string, o: DatasetOptions = {}): Promise<DatasetPair> {
  if ((DATASETS as readonly string[]).includes(name)) {
    const k = unreadOption(name as DatasetName, o);
    if (k !== undefined) {
      throw new Error(
        `dataset ${name}: options.${k} is not an option of ${name} (its options: ${
          DATASET_OPTIONS[name as DatasetName].join(", ")
        })`,
      );
    }
  }
  switch (name) {
    case "synthetic-person": {
      const seed = o.seed ?? 1, size = o.size ?? 96, channels = o.channels ?? 1;
      const trainCount = o.trainCount ?? 8000, valCount = o.valCount ?? 2000;
      const valOffset = o.valOffset ?? trainCount;
      for (
        const [field, v, min] of [["trainCount", trainCount, 1], ["valCount", valCount, 1]] as const
      ) {
        if (!Number.isInteger(v) || v < min) {
          throw new Error(
            `dataset synthetic-person: options.${field} must be an integer >= ${min}, got ${v}`,
          );
        }
      }
      if (!Number.isInteger(valOffset) || valOffset < trainCount) {
        throw new Error(
          `dataset synthetic-person: options.valOffset must be an integer >= trainCount (${trainCount}), so validation images are not training images, got ${valOffset}`,
        );
      }
      const root = o.cacheRoot ?? DATA_DIR;
      const tell = (what: string) =>
        o.onProgress && ((d: number, t: number) => o.onProgress!(d, t, what));
      const train = await loadSyntheticPerson(
        { count: trainCount, seed, size, channels, onProgress: tell("generating training images") },
        root,
      );
      const val = await loadSyntheticPerson(
        {
          count: valCount,
          seed,
          size,
          channels,
          offset: valOffset,
          onProgress: tell("generating validation images"),
        },
        root,
      );
      return {
        train: { ...train, name: "synthetic-person/train" },
        val: { ...val, name: "synthetic-person/val" },
        notes: valOffset === trainCount ? [] : [
          `synthetic-person: validation on images ${valOffset}..${
            valOffset + valCount - 1
          } of the seed's stream, not the default ${trainCount}..${trainCount + valCount - 1}`,
        ],
      };
    }
    case "vww":
    case "folder": {
      if (!o.dir) {
        throw new Error(
          name === "vww"
            ? "dataset vww: needs a directory (--data DIR with person/ and non_person/)"
            : "dataset folder: needs options.dir (or --data DIR): a folder with one subfolder of images per class",
        );
      }
      const size = o.size ?? 96;
      const common = {
        dir: o.dir,
        size: [size, size] as [number, number],
        channels: o.channels ?? 1,
        valFraction: o.valFraction,
        splitFile: o.splitFile,
        skipBadImages: o.skipBadImages,
        trainCount: o.trainCount,
        valCount: o.valCount,
        cacheRoot: o.cacheRoot ?? DATA_DIR,
        onProgress: o.onProgress &&
          ((d: number, t: number) => o.onProgress!(d, t, "decoding images")),
      };
      const r = name === "vww"
        ? await loadVww(common)
        : await loadImageFolder({ ...common, valDir: o.valDir, classes: o.classes });
      return { train: r.train, val: r.val, notes: folderNotes(name, r, o) };
    }
    case "fashion-mnist": {
      const { train, test } = await loadFashionMnist(o.dir ?? FASHION_MNIST_DIR);
      const total = train.labels.length;
      const h = o.holdout ?? 0;
      if (!Number.isInteger(h) || h < 0 || h >= total) {
        throw new Error(
          `dataset fashion-mnist: options.holdout must be an integer in 0..${total - 1}, got ${h}`,
        );
      }
      const n = o.trainCount ?? total - h;
      if (!Number.isInteger(n) || n < 1 || n > total - h) {
        throw new Error(
          `dataset fashion-mnist: options.trainCount must be an integer in 1..${total - h}${
            h ? ` (${total} training images less a holdout of ${h})` : ""
          }, got ${n}`,
        );
      }
      const notes: string[] = [];
      if (n < total) notes.push(`fashion-mnist: the first ${n} of ${total} training images`);
      if (h) {
        notes.push(
          `fashion-mnist: validation on the last ${h} training images (holdout), not the test set`,
        );
      }
      return {
        // the first n images of the (already shuffled) IDX training file, the holdout its last h
        train: n === total ? train : firstImages(train, n),
        val: h ? imageRange(train, total - h, total) : test,
        notes,
      };
    }
    default:
      throw new Error(
        `dataset: expected one of ${DATASETS.join(", ")}, got ${JSON.stringify(name)}`,
      );
  }
}

/**
 * Counts per class.
 *
 * @example
 * ```ts
 * import { classCounts } from "./registry.ts";
 * const c = classCounts({ name: "t", shape: [1, 1, 1], classNames: ["a", "b"], images: new Uint8Array(3), labels: new Uint8Array([0, 1, 1]) });
 * if (c.b !== 2) throw new Error();
 * ```
 */
export function classCounts(ds: Dataset): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(ds.classNames.map((c) => [c, 0]));
  for (const l of ds.labels) out[ds.classNames[l]]++;
  return out;
}

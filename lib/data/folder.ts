/**
 * An image folder: one subfolder per class (the torchvision `ImageFolder` /
 * Keras `image_dataset_from_directory` layout), PNG and JPEG of any size,
 * resized to the experiment's resolution, grayscale or RGB. Class names come
 * from the subfolders (sorted) unless given. The train/validation split is a
 * second folder of the same layout (`valDir`), a list file naming the
 * validation images, or a hash of each file's relative path (deterministic,
 * independent of file order and of the other files). `trainCount` /
 * `valCount` cap each split at a fixed subset chosen by another path hash.
 * Decoded arrays are cached like every dataset (`cache.ts`). Visual Wake Words
 * is this loader with its two class folders (`vww.ts`).
 * @module
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { Dataset } from "./dataset.ts";
import { decodeImage, resizeImage } from "./image.ts";
import { loadCached, storeCached } from "./cache.ts";
import { taskCommand } from "../util/cli.ts";

/** Options of {@link loadImageFolder}. */
export interface FolderOptions {
  dir: string;
  /** The dataset's name in messages, set names and the cache (default "folder"). */
  name?: string;
  /** Class folders in label order (default: every subfolder of `dir`, sorted). */
  classes?: string[];
  /** Output [height, width]; default [96, 96]. */
  size?: [number, number];
  channels?: 1 | 3;
  /** A folder of the same layout holding the validation images (instead of a split of `dir`). */
  valDir?: string;
  /** Fraction of images (by path hash) in validation; default 0.1. */
  valFraction?: number;
  /** A text file listing validation images (paths relative to `dir`, one per line). */
  splitFile?: string;
  /** Skip unreadable images (and report them) instead of failing. */
  skipBadImages?: boolean;
  /** At most this many training images (see {@link capByHash}); default all. */
  trainCount?: number;
  /** At most this many validation images, chosen the same way; default all. */
  valCount?: number;
  /** Cache decoded arrays under this root (default: no cache). */
  cacheRoot?: string;
  onProgress?: (done: number, total: number) => void;
  /** What the layout error says is expected (VWW names its folders). */
  layout?: string;
}

/** Result of {@link loadImageFolder}. */
export interface FolderData {
  train: Dataset;
  val: Dataset;
  /** Images that could not be read ("path: reason"), when skipBadImages is on. */
  skipped: string[];
  /** Images of each split in the folder(s), before trainCount / valCount. */
  available: { train: number; val: number };
}

const EXT = /\.(jpe?g|png)$/i;

/**
 * Deterministic hash of a relative path to [0, 1).
 *
 * @example
 * ```ts
 * import { pathFraction } from "./folder.ts";
 * const f = pathFraction("person/a.jpg");
 * if (!(f >= 0 && f < 1) || f !== pathFraction("person/a.jpg")) throw new Error();
 * ```
 */
export function pathFraction(rel: string): number {
  const h = createHash("sha256").update(rel).digest();
  return h.readUInt32BE(0) / 4294967296;
}

/**
 * The `count` paths (all when `count` is undefined or not smaller) whose
 * `pathFraction("subset/" + path)` is lowest, in their original order: a
 * fixed pseudo-random subset that does not depend on file order, keeps the
 * class mix about as it is, and changes little when files are added. The
 * "subset/" prefix keeps it independent of the validation split's hash.
 *
 * @example
 * ```ts
 * import { capByHash } from "./folder.ts";
 * const all = ["person/a.jpg", "person/b.jpg", "non_person/c.jpg"];
 * const two = capByHash(all, 2);
 * if (two.length !== 2 || capByHash([...all].reverse(), 2).sort().join() !== [...two].sort().join()) {
 *   throw new Error();
 * }
 * ```
 */
export function capByHash(paths: string[], count: number | undefined): string[] {
  if (count === undefined || count >= paths.length) return paths;
  const keep = new Set(
    paths.map((p) => ({ p, f: pathFraction(`subset/${p}`) }))
      .sort((a, b) => a.f - b.f || (a.p < b.p ? -1 : 1))
      .slice(0, count)
      .map((x) => x.p),
  );
  return paths.filter((p) => keep.has(p));
}

/** The class subfolders of `dir`, sorted (hidden folders left out). */
async function classFolders(dir: string, what: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && !e.name.startsWith(".")) out.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${what}: ${dir} not found`);
    if (e instanceof Deno.errors.NotADirectory) {
      throw new Error(`${what}: ${dir} is a file; expected a folder with one subfolder per class`);
    }
    throw e;
  }
  return out.sort();
}

async function listClass(dir: string, cls: string, what: string, layout: string) {
  const d = join(dir, cls);
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(d)) {
      if (e.isFile && EXT.test(e.name)) out.push(`${cls}/${e.name}`);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${what}: ${d} not found; ${layout}`);
    throw e;
  }
  if (!out.length) throw new Error(`${what}: ${d} has no images (.jpg, .jpeg or .png)`);
  return out.sort();
}

/** The files of one folder in class order, as paths relative to it. */
async function listFolder(
  dir: string,
  classes: string[],
  what: string,
  layout: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const c of classes) out.push(...await listClass(dir, c, what, layout));
  return out;
}

function checkOptions(o: FolderOptions, what: string): void {
  const valFraction = o.valFraction ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new Error(`${what}: valFraction must be in [0, 1), got ${valFraction}`);
  }
  for (const [field, n] of [["trainCount", o.trainCount], ["valCount", o.valCount]] as const) {
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) {
      throw new Error(`${what}: ${field} must be an integer >= 1, got ${n}`);
    }
  }
  if (o.valDir && o.splitFile) {
    throw new Error(`${what}: valDir and splitFile both choose the validation images; give one`);
  }
}

/** Reads the validation list file: the relative paths it names, all of which must exist. */
async function readSplitFile(path: string, listed: string[], dir: string): Promise<Set<string>> {
  const lines = (await Deno.readTextFile(path)).split("\n").map((l) => l.trim()).filter(Boolean);
  const known = new Set(listed);
  const missing = lines.filter((l) => !known.has(l));
  if (missing.length) {
    throw new Error(`${path}: ${missing.length} listed images not in ${dir}, e.g. ${missing[0]}`);
  }
  return new Set(lines);
}

/** One image to decode: where it is, its split and label. */
interface Entry {
  /** Relative to its folder, with a "val:" prefix for images of valDir. */
  key: string;
  path: string;
  val: boolean;
  label: number;
}

/**
 * Loads an image folder.
 *
 * @example
 * ```ts ignore
 * const { train, val } = await loadImageFolder({ dir: "/data/flowers", size: [64, 64], channels: 3 });
 * ```
 */
export async function loadImageFolder(opts: FolderOptions): Promise<FolderData> {
  const name = opts.name ?? "folder";
  const what = `dataset ${name}`;
  const layout = opts.layout ?? `expected ${opts.dir}/<class>/*.{jpg,png}`;
  checkOptions(opts, what);
  const [h, w] = opts.size ?? [96, 96];
  const c = opts.channels ?? 1;
  const classes = opts.classes ?? await classFolders(opts.dir, what);
  if (classes.length < 2) {
    throw new Error(
      `${what}: ${opts.dir} has ${classes.length} class folder(s)${
        classes.length ? ` (${classes[0]})` : ""
      }; expected at least 2, one subfolder of images per class`,
    );
  }
  if (classes.length > 255) throw new Error(`${what}: ${classes.length} classes; at most 255`);
  const label = (rel: string) => classes.indexOf(rel.slice(0, rel.indexOf("/")));
  const listed = await listFolder(opts.dir, classes, what, layout);
  let entries: Entry[];
  if (opts.valDir) {
    const extra = (await classFolders(opts.valDir, what)).filter((d) => !classes.includes(d));
    if (extra.length) {
      throw new Error(
        `${what}: ${opts.valDir}/${extra[0]} is not a class of ${opts.dir} (${classes.join(", ")})`,
      );
    }
    const valFiles = await listFolder(opts.valDir, classes, what, layout);
    entries = [
      ...listed.map((r) => ({ key: r, path: join(opts.dir, r), val: false, label: label(r) })),
      ...valFiles.map((r) => ({
        key: `val:${r}`,
        path: join(opts.valDir!, r),
        val: true,
        label: label(r),
      })),
    ];
  } else {
    const valSet = opts.splitFile ? await readSplitFile(opts.splitFile, listed, opts.dir) : null;
    const frac = opts.valFraction ?? 0.1;
    entries = listed.map((r) => ({
      key: r,
      path: join(opts.dir, r),
      val: valSet ? valSet.has(r) : pathFraction(r) < frac,
      label: label(r),
    }));
  }
  const trainKeys = entries.filter((e) => !e.val).map((e) => e.key);
  const valKeys = entries.filter((e) => e.val).map((e) => e.key);
  const available = { train: trainKeys.length, val: valKeys.length };
  const chosen = new Set([
    ...capByHash(trainKeys, opts.trainCount),
    ...capByHash(valKeys, opts.valCount),
  ]);
  const files = entries.filter((e) => chosen.has(e.key));
  const isVal = new Map(entries.map((e) => [e.key, e.val]));

  // cache key: the folders, classes, file list with sizes and modification times, output format
  let key = "";
  if (opts.cacheRoot) {
    const hash = createHash("sha256").update(
      `${opts.dir}|${opts.valDir ?? ""}|${classes.join("/")}|${h}x${w}x${c}|${!!opts
        .skipBadImages}\n`,
    );
    for (const f of files) {
      const st = await Deno.stat(f.path);
      hash.update(`${f.key}|${f.val}|${st.size}|${st.mtime?.getTime()}\n`);
    }
    key = hash.digest("hex").slice(0, 16);
    const hit = await loadCached(name, key, opts.cacheRoot);
    if (hit) {
      const cachedFiles = hit.manifest.files as string[];
      return split(hit.ds, cachedFiles.map((k) => isVal.get(k) ?? false), name, {
        skipped: (hit.manifest.skipped as string[]) ?? [],
        available,
      });
    }
  }

  const per = h * w * c;
  const images = new Uint8Array(files.length * per);
  const labels = new Uint8Array(files.length);
  const kept: string[] = [], skipped: string[] = [];
  for (const [i, f] of files.entries()) {
    try {
      const img = decodeImage(await Deno.readFile(f.path), f.path);
      images.set(resizeImage(img, w, h, c), kept.length * per);
      labels[kept.length] = f.label;
      kept.push(f.key);
    } catch (e) {
      if (!opts.skipBadImages) {
        throw new Error(
          `${(e as Error).message} (to skip unreadable images: ${
            taskCommand("run")
          } <experiment.ts> --set dataset.options.skipBadImages=true, or eval-model --skip-bad-images)`,
        );
      }
      skipped.push((e as Error).message);
    }
    opts.onProgress?.(i + 1, files.length);
  }
  const ds: Dataset = {
    name,
    shape: [h, w, c],
    classNames: classes,
    images: images.subarray(0, kept.length * per),
    labels: labels.subarray(0, kept.length),
  };
  if (opts.cacheRoot) {
    await storeCached(name, key, ds, { files: kept, skipped, dir: opts.dir }, opts.cacheRoot);
  }
  return split(ds, kept.map((k) => isVal.get(k)!), name, { skipped, available });
}

function split(
  ds: Dataset,
  val: boolean[],
  name: string,
  rest: Pick<FolderData, "skipped" | "available">,
): FolderData {
  // an empty validation split is the runner's error to report (it names the options)
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const pick = (want: boolean, set: string): Dataset => {
    const idx = val.flatMap((v, i) => (v === want ? [i] : []));
    const images = new Uint8Array(idx.length * per), labels = new Uint8Array(idx.length);
    idx.forEach((i, k) => {
      images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
      labels[k] = ds.labels[i];
    });
    return { ...ds, name: `${name}/${set}`, images, labels };
  };
  return { train: pick(false, "train"), val: pick(true, "val"), ...rest };
}

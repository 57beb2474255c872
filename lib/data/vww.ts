/**
 * Visual Wake Words (Chowdhery et al. 2019) in the MLPerf Tiny layout:
 * `<dir>/person/*.jpg` and `<dir>/non_person/*.jpg` (`.jpeg` and `.png` too),
 * any image size, resized to the experiment's resolution, grayscale or RGB.
 * Labels: non_person 0, person 1. The train/validation split is a hash of each
 * file's relative path (deterministic, independent of file order and of the
 * other files) or a list file naming the validation images. `trainCount` /
 * `valCount` cap each split at a fixed subset chosen by another path hash.
 * @module
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { Dataset } from "./dataset.ts";
import { decodeImage, resizeImage } from "./image.ts";
import { loadCached, storeCached } from "./cache.ts";

/** Class folders in label order. */
export const VWW_CLASSES = ["non_person", "person"];

/** Options of {@link loadVww}. */
export interface VwwOptions {
  dir: string;
  /** Output [height, width]; default [96, 96]. */
  size?: [number, number];
  channels?: 1 | 3;
  /** Fraction of images (by path hash) in validation; default 0.1. */
  valFraction?: number;
  /** A text file listing validation images (paths relative to `dir`, one per line). */
  splitFile?: string;
  /** Skip unreadable images (and report them) instead of failing. */
  skipBadImages?: boolean;
  /**
   * At most this many training images: the ones whose path hashes lowest
   * (see {@link capByHash}); default all. Only the chosen images are decoded.
   */
  trainCount?: number;
  /** At most this many validation images, chosen the same way; default all. */
  valCount?: number;
  /** Cache decoded arrays under this root (default: no cache). */
  cacheRoot?: string;
  onProgress?: (done: number, total: number) => void;
}

/** Result of {@link loadVww}. */
export interface VwwData {
  train: Dataset;
  val: Dataset;
  /** Images that could not be read ("path: reason"), when skipBadImages is on. */
  skipped: string[];
  /** Images of each split in the folder, before trainCount / valCount. */
  available: { train: number; val: number };
}

const EXT = /\.(jpe?g|png)$/i;

/**
 * Deterministic hash of a relative path to [0, 1).
 *
 * @example
 * ```ts
 * import { pathFraction } from "./vww.ts";
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
 * import { capByHash } from "./vww.ts";
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

async function listClass(dir: string, cls: string): Promise<string[]> {
  const d = join(dir, cls);
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(d)) {
      if (e.isFile && EXT.test(e.name)) out.push(`${cls}/${e.name}`);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `vww: ${d} not found; expected ${dir}/{person,non_person}/*.jpg (the MLPerf Tiny layout)`,
      );
    }
    throw e;
  }
  if (!out.length) throw new Error(`vww: ${d} has no images (.jpg, .jpeg or .png)`);
  return out.sort();
}

/**
 * Loads VWW from `opts.dir`.
 *
 * @example
 * ```ts ignore
 * const { train, val } = await loadVww({ dir: "/data/vw_coco2014_96" });
 * ```
 */
export async function loadVww(opts: VwwOptions): Promise<VwwData> {
  const [h, w] = opts.size ?? [96, 96];
  const c = opts.channels ?? 1;
  const valFraction = opts.valFraction ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new Error(`vww: valFraction must be in [0, 1), got ${valFraction}`);
  }
  const listed = [
    ...(await listClass(opts.dir, "non_person")),
    ...(await listClass(opts.dir, "person")),
  ];
  let valSet: Set<string> | null = null;
  if (opts.splitFile) {
    const lines = (await Deno.readTextFile(opts.splitFile)).split("\n").map((l) => l.trim()).filter(
      Boolean,
    );
    const known = new Set(listed);
    const missing = lines.filter((l) => !known.has(l));
    if (missing.length) {
      throw new Error(
        `${opts.splitFile}: ${missing.length} listed images not in ${opts.dir}, e.g. ${missing[0]}`,
      );
    }
    valSet = new Set(lines);
  }
  const isVal = (rel: string) => (valSet ? valSet.has(rel) : pathFraction(rel) < valFraction);
  for (
    const [field, n] of [["trainCount", opts.trainCount], ["valCount", opts.valCount]] as const
  ) {
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) {
      throw new Error(`vww: ${field} must be an integer >= 1, got ${n}`);
    }
  }
  const trainFiles = listed.filter((f) => !isVal(f)), valFiles = listed.filter(isVal);
  const available = { train: trainFiles.length, val: valFiles.length };
  const chosen = new Set([
    ...capByHash(trainFiles, opts.trainCount),
    ...capByHash(valFiles, opts.valCount),
  ]);
  const files = listed.filter((f) => chosen.has(f));

  // cache key: the file list with sizes and modification times, and the output format
  let key = "";
  if (opts.cacheRoot) {
    const hash = createHash("sha256").update(
      `${opts.dir}|${h}x${w}x${c}|${!!opts.skipBadImages}\n`,
    );
    for (const f of files) {
      const st = await Deno.stat(join(opts.dir, f));
      hash.update(`${f}|${st.size}|${st.mtime?.getTime()}\n`);
    }
    key = hash.digest("hex").slice(0, 16);
    const hit = await loadCached("vww", key, opts.cacheRoot);
    if (hit) {
      return split(
        hit.ds,
        hit.manifest.files as string[],
        isVal,
        (hit.manifest.skipped as string[]) ?? [],
        available,
      );
    }
  }

  const per = h * w * c;
  const images = new Uint8Array(files.length * per);
  const labels = new Uint8Array(files.length);
  const kept: string[] = [], skipped: string[] = [];
  for (const [i, rel] of files.entries()) {
    const path = join(opts.dir, rel);
    try {
      const img = decodeImage(await Deno.readFile(path), path);
      images.set(resizeImage(img, w, h, c), kept.length * per);
      labels[kept.length] = rel.startsWith("person/") ? 1 : 0;
      kept.push(rel);
    } catch (e) {
      if (!opts.skipBadImages) {
        throw new Error(
          `${
            (e as Error).message
          } (to skip unreadable images: deno task run ... --set dataset.options.skipBadImages=true, or eval-model --skip-bad-images)`,
        );
      }
      skipped.push((e as Error).message);
    }
    opts.onProgress?.(i + 1, files.length);
  }
  const ds: Dataset = {
    name: "vww",
    shape: [h, w, c],
    classNames: VWW_CLASSES,
    images: images.subarray(0, kept.length * per),
    labels: labels.subarray(0, kept.length),
  };
  if (opts.cacheRoot) {
    await storeCached("vww", key, ds, { files: kept, skipped, dir: opts.dir }, opts.cacheRoot);
  }
  return split(ds, kept, isVal, skipped, available);
}

function split(
  ds: Dataset,
  files: string[],
  isVal: (rel: string) => boolean,
  skipped: string[],
  available: VwwData["available"],
): VwwData {
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const pick = (want: boolean, name: string): Dataset => {
    const idx = files.flatMap((f, i) => (isVal(f) === want ? [i] : []));
    const images = new Uint8Array(idx.length * per), labels = new Uint8Array(idx.length);
    idx.forEach((i, k) => {
      images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
      labels[k] = ds.labels[i];
    });
    return { ...ds, name, images, labels };
  };
  return { train: pick(false, "vww/train"), val: pick(true, "vww/val"), skipped, available };
}

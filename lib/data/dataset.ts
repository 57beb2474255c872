/**
 * The dataset interface shared by training and evaluation: images stored as
 * uint8 (N x H x W x C, row-major, channels last) with uint8 labels, seeded
 * epoch order, normalisation and seeded per-sample augmentation, assembled
 * into float batches on the host.
 *
 * Augmentation of sample i in epoch e draws from its own stream
 * `deriveSeed(seed, "aug/e/i")`, so it does not depend on batch size, batch
 * composition or how many workers share a batch.
 * @module
 */
import { deriveSeed, permutation, rng } from "../util/random.ts";

/** An in-memory labelled image set. */
export interface Dataset {
  name: string;
  /** [H, W, C]. */
  shape: [number, number, number];
  classNames: string[];
  /** N*H*W*C bytes. */
  images: Uint8Array;
  /** N class indices. */
  labels: Uint8Array;
}

/** x' = (x / 255 - mean) / std. */
export interface Normalization {
  mean: number;
  std: number;
}

/**
 * Default normalisation: x' = (p - 128) / 128 for a pixel p, i.e. [-1, 127/128].
 * The int8 input of the exported model is then exactly p - 128 with scale
 * 1/128 and zero point 0.
 */
export const DEFAULT_NORMALIZATION: Normalization = { mean: 128 / 255, std: 128 / 255 };

/** Seeded augmentation; every field is off (0/false) by default. */
export interface AugmentSpec {
  /** Random horizontal flip with probability 0.5. */
  flip?: boolean;
  /** Max shift as a fraction of width/height (uniform in [-shift, shift]). */
  shift?: number;
  /** Max zoom: scale uniform in [1 - zoom, 1 + zoom]. */
  zoom?: number;
  /** Max brightness change, in units of the full range (added). */
  brightness?: number;
  /** Max contrast change: factor uniform in [1 - contrast, 1 + contrast] around the image mean. */
  contrast?: number;
}

/** A batch ready for a tensor: x is N*H*W*C floats, y the labels. */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

/**
 * Number of samples.
 *
 * @example
 * ```ts
 * import { datasetSize } from "./dataset.ts";
 * const ds = { name: "t", shape: [1, 1, 1] as [number, number, number], classNames: ["a"], images: new Uint8Array(3), labels: new Uint8Array(3) };
 * if (datasetSize(ds) !== 3) throw new Error();
 * ```
 */
export function datasetSize(ds: Dataset): number {
  return ds.labels.length;
}

/**
 * The first n images of a dataset (views, not copies), named `<name>[:n]`.
 *
 * @example
 * ```ts
 * import { firstImages } from "./dataset.ts";
 * const ds = { name: "t", shape: [1, 1, 1] as [number, number, number], classNames: ["a"], images: new Uint8Array(3), labels: new Uint8Array(3) };
 * if (firstImages(ds, 2).labels.length !== 2 || firstImages(ds, 2).name !== "t[:2]") throw new Error();
 * ```
 */
export function firstImages(ds: Dataset, n: number): Dataset {
  return imageRange(ds, 0, n);
}

/**
 * Images start..end-1 of a dataset (views, not copies; clamped to its size),
 * named `<name>[start:end]` (`<name>[:end]` from 0).
 *
 * @example
 * ```ts
 * import { imageRange } from "./dataset.ts";
 * const ds = { name: "t", shape: [1, 1, 1] as [number, number, number], classNames: ["a"], images: new Uint8Array([5, 6, 7]), labels: new Uint8Array(3) };
 * const r = imageRange(ds, 1, 3);
 * if (r.images.join() !== "6,7" || r.name !== "t[1:3]") throw new Error();
 * ```
 */
export function imageRange(ds: Dataset, start: number, end: number): Dataset {
  const n = datasetSize(ds);
  const a = Math.max(0, Math.min(start, n)), b = Math.max(a, Math.min(end, n));
  const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
  return {
    ...ds,
    name: `${ds.name}[${a === 0 ? "" : a}:${b}]`,
    images: ds.images.subarray(a * per, b * per),
    labels: ds.labels.subarray(a, b),
  };
}

/**
 * Checks that a dataset's arrays agree with its shape and classes; throws a
 * message naming the dataset otherwise.
 *
 * @example
 * ```ts
 * import { validateDataset } from "./dataset.ts";
 * validateDataset({ name: "t", shape: [1, 1, 1], classNames: ["a", "b"], images: new Uint8Array(2), labels: new Uint8Array([0, 1]) });
 * ```
 */
export function validateDataset(ds: Dataset): void {
  const [h, w, c] = ds.shape;
  const n = ds.labels.length;
  if (ds.images.length !== n * h * w * c) {
    throw new Error(
      `dataset ${ds.name}: ${ds.images.length} image bytes, expected ${n}x${h}x${w}x${c}`,
    );
  }
  for (let i = 0; i < n; i++) {
    if (ds.labels[i] >= ds.classNames.length) {
      throw new Error(
        `dataset ${ds.name}: label ${ds.labels[i]} at ${i} >= ${ds.classNames.length} classes`,
      );
    }
  }
}

/**
 * Order of samples in an epoch: a seeded permutation (different every epoch)
 * or 0..n-1 when `shuffle` is false.
 *
 * @example
 * ```ts
 * import { epochOrder } from "./dataset.ts";
 * if (epochOrder(4, 1, 0, false).join() !== "0,1,2,3") throw new Error();
 * ```
 */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  if (!shuffle) return Uint32Array.from({ length: n }, (_, i) => i);
  return permutation(n, deriveSeed(seed, `shuffle/${epoch}`));
}

/**
 * Copies one sample, augmented, into `out` (H*W*C floats in [0, 1]).
 * Geometry (flip, shift, zoom) is one inverse affine map sampled bilinearly
 * with edge clamping; photometric changes follow.
 */
function augmentInto(
  src: Uint8Array,
  off: number,
  shape: [number, number, number],
  aug: AugmentSpec,
  seed: number,
  out: Float32Array,
  outOff: number,
): void {
  const [h, w, c] = shape;
  const r = rng(seed);
  const flip = aug.flip ? r.next() < 0.5 : false;
  const sx = aug.shift ? r.uniform(-aug.shift, aug.shift) * w : 0;
  const sy = aug.shift ? r.uniform(-aug.shift, aug.shift) * h : 0;
  const z = aug.zoom ? r.uniform(1 - aug.zoom, 1 + aug.zoom) : 1;
  const bright = aug.brightness ? r.uniform(-aug.brightness, aug.brightness) : 0;
  const contrast = aug.contrast ? r.uniform(1 - aug.contrast, 1 + aug.contrast) : 1;
  const geometric = flip || sx !== 0 || sy !== 0 || z !== 1;
  const cy = (h - 1) / 2, cx = (w - 1) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = outOff + (y * w + x) * c;
      if (!geometric) {
        for (let k = 0; k < c; k++) out[o + k] = src[off + (y * w + x) * c + k] / 255;
        continue;
      }
      const xo = flip ? w - 1 - x : x;
      let fx = (xo - cx - sx) / z + cx, fy = (y - cy - sy) / z + cy;
      fx = Math.min(w - 1, Math.max(0, fx));
      fy = Math.min(h - 1, Math.max(0, fy));
      const x0 = Math.floor(fx), y0 = Math.floor(fy);
      const x1 = Math.min(w - 1, x0 + 1), y1 = Math.min(h - 1, y0 + 1);
      const ax = fx - x0, ay = fy - y0;
      for (let k = 0; k < c; k++) {
        const p00 = src[off + (y0 * w + x0) * c + k], p01 = src[off + (y0 * w + x1) * c + k];
        const p10 = src[off + (y1 * w + x0) * c + k], p11 = src[off + (y1 * w + x1) * c + k];
        const top = p00 + (p01 - p00) * ax, bot = p10 + (p11 - p10) * ax;
        out[o + k] = (top + (bot - top) * ay) / 255;
      }
    }
  }
  if (bright !== 0 || contrast !== 1) {
    const n = h * w * c;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += out[outOff + i];
    mean /= n;
    for (let i = 0; i < n; i++) {
      const v = (out[outOff + i] - mean) * contrast + mean + bright;
      out[outOff + i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}

/** Options of {@link makeBatch}. */
export interface BatchOptions {
  normalize?: Normalization;
  augment?: AugmentSpec;
  /** Seed and epoch for augmentation streams. */
  seed?: number;
  epoch?: number;
}

/**
 * Assembles the samples `indices` into a normalised float batch, augmenting
 * each with its own seeded stream when `augment` is given.
 *
 * @example
 * ```ts
 * import { makeBatch } from "./dataset.ts";
 * const ds = { name: "t", shape: [1, 1, 1] as [number, number, number], classNames: ["a", "b"], images: new Uint8Array([0, 255]), labels: new Uint8Array([0, 1]) };
 * const b = makeBatch(ds, [1, 0]);
 * if (b.x.join() !== "0.9921875,-1" || b.y.join() !== "1,0") throw new Error();
 * ```
 */
export function makeBatch(ds: Dataset, indices: ArrayLike<number>, opts: BatchOptions = {}): Batch {
  const [h, w, c] = ds.shape;
  const per = h * w * c;
  const n = indices.length;
  const x = new Float32Array(n * per);
  const y = new Int32Array(n);
  const norm = opts.normalize ?? DEFAULT_NORMALIZATION;
  const aug = opts.augment;
  const active = aug && (aug.flip || aug.shift || aug.zoom || aug.brightness || aug.contrast);
  // in pixel units, so that e.g. (p - 128) / 128 is computed exactly
  const off = 255 * norm.mean, div = 255 * norm.std;
  for (let b = 0; b < n; b++) {
    const i = indices[b];
    y[b] = ds.labels[i];
    if (active) {
      const s = deriveSeed(opts.seed ?? 0, `aug/${opts.epoch ?? 0}/${i}`);
      augmentInto(ds.images, i * per, ds.shape, aug, s, x, b * per);
      for (let k = b * per; k < (b + 1) * per; k++) x[k] = (x[k] * 255 - off) / div;
    } else {
      for (let k = 0; k < per; k++) x[b * per + k] = (ds.images[i * per + k] - off) / div;
    }
  }
  return { x, y, n };
}

/**
 * Splits a batch into `parts` contiguous shards of near-equal size (for data
 * parallelism); shards are views, not copies.
 *
 * @example
 * ```ts
 * import { splitBatch } from "./dataset.ts";
 * const s = splitBatch({ x: new Float32Array(5), y: new Int32Array(5), n: 5 }, 2);
 * if (s.map((b) => b.n).join() !== "3,2") throw new Error();
 * ```
 */
export function splitBatch(b: Batch, parts: number): Batch[] {
  const per = b.n ? b.x.length / b.n : 0;
  const out: Batch[] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const n = Math.floor(b.n / parts) + (p < b.n % parts ? 1 : 0);
    out.push({
      x: b.x.subarray(start * per, (start + n) * per),
      y: b.y.subarray(start, start + n),
      n,
    });
    start += n;
  }
  return out;
}

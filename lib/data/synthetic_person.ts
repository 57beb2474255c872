/**
 * `synthetic-person`: a procedural, seed-deterministic person / no-person image
 * set standing in for Visual Wake Words, which cannot be downloaded here.
 *
 * A positive holds an articulated figure (head, torso, two-segment arms and
 * legs) in a random pose (standing, walking, arms raised, sitting, lying) whose
 * bounding box covers 0.6-50 % of the image (VWW's rule: a person covering
 * more than 0.5 % is a positive; 97 % of them cover 4-50 %, log-uniform),
 * drawn with at least 0.25 gray-level contrast to the background around it,
 * and partly occluded in 10 % of images. Every
 * image has a textured background (multi-octave value noise, gradients,
 * stripes or bricks, clutter), lighting changes, blur and sensor noise, and
 * 0-2 distractors: poles, trees, four-legged animals, boxes, vehicles. Hard
 * negatives (8 % of negatives) carry a headless figure, loose limbs, or a
 * person too small to count (0.1-0.4 % of the image). Classes alternate, so they are balanced.
 *
 * Image i depends only on (seed, i) and GENERATOR_VERSION, so any subset can be
 * regenerated and the cache key is (version, seed, count, shape).
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { blur, box, type Canvas, canvas, capsule, ellipse, type Paint } from "./raster.ts";
import { deriveSeed, type Rng, rng } from "../util/random.ts";
import { loadCached, storeCached } from "./cache.ts";

/** Bump when the images change; it is part of the cache key and the manifest. */
export const GENERATOR_VERSION = 7;

/** Class names in label order. */
export const SYNTHETIC_PERSON_CLASSES = ["non_person", "person"];

/** Options of the generator. */
export interface SyntheticPersonOptions {
  count: number;
  seed: number;
  /** Image size (square); default 96. */
  size?: number;
  /** 1 (grayscale, default) or 3 (RGB). */
  channels?: 1 | 3;
  /** Index of the first image (to generate disjoint train/validation sets from one seed). */
  offset?: number;
  /** Hears of every 64th image generated. */
  onProgress?: (done: number, total: number) => void;
}

/** A smooth random field in [0, 1]: bilinear value noise summed over octaves. */
function valueNoise(r: Rng, w: number, h: number, cells: number, octaves: number): Float32Array {
  const out = new Float32Array(w * h);
  let amp = 1, total = 0, n = cells;
  for (let o = 0; o < octaves; o++) {
    const g = Float32Array.from({ length: (n + 1) * (n + 1) }, () => r.next());
    for (let y = 0; y < h; y++) {
      const fy = (y / h) * n, iy = Math.floor(fy), ty = fy - iy;
      const sy = ty * ty * (3 - 2 * ty);
      for (let x = 0; x < w; x++) {
        const fx = (x / w) * n, ix = Math.floor(fx), tx = fx - ix;
        const sx = tx * tx * (3 - 2 * tx);
        const a = g[iy * (n + 1) + ix], b = g[iy * (n + 1) + ix + 1];
        const c = g[(iy + 1) * (n + 1) + ix], d = g[(iy + 1) * (n + 1) + ix + 1];
        out[y * w + x] += amp * ((a + (b - a) * sx) * (1 - sy) + (c + (d - c) * sx) * sy);
      }
    }
    total += amp;
    amp *= 0.5;
    n *= 2;
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

/** A random colour: gray level v in [lo, hi], tinted per channel for RGB. */
function color(r: Rng, c: number, lo = 0.05, hi = 0.95): number[] {
  const v = r.uniform(lo, hi);
  if (c === 1) return [v];
  const tint = r.uniform(0, 0.35);
  return [0, 1, 2].map(() => Math.min(1, Math.max(0, v + r.uniform(-tint, tint))));
}

/** Minimum gray-level difference between a figure's parts and the background around it. */
const MIN_CONTRAST = 0.25;

/** Mean gray level of the canvas in a square of half-size r around (x, y). */
function localMean(cv: Canvas, x: number, y: number, r: number): number {
  let s = 0, n = 0;
  const x0 = Math.max(0, Math.floor(x - r)), x1 = Math.min(cv.w - 1, Math.ceil(x + r));
  const y0 = Math.max(0, Math.floor(y - r)), y1 = Math.min(cv.h - 1, Math.ceil(y + r));
  for (let yy = y0; yy <= y1; yy++) {
    for (let xx = x0; xx <= x1; xx++) {
      for (let k = 0; k < cv.c; k++) s += cv.px[(yy * cv.w + xx) * cv.c + k];
      n += cv.c;
    }
  }
  return n ? s / n : 0.5;
}

/** A colour whose gray level differs from `bg` by at least MIN_CONTRAST. */
function contrasting(r: Rng, c: number, bg: number, lo = 0.05, hi = 0.95): number[] {
  for (let t = 0; t < 8; t++) {
    const col = color(r, c, lo, hi);
    const g = col.reduce((a, b) => a + b, 0) / col.length;
    if (Math.abs(g - bg) >= MIN_CONTRAST) return col;
  }
  const v = bg > 0.5 ? Math.max(0, bg - MIN_CONTRAST - 0.1) : Math.min(1, bg + MIN_CONTRAST + 0.1);
  return Array(c).fill(v);
}

/** A colour with fine texture (noise) on top, for clothing, fur and bark. */
function textured(r: Rng, base: number[], amount: number): Paint {
  const s1 = r.uniform(0.3, 1.5), s2 = r.uniform(0.3, 1.5), ph = r.uniform(0, 6.28);
  return (x, y, ch) =>
    base[ch % base.length] + amount * Math.sin(x * s1 + ph) * Math.sin(y * s2 - ph);
}

function background(cv: Canvas, r: Rng): void {
  const { w, h, c } = cv;
  const noise = valueNoise(r, w, h, r.int(2, 5), r.int(2, 4));
  const base = color(r, c, 0.15, 0.85);
  const contrast = r.uniform(0.15, 0.7);
  const gAng = r.uniform(0, Math.PI * 2), gAmt = r.uniform(0, 0.4);
  const pattern = r.int(0, 3); // 0 none, 1 stripes, 2 bricks, 3 horizon
  const pAng = r.uniform(0, Math.PI), pFreq = r.uniform(0.15, 0.8), pAmt = r.uniform(0.04, 0.15);
  const horizon = r.uniform(0.3, 0.8) * h, ground = r.uniform(-0.3, 0.3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = (noise[y * w + x] - 0.5) * contrast;
      v += gAmt * ((x / w - 0.5) * Math.cos(gAng) + (y / h - 0.5) * Math.sin(gAng));
      if (pattern === 1) {
        v += pAmt * Math.sign(Math.sin((x * Math.cos(pAng) + y * Math.sin(pAng)) * pFreq));
      } else if (pattern === 2) {
        const row = Math.floor(y * pFreq * 0.5);
        const mortar = (y * pFreq * 0.5) % 1 < 0.15 || ((x * pFreq * 0.25 + row * 0.5) % 1) < 0.08;
        v += mortar ? -pAmt : 0;
      } else if (pattern === 3 && y > horizon) v += ground;
      const o = (y * w + x) * c;
      for (let k = 0; k < c; k++) cv.px[o + k] = base[k] + v;
    }
  }
  // low-contrast clutter
  for (let i = r.int(0, 6); i > 0; i--) {
    const col = color(r, c, 0.1, 0.9);
    // a box (half-sizes up to 20) or an ellipse (radii up to 15), drawn translucent
    const isBox = r.next() < 0.5;
    const draw = isBox ? box : ellipse, big = isBox ? 20 : 15;
    draw(
      cv,
      r.uniform(0, w),
      r.uniform(0, h),
      r.uniform(2, big),
      r.uniform(2, big),
      r.uniform(0, 3),
      col,
      r.uniform(0.2, 0.6),
    );
  }
}

interface FigureParts {
  head: boolean;
  arms: boolean;
  legs: boolean;
  torso: boolean;
}

/**
 * Draws an articulated figure of height `ht` whose box centre is (cx, cy);
 * returns its bounding box area in pixels (before clipping to the image).
 */
function figure(
  cv: Canvas,
  r: Rng,
  cx: number,
  cy: number,
  ht: number,
  parts: FigureParts,
): number {
  const c = cv.c;
  // clothing and skin stand out from the local background by at least MIN_CONTRAST (as people in photos mostly do)
  const bg = localMean(cv, cx, cy, ht / 2);
  const skin = contrasting(r, c, bg, 0.2, 0.95),
    shirt = contrasting(r, c, bg),
    pants = contrasting(r, c, bg);
  const shirtP = r.next() < 0.5 ? textured(r, shirt, r.uniform(0.02, 0.15)) : shirt;
  const pantsP = r.next() < 0.5 ? textured(r, pants, r.uniform(0.02, 0.12)) : pants;
  const pose = r.next();
  const lying = pose < 0.08,
    sitting = pose >= 0.08 && pose < 0.2,
    raised = pose >= 0.2 && pose < 0.32;
  const tilt = lying
    ? (r.next() < 0.5 ? 1 : -1) * Math.PI / 2 + r.uniform(-0.2, 0.2)
    : r.normal() * 0.12;
  const u = ht; // unit: standing height
  const torsoLen = 0.3 * u, torsoW = r.uniform(0.09, 0.13) * u, headR = r.uniform(0.075, 0.095) * u;
  const armW = r.uniform(0.035, 0.055) * u, legW = r.uniform(0.045, 0.07) * u;
  const upperArm = 0.16 * u, foreArm = 0.15 * u, thigh = 0.23 * u, shin = 0.23 * u;
  // body frame: y down; rotate by tilt about the centre
  const ct = Math.cos(tilt), st = Math.sin(tilt);
  const pts: [number, number][] = [];
  const P = (x: number, y: number): [number, number] => {
    const p: [number, number] = [cx + x * ct - y * st, cy + x * st + y * ct];
    pts.push(p);
    return p;
  };
  const top = -0.5 * u + (sitting ? 0.12 * u : 0);
  const neck = P(0, top + 2 * headR + 0.02 * u);
  const hip = P(r.normal() * 0.01 * u, top + 2 * headR + 0.02 * u + torsoLen);
  const limb = (
    ox: number,
    oy: number,
    a1: number,
    l1: number,
    a2: number,
    l2: number,
    wd: number,
    p: Paint,
  ) => {
    const j0 = P(ox, oy);
    const j1 = P(ox + Math.sin(a1) * l1, oy + Math.cos(a1) * l1);
    const j2 = P(
      ox + Math.sin(a1) * l1 + Math.sin(a2) * l2,
      oy + Math.cos(a1) * l1 + Math.cos(a2) * l2,
    );
    if (!p) return;
    capsule(cv, j0[0], j0[1], j1[0], j1[1], wd, p);
    capsule(cv, j1[0], j1[1], j2[0], j2[1], wd * 0.9, p);
  };
  const hipY = top + 2 * headR + 0.02 * u + torsoLen;
  const stride = sitting ? 0 : r.uniform(0, 0.45);
  if (parts.legs) {
    for (const side of [-1, 1]) {
      const a1 = sitting
        ? side * 0.2 + Math.PI / 2 * (r.next() < 0.5 ? 1 : -1) * 0.9
        : side * stride + r.normal() * 0.05;
      const a2 = sitting ? r.uniform(-0.2, 0.2) : a1 + r.uniform(-0.35, 0.1);
      limb(side * torsoW * 0.5, hipY - legW * 0.5, a1, thigh, a2, shin, legW, pantsP);
    }
  }
  if (parts.torso) capsule(cv, neck[0], neck[1], hip[0], hip[1], torsoW, shirtP);
  if (parts.arms) {
    for (const side of [-1, 1]) {
      const a1 = raised ? side * r.uniform(2.2, 3.0) : side * r.uniform(0.05, 0.9);
      const a2 = a1 + side * r.uniform(-0.2, 1.2);
      limb(
        side * torsoW * 0.9,
        top + 2 * headR + 0.05 * u,
        a1,
        upperArm,
        a2,
        foreArm,
        armW,
        shirtP,
      );
    }
  }
  if (parts.head) {
    const hc = P(r.normal() * 0.01 * u, top + headR);
    ellipse(cv, hc[0], hc[1], headR, headR * r.uniform(1.05, 1.25), tilt, skin);
    if (r.next() < 0.6) { // hair or hat
      ellipse(
        cv,
        hc[0] - st * headR * 0.45,
        hc[1] - ct * headR * 0.45,
        headR * 1.02,
        headR * 0.6,
        tilt,
        color(r, c, 0.02, 0.6),
      );
    }
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const bw = Math.max(...xs) - Math.min(...xs) + 2 * Math.max(legW, armW),
    bh = Math.max(...ys) - Math.min(...ys) + 2 * legW;
  return bw * bh;
}

/** Figure height whose (standing) box covers `frac` of the image. */
function heightFor(frac: number, size: number): number {
  return Math.sqrt((frac * size * size) / 0.42);
}

function distractor(cv: Canvas, r: Rng): void {
  const { w, h, c } = cv;
  const kind = r.int(0, 4);
  const x = r.uniform(0, w), y = r.uniform(0, h), s = r.uniform(8, 60);
  const col = color(r, c);
  switch (kind) {
    case 0: { // pole, maybe with a sign
      const wd = r.uniform(0.8, 3);
      capsule(cv, x, y - s, x + r.normal() * 2, y + s, wd, col);
      if (r.next() < 0.4) {
        box(cv, x, y - s, r.uniform(3, 9), r.uniform(2, 6), r.normal() * 0.1, color(r, c));
      }
      break;
    }
    case 1: { // tree
      const bark = textured(r, col, 0.08);
      capsule(cv, x, y, x + r.normal(), y + s * 0.7, r.uniform(1.5, 4), bark);
      const leaf = textured(r, color(r, c), 0.15);
      for (let i = r.int(1, 3); i > 0; i--) {
        ellipse(
          cv,
          x + r.normal() * s * 0.15,
          y - r.uniform(0, s * 0.3),
          s * r.uniform(0.25, 0.45),
          s * r.uniform(0.2, 0.4),
          r.uniform(0, 3),
          leaf,
        );
      }
      break;
    }
    case 2: { // four-legged animal
      const bl = s * 0.5, bh = s * r.uniform(0.15, 0.25), fur = textured(r, col, 0.1);
      const dir = r.next() < 0.5 ? 1 : -1;
      for (const lx of [-0.35, -0.2, 0.2, 0.35]) {
        capsule(
          cv,
          x + lx * bl * 1.6,
          y,
          x + lx * bl * 1.6 + r.normal(),
          y + bh * r.uniform(1.2, 2.2),
          bh * 0.22,
          fur,
        );
      }
      ellipse(cv, x, y, bl * 0.8, bh, 0, fur);
      capsule(
        cv,
        x + dir * bl * 0.7,
        y - bh * 0.3,
        x + dir * bl * 1.0,
        y - bh * 1.1,
        bh * 0.3,
        fur,
      );
      ellipse(cv, x + dir * bl * 1.1, y - bh * 1.2, bh * 0.5, bh * 0.35, dir * 0.3, fur);
      capsule(
        cv,
        x - dir * bl * 0.75,
        y - bh * 0.2,
        x - dir * bl * 1.1,
        y + bh * 0.4,
        bh * 0.12,
        fur,
      );
      break;
    }
    case 3: { // box / crate / sign
      box(
        cv,
        x,
        y,
        s * r.uniform(0.15, 0.5),
        s * r.uniform(0.15, 0.5),
        r.normal() * 0.3,
        r.next() < 0.5 ? textured(r, col, 0.1) : col,
      );
      break;
    }
    default: { // vehicle
      const L = s * 0.6, H = L * r.uniform(0.25, 0.4);
      box(cv, x, y, L, H * 0.5, 0, col);
      box(
        cv,
        x + r.uniform(-0.2, 0.2) * L,
        y - H * 0.7,
        L * r.uniform(0.4, 0.6),
        H * 0.35,
        0,
        color(r, c, 0.05, 0.6),
      );
      const wheel = color(r, c, 0.0, 0.25);
      ellipse(cv, x - L * 0.6, y + H * 0.5, H * 0.38, H * 0.38, 0, wheel);
      ellipse(cv, x + L * 0.6, y + H * 0.5, H * 0.38, H * 0.38, 0, wheel);
    }
  }
}

function occlude(cv: Canvas, r: Rng, cx: number, cy: number, ht: number): void {
  const col = r.next() < 0.5 ? textured(r, color(r, cv.c), 0.1) : color(r, cv.c);
  const side = r.int(0, 3);
  const wd = ht * r.uniform(0.15, 0.45);
  if (side === 0) box(cv, cx, cy + ht * r.uniform(0.1, 0.5), ht, wd * 0.6, r.normal() * 0.1, col); // lower body hidden
  else if (side === 1) {
    box(cv, cx + (r.next() < 0.5 ? -1 : 1) * ht * 0.25, cy, wd * 0.5, ht, r.normal() * 0.1, col);
  } else ellipse(cv, cx + r.normal() * ht * 0.2, cy + r.normal() * ht * 0.2, wd, wd * 0.8, 0, col);
}

/**
 * Renders image `index` of the set into `out` (size*size*channels bytes) and
 * returns its label.
 *
 * @example
 * ```ts
 * import { renderSyntheticPerson } from "./synthetic_person.ts";
 * const a = new Uint8Array(96 * 96), b = new Uint8Array(96 * 96);
 * renderSyntheticPerson(1, 5, 96, 1, a); renderSyntheticPerson(1, 5, 96, 1, b);
 * if (a.join() !== b.join()) throw new Error();
 * ```
 */
export function renderSyntheticPerson(
  seed: number,
  index: number,
  size: number,
  channels: 1 | 3,
  out: Uint8Array,
): number {
  const r = rng(deriveSeed(seed, `synthetic-person/v${GENERATOR_VERSION}/${index}`));
  const label = index % 2 === 0 ? 1 : 0;
  const cv = canvas(size, size, channels);
  background(cv, r);
  const before = r.int(0, 1), after = r.int(0, 1);
  for (let i = 0; i < before; i++) distractor(cv, r);
  if (label === 1) {
    // mostly clearly visible people (4-50 % of the image), some small ones (0.6-3 %)
    const frac = r.next() < 0.97
      ? Math.exp(r.uniform(Math.log(0.04), Math.log(0.5)))
      : Math.exp(r.uniform(Math.log(0.006), Math.log(0.03)));
    const ht = heightFor(frac, size);
    const cx = r.uniform(0.1, 0.9) * size, cy = r.uniform(0.15, 0.85) * size;
    figure(cv, r, cx, cy, ht, { head: true, arms: true, legs: true, torso: true });
    if (r.next() < 0.1) occlude(cv, r, cx, cy, ht);
  } else {
    const hard = r.next();
    const cx = r.uniform(0.1, 0.9) * size, cy = r.uniform(0.15, 0.85) * size;
    if (hard < 0.03) { // headless figure
      figure(cv, r, cx, cy, heightFor(Math.exp(r.uniform(Math.log(0.01), Math.log(0.4))), size), {
        head: false,
        arms: true,
        legs: true,
        torso: true,
      });
    } else if (hard < 0.05) { // loose limbs / partial figure
      const ht = heightFor(Math.exp(r.uniform(Math.log(0.01), Math.log(0.3))), size);
      figure(cv, r, cx, cy, ht, { head: false, arms: r.next() < 0.5, legs: true, torso: false });
    } else if (hard < 0.08) { // a person too small to count (< 0.5 % of the image)
      figure(cv, r, cx, cy, heightFor(r.uniform(0.001, 0.004), size), {
        head: true,
        arms: true,
        legs: true,
        torso: true,
      });
    }
  }
  for (let i = 0; i < after; i++) distractor(cv, r);
  // lighting: smooth illumination field and gamma; then blur and sensor noise
  const light = valueNoise(r, size, size, 2, 1);
  const gain = r.uniform(0.65, 1.25), lAmt = r.uniform(0, 0.6), gamma = Math.exp(r.normal() * 0.25);
  blur(cv, r.next() < 0.3 ? 1 : 0);
  const sigma = r.uniform(0.005, 0.07);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const l = gain * (1 - lAmt / 2 + lAmt * light[y * size + x]);
      for (let k = 0; k < channels; k++) {
        const o = (y * size + x) * channels + k;
        let v = Math.pow(Math.min(1, Math.max(0, cv.px[o])), gamma) * l + sigma * r.normal();
        v = Math.min(1, Math.max(0, v));
        out[o] = Math.round(v * 255);
      }
    }
  }
  return label;
}

/**
 * Generates `count` images (images `offset`..`offset+count-1` of the seed's stream).
 *
 * @example
 * ```ts
 * import { generateSyntheticPerson } from "./synthetic_person.ts";
 * const ds = generateSyntheticPerson({ count: 4, seed: 1, size: 32 });
 * if (ds.labels.join() !== "1,0,1,0") throw new Error();
 * ```
 */
export function generateSyntheticPerson(o: SyntheticPersonOptions): Dataset {
  const size = o.size ?? 96, c = o.channels ?? 1, off = o.offset ?? 0;
  const per = size * size * c;
  const images = new Uint8Array(o.count * per), labels = new Uint8Array(o.count);
  for (let i = 0; i < o.count; i++) {
    labels[i] = renderSyntheticPerson(
      o.seed,
      off + i,
      size,
      c,
      images.subarray(i * per, (i + 1) * per),
    );
    if ((i + 1) % 64 === 0 || i + 1 === o.count) o.onProgress?.(i + 1, o.count);
  }
  return {
    name: "synthetic-person",
    shape: [size, size, c],
    classNames: SYNTHETIC_PERSON_CLASSES,
    images,
    labels,
  };
}

/**
 * Generates the set or loads it from the cache under `root` (default `data/`),
 * keyed by generator version, seed, offset, count, size and channels; the
 * manifest records them with a SHA-256 checksum.
 *
 * @example
 * ```ts ignore
 * const train = await loadSyntheticPerson({ count: 8000, seed: 1 });
 * ```
 */
export async function loadSyntheticPerson(
  o: SyntheticPersonOptions,
  root?: string,
): Promise<Dataset> {
  const size = o.size ?? 96, c = o.channels ?? 1, off = o.offset ?? 0;
  const key = `v${GENERATOR_VERSION}-s${o.seed}-o${off}-n${o.count}-${size}x${size}x${c}`;
  const hit = await loadCached("synthetic-person", key, root);
  if (hit) return hit.ds;
  const t0 = performance.now();
  const ds = generateSyntheticPerson(o);
  const seconds = (performance.now() - t0) / 1000;
  await storeCached("synthetic-person", key, ds, {
    generatorVersion: GENERATOR_VERSION,
    seed: o.seed,
    offset: off,
    imagesPerSecond: Math.round(o.count / seconds),
  }, root);
  return ds;
}

/**
 * A tiny anti-aliased rasterizer for procedural images: filled capsules,
 * rotated ellipses and boxes drawn with coverage from signed distances, on
 * Float32 canvases with values in [0, 1].
 * @module
 */

/** A canvas of H x W pixels with C channels (channels last). */
export interface Canvas {
  w: number;
  h: number;
  c: number;
  px: Float32Array;
}

/** A fill: a constant per channel, or a function of the pixel position. */
export type Paint = number[] | ((x: number, y: number, ch: number) => number);

/**
 * Creates a canvas filled with 0.
 *
 * @example
 * ```ts
 * import { canvas } from "./raster.ts";
 * if (canvas(4, 3, 1).px.length !== 12) throw new Error();
 * ```
 */
export function canvas(w: number, h: number, c: number): Canvas {
  return { w, h, c, px: new Float32Array(w * h * c) };
}

function paintAt(p: Paint, x: number, y: number, ch: number): number {
  return typeof p === "function" ? p(x, y, ch) : p[ch % p.length];
}

/** Draws a shape given by its signed distance function over a bounding box. */
function fillSdf(
  cv: Canvas,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  sdf: (x: number, y: number) => number,
  paint: Paint,
  opacity = 1,
): void {
  const xa = Math.max(0, Math.floor(x0 - 1)), xb = Math.min(cv.w - 1, Math.ceil(x1 + 1));
  const ya = Math.max(0, Math.floor(y0 - 1)), yb = Math.min(cv.h - 1, Math.ceil(y1 + 1));
  for (let y = ya; y <= yb; y++) {
    for (let x = xa; x <= xb; x++) {
      const d = sdf(x + 0.5, y + 0.5);
      const a = Math.min(1, Math.max(0, 0.5 - d)) * opacity;
      if (a <= 0) continue;
      const o = (y * cv.w + x) * cv.c;
      for (let k = 0; k < cv.c; k++) cv.px[o + k] += (paintAt(paint, x, y, k) - cv.px[o + k]) * a;
    }
  }
}

/**
 * A filled capsule (segment a-b with radius r): limbs, poles, trunks.
 *
 * @example
 * ```ts
 * import { canvas, capsule } from "./raster.ts";
 * const cv = canvas(10, 10, 1);
 * capsule(cv, 2, 5, 8, 5, 2, [1]);
 * if (cv.px[5 * 10 + 5] !== 1 || cv.px[0] !== 0) throw new Error();
 * ```
 */
export function capsule(
  cv: Canvas,
  ax: number,
  ay: number,
  bx: number,
  by: number,
  r: number,
  paint: Paint,
  opacity = 1,
): void {
  const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy || 1e-9;
  fillSdf(
    cv,
    Math.min(ax, bx) - r,
    Math.min(ay, by) - r,
    Math.max(ax, bx) + r,
    Math.max(ay, by) + r,
    (x, y) => {
      const t = Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2));
      return Math.hypot(x - ax - t * dx, y - ay - t * dy) - r;
    },
    paint,
    opacity,
  );
}

/**
 * A filled ellipse with radii rx, ry rotated by `angle` (approximate distance).
 *
 * @example
 * ```ts
 * import { canvas, ellipse } from "./raster.ts";
 * const cv = canvas(10, 10, 1);
 * ellipse(cv, 5, 5, 3, 2, 0, [1]);
 * if (cv.px[5 * 10 + 5] !== 1) throw new Error();
 * ```
 */
export function ellipse(
  cv: Canvas,
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  angle: number,
  paint: Paint,
  opacity = 1,
): void {
  const c = Math.cos(angle), s = Math.sin(angle), m = Math.max(rx, ry);
  const rmin = Math.min(rx, ry);
  fillSdf(
    cv,
    cx - m,
    cy - m,
    cx + m,
    cy + m,
    (x, y) => {
      const u = ((x - cx) * c + (y - cy) * s) / rx, v = (-(x - cx) * s + (y - cy) * c) / ry;
      return (Math.hypot(u, v) - 1) * rmin;
    },
    paint,
    opacity,
  );
}

/**
 * A filled box of half-sizes hw, hh rotated by `angle`.
 *
 * @example
 * ```ts
 * import { box, canvas } from "./raster.ts";
 * const cv = canvas(10, 10, 1);
 * box(cv, 5, 5, 2, 2, 0, [1]);
 * if (cv.px[5 * 10 + 5] !== 1 || cv.px[0] !== 0) throw new Error();
 * ```
 */
export function box(
  cv: Canvas,
  cx: number,
  cy: number,
  hw: number,
  hh: number,
  angle: number,
  paint: Paint,
  opacity = 1,
): void {
  const c = Math.cos(angle), s = Math.sin(angle), m = Math.hypot(hw, hh);
  fillSdf(
    cv,
    cx - m,
    cy - m,
    cx + m,
    cy + m,
    (x, y) => {
      const u = Math.abs((x - cx) * c + (y - cy) * s) - hw,
        v = Math.abs(-(x - cx) * s + (y - cy) * c) - hh;
      return Math.hypot(Math.max(u, 0), Math.max(v, 0)) + Math.min(Math.max(u, v), 0);
    },
    paint,
    opacity,
  );
}

/**
 * Box blur with integer radius r (separable, edge-clamped).
 *
 * @example
 * ```ts
 * import { blur, canvas } from "./raster.ts";
 * const cv = canvas(3, 1, 1); cv.px.set([0, 3, 0]);
 * blur(cv, 1);
 * if (Math.abs(cv.px[1] - 1) > 1e-6) throw new Error();
 * ```
 */
export function blur(cv: Canvas, r: number): void {
  if (r <= 0) return;
  const { w, h, c, px } = cv;
  const tmp = new Float32Array(px.length);
  const n = 2 * r + 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let d = -r; d <= r; d++) {
          s += px[(y * w + Math.min(w - 1, Math.max(0, x + d))) * c + k];
        }
        tmp[(y * w + x) * c + k] = s / n;
      }
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let d = -r; d <= r; d++) {
          s += tmp[(Math.min(h - 1, Math.max(0, y + d)) * w + x) * c + k];
        }
        px[(y * w + x) * c + k] = s / n;
      }
    }
  }
}

/**
 * Image decoding (JPEG with `jpeg-js`, PNG with `pngjs`), resizing and
 * grayscale conversion, on plain byte arrays.
 * @module
 */
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { Buffer } from "node:buffer";

/** A decoded RGBA image. */
export interface RgbaImage {
  width: number;
  height: number;
  /** width*height*4 bytes. */
  data: Uint8Array;
}

/**
 * Decodes JPEG or PNG bytes (detected by signature); throws an error naming
 * `path` for unknown, corrupt or truncated files.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng({ width: 1, height: 1, data: new Uint8Array([10, 20, 30, 255]) });
 * if (decodeImage(png, "x.png").data[1] !== 20) throw new Error();
 * ```
 */
export function decodeImage(bytes: Uint8Array, path: string): RgbaImage {
  const isJpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8;
  const isPng = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e;
  try {
    if (isJpeg) {
      // jpeg-js decodes a truncated scan without complaint: require the end-of-image marker
      let end = bytes.length - 1;
      while (end > 0 && bytes[end] === 0) end--; // some writers pad with zeros
      if (!(bytes[end - 1] === 0xff && bytes[end] === 0xd9)) {
        throw new Error("truncated (no end-of-image marker)");
      }
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        tolerantDecoding: false,
        maxMemoryUsageInMB: 512,
      });
      return { width: img.width, height: img.height, data: img.data as Uint8Array };
    }
    if (isPng) {
      const img = PNG.sync.read(Buffer.from(bytes));
      return {
        width: img.width,
        height: img.height,
        data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length),
      };
    }
  } catch (e) {
    throw new Error(`${path}: cannot decode image: ${(e as Error).message.split("\n")[0]}`);
  }
  throw new Error(`${path}: not a JPEG or PNG file`);
}

/**
 * Encodes an RGBA image as PNG.
 *
 * @example
 * ```ts
 * import { encodePng } from "./image.ts";
 * const b = encodePng({ width: 2, height: 1, data: new Uint8Array(8) });
 * if (b[1] !== 0x50) throw new Error();
 * ```
 */
export function encodePng(img: RgbaImage): Uint8Array {
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length);
  return new Uint8Array(PNG.sync.write(png, { colorType: 6 }));
}

/**
 * Encodes an RGB(A) image as baseline JPEG (for test fixtures and previews).
 *
 * @example
 * ```ts
 * import { encodeJpeg } from "./image.ts";
 * const b = encodeJpeg({ width: 8, height: 8, data: new Uint8Array(256) }, 90);
 * if (b[0] !== 0xff || b[1] !== 0xd8) throw new Error();
 * ```
 */
export function encodeJpeg(img: RgbaImage, quality = 90): Uint8Array {
  const out = jpeg.encode(
    { width: img.width, height: img.height, data: Buffer.from(img.data) },
    quality,
  );
  return new Uint8Array(out.data);
}

/**
 * Resizes an RGBA image to outW x outH with area averaging (each output
 * pixel is the coverage-weighted mean of the input pixels under it; the same
 * as bilinear for upscaling within a pixel) and converts to `channels` 1
 * (ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B) or 3 (RGB).
 *
 * @example
 * ```ts
 * import { resizeImage } from "./image.ts";
 * const img = { width: 2, height: 1, data: new Uint8Array([0, 0, 0, 255, 200, 200, 200, 255]) };
 * if (resizeImage(img, 1, 1, 1)[0] !== 100) throw new Error();
 * ```
 */
export function resizeImage(
  img: RgbaImage,
  outW: number,
  outH: number,
  channels: 1 | 3,
): Uint8Array {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(outW * outH * channels);
  const sx = w / outW, sy = h / outH;
  const acc = new Float64Array(3);
  for (let oy = 0; oy < outH; oy++) {
    let y0 = oy * sy, y1 = (oy + 1) * sy;
    if (sy < 1) { // upscaling: sample a 1-pixel footprint around the centre
      const c = (oy + 0.5) * sy - 0.5;
      y0 = Math.max(0, c);
      y1 = Math.min(h, y0 + 1);
      y0 = y1 - 1;
    }
    for (let ox = 0; ox < outW; ox++) {
      let x0 = ox * sx, x1 = (ox + 1) * sx;
      if (sx < 1) {
        const c = (ox + 0.5) * sx - 0.5;
        x0 = Math.max(0, c);
        x1 = Math.min(w, x0 + 1);
        x0 = x1 - 1;
      }
      acc.fill(0);
      let wsum = 0;
      for (let y = Math.floor(y0); y < Math.ceil(y1); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        if (wy <= 0) continue;
        for (let x = Math.floor(x0); x < Math.ceil(x1); x++) {
          const wx = Math.min(x + 1, x1) - Math.max(x, x0);
          if (wx <= 0) continue;
          const wgt = wx * wy, p = (y * w + x) * 4;
          acc[0] += wgt * data[p];
          acc[1] += wgt * data[p + 1];
          acc[2] += wgt * data[p + 2];
          wsum += wgt;
        }
      }
      const o = (oy * outW + ox) * channels;
      if (channels === 1) {
        out[o] = Math.round((0.299 * acc[0] + 0.587 * acc[1] + 0.114 * acc[2]) / wsum);
      } else {
        for (let k = 0; k < 3; k++) out[o + k] = Math.round(acc[k] / wsum);
      }
    }
  }
  return out;
}

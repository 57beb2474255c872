/**
 * IDX files (the MNIST / Fashion-MNIST format), optionally gzipped: a big-endian
 * header (magic 0x0000TTDD with type TT = 0x08 for unsigned bytes and DD
 * dimensions, then DD uint32 sizes) followed by the data.
 * @module
 */
import { gunzipSync } from "node:zlib";

/** A parsed unsigned-byte IDX array. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses IDX bytes (gzip is detected by its magic bytes). `expectedDims` (the
 * number of dimensions) is checked; errors name `file`.
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx.ts";
 * const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]);
 * const a = parseIdx(bytes, "labels", 1);
 * if (a.dims.join() !== "2" || a.data.join() !== "7,9") throw new Error();
 * ```
 */
export function parseIdx(bytes: Uint8Array, file: string, expectedDims?: number): IdxArray {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = new Uint8Array(gunzipSync(b));
    } catch (e) {
      throw new Error(`${file}: not a valid gzip file (${(e as Error).message.split("\n")[0]})`);
    }
  }
  if (b.length < 4) throw new Error(`${file}: truncated IDX header (${b.length} bytes)`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = view.getUint32(0);
  const type = (magic >> 8) & 0xff, nd = magic & 0xff;
  if (magic >>> 16 !== 0 || type !== 0x08 || nd < 1 || nd > 4) {
    throw new Error(
      `${file}: wrong IDX magic number 0x${
        magic.toString(16).padStart(8, "0")
      } (expected 0x0000080N for unsigned bytes)`,
    );
  }
  if (expectedDims !== undefined && nd !== expectedDims) {
    throw new Error(`${file}: IDX has ${nd} dimensions, expected ${expectedDims}`);
  }
  if (b.length < 4 + 4 * nd) throw new Error(`${file}: truncated IDX header`);
  const dims = Array.from({ length: nd }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, d) => a * d, 1);
  const start = 4 + 4 * nd;
  if (b.length - start < count) {
    throw new Error(
      `${file}: truncated: header says ${dims.join("x")} = ${count} bytes, file has ${
        b.length - start
      }`,
    );
  }
  if (b.length - start > count) {
    throw new Error(
      `${file}: ${b.length - start - count} unexpected bytes after the ${dims.join("x")} data`,
    );
  }
  return { dims, data: b.subarray(start, start + count) };
}

/**
 * Bit packing of integer codes: element i occupies bits [i*b, (i+1)*b) of
 * the stream, and stream bit k is bit (k mod 8) of byte floor(k / 8)
 * (LSB first). Each element is stored as an unsigned offset from the lowest
 * level (code - qmin); 1-bit codes {-1, +1} are stored as 0 and 1.
 * @module
 */

/**
 * Bytes needed for n codes of b bits.
 *
 * @example
 * ```ts
 * import { packedBytes } from "./pack.ts";
 * if (packedBytes(9, 2) !== 3 || packedBytes(8, 1) !== 1) throw new Error(); // 18 bits -> 3 bytes
 * ```
 */
export function packedBytes(n: number, bits: number): number {
  return Math.ceil((n * bits) / 8);
}

/**
 * Packs codes (integers in [qmin, qmin + 2^b - 1], or {-1, +1} for b = 1).
 *
 * @example
 * ```ts
 * import { packCodes } from "./pack.ts";
 * // 2-bit codes -2, -1, 0, 1 -> offsets 0, 1, 2, 3 -> bits 00 10 01 11 (LSB first) = 0b11100100
 * if (packCodes(Int32Array.from([-2, -1, 0, 1]), 2, -2)[0] !== 0b11100100) throw new Error();
 * ```
 */
export function packCodes(codes: ArrayLike<number>, bits: number, qmin: number): Uint8Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new Error(`pack: bits must be 1-8, got ${bits}`);
  }
  const out = new Uint8Array(packedBytes(codes.length, bits));
  const max = (1 << bits) - 1;
  let bitPos = 0;
  for (let i = 0; i < codes.length; i++) {
    const u = bits === 1 ? (codes[i] > 0 ? 1 : 0) : codes[i] - qmin;
    if (!(u >= 0 && u <= max)) {
      throw new Error(`pack: code ${codes[i]} at ${i} outside [${qmin}, ${qmin + max}]`);
    }
    let v = u, left = bits;
    while (left > 0) {
      const byte = bitPos >> 3, off = bitPos & 7;
      const take = Math.min(left, 8 - off);
      out[byte] |= (v & ((1 << take) - 1)) << off;
      v >>= take;
      left -= take;
      bitPos += take;
    }
  }
  return out;
}

/**
 * Unpacks n codes of b bits (inverse of {@link packCodes}).
 *
 * @example
 * ```ts
 * import { packCodes, unpackCodes } from "./pack.ts";
 * const c = Int32Array.from([3, -4, 0, 1, -1]);
 * if (unpackCodes(packCodes(c, 3, -4), 5, 3, -4).join() !== c.join()) throw new Error();
 * ```
 */
export function unpackCodes(bytes: Uint8Array, n: number, bits: number, qmin: number): Int32Array {
  if (bytes.length < packedBytes(n, bits)) {
    throw new Error(`unpack: ${bytes.length} bytes hold fewer than ${n} codes of ${bits} bits`);
  }
  const out = new Int32Array(n);
  let bitPos = 0;
  for (let i = 0; i < n; i++) {
    let v = 0, got = 0;
    while (got < bits) {
      const byte = bitPos >> 3, off = bitPos & 7;
      const take = Math.min(bits - got, 8 - off);
      v |= ((bytes[byte] >> off) & ((1 << take) - 1)) << got;
      got += take;
      bitPos += take;
    }
    out[i] = bits === 1 ? (v ? 1 : -1) : v + qmin;
  }
  return out;
}

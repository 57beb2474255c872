/**
 * CRC-32 (ISO-HDLC: polynomial 0x04C11DB7 reflected, init and final XOR
 * 0xFFFFFFFF), the checksum of zlib, PNG and gzip.
 * @module
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * Continues a CRC-32 over `bytes` from a previous value (0 to start).
 *
 * @example
 * ```ts
 * import { crc32 } from "./crc32.ts";
 * // the standard check value of CRC-32/ISO-HDLC
 * if (crc32(new TextEncoder().encode("123456789")) !== 0xcbf43926) throw new Error();
 * // in two parts, the same
 * const a = crc32(new TextEncoder().encode("1234"));
 * if (crc32(new TextEncoder().encode("56789"), a) !== 0xcbf43926) throw new Error();
 * ```
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Base64 encoding (standard alphabet), via `node:buffer`; `@std/encoding`
 * would be the drop-in replacement once JSR is reachable.
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * Encodes bytes as base64.
 *
 * @example
 * ```ts
 * import { encodeBase64 } from "./base64.ts";
 * if (encodeBase64(new Uint8Array([104, 105])) !== "aGk=") throw new Error();
 * ```
 */
export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

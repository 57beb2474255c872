/**
 * Checkpoint files: named Float32 arrays with shapes and a JSON header, in one
 * file written atomically: magic "QGTW", uint32 header length, JSON header
 * ({ arrays: [{ name, shape, offset, length }], meta }), then the float32 data
 * (little-endian).
 * @module
 */
import { writeFileAtomic } from "../util/fs.ts";

/** A named array with its shape. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

const MAGIC = [0x51, 0x47, 0x54, 0x57]; // "QGTW"

/**
 * Encodes arrays and metadata to bytes.
 *
 * @example
 * ```ts
 * import { decodeArrays, encodeArrays } from "./checkpoint.ts";
 * const b = encodeArrays([{ name: "w", shape: [2], data: new Float32Array([1, 2]) }], { epoch: 3 });
 * const d = decodeArrays(b, "x");
 * if (d.arrays[0].data[1] !== 2 || d.meta.epoch !== 3) throw new Error();
 * ```
 */
export function encodeArrays(arrays: NamedArray[], meta: Record<string, unknown> = {}): Uint8Array {
  let offset = 0;
  const entries = arrays.map((a) => {
    const e = { name: a.name, shape: a.shape, offset, length: a.data.length };
    offset += a.data.length;
    return e;
  });
  const header = new TextEncoder().encode(JSON.stringify({ arrays: entries, meta }));
  const pad = (4 - ((8 + header.length) % 4)) % 4;
  const start = 8 + header.length + pad;
  const out = new Uint8Array(start + offset * 4);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, header.length + pad, true);
  out.set(header, 8);
  out.fill(0x20, 8 + header.length, start); // pad the JSON with spaces
  const f = new Float32Array(out.buffer, start, offset);
  arrays.forEach((a, i) => f.set(a.data, entries[i].offset));
  return out;
}

/**
 * Decodes bytes written by {@link encodeArrays}; errors name `file`.
 *
 * @example
 * ```ts
 * import { decodeArrays } from "./checkpoint.ts";
 * let msg = "";
 * try { decodeArrays(new Uint8Array(4), "ckpt"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("ckpt:")) throw new Error();
 * ```
 */
export function decodeArrays(
  bytes: Uint8Array,
  file: string,
): { arrays: NamedArray[]; meta: Record<string, unknown> } {
  if (bytes.length < 8 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new Error(`${file}: not a qgt checkpoint`);
  }
  const hlen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  if (8 + hlen > bytes.length) throw new Error(`${file}: truncated checkpoint header`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  const start = 8 + hlen;
  const total = (bytes.length - start) / 4;
  const copy = bytes.slice(start); // aligned copy
  const f = new Float32Array(copy.buffer, 0, Math.floor(total));
  const arrays =
    (header.arrays as { name: string; shape: number[]; offset: number; length: number }[]).map(
      (e) => {
        if (e.offset + e.length > f.length) {
          throw new Error(`${file}: truncated checkpoint data (${e.name})`);
        }
        return { name: e.name, shape: e.shape, data: f.slice(e.offset, e.offset + e.length) };
      },
    );
  return { arrays, meta: header.meta ?? {} };
}

/**
 * Writes a checkpoint atomically.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir(), p = `${dir}/ckpt.qgtw`;
 * await saveCheckpoint(p, [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }], { epoch: 3 });
 * const { arrays, meta } = await loadCheckpoint(p);
 * if (arrays[0].data[1] !== 2 || meta.epoch !== 3) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  arrays: NamedArray[],
  meta: Record<string, unknown>,
): Promise<void> {
  await writeFileAtomic(path, encodeArrays(arrays, meta));
}

/**
 * Reads a checkpoint.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir(), p = `${dir}/ckpt.qgtw`;
 * await saveCheckpoint(p, [{ name: "b", shape: [1], data: new Float32Array([0.5]) }], {});
 * if ((await loadCheckpoint(p)).arrays[0].name !== "b") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadCheckpoint(
  path: string,
): Promise<{ arrays: NamedArray[]; meta: Record<string, unknown> }> {
  return decodeArrays(await Deno.readFile(path), path);
}

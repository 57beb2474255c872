/**
 * Atomic file writes: every result file qgt writes goes to a temporary file in
 * the same directory and is renamed into place, so a killed run never leaves a
 * half-written table, and several processes writing the same file at once
 * leave one of their versions whole (tests/sweep_concurrency_test.ts).
 * @module
 */
import { dirname } from "node:path";

let counter = 0;
// process ids repeat across the hosts of a cluster sharing one run root: add random bits
const PROCESS_TAG = `${Deno.pid}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(16)}`;

/**
 * A temporary name beside `path`, unique to this process and write: several
 * processes (on several hosts) may write the same file at once, each through
 * its own temporary file, and the last rename wins whole.
 */
function tmpName(path: string): string {
  counter++;
  return `${path}.${PROCESS_TAG}.${counter}.tmp`;
}

/**
 * Writes bytes to `path` atomically (temp file + rename), creating parent
 * directories.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * const p = await Deno.makeTempFile();
 * await writeFileAtomic(p, new Uint8Array([1, 2]));
 * if ((await Deno.readFile(p)).length !== 2) throw new Error();
 * await Deno.remove(p);
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Writes text to `path` atomically.
 *
 * @example
 * ```ts
 * import { writeTextAtomic } from "./fs.ts";
 * const p = await Deno.makeTempFile();
 * await writeTextAtomic(p, "a,b\n");
 * if (await Deno.readTextFile(p) !== "a,b\n") throw new Error();
 * await Deno.remove(p);
 * ```
 */
export function writeTextAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(text));
}

/**
 * Writes a value as pretty JSON (2-space indent, trailing newline) atomically.
 *
 * @example
 * ```ts
 * import { writeJsonAtomic } from "./fs.ts";
 * const p = await Deno.makeTempFile();
 * await writeJsonAtomic(p, { a: 1 });
 * if (JSON.parse(await Deno.readTextFile(p)).a !== 1) throw new Error();
 * await Deno.remove(p);
 * ```
 */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeTextAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * True when `path` exists.
 *
 * @example
 * ```ts
 * import { exists } from "./fs.ts";
 * if (!(await exists("/"))) throw new Error();
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

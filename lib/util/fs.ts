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

/** The temporary files this process is writing now (removed by {@link removePendingTemps}). */
const pending = new Set<string>();

/** What a temporary file of {@link writeFileAtomic} is called: `<file>.<pid>-<hex>.<n>.tmp`. */
export const TEMP_FILE: RegExp = /\.\d+-[0-9a-f]+\.\d+\.tmp$/;

/** Set once the process is stopping: no new write starts. */
let stopping = false;

/**
 * Removes the temporary files of writes this process has under way, and lets
 * no new write start: a signal handler calls it before exiting (twice, a
 * moment apart, for a write whose file the system was still creating), so an
 * interrupted write leaves nothing.
 *
 * @example
 * ```ts
 * import { removePendingTemps } from "./fs.ts";
 * removePendingTemps(); // nothing under way: a no-op
 * ```
 */
export function removePendingTemps(): void {
  stopping = true;
  for (const p of pending) {
    try {
      Deno.removeSync(p);
    } catch { /* renamed meanwhile, or not created yet */ }
  }
}

/**
 * Removes the temporary files of interrupted writes below `dir` (a process
 * killed between writing and renaming), recursively; with `olderThanS`, only
 * those not modified for that long (a directory other processes write to at
 * the same time). Returns how many it removed.
 *
 * @example
 * ```ts
 * import { removeStaleTemps } from "./fs.ts";
 * const d = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${d}/a.json.123-abc.1.tmp`, "{");
 * await Deno.writeTextFile(`${d}/a.json`, "{}");
 * if (await removeStaleTemps(d) !== 1) throw new Error();
 * await Deno.remove(d, { recursive: true });
 * ```
 */
export async function removeStaleTemps(dir: string, olderThanS = 0): Promise<number> {
  let removed = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return 0; // no such directory
  }
  for (const e of entries) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) removed += await removeStaleTemps(p, olderThanS);
    else if (e.isFile && TEMP_FILE.test(e.name)) {
      const st = await Deno.stat(p).catch(() => null);
      const age = st?.mtime ? (Date.now() - st.mtime.getTime()) / 1000 : Infinity;
      if (age < olderThanS) continue;
      await Deno.remove(p).then(() => removed++, () => {});
    }
  }
  return removed;
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
  // stopping: the write waits for the exit that is coming, and so never starts
  if (stopping) return new Promise(() => {});
  const tmp = tmpName(path);
  pending.add(tmp);
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  } finally {
    pending.delete(tmp);
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

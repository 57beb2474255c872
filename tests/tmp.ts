/**
 * Temporary directories for tests. Every directory {@link tempDir} makes lives
 * under one root per test module, and the root is removed when the module's
 * tests end (the `unload` event), whether they passed or failed, so a test run
 * leaves nothing behind in the system's temporary directory.
 * @module
 */

let root: string | null = null;

/**
 * A new empty directory, removed with the test module's root at unload.
 *
 * @example
 * ```ts
 * import { tempDir } from "./tmp.ts";
 * const a = await tempDir(), b = await tempDir("x-");
 * if (a === b || !(await Deno.stat(b)).isDirectory) throw new Error();
 * ```
 */
export async function tempDir(prefix?: string): Promise<string> {
  if (root === null) {
    const r = Deno.makeTempDirSync({ prefix: "qgt-test-" });
    root = r;
    addEventListener("unload", () => {
      try {
        Deno.removeSync(r, { recursive: true });
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    });
  }
  return await Deno.makeTempDir({ dir: root, prefix });
}

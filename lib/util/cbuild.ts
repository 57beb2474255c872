/**
 * Builds a C source into a shared library for `Deno.dlopen`, once per
 * machine: cached under `$XDG_CACHE_HOME/qgt/` (or `~/.cache/qgt/`) by the
 * SHA-256 of the whole compile command and of every source file, so an edited
 * source or changed flags build anew and an unchanged one loads at once.
 * @module
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { REPO_ROOT } from "./path.ts";

/** Where built libraries are kept. */
export function buildCacheDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME"), home = Deno.env.get("HOME");
  return xdg
    ? join(xdg, "qgt")
    : home
    ? join(home, ".cache", "qgt")
    : join(REPO_ROOT, "data", ".native");
}

/**
 * The C compiler to use: `$CC`, else `cc`, if it runs; null otherwise.
 *
 * @example
 * ```ts
 * import { findCompiler } from "./cbuild.ts";
 * const cc = await findCompiler();
 * if (cc !== null && typeof cc !== "string") throw new Error();
 * ```
 */
export async function findCompiler(): Promise<string | null> {
  const cc = Deno.env.get("CC") ?? "cc";
  try {
    const r = await new Deno.Command(cc, { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return r.success ? cc : null;
  } catch {
    return null;
  }
}

/**
 * The text of a NUL-terminated C string a loaded library returned ("" for NULL).
 *
 * @example
 * ```ts
 * import { cString } from "./cbuild.ts";
 * if (cString(null) !== "") throw new Error();
 * ```
 */
export function cString(p: Deno.PointerValue): string {
  return p ? new Deno.UnsafePointerView(p).getCString() : "";
}

/** What {@link buildSharedLibrary} compiles. */
export interface SharedLibrarySpec {
  /** The compiler. */
  cc: string;
  /** The source (or sources) compiled into the library, relative to the repository. */
  source: string | string[];
  /** Every file the build depends on (the source and its own headers), relative to the repository. */
  inputs: string[];
  /** Compiler arguments before `-o OUT SOURCE`. */
  args: string[];
  /** Arguments after the source (libraries to link). */
  libs?: string[];
  /** The cached file's name prefix (`libqgt`). */
  name: string;
}

/**
 * The path of the built library, compiling it first unless an identical
 * build is cached. A failed compile throws one line naming the source and
 * the compiler's first message.
 *
 * @example
 * ```ts ignore
 * const path = await buildSharedLibrary({ cc: "cc", source: "runtime/qgt_runtime.c",
 *   inputs: ["runtime/qgt_runtime.c"], args: ["-O2", "-fPIC", "-shared"], name: "libqgt" });
 * ```
 */
export async function buildSharedLibrary(s: SharedLibrarySpec): Promise<string> {
  const libs = s.libs ?? [];
  const h = createHash("sha256").update(JSON.stringify([s.cc, s.args, libs]));
  for (const f of s.inputs) h.update(await Deno.readFile(join(REPO_ROOT, f)));
  const dir = buildCacheDir();
  const lib = join(dir, `${s.name}-${h.digest("hex").slice(0, 16)}.so`);
  if (await Deno.stat(lib).then(() => true, () => false)) return lib;
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${lib}.${Deno.pid}.tmp`;
  const sources = [s.source].flat();
  const out = await new Deno.Command(s.cc, {
    args: [...s.args, "-o", tmp, ...sources.map((f) => join(REPO_ROOT, f)), ...libs],
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(
      `${sources.join(", ")}: ${s.cc} failed: ${
        new TextDecoder().decode(out.stderr).split("\n")[0]
      }`,
    );
  }
  await Deno.rename(tmp, lib);
  return lib;
}

/**
 * oneDNN (Debian's `libdnnl-dev`, the library PyTorch's convolutions run in) through Deno FFI:
 * qgt's shim `native/onednn.c` is built with the system C compiler on first use, cached by
 * its source and compile command (`lib/util/cbuild.ts`), and loaded. {@link loadOneDnn} says
 * exactly which piece is missing when it cannot load: the library `libdnnl.so.2`, the header
 * `oneapi/dnnl/dnnl.h`, or a C compiler.
 * @module
 */
import { buildSharedLibrary, cString, findCompiler } from "../util/cbuild.ts";

const SYMBOLS = {
  qn_init: { parameters: ["i32"], result: "i32" },
  qn_set_threads: { parameters: ["i32"], result: "i32" },
  qn_version: { parameters: [], result: "pointer" },
  qn_isa: { parameters: [], result: "pointer" },
  qn_error: { parameters: [], result: "pointer" },
  qn_last_impl: { parameters: [], result: "pointer" },
  qn_cached: { parameters: [], result: "i32" },
  qn_conv: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  qn_pool: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  qn_gemm: {
    parameters: ["i32", "i32", "i32", "i32", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  qn_bn_act_forward: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  qn_bn_act_backward: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
} as const;

/** The loaded shim. */
export type OneDnnLib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The shim's source files, relative to the repository. */
export const ONEDNN_SOURCES = ["lib/backend/native/onednn.c", "lib/backend/native/bn_act.c"];

/** What loading gives: the library and its facts, or why not. */
export type OneDnn =
  | { ok: true; lib: OneDnnLib; version: string; isa: string; threads: number }
  | { ok: false; why: string };

const HEADER = "/usr/include/oneapi/dnnl/dnnl.h";
const INSTALL = "apt-get install libdnnl-dev";

let loaded: Promise<OneDnn> | null = null;

/** The shared library's file, if the dynamic loader can find it. */
async function findLibrary(): Promise<string | null> {
  for (
    const dir of [
      "/usr/lib/x86_64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/usr/lib",
      "/usr/local/lib",
      ...(Deno.env.get("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean),
    ]
  ) {
    if (await Deno.stat(`${dir}/libdnnl.so.2`).then(() => true, () => false)) return dir;
  }
  return null;
}

async function load(threads: number): Promise<OneDnn> {
  const libDir = await findLibrary();
  if (!libDir) return { ok: false, why: `libdnnl.so.2 not found (${INSTALL})` };
  if (!(await Deno.stat(HEADER).then(() => true, () => false))) {
    return { ok: false, why: `the oneDNN header ${HEADER} not found (${INSTALL})` };
  }
  const cc = await findCompiler();
  if (!cc) {
    return {
      ok: false,
      why: "no C compiler (cc or $CC) to build the oneDNN shim (apt-get install gcc)",
    };
  }
  let path: string;
  try {
    path = await buildSharedLibrary({
      cc,
      source: ONEDNN_SOURCES,
      inputs: ONEDNN_SOURCES,
      // nodelete: threads that end after the library is closed still run its cache destructor
      args: ["-std=gnu11", "-O3", "-fPIC", "-shared", "-fopenmp", "-Wl,-z,nodelete"],
      libs: [`-L${libDir}`, "-l:libdnnl.so.2", "-lm"],
      name: "libqgt-onednn",
    });
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  const lib = Deno.dlopen(path, SYMBOLS).symbols;
  const r = lib.qn_init(threads);
  if (r !== 0) return { ok: false, why: `oneDNN did not start: ${cString(lib.qn_error())}` };
  return {
    ok: true,
    lib,
    version: cString(lib.qn_version()),
    isa: cString(lib.qn_isa()),
    threads,
  };
}

/**
 * Builds (once) and loads the oneDNN shim with `threads` OpenMP threads per kernel; the same
 * promise for every later call ({@link setOneDnnThreads} changes the threads).
 *
 * @example
 * ```ts ignore
 * const d = await loadOneDnn(1);
 * if (!d.ok) console.error(d.why);
 * ```
 */
export function loadOneDnn(threads = 1): Promise<OneDnn> {
  loaded ??= load(threads);
  return loaded;
}

/**
 * Sets the OpenMP threads inside each native kernel (oneDNN's and the BatchNorm kernel's) for
 * the calling thread and for worker threads started afterwards. Training keeps 1 (its threads
 * are data-parallel workers, docs/performance.md); `deno task bench --native` measures others.
 *
 * @example
 * ```ts ignore
 * await setOneDnnThreads(2);
 * ```
 */
export async function setOneDnnThreads(threads: number): Promise<void> {
  const d = await loadOneDnn();
  if (!d.ok) throw new Error(`internal: oneDNN threads without the library (${d.why})`);
  if (d.lib.qn_set_threads(threads) !== 0) {
    throw new Error(`oneDNN threads: expected 1 to 256, got ${threads}`);
  }
}

/**
 * The C runtime (`runtime/qgt_runtime.c`) on the host, through `Deno.dlopen`:
 * built once per machine into a shared library (cached by the source's hash
 * under `$XDG_CACHE_HOME/qgt/` or `~/.cache/qgt/`) when a C compiler is
 * present. It is bit-exact with the TypeScript interpreter and much faster,
 * so exported models are evaluated with it when it is available.
 * @module
 */
import { upgradeQgt } from "../format/model_file.ts";
import { buildSharedLibrary, cString, findCompiler } from "../util/cbuild.ts";

const SYMBOLS = {
  qgt_model_size: { parameters: [], result: "usize" },
  qgt_load: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  qgt_arena_bytes: { parameters: ["buffer"], result: "usize" },
  qgt_activation_bytes: { parameters: ["buffer"], result: "usize" },
  qgt_invoke: {
    parameters: ["buffer", "buffer", "usize", "buffer", "usize", "buffer"],
    result: "i32",
  },
  qgt_predict: { parameters: ["buffer", "buffer"], result: "i32" },
  qgt_num_classes: { parameters: ["buffer"], result: "u32" },
  qgt_error: { parameters: ["buffer"], result: "pointer" },
  qgt_status_name: { parameters: ["i32"], result: "pointer" },
  qgt_kernels: { parameters: [], result: "pointer" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** The runtime's sources, relative to the repository. */
export const RUNTIME_SOURCES = [
  "runtime/qgt_runtime.c",
  "runtime/qgt_runtime.h",
  "runtime/src/errors.c",
  "runtime/src/numbers.c",
  "runtime/src/header.c",
  "runtime/src/weights.c",
  "runtime/src/kernels_dsp.c",
  "runtime/src/requant.c",
  "runtime/src/kernels.c",
  "runtime/src/plan.c",
];

const cached = new Map<string, Promise<Lib | null>>();

/** The C compiler to use: `$CC`, else `cc`, if it runs. */
export { findCompiler };

async function build(flags: string[]): Promise<Lib | null> {
  const cc = await findCompiler();
  if (!cc) return null;
  const lib = await buildSharedLibrary({
    cc,
    source: "runtime/qgt_runtime.c",
    inputs: RUNTIME_SOURCES,
    args: ["-std=c99", "-O2", "-fPIC", "-shared", ...flags],
    name: "libqgt",
  });
  return Deno.dlopen(lib, SYMBOLS);
}

/** Which build of the runtime: `simd: false` is the plain-C reference path (what a microcontroller runs). */
export interface NativeOptions {
  simd?: boolean;
}

/**
 * The C runtime as a library, built on first use; null when no C compiler
 * runs here (callers then use the TypeScript interpreter).
 *
 * @example
 * ```ts ignore
 * const lib = await nativeRuntime();
 * ```
 */
export function nativeRuntime(o: NativeOptions = {}): Promise<Lib | null> {
  const flags = o.simd === false ? ["-DQGT_NO_SIMD"] : [];
  const key = flags.join(" ");
  if (Deno.env.get("QGT_RUNTIME") === "ts") return Promise.resolve(null);
  if (!cached.has(key)) {
    cached.set(
      key,
      build(flags).catch((e) => {
        unavailable = (e as Error).message;
        return null;
      }),
    );
  }
  return cached.get(key)!;
}

let unavailable = "";

/**
 * Why the C runtime is not used, or "" when it is (no C compiler, a failed
 * build, or `QGT_RUNTIME=ts` in the environment).
 *
 * @example
 * ```ts ignore
 * if (!(await nativeRuntime())) console.error(await nativeUnavailable());
 * ```
 */
export async function nativeUnavailable(): Promise<string> {
  if (await nativeRuntime()) return "";
  if (Deno.env.get("QGT_RUNTIME") === "ts") {
    return "QGT_RUNTIME=ts chooses the TypeScript interpreter";
  }
  return unavailable || "no C compiler (cc) here";
}

/** A model loaded into the C runtime. */
export interface NativeModel {
  /** The last layer's int32 accumulators for one int8 image. */
  invoke(input: Int8Array): Int32Array;
  /** The predicted class of one int8 image (exact argmax, ties to the lowest). */
  predict(input: Int8Array): number;
  /** The arena `qgt_invoke` needs: activations plus weight scratch. */
  arenaBytes: number;
  /** The activation region of the arena (planned by tensor lifetimes). */
  activationBytes: number;
  /** The build's kernels: "sse2", or "reference" (the plain C loops; `simd: false`). */
  kernels: string;
}

/** Whether `bytes` start like a model.qgt of version 1-3. */
function isOlderVersion(bytes: Uint8Array): boolean {
  if (bytes.length < 6 || new TextDecoder().decode(bytes.subarray(0, 4)) !== "QGTM") return false;
  const v = bytes[4] | (bytes[5] << 8);
  return v >= 1 && v <= 3;
}

/**
 * Loads model bytes (any version; older ones are upgraded to version 4 first) into the C
 * runtime; a file the runtime rejects is an error naming `file` and the runtime's reason. Null when the runtime is not
 * available here (no C compiler).
 *
 * @example
 * ```ts ignore
 * const m = await loadNative(await Deno.readFile("model.qgt"), "model.qgt");
 * if (m) console.log(m.predict(image));
 * ```
 */
export async function loadNative(
  bytes: Uint8Array,
  file = "model.qgt",
  o: NativeOptions = {},
): Promise<NativeModel | null> {
  const lib = await nativeRuntime(o);
  if (!lib) return null;
  const s = lib.symbols;
  const model = new Uint8Array(Number(s.qgt_model_size()));
  // the C runtime reads version 4 (and judges every other byte itself); files whose preamble
  // says 1-3 reach it upgraded by lib/format/'s parser: the same model, the same integers
  const kept = (isOlderVersion(bytes) ? upgradeQgt(bytes, file) : bytes).slice(); // the model points into these bytes: keep them

  const st = s.qgt_load(model, kept, BigInt(kept.length));
  if (st !== 0) {
    throw new Error(
      `${file}: ${cString(s.qgt_error(model))} (C runtime: ${cString(s.qgt_status_name(st))})`,
    );
  }
  const arena = new Uint8Array(Number(s.qgt_arena_bytes(model)));
  const logits = new Int32Array(s.qgt_num_classes(model));
  const run = (input: Int8Array) => {
    void kept; // the C model points into these bytes: they must live as long as it
    const r = s.qgt_invoke(model, input, BigInt(input.length), arena, BigInt(arena.length), logits);
    if (r !== 0) throw new Error(`${file}: C runtime: ${cString(s.qgt_status_name(r))}`);
  };
  return {
    arenaBytes: arena.length,
    activationBytes: Number(s.qgt_activation_bytes(model)),
    kernels: cString(s.qgt_kernels()),
    invoke(input) {
      run(input);
      return logits.slice();
    },
    predict(input) {
      run(input);
      return s.qgt_predict(model, logits);
    },
  };
}

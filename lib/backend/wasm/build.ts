/**
 * `deno task kernels`: compiles qgt's own wasm kernels (`lib/backend/wasm/*.c`)
 * with Debian's clang and lld: wasm32, SIMD, -O3, no libc, no contraction of
 * multiply-adds (the kernels must give tfjs's float32 bits), memory imported.
 * The binaries are committed, so training needs no compiler;
 * `tests/quant_test.ts` rebuilds them when clang and wasm-ld are present and
 * checks the committed bytes are what this source gives.
 * @module
 */
import { parseFlags, runMain, UsageError } from "../../util/cli.ts";

/** The kernels: source and exported functions. */
export const KERNELS: { src: string; exports: string[] }[] = [
  { src: "fake_quant.c", exports: ["qgt_max_scale", "qgt_mse_scale", "qgt_fake_quant"] },
  {
    src: "bn_act.c",
    exports: ["qgt_bn_center", "qgt_bn_norm_act", "qgt_bn_act_grad", "qgt_bn_input_grad"],
  },
  {
    src: "conv_grad.c",
    exports: [
      "qgt_dw_filter_grad",
      "qgt_maxpool_grad",
      "qgt_maxpool_grad_tfjs",
      "qgt_pw_filter_grad",
      "qgt_conv_filter_grad",
    ],
  },
];

/**
 * The ids of a wasm binary's top-level sections, in order (11 is data, 12
 * data count). The kernels that run on tfjs's memory must have no data: it
 * would be copied into tfjs's heap when they are instantiated.
 *
 * @example
 * ```ts
 * import { wasmSections } from "./build.ts";
 * // magic, version, then a type section of 1 byte (0x01 0x01 0x00)
 * const b = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 1, 0]);
 * if (wasmSections(b).join() !== "1") throw new Error();
 * ```
 */
export function wasmSections(bytes: Uint8Array): number[] {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73) {
    throw new Error("not a wasm binary");
  }
  const ids: number[] = [];
  let p = 8;
  while (p < bytes.length) {
    const id = bytes[p++];
    let size = 0, shift = 0, b: number;
    do {
      if (p >= bytes.length) throw new Error("truncated wasm section header");
      b = bytes[p++];
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    if (p + size > bytes.length) throw new Error("truncated wasm section");
    ids.push(id);
    p += size;
  }
  return ids;
}

/** clang's arguments to build `src` (in this folder) into `out`. */
export function clangArgs(src: string, exports: string[], out: string): string[] {
  return [
    "--target=wasm32",
    "-O3",
    "-msimd128",
    "-ffp-contract=off",
    "-nostdlib",
    "-fno-builtin", // no memset calls for the zeroing loops: there is no libc
    "-Wall",
    "-Werror",
    "-Wl,--no-entry",
    "-Wl,--import-memory",
    "-Wl,--export=__heap_base",
    ...exports.map((e) => `-Wl,--export=${e}`),
    "-o",
    out,
    new URL(src, import.meta.url).pathname,
  ];
}

/** Builds every kernel into `dir` (default: beside the sources); throws with clang's message. */
export async function buildKernels(dir?: string): Promise<string[]> {
  const outs: string[] = [];
  for (const k of KERNELS) {
    const name = k.src.replace(/\.c$/, ".wasm");
    const out = dir ? `${dir}/${name}` : new URL(name, import.meta.url).pathname;
    const r = await new Deno.Command("clang", { args: clangArgs(k.src, k.exports, out) }).output();
    if (!r.success) {
      throw new Error(`clang ${k.src}: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
    outs.push(out);
  }
  return outs;
}

if (import.meta.main) {
  await runMain(async () => {
    const usage = "usage: deno task kernels";
    if (parseFlags(Deno.args, {}, usage).positionals.length) throw new UsageError(usage);
    for (const out of await buildKernels()) console.log(`built ${out}`);
  });
}

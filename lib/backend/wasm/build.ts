/**
 * `deno task kernels`: compiles qgt's own wasm kernels (`lib/backend/wasm/*.c`)
 * with Debian's clang and lld: wasm32, SIMD, -O3, no libc, no contraction of
 * multiply-adds (the kernels must give tfjs's float32 bits), memory imported.
 * The binaries are committed, so training needs no compiler;
 * `tests/quant_test.ts` rebuilds them when clang and wasm-ld are present and
 * checks the committed bytes are what this source gives.
 * @module
 */

/** The kernels: source and exported functions. */
export const KERNELS: { src: string; exports: string[] }[] = [
  { src: "fake_quant.c", exports: ["qgt_max_scale", "qgt_mse_scale", "qgt_fake_quant"] },
  {
    src: "bn_act.c",
    exports: ["qgt_bn_center", "qgt_bn_norm_act", "qgt_bn_act_grad", "qgt_bn_input_grad"],
  },
];

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
  try {
    for (const out of await buildKernels()) console.log(`built ${out}`);
  } catch (e) {
    console.error(`qgt: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

/**
 * qgt's own wasm kernels for convolution and pooling gradients
 * (`wasm/conv_grad.c`), in place on tfjs-backend-wasm's memory. Two kinds:
 * the default path's (the pointwise and regular convolution filter gradients,
 * and tfjs's max-pooling gradient, each giving the bits of what it replaces),
 * and the `"qgt"` set (the depthwise filter gradient and a max-pooling
 * gradient with its own tie rule), which sum in another order than the tfjs-op
 * versions of `grad_math.ts`, so they run only when a training run selects
 * them (`train.gradKernels: "qgt"`, see {@link setGradKernels});
 * `tests/backend_grad_test.ts` checks every one against tfjs's cpu backend,
 * and the default path's against the bits of the kernels they replace.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { onBackendMemory, type WasmBackend } from "./wasm_memory.ts";

/** Which implementation the wasm backend's replaceable gradient kernels use. */
export type GradKernels = "tfjs" | "qgt";

/** Names of {@link GradKernels}, for validating experiments. */
export const GRAD_KERNELS: readonly GradKernels[] = ["tfjs", "qgt"];

let mode: GradKernels = "tfjs";
let calls = 0;

/** How many gradients the wasm kernels computed in this thread (for tests). */
export function gradKernelCalls(): number {
  return calls;
}

/**
 * Selects the gradient kernels of this thread's wasm backend: `"tfjs"` (the
 * default; tfjs ops, the numbers of every run before this option) or `"qgt"`
 * (the faster wasm kernels of `conv_grad.c`).
 *
 * @example
 * ```ts
 * import { gradKernels, setGradKernels } from "./conv_grad_kernel.ts";
 * setGradKernels("qgt");
 * if (gradKernels() !== "qgt") throw new Error();
 * setGradKernels("tfjs");
 * ```
 */
export function setGradKernels(m: GradKernels): void {
  if (!GRAD_KERNELS.includes(m)) {
    throw new Error(
      `gradKernels: expected one of ${GRAD_KERNELS.join(", ")}, got ${JSON.stringify(m)}`,
    );
  }
  mode = m;
}

/** The selected gradient kernels. */
export function gradKernels(): GradKernels {
  return mode;
}

interface Exports {
  qgt_dw_filter_grad(x: number, dy: number, ...geomAndOut: number[]): void;
  qgt_maxpool_grad(x: number, dy: number, ...geomAndOut: number[]): void;
  qgt_maxpool_grad_tfjs(x: number, dy: number, ...geomAndOut: number[]): void;
  qgt_pw_filter_grad(x: number, dy: number, p: number, cin: number, cout: number, dw: number): void;
  qgt_conv_filter_grad(x: number, dy: number, ...geomAndOut: number[]): void;
}

type ConvInfo = tf.backend_util.Conv2DInfo;

const cache = new WeakMap<object, { exports: Exports; at: (t: tf.TensorInfo) => number }>();

function kernels(be: WasmBackend) {
  let k = cache.get(be);
  if (!k) {
    const m = onBackendMemory<Exports>(be, "conv_grad.wasm");
    if (!m) return null;
    cache.set(be, k = m);
  }
  return k;
}

/** Whether the wasm kernels handle this depthwise convolution (multiplier 1, no dilation). */
function handles(ci: ConvInfo): boolean {
  return ci.dilationHeight === 1 && ci.dilationWidth === 1 &&
    ci.outChannels === ci.inChannels && ci.dataFormat === "channelsLast";
}

const geometry = (ci: ConvInfo) => [
  ci.batchSize,
  ci.inHeight,
  ci.inWidth,
  ci.inChannels,
  ci.outHeight,
  ci.outWidth,
  ci.filterHeight,
  ci.filterWidth,
  ci.strideHeight,
  ci.strideWidth,
  ci.padInfo.top,
  ci.padInfo.left,
];

/**
 * Runs kernel `name` of `conv_grad.wasm` on two input tensors and the
 * geometry of `ci` into a new float32 tensor of `shape`, or returns null when
 * `ok` is false or the kernel belongs to the `"qgt"` set (`qgtOnly`) and
 * that set is not selected.
 */
function run(
  name: "qgt_dw_filter_grad" | "qgt_maxpool_grad" | "qgt_maxpool_grad_tfjs",
  backend: unknown,
  [a, b]: [tf.TensorInfo, tf.TensorInfo],
  ci: ConvInfo,
  shape: number[],
  ok: boolean,
  qgtOnly = true,
): tf.TensorInfo | null {
  if ((qgtOnly && mode !== "qgt") || !ok) return null;
  const be = backend as WasmBackend;
  const k = kernels(be);
  if (!k) return null;
  const out = be.makeOutput(shape, "float32");
  k.exports[name](k.at(a), k.at(b), ...geometry(ci), k.at(out));
  calls++;
  return out;
}

const inputShape = (ci: ConvInfo) => [ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels];

/**
 * dL/dW of a depthwise convolution by the wasm kernel, or null when the
 * `"qgt"` kernels are not selected or do not apply.
 */
export function depthwiseFilterGradKernel(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  ci: ConvInfo,
): tf.TensorInfo | null {
  const shape = [ci.filterHeight, ci.filterWidth, ci.inChannels, 1];
  return run("qgt_dw_filter_grad", backend, [x, dy], ci, shape, handles(ci));
}

/**
 * dL/dx of max pooling by a wasm kernel: with the `"qgt"` kernels, each
 * window's gradient to the first position of its maximum
 * (`qgt_maxpool_grad`); otherwise tfjs-backend-wasm's own MaxPoolGrad bit for
 * bit, quirks included (`qgt_maxpool_grad_tfjs`, several times faster). Null
 * for dilated pooling (the stock kernel then runs).
 */
export function maxPoolGradKernel(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  pi: ConvInfo,
): tf.TensorInfo | null {
  const ok = pi.dilationHeight === 1 && pi.dilationWidth === 1;
  const name = mode === "qgt" ? "qgt_maxpool_grad" : "qgt_maxpool_grad_tfjs";
  return run(name, backend, [x, dy], pi, inputShape(pi), ok, false);
}

/**
 * dL/dW of a 1x1, stride-1, unpadded convolution by the wasm kernel
 * (`qgt_pw_filter_grad`: register-blocked, 3-13x faster than the matrix
 * product it replaces), whatever kernels are selected: it sums in the same
 * order as that product, so it gives the same bits (tested). Null when it
 * does not apply.
 */
export function pointwiseFilterGradKernel(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  ci: ConvInfo,
): tf.TensorInfo | null {
  const ok = ci.filterHeight === 1 && ci.filterWidth === 1 && ci.strideHeight === 1 &&
    ci.strideWidth === 1 && ci.dilationHeight === 1 && ci.dilationWidth === 1 &&
    !ci.padInfo.top && !ci.padInfo.left && ci.inHeight === ci.outHeight &&
    ci.inWidth === ci.outWidth && ci.dataFormat === "channelsLast";
  if (!ok) return null;
  const be = backend as WasmBackend;
  const k = kernels(be);
  if (!k) return null;
  const p = ci.batchSize * ci.outHeight * ci.outWidth;
  const dw = be.makeOutput([1, 1, ci.inChannels, ci.outChannels], "float32");
  k.exports.qgt_pw_filter_grad(k.at(x), k.at(dy), p, ci.inChannels, ci.outChannels, k.at(dw));
  return dw;
}

/**
 * dL/dW of a regular convolution with a kernel larger than 1x1 (no dilation)
 * by the wasm kernel (`qgt_conv_filter_grad`: blocks of 4 x 8 channels in
 * registers), whatever kernels are selected: it sums each output over kernel
 * rows, columns and then the batch, as the XNNPACK convolution of
 * `grad_math.ts` it replaces does, so it gives the same bits (tested). Null
 * when it does not apply.
 */
export function convFilterGradKernel(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  ci: ConvInfo,
): tf.TensorInfo | null {
  const ok = (ci.filterHeight > 1 || ci.filterWidth > 1) && ci.dilationHeight === 1 &&
    ci.dilationWidth === 1 && ci.dataFormat === "channelsLast";
  if (!ok) return null;
  const be = backend as WasmBackend;
  const k = kernels(be);
  if (!k) return null;
  const dw = be.makeOutput(
    [ci.filterHeight, ci.filterWidth, ci.inChannels, ci.outChannels],
    "float32",
  );
  k.exports.qgt_conv_filter_grad(k.at(x), k.at(dy), ...geometry(ci), ci.outChannels, k.at(dw));
  return dw;
}

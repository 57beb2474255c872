/**
 * Depthwise-convolution and max-pooling gradients as qgt's own wasm kernels
 * (`wasm/conv_grad.c`), in place on tfjs-backend-wasm's memory. They sum in
 * a different order than the tfjs-op versions of `grad_math.ts` (and break
 * max-pooling ties differently from tfjs's kernel), so they are used only when
 * a training run selects them (`train.gradKernels: "qgt"`,
 * see {@link setGradKernels}); `tests/backend_grad_test.ts` checks them
 * against tfjs's cpu backend like every gradient kernel.
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
  qgt_dw_input_grad(dy: number, filter: number, ...geomAndOut: number[]): void;
  qgt_maxpool_grad(x: number, dy: number, ...geomAndOut: number[]): void;
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
 * dL/dW of a depthwise convolution by the wasm kernel, or null when the
 * `"qgt"` kernels are not selected or do not apply.
 */
export function depthwiseFilterGradKernel(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  ci: ConvInfo,
): tf.TensorInfo | null {
  if (mode !== "qgt" || !handles(ci)) return null;
  const be = backend as WasmBackend;
  const k = kernels(be);
  if (!k) return null;
  const dw = be.makeOutput([ci.filterHeight, ci.filterWidth, ci.inChannels, 1], "float32");
  k.exports.qgt_dw_filter_grad(k.at(x), k.at(dy), ...geometry(ci), k.at(dw));
  calls++;
  return dw;
}

/**
 * dL/dx of a depthwise convolution by the wasm kernel, or null when the
 * `"qgt"` kernels are not selected or do not apply.
 */
export function depthwiseInputGradKernel(
  backend: unknown,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  ci: ConvInfo,
): tf.TensorInfo | null {
  if (mode !== "qgt" || !handles(ci)) return null;
  const be = backend as WasmBackend;
  const k = kernels(be);
  if (!k) return null;
  const dx = be.makeOutput([ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels], "float32");
  k.exports.qgt_dw_input_grad(k.at(dy), k.at(filter), ...geometry(ci), k.at(dx));
  calls++;
  return dx;
}

/**
 * dL/dx of max pooling by the wasm kernel (each window's gradient to the
 * first position of its maximum), or null when the `"qgt"` kernels are not
 * selected or do not apply.
 */
export function maxPoolGradKernel(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  pi: ConvInfo,
): tf.TensorInfo | null {
  if (mode !== "qgt" || pi.dilationHeight !== 1 || pi.dilationWidth !== 1) return null;
  const be = backend as WasmBackend;
  const k = kernels(be);
  if (!k) return null;
  const dx = be.makeOutput([pi.batchSize, pi.inHeight, pi.inWidth, pi.inChannels], "float32");
  k.exports.qgt_maxpool_grad(k.at(x), k.at(dy), ...geometry(pi), k.at(dx));
  calls++;
  return dx;
}

/**
 * The native backend's start-up self-check: one small problem of each kernel kind (dense,
 * strided and padded convolutions; depthwise; each forward, input-gradient and weight-gradient;
 * a matrix product with a fused bias and ReLU6; max and average pooling, average pooling's
 * gradient) run by oneDNN and by the wasm kernels it replaces, on the same random inputs
 * (max pooling's gradient is checked against tfjs's cpu backend in the tests: the wasm kernel
 * drops the gradient of windows whose maximum is <= 0, which random inputs have). A relative error above 1e-4 means the native kernels
 * are not to be trusted here, and training falls back to wasm.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { nativeCalls, replacedKernel } from "./native_kernels.ts";

/** One check: a kernel, its inputs' shapes and attributes. */
interface Case {
  kernel: string;
  inputs: Record<string, number[]>;
  attrs: Record<string, unknown>;
}

const CASES: Case[] = [
  {
    kernel: "Conv2D",
    inputs: { x: [2, 7, 6, 3], filter: [3, 3, 3, 5] },
    attrs: { strides: 2, pad: "same", dataFormat: "NHWC", dilations: 1 },
  },
  {
    kernel: "FusedConv2D",
    inputs: { x: [2, 5, 5, 4], filter: [1, 1, 4, 6], bias: [6] },
    attrs: { strides: 1, pad: "valid", dataFormat: "NHWC", dilations: 1, activation: "relu6" },
  },
  {
    kernel: "DepthwiseConv2dNative",
    inputs: { x: [2, 6, 7, 4], filter: [3, 3, 4, 1] },
    attrs: { strides: 1, pad: "same", dataFormat: "NHWC", dilations: 1 },
  },
  {
    kernel: "Conv2DBackpropInput",
    inputs: { dy: [2, 4, 3, 5], filter: [3, 3, 3, 5] },
    attrs: { strides: 2, pad: "same", dataFormat: "NHWC", inputShape: [2, 7, 6, 3] },
  },
  {
    kernel: "Conv2DBackpropFilter",
    inputs: { x: [2, 7, 6, 3], dy: [2, 4, 3, 5] },
    attrs: { strides: 2, pad: "same", dataFormat: "NHWC", filterShape: [3, 3, 3, 5] },
  },
  {
    kernel: "DepthwiseConv2dNativeBackpropInput",
    inputs: { dy: [2, 3, 4, 4], filter: [3, 3, 4, 1] },
    attrs: { strides: 2, pad: "same", dilations: 1, inputShape: [2, 6, 7, 4] },
  },
  {
    kernel: "DepthwiseConv2dNativeBackpropFilter",
    inputs: { x: [2, 6, 7, 4], dy: [2, 3, 4, 4] },
    attrs: { strides: 2, pad: "same", dilations: 1, filterShape: [3, 3, 4, 1] },
  },
  {
    kernel: "_FusedMatMul",
    inputs: { a: [1, 5, 7], b: [1, 7, 3], bias: [3] },
    attrs: { transposeA: false, transposeB: false, activation: "relu6" },
  },
  {
    kernel: "BatchMatMul",
    inputs: { a: [1, 7, 5], b: [1, 3, 7] },
    attrs: { transposeA: true, transposeB: true },
  },
  {
    kernel: "MaxPool",
    inputs: { x: [2, 7, 6, 3] },
    attrs: { filterSize: 3, strides: 2, pad: "same" },
  },
  {
    kernel: "AvgPool",
    inputs: { x: [2, 6, 6, 3] },
    attrs: { filterSize: 2, strides: 2, pad: "valid" },
  },
  {
    kernel: "AvgPoolGrad",
    inputs: { dy: [2, 3, 3, 3], input: [2, 6, 6, 3] },
    attrs: { filterSize: 2, strides: 2, pad: "valid" },
  },
];

/** Largest |a - b| / (max |b| + 1e-6) over the two outputs. */
function relError(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 1e-6;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return a.length === b.length ? err / scale : Infinity;
}

/**
 * Runs every case through the registered (native) kernel and the one it replaced; returns ""
 * when all agree within 1e-4, else what differs. The wasm backend must be active.
 *
 * @example
 * ```ts ignore
 * const why = nativeSelfCheck();
 * ```
 */
export function nativeSelfCheck(): string {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  for (const c of CASES) {
    const native = tf.getKernel(c.kernel, "wasm")?.kernelFunc;
    const stock = replacedKernel(c.kernel);
    if (!native || !stock) return `${c.kernel}: no kernel`;
    const inputs = Object.fromEntries(
      Object.entries(c.inputs).map(([k, shape]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        return [k, tf.tensor(Float32Array.from({ length: n }, rnd), shape)];
      }),
    );
    const run = (f: tf.KernelFunc) => {
      const out = f({ inputs, attrs: c.attrs, backend: tf.backend() } as never) as tf.TensorInfo;
      const t = tf.engine().makeTensorFromTensorInfo(out);
      const v = t.dataSync() as Float32Array;
      t.dispose();
      return v;
    };
    const before = nativeCalls.get(c.kernel)?.calls ?? 0;
    const got = run(native);
    if ((nativeCalls.get(c.kernel)?.calls ?? 0) === before) {
      return `${c.kernel}: the native kernel declined the check's shapes`;
    }
    const err = relError(got, run(stock));
    Object.values(inputs).forEach((t) => t.dispose());
    if (!(err <= 1e-4)) {
      return `${c.kernel}: relative error ${err.toExponential(2)} against the wasm kernel`;
    }
  }
  return "";
}

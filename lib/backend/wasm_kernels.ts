/**
 * Registers the gradient kernels the tfjs wasm backend lacks
 * (`Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput`) and faster replacements for slow stock
 * ones (`Conv2DBackpropInput`, `Sum`/`Mean` over leading axes; `Maximum`,
 * `Minimum` and `Sign` on float32 as plain loops, bit-identical to the stock
 * kernels). The math lives in `grad_math.ts` and `elementwise.ts`; this file
 * only adapts kernel arguments and registers.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  depthwiseFilterGrad,
  depthwiseInputGrad,
  sumLeading,
} from "./grad_math.ts";
import { binaryLoop, type BinaryOp, broadcastPlan, signLoop } from "./elementwise.ts";
import {
  convFilterGradKernel,
  depthwiseFilterGradKernel,
  maxPoolGradKernel,
  pointwiseFilterGradKernel,
} from "./conv_grad_kernel.ts";

type T4 = tf.Tensor4D;
// deno-lint-ignore no-explicit-any
type Attrs = any;
interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  attrs?: Attrs;
  backend: unknown;
}

/** Wraps a TensorInfo passed to a kernel as a Tensor (shares its data). */
function asTensor(t: tf.TensorInfo): tf.Tensor {
  if (t instanceof tf.Tensor) return t;
  return tf.engine().makeTensorFromTensorInfo(t);
}

function dilationsOf(a: Attrs): [number, number] | number {
  return a.dilations ?? 1;
}

function conv2DBackpropFilter({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const x = asTensor(inputs.x) as T4, dy = asTensor(inputs.dy) as T4;
  if (attrs.dataFormat && attrs.dataFormat !== "NHWC") throw new Error("qgt: NHWC only");
  const ci = tf.backend_util.computeConv2DInfo(
    x.shape,
    attrs.filterShape,
    attrs.strides,
    dilationsOf(attrs),
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return pointwiseFilterGradKernel(backend, x, dy, ci) ??
    convFilterGradKernel(backend, x, dy, ci) ??
    conv2dFilterGrad(x, dy, ci);
}

function conv2DBackpropInput({ inputs, attrs }: KernelArgs): tf.TensorInfo {
  const dy = asTensor(inputs.dy) as T4, filter = asTensor(inputs.filter) as T4;
  if (attrs.dataFormat && attrs.dataFormat !== "NHWC") throw new Error("qgt: NHWC only");
  const ci = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape,
    attrs.strides,
    dilationsOf(attrs),
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return conv2dInputGrad(dy, filter, ci);
}

function depthwiseBackpropFilter({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const x = asTensor(inputs.x) as T4, dy = asTensor(inputs.dy) as T4;
  const ci = tf.backend_util.computeConv2DInfo(
    x.shape,
    attrs.filterShape,
    attrs.strides,
    dilationsOf(attrs),
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  return depthwiseFilterGradKernel(backend, x, dy, ci) ??
    depthwiseFilterGrad(x, dy, ci, attrs.filterShape[3]);
}

function depthwiseBackpropInput({ inputs, attrs }: KernelArgs): tf.TensorInfo {
  const dy = asTensor(inputs.dy) as T4, filter = asTensor(inputs.filter) as T4;
  const ci = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape,
    attrs.strides,
    dilationsOf(attrs),
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  return depthwiseInputGrad(dy, filter, ci);
}

/** Sum/Mean over leading axes through average pooling; other reductions go to the stock kernel. */
function leadingReduce(name: "Sum" | "Mean", stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const x = asTensor(inputs.x);
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis, x.shape).slice().sort((a, b) => a - b);
    const leading = axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype === "float32" && leading) {
      const rows = axes.reduce((p, a) => p * x.shape[a], 1);
      const k = x.size / rows;
      if (rows > 1 && k >= 4) {
        return tf.tidy(() => {
          let r: tf.Tensor = sumLeading(tf.reshape(x, [rows, k]));
          if (name === "Mean") r = tf.div(r, rows);
          const outShape = attrs.keepDims
            ? x.shape.map((d, i) => (i < axes.length ? 1 : d))
            : x.shape.slice(axes.length);
          return tf.reshape(r, outShape);
        });
      }
    }
    return stock(args);
  };
}

/** The parts of tfjs-backend-wasm's backend object the loop kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

/** `Maximum` / `Minimum` as {@link binaryLoop} where the shapes allow, else the stock kernel. */
function loopBinary(op: BinaryOp, stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { a, b } = inputs;
    const plan = a.dtype === "float32" && b.dtype === "float32"
      ? broadcastPlan(a.shape, b.shape)
      : null;
    if (!plan) return stock(args);
    const be = backend as WasmBackend;
    // allocate first: growing the heap detaches views taken before
    const out = be.makeOutput(plan.shape, "float32");
    const [av, bv, ov] = [a, b, out].map((t) => be.typedArrayFromHeap(t) as Float32Array);
    binaryLoop(op, av, plan.a, bv, plan.b, ov, plan.c);
    return out;
  };
}

function loopSign(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const x = inputs.x;
    if (x.dtype !== "float32") return stock(args);
    const be = backend as WasmBackend;
    const out = be.makeOutput([...x.shape], "float32");
    signLoop(be.typedArrayFromHeap(x) as Float32Array, be.typedArrayFromHeap(out) as Float32Array);
    return out;
  };
}

let registered = false;
const stockKernels = new Map<string, tf.KernelFunc>();

/**
 * The stock wasm kernel a loop kernel replaced (`Maximum`, `Minimum`, `Sign`),
 * for tests that compare the two; undefined before registration.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "./mod.ts";
 * import { stockWasmKernel } from "./wasm_kernels.ts";
 * await initBackend("wasm");
 * const out = stockWasmKernel("Sign")!({ inputs: { x: tf.tensor1d([-2, 3]) }, backend: tf.backend(), attrs: {} });
 * if (tf.engine().makeTensorFromTensorInfo(out as tf.TensorInfo).dataSync().join() !== "-1,1") throw new Error();
 * ```
 */
export function stockWasmKernel(name: string): tf.KernelFunc | undefined {
  return stockKernels.get(name);
}

/**
 * Registers the missing and faster kernels on the `wasm` backend. Idempotent.
 * The wasm backend must be registered (imported) first; it need not be active.
 *
 * @example
 * ```ts ignore
 * import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
 * registerWasmTrainingKernels();
 * ```
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const reg = (kernelName: string, f: (a: KernelArgs) => tf.TensorInfo) => {
    if (tf.getKernel(kernelName, "wasm")) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc: f as unknown as tf.KernelFunc,
    });
  };
  reg("Conv2DBackpropFilter", conv2DBackpropFilter);
  reg("Conv2DBackpropInput", conv2DBackpropInput);
  reg("DepthwiseConv2dNativeBackpropFilter", depthwiseBackpropFilter);
  reg("DepthwiseConv2dNativeBackpropInput", depthwiseBackpropInput);
  const replace = (name: string, f: (stock: tf.KernelFunc) => tf.KernelFunc) => {
    const stock = tf.getKernel(name, "wasm");
    if (!stock) throw new Error(`qgt: wasm backend has no ${name} kernel`);
    stockKernels.set(name, stock.kernelFunc);
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ ...stock, kernelFunc: f(stock.kernelFunc) });
  };
  for (const name of ["Sum", "Mean"] as const) replace(name, (k) => leadingReduce(name, k));
  replace("Maximum", (k) => loopBinary("max", k));
  replace("Minimum", (k) => loopBinary("min", k));
  replace("Sign", loopSign);
  replace("MaxPoolGrad", (stock) => (args) => {
    const { inputs, attrs, backend } = args as unknown as KernelArgs;
    const { input, dy } = inputs;
    if (input.dtype !== "float32") return stock(args);
    const pi = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return maxPoolGradKernel(backend, input, dy, pi) ?? stock(args);
  });
  registered = true;
}

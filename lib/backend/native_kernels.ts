/**
 * The `native` backend's kernels: tfjs-backend-wasm's convolutions (forward, backward data,
 * backward weights; dense, depthwise, strided, padded, fused with a bias and ReLU / ReLU6),
 * max and average pooling (forward and gradient) and matrix products replaced by oneDNN calls
 * (`onednn.ts`) that read and write the tensors in place in the wasm backend's memory, plus
 * training BatchNorm + activation as one call each way (qgt's own C, `native/bn_act.c`). Shapes
 * oneDNN is not given (dilations, other fused activations, NCHW) go to the kernel that was
 * registered before. The math is oneDNN's and bn_act.c's; this file adapts tfjs's kernel
 * arguments and registers.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OneDnnLib } from "./onednn.ts";
import { cString } from "../util/cbuild.ts";

// deno-lint-ignore no-explicit-any
type Attrs = any;
interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  attrs?: Attrs;
  backend: unknown;
}

/** The parts of tfjs-backend-wasm's backend object these kernels use. */
interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: unknown): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** A float32 view of a tensor in the backend's memory (take it after every makeOutput). */
function view(be: WasmBackend, t: tf.TensorInfo): Float32Array {
  const d = be.dataIdMap.get(t.dataId);
  if (!d || t.dtype !== "float32") throw new Error("internal: native kernel input is not float32");
  const size = t.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(be.wasm.asm.memory.buffer, d.memoryOffset, size);
}

/** The activations oneDNN fuses into a convolution: tfjs's name -> the shim's code. */
const ACTS: Record<string, number> = { linear: 0, relu: 1, relu6: 2 };

/**
 * The geometry the shim's convolutions and poolings share (onednn.c, P_* and Q_*): batch, input
 * height, width, channels, output height, width, channels, kernel, stride and padding.
 */
function geometry(ci: tf.backend_util.Conv2DInfo): number[] {
  const p = ci.padInfo;
  return [
    ci.batchSize,
    ci.inHeight,
    ci.inWidth,
    ci.inChannels,
    ci.outHeight,
    ci.outWidth,
    ci.outChannels,
    ci.filterHeight,
    ci.filterWidth,
    ci.strideHeight,
    ci.strideWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
  ];
}

/** The shim's convolution parameters (P_*): the geometry, depthwise, bias, activation. */
function convParams(ci: tf.backend_util.Conv2DInfo, depthwise: boolean, bias: boolean, act = 0) {
  return new Int32Array([...geometry(ci), depthwise ? 1 : 0, bias ? 1 : 0, act]);
}

/** The convolution of these shapes and attributes, if oneDNN takes it (NHWC, no dilation). */
function oneDnnConv(
  xShape: number[],
  wShape: number[],
  attrs: Attrs,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo | null {
  if (attrs.dataFormat && attrs.dataFormat !== "NHWC") return null;
  const ci = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    wShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
  );
  const plain = ci.dilationHeight === 1 && ci.dilationWidth === 1 &&
    ci.dataFormat === "channelsLast";
  return plain ? ci : null;
}

/**
 * Native calls by tfjs kernel: how many, and how many ran in each oneDNN implementation
 * (`impl_info_str`, e.g. `jit_1x1:avx2`; `gemm` for matrix products), for `bench --profile`.
 */
export const nativeCalls = new Map<string, { calls: number; impls: Map<string, number> }>();

/** Checks a shim call's result and counts it (`impl`: qgt's own C, not a oneDNN primitive). */
function call(lib: OneDnnLib, kernel: string, r: number, impl?: string): void {
  if (r !== 0) throw new Error(`native ${kernel}: ${cString(lib.qn_error())} (code ${r})`);
  const c = nativeCalls.get(kernel) ?? { calls: 0, impls: new Map() };
  c.calls++;
  impl ??= cString(lib.qn_last_impl());
  c.impls.set(impl, (c.impls.get(impl) ?? 0) + 1);
  nativeCalls.set(kernel, c);
}

/** Forward convolutions (plain, fused, depthwise): `null` sends the call to the stock kernel. */
function convForward(lib: OneDnnLib, depthwise: boolean, fused: boolean, name: string) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo | null => {
    const { x, filter, bias, preluActivationWeights } = inputs;
    const act = fused ? ACTS[attrs.activation ?? "linear"] : 0;
    if (act === undefined || preluActivationWeights) return null;
    if (x.dtype !== "float32" || filter.dtype !== "float32") return null;
    const ci = oneDnnConv(x.shape, filter.shape, attrs, depthwise);
    if (!ci) return null;
    const withBias = !!bias;
    if (
      withBias &&
      (bias.dtype !== "float32" || bias.shape.reduce((a, b) => a * b, 1) !== ci.outChannels)
    ) {
      return null;
    }
    const be = backend as WasmBackend;
    const out = be.makeOutput([...ci.outShape], "float32");
    call(
      lib,
      name,
      lib.qn_conv(
        0,
        convParams(ci, depthwise, withBias, act),
        view(be, x),
        view(be, filter),
        withBias ? view(be, bias) : null,
        view(be, out),
      ),
    );
    return out;
  };
}

/**
 * A convolution's gradients: `dir` 1, the input gradient (`Conv2DBackpropInput` and its depthwise
 * kind: inputs dy and filter, `attrs.inputShape`); 2, the weight gradient (`...BackpropFilter`:
 * inputs x and dy, `attrs.filterShape`).
 */
function convBackward(lib: OneDnnLib, depthwise: boolean, dir: 1 | 2, name: string) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo | null => {
    const { dy } = inputs;
    const wShape = dir === 1 ? inputs.filter.shape : attrs.filterShape;
    const ci = oneDnnConv(dir === 1 ? attrs.inputShape : inputs.x.shape, wShape, attrs, depthwise);
    if (!ci) return null;
    const be = backend as WasmBackend;
    const out = be.makeOutput([...(dir === 1 ? ci.inShape : wShape)], "float32");
    const [src, wei] = dir === 1 ? [out, inputs.filter] : [inputs.x, out];
    const p = convParams(ci, depthwise, false);
    call(lib, name, lib.qn_conv(dir, p, view(be, src), view(be, wei), null, view(be, dy)));
    return out;
  };
}

/** The shim's pooling parameters (Q_*): the geometry, and whether it is max pooling. */
function poolParams(ci: tf.backend_util.Conv2DInfo, max: boolean) {
  return new Int32Array([...geometry(ci), max ? 1 : 0]);
}

/**
 * The pooling of this input shape and attributes, if oneDNN takes it: NHWC, no dilation, every
 * window touching the input; average pooling only without padding (tfjs's average-pooling
 * gradient divides padded windows by the full window, oneDNN by the pixels it covers).
 */
function oneDnnPool(xShape: number[], attrs: Attrs, max: boolean) {
  const ci = tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const p = ci.padInfo;
  const padded = p.top || p.left || p.bottom || p.right;
  if (!max && padded) return null;
  if (p.top >= ci.filterHeight || p.bottom >= ci.filterHeight) return null;
  if (p.left >= ci.filterWidth || p.right >= ci.filterWidth) return null;
  return ci.outHeight > 0 && ci.outWidth > 0 ? ci : null;
}

/** MaxPool / AvgPool forward. */
function poolForward(lib: OneDnnLib, max: boolean, name: string) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo | null => {
    const { x } = inputs;
    if (x.dtype !== "float32" || x.shape.length !== 4) return null;
    const ci = oneDnnPool(x.shape, attrs, max);
    if (!ci) return null;
    const be = backend as WasmBackend;
    const out = be.makeOutput([...ci.outShape], "float32");
    call(lib, name, lib.qn_pool(0, poolParams(ci, max), null, view(be, x), view(be, out)));
    return out;
  };
}

/** MaxPoolGrad (inputs dy, input, output) / AvgPoolGrad (inputs dy, input): the input gradient. */
function poolBackward(lib: OneDnnLib, max: boolean, name: string) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo | null => {
    const { dy, input } = inputs;
    if (input.dtype !== "float32" || dy.dtype !== "float32" || input.shape.length !== 4) {
      return null;
    }
    const ci = oneDnnPool(input.shape, attrs, max);
    if (!ci) return null;
    const be = backend as WasmBackend;
    const out = be.makeOutput([...input.shape], "float32");
    const x = max ? view(be, input) : null;
    call(lib, name, lib.qn_pool(1, poolParams(ci, max), x, view(be, out), view(be, dy)));
    return out;
  };
}

/** Matrix products (rank 3, one batch, or batches of the same count); fused bias and ReLU/ReLU6. */
function matMul(lib: OneDnnLib, fused: boolean, name: string) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo | null => {
    const { a, b, bias, preluActivationWeights } = inputs;
    const act = fused ? ACTS[attrs.activation ?? "linear"] : 0;
    if (act === undefined || preluActivationWeights) return null;
    if (
      a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length !== 3 || b.shape.length !== 3
    ) {
      return null;
    }
    const ta = !!attrs.transposeA, tb = !!attrs.transposeB;
    const [ba, ra, ca] = a.shape, [bb, rb, cb] = b.shape;
    const m = ta ? ca : ra, k = ta ? ra : ca, n = tb ? rb : cb;
    if ((tb ? cb : rb) !== k || ba !== bb) return null;
    if (bias && (bias.dtype !== "float32" || bias.shape.reduce((x, y) => x * y, 1) !== n)) {
      return null;
    }
    const be = backend as WasmBackend;
    const out = be.makeOutput([ba, m, n], "float32");
    const av = view(be, a), bv = view(be, b), ov = view(be, out);
    for (let i = 0; i < ba; i++) {
      call(
        lib,
        name,
        lib.qn_gemm(
          ta ? 1 : 0,
          tb ? 1 : 0,
          m,
          n,
          k,
          av.subarray(i * m * k, (i + 1) * m * k),
          bv.subarray(i * k * n, (i + 1) * k * n),
          ov.subarray(i * m * n, (i + 1) * m * n),
        ),
      );
    }
    if (bias || act) {
      const bs = bias ? view(be, bias) : null;
      for (let i = 0; i < ov.length; i++) {
        let v = ov[i] + (bs ? bs[i % n] : 0);
        if (act) v = Math.max(0, act === 2 ? Math.min(6, v) : v);
        ov[i] = v;
      }
    }
    return out;
  };
}

/** The native training BatchNorm + activation kernels' names (qgt's own; no stock kernel). */
export const BN_ACT_FORWARD = "QgtNativeBnActForward";
/** See {@link BN_ACT_FORWARD}. */
export const BN_ACT_BACKWARD = "QgtNativeBnActBackward";

/** How --profile names the BatchNorm kernels' implementation. */
const BN_ACT_IMPL = "qgt native/bn_act.c";

/** Activation codes of native/bn_act.c. */
const BN_ACTS: Record<string, number> = { none: 0, relu: 1, relu6: 2 };

/** Rows (N*H*W) and channels of an NHWC (or [rows, channels]) tensor. */
function rowsChannels(t: tf.TensorInfo): [number, number] {
  const ch = t.shape[t.shape.length - 1];
  return [t.shape.reduce((a, b) => a * b, 1) / ch, ch];
}

/** `BN_ACT_FORWARD`: x, gamma, beta -> z, xhat, mean, variance, rstd (native/bn_act.c). */
function bnActForward(lib: OneDnnLib) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] => {
    const { x, gamma, beta } = inputs;
    const [rows, ch] = rowsChannels(x);
    const be = backend as WasmBackend;
    const out = [x.shape, x.shape, [ch], [ch], [ch]].map((s) => be.makeOutput(s, "float32"));
    const [z, xhat, mean, variance, rstd] = out.map((t) => view(be, t));
    call(
      lib,
      BN_ACT_FORWARD,
      lib.qn_bn_act_forward(
        rows,
        ch,
        BN_ACTS[attrs.act],
        attrs.eps,
        view(be, x),
        view(be, gamma),
        view(be, beta),
        z,
        xhat,
        mean,
        variance,
        rstd,
      ),
      BN_ACT_IMPL,
    );
    return out;
  };
}

/** `BN_ACT_BACKWARD`: dz, xhat, gamma, beta, rstd -> dx, dgamma, dbeta (native/bn_act.c). */
function bnActBackward(lib: OneDnnLib) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] => {
    const { dz, xhat, gamma, beta, rstd } = inputs;
    const [rows, ch] = rowsChannels(dz);
    const be = backend as WasmBackend;
    const out = [dz.shape, [ch], [ch]].map((s) => be.makeOutput(s, "float32"));
    const [dx, dgamma, dbeta] = out.map((t) => view(be, t));
    call(
      lib,
      BN_ACT_BACKWARD,
      lib.qn_bn_act_backward(
        rows,
        ch,
        BN_ACTS[attrs.act],
        view(be, dz),
        view(be, xhat),
        view(be, gamma),
        view(be, beta),
        view(be, rstd),
        dx,
        dgamma,
        dbeta,
      ),
      BN_ACT_IMPL,
    );
    return out;
  };
}

/** The kernels the native backend replaces, by tfjs kernel name. */
function nativeKernels(lib: OneDnnLib): Record<string, (a: KernelArgs) => tf.TensorInfo | null> {
  return {
    Conv2D: convForward(lib, false, false, "Conv2D"),
    FusedConv2D: convForward(lib, false, true, "FusedConv2D"),
    DepthwiseConv2dNative: convForward(lib, true, false, "DepthwiseConv2dNative"),
    FusedDepthwiseConv2D: convForward(lib, true, true, "FusedDepthwiseConv2D"),
    Conv2DBackpropInput: convBackward(lib, false, 1, "Conv2DBackpropInput"),
    DepthwiseConv2dNativeBackpropInput: convBackward(
      lib,
      true,
      1,
      "DepthwiseConv2dNativeBackpropInput",
    ),
    Conv2DBackpropFilter: convBackward(lib, false, 2, "Conv2DBackpropFilter"),
    DepthwiseConv2dNativeBackpropFilter: convBackward(
      lib,
      true,
      2,
      "DepthwiseConv2dNativeBackpropFilter",
    ),
    MaxPool: poolForward(lib, true, "MaxPool"),
    AvgPool: poolForward(lib, false, "AvgPool"),
    MaxPoolGrad: poolBackward(lib, true, "MaxPoolGrad"),
    AvgPoolGrad: poolBackward(lib, false, "AvgPoolGrad"),
    BatchMatMul: matMul(lib, false, "BatchMatMul"),
    _FusedMatMul: matMul(lib, true, "_FusedMatMul"),
  };
}

/** The wasm kernels the native ones replaced (restored when training switches back to wasm). */
const replaced = new Map<string, tf.KernelConfig>();

/** Whether the native kernels are registered on the wasm backend now. */
export function nativeKernelsActive(): boolean {
  return replaced.size > 0;
}

/**
 * Training BatchNorm + activation in two native calls, or `null` when the native kernels are
 * not active on the current backend or `x` is not float32 (the caller then uses its tfjs path).
 * `forward` gives [z, xhat, mean, variance, rstd]; `backward` gives [dx, dgamma, dbeta].
 *
 * @example
 * ```ts ignore
 * const k = nativeBnAct();
 * if (k) { const [z, xhat, mean, variance, rstd] = k.forward(x, gamma, beta, "relu6", 1e-3); }
 * ```
 */
export function nativeBnAct(): {
  forward(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, act: string, eps: number): tf.Tensor[];
  backward(
    dz: tf.Tensor,
    xhat: tf.Tensor,
    g: tf.Tensor,
    b: tf.Tensor,
    rstd: tf.Tensor,
    act: string,
  ): tf.Tensor[];
} | null {
  if (!nativeKernelsActive() || tf.getBackend() !== "wasm") return null;
  const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Attrs) =>
    [tf.engine().runKernel(name, inputs, attrs)].flat() as tf.Tensor[];
  return {
    forward: (x, gamma, beta, act, eps) => run(BN_ACT_FORWARD, { x, gamma, beta }, { act, eps }),
    backward: (dz, xhat, gamma, beta, rstd, act) =>
      run(BN_ACT_BACKWARD, { dz, xhat, gamma, beta, rstd }, { act }),
  };
}

/**
 * The kernel registered on the wasm backend before the native one (for comparisons).
 *
 * @example
 * ```ts ignore
 * const stock = replacedKernel("Conv2D");
 * ```
 */
export function replacedKernel(name: string): tf.KernelFunc | undefined {
  return replaced.get(name)?.kernelFunc ?? tf.getKernel(name, "wasm")?.kernelFunc;
}

/**
 * Registers the native kernels on the wasm backend (`on`), or puts back the ones they replaced.
 * Idempotent. The wasm backend's own training kernels must be registered first.
 *
 * @example
 * ```ts ignore
 * useNativeKernels(lib, true);
 * ```
 */
export function useNativeKernels(lib: OneDnnLib | null, on: boolean): void {
  if (on === nativeKernelsActive()) return;
  if (!on) {
    for (const [name, stock] of replaced) {
      tf.unregisterKernel(name, "wasm");
      tf.registerKernel(stock);
    }
    replaced.clear();
    for (const name of [BN_ACT_FORWARD, BN_ACT_BACKWARD]) tf.unregisterKernel(name, "wasm");
    return;
  }
  if (!lib) throw new Error("internal: native kernels without the oneDNN library");
  const own = { [BN_ACT_FORWARD]: bnActForward(lib), [BN_ACT_BACKWARD]: bnActBackward(lib) };
  for (const [kernelName, f] of Object.entries(own)) {
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: f as never });
  }
  for (const [name, k] of Object.entries(nativeKernels(lib))) {
    const stock = tf.getKernel(name, "wasm");
    if (!stock) throw new Error(`qgt: the wasm backend has no ${name} kernel to replace`);
    replaced.set(name, stock);
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      ...stock,
      kernelFunc: ((args: KernelArgs) => k(args) ?? stock.kernelFunc(args as never)) as never,
    });
  }
}

/**
 * The elementwise passes of training-mode BatchNorm + activation as qgt's own
 * wasm kernel (`wasm/bn_act.c`, built by `deno task kernels`), run in place on
 * tfjs-backend-wasm's memory: the kernel module imports the backend's
 * `WebAssembly.Memory` and reads and writes tensors at their offsets (it has
 * no data segment and no stack, so it never touches memory it was not given).
 * Each pass gives the same float32 bits as the tfjs ops it replaces
 * (`tests/models_test.ts` compares the two paths of `lib/models/bn_act.ts`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { onBackendMemory, type WasmBackend } from "./wasm_memory.ts";

interface Exports {
  qgt_bn_center(x: number, mean: number, rows: number, ch: number, xc: number, sq: number): void;
  qgt_bn_norm_act(
    xc: number,
    rstd: number,
    gamma: number,
    beta: number,
    rows: number,
    ch: number,
    act: number,
    xhat: number,
    y: number,
    z: number,
  ): void;
  qgt_bn_act_grad(
    dz: number,
    y: number,
    xhat: number,
    n: number,
    act: number,
    dy: number,
    p: number,
  ): void;
  qgt_bn_input_grad(
    dy: number,
    xhat: number,
    dbm: number,
    dgm: number,
    k: number,
    rows: number,
    ch: number,
    dx: number,
  ): void;
}

/** Activation codes of the kernel. */
const ACT = { none: 0, relu: 1, relu6: 2 } as const;

/** The four passes on tensors of the active wasm backend. */
export interface BnActKernels {
  /** xc = x - mean, sq = xc^2. */
  center(x: tf.Tensor, mean: tf.Tensor): [tf.Tensor, tf.Tensor];
  /** xhat = xc rstd, y = xhat gamma + beta, z = act(y) (z is y without an activation). */
  normAct(
    xc: tf.Tensor,
    rstd: tf.Tensor,
    gamma: tf.Tensor,
    beta: tf.Tensor,
    act: keyof typeof ACT,
  ): [tf.Tensor, tf.Tensor, tf.Tensor];
  /** dy = dz act'(y), p = dy xhat. */
  actGrad(
    dz: tf.Tensor,
    y: tf.Tensor,
    xhat: tf.Tensor,
    act: keyof typeof ACT,
  ): [tf.Tensor, tf.Tensor];
  /** dx = ((dy - dbm) - xhat dgm) k. */
  inputGrad(
    dy: tf.Tensor,
    xhat: tf.Tensor,
    dbm: tf.Tensor,
    dgm: tf.Tensor,
    k: tf.Tensor,
  ): tf.Tensor;
}

const cache = new WeakMap<object, BnActKernels>();

/**
 * The kernels for the active backend, or null unless it is tfjs's wasm
 * backend (other backends keep the tensor ops).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "./mod.ts";
 * import { bnActKernels } from "./bn_act_kernel.ts";
 * await initBackend("wasm");
 * const [xc, sq] = bnActKernels()!.center(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor1d([2, 3]));
 * if (xc.dataSync().join() !== "-1,-1,1,1" || sq.dataSync().join() !== "1,1,1,1") throw new Error();
 * ```
 */
export function bnActKernels(): BnActKernels | null {
  if (tf.getBackend() !== "wasm") return null;
  const be = tf.backend() as unknown as WasmBackend;
  const hit = cache.get(be);
  if (hit) return hit;
  const m = onBackendMemory<Exports>(be, "bn_act.wasm");
  if (!m) return null;
  const { exports: k, at } = m;
  const out = (shape: number[]) => be.makeOutput(shape, "float32");
  const wrap = (t: tf.TensorInfo) => tf.engine().makeTensorFromTensorInfo(t);
  const dims = (x: tf.Tensor) => {
    const ch = x.shape[x.shape.length - 1];
    return [x.size / ch, ch];
  };
  const kernels: BnActKernels = {
    center(x, mean) {
      const [rows, ch] = dims(x);
      const xc = out(x.shape), sq = out(x.shape);
      k.qgt_bn_center(at(x), at(mean), rows, ch, at(xc), at(sq));
      return [wrap(xc), wrap(sq)];
    },
    normAct(xc, rstd, gamma, beta, act) {
      const [rows, ch] = dims(xc);
      const xhat = out(xc.shape), y = out(xc.shape);
      const z = act === "none" ? y : out(xc.shape);
      k.qgt_bn_norm_act(
        at(xc),
        at(rstd),
        at(gamma),
        at(beta),
        rows,
        ch,
        ACT[act],
        at(xhat),
        at(y),
        at(z),
      );
      const yt = wrap(y);
      return [wrap(xhat), yt, act === "none" ? yt : wrap(z)];
    },
    actGrad(dz, y, xhat, act) {
      const dy = out(dz.shape), p = out(dz.shape);
      k.qgt_bn_act_grad(at(dz), at(y), at(xhat), dz.size, ACT[act], at(dy), at(p));
      return [wrap(dy), wrap(p)];
    },
    inputGrad(dy, xhat, dbm, dgm, kk) {
      const [rows, ch] = dims(dy);
      const dx = out(dy.shape);
      k.qgt_bn_input_grad(at(dy), at(xhat), at(dbm), at(dgm), at(kk), rows, ch, at(dx));
      return wrap(dx);
    },
  };
  cache.set(be, kernels);
  return kernels;
}

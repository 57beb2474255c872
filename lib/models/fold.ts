/**
 * BatchNorm folding: a convolution followed by inference-mode BatchNorm is the
 * same affine map as one convolution with scaled kernel and a bias. This is the
 * network a microcontroller runs, and the one whose weights are quantized for
 * deployment.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BN_EPSILON, type Model, newVariable } from "./model.ts";
import type { ArchSpec } from "./spec.ts";

/**
 * The architecture after folding: every layer with BatchNorm gets a bias instead.
 *
 * @example
 * ```ts
 * import { foldedArch, smallCnn } from "./mod.ts";
 * const a = foldedArch(smallCnn());
 * if (a.layers.some((l) => "bn" in l && l.bn)) throw new Error();
 * ```
 */
export function foldedArch(arch: ArchSpec): ArchSpec {
  return {
    ...arch,
    layers: arch.layers.map((
      l,
    ) => ("bn" in l && l.bn ? { ...l, bn: false, bias: true } : { ...l })),
  };
}

/**
 * Folds every BatchNorm into its convolution:
 * with a = gamma / sqrt(var + eps) per output channel,
 * W' = W * a (along the output-channel axis: 3 for conv [kh,kw,cin,cout],
 * 2 for depthwise [kh,kw,c,1]) and b' = beta + (b - mean) * a.
 * Returns a new model (fresh variables); the input model is unchanged.
 *
 * @example
 * ```ts
 * import { createModel, foldBatchNorm, smallCnn } from "./mod.ts";
 * const f = foldBatchNorm(createModel(smallCnn(), 1));
 * if (f.params.has("conv1/gamma") || !f.params.has("conv1/bias")) throw new Error();
 * ```
 */
export function foldBatchNorm(model: Model): Model {
  const arch = foldedArch(model.arch);
  const params = new Map<string, tf.Variable>();
  for (const l of model.arch.layers) {
    if (!("bn" in l)) {
      if (l.type === "dense") {
        params.set(
          `${l.name}/kernel`,
          newVariable(() => model.params.get(`${l.name}/kernel`)!.clone()),
        );
        if (l.bias) {
          params.set(
            `${l.name}/bias`,
            newVariable(() => model.params.get(`${l.name}/bias`)!.clone()),
          );
        }
      }
      continue;
    }
    const get = (n: string) => model.params.get(`${l.name}/${n}`)!;
    if (!l.bn) {
      params.set(`${l.name}/kernel`, newVariable(() => get("kernel").clone()));
      if (l.bias) params.set(`${l.name}/bias`, newVariable(() => get("bias").clone()));
      continue;
    }
    const a = () => foldFactor(model, l.name);
    params.set(
      `${l.name}/kernel`,
      newVariable(() =>
        tf.mul(
          get("kernel"),
          l.type === "conv2d" ? tf.reshape(a(), [1, 1, 1, -1]) : tf.reshape(a(), [1, 1, -1, 1]),
        )
      ),
    );
    params.set(
      `${l.name}/bias`,
      newVariable(() => {
        const b0 = l.bias ? get("bias") : tf.zerosLike(get("mean"));
        return tf.add(get("beta"), tf.mul(tf.sub(b0, get("mean")), a()));
      }),
    );
  }
  return { arch, params };
}

/**
 * The per-output-channel factors {@link foldBatchNorm} multiplies each
 * BatchNorm layer's kernel by, a = gamma / sqrt(var + eps), computed with the
 * same float32 ops; layers without BatchNorm are absent. A per-channel
 * quantization step learned on the unfolded kernel maps to the folded one as
 * s |a| (the same integer levels, negated where a < 0).
 *
 * @example
 * ```ts
 * import { createModel, foldFactors, smallCnn } from "./mod.ts";
 * const f = foldFactors(createModel(smallCnn(), 1)); // fresh BatchNorm: gamma 1, variance 1
 * if (Math.abs(f.conv1[0] - 1 / Math.sqrt(1 + 1e-3)) > 1e-6 || f.fc) throw new Error();
 * ```
 */
export function foldFactors(model: Model): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const l of model.arch.layers) {
    if (!("bn" in l) || !l.bn) continue;
    out[l.name] = tf.tidy(() => foldFactor(model, l.name).dataSync() as Float32Array);
  }
  return out;
}

/** a = gamma / sqrt(var + eps) of one BatchNorm layer, the one formula both folds use. */
function foldFactor(model: Model, layer: string): tf.Tensor {
  const get = (n: string) => model.params.get(`${layer}/${n}`)!;
  return tf.div(get("gamma"), tf.sqrt(tf.add(get("variance"), BN_EPSILON)));
}

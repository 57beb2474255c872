/**
 * Per-layer quantization settings of a network: which spec each weight layer
 * gets (defaults plus per-layer overrides), and the bytes it takes deployed.
 * @module
 */
import { type ArchSpec, isWeightLayer, layerShapes, type WeightLayerSpec } from "../models/spec.ts";
import { type QuantSpec, type ScaleMethod, validateQuantSpec } from "./spec.ts";

/** Weight quantization defaults for a whole network. */
export interface WeightQuantConfig {
  bits: number;
  /** Default true (zero point 0, as TFLite does for weights). */
  symmetric?: boolean;
  /** Default false: all 2^b levels are used. */
  narrowRange?: boolean;
  /** Default true. */
  perChannel?: boolean;
  /** Default "mse". */
  scale?: ScaleMethod;
}

/** A layer's override: its bits (or "float" to leave it unquantized) and lambda multiplier. */
export interface LayerOverride {
  bits?: number | "float";
  lambda?: number;
}

/**
 * Channel axis of a layer's kernel: conv [kh,kw,cin,cout] 3, depthwise [kh,kw,c,1] 2, dense [in,out] 1.
 *
 * @example
 * ```ts
 * import { channelAxis } from "./layers.ts";
 * const common = { kernel: 3, stride: 1, padding: "same", bias: false, bn: true, act: "relu6" } as const;
 * const dw = { type: "depthwise2d", name: "dw1", ...common } as const;
 * if (channelAxis(dw) !== 2) throw new Error(); // [kh, kw, c, 1]
 * ```
 */
export function channelAxis(l: WeightLayerSpec): number {
  return l.type === "conv2d" ? 3 : l.type === "depthwise2d" ? 2 : 1;
}

/**
 * Resolves the quantizer spec of every weight layer (absent: left in float).
 * Unknown layer names in `overrides` are an error naming them.
 *
 * @example
 * ```ts
 * import { resolveLayerSpecs } from "./layers.ts";
 * import { smallCnn } from "../models/zoo.ts";
 * const s = resolveLayerSpecs(smallCnn(), { bits: 2 }, { fc: { bits: 8 } });
 * if (s.conv1!.bits !== 2 || s.conv1!.axis !== 3 || s.fc!.bits !== 8) throw new Error();
 * ```
 */
export function resolveLayerSpecs(
  arch: ArchSpec,
  cfg: WeightQuantConfig,
  overrides: Record<string, LayerOverride> = {},
): Record<string, QuantSpec> {
  const layers = arch.layers.filter(isWeightLayer);
  const names = new Set(layers.map((l) => l.name));
  for (const k of Object.keys(overrides)) {
    if (!names.has(k)) {
      throw new Error(
        `layer override ${k}: no such weight layer in ${arch.name} (have ${[...names].join(", ")})`,
      );
    }
  }
  const out: Record<string, QuantSpec> = {};
  for (const l of layers) {
    const o = overrides[l.name] ?? {};
    if (o.bits === "float") continue;
    const spec: QuantSpec = {
      bits: o.bits ?? cfg.bits,
      symmetric: cfg.symmetric ?? true,
      narrowRange: cfg.narrowRange ?? false,
      perChannel: cfg.perChannel ?? true,
      axis: channelAxis(l),
      scale: cfg.scale ?? "mse",
    };
    if (spec.bits === 1) spec.symmetric = true;
    validateQuantSpec(spec, l.type === "dense" ? 2 : 4, `layer ${l.name}`);
    out[l.name] = spec;
  }
  return out;
}

/** Deployed bytes of one weight layer, by part. */
export interface LayerBytes {
  codes: number;
  scales: number;
  zeroPoints: number;
  bias: number;
  total: number;
}

/**
 * Bytes a weight layer takes in the exported model (`model.qgt`): bit-packed
 * codes ceil(n b / 8), float16 scales (one per output channel, or one),
 * int32 zero points only for asymmetric specs, and an int32 bias per output
 * channel (BatchNorm folded). `spec` null means float32 weights and biases.
 * Section padding to 4 bytes and the header are not included.
 *
 * @example
 * ```ts
 * import { layerBytes } from "./layers.ts";
 * const b = layerBytes(100, 10, { bits: 2, symmetric: true, perChannel: true });
 * if (b.codes !== 25 || b.scales !== 20 || b.bias !== 40 || b.total !== 85) throw new Error();
 * ```
 */
export function layerBytes(
  params: number,
  outChannels: number,
  spec: QuantSpec | null,
): LayerBytes {
  if (!spec) {
    const codes = params * 4, bias = outChannels * 4;
    return { codes, scales: 0, zeroPoints: 0, bias, total: codes + bias };
  }
  const nScales = spec.perChannel ? outChannels : 1;
  const codes = Math.ceil((params * spec.bits) / 8);
  const scales = 2 * nScales;
  const zeroPoints = spec.symmetric ? 0 : 4 * nScales;
  const bias = 4 * outChannels;
  return { codes, scales, zeroPoints, bias, total: codes + scales + zeroPoints + bias };
}

/**
 * Kernel parameter count and output channels of each weight layer.
 *
 * @example
 * ```ts
 * import { smallCnn } from "../models/mod.ts";
 * import { weightLayerSizes } from "./layers.ts";
 * const sizes = weightLayerSizes(smallCnn());
 * // conv 3x3 1->32 first; 65,440 kernel weights in all
 * if (sizes[0].params !== 288 || sizes.reduce((a, s) => a + s.params, 0) !== 65440) {
 *   throw new Error();
 * }
 * ```
 */
export function weightLayerSizes(
  arch: ArchSpec,
): { name: string; params: number; channels: number }[] {
  const shapes = layerShapes(arch);
  return arch.layers.filter(isWeightLayer).map((l) => {
    const k = shapes.get(l.name)!.params.kernel;
    return { name: l.name, params: k.reduce((a, b) => a * b, 1), channels: k[channelAxis(l)] };
  });
}

/**
 * The architectures qgt ships: MobileNetV1 (the person detector of the paper
 * and of the MLPerf Tiny visual wake words benchmark) and a small CNN for
 * Fashion-MNIST.
 * @module
 */
import type { ArchSpec, LayerSpec } from "./spec.ts";

/** Options of {@link mobilenetV1}. */
export interface MobileNetOptions {
  /** Width multiplier (alpha). */
  alpha?: number;
  /** Input [H, W, C]. */
  inputShape?: [number, number, number];
  classes?: number;
}

/**
 * MobileNetV1 (Howard et al. 2017): a 3x3 stride-2 stem, 13 depthwise-separable
 * blocks, global average pooling and a dense classifier. Channels are
 * `max(8, round(c * alpha))`, rounded to a multiple of 8 as in Keras for
 * alpha 0.25 (8, 16, 32, ... 256).
 *
 * @example
 * ```ts
 * import { mobilenetV1 } from "./zoo.ts";
 * const a = mobilenetV1({ alpha: 0.25 });
 * if (a.layers.length !== 1 + 26 + 2) throw new Error();
 * ```
 */
export function mobilenetV1(opts: MobileNetOptions = {}): ArchSpec {
  const alpha = opts.alpha ?? 0.25;
  const inputShape = opts.inputShape ?? [96, 96, 1];
  const classes = opts.classes ?? 2;
  const ch = (c: number) => Math.max(8, Math.round((c * alpha) / 8) * 8);
  const layers: LayerSpec[] = [
    {
      type: "conv2d",
      name: "conv0",
      filters: ch(32),
      kernel: 3,
      stride: 2,
      padding: "same",
      bias: false,
      bn: true,
      act: "relu6",
    },
  ];
  const blocks: [number, number][] = [
    [64, 1],
    [128, 2],
    [128, 1],
    [256, 2],
    [256, 1],
    [512, 2],
    [512, 1],
    [512, 1],
    [512, 1],
    [512, 1],
    [512, 1],
    [1024, 2],
    [1024, 1],
  ];
  blocks.forEach(([c, s], i) => {
    layers.push({
      type: "depthwise2d",
      name: `dw${i + 1}`,
      kernel: 3,
      stride: s,
      padding: "same",
      bias: false,
      bn: true,
      act: "relu6",
    });
    layers.push({
      type: "conv2d",
      name: `pw${i + 1}`,
      filters: ch(c),
      kernel: 1,
      stride: 1,
      padding: "same",
      bias: false,
      bn: true,
      act: "relu6",
    });
  });
  layers.push({ type: "gap", name: "gap" });
  layers.push({ type: "dense", name: "fc", units: classes, bias: true, act: "none" });
  return { name: `mobilenet_v1_${alpha}_${inputShape.join("x")}`, inputShape, classes, layers };
}

/** Options of {@link smallCnn}. */
export interface SmallCnnOptions {
  inputShape?: [number, number, number];
  classes?: number;
  /** Channels of the four 3x3 convolutions. */
  channels?: [number, number, number, number];
}

/**
 * The small CNN of the Fashion-MNIST anchors: conv3x3 32, 32, maxpool, 64, 64,
 * maxpool (each with BatchNorm and ReLU), global average pooling, dense.
 * 65,834 trainable parameters for 28x28x1 and 10 classes, as in the PyTorch anchors.
 *
 * @example
 * ```ts
 * import { smallCnn } from "./zoo.ts";
 * if (smallCnn().layers.length !== 8) throw new Error();
 * ```
 */
export function smallCnn(opts: SmallCnnOptions = {}): ArchSpec {
  const inputShape = opts.inputShape ?? [28, 28, 1];
  const classes = opts.classes ?? 10;
  const [a, b, c, d] = opts.channels ?? [32, 32, 64, 64];
  const conv = (name: string, filters: number): LayerSpec => ({
    type: "conv2d",
    name,
    filters,
    kernel: 3,
    stride: 1,
    padding: "same",
    bias: false,
    bn: true,
    act: "relu",
  });
  return {
    name: `small_cnn_${inputShape.join("x")}`,
    inputShape,
    classes,
    layers: [
      conv("conv1", a),
      conv("conv2", b),
      { type: "maxpool", name: "pool1", size: 2, stride: 2 },
      conv("conv3", c),
      conv("conv4", d),
      { type: "maxpool", name: "pool2", size: 2, stride: 2 },
      { type: "gap", name: "gap" },
      { type: "dense", name: "fc", units: classes, bias: true, act: "none" },
    ],
  };
}

/** Names of the architectures experiments can declare. */
export const ARCHITECTURES = ["mobilenet_v1", "small_cnn", "tiny_cnn"] as const;

/** Options an experiment may give an architecture. */
export interface ArchitectureOptions {
  alpha?: number;
  classes?: number;
  channels?: number[];
}

/**
 * A small 3-layer CNN for smoke tests and quick runs: conv 3x3 stride 2,
 * depthwise 3x3, pointwise 1x1 (each with BatchNorm and ReLU6), global
 * average pooling, dense.
 *
 * @example
 * ```ts
 * import { tinyCnn } from "./zoo.ts";
 * if (tinyCnn({ inputShape: [32, 32, 1] }).layers.length !== 5) throw new Error();
 * ```
 */
export function tinyCnn(
  opts: { inputShape?: [number, number, number]; classes?: number; channels?: number[] } = {},
): ArchSpec {
  const [a, b] = opts.channels ?? [8, 16];
  const inputShape = opts.inputShape ?? [32, 32, 1];
  const common = { padding: "same" as const, bias: false, bn: true, act: "relu6" as const };
  return {
    name: `tiny_cnn_${inputShape.join("x")}`,
    inputShape,
    classes: opts.classes ?? 2,
    layers: [
      { type: "conv2d", name: "conv1", filters: a, kernel: 3, stride: 2, ...common },
      { type: "depthwise2d", name: "dw2", kernel: 3, stride: 2, ...common },
      { type: "conv2d", name: "pw2", filters: b, kernel: 1, stride: 1, ...common },
      { type: "gap", name: "gap" },
      { type: "dense", name: "fc", units: opts.classes ?? 2, bias: true, act: "none" },
    ],
  };
}

/**
 * Builds a named architecture for an input shape.
 *
 * @example
 * ```ts
 * import { buildArchitecture } from "./zoo.ts";
 * if (buildArchitecture("small_cnn", [28, 28, 1], {}).classes !== 10) throw new Error();
 * ```
 */
export function buildArchitecture(
  name: string,
  inputShape: [number, number, number],
  o: ArchitectureOptions,
): ArchSpec {
  switch (name) {
    case "mobilenet_v1":
      return mobilenetV1({ alpha: o.alpha, inputShape, classes: o.classes });
    case "small_cnn": {
      const ch = o.channels;
      if (ch && ch.length !== 4) {
        throw new Error("architecture small_cnn: channels must list 4 numbers");
      }
      return smallCnn({
        inputShape,
        classes: o.classes,
        channels: ch as [number, number, number, number],
      });
    }
    case "tiny_cnn":
      return tinyCnn({ inputShape, classes: o.classes, channels: o.channels });
    default:
      throw new Error(
        `architecture: expected one of ${ARCHITECTURES.join(", ")}, got ${JSON.stringify(name)}`,
      );
  }
}

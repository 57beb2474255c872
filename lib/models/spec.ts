/**
 * Architecture specs: a network is plain data, a list of layers in order.
 * The same spec drives training (`model.ts` `forward`), BatchNorm folding, export and
 * the integer interpreter, so all of them agree on what the network is.
 * @module
 */

/** Activation after a layer. `relu6` is clip(x, 0, 6), as in MobileNet. */
export type Activation = "none" | "relu" | "relu6";

/** Convolution padding, TensorFlow semantics. */
export type Padding = "same" | "valid";

/** Regular 2-D convolution, optionally followed by BatchNorm and an activation. */
export interface Conv2DSpec {
  type: "conv2d";
  name: string;
  /** The layer this one reads (default: the one before it; "input": the network input). */
  inputs?: [string];
  filters: number;
  kernel: number;
  stride: number;
  padding: Padding;
  bias: boolean;
  bn: boolean;
  act: Activation;
}

/** Depthwise 2-D convolution (channel multiplier 1), optionally with BatchNorm and activation. */
export interface DepthwiseSpec {
  type: "depthwise2d";
  name: string;
  /** The layer this one reads (default: the one before it; "input": the network input). */
  inputs?: [string];
  kernel: number;
  stride: number;
  padding: Padding;
  bias: boolean;
  bn: boolean;
  act: Activation;
}

/** Max pooling. */
export interface MaxPoolSpec {
  type: "maxpool";
  name: string;
  /** The layer this one reads (default: the one before it; "input": the network input). */
  inputs?: [string];
  size: number;
  stride: number;
}

/** Global average pooling: [N,H,W,C] -> [N,C]. */
export interface GlobalAvgPoolSpec {
  type: "gap";
  name: string;
  /** The layer this one reads (default: the one before it; "input": the network input). */
  inputs?: [string];
}

/** Fully connected layer on [N, C]. */
export interface DenseSpec {
  type: "dense";
  name: string;
  /** The layer this one reads (default: the one before it; "input": the network input). */
  inputs?: [string];
  units: number;
  bias: boolean;
  act: Activation;
}

/**
 * Elementwise sum of two earlier outputs of the same shape (a residual
 * connection), then an activation.
 */
export interface AddSpec {
  type: "add";
  name: string;
  /** The two layers added ("input": the network input). */
  inputs: [string, string];
  act: Activation;
}

/** One layer. */
export type LayerSpec =
  | Conv2DSpec
  | DepthwiseSpec
  | MaxPoolSpec
  | GlobalAvgPoolSpec
  | DenseSpec
  | AddSpec;

/**
 * A layer that does not fit the network: which layer, and why (the message
 * is `layer <name>: <reason>`), so callers can say where it was declared.
 */
export class LayerShapeError extends Error {
  constructor(readonly layer: string, readonly reason: string) {
    super(`layer ${layer}: ${reason}`);
  }
}

/** The name a layer's `inputs` use for the network input. */
export const NETWORK_INPUT = "input";

/**
 * What each layer reads, in layer order: the names of earlier layers (or
 * {@link NETWORK_INPUT}); a layer without `inputs` reads the one before it.
 * Throws, naming the layer, when an input is not an earlier layer.
 *
 * @example
 * ```ts
 * import { layerInputs } from "./spec.ts";
 * const m = layerInputs({ layers: [
 *   { type: "conv2d", name: "a", filters: 4, kernel: 3, stride: 1, padding: "same", bias: true, bn: false, act: "relu" },
 *   { type: "conv2d", name: "b", filters: 4, kernel: 3, stride: 1, padding: "same", bias: true, bn: false, act: "none" },
 *   { type: "add", name: "s", inputs: ["a", "b"], act: "relu" },
 * ] });
 * if (m.get("a")!.join() !== "input" || m.get("b")!.join() !== "a" || m.get("s")!.join() !== "a,b") throw new Error();
 * ```
 */
export function layerInputs(arch: { layers: LayerSpec[] }): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let prev = NETWORK_INPUT;
  for (const l of arch.layers) {
    const ins = l.inputs ?? [prev];
    for (const i of ins) {
      if (i !== NETWORK_INPUT && !out.has(i)) {
        throw new LayerShapeError(
          l.name,
          `inputs: ${
            JSON.stringify(i)
          } is not an earlier layer (layers read outputs of layers before them, or "${NETWORK_INPUT}")`,
        );
      }
    }
    out.set(l.name, ins);
    prev = l.name;
  }
  return out;
}

/** Layers that carry a weight kernel (the ones quantization acts on). */
export type WeightLayerSpec = Conv2DSpec | DepthwiseSpec | DenseSpec;

/** A whole network: input shape [H, W, C], number of classes, layers in order. */
export interface ArchSpec {
  name: string;
  inputShape: [number, number, number];
  classes: number;
  layers: LayerSpec[];
}

/** A layer as an experiment may declare it: {@link LayerSpec} with the defaults left out. */
export type LayerInput =
  | (Pick<Conv2DSpec, "type" | "name" | "filters" | "kernel"> & Partial<Conv2DSpec>)
  | (Pick<DepthwiseSpec, "type" | "name" | "kernel"> & Partial<DepthwiseSpec>)
  | (Pick<MaxPoolSpec, "type" | "name" | "size"> & Partial<MaxPoolSpec>)
  | GlobalAvgPoolSpec
  | (Pick<DenseSpec, "type" | "name" | "units"> & Partial<DenseSpec>)
  | (Pick<AddSpec, "type" | "name" | "inputs"> & Partial<AddSpec>);

/**
 * A declared layer with its defaults filled in, as Keras would read it:
 * convolutions stride 1, padding "same", no BatchNorm, a bias unless
 * BatchNorm follows, no activation; max pooling with stride = size; dense
 * layers with a bias and no activation.
 *
 * @example
 * ```ts
 * import { completeLayer } from "./spec.ts";
 * const c = completeLayer({ type: "conv2d", name: "c", filters: 8, kernel: 3, bn: true, act: "relu" });
 * if (c.type !== "conv2d" || c.stride !== 1 || c.padding !== "same" || c.bias) throw new Error();
 * const p = completeLayer({ type: "maxpool", name: "p", size: 2 });
 * if (p.type !== "maxpool" || p.stride !== 2) throw new Error();
 * ```
 */
export function completeLayer(l: LayerInput): LayerSpec {
  switch (l.type) {
    case "conv2d":
    case "depthwise2d": {
      const bn = l.bn ?? false;
      return {
        stride: 1,
        padding: "same",
        bn,
        bias: !bn,
        act: "none",
        ...l,
      } as LayerSpec;
    }
    case "maxpool":
      return { stride: l.size, ...l } as MaxPoolSpec;
    case "dense":
      return { bias: true, act: "none", ...l } as DenseSpec;
    case "add":
      return { act: "none", ...l } as AddSpec;
    default:
      return { ...l };
  }
}

/**
 * True for layers with a weight kernel.
 *
 * @example
 * ```ts
 * import { isWeightLayer } from "./spec.ts";
 * if (!isWeightLayer({ type: "dense", name: "fc", units: 2, bias: true, act: "none" })) throw new Error();
 * ```
 */
export function isWeightLayer(l: LayerSpec): l is WeightLayerSpec {
  return l.type === "conv2d" || l.type === "depthwise2d" || l.type === "dense";
}

/**
 * Output size of a conv/pool along one axis, TensorFlow semantics.
 *
 * @example
 * ```ts
 * import { outSize } from "./spec.ts";
 * // 96 wide, 3x3 stride 2: "same" gives ceil(96/2), "valid" floor((96-3)/2)+1
 * if (outSize(96, 3, 2, "same") !== 48 || outSize(96, 3, 2, "valid") !== 47) throw new Error();
 * ```
 */
export function outSize(inp: number, k: number, s: number, padding: Padding): number {
  return padding === "same" ? Math.ceil(inp / s) : Math.floor((inp - k) / s) + 1;
}

/** Shape of every weight of a layer, given its input channel count. */
export interface ParamShapes {
  kernel: number[];
  bias?: number[];
  bn?: number[];
}

/**
 * Walks the network and returns, for each weight layer, its parameter shapes
 * and its input/output spatial shapes; throws on an impossible network.
 *
 * @example
 * ```ts
 * import { layerShapes } from "./spec.ts";
 * const s = layerShapes({ name: "t", inputShape: [8, 8, 1], classes: 2, layers: [
 *   { type: "conv2d", name: "c", filters: 4, kernel: 3, stride: 2, padding: "same", bias: false, bn: true, act: "relu" },
 *   { type: "gap", name: "g" },
 *   { type: "dense", name: "fc", units: 2, bias: true, act: "none" },
 * ] });
 * if (s.get("c")!.out.join() !== "4,4,4" || s.get("fc")!.params.kernel.join() !== "4,2") throw new Error();
 * ```
 */
export function layerShapes(
  arch: ArchSpec,
): Map<string, { params: ParamShapes; in: number[]; out: number[] }> {
  const res = new Map<string, { params: ParamShapes; in: number[]; out: number[] }>();
  const names = new Set<string>();
  for (const l of arch.layers) {
    if (names.has(l.name) || l.name === NETWORK_INPUT) {
      throw new Error(`architecture ${arch.name}: duplicate layer name ${l.name}`);
    }
    names.add(l.name);
  }
  const inputs = layerInputs(arch);
  const outs = new Map<string, number[]>([[NETWORK_INPUT, [...arch.inputShape]]]);
  let shape: number[] = [...arch.inputShape];
  for (const l of arch.layers) {
    const ins = inputs.get(l.name)!.map((n) => outs.get(n)!);
    shape = ins[0];
    const inShape = shape;
    switch (l.type) {
      case "conv2d":
      case "depthwise2d": {
        if (shape.length !== 3) {
          throw new LayerShapeError(l.name, `expects an image input, got ${shape}`);
        }
        const [h, w, c] = shape;
        const cout = l.type === "conv2d" ? l.filters : c;
        const oh = outSize(h, l.kernel, l.stride, l.padding);
        const ow = outSize(w, l.kernel, l.stride, l.padding);
        if (oh < 1 || ow < 1) {
          throw new LayerShapeError(l.name, `output would be empty (${h}x${w} in)`);
        }
        shape = [oh, ow, cout];
        const kernel = l.type === "conv2d"
          ? [l.kernel, l.kernel, c, cout]
          : [l.kernel, l.kernel, c, 1];
        res.set(l.name, {
          params: { kernel, bias: l.bias ? [cout] : undefined, bn: l.bn ? [cout] : undefined },
          in: inShape,
          out: shape,
        });
        break;
      }
      case "maxpool": {
        if (shape.length !== 3) {
          throw new LayerShapeError(l.name, `expects an image input, got ${shape}`);
        }
        const [h, w, c] = shape;
        shape = [outSize(h, l.size, l.stride, "valid"), outSize(w, l.size, l.stride, "valid"), c];
        if (shape[0] < 1 || shape[1] < 1) {
          throw new LayerShapeError(l.name, `output would be empty (${h}x${w} in)`);
        }
        break;
      }
      case "gap":
        shape = [shape[shape.length - 1]];
        break;
      case "add": {
        if (ins.length !== 2 || ins[0].join() !== ins[1].join()) {
          throw new LayerShapeError(
            l.name,
            `inputs: adds two outputs of the same shape, got ${
              ins.map((x) => `[${x}]`).join(" and ")
            }`,
          );
        }
        shape = ins[0];
        break;
      }
      case "dense": {
        if (shape.length !== 1) {
          throw new LayerShapeError(l.name, `expects a flat input, got ${shape}`);
        }
        res.set(l.name, {
          params: { kernel: [shape[0], l.units], bias: l.bias ? [l.units] : undefined },
          in: inShape,
          out: [l.units],
        });
        shape = [l.units];
        break;
      }
    }
    outs.set(l.name, shape);
  }
  if (shape.length !== 1 || shape[0] !== arch.classes) {
    throw new Error(
      `architecture ${arch.name}: output shape ${
        JSON.stringify(shape)
      } != [${arch.classes}] classes`,
    );
  }
  return res;
}

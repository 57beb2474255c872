/**
 * The deployed network as a tfjs LayersModel (`model.json` + `weights.bin`): Keras layers for
 * qgt's layers, saving without a browser, and loading back from a folder.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

import { join } from "node:path";
import type { Model } from "../models/model.ts";
import type { AddSpec, ArchSpec, LayerSpec } from "../models/spec.ts";
import { isWeightLayer, layerInputs, NETWORK_INPUT } from "../models/spec.ts";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";

/** The Keras layer of one qgt layer (not add), with `input` (the first layer's input shape). */
function kerasLayer(
  l: Exclude<LayerSpec, AddSpec>,
  input: { inputShape?: [number, number, number] },
): tf.layers.Layer {
  const act = (a: string) => (a === "none" ? "linear" : a) as "linear" | "relu" | "relu6";
  switch (l.type) {
    case "conv2d":
      return tf.layers.conv2d({
        ...input,
        name: l.name,
        filters: l.filters,
        kernelSize: l.kernel,
        strides: l.stride,
        padding: l.padding,
        useBias: true,
        activation: act(l.act),
      });
    case "depthwise2d":
      return tf.layers.depthwiseConv2d({
        ...input,
        name: l.name,
        kernelSize: l.kernel,
        strides: l.stride,
        padding: l.padding,
        depthMultiplier: 1,
        useBias: true,
        activation: act(l.act),
      });
    case "maxpool":
      return tf.layers.maxPooling2d({
        ...input,
        name: l.name,
        poolSize: l.size,
        strides: l.stride,
        padding: "valid",
      });
    case "gap":
      return tf.layers.globalAveragePooling2d({ ...input, name: l.name });
    case "dense":
      return tf.layers.dense({
        ...input,
        name: l.name,
        units: l.units,
        useBias: true,
        activation: act(l.act),
      });
  }
}

/**
 * A tfjs LayersModel with the model's (dequantized, folded) weights; explicit
 * layer names keep `model.json` identical between exports.
 *
 * @example
 * ```ts
 * import { createModel, foldBatchNorm, tinyCnn } from "../models/mod.ts";
 * import { toLayersModel } from "./keras.ts";
 * const m = foldBatchNorm(createModel(tinyCnn(), 1));
 * const lm = toLayersModel(m);
 * if (lm.layers.length < m.arch.layers.length) throw new Error();
 * ```
 */
export function toLayersModel(model: Model): tf.LayersModel {
  const arch: ArchSpec = model.arch;
  let m: tf.LayersModel;
  if (arch.layers.some((l) => l.inputs || l.type === "add")) {
    // residual connections: a functional model, each layer applied to the outputs it reads
    const inputs = layerInputs(arch);
    const outs = new Map<string, tf.SymbolicTensor>([
      [NETWORK_INPUT, tf.input({ shape: arch.inputShape, name: NETWORK_INPUT })],
    ]);
    for (const l of arch.layers) {
      const from = inputs.get(l.name)!.map((n) => outs.get(n)!);
      let y: tf.SymbolicTensor;
      if (l.type === "add") {
        y = tf.layers.add({ name: l.name }).apply(from) as tf.SymbolicTensor;
        if (l.act !== "none") {
          y = tf.layers.activation({ name: `${l.name}_${l.act}`, activation: l.act })
            .apply(y) as tf.SymbolicTensor;
        }
      } else y = kerasLayer(l, {}).apply(from[0]) as tf.SymbolicTensor;
      outs.set(l.name, y);
    }
    m = tf.model({
      name: arch.name,
      inputs: outs.get(NETWORK_INPUT)!,
      outputs: outs.get(arch.layers[arch.layers.length - 1].name)!,
    });
  } else {
    const seq = tf.sequential({ name: arch.name });
    arch.layers.forEach((l, i) => {
      seq.add(
        kerasLayer(
          l as Exclude<LayerSpec, AddSpec>,
          i === 0 ? { inputShape: arch.inputShape } : {},
        ),
      );
    });
    m = seq;
  }
  for (const l of arch.layers) {
    if (!isWeightLayer(l)) continue;
    const k = model.params.get(`${l.name}/kernel`), b = model.params.get(`${l.name}/bias`);
    if (!k || !b) {
      throw new Error(`export: layer ${l.name} needs kernel and bias (fold BatchNorm first)`);
    }
    m.getLayer(l.name).setWeights([k, b]);
  }
  return m;
}

/**
 * Writes a LayersModel as model.json + weights.bin in `dir`.
 *
 * @example
 * ```ts
 * import { createModel, foldBatchNorm, tinyCnn } from "../models/mod.ts";
 * import { saveLayersModel, toLayersModel } from "./keras.ts";
 * const dir = await Deno.makeTempDir();
 * await saveLayersModel(toLayersModel(foldBatchNorm(createModel(tinyCnn(), 1))), dir);
 * if (!(await Deno.stat(`${dir}/weights.bin`)).size) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveLayersModel(m: tf.LayersModel, dir: string): Promise<void> {
  let saved: tf.io.ModelArtifacts | null = null;
  await m.save(tf.io.withSaveHandler((a) => {
    saved = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: "JSON" },
    });
  }));
  const a = saved! as tf.io.ModelArtifacts;
  const data = a.weightData instanceof ArrayBuffer
    ? new Uint8Array(a.weightData)
    : new Uint8Array(tf.io.concatenateArrayBuffers(a.weightData as ArrayBuffer[]));
  await writeFileAtomic(join(dir, "weights.bin"), data);
  await writeJsonAtomic(join(dir, "model.json"), {
    format: "layers-model",
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: ["weights.bin"], weights: a.weightSpecs }],
  });
}

/**
 * An IOHandler reading model.json + weights.bin from a directory (tfjs has no file:// loader in Deno).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";

 * import { createModel, foldBatchNorm, tinyCnn } from "../models/mod.ts";
 * import { fileLoader, saveLayersModel, toLayersModel } from "./keras.ts";
 * const dir = await Deno.makeTempDir();
 * const lm = toLayersModel(foldBatchNorm(createModel(tinyCnn(), 1)));
 * await saveLayersModel(lm, dir);
 * const back = await tf.loadLayersModel(fileLoader(dir));
 * if (back.countParams() !== lm.countParams()) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fileLoader(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
      const bin = await Deno.readFile(join(dir, "weights.bin"));
      return {
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: bin.buffer.slice(
          bin.byteOffset,
          bin.byteOffset + bin.byteLength,
        ) as ArrayBuffer,
        format: json.format,
      };
    },
  };
}

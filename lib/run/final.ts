/**
 * The run directory's model files (docs/run-directory.md): each finished
 * variant's `variants/<name>/final.qgtw` (weights, and for quantized variants
 * integer codes, latent kernels, scales and zero points) and the reusable
 * float baselines in `<runs root>/.checkpoints/`, both `.qgtw` containers.
 * @module
 */
import { loadCheckpoint, type NamedArray, saveCheckpoint } from "./checkpoint.ts";
import type { LayerEpochRow, MetricRow } from "./run_dir.ts";
import { createModel, type Model, setWeights } from "../models/model.ts";
import type { ArchSpec } from "../models/spec.ts";
import type { QuantSpec } from "../quant/spec.ts";
import type { QuantizedTensor } from "../quant/spec.ts";

/** What `final.qgtw` holds: a finished variant, as plain arrays. */
export interface FinalVariant {
  variant: string;
  mode: string;
  /** The architecture the weights belong to (folded for quantized variants). */
  arch: ArchSpec;
  classNames: string[];
  /** Parameters by name (`<layer>/kernel`, ...). */
  weights: Record<string, Float32Array>;
  quantized?: {
    specs: Record<string, QuantSpec>;
    /** Integer codes, scales and zero points by layer. */
    weights: Record<string, QuantizedTensor>;
    /** The folded kernels just before snapping. */
    latent: Record<string, Float32Array>;
    activationBits: number | "float";
    activationRanges: Record<string, [number, number]>;
  };
}

/**
 * Writes `final.qgtw`: the weights, and for quantized variants each layer's
 * codes, latent kernel, scales and zero points (arrays `codes:<layer>`,
 * `latent:<layer>`, `scales:<layer>`, `zeroPoints:<layer>`), with the
 * architecture, class names, specs and activation ranges in the metadata,
 * so `deno task export` can rebuild the export from the run directory alone.
 *
 * @example
 * ```ts
 * import { readFinal, writeFinal } from "./final.ts";
 * import { tinyCnn } from "../models/zoo.ts";
 * const dir = await Deno.makeTempDir(), p = `${dir}/final.qgtw`;
 * const weights = { "fc/bias": new Float32Array([1, 2]) };
 * await writeFinal(p, { variant: "float", mode: "float", arch: tinyCnn(), classNames: ["a", "b"], weights });
 * const f = await readFinal(p);
 * if (f.weights["fc/bias"][1] !== 2 || f.quantized || f.arch.name !== tinyCnn().name) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFinal(path: string, f: FinalVariant): Promise<void> {
  const arrays: NamedArray[] = Object.entries(f.weights).map(([name, data]) => ({
    name,
    shape: [data.length],
    data,
  }));
  const q = f.quantized;
  if (q) {
    for (const [layer, t] of Object.entries(q.weights)) {
      arrays.push({ name: `codes:${layer}`, shape: t.shape, data: Float32Array.from(t.codes) });
      arrays.push({ name: `latent:${layer}`, shape: t.shape, data: q.latent[layer] });
      arrays.push({
        name: `scales:${layer}`,
        shape: [t.scales.length],
        data: Float32Array.from(t.scales),
      });
      arrays.push({
        name: `zeroPoints:${layer}`,
        shape: [t.zeroPoints.length],
        data: Float32Array.from(t.zeroPoints),
      });
    }
  }
  await saveCheckpoint(path, arrays, {
    variant: f.variant,
    mode: f.mode,
    arch: f.arch,
    classNames: f.classNames,
    specs: q?.specs,
    activationBits: q?.activationBits,
    activationRanges: q?.activationRanges,
  });
}

/**
 * Reads `final.qgtw` (see {@link writeFinal}); errors name the file.
 *
 * @example
 * ```ts ignore
 * const f = await readFinal("reports/runs/x/y/variants/qgt-2/final.qgtw");
 * ```
 */
export async function readFinal(path: string): Promise<FinalVariant> {
  const c = await loadCheckpoint(path);
  const meta = c.meta as {
    variant: string;
    mode: string;
    arch: ArchSpec;
    classNames: string[];
    specs?: Record<string, QuantSpec>;
    activationBits?: number | "float";
    activationRanges?: Record<string, [number, number]>;
  };
  if (!meta.arch) throw new Error(`${path}: not a finished variant (no architecture recorded)`);
  const weights: Record<string, Float32Array> = {};
  const parts: Record<string, Partial<QuantizedTensor>> = {};
  const latent: Record<string, Float32Array> = {};
  for (const a of c.arrays) {
    const [kind, layer] = a.name.includes(":") ? a.name.split(":") : ["w", a.name];
    if (kind === "w") weights[layer] = a.data;
    else if (kind === "latent") latent[layer] = a.data;
    else {
      const t = (parts[layer] ??= {});
      if (kind === "codes") {
        t.codes = Int32Array.from(a.data);
        t.shape = a.shape;
      } else if (kind === "scales") t.scales = a.data;
      else if (kind === "zeroPoints") t.zeroPoints = Int32Array.from(a.data);
    }
  }
  const f: FinalVariant = {
    variant: meta.variant,
    mode: meta.mode,
    arch: meta.arch,
    classNames: meta.classNames,
    weights,
  };
  if (meta.specs && meta.activationRanges) {
    const qt: Record<string, QuantizedTensor> = {};
    for (const [layer, spec] of Object.entries(meta.specs)) {
      const t = parts[layer];
      if (!t?.codes || !t.scales || !t.zeroPoints) {
        throw new Error(`${path}: missing codes of layer ${layer}`);
      }
      qt[layer] = {
        shape: t.shape!,
        bits: spec.bits,
        symmetric: spec.symmetric,
        axis: spec.perChannel ? (spec.axis ?? t.shape!.length - 1) : -1,
        codes: t.codes,
        scales: t.scales,
        zeroPoints: t.zeroPoints,
      };
    }
    f.quantized = {
      specs: storedSpecs(meta.specs),
      weights: qt,
      latent,
      activationBits: meta.activationBits ?? 8,
      activationRanges: meta.activationRanges,
    };
  }
  return f;
}

/**
 * Specs as a `final.qgtw` stores them. Files written before `QuantSpec.steps` existed hold LSQ's
 * learned steps as explicit `scale` values: they become `scale: "lsq"` with those `steps`.
 *
 * @example
 * ```ts
 * import { storedSpecs } from "./final.ts";
 * const s = storedSpecs({ c: { bits: 2, symmetric: true, perChannel: true, scale: [0.5, 0.25] as never } });
 * if (s.c.scale !== "lsq" || (s.c.steps as number[])[1] !== 0.25) throw new Error();
 * ```
 */
export function storedSpecs(specs: Record<string, QuantSpec>): Record<string, QuantSpec> {
  return Object.fromEntries(
    Object.entries(specs).map(([layer, spec]) => {
      const old = spec.scale as unknown;
      if (old === undefined || typeof old === "string") return [layer, spec];
      return [layer, { ...spec, scale: "lsq", steps: old as number | number[] }];
    }),
  );
}

/** A finished variant loaded as a model (its codes, scales and ranges in `final.quantized`). */
export interface Deployed {
  final: FinalVariant;
  model: Model;
}

/**
 * Loads `final.qgtw` as a tfjs model holding the deployed weights (re-exporting it is
 * `exportStoredVariant` in lib/export/).
 *
 * @example
 * ```ts ignore
 * const d = await loadDeployed("reports/runs/x/y/variants/qgt-2/final.qgtw");
 * ```
 */
export async function loadDeployed(path: string): Promise<Deployed> {
  const final = await readFinal(path);
  const model = createModel(final.arch, 0);
  setWeights(model, final.weights);
  return { final, model };
}

/** A reusable float baseline: its weights and the training tables it came with. */
export interface FloatBaseline {
  weights: Record<string, Float32Array>;
  metrics: MetricRow[];
  layerEpochs: LayerEpochRow[];
  /** The variant hash it was trained under. */
  hash: string;
}

/**
 * Writes a float baseline (`<checkpoint root>/float-<key>.qgtw`).
 *
 * @example
 * ```ts
 * import { readFloatBaseline, writeFloatBaseline } from "./final.ts";
 * const dir = await Deno.makeTempDir(), p = `${dir}/float-x.qgtw`;
 * await writeFloatBaseline(p, { weights: { w: new Float32Array([3]) }, metrics: [], layerEpochs: [], hash: "h" });
 * if ((await readFloatBaseline(p)).weights.w[0] !== 3) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFloatBaseline(path: string, b: FloatBaseline): Promise<void> {
  await saveCheckpoint(
    path,
    Object.entries(b.weights).map(([name, data]) => ({ name, shape: [data.length], data })),
    { metrics: b.metrics, layerEpochs: b.layerEpochs, hash: b.hash },
  );
}

/**
 * Reads a float baseline written by {@link writeFloatBaseline}.
 *
 * @example
 * ```ts ignore
 * const b = await readFloatBaseline(floatBaselinePath(root, key));
 * ```
 */
export async function readFloatBaseline(path: string): Promise<FloatBaseline> {
  const c = await loadCheckpoint(path);
  return {
    weights: Object.fromEntries(c.arrays.map((a) => [a.name, a.data])),
    metrics: (c.meta.metrics as MetricRow[]) ?? [],
    layerEpochs: (c.meta.layerEpochs as LayerEpochRow[]) ?? [],
    hash: String(c.meta.hash ?? ""),
  };
}

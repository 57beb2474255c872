/**
 * Reading a finished variant back from its run directory
 * (`variants/<name>/final.qgtw`, written by the runner) as an export source.
 * @module
 */
import { loadCheckpoint } from "../experiment/checkpoint.ts";
import { createModel, type Model, setWeights } from "../models/model.ts";
import type { ArchSpec } from "../models/spec.ts";
import type { QuantSpec } from "../quant/spec.ts";
import type { QuantizedTensor } from "../quant/quantizer.ts";
import { exportSource } from "./export.ts";
import type { ExportSource } from "./format.ts";

/** A deployed variant loaded from disk. */
export interface Deployed {
  variant: string;
  mode: string;
  model: Model;
  source: ExportSource | null;
  activationBits: number | "float" | undefined;
  /** Folded kernels before snapping, by layer (quantized variants). */
  latent: Record<string, Float32Array>;
  specs?: Record<string, QuantSpec>;
}

/**
 * Loads `final.qgtw`; `source` is null for float variants.
 *
 * @example
 * ```ts ignore
 * const d = await loadDeployed("reports/runs/x/y/variants/qgt-2/final.qgtw");
 * ```
 */
export async function loadDeployed(path: string): Promise<Deployed> {
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
  const model = createModel(meta.arch, 0);
  const weights: Record<string, Float32Array> = {};
  const q: Record<string, Partial<QuantizedTensor>> = {};
  const latent: Record<string, Float32Array> = {};
  for (const a of c.arrays) {
    const [kind, layer] = a.name.includes(":") ? a.name.split(":") : ["w", a.name];
    if (kind === "w") weights[layer] = a.data;
    else {
      q[layer] ??= {};
      if (kind === "codes") {
        q[layer].codes = Int32Array.from(a.data);
        q[layer].shape = a.shape;
      } else if (kind === "scales") q[layer].scales = a.data;
      else if (kind === "zeroPoints") q[layer].zeroPoints = Int32Array.from(a.data);
      else if (kind === "latent") latent[layer] = a.data;
    }
  }
  setWeights(model, weights);
  let source: ExportSource | null = null;
  if (meta.specs && meta.activationRanges) {
    const qt: Record<string, QuantizedTensor> = {};
    for (const [layer, spec] of Object.entries(meta.specs)) {
      const t = q[layer];
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
    source = exportSource(model, qt, meta.specs, meta.activationRanges, meta.classNames);
  }
  return {
    variant: meta.variant,
    mode: meta.mode,
    model,
    source,
    activationBits: meta.activationBits,
    latent,
    specs: meta.specs,
  };
}

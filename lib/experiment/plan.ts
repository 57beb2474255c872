/**
 * Planning a run from the resolved experiment, before anything trains: which
 * variants run in which order (float baselines first), the architecture and
 * quantizer specs of each variant for the data, the key under which a float
 * baseline is reused, and the preflight checks that make a bad setting fail
 * in seconds rather than after the float network.
 * @module
 */
import { type ArchSpec, LayerShapeError, layerShapes, type LayerSpec } from "../models/spec.ts";
import { buildArchitecture } from "../models/zoo.ts";
import { foldedArch } from "../models/fold.ts";
import type { Dataset } from "../data/dataset.ts";
import { resolveLayerSpecs, weightLayerSizes } from "../quant/layers.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { assignMixedPrecision } from "../methods/analysis.ts";
import { exportOverheadBound, type Provenance } from "../format/model_file.ts";
import { hashOf, type ResolvedExperiment, type ResolvedVariant } from "./define.ts";
import { quantizationOf, startsFromFloat } from "./method.ts";

/** The variants a run trains, in order, and the float variant quantized ones start from. */
export interface RunPlan {
  order: ResolvedVariant[];
  floatVariant: ResolvedVariant | undefined;
}

/**
 * The variants to run: the requested ones plus the float baseline they
 * depend on, float variants first. `all` are every variant of the
 * experiment (the requested ones may be a subset, `--variants`).
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { planRun } from "./plan.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const all = resolveExperiment(smoke).variants;
 * const exp = resolveExperiment(smoke, { variants: ["qat-4"] });
 * const { order } = planRun(exp, all, "smoke.ts");
 * if (order.map((v) => v.name).join() !== "float,qat-4") throw new Error();
 * ```
 */
export function planRun(
  exp: ResolvedExperiment,
  all: ResolvedVariant[],
  where: string,
): RunPlan {
  const isFloat = (v: ResolvedVariant) => v.method.mode === "float";
  const floatVariant = all.find((v) => v.name === "float" && isFloat(v)) ??
    all.find(isFloat) ??
    exp.variants.find(isFloat);
  const needsFloat = exp.variants.some((v) => startsFromFloat(v.method));
  if (needsFloat && !floatVariant) {
    throw new Error(`${where}: quantized variants start from a float variant, but there is none`);
  }
  const order: ResolvedVariant[] = [];
  if (needsFloat && floatVariant && !exp.variants.some((v) => v.name === floatVariant.name)) {
    order.push(floatVariant);
  }
  order.push(
    ...exp.variants.filter(isFloat),
    ...exp.variants.filter((v) => !isFloat(v)),
  );
  return { order, floatVariant };
}

/**
 * The architecture of a variant for a dataset.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { variantArch } from "./plan.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const exp = resolveExperiment(smoke); // small_cnn
 * const train = {
 *   name: "t",
 *   shape: [32, 32, 1] as [number, number, number],
 *   classNames: ["no", "yes"],
 *   images: new Uint8Array(0),
 *   labels: new Uint8Array(0),
 * };
 * const arch = variantArch(exp.variants[0], train);
 * if (arch.inputShape.join() !== "32,32,1" || arch.classes !== 2) throw new Error();
 * ```
 */
export function variantArch(v: ResolvedVariant, train: Dataset): ArchSpec {
  const a = v.architecture;
  if (a.layers) return declaredArch(a.name ?? "custom", a.layers as LayerSpec[], train);
  const o = a.options ?? {};
  const arch = buildArchitecture(a.name!, train.shape, {
    alpha: o.alpha,
    classes: o.classes ?? train.classNames.length,
    channels: o.channels,
  });
  if (arch.classes !== train.classNames.length) {
    throw new Error(
      `architecture.options.classes: ${arch.classes}, but dataset ${train.name} has ${train.classNames.length} classes`,
    );
  }
  return arch;
}

/**
 * An experiment's own network on the data: its layers on the data's image
 * shape, walked once so that a layer that does not fit is an error naming
 * it and its field, before anything trains.
 */
function declaredArch(name: string, layers: LayerSpec[], train: Dataset): ArchSpec {
  const classes = train.classNames.length;
  const arch: ArchSpec = { name, inputShape: [...train.shape], classes, layers };
  const at = (l: LayerSpec) => `architecture.layers.${layers.indexOf(l)} (${l.type} ${l.name})`;
  const last = layers[layers.length - 1];
  if (last.type !== "dense") {
    throw new Error(
      `${
        at(last)
      }: the last layer must be a dense layer with one unit per class (${classes} for ${train.name})`,
    );
  }
  if ((last as { units: number }).units !== classes) {
    throw new Error(
      `${at(last)}.units: ${
        (last as { units: number }).units
      }, but dataset ${train.name} has ${classes} classes`,
    );
  }
  try {
    layerShapes(arch);
  } catch (e) {
    if (e instanceof LayerShapeError) {
      const l = layers.find((x) => x.name === e.layer);
      if (l) throw new Error(`${at(l)}: ${e.reason}`);
    }
    throw new Error(`architecture.layers: ${(e as Error).message}`);
  }
  return arch;
}

/**
 * The quantizer spec of every weight layer of a quantized variant: its
 * method's quantization settings, their per-layer overrides, and `bits` (a
 * mixed-precision assignment) on top.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { specsFor } from "./plan.ts";
 * import { smallCnn } from "../models/zoo.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const qat4 = resolveExperiment(smoke, { variants: ["qat-4"] }).variants[0];
 * const specs = specsFor(qat4, smallCnn(), { conv1: 2 });
 * if (specs.conv1.bits !== 2 || specs.conv2.bits !== 4) throw new Error();
 * ```
 */
export function specsFor(
  v: ResolvedVariant,
  arch: ArchSpec,
  bits?: Record<string, number>,
): Record<string, QuantSpec> {
  const q = quantizationOf(v.method);
  if (!q) throw new Error(`variant ${v.name}: a float variant has no quantizer specs`);
  const layers: Record<string, { bits?: number | "float"; lambda?: number }> = { ...q.layers };
  if (bits) {
    for (const [l, b] of Object.entries(bits)) layers[l] = { ...(layers[l] ?? {}), bits: b };
  }
  return resolveLayerSpecs(
    arch,
    {
      bits: q.bits,
      symmetric: q.symmetric,
      narrowRange: q.narrowRange,
      perChannel: q.perChannel,
      scale: q.scale,
    },
    Object.fromEntries(
      Object.entries(layers).map(([k, o]) => [k, { bits: o.bits, lambda: o.lambda }]),
    ),
  );
}

/**
 * Per-layer lambda multipliers a variant sets (`qgt.layers.<name>.lambda`).
 *
 * @example
 * ```ts
 * import { layerLambdas } from "./plan.ts";
 * import { methodOf } from "./method.ts";
 * const v = { method: methodOf({ mode: "qgt", layers: { fc: { lambda: 2 }, conv1: { bits: 4 } } }, "x") };
 * if (JSON.stringify(layerLambdas(v as never)) !== '{"fc":2}') throw new Error();
 * ```
 */
export function layerLambdas(v: ResolvedVariant): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, o] of Object.entries(quantizationOf(v.method)?.layers ?? {})) {
    if (o.lambda !== undefined) out[k] = o.lambda;
  }
  return out;
}

/**
 * The smallest model a mixed-precision variant's candidates allow: every
 * layer at the lowest candidate width, with the export's non-weight bytes
 * bounded by `exportOverheadBound`.
 *
 * @example
 * ```ts ignore
 * const bytes = smallestMixedModel(v, arch, classNames);
 * ```
 */
export function mixedPrecisionFloor(
  v: ResolvedVariant,
  arch: ArchSpec,
  classNames: string[],
  provenance?: Provenance,
): number {
  if (v.method.mode !== "mixed") {
    throw new Error(`variant ${v.name}: not a mixed-precision variant`);
  }
  const mixed = v.method.search;
  const sizes = weightLayerSizes(arch);
  const base = Object.values(specsFor(v, arch))[0];
  return assignMixedPrecision(
    sizes,
    sizes.flatMap((l) => mixed.candidates.map((bits) => ({ layer: l.name, bits, score: 0 }))),
    0,
    base,
    exportOverheadBound(foldedArch(arch), classNames, base, provenance),
  ).bytes;
}

/**
 * What can be checked of one variant before anything trains: the network
 * builds for the data (classes), a batch fits in the training set, every
 * layer of a quantized variant is quantized (exportable), and a
 * mixed-precision budget is reachable with the candidate widths. Throws a
 * one-line error naming the field.
 *
 * @example
 * ```ts
 * import { preflight } from "./plan.ts";
 * import { resolveExperiment } from "./define.ts";
 * import smoke from "../../experiments/smoke.ts";
 * import { methodOf } from "./method.ts";
 * const v = resolveExperiment(smoke).variants[0];
 * const train = { name: "t", shape: [32, 32, 1] as [number, number, number], classNames: ["a", "b"], images: new Uint8Array(0), labels: new Uint8Array(64) };
 * preflight(v, train); // fine
 * let failed = false;
 * try {
 *   const method = methodOf({ mode: "qgt", mixed: { budgetBytes: 10, candidates: [1, 2] } }, "x");
 *   preflight({ ...v, method }, train);
 * } catch {
 *   failed = true;
 * }
 * if (!failed) throw new Error();
 * ```
 */
export function preflight(v: ResolvedVariant, train: Dataset, provenance?: Provenance): void {
  const arch = variantArch(v, train);
  if (v.train.batchSize > train.labels.length) {
    throw new Error(
      `variant ${v.name}: train.batchSize ${v.train.batchSize} is more than the ${train.labels.length} training images`,
    );
  }
  if (v.method.mode !== "float") {
    for (const [layer, o] of Object.entries(quantizationOf(v.method)?.layers ?? {})) {
      if (o.bits === "float") {
        throw new Error(
          `variants.${v.name}.qgt.layers.${layer}.bits: "float" leaves the layer unquantized, but a run exports every quantized variant, which needs every weight layer at 1-8 bits`,
        );
      }
    }
  }
  if (v.method.mode !== "mixed") return;
  const mixed = v.method.search;
  const smallest = mixedPrecisionFloor(v, arch, train.classNames, provenance);
  if (smallest > mixed.budgetBytes) {
    throw new Error(
      `variants.${v.name}.qgt.mixed.budgetBytes: ${mixed.budgetBytes} is below the smallest model the candidates allow (${smallest} bytes estimated, every layer at ${
        Math.min(...mixed.candidates)
      } bits)`,
    );
  }
}

/**
 * Checks a whole run before its directory is created: the data has
 * validation images, and every variant passes {@link preflight}. Errors are
 * one line prefixed with `where` (the experiment module).
 *
 * @example
 * ```ts
 * import { preflightRun } from "./plan.ts";
 * import { resolveExperiment } from "./define.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const v = resolveExperiment(smoke).variants[0];
 * const ds = { name: "t", shape: [32, 32, 1] as [number, number, number], classNames: ["a", "b"], images: new Uint8Array(0), labels: new Uint8Array(64) };
 * let msg = "";
 * try { preflightRun([v], { train: ds, val: { ...ds, labels: new Uint8Array(0) } }, "x.ts"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("x.ts: dataset synthetic-person has no validation images")) throw new Error(msg);
 * ```
 */
export function preflightRun(
  order: ResolvedVariant[],
  data: { train: Dataset; val: Dataset },
  where: string,
  provenanceOf?: (v: ResolvedVariant) => Provenance,
): void {
  const first = order[0];
  if (!data.val.labels.length) {
    throw new Error(
      `${where}: dataset ${first.dataset.name} has no validation images with these options (${
        JSON.stringify(first.dataset.options ?? {})
      })`,
    );
  }
  for (const v of order) {
    try {
      preflight(v, data.train, provenanceOf?.(v));
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
  }
}

/**
 * The key under which a float variant's trained weights are reused: its
 * resolved settings with the seed and the data's checksum, so any
 * experiment with the same seed, data, network and training shares it.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { floatBaselineKey } from "./plan.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const v = resolveExperiment(smoke).variants[0];
 * if (floatBaselineKey(v, 7, "a") === floatBaselineKey(v, 7, "b")) throw new Error();
 * ```
 */
export function floatBaselineKey(v: ResolvedVariant, seed: number, dataChecksum: string): string {
  return hashOf({
    seed,
    data: dataChecksum,
    dataset: v.dataset,
    architecture: v.architecture,
    train: v.train,
    qgt: v.qgt,
  });
}

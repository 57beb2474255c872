/**
 * A variant's training state between epochs, and its epoch checkpoint
 * (`variants/<name>/state.qgtw`): weights, optimizer slots, the quantized
 * step's own state, specs, activation ranges and the tables so far, so an
 * interrupted run resumes exactly where its last epoch ended.
 * @module
 */
import type { OptimizerState } from "../train/optim.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { loadCheckpoint, type NamedArray, saveCheckpoint } from "../run/checkpoint.ts";
import type { LayerEpochRow, MetricRow } from "../run/run_dir.ts";

/** Persisted state of a variant between epochs. */
export interface VariantState {
  /** The phase being trained (index into the phase plan). */
  phase: number;
  /** Epochs of that phase already done. */
  epochDone: number;
  /** Whether `weights` belong to the BatchNorm-folded network. */
  folded: boolean;
  weights: Record<string, Float32Array>;
  optimizer?: OptimizerState;
  specs?: Record<string, QuantSpec>;
  activationRanges?: Record<string, [number, number]>;
  /** Per-layer sensitivity measured for mixed precision (loss increase per layer and width). */
  sensitivity?: { layer: string; bits: number; score: number }[];
  /** LSQ: each quantized layer's learned steps (of the kernels `weights` holds). */
  steps?: Record<string, Float32Array>;
  metrics: MetricRow[];
  layerEpochs: LayerEpochRow[];
}

/**
 * The state as checkpoint arrays (`w:<param>`, `opt:<i>`, `setup:<i>`) and metadata.
 *
 * @example
 * ```ts
 * import { checkpointToState, stateToCheckpoint } from "./state.ts";
 * const s = { phase: 1, epochDone: 2, folded: true, weights: { "fc/bias": new Float32Array([1]) },
 *   optimizer: { steps: 5, slots: [new Float32Array([2])] }, metrics: [], layerEpochs: [] };
 * const back = checkpointToState(stateToCheckpoint(s));
 * if (back.optimizer?.steps !== 5 || back.weights["fc/bias"][0] !== 1 || back.phase !== 1) throw new Error();
 * ```
 */
export function stateToCheckpoint(
  s: VariantState,
): { arrays: NamedArray[]; meta: Record<string, unknown> } {
  const arrays: NamedArray[] = Object.entries(s.weights).map(([name, data]) => ({
    name: `w:${name}`,
    shape: [data.length],
    data,
  }));
  (s.optimizer?.slots ?? []).forEach((data, i) =>
    arrays.push({ name: `opt:${i}`, shape: [data.length], data })
  );
  (s.optimizer?.setup ?? []).forEach((data, i) =>
    arrays.push({ name: `setup:${i}`, shape: [data.length], data })
  );
  for (const [layer, data] of Object.entries(s.steps ?? {})) {
    arrays.push({ name: `lsq:${layer}`, shape: [data.length], data });
  }
  const meta = {
    phase: s.phase,
    epochDone: s.epochDone,
    folded: s.folded,
    optimizerSteps: s.optimizer?.steps,
    specs: s.specs,
    activationRanges: s.activationRanges,
    sensitivity: s.sensitivity,
    metrics: s.metrics,
    layerEpochs: s.layerEpochs,
  };
  return { arrays, meta };
}

/**
 * The state back from checkpoint arrays and metadata ({@link stateToCheckpoint}).
 *
 * @example
 * ```ts
 * import { checkpointToState } from "./state.ts";
 * const s = checkpointToState({ arrays: [], meta: { phase: 0, epochDone: 1, folded: false } });
 * if (s.optimizer !== undefined || s.metrics.length !== 0) throw new Error();
 * ```
 */
export function checkpointToState(
  c: { arrays: { name: string; data: Float32Array }[]; meta: Record<string, unknown> },
): VariantState {
  const m = c.meta;
  const weights: Record<string, Float32Array> = {};
  const slots: Float32Array[] = [];
  const setup: Float32Array[] = [];
  const steps: Record<string, Float32Array> = {};
  for (const a of c.arrays) {
    if (a.name.startsWith("lsq:")) steps[a.name.slice(4)] = a.data;
    else if (a.name.startsWith("w:")) weights[a.name.slice(2)] = a.data;
    else if (a.name.startsWith("opt:")) slots[Number(a.name.slice(4))] = a.data;
    else if (a.name.startsWith("setup:")) setup[Number(a.name.slice(6))] = a.data;
  }
  return {
    phase: m.phase as number,
    epochDone: m.epochDone as number,
    folded: m.folded as boolean,
    weights,
    optimizer: m.optimizerSteps !== undefined
      ? { steps: m.optimizerSteps as number, slots, ...(setup.length ? { setup } : {}) }
      : undefined,
    specs: m.specs as VariantState["specs"],
    activationRanges: m.activationRanges as VariantState["activationRanges"],
    sensitivity: m.sensitivity as VariantState["sensitivity"],
    ...(Object.keys(steps).length ? { steps } : {}),
    metrics: (m.metrics as MetricRow[]) ?? [],
    layerEpochs: (m.layerEpochs as LayerEpochRow[]) ?? [],
  };
}

/**
 * Saves a state checkpoint with the variant's compute seconds so far.
 *
 * @example
 * ```ts
 * import { loadState, saveState } from "./state.ts";
 * const dir = await Deno.makeTempDir(), p = `${dir}/state.qgtw`;
 * await saveState(p, { phase: 0, epochDone: 1, folded: false, weights: {}, metrics: [], layerEpochs: [] }, 12);
 * const back = await loadState(p);
 * if (back?.seconds !== 12 || back.state.epochDone !== 1) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveState(path: string, s: VariantState, seconds: number): Promise<void> {
  const c = stateToCheckpoint(s);
  await saveCheckpoint(path, c.arrays, { ...c.meta, seconds });
}

/**
 * Loads a state checkpoint and the compute seconds it records, or null when
 * there is no checkpoint.
 *
 * @example
 * ```ts
 * import { loadState } from "./state.ts";
 * const dir = await Deno.makeTempDir();
 * if (await loadState(`${dir}/none.qgtw`) !== null) throw new Error();
 * await Deno.remove(dir);
 * ```
 */
export async function loadState(
  path: string,
): Promise<{ state: VariantState; seconds: number } | null> {
  let c;
  try {
    c = await loadCheckpoint(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return {
    state: checkpointToState(c),
    seconds: typeof c.meta.seconds === "number" ? c.meta.seconds : 0,
  };
}

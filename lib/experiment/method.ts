/**
 * A variant's training method as a discriminated union, one type per mode,
 * each carrying only the settings that mode uses, and the one translation
 * from the settings as written (`qgt`, flat, merged from base and variant).
 *
 * Why two forms: an experiment module writes its method settings flat under
 * `qgt`, so that a base can hold what its variants share (a fine-tuning `lr`,
 * a lambda ramp) and a variant states only what differs; that written form is
 * what the settings hash covers, so every shipped experiment, committed run
 * and reused float baseline keeps its hash. The code that trains, plans and
 * quantizes reads the typed {@link Method} that {@link methodOf} makes from
 * it, and nothing else; a field that a mode does not use is dropped there
 * (it may come from the base), and a field that contradicts the mode is an
 * error naming it.
 *
 * Learned state (LSQ's step sizes) is not a setting: it lives in the
 * variant's training state and reaches a quantizer as `QuantSpec.steps`.
 * @module
 */
import type { LambdaSchedule } from "../methods/lambda.ts";
import type { FreezeOptions } from "../methods/oscillation.ts";
import type { RegularizerKind } from "../methods/regularizers.ts";
import type { Reduction } from "../methods/training_setup.ts";
import type { ScaleMethod } from "../quant/spec.ts";
import type { QgtDef } from "./schema.ts";

/** How weights (and activations) are quantized: what every quantized mode shares. */
export interface Quantization {
  bits: number;
  symmetric?: boolean;
  narrowRange?: boolean;
  perChannel?: boolean;
  scale?: ScaleMethod;
  /** Per-layer bits (or "float") and lambda multipliers. */
  layers: Record<string, { bits?: number | "float"; lambda?: number }>;
  activationBits: number | "float";
}

/** LSQ's settings, present when `scale` is "lsq": where its step starts and its learning rate. */
export interface LsqSettings {
  init: "paper" | "mse";
  stepLr?: number;
}

/** What the two fine-tuning modes (QAT, QGT) share. */
interface FineTuning {
  quant: Quantization;
  /** Start from the float variant's weights, or train from a fresh initialisation. */
  from: "float" | "scratch";
  /** BatchNorm trains live (folded only at the end); always true from scratch. */
  liveBatchNorm: boolean;
  /** Epochs of the (first) phase; unset: 2, or QAT from scratch `train.epochs`. */
  epochs?: number;
  /** Fine-tuning learning rate (cosine); unset: a tenth of `train.schedule.lr`. */
  lr?: number;
  freeze?: FreezeOptions;
  bnReestimate?: { images: number };
  lsq?: LsqSettings;
}

/** Float training: nothing of its own (the network trains on `train`). */
export interface FloatMethod {
  mode: "float";
}

/** Post-training quantization of the float variant. */
export interface PtqMethod {
  mode: "ptq";
  quant: Quantization;
}

/** Quantization-aware training (fake quantization with the straight-through estimator). */
export interface QatMethod extends FineTuning {
  mode: "qat";
}

/** Quantization-guided training: the regularizer, with or without fake quantization. */
export interface QgtMethod extends FineTuning {
  mode: "qgt";
  fakeQuant: boolean;
  regularizer: RegularizerKind;
  lambda: LambdaSchedule;
  /** Epochs of the folded, fake-quantized fine-tuning after the regularized phase (0: snap). */
  finetuneEpochs: number;
  reduction?: Reduction;
  decoupled?: boolean;
}

/** A mixed-precision search of per-layer bits within a byte budget. */
export interface MixedSearch {
  budgetBytes: number;
  candidates: number[];
  sensitivitySamples?: number;
}

/** Mixed precision: the per-layer bits are searched, then the variant quantizes as PTQ, QAT or QGT. */
export interface MixedMethod {
  mode: "mixed";
  search: MixedSearch;
  base: QuantizedMethod;
}

/** A variant's method. */
export type Method = FloatMethod | PtqMethod | QatMethod | QgtMethod | MixedMethod;

/** A method that quantizes: what a mixed-precision search runs after choosing the bits. */
export type QuantizedMethod = PtqMethod | QatMethod | QgtMethod;

/**
 * The method that trains or quantizes: a mixed-precision variant's base
 * method, else the method itself.
 *
 * @example
 * ```ts
 * import { baseMethod } from "./method.ts";
 * const qat = { mode: "qat" as const, quant: { bits: 2, layers: {}, activationBits: 8 }, from: "float" as const, liveBatchNorm: true };
 * if (baseMethod({ mode: "mixed", search: { budgetBytes: 1, candidates: [2] }, base: qat }) !== qat) throw new Error();
 * ```
 */
export function baseMethod(m: Method): FloatMethod | QuantizedMethod {
  return m.mode === "mixed" ? m.base : m;
}

/**
 * The quantization settings of a method, or undefined for float.
 *
 * @example
 * ```ts
 * import { quantizationOf } from "./method.ts";
 * if (quantizationOf({ mode: "float" }) !== undefined) throw new Error();
 * ```
 */
export function quantizationOf(m: Method): Quantization | undefined {
  const b = baseMethod(m);
  return b.mode === "float" ? undefined : b.quant;
}

/**
 * LSQ's settings when the method learns its steps (`scale: "lsq"`), else undefined.
 *
 * @example
 * ```ts
 * import { lsqOf, methodOf } from "./method.ts";
 * if (lsqOf(methodOf({ mode: "qat", scale: "lsq" }, "x"))?.init !== "paper") throw new Error();
 * ```
 */
export function lsqOf(m: Method): LsqSettings | undefined {
  const b = baseMethod(m);
  return b.mode === "qat" || b.mode === "qgt" ? b.lsq : undefined;
}

/**
 * Whether a variant starts from the float variant's weights: every quantized
 * method except training from scratch.
 *
 * @example
 * ```ts
 * import { methodOf, startsFromFloat } from "./method.ts";
 * if (!startsFromFloat(methodOf({ mode: "ptq", bits: 4 }, "x"))) throw new Error();
 * if (startsFromFloat(methodOf({ mode: "qat", from: "scratch" }, "x"))) throw new Error();
 * ```
 */
export function startsFromFloat(m: Method): boolean {
  const b = baseMethod(m);
  return b.mode === "ptq" || ((b.mode === "qat" || b.mode === "qgt") && b.from === "float");
}

/**
 * The regularizer whose distance per-layer quantization errors are measured
 * in: a QGT variant's own, else the grid distance.
 *
 * @example
 * ```ts
 * import { errorMeasureOf } from "./method.ts";
 * if (errorMeasureOf({ mode: "float" }) !== "grid") throw new Error();
 * ```
 */
export function errorMeasureOf(m: Method): RegularizerKind {
  const b = baseMethod(m);
  return b.mode === "qgt" ? b.regularizer : "grid";
}

/**
 * The one translation from the written settings to the method. `at` names
 * the variant's settings (`<module>: variants.<name>.qgt`) in errors.
 *
 * - `mode` "float" and "ptq" keep only what they use.
 * - A `mixed` search on a "ptq", "qat" or "qgt" variant makes a
 *   {@link MixedMethod} around that mode's method.
 * - Defaults that depend on other fields are filled here, once: QGT's
 *   `fakeQuant` false, `regularizer` "grid", `lambda` linear 0 to 1,
 *   `finetuneEpochs` 0 with fake quantization and 1 without; BatchNorm is
 *   live from scratch.
 * - Contradictions throw one line naming the field: `decoupled` needs QGT
 *   with the grid regularizer, `freeze` and `scale: "lsq"` need fake
 *   quantization, and `lsqInit` / `lsqStepLr` need `scale: "lsq"`.
 *
 * @example
 * ```ts
 * import { methodOf } from "./method.ts";
 * const m = methodOf({ mode: "qgt", bits: 2, mixed: { budgetBytes: 9000, candidates: [2, 4] } }, "x");
 * if (m.mode !== "mixed" || m.base.mode !== "qgt" || m.base.finetuneEpochs !== 1) throw new Error();
 * if (methodOf({ mode: "float", bits: 2, lr: 1e-3 }, "x").mode !== "float") throw new Error();
 * let msg = "";
 * try { methodOf({ mode: "qat", decoupled: true }, "x"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("x.decoupled: needs mode \"qgt\"")) throw new Error(msg);
 * ```
 */
export function methodOf(q: QgtDef, at: string): Method {
  checkCombinations(q, at);
  if (q.mode === "float") return { mode: "float" };
  const quant: Quantization = {
    bits: q.bits ?? 8,
    symmetric: q.symmetric,
    narrowRange: q.narrowRange,
    perChannel: q.perChannel,
    scale: q.scale,
    layers: q.layers ?? {},
    activationBits: q.activationBits ?? 8,
  };
  const mixed = (base: QuantizedMethod): Method =>
    q.mixed ? { mode: "mixed", search: q.mixed, base } : base;
  if (q.mode === "ptq") return mixed({ mode: "ptq", quant });
  const from = q.from ?? "float";
  const tuning: FineTuning = {
    quant,
    from,
    liveBatchNorm: q.liveBatchNorm === true || from === "scratch",
    ...(q.epochs !== undefined ? { epochs: q.epochs } : {}),
    ...(q.lr !== undefined ? { lr: q.lr } : {}),
    ...(q.freeze ? { freeze: q.freeze } : {}),
    ...(q.bnReestimate ? { bnReestimate: q.bnReestimate } : {}),
    ...(q.scale === "lsq"
      ? { lsq: { init: q.lsqInit ?? "paper", ...(q.lsqStepLr ? { stepLr: q.lsqStepLr } : {}) } }
      : {}),
  };
  if (q.mode === "qat") return mixed({ mode: "qat", ...tuning });
  const fakeQuant = q.fakeQuant ?? false;
  return mixed({
    mode: "qgt",
    ...tuning,
    fakeQuant,
    regularizer: q.regularizer ?? "grid",
    lambda: q.lambda ?? { type: "linear", from: 0, to: 1 },
    finetuneEpochs: q.finetuneEpochs ?? (fakeQuant ? 0 : 1),
    ...(q.reduction ? { reduction: q.reduction } : {}),
    ...(q.decoupled !== undefined ? { decoupled: q.decoupled } : {}),
  });
}

/** Fields that contradict the mode (they would be silently ignored): one line naming the field. */
function checkCombinations(q: QgtDef, at: string): void {
  const ste = q.mode === "qat" || (q.mode === "qgt" && q.fakeQuant === true);
  const got = `got mode ${JSON.stringify(q.mode)}${
    q.mode === "qgt" && !ste ? " without fakeQuant" : ""
  }`;
  if (q.decoupled && (q.mode !== "qgt" || (q.regularizer ?? "grid") !== "grid")) {
    throw new Error(
      `${at}.decoupled: needs mode "qgt" with regularizer "grid", got mode ${
        JSON.stringify(q.mode)
      }, regularizer ${JSON.stringify(q.regularizer ?? "grid")}`,
    );
  }
  if (q.mode === "ptq" && q.from === "scratch") {
    throw new Error(
      `${at}.from: "scratch" needs mode "qat" or "qgt" (PTQ quantizes the float variant)`,
    );
  }
  if (q.freeze && !ste) {
    throw new Error(`${at}.freeze: needs mode "qat", or "qgt" with fakeQuant true, ${got}`);
  }
  for (const key of ["lsqInit", "lsqStepLr"] as const) {
    if (q[key] !== undefined && q.scale !== "lsq") {
      throw new Error(
        `${at}.${key}: needs scale "lsq", got scale ${JSON.stringify(q.scale ?? "mse")}`,
      );
    }
  }
  if (q.scale === "lsq" && !ste) {
    throw new Error(
      `${at}.scale: "lsq" learns the step in fake-quantized training: needs mode "qat", or "qgt" with fakeQuant true, ${got}`,
    );
  }
}

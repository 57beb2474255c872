/**
 * The experiment format, as a valibot schema: an unknown key, a wrong type or
 * an out-of-range value is an error naming the field and what was expected.
 * @module
 */
import * as v from "valibot";
import { DATASETS } from "../data/registry.ts";
import { REGULARIZER_NAMES } from "../methods/regularizers.ts";
import { REDUCTIONS } from "../methods/training_setup.ts";

/** The training modes: float training, post-training quantization, STE QAT, QGT. */
export type Mode = "float" | "ptq" | "qat" | "qgt";

/** Names of the modes, for validation. */
export const MODES: readonly Mode[] = ["float", "ptq", "qat", "qgt"];

const num = (min: number, max: number) =>
  v.pipe(v.number(), v.finite(), v.minValue(min), v.maxValue(max));
const int = (min: number, max: number) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

const augment = v.strictObject({
  flip: v.optional(v.boolean()),
  shift: v.optional(num(0, 0.5)),
  zoom: v.optional(num(0, 0.5)),
  brightness: v.optional(num(0, 1)),
  contrast: v.optional(num(0, 1)),
});

const optimizer = v.variant("type", [
  v.strictObject({
    type: v.literal("adam"),
    beta1: v.optional(num(0, 1)),
    beta2: v.optional(num(0, 1)),
    epsilon: v.optional(num(0, 1)),
    weightDecay: v.optional(num(0, 1)),
  }),
  v.strictObject({
    type: v.literal("sgd"),
    momentum: v.optional(num(0, 1)),
    nesterov: v.optional(v.boolean()),
    weightDecay: v.optional(num(0, 1)),
  }),
]);

const warm = { warmupSteps: v.optional(int(0, 1e9)) };
const schedule = v.variant("type", [
  v.strictObject({ type: v.literal("constant"), lr: num(0, 10), ...warm }),
  v.strictObject({
    type: v.literal("step"),
    lr: num(0, 10),
    stepEvery: int(1, 1e9),
    gamma: v.optional(num(0, 1)),
    ...warm,
  }),
  v.strictObject({
    type: v.literal("cosine"),
    lr: num(0, 10),
    minLr: v.optional(num(0, 10)),
    ...warm,
  }),
]);

const trainShape = {
  epochs: int(1, 10000),
  batchSize: int(1, 4096),
  optimizer,
  schedule,
  augment: v.optional(augment),
  threads: v.optional(int(1, 8)),
  bnMomentum: v.optional(num(0, 1)),
  gradKernels: v.optional(v.picklist(["tfjs", "qgt"])),
};
const train = v.strictObject(trainShape);

const datasetOptions = v.strictObject({
  trainCount: v.optional(int(1, 1e7)),
  valCount: v.optional(int(1, 1e7)),
  holdout: v.optional(int(0, 1e7)),
  valOffset: v.optional(int(0, 1e7)),
  seed: v.optional(int(0, 2 ** 31)),
  size: v.optional(int(8, 1024)),
  channels: v.optional(v.picklist([1, 3])),
  dir: v.optional(v.string()),
  valFraction: v.optional(num(0, 0.99)),
  splitFile: v.optional(v.string()),
  valDir: v.optional(v.string()),
  classes: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(2))),
  skipBadImages: v.optional(v.boolean()),
});
const datasetShape = {
  name: v.picklist(DATASETS),
  options: v.optional(datasetOptions),
  /** The dataset used instead when the user passes --data DIR (e.g. "vww"). */
  withDir: v.optional(v.picklist(DATASETS)),
};
const dataset = v.strictObject(datasetShape);

const layerName = v.pipe(
  v.string(),
  v.regex(
    /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/,
    "expected a name of letters, digits, _ . - (at most 64)",
  ),
);
const act = v.optional(v.picklist(["none", "relu", "relu6"]));
const oneInput = { inputs: v.optional(v.tuple([layerName])) };
const convCommon = {
  name: layerName,
  ...oneInput,
  kernel: int(1, 15),
  stride: v.optional(int(1, 8)),
  padding: v.optional(v.picklist(["same", "valid"])),
  bias: v.optional(v.boolean()),
  bn: v.optional(v.boolean()),
  act,
};
/** One layer of a declared network: the LayerSpec vocabulary (lib/models/spec.ts), defaults optional. */
const layer = v.variant("type", [
  v.strictObject({ type: v.literal("conv2d"), filters: int(1, 4096), ...convCommon }),
  v.strictObject({ type: v.literal("depthwise2d"), ...convCommon }),
  v.strictObject({
    type: v.literal("maxpool"),
    name: layerName,
    ...oneInput,
    size: int(1, 15),
    stride: v.optional(int(1, 15)),
  }),
  v.strictObject({ type: v.literal("gap"), name: layerName, ...oneInput }),
  v.strictObject({
    type: v.literal("dense"),
    name: layerName,
    ...oneInput,
    units: int(1, 100000),
    bias: v.optional(v.boolean()),
    act,
  }),
  v.strictObject({
    type: v.literal("add"),
    name: layerName,
    inputs: v.tuple([layerName, layerName]),
    act,
  }),
]);

/**
 * A built-in network by `name` (with `options`), or the experiment's own
 * network as a `layers` list (`name` then only names it); which of the two is
 * checked by `checkArchitecture` in define.ts.
 */
const architecture = v.strictObject({
  name: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  options: v.optional(v.strictObject({
    alpha: v.optional(num(0.05, 4)),
    classes: v.optional(int(2, 10000)),
    channels: v.optional(v.array(int(1, 4096))),
  })),
  layers: v.optional(v.pipe(v.array(layer), v.minLength(1), v.maxLength(512))),
});

const lambda = v.variant("type", [
  v.strictObject({ type: v.literal("constant"), lambda: num(0, 1e6) }),
  v.strictObject({
    type: v.literal("linear"),
    from: v.optional(num(0, 1e6)),
    to: num(0, 1e6),
    start: v.optional(num(0, 1)),
    end: v.optional(num(0, 1)),
  }),
  v.strictObject({
    type: v.literal("exp"),
    from: num(1e-12, 1e6),
    to: num(1e-12, 1e6),
    start: v.optional(num(0, 1)),
    end: v.optional(num(0, 1)),
  }),
]);

const qgtShape = {
  mode: v.picklist(MODES),
  bits: v.optional(int(1, 8)),
  symmetric: v.optional(v.boolean()),
  narrowRange: v.optional(v.boolean()),
  perChannel: v.optional(v.boolean()),
  scale: v.optional(v.picklist(["maxabs", "mse", "lsq"])),
  lsqInit: v.optional(v.picklist(["paper", "mse"])),
  lsqStepLr: v.optional(num(1e-6, 1e6)),
  layers: v.optional(v.record(
    v.string(),
    v.strictObject({
      bits: v.optional(v.union([int(1, 8), v.literal("float")])),
      lambda: v.optional(num(0, 1e6)),
    }),
  )),
  activationBits: v.optional(v.union([int(2, 8), v.literal("float")])),
  regularizer: v.optional(v.picklist(REGULARIZER_NAMES)),
  lambda: v.optional(lambda),
  epochs: v.optional(int(1, 10000)),
  finetuneEpochs: v.optional(int(0, 10000)),
  fakeQuant: v.optional(v.boolean()),
  liveBatchNorm: v.optional(v.boolean()),
  reduction: v.optional(v.picklist(REDUCTIONS)),
  decoupled: v.optional(v.boolean()),
  freeze: v.optional(v.strictObject({
    momentum: num(1e-6, 1),
    threshold: num(1e-6, 0.999),
  })),
  bnReestimate: v.optional(v.strictObject({ images: int(1, 1e7) })),
  lr: v.optional(num(0, 10)),
  mixed: v.optional(v.strictObject({
    budgetBytes: int(1, 1e9),
    candidates: v.pipe(v.array(int(1, 8)), v.minLength(1)),
    sensitivitySamples: v.optional(int(1, 1e7)),
  })),
  from: v.optional(v.picklist(["float", "scratch"])),
};
const qgt = v.strictObject(qgtShape);

/** What a variant may override. */
const variantOverride = v.strictObject({
  description: v.optional(v.string()),
  train: v.optional(v.partial(v.strictObject(trainShape))),
  qgt: v.optional(v.partial(v.strictObject(qgtShape))),
});

const profile = v.strictObject({
  dataset: v.optional(v.partial(v.strictObject(datasetShape))),
  train: v.optional(v.partial(v.strictObject(trainShape))),
  variants: v.optional(v.record(v.string(), variantOverride)),
});

/** The schema of an experiment module's default export. */
export const ExperimentSchema = v.strictObject({
  id: v.pipe(
    v.string(),
    v.regex(/^[a-z0-9][a-z0-9_-]*$/, "a lower-case id (letters, digits, - and _)"),
  ),
  version: int(1, 1e9),
  description: v.string(),
  seed: int(0, 2 ** 31),
  dataset,
  architecture,
  train,
  qgt,
  variants: v.pipe(
    v.record(
      v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._-]*$/, "a lower-case variant name")),
      variantOverride,
    ),
    v.check((r) => Object.keys(r).length > 0, "at least one variant"),
  ),
  profiles: v.optional(v.strictObject({ quick: v.optional(profile), full: v.optional(profile) })),
  /**
   * Exported models: evaluate the integer interpreter on the first `evalCount` validation images
   * (all by default), model.tflite in LiteRT on the first `tfliteCount` (500 by default).
   */
  export: v.optional(
    v.strictObject({
      evalCount: v.optional(int(1, 1e9)),
      tfliteCount: v.optional(int(1, 1e9)),
    }),
  ),
});

/** A fully resolved variant's settings (after merging overrides). */
export const ResolvedSchema = v.strictObject({ dataset, architecture, train, qgt });

/** The experiment object as written in a module. */
export type ExperimentDef = v.InferInput<typeof ExperimentSchema>;
/** A variant override. */
export type VariantOverride = v.InferInput<typeof variantOverride>;
/** Dataset settings. */
export type DatasetDef = v.InferOutput<typeof dataset>;
/** Architecture settings. */
export type ArchitectureDef = v.InferOutput<typeof architecture>;
/** Training settings. */
export type TrainDef = v.InferOutput<typeof train>;
/** QGT settings. */
export type QgtDef = v.InferOutput<typeof qgt>;

/**
 * Validates `value` against `schema`; on failure throws one line
 * `<where>: <field>: <message>` for the first problem (and says how many more).
 *
 * @example
 * ```ts
 * import { ResolvedSchema, validate } from "./schema.ts";
 * let msg = "";
 * try { validate(ResolvedSchema, {}, "x.ts"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("x.ts: dataset:")) throw new Error(msg);
 * ```
 */
export function validate<S extends v.GenericSchema>(
  schema: S,
  value: unknown,
  where: string,
): v.InferOutput<S> {
  const r = v.safeParse(schema, value);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = v.getDotPath(issue) ?? "(top level)";
  let msg = issue.message;
  if (issue.kind === "schema" && issue.type === "strict_object" && issue.expected === "never") {
    msg = `unknown key (not part of the experiment format)`;
  }
  const more = r.issues.length > 1 ? ` (and ${r.issues.length - 1} more problems)` : "";
  throw new SchemaError(`${where}: ${path}: ${msg}${more}`, path, `${msg}${more}`);
}

/** A value that does not fit the experiment format: the field's dotted path and the problem. */
export class SchemaError extends Error {
  override name = "SchemaError";
  constructor(message: string, readonly field: string, readonly problem: string) {
    super(message);
  }
}

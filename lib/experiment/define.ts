/**
 * Experiments are versioned modules whose default export is a plain object
 * (see `ExperimentDef`): dataset, architecture, training and QGT settings, and
 * named variants that override parts of them. This module validates them,
 * merges variants, profiles (`--quick`, `--full`) and `--set key=value`
 * overrides, fills defaults, and hashes the fully resolved settings.
 * @module
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import { createHash } from "node:crypto";
import {
  type DatasetDef,
  type ExperimentDef,
  ExperimentSchema,
  type QgtDef,
  ResolvedSchema,
  SchemaError,
  type TrainDef,
  validate,
} from "./schema.ts";
import type { ArchitectureDef } from "./schema.ts";
import { DATASET_OPTIONS, unreadOption } from "../data/registry.ts";
import { endsWithLiveBatchNorm, type PhaseSettings, planPhases } from "./phases.ts";
import { type Method, methodOf } from "./method.ts";
import { UsageError } from "../util/cli.ts";
import { ARCHITECTURES } from "../models/zoo.ts";
import { completeLayer, type LayerInput } from "../models/spec.ts";

export type { ExperimentDef } from "./schema.ts";

/**
 * Declares an experiment: validates it and returns it unchanged (typed).
 *
 * @example
 * ```ts
 * import { defineExperiment } from "./define.ts";
 * const e = defineExperiment({
 *   id: "demo", version: 1, description: "", seed: 1,
 *   dataset: { name: "synthetic-person" },
 *   architecture: { name: "tiny_cnn" },
 *   train: { epochs: 1, batchSize: 8, optimizer: { type: "adam" }, schedule: { type: "constant", lr: 1e-3 } },
 *   qgt: { mode: "float" },
 *   variants: { float: {} },
 * });
 * if (e.id !== "demo") throw new Error();
 * ```
 */
export function defineExperiment(e: ExperimentDef): ExperimentDef {
  validate(ExperimentSchema, e, `experiment ${typeof e?.id === "string" ? e.id : "?"}`);
  return e;
}

/** One variant, fully resolved. */
export interface ResolvedVariant {
  name: string;
  description: string;
  dataset: DatasetDef;
  architecture: ArchitectureDef;
  train: TrainDef;
  /** The method settings as written (merged, defaults filled): what the hash covers. */
  qgt: QgtDef;
  /** The method, translated from `qgt` by `methodOf` (method.ts): what the code reads. */
  method: Method;
  /** SHA-256 of the resolved settings (not `method`) with the experiment id, version and seed. */
  hash: string;
}

/** A resolved experiment. */
export interface ResolvedExperiment {
  id: string;
  version: number;
  description: string;
  seed: number;
  profile: "default" | "quick" | "full";
  variants: ResolvedVariant[];
  /** Interpreter evaluation of exports on the first N validation images (all when absent). */
  exportEvalCount?: number;
  /** LiteRT evaluation of model.tflite on the first N validation images (500 when absent). */
  exportTfliteCount?: number;
  /** Hash of everything above (all variants). */
  hash: string;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * Deep merge: objects merge key by key; arrays and scalars replace; an object
 * with a different `type` (optimizer, schedule, lambda) replaces wholesale.
 *
 * @example
 * ```ts
 * import { deepMerge } from "./define.ts";
 * const m = deepMerge({ a: { b: 1, c: 2 }, o: { type: "adam", beta1: 0.9 } }, { a: { c: 3 }, o: { type: "sgd" } });
 * if (JSON.stringify(m) !== '{"a":{"b":1,"c":3},"o":{"type":"sgd"}}') throw new Error();
 * ```
 */
export function deepMerge<T>(base: T, over: unknown): T {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over)) return over as T;
  if ("type" in over && "type" in base && over.type !== base.type) {
    return structuredClone(over) as T;
  }
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = k in base ? deepMerge(base[k], v) : structuredClone(v);
  }
  return out as T;
}

/**
 * JSON with object keys sorted at every level (a stable serialisation for hashing).
 *
 * @example
 * ```ts
 * import { stableStringify } from "./define.ts";
 * if (stableStringify({ b: 1, a: [2, { d: 1, c: 0 }] }) !== '{"a":[2,{"c":0,"d":1}],"b":1}') throw new Error();
 * ```
 */
export function stableStringify(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stableStringify).join(",")}]`;
  if (isObj(x)) {
    return `{${
      Object.keys(x).filter((k) => x[k] !== undefined).sort().map((k) =>
        `${JSON.stringify(k)}:${stableStringify(x[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(x);
}

/**
 * SHA-256 hex of the stable serialisation.
 *
 * @example
 * ```ts
 * import { hashOf } from "./define.ts";
 * if (hashOf({ a: 1, b: 2 }) !== hashOf({ b: 2, a: 1 })) throw new Error();
 * ```
 */
export function hashOf(x: unknown): string {
  return createHash("sha256").update(stableStringify(x)).digest("hex");
}

/** A node of the experiment format's JSON Schema, as far as `--set` paths need to read it. */
interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: boolean | JsonSchemaNode;
  items?: JsonSchemaNode | JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  const?: unknown;
}

let formatDescription: JsonSchemaNode | null = null;

/**
 * The experiment format described as JSON Schema, converted once from `ExperimentSchema` by
 * valibot's own converter: `--set` reads the fields from this description, not from the
 * schema library's objects.
 */
function describedFormat(): JsonSchemaNode {
  formatDescription ??= toJsonSchema(ExperimentSchema, { errorMode: "ignore" }) as JsonSchemaNode;
  return formatDescription;
}

/**
 * Checks that a `--set` path names a field of the experiment format, and a
 * variant the module defines: `variants.qat-9.qgt.bits` is an error when the
 * module has no `qat-9` (variants are added in the module, not by `--set`).
 * Throws one line naming the path and listing what exists there.
 *
 * @example
 * ```ts
 * import { checkSetPath } from "./define.ts";
 * import smoke from "../../experiments/smoke.ts";
 * checkSetPath(smoke as never, "train.augment.zoom");
 * let msg = "";
 * try { checkSetPath(smoke as never, "variants.qat-9.qgt.bits"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith('--set variants.qat-9.qgt.bits: the experiment has no variant "qat-9" (it has float, ptq-4')) throw new Error(msg);
 * ```
 */
export function checkSetPath(def: Obj, path: string): void {
  const keys = path.split(".");
  let node = describedFormat();
  let value: unknown = def;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i], at = keys.slice(0, i).join(".") || "the experiment";
    const options = node.oneOf ?? node.anyOf;
    if (options) {
      // fields of whichever option the object has (or of any, when it has none yet)
      const t = isObj(value) ? value.type : undefined;
      const objects = options.filter((o) => o.properties);
      const chosen = objects.filter((o) => !t || o.properties!.type?.const === t);
      node = {
        properties: Object.assign(
          {},
          ...(chosen.length ? chosen : objects).map((o) => o.properties),
        ),
      };
    }
    if (node.items && !Array.isArray(node.items)) {
      // an existing element by its index (a layer of architecture.layers); --set adds none
      const n = Array.isArray(value) ? value.length : 0;
      if (!/^\d+$/.test(k) || Number(k) >= n) {
        throw new UsageError(
          `--set ${path}: ${at} is a list of ${n}; expected an index 0..${n - 1}, got ${
            JSON.stringify(k)
          }`,
        );
      }
      node = node.items;
      value = (value as unknown[])[Number(k)];
      continue;
    }
    if (!node.properties && isObj(node.additionalProperties)) {
      // a record: variants by the names the module defines, per-layer settings by any name
      if (keys[i - 1] === "variants") {
        const names = Object.keys((def.variants ?? {}) as Obj);
        if (!names.includes(k)) {
          throw new UsageError(
            `--set ${path}: the experiment has no variant ${JSON.stringify(k)} (it has ${
              names.join(", ")
            }); add variants in the experiment module`,
          );
        }
      }
      node = node.additionalProperties;
      value = isObj(value) ? value[k] : undefined;
      continue;
    }
    if (!node.properties) {
      throw new UsageError(
        `--set ${path}: ${at} is a value, not an object with field ${JSON.stringify(k)}`,
      );
    }
    if (!(k in node.properties)) {
      throw new UsageError(
        `--set ${path}: ${at} has no field ${JSON.stringify(k)} (its fields: ${
          Object.keys(node.properties).join(", ")
        })`,
      );
    }
    node = node.properties[k];
    value = isObj(value) ? value[k] : undefined;
  }
}

/**
 * Sets a dotted path in an object (creating objects on the way); the value is
 * parsed as JSON when it parses, else kept as a string.
 *
 * @example
 * ```ts
 * import { setPath } from "./define.ts";
 * const o: Record<string, unknown> = { train: { epochs: 3 } };
 * setPath(o, "train.epochs=5");
 * if ((o.train as { epochs: number }).epochs !== 5) throw new Error();
 * ```
 */
export function setPath(obj: Obj, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new Error(`--set: expected key=value, got ${JSON.stringify(assignment)}`);
  const path = assignment.slice(0, eq).split(".");
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (!isObj(o[k]) && !Array.isArray(o[k])) o[k] = {};
    o = o[k] as Obj;
  }
  o[path[path.length - 1]] = value;
}

/** Defaults filled into every resolved variant (so omitted and explicit defaults hash alike). */
function withDefaults(
  r: { dataset: DatasetDef; architecture: ArchitectureDef; train: TrainDef; qgt: QgtDef },
) {
  const q = r.qgt;
  const quantized = q.mode !== "float";
  return {
    dataset: { ...r.dataset, options: { ...(r.dataset.options ?? {}) } },
    architecture: r.architecture.layers
      ? {
        name: r.architecture.name ?? "custom",
        layers: r.architecture.layers.map((l) => completeLayer(l as LayerInput)),
      }
      : { ...r.architecture, options: { ...(r.architecture.options ?? {}) } },
    train: { threads: 1, augment: {}, ...r.train },
    qgt: quantized
      ? {
        bits: 8,
        symmetric: true,
        narrowRange: false,
        perChannel: true,
        scale: "mse" as const,
        activationBits: 8 as const,
        from: "float" as const,
        ...(q.mode === "qgt" ? { regularizer: "grid" as const } : {}),
        ...q,
      }
      : { ...q },
  };
}

/** Options of {@link resolveExperiment}. */
export interface ResolveOptions {
  profile?: "default" | "quick" | "full";
  seed?: number;
  set?: string[];
  /** --data DIR: sets dataset.options.dir (switching to dataset.withDir when declared). */
  dataDir?: string;
  /** Subset of variants (names). */
  variants?: string[];
  /** Name used in error messages (the module path). */
  where?: string;
}

/**
 * Resolves an experiment: applies the profile, `--set` overrides and
 * `--data`, validates, merges each variant over the base, fills defaults and
 * hashes. Errors name the file and field.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * const r = resolveExperiment({
 *   id: "demo", version: 1, description: "", seed: 1,
 *   dataset: { name: "synthetic-person" }, architecture: { name: "tiny_cnn" },
 *   train: { epochs: 1, batchSize: 8, optimizer: { type: "adam" }, schedule: { type: "constant", lr: 1e-3 } },
 *   qgt: { mode: "float" },
 *   variants: { float: {}, "qat-2": { qgt: { mode: "qat", bits: 2 } } },
 * }, { set: ["train.epochs=3"] });
 * if (r.variants[1].qgt.bits !== 2 || r.variants[1].train.epochs !== 3) throw new Error();
 * ```
 */
export function resolveExperiment(def: unknown, o: ResolveOptions = {}): ResolvedExperiment {
  const where = o.where ?? "experiment";
  const profile = o.profile ?? "default";
  const ex = blameSet(
    o.set,
    () => validate(ExperimentSchema, applyOverrides(def, o, where), where),
  );
  checkDataset(ex, o, where);
  checkArchitecture(ex.architecture, where);
  const names = Object.keys(ex.variants);
  for (const n of o.variants ?? []) {
    if (!names.includes(n)) {
      throw new UsageError(
        `--variants: ${where} has no variant ${JSON.stringify(n)} (has ${names.join(", ")})`,
      );
    }
  }
  const variants = names.map((name) =>
    blameSet(o.set, () => resolveVariant(ex, name, where), `variants.${name}.`)
  );
  const picked = o.variants?.length
    ? variants.filter((v) => o.variants!.includes(v.name))
    : variants;
  const evalCount = {
    ...(ex.export?.evalCount ? { exportEvalCount: ex.export.evalCount } : {}),
    ...(ex.export?.tfliteCount ? { exportTfliteCount: ex.export.tfliteCount } : {}),
  };
  return {
    id: ex.id,
    version: ex.version,
    description: ex.description,
    seed: ex.seed,
    profile,
    variants: picked,
    ...evalCount,
    hash: hashOf({
      id: ex.id,
      version: ex.version,
      seed: ex.seed,
      variants: variants.map((v) => [v.name, v.hash]),
      ...evalCount,
    }),
  };
}

/**
 * Runs `f`; a {@link SchemaError} in a field that a `--set` assignment wrote
 * (the field itself, or, for a variant, `variants.<name>.<field>`) becomes a
 * usage error blaming that assignment: the flag is wrong, not the module.
 */
function blameSet<T>(set: string[] | undefined, f: () => T, variantPrefix = ""): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    const hit = (set ?? []).findLast((s) => {
      const key = s.slice(0, Math.max(0, s.indexOf("=")));
      const fields = [e.field, ...(variantPrefix ? [variantPrefix + e.field] : [])];
      return fields.some((f) => f === key || f.startsWith(key + ".") || key.startsWith(f + "."));
    });
    if (hit === undefined) throw e;
    throw new UsageError(`--set ${hit}: ${e.field}: ${e.problem}`);
  }
}

/** The experiment with its profile, `--set`, `--seed` and `--data` applied (not yet validated). */
function applyOverrides(def: unknown, o: ResolveOptions, where: string): Obj {
  const base = structuredClone(def) as Obj;
  const e0 = validate(ExperimentSchema, base, where);
  const profile = o.profile ?? "default";
  let e = e0 as unknown as Obj;
  if (profile !== "default") {
    const p = e0.profiles?.[profile];
    if (!p) throw new Error(`${where}: has no profiles.${profile} (needed by --${profile})`);
    e = deepMerge(e, { dataset: p.dataset, train: p.train, variants: p.variants });
    delete e.profiles;
  }
  for (const s of o.set ?? []) {
    const eq = s.indexOf("=");
    if (eq > 0) checkSetPath(e, s.slice(0, eq));
    setPath(e, s);
  }
  if (o.seed !== undefined) e.seed = o.seed;
  if (o.dataDir !== undefined) {
    const ds = e.dataset as Obj;
    if (typeof ds.withDir === "string") ds.name = ds.withDir;
    ds.options = { ...(ds.options as Obj ?? {}), dir: o.dataDir };
  }
  return e;
}

/**
 * A built-in network by name, or a layer list with unique layer names (the
 * shapes are checked against the data before anything trains: plan.ts).
 */
function checkArchitecture(a: ExperimentDef["architecture"], where: string): void {
  if (a.layers) {
    if (a.options) {
      throw new Error(
        `${where}: architecture.options: options shape a built-in network; a layer list (architecture.layers) says everything itself`,
      );
    }
    const seen = new Set<string>();
    a.layers.forEach((l, i) => {
      if (seen.has(l.name)) {
        throw new Error(
          `${where}: architecture.layers.${i}.name: ${
            JSON.stringify(l.name)
          } names an earlier layer too`,
        );
      }
      seen.add(l.name);
    });
    return;
  }
  if (!(ARCHITECTURES as readonly string[]).includes(a.name ?? "")) {
    throw new Error(
      `${where}: architecture.name: expected one of ${
        ARCHITECTURES.join(", ")
      }, or your own network as architecture.layers, got ${JSON.stringify(a.name)}`,
    );
  }
}

/** The dataset reads every option given, and a directory when `--data` gives one. */
function checkDataset(ex: ExperimentDef, o: ResolveOptions, where: string): void {
  const ds = ex.dataset.name, reads: readonly string[] = DATASET_OPTIONS[ds];
  if (o.dataDir !== undefined && !reads.includes("dir")) {
    throw new Error(
      `--data: ${where}: dataset ${ds} reads no directory, and declares no dataset.withDir to switch to one`,
    );
  }
  const unread = unreadOption(ds, ex.dataset.options ?? {});
  if (unread !== undefined) {
    throw new Error(
      `${where}: dataset.options.${unread}: not an option of dataset ${ds}${
        o.dataDir !== undefined && ex.dataset.withDir ? " (--data switched to it)" : ""
      }; its options: ${reads.join(", ")}`,
    );
  }
}

/** One variant merged over the base settings, validated, with defaults filled in and hashed. */
function resolveVariant(ex: ExperimentDef, name: string, where: string): ResolvedVariant {
  const ov = ex.variants[name];
  const merged = {
    dataset: ex.dataset,
    architecture: ex.architecture,
    train: deepMerge(ex.train, ov.train),
    qgt: deepMerge(ex.qgt, ov.qgt),
  };
  const r = withDefaults(validate(ResolvedSchema, merged, `${where}: variant ${name}`));
  const method = methodOf(r.qgt, `${where}: variants.${name}.qgt`);
  checkLsq(r.qgt, { train: r.train, method }, `${where}: variants.${name}.qgt.scale: "lsq"`);
  if (r.qgt.bnReestimate && !endsWithLiveBatchNorm({ train: r.train, method })) {
    const q = r.qgt;
    throw new Error(
      `${where}: variants.${name}.qgt.bnReestimate: needs a "qat" or "qgt" variant whose last phase keeps ` +
        `BatchNorm live (liveBatchNorm true or from "scratch"; qgt: finetuneEpochs 0), got mode ${
          JSON.stringify(q.mode)
        }${
          q.mode === "qat" || q.mode === "qgt" ? " with BatchNorm folded before the last phase" : ""
        }`,
    );
  }
  const hash = hashOf({ id: ex.id, version: ex.version, seed: ex.seed, ...r });
  return { name, description: ov.description ?? "", ...r, method, hash } as ResolvedVariant;
}

/** What LSQ needs of the quantizer that the mode checks in `methodOf` do not cover. */
function checkLsq(q: QgtDef, v: PhaseSettings, at: string): void {
  if (q.scale !== "lsq") return;
  if (q.symmetric === false) throw new Error(`${at} needs symmetric weights`);
  const widths = [
    q.bits,
    ...Object.values(q.layers ?? {}).map((l) => l.bits),
    ...(q.mixed?.candidates ?? []),
  ];
  if (widths.some((b) => b === 1)) {
    throw new Error(`${at} needs 2-8 bits (1-bit layers have no step)`);
  }
  if (q.freeze) throw new Error(`${at} cannot be combined with freeze`);
  if (q.perChannel === false && planPhases(v).some((p) => !p.folded && p.setup?.fakeQuant)) {
    throw new Error(
      `${at} with BatchNorm live needs perChannel (a per-tensor step cannot follow the per-channel fold)`,
    );
  }
}

/**
 * Imports an experiment module and returns its default export.
 *
 * @example
 * ```ts ignore
 * const def = await loadExperimentModule("experiments/person-detect.ts");
 * ```
 */
export async function loadExperimentModule(path: string): Promise<unknown> {
  const { toFileUrl, resolve } = await import("../util/path.ts");
  let mod: { default?: unknown };
  try {
    await Deno.stat(path);
  } catch {
    throw new Error(`${path}: experiment file not found`);
  }
  try {
    mod = await import(toFileUrl(resolve(path)).href);
  } catch (e) {
    // a syntax error's message ends with "at file:///...:LINE:COL": name the line and column
    const msg = (e as Error).message;
    const at = msg.match(/at file:\/\/[^\s]*?:(\d+):(\d+)\s*$/);
    throw new Error(
      `${path}${at ? `:${at[1]}:${at[2]}` : ""}: cannot load experiment module: ${
        msg.split("\n")[0]
      }`,
    );
  }
  if (mod.default === undefined) {
    throw new Error(`${path}: the module has no default export (an experiment object)`);
  }
  return mod.default;
}

/**
 * The experiment runner: resolves an experiment module, loads its dataset,
 * runs every variant (float baselines first; a float baseline with the same
 * resolved-config hash as an earlier one is reused, not retrained), keeps a
 * checkpoint per epoch so `--resume` continues an interrupted run, and writes
 * the run directory `reports/runs/<experiment>/<run-id>/`: `run.json`, tidy
 * CSV tables, Vega-Lite specs with their SVGs, `report.html`, and per-variant
 * exports. Every file is written atomically; `run.json` says whether the run
 * is complete.
 * @module
 */
import { join, relative, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend } from "../backend/mod.ts";
import { loadDataset } from "../data/registry.ts";
import { datasetChecksum } from "../data/cache.ts";
import { createModel, disposeModel, getWeights, type Model, setWeights } from "../models/model.ts";
import { evaluate } from "../eval/evaluate.ts";
import { foldedArch } from "../models/fold.ts";
import { modelSummary } from "../qgt/summary.ts";
import { type Dataset, firstImages } from "../data/dataset.ts";
import { escapeXml } from "../data/preview.ts";
import { consoleProgress, formatDuration, type ProgressSink } from "../util/progress.ts";
import { exists, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import {
  hashOf,
  loadExperimentModule,
  type ResolvedExperiment,
  type ResolvedVariant,
  resolveExperiment,
  type ResolveOptions,
} from "./define.ts";
import { gitState } from "./git.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import {
  type LayerEpochRow,
  type LayerRow,
  type MetricRow,
  preflight,
  runVariant,
  StopRequested,
  variantArch,
  type VariantOutcome,
  type VariantState,
} from "./pipeline.ts";
import { tableOf, writeCsv } from "../report/tables.ts";
import { denoProcessAlive } from "../util/process.ts";
import { renderSvg, type VegaLiteSpec } from "../report/vega.ts";
import {
  curvesSpec,
  htmlReport,
  htmlTable,
  layerEpochSpec,
  layerErrorSpec,
  sizeAccuracySpec,
} from "../report/run_report.ts";

/** Column order of the tables. */
export const METRIC_COLUMNS = ["variant", "phase", "epoch", "split", "metric", "value"];
export const SUMMARY_COLUMNS = [
  "variant",
  "mode",
  "bits",
  "accuracy",
  "loss",
  "bytes",
  "float32_bytes",
  "reduction",
  "accuracy_drop",
  "simulated_accuracy",
  "prediction_agreement",
];
export const LAYER_COLUMNS = [
  "variant",
  "layer",
  "params",
  "bits",
  "bytes",
  "grid_error",
  "relative_error",
  "sensitivity",
  "chosen_bits",
];
export const LAYER_EPOCH_COLUMNS = [
  "variant",
  "phase",
  "epoch",
  "layer",
  "bits",
  "grid_error",
  "relative_error",
  "reg_loss",
];

/** One row of summary.csv. */
export interface SummaryRow {
  variant: string;
  mode: string;
  bits: number | string;
  /** Accuracy of the deployed model (the exported integer model when exported). */
  accuracy: number;
  loss: number;
  bytes: number;
  float32_bytes: number;
  reduction: number;
  /** Float accuracy minus this accuracy, in percentage points (null without a float variant). */
  accuracy_drop: number | null;
  /** Accuracy of the fake-quantized float simulation. */
  simulated_accuracy: number;
  /** Fraction of validation predictions on which the deployed model agrees with the simulation. */
  prediction_agreement: number;
}

/** run.json. */
export interface RunRecord {
  runId: string;
  experiment: {
    id: string;
    version: number;
    path: string;
    hash: string;
    profile: string;
    description: string;
  };
  seed: number;
  git: { commit: string; dirty: boolean };
  /** Each `--resume` of the run: when, and the commit the code was then at. */
  resumed?: { at: string; commit: string; dirty: boolean }[];
  versions: { deno: string; tfjs: string; backend: string };
  /** The dataset the run used (name and options), so exports can be re-evaluated. */
  dataset: { name: string; options: Record<string, unknown> };
  status: "running" | "complete" | "failed";
  pid: number;
  started: string;
  ended?: string;
  error?: string;
  variants: Record<
    string,
    {
      hash: string;
      status: "pending" | "running" | "complete";
      /**
       * Compute time in seconds: the whole variant once complete, up to its last
       * checkpoint while running. Resumed variants add up every process's share
       * (work redone after an interruption counts once).
       */
      seconds?: number;
      reused?: string;
    }
  >;
}

/** Per-variant export: bytes and accuracy of the deployed artefact. */
export interface ExportInfo {
  bytes: number;
  accuracy: number;
  loss?: number;
  agreement: number;
  files: string[];
}

/** Exports a finished quantized variant into `dir` (the hook issue-6 export code provides). */
export type Exporter = (
  o: VariantOutcome,
  dir: string,
  val: Dataset,
  floatAccuracy: number | null,
) => Promise<ExportInfo>;

/** Options of {@link runExperiment}. */
export interface RunOptions {
  /** Path of the experiment module. */
  path: string;
  resolve?: ResolveOptions;
  /** Root of run directories (default reports/runs). */
  outRoot?: string;
  /** Where reusable float baselines are kept (default `<outRoot>/.checkpoints`). */
  checkpointRoot?: string;
  /** Where dataset caches are kept (default `data/`). */
  dataRoot?: string;
  backend?: BackendName;
  /** true: the latest incomplete run with the same configuration; a string: that run id. */
  resume?: boolean | string;
  progress?: ProgressSink;
  exporter?: Exporter;
  /** Testing hook: stop (as if killed) after this many epochs. */
  stopAfterEpochs?: number;
}

/** Result of {@link runExperiment}. */
export interface RunResult {
  runDir: string;
  record: RunRecord;
  summary: SummaryRow[];
}

const REPO = new URL("../../", import.meta.url).pathname;

function newRunId(commit: string): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  const ts = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${
    p(d.getUTCHours())
  }${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  const rand = Math.floor(Math.random() * 0xffff).toString(16).padStart(4, "0");
  return `${ts}-${commit.slice(0, 7)}-${Deno.pid}${rand}`;
}

/** A run another live process is still running (this process's own runs can be resumed). */
function busy(rec: RunRecord): boolean {
  return rec.status === "running" && rec.pid !== Deno.pid && denoProcessAlive(rec.pid);
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/**
 * Lists run directories of an experiment (newest first by run id).
 *
 * @example
 * ```ts
 * import { listRunDirs } from "./runner.ts";
 * const runs = await listRunDirs(await Deno.makeTempDir(), "fashion-mnist");
 * if (runs.length !== 0) throw new Error(); // nothing recorded yet
 * ```
 */
export async function listRunDirs(
  outRoot: string,
  experimentId?: string,
): Promise<{ dir: string; record: RunRecord }[]> {
  const out: { dir: string; record: RunRecord }[] = [];
  const ids: string[] = [];
  if (experimentId) ids.push(experimentId);
  else {
    try {
      for await (const e of Deno.readDir(outRoot)) if (e.isDirectory) ids.push(e.name);
    } catch { /* no runs yet */ }
  }
  for (const id of ids) {
    try {
      for await (const e of Deno.readDir(join(outRoot, id))) {
        if (!e.isDirectory) continue;
        const rec = await readJson<RunRecord>(join(outRoot, id, e.name, "run.json"));
        if (rec) out.push({ dir: join(outRoot, id, e.name), record: rec });
      }
    } catch { /* none */ }
  }
  return out.sort(newestFirst);
}

/**
 * Sort order of located runs: the latest start time first.
 *
 * @example
 * ```ts
 * import { newestFirst } from "./runner.ts";
 * const run = (started: string) => ({ record: { started } });
 * const runs = [run("2026-01-01"), run("2026-01-03"), run("2026-01-02")].sort(newestFirst);
 * if (runs[0].record.started !== "2026-01-03") throw new Error();
 * ```
 */
export function newestFirst(
  a: { record: { started: string } },
  b: { record: { started: string } },
): number {
  return a.record.started < b.record.started ? 1 : a.record.started > b.record.started ? -1 : 0;
}

/** The float variant a quantized variant starts from. */
function floatVariantOf(
  exp: ResolvedExperiment,
  all: ResolvedVariant[],
): ResolvedVariant | undefined {
  return all.find((v) => v.name === "float" && v.qgt.mode === "float") ??
    all.find((v) => v.qgt.mode === "float") ??
    exp.variants.find((v) => v.qgt.mode === "float");
}

function stateToCheckpoint(s: VariantState) {
  const arrays = Object.entries(s.weights).map(([name, data]) => ({
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

function checkpointToState(
  c: { arrays: { name: string; data: Float32Array }[]; meta: Record<string, unknown> },
): VariantState {
  const m = c.meta as Record<string, unknown>;
  const weights: Record<string, Float32Array> = {};
  const slots: Float32Array[] = [];
  const setup: Float32Array[] = [];
  for (const a of c.arrays) {
    if (a.name.startsWith("w:")) weights[a.name.slice(2)] = a.data;
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
    metrics: (m.metrics as MetricRow[]) ?? [],
    layerEpochs: (m.layerEpochs as LayerEpochRow[]) ?? [],
  };
}

interface VariantResult {
  summary: Omit<SummaryRow, "accuracy_drop">;
  /** Larq-style per-layer parameters, bits and bytes. */
  modelSummary: {
    layer: string;
    params: number;
    bits: number;
    bytes: number;
    float32Bytes: number;
  }[];
  /** Per-layer sensitivity at each candidate width (mixed-precision variants). */
  sensitivity?: { variant: string; layer: string; bits: number; loss_increase: number }[];
  metrics: MetricRow[];
  layerEpochs: LayerEpochRow[];
  layers: LayerRow[];
  seconds: number;
}

/**
 * Runs an experiment module end to end.
 *
 * @example
 * ```ts ignore
 * const { runDir, summary } = await runExperiment({ path: "experiments/smoke.ts" });
 * ```
 */
export async function runExperiment(opts: RunOptions): Promise<RunResult> {
  const progress = opts.progress ?? consoleProgress();
  const outRoot = opts.outRoot ?? join(REPO, "reports", "runs");
  const ckptRoot = opts.checkpointRoot ?? join(outRoot, ".checkpoints");
  const def = await loadExperimentModule(opts.path);
  const exp = resolveExperiment(def, { where: opts.path, ...(opts.resolve ?? {}) });
  const all =
    resolveExperiment(def, { where: opts.path, ...(opts.resolve ?? {}), variants: undefined })
      .variants;
  const backend = opts.backend ?? "wasm";

  // variants to run: the requested ones plus the float baseline they depend on, floats first
  const floatV = floatVariantOf(exp, all);
  const needsFloat = exp.variants.some((v) => v.qgt.mode !== "float" && v.qgt.from !== "scratch");
  if (needsFloat && !floatV) {
    throw new Error(
      `${opts.path}: quantized variants start from a float variant, but there is none`,
    );
  }
  const order: ResolvedVariant[] = [];
  if (needsFloat && floatV && !exp.variants.some((v) => v.name === floatV.name)) order.push(floatV);
  order.push(
    ...exp.variants.filter((v) => v.qgt.mode === "float"),
    ...exp.variants.filter((v) => v.qgt.mode !== "float"),
  );

  // the run directory: a new one, or the one being resumed
  const git = await gitState(REPO);
  let runDir: string;
  let record: RunRecord;
  if (opts.resume) {
    const runs = await listRunDirs(outRoot, exp.id);
    const pick = typeof opts.resume === "string"
      ? runs.find((r) => r.record.runId === opts.resume)
      : runs.find((r) =>
        r.record.status !== "complete" && r.record.experiment.hash === exp.hash &&
        !busy(r.record)
      );
    if (!pick) {
      throw new Error(
        typeof opts.resume === "string"
          ? `--resume: no run ${opts.resume} of ${exp.id} in ${outRoot}`
          : `--resume: no incomplete run of ${exp.id} with this configuration (hash ${
            exp.hash.slice(0, 12)
          }) in ${outRoot}`,
      );
    }
    if (pick.record.experiment.hash !== exp.hash) {
      throw new Error(
        `--resume: run ${pick.record.runId} has another configuration (hash ${
          pick.record.experiment.hash.slice(0, 12)
        })`,
      );
    }
    if (pick.record.status === "complete") {
      throw new Error(`--resume: run ${pick.record.runId} is already complete`);
    }
    if (busy(pick.record)) {
      throw new Error(
        `--resume: run ${pick.record.runId} is still running (process ${pick.record.pid})`,
      );
    }
    runDir = pick.dir;
    record = {
      ...pick.record,
      status: "running",
      pid: Deno.pid,
      error: undefined,
      resumed: [...(pick.record.resumed ?? []), { at: new Date().toISOString(), ...git }],
    };
    progress.line(`resuming run ${record.runId}`);
    const was = pick.record.resumed?.at(-1) ?? pick.record.git;
    if (was.commit !== git.commit || was.dirty !== git.dirty) {
      progress.line(
        `note: run ${record.runId} ran at commit ${was.commit.slice(0, 7)}${
          was.dirty ? " (dirty)" : ""
        } and resumes at ${git.commit.slice(0, 7)}${
          git.dirty ? " (dirty)" : ""
        }; run.json records both (resumed)`,
      );
    }
  } else {
    const runId = newRunId(git.commit);
    runDir = join(outRoot, exp.id, runId);
    record = {
      runId,
      experiment: {
        id: exp.id,
        version: exp.version,
        path: opts.path,
        hash: exp.hash,
        profile: exp.profile,
        description: exp.description,
      },
      seed: exp.seed,
      git,
      versions: { deno: Deno.version.deno, tfjs: tf.version.tfjs, backend },
      dataset: { name: order[0].dataset.name, options: { ...(order[0].dataset.options ?? {}) } },
      status: "running",
      pid: Deno.pid,
      started: new Date().toISOString(),
      variants: Object.fromEntries(
        order.map((v) => [v.name, { hash: v.hash, status: "pending" as const }]),
      ),
    };
  }
  // the data before anything is written, so bad data files leave no run directory behind
  await initBackend(backend);
  const first = order[0];
  const t0 = performance.now();
  const data = await loadDataset(first.dataset.name, {
    ...first.dataset.options,
    ...(opts.dataRoot !== undefined ? { cacheRoot: opts.dataRoot } : {}),
  });
  // the data's bytes (not only their configuration) key the reusable float baselines
  const dataSum = datasetChecksum(data.train.images, data.train.labels) + ":" +
    datasetChecksum(data.val.images, data.val.labels);

  if (!data.val.labels.length) {
    throw new Error(
      `${opts.path}: dataset ${first.dataset.name} has no validation images with these options (${
        JSON.stringify(first.dataset.options ?? {})
      })`,
    );
  }
  for (const v of order) {
    try {
      preflight(v, data.train);
    } catch (e) {
      throw new Error(`${opts.path}: ${(e as Error).message}`);
    }
  }

  const saveRecord = () => writeJsonAtomic(join(runDir, "run.json"), record);
  await saveRecord(); // creates the run directory

  try {
    for (const n of data.notes) progress.line(n);
    progress.line(
      `${exp.id} v${exp.version} (${exp.profile}): ${data.train.name} ${data.train.labels.length} train / ${data.val.labels.length} val, ` +
        `loaded in ${formatDuration((performance.now() - t0) / 1000)}; run ${record.runId}`,
    );

    const results = new Map<string, VariantResult>();
    let floatWeights: Record<string, Float32Array> | undefined;
    const counter = { n: 0 };
    for (const v of order) {
      const vdir = join(runDir, "variants", v.name);
      const done = await readJson<VariantResult>(join(vdir, "result.json"));
      if (done && record.variants[v.name]?.status === "complete") {
        results.set(v.name, done);
        if (v.name === floatV?.name) {
          floatWeights = await loadFinalWeights(join(vdir, "final.qgtw"));
        }
        progress.line(`${v.name}: already complete in this run`);
        continue;
      }
      record.variants[v.name] = { hash: v.hash, status: "running" };
      await saveRecord();
      const tv = performance.now();
      let priorSeconds = 0;
      // this variant's compute time: this process's share plus earlier processes' up to their last checkpoint
      const variantSeconds = () => priorSeconds + (performance.now() - tv) / 1000;
      let outcome: VariantOutcome;
      // float baselines are shared by any experiment with the same seed, data, network and training
      const floatKey = hashOf({
        seed: exp.seed,
        data: dataSum,
        dataset: v.dataset,
        architecture: v.architecture,
        train: v.train,
        qgt: v.qgt,
      });
      const reusePath = join(ckptRoot, `float-${floatKey.slice(0, 16)}.qgtw`);
      if (v.qgt.mode === "float" && await exists(reusePath)) {
        outcome = await reuseFloat(reusePath, v, data);
        record.variants[v.name].reused = relative(REPO, resolve(reusePath));
        progress.line(
          `${v.name}: reusing the float baseline with the same configuration (${
            relative(REPO, resolve(reusePath))
          })`,
        );
      } else {
        const statePath = join(vdir, "state.qgtw");
        const saved = (await exists(statePath)) ? await loadCheckpoint(statePath) : null;
        const resume = saved ? checkpointToState(saved) : null;
        // compute time spent on this variant by earlier processes, up to their last checkpoint
        priorSeconds = typeof saved?.meta.seconds === "number" ? saved.meta.seconds : 0;
        if (resume) {
          progress.line(
            `${v.name}: resuming at phase ${resume.phase + 1}, epoch ${resume.epochDone}`,
          );
        }
        outcome = await runVariant({
          variant: v,
          seed: exp.seed,
          train: data.train,
          val: data.val,
          backend,
          progress,
          floatWeights,
          resume,
          saveState: async (s) => {
            const c = stateToCheckpoint(s);
            const seconds = variantSeconds();
            await saveCheckpoint(statePath, c.arrays, { ...c.meta, seconds });
            record.variants[v.name] = { ...record.variants[v.name], seconds };
            await saveRecord();
          },
          stopAfterEpochs: opts.stopAfterEpochs,
          epochCounter: counter,
        });
        if (v.qgt.mode === "float") {
          await saveFinal(reusePath, outcome.model, {
            metrics: outcome.metrics,
            layerEpochs: outcome.layerEpochs,
            hash: v.hash,
          });
        }
      }
      await saveDeployed(join(vdir, "final.qgtw"), outcome, data.train.classNames);
      if (v.name === floatV?.name) floatWeights = getWeights(outcome.model);
      let exp_: ExportInfo | null = null;
      if (outcome.quantized && opts.exporter) {
        const fa = floatV ? results.get(floatV.name)?.summary.accuracy ?? null : null;
        const evalSet = exp.exportEvalCount ? firstImages(data.val, exp.exportEvalCount) : data.val;
        exp_ = await opts.exporter(outcome, join(vdir, "export"), evalSet, fa);
        progress.line(
          `${v.name}: exported ${exp_.bytes} bytes to ${join(vdir, "export")}; ` +
            `interpreter accuracy ${(exp_.accuracy * 100).toFixed(2)}%, agreement with simulation ${
              (exp_.agreement * 100).toFixed(2)
            }%`,
        );
      }
      const result: VariantResult = {
        summary: {
          variant: v.name,
          mode: outcome.mode,
          bits: outcome.bits,
          // the exported model's accuracy when it ran on the whole validation set,
          // else (export.evalCount) the simulation's; agreement says how close they are
          accuracy: exp_ && !exp.exportEvalCount ? exp_.accuracy : outcome.eval.accuracy,
          loss: (exp.exportEvalCount ? undefined : exp_?.loss) ?? outcome.eval.loss,
          bytes: exp_ ? exp_.bytes : outcome.summary.quantizedBytes,
          float32_bytes: outcome.summary.float32Bytes,
          reduction: outcome.summary.float32Bytes /
            (exp_ ? exp_.bytes : outcome.summary.quantizedBytes),
          simulated_accuracy: outcome.eval.accuracy,
          prediction_agreement: exp_ ? exp_.agreement : 1,
        },
        modelSummary: outcome.summary.rows,
        sensitivity: outcome.sensitivity?.map((r) => ({
          variant: v.name,
          layer: r.layer,
          bits: r.bits,
          loss_increase: r.score,
        })),
        metrics: outcome.metrics,
        layerEpochs: outcome.layerEpochs,
        layers: outcome.layers,
        seconds: variantSeconds(),
      };
      disposeModel(outcome.model);
      await writeJsonAtomic(join(vdir, "result.json"), result);
      await Deno.remove(join(vdir, "state.qgtw")).catch(() => {});
      results.set(v.name, result);
      record.variants[v.name] = {
        ...record.variants[v.name],
        status: "complete",
        seconds: result.seconds,
      };
      await saveRecord();
      const s = result.summary;
      const nDone = order.filter((o) => record.variants[o.name]?.status === "complete").length;
      progress.line(
        `${v.name}: accuracy ${(s.accuracy * 100).toFixed(2)}%, ${s.bytes} bytes (${
          s.reduction.toFixed(1)
        }x smaller than float32), ` +
          `${formatDuration(result.seconds)} [${nDone}/${order.length} variants done, ${
            formatDuration((performance.now() - t0) / 1000)
          } since the run ${opts.resume ? "resumed" : "started"}]`,
      );
    }

    const summary = await writeOutputs(runDir, exp, order, results, floatV?.name);
    record.status = "complete";
    record.ended = new Date().toISOString();
    await saveRecord();
    return { runDir, record, summary };
  } catch (e) {
    if (!(e instanceof StopRequested)) {
      record.status = "failed";
      record.error = (e as Error).message;
      record.ended = new Date().toISOString();
      await saveRecord();
    }
    throw e;
  }
}

/**
 * Saves a finished variant: its weights and, for quantized variants, the
 * integer codes, scales and zero points with the specs and activation ranges,
 * so `deno task export` can rebuild the export from the run directory alone.
 */
async function saveDeployed(path: string, o: VariantOutcome, classNames: string[]): Promise<void> {
  const arrays = Object.entries(getWeights(o.model)).map(([name, data]) => ({
    name,
    shape: [data.length],
    data,
  }));
  const q = o.quantized;
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
    variant: o.name,
    mode: o.mode,
    arch: o.arch,
    classNames,
    specs: q?.specs,
    activationBits: q?.activationBits,
    activationRanges: q?.activationRanges,
  });
}

async function saveFinal(path: string, model: Model, meta: Record<string, unknown>): Promise<void> {
  const w = getWeights(model);
  await saveCheckpoint(
    path,
    Object.entries(w).map(([name, data]) => ({ name, shape: [data.length], data })),
    meta,
  );
}

async function loadFinalWeights(path: string): Promise<Record<string, Float32Array>> {
  const c = await loadCheckpoint(path);
  return Object.fromEntries(c.arrays.map((a) => [a.name, a.data]));
}

async function reuseFloat(
  path: string,
  v: ResolvedVariant,
  data: { train: Dataset; val: Dataset },
): Promise<VariantOutcome> {
  const c = await loadCheckpoint(path);
  const weights = Object.fromEntries(c.arrays.map((a) => [a.name, a.data]));
  const arch = variantArch(v, data.train);
  const model = createModel(arch, 0);
  setWeights(model, weights);
  return {
    name: v.name,
    mode: "float",
    bits: 32,
    eval: evaluate(model, data.val),
    model,
    arch,
    summary: modelSummary(foldedArch(arch), {}),
    metrics: (c.meta.metrics as MetricRow[]) ?? [],
    layerEpochs: (c.meta.layerEpochs as LayerEpochRow[]) ?? [],
    layers: [],
  };
}

async function writeOutputs(
  runDir: string,
  exp: ResolvedExperiment,
  order: ResolvedVariant[],
  results: Map<string, VariantResult>,
  floatName: string | undefined,
): Promise<SummaryRow[]> {
  const rs = order.map((v) => results.get(v.name)!);
  const floatAcc = floatName ? results.get(floatName)?.summary.accuracy : undefined;
  const summary: SummaryRow[] = rs.map((r) => ({
    ...r.summary,
    accuracy_drop: floatAcc === undefined ? null : (floatAcc - r.summary.accuracy) * 100,
  }));
  const metrics = rs.flatMap((r) => r.metrics);
  const layers = rs.flatMap((r) => r.layers);
  const layerEpochs = rs.flatMap((r) => r.layerEpochs);
  await writeCsv(join(runDir, "metrics.csv"), tableOf(metrics, METRIC_COLUMNS));
  await writeCsv(join(runDir, "summary.csv"), tableOf(summary, SUMMARY_COLUMNS));
  await writeCsv(join(runDir, "layers.csv"), tableOf(layers, LAYER_COLUMNS));
  await writeCsv(join(runDir, "layer_epochs.csv"), tableOf(layerEpochs, LAYER_EPOCH_COLUMNS));
  const sensitivity = rs.flatMap((r) => r.sensitivity ?? []);
  if (sensitivity.length) {
    await writeCsv(
      join(runDir, "sensitivity.csv"),
      tableOf(sensitivity, ["variant", "layer", "bits", "loss_increase"]),
    );
  }
  const budget = order.map((v) => v.qgt.mixed?.budgetBytes).find((b) => b !== undefined);
  const plots: [string, string, VegaLiteSpec][] = [
    ["curves", "Training curves", curvesSpec(metrics as unknown as Record<string, unknown>[])],
    [
      "size_accuracy",
      "Size against accuracy",
      sizeAccuracySpec(summary as unknown as Record<string, unknown>[], budget),
    ],
  ];
  if (layers.length) {
    plots.push([
      "layers",
      "Per-layer quantization error",
      layerErrorSpec(layers as unknown as Record<string, unknown>[]),
    ]);
  }
  if (layerEpochs.length) {
    plots.push([
      "layer_epochs",
      "Per-layer quantization error across epochs",
      layerEpochSpec(layerEpochs as unknown as Record<string, unknown>[]),
    ]);
  }
  const svgs: string[] = [];
  for (const [name, , spec] of plots) {
    await writeJsonAtomic(join(runDir, `${name}.vl.json`), spec);
    const svg = await renderSvg(spec);
    await writeTextAtomic(join(runDir, `${name}.svg`), svg);
    svgs.push(svg);
  }
  const record = await readJson<RunRecord>(join(runDir, "run.json"));
  const html = htmlReport(`${exp.id} v${exp.version}: ${record?.runId ?? ""}`, [
    {
      title: "Run",
      html:
        `<p>${escapeXml(exp.description)}</p><p>commit ${record?.git.commit.slice(0, 12)}${
          record?.git.dirty ? " (dirty tree)" : ""
        }, ` +
        `seed ${exp.seed}, profile ${exp.profile}, config hash ${
          exp.hash.slice(0, 12)
        }; Deno ${record?.versions.deno}, tfjs ${record?.versions.tfjs} (${record?.versions.backend})</p>`,
    },
    {
      title: "Summary",
      html: htmlTable(summary as unknown as Record<string, unknown>[], SUMMARY_COLUMNS),
    },
    ...plots.map(([, title], i) => ({ title, html: `<div class="plot">${svgs[i]}</div>` })),
    ...(layers.length
      ? [{
        title: "Layers (bottleneck analysis)",
        html: htmlTable(layers as unknown as Record<string, unknown>[], LAYER_COLUMNS),
      }]
      : []),
    ...order.filter((v) => results.get(v.name)!.summary.mode !== "float").map((v) => ({
      title: `Model summary: ${v.name} (parameters, bits and bytes per layer)`,
      html: htmlTable(results.get(v.name)!.modelSummary ?? [], [
        "layer",
        "params",
        "bits",
        "bytes",
        "float32Bytes",
      ]),
    })),
  ]);
  await writeTextAtomic(join(runDir, "report.html"), html);
  return summary;
}

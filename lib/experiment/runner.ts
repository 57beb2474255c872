/**
 * The experiment runner: resolves an experiment module, loads its dataset,
 * checks every variant, opens a run directory (new, or the one `--resume`
 * continues), runs each planned variant (a float baseline with the same
 * settings key as an earlier one is reused, not retrained), exports the
 * quantized ones, and writes the run's tables, plots and report. The run
 * directory's format is `lib/run/run_dir.ts`; every file is written
 * atomically, and `run.json` says whether the run is complete.
 * @module
 */
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import { relative, resolve } from "node:path";
import { type BackendName, initBackend, stackVersions } from "../backend/mod.ts";
import { loadDataset } from "../data/registry.ts";
import { datasetChecksum } from "../data/cache.ts";
import { type Dataset, firstImages } from "../data/dataset.ts";
import { createModel, disposeModel, getWeights, setWeights } from "../models/model.ts";
import {
  type Exporter,
  type ExportInfo,
  exportVariant,
  TFLITE_EVAL_IMAGES,
} from "../export/mod.ts";
import type { Provenance } from "../format/header.ts";
import { nativeRuntime, nativeUnavailable } from "../engine/native.ts";
import {
  consoleProgress,
  formatDuration,
  loadingProgress,
  type ProgressSink,
} from "../util/progress.ts";
import { exists, removeStaleTemps } from "../util/fs.ts";
import { REPO_ROOT } from "../util/path.ts";
import {
  DEFAULT_RUNS_ROOT,
  defaultCheckpointRoot,
  floatBaselinePath,
  listRunDirs,
  newRunId,
  provenanceOf,
  readVariantResult,
  runBusy,
  runDirOf,
  type RunRecord,
  variantFiles,
  type VariantResult,
  type VariantSummaryRow,
  writeRunRecord,
  writeVariantResult,
} from "../run/run_dir.ts";
import { readFinal, readFloatBaseline, writeFinal, writeFloatBaseline } from "../run/final.ts";
import { writeRunOutputs } from "../report/run_outputs.ts";
import {
  loadExperimentModule,
  type ResolvedExperiment,
  type ResolvedVariant,
  resolveExperiment,
  type ResolveOptions,
} from "./define.ts";
import { gitState } from "./git.ts";
import { floatBaselineKey, planRun, preflightRun, variantArch } from "./plan.ts";
import { loadState, saveState } from "./state.ts";
import { RunAborted, runVariant } from "./variant.ts";
import { quantizeAndEvaluate, type VariantOutcome } from "./outcome.ts";
import { type PlannedVariant, RunClock } from "./run_clock.ts";
import { planPhases } from "./phases.ts";
import { epochSteps } from "../train/loop.ts";

export { RunAborted } from "./variant.ts";

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
  /** Exports quantized variants (default `exportVariant`); `null` skips exports (bytes are then estimates). */
  exporter?: Exporter | null;
  /**
   * Aborting it stops the run at the next epoch checkpoint: `runExperiment` rejects with
   * `RunAborted` and the run stays resumable (its record says "running" until resumed).
   */
  signal?: AbortSignal;
}

/** Result of {@link runExperiment}. */
export interface RunResult {
  runDir: string;
  record: RunRecord;
  summary: VariantSummaryRow[];
}

/** An open run: its directory, its record and how to save it. */
interface OpenRun {
  dir: string;
  record: RunRecord;
  save: () => Promise<void>;
}

/** The run `--resume` continues: the latest incomplete one with this configuration, or the named one. */
async function pickResumed(
  outRoot: string,
  exp: ResolvedExperiment,
  resume: true | string,
): Promise<{ dir: string; record: RunRecord }> {
  const damaged: string[] = [];
  const runs = await listRunDirs(outRoot, exp.id, (_dir, reason) => damaged.push(reason));
  const mine = (r: { record: RunRecord }) =>
    r.record.status !== "complete" && r.record.experiment.hash === exp.hash;
  const pick = typeof resume === "string"
    ? runs.find((r) => r.record.runId === resume)
    : runs.find((r) => mine(r) && !runBusy(r.record));
  if (!pick) {
    const busy = typeof resume === "string" ? undefined : runs.find(mine);
    if (busy) {
      throw new Error(
        `--resume: run ${busy.record.runId} is still running (process ${busy.record.pid}); wait for it or stop it`,
      );
    }
    if (damaged.length) throw new Error(`--resume: ${damaged[0]}`);
    throw new Error(
      typeof resume === "string"
        ? `--resume: no run ${resume} of ${exp.id} in ${outRoot}`
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
  if (runBusy(pick.record)) {
    throw new Error(
      `--resume: run ${pick.record.runId} is still running (process ${pick.record.pid})`,
    );
  }
  return pick;
}

/** The record of a new run (not yet written). */
async function newRecord(
  opts: RunOptions,
  exp: ResolvedExperiment,
  order: ResolvedVariant[],
  git: RunRecord["git"],
  backend: BackendName,
): Promise<RunRecord> {
  return {
    runId: newRunId(git.commit),
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
    versions: await stackVersions(backend),
    dataset: { name: order[0].dataset.name, options: { ...(order[0].dataset.options ?? {}) } },
    status: "running",
    pid: Deno.pid,
    started: new Date().toISOString(),
    variants: Object.fromEntries(
      order.map((v) => [v.name, { hash: v.hash, status: "pending" as const }]),
    ),
  };
}

/** Opens the run directory's record: a new run, or the one being resumed (noting a moved commit). */
async function openRun(
  opts: RunOptions,
  exp: ResolvedExperiment,
  order: ResolvedVariant[],
  outRoot: string,
  backend: BackendName,
  progress: ProgressSink,
): Promise<OpenRun> {
  const git = await gitState(REPO_ROOT);
  let dir: string, record: RunRecord;
  if (opts.resume) {
    const pick = await pickResumed(outRoot, exp, opts.resume);
    dir = pick.dir;
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
      const at = (g: RunRecord["git"]) => `${g.commit.slice(0, 7)}${g.dirty ? " (dirty)" : ""}`;
      progress.line(
        `note: run ${record.runId} ran at commit ${at(was)} and resumes at ${
          at(git)
        }; run.json records both (resumed)`,
      );
    }
  } else {
    record = await newRecord(opts, exp, order, git, backend);
    dir = runDirOf(outRoot, exp.id, record.runId);
  }
  // one write at a time, each of the record as it is then: a progress save never lands after
  // (and so never undoes) a later status change
  let last: Promise<void> = Promise.resolve();
  const save = () => (last = last.catch(() => {}).then(() => writeRunRecord(dir, record)));
  return { dir, record, save };
}

/** A float variant from a reused baseline: its weights, evaluated as if just trained. */
async function reuseFloat(
  path: string,
  v: ResolvedVariant,
  data: { train: Dataset; val: Dataset },
  progress: ProgressSink,
): Promise<VariantOutcome> {
  const b = await readFloatBaseline(path);
  const model = createModel(variantArch(v, data.train), 0);
  setWeights(model, b.weights);
  return quantizeAndEvaluate(
    v,
    data,
    model,
    { folded: false, metrics: b.metrics, layerEpochs: b.layerEpochs },
    progress,
  );
}

/** What the run loop shares between variants. */
interface RunContext {
  opts: RunOptions;
  exp: ResolvedExperiment;
  run: OpenRun;
  /** The variants in the order they run. */
  order: ResolvedVariant[];
  /** When the data started loading (performance.now()). */
  t0: number;
  data: { train: Dataset; val: Dataset };
  dataSum: string;
  backend: BackendName;
  progress: ProgressSink;
  checkpointRoot: string;
  exporter: Exporter | null;
  floatName: string | undefined;
  results: Map<string, VariantResult>;
  /** How many validation images exports are measured on. */
  exportCount: number;
  /** How many of them LiteRT runs model.tflite on. */
  tfliteCount: number;
  /** What each variant's export records of where it came from. */
  provenance: (v: ResolvedVariant) => Provenance;
  /** The float variant's final weights, once it is done. */
  floatWeights?: Record<string, Float32Array>;
  /** The whole run's position and time to its end. */
  clock: RunClock;
}

/** Trains (or resumes, or reuses) a variant's network and returns its outcome and compute seconds. */
async function trainVariant(
  c: RunContext,
  v: ResolvedVariant,
): Promise<{ outcome: VariantOutcome; seconds: () => number }> {
  const rec = c.run.record;
  const t0 = performance.now();
  let prior = 0;
  // this variant's compute time: this process's share plus earlier processes' up to their last checkpoint
  const seconds = () => prior + (performance.now() - t0) / 1000;
  const reusePath = floatBaselinePath(c.checkpointRoot, floatBaselineKey(v, c.exp.seed, c.dataSum));
  if (v.method.mode === "float" && await exists(reusePath)) {
    const outcome = await reuseFloat(reusePath, v, c.data, c.progress);
    rec.variants[v.name].reused = relative(REPO_ROOT, resolve(reusePath));
    c.progress.line(
      `${v.name}: reusing the float baseline with the same configuration (${
        rec.variants[v.name].reused
      })`,
    );
    return { outcome, seconds };
  }
  const statePath = variantFiles(c.run.dir, v.name).state;
  const saved = await loadState(statePath);
  prior = saved?.seconds ?? 0;
  if (saved) {
    c.progress.line(
      `${v.name}: resuming at phase ${saved.state.phase + 1}, epoch ${saved.state.epochDone}`,
    );
    const phases = planPhases(v), spe = stepsPerEpoch(v, c.data.train);
    const epochs = phases.slice(0, saved.state.phase).reduce((a, p) => a + p.epochs, 0) +
      saved.state.epochDone;
    c.clock.startVariant(v.name, epochs * spe);
  }
  const outcome = await runVariant({
    variant: v,
    seed: c.exp.seed,
    train: c.data.train,
    val: c.data.val,
    backend: c.backend,
    progress: c.progress,
    floatWeights: c.floatWeights,
    provenance: c.provenance(v),
    resume: saved?.state ?? null,
    saveState: async (s) => {
      const sec = seconds();
      await saveState(statePath, s, sec);
      rec.variants[v.name] = { ...rec.variants[v.name], seconds: sec };
      rec.progress = { ...c.clock.position(), at: new Date().toISOString() };
      await c.run.save();
    },
    signal: c.opts.signal,
  });
  if (v.method.mode === "float") {
    await writeFloatBaseline(reusePath, {
      weights: getWeights(outcome.model),
      metrics: outcome.metrics,
      layerEpochs: outcome.layerEpochs,
      hash: v.hash,
    });
  }
  return { outcome, seconds };
}

/** Exports a quantized outcome (when there is an exporter) and logs what it measured. */
async function exportOutcome(
  c: RunContext,
  v: ResolvedVariant,
  o: VariantOutcome,
): Promise<ExportInfo | null> {
  const q = o.quantized;
  if (!q || !c.exporter) return null;
  const floatAcc = c.floatName ? c.results.get(c.floatName)?.summary.accuracy ?? null : null;
  const evalSet = c.exportCount < c.data.val.labels.length
    ? firstImages(c.data.val, c.exportCount)
    : c.data.val;
  const dir = variantFiles(c.run.dir, o.name).exportDir;
  const info = await c.exporter(
    {
      name: o.name,
      model: o.model,
      specs: q.specs,
      weights: q.weights,
      activationBits: q.activationBits,
      activationRanges: q.activationRanges,
      simulated: o.eval,
      float32Bytes: o.summary.float32Bytes,
      quantizedBytes: o.summary.quantizedBytes,
      provenance: c.provenance(v),
      calibration: firstImages(c.data.train, CALIBRATION_IMAGES),
      tfliteCount: c.tfliteCount,
      warnings: c.run.record.warnings,
    },
    dir,
    evalSet,
    floatAcc,
  );
  c.progress.line(
    `${o.name}: exported ${info.bytes} bytes to ${dir}; ` +
      `interpreter accuracy ${(info.accuracy * 100).toFixed(2)}%, agreement with simulation ${
        (info.agreement * 100).toFixed(2)
      }%`,
  );
  return info;
}

/** The result a complete variant records (summary row without the drop, tables, seconds). */
function variantResult(
  c: RunContext,
  o: VariantOutcome,
  x: ExportInfo | null,
  seconds: number,
): VariantResult {
  // the exported model's accuracy when it ran on the whole validation set,
  // else (export.evalCount) the simulation's; agreement says how close they are
  const whole = x !== null && x.images === c.data.val.labels.length;
  const bytes = x ? x.bytes : o.summary.quantizedBytes;
  return {
    summary: {
      variant: o.name,
      mode: o.mode,
      bits: o.bits,
      accuracy: whole ? x.accuracy : o.eval.accuracy,
      loss: (whole ? x.loss : undefined) ?? o.eval.loss,
      bytes,
      float32_bytes: o.summary.float32Bytes,
      reduction: o.summary.float32Bytes / bytes,
      simulated_accuracy: o.eval.accuracy,
      prediction_agreement: x ? x.agreement : 1,
      tflite_bytes: x?.tflite ? x.tflite.bytes : null,
      tflite_agreement: x?.tflite ? x.tflite.agreement : null,
    },
    modelSummary: o.summary.rows,
    sensitivity: o.sensitivity?.map((r) => ({
      variant: o.name,
      layer: r.layer,
      bits: r.bits,
      loss_increase: r.score,
    })),
    metrics: o.metrics,
    layerEpochs: o.layerEpochs,
    layers: o.layers,
    seconds,
  };
}

/** Runs one variant to completion (or takes it from an earlier process of this run) and records it. */
async function completeVariant(c: RunContext, v: ResolvedVariant): Promise<VariantResult> {
  const rec = c.run.record, files = variantFiles(c.run.dir, v.name);
  const done = await readVariantResult(c.run.dir, v.name);
  if (done && rec.variants[v.name]?.status === "complete") {
    if (v.name === c.floatName) c.floatWeights = (await readFinal(files.final)).weights;
    c.progress.line(`${v.name}: already complete in this run`);
    return done;
  }
  rec.variants[v.name] = { hash: v.hash, status: "running" };
  c.clock.startVariant(v.name);
  rec.progress = { ...c.clock.position(), at: new Date().toISOString() };
  await c.run.save();
  const { outcome, seconds } = await trainVariant(c, v);
  await writeFinal(files.final, {
    variant: outcome.name,
    mode: outcome.mode,
    arch: outcome.arch,
    classNames: c.data.train.classNames,
    weights: getWeights(outcome.model),
    quantized: outcome.quantized,
  });
  if (v.name === c.floatName) c.floatWeights = getWeights(outcome.model);
  const x = await exportOutcome(c, v, outcome);
  if (x?.evaluator) rec.variants[v.name].evaluator = x.evaluator;
  const result = variantResult(c, outcome, x, seconds());
  disposeModel(outcome.model);
  await writeVariantResult(c.run.dir, v.name, result);
  await Deno.remove(files.state).catch(() => {});
  rec.variants[v.name] = { ...rec.variants[v.name], status: "complete", seconds: result.seconds };
  c.clock.endVariant();
  await c.run.save();
  return result;
}

/** The share of the most frequent class among the labels: what always guessing it scores. */
function majorityShare(ds: Dataset): number {
  const counts = new Map<number, number>();
  for (const l of ds.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return Math.max(0, ...counts.values()) / Math.max(1, ds.labels.length);
}

/**
 * Warnings about a validation split too small or too uniform to measure anything: fewer than
 * 50 images, or one class only.
 *
 * @example
 * ```ts ignore
 * for (const w of splitWarnings(val)) progress.line(w);
 * ```
 */
export function splitWarnings(val: Dataset): string[] {
  const n = val.labels.length, classes = new Set(val.labels).size;
  const out: string[] = [];
  if (n < 50) {
    out.push(
      `warning: only ${n} validation images: an accuracy measured on them moves by ${
        (100 / n).toFixed(1)
      } points per image and means little`,
    );
  }
  if (classes < 2) {
    out.push(
      `warning: the validation images are all of one class; accuracy cannot tell models apart`,
    );
  }
  return out;
}

/**
 * A warning when the float network is within 2 points of always guessing the most frequent
 * class: it has not learned, and neither can its quantized variants.
 *
 * @example
 * ```ts ignore
 * const w = chanceWarning(0.5, val);
 * ```
 */
export function chanceWarning(accuracy: number, val: Dataset): string | null {
  const chance = majorityShare(val);
  if (accuracy > chance + 0.02) return null;
  return `warning: the float network is at chance (${(accuracy * 100).toFixed(2)} % against ${
    (chance * 100).toFixed(2)
  } % for always the most frequent class): it has not learned, so the quantized results mean little; ` +
    `train longer (--set train.epochs=N) or on more images`;
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
  const c = await prepareRun(opts);
  const { run, progress } = c;
  try {
    for (const line of c.notes) progress.line(line);
    for (const v of c.order) {
      const r = await completeVariant(c, v);
      c.results.set(v.name, r);
      if (v.name === c.floatName) {
        const w = chanceWarning(r.summary.accuracy, c.data.val);
        if (w) {
          progress.line(w);
          run.record.warnings = [...new Set([...(run.record.warnings ?? []), w])];
        }
      }
      progress.line(variantLine(c, v, r));
    }
    const budget = c.order.map((v) =>
      v.method.mode === "mixed" ? v.method.search.budgetBytes : undefined
    )
      .find((b) => b !== undefined);
    const summary = await writeRunOutputs(
      run.dir,
      run.record,
      c.order.map((v) => c.results.get(v.name)!),
      c.floatName,
      budget,
    );
    run.record.status = "complete";
    run.record.ended = new Date().toISOString();
    delete run.record.progress;
    await run.save();
    return { runDir: run.dir, record: run.record, summary };
  } catch (e) {
    if (!(e instanceof RunAborted)) {
      run.record.status = "failed";
      run.record.error = (e as Error).message;
      run.record.ended = new Date().toISOString();
      delete run.record.progress;
      await run.save();
    }
    throw e;
  }
}

/**
 * Everything before the first variant: the module resolved and planned, the run opened, the
 * data loaded and every variant checked (so bad settings or data leave no run directory), the
 * run directory created, and the lines to print first.
 */
async function prepareRun(opts: RunOptions): Promise<RunContext & { notes: string[] }> {
  const sink = opts.progress ?? consoleProgress();
  const outRoot = opts.outRoot ?? DEFAULT_RUNS_ROOT;
  const def = await loadExperimentModule(opts.path);
  const resolveOpts = { where: opts.path, ...(opts.resolve ?? {}) };
  const exp = resolveExperiment(def, resolveOpts);
  const all = resolveExperiment(def, { ...resolveOpts, variants: undefined }).variants;
  const { order, floatVariant } = planRun(exp, all, opts.path);
  const backend = opts.backend ?? "wasm";
  const checkpointRoot = opts.checkpointRoot ?? defaultCheckpointRoot(outRoot);
  const run = await openRun(opts, exp, order, outRoot, backend, sink);
  // the data before anything is written, so bad data files leave no run directory behind
  await initBackend(backend);
  const t0 = performance.now();
  const data = await loadDataset(order[0].dataset.name, {
    ...order[0].dataset.options,
    ...(opts.dataRoot !== undefined ? { cacheRoot: opts.dataRoot } : {}),
    onProgress: loadingProgress(sink),
  });
  // the C runtime measures exports on every validation image; the slower TypeScript
  // interpreter on the first export.evalCount when the experiment sets it
  const native = await nativeRuntime() !== null;
  const exportCount = exp.exportEvalCount && !native
    ? Math.min(exp.exportEvalCount, data.val.labels.length)
    : data.val.labels.length;
  const provenance = (v: ResolvedVariant) => provenanceOf(run.record, v.name, exportCount);
  preflightRun(order, data, opts.path, provenance);
  const warnings = [...splitWarnings(data.val), ...stepsWarnings(order, data.train)];
  run.record.warnings = [...new Set([...(run.record.warnings ?? []), ...warnings])];
  if (!run.record.warnings.length) delete run.record.warnings;
  await run.save(); // creates the run directory
  await removeInterruptedWrites(outRoot, exp.id, checkpointRoot);
  const clock = new RunClock(order.map((v): PlannedVariant => ({
    name: v.name,
    steps: planPhases(v).reduce((a, p) => a + p.epochs, 0) * stepsPerEpoch(v, data.train),
    quantized: v.method.mode !== "float",
  })));
  const progress = clockedProgress(sink, clock, run);
  const notes = [
    ...data.notes,
    ...(native ? [] : [
      `note: exports are measured by the TypeScript interpreter (${await nativeUnavailable()})`,
    ]),
    ...warnings,
    `${exp.id} v${exp.version} (${exp.profile}): ${data.train.name} ${data.train.labels.length} train / ${data.val.labels.length} val, ` +
    `loaded in ${formatDuration((performance.now() - t0) / 1000)}; run ${run.record.runId}`,
  ];
  return {
    opts,
    exp,
    run,
    data,
    order,
    t0,
    // the data's bytes (not only their configuration) key the reusable float baselines
    dataSum: datasetChecksum(data.train.images, data.train.labels) + ":" +
      datasetChecksum(data.val.images, data.val.labels),
    backend,
    progress,
    checkpointRoot,
    exporter: opts.exporter === undefined ? exportVariant : opts.exporter,
    floatName: floatVariant?.name,
    provenance,
    exportCount,
    tfliteCount: exp.exportTfliteCount ?? TFLITE_EVAL_IMAGES,
    results: new Map(),
    clock,
    notes,
  };
}

/** Training steps per epoch of a variant, as the training loop counts them. */
function stepsPerEpoch(v: ResolvedVariant, train: Dataset): number {
  return epochSteps(train.labels.length, v.train.batchSize);
}

/** Fewer steps than this in the float network's training: warned about before it starts. */
export const MIN_FLOAT_STEPS = 100;

/**
 * A warning, before anything trains, when the float network would train for fewer than
 * {@link MIN_FLOAT_STEPS} steps (epochs x steps per epoch): too few for it to learn, so every
 * variant would sit near chance. Says the numbers and what to change.
 *
 * @example
 * ```ts ignore
 * for (const w of stepsWarnings(order, data.train)) progress.line(w);
 * ```
 */
export function stepsWarnings(order: ResolvedVariant[], train: Dataset): string[] {
  const v = order.find((o) => o.method.mode === "float");
  if (!v) return [];
  const spe = stepsPerEpoch(v, train), steps = spe * v.train.epochs;
  if (steps >= MIN_FLOAT_STEPS) return [];
  return [
    `warning: the float network trains for only ${steps} steps (${v.train.epochs} epochs x ${spe} batches of ${v.train.batchSize} from ${train.labels.length} training images), ` +
    `fewer than ${MIN_FLOAT_STEPS}: it will hardly learn; set more epochs or a smaller batch (--set train.epochs=N, --set train.batchSize=N)`,
  ];
}

/**
 * The runner's progress sink: each training step advances the run's clock, every status line
 * ends with the whole run's position and ETA, and run.json's `progress` is rewritten at most
 * every 30 s (for `deno task runs` and the sweep's view).
 */
function clockedProgress(sink: ProgressSink, clock: RunClock, run: OpenRun): ProgressSink {
  let saved = performance.now();
  return {
    status: (t) => sink.status(`${t} | ${clock.text()}`),
    line: (t) => sink.line(t),
    epoch: () => sink.epoch?.(),
    tick(seconds) {
      clock.step(seconds);
      if (performance.now() - saved < 30_000) return;
      saved = performance.now();
      run.record.progress = { ...clock.position(), at: new Date().toISOString() };
      run.save().catch(() => {}); // a failed progress write is retried 30 s later
    },
  };
}

/**
 * Removes what interrupted writes left (a process killed between writing a
 * temporary file and renaming it): in every run of this experiment that no
 * live process works on (this one, being resumed, included), and in the
 * shared float-baseline store those not touched for 10 minutes (another
 * process may be writing there now).
 */
async function removeInterruptedWrites(
  outRoot: string,
  id: string,
  checkpointRoot: string,
): Promise<void> {
  for (const r of await listRunDirs(outRoot, id, () => {})) {
    if (!runBusy(r.record)) await removeStaleTemps(r.dir);
  }
  await removeStaleTemps(checkpointRoot, 600);
}

/** The line a finished variant prints: accuracy, size, its time and how far the run is. */
function variantLine(c: RunContext, v: ResolvedVariant, r: VariantResult): string {
  const s = r.summary, rec = c.run.record;
  const nDone = c.order.filter((o) => rec.variants[o.name]?.status === "complete").length;
  return `${v.name}: accuracy ${(s.accuracy * 100).toFixed(2)}%, ${s.bytes} bytes (${
    s.reduction.toFixed(1)
  }x smaller than float32), ` +
    `${formatDuration(r.seconds)} [${nDone}/${c.order.length} variants done, ${
      formatDuration((performance.now() - c.t0) / 1000)
    } since the run ${c.opts.resume ? "resumed" : "started"}]`;
}

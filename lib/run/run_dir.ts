/**
 * The run directory format (docs/run-directory.md). A run is plain files, as
 * in DVC: `<runs root>/<experiment>/<run id>/` holds `run.json` (what ran,
 * at which commit, its status), the tidy tables (`summary.csv`,
 * `metrics.csv`, `layers.csv`, `layer_epochs.csv`, `sensitivity.csv`), plots
 * and a report, and `variants/<name>/` with each variant's final weights
 * (`final.qgtw`), its result (`result.json`), an epoch checkpoint while it
 * runs (`state.qgtw`) and its export (`export/`). Reusable float baselines sit
 * in `<runs root>/.checkpoints/`. Every reader and writer of these files goes
 * through this module and `final.ts` (the `final.qgtw` reader and writer,
 * float baselines): the record and row types, the tables' column orders, the
 * paths, listing runs.
 * @module
 */
import { join } from "node:path";
import { REPO_ROOT } from "../util/path.ts";
import { readCsv, rowsOf, tableOf, writeCsv } from "../util/tables.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { denoProcessAlive } from "../util/process.ts";
import type { LayerSummaryRow } from "../quant/summary.ts";
import type { Provenance } from "../format/header.ts";

/** Where runs go unless `--out` says otherwise: `reports/runs/` in the repository. */
export const DEFAULT_RUNS_ROOT: string = join(REPO_ROOT, "reports", "runs");

// ---------------------------------------------------------------- run.json

/** A variant's entry in run.json. */
export interface VariantRecord {
  /** SHA-256 of the variant's resolved settings. */
  hash: string;
  status: "pending" | "running" | "complete";
  /**
   * Compute time in seconds: the whole variant once complete, up to its last
   * checkpoint while running. Resumed variants add up every process's share
   * (work redone after an interruption counts once).
   */
  seconds?: number;
  /** The float baseline reused instead of training (path relative to the repository). */
  reused?: string;
  /** What measured the exported model: `c-runtime` or `ts-interpreter` (quantized variants). */
  evaluator?: string;
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
  /**
   * The numerical stack: Deno, tfjs, the training backend (`wasm`, `native`, `cpu`), and with
   * `native` oneDNN's version and the instruction set it dispatched to.
   */
  versions: { deno: string; tfjs: string; backend: string; onednn?: string; isa?: string };
  /** The dataset the run used (name and options), so exports can be re-evaluated. */
  dataset: { name: string; options: Record<string, unknown> };
  status: "running" | "complete" | "failed";
  pid: number;
  started: string;
  ended?: string;
  error?: string;
  /** Warnings about the data the figures rest on (too few validation images, a float network at chance). */
  warnings?: string[];
  /** Where a running run is: written at most every 30 s and at each epoch's end (absent when done). */
  progress?: RunProgress;
  variants: Record<string, VariantRecord>;
}

/** A running run's position and its estimated time to the end. */
export interface RunProgress {
  /** The variant running, its place in the run's order (1-based) and how many there are. */
  variant: string;
  index: number;
  of: number;
  /** The training step within the variant (all its phases), and its steps in all. */
  step: number;
  steps: number;
  /** Seconds until the whole run ends, estimated from the measured step times (null: not yet). */
  etaSeconds: number | null;
  /** When this was written (ISO time). */
  at: string;
}

// ---------------------------------------------------------------- tables

/** One row of metrics.csv: a metric of a variant after an epoch of a phase. */
export interface MetricRow {
  variant: string;
  phase: string;
  epoch: number;
  split: "train" | "val";
  metric: string;
  value: number;
}

/** One row of summary.csv: a variant's deployed model. */
export interface VariantSummaryRow {
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
  /** Bytes of model.tflite, the standard int8 TFLite model of the same network (null: none exported). */
  tflite_bytes?: number | null;
  /** Fraction of images on which model.tflite in LiteRT predicts what model.qgt predicts. */
  tflite_agreement?: number | null;
}

/** One row of layers.csv, the bottleneck table: a layer of a quantized variant. */
export interface LayerRow {
  variant: string;
  layer: string;
  params: number;
  bits: number;
  bytes: number;
  grid_error: number;
  relative_error: number;
  /** Loss increase with only this layer quantized at its bits (null when not measured). */
  sensitivity: number | null;
  chosen_bits: number;
}

/** One row of layer_epochs.csv: a layer's quantization error after an epoch. */
export interface LayerEpochRow {
  variant: string;
  phase: string;
  epoch: number;
  layer: string;
  bits: number;
  grid_error: number;
  relative_error: number;
  reg_loss: number;
}

/** One row of sensitivity.csv: loss increase with only `layer` quantized at `bits`. */
export interface SensitivityRow {
  variant: string;
  layer: string;
  bits: number;
  loss_increase: number;
}

/** Column orders of the tables (the CSV headers). */
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
  "tflite_bytes",
  "tflite_agreement",
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
export const SENSITIVITY_COLUMNS = ["variant", "layer", "bits", "loss_increase"];
/** Columns of a model summary (per layer) in report.html. */
export const MODEL_SUMMARY_COLUMNS = ["layer", "params", "bits", "bytes", "float32Bytes"];

/** variants/<name>/result.json: what a complete variant produced, so a resumed run need not redo it. */
export interface VariantResult {
  summary: Omit<VariantSummaryRow, "accuracy_drop">;
  /** Larq-style per-layer parameters, bits and bytes. */
  modelSummary: LayerSummaryRow[];
  /** Per-layer sensitivity at each candidate width (mixed-precision variants). */
  sensitivity?: SensitivityRow[];
  metrics: MetricRow[];
  layerEpochs: LayerEpochRow[];
  layers: LayerRow[];
  seconds: number;
}

/** The tables of a run, as written to its directory. */
export interface RunTables {
  summary: VariantSummaryRow[];
  metrics: MetricRow[];
  layers: LayerRow[];
  layerEpochs: LayerEpochRow[];
  sensitivity: SensitivityRow[];
}

// ---------------------------------------------------------------- paths

/** File names at the top of a run directory. */
export const RUN_FILES = {
  record: "run.json",
  summary: "summary.csv",
  metrics: "metrics.csv",
  layers: "layers.csv",
  layerEpochs: "layer_epochs.csv",
  sensitivity: "sensitivity.csv",
  report: "report.html",
} as const;

/**
 * The directory of run `runId` of experiment `experimentId` under `outRoot`.
 *
 * @example
 * ```ts
 * import { runDirOf } from "./run_dir.ts";
 * if (runDirOf("out", "smoke", "r1") !== "out/smoke/r1") throw new Error();
 * ```
 */
export function runDirOf(outRoot: string, experimentId: string, runId: string): string {
  return join(outRoot, experimentId, runId);
}

/** The files of one variant in a run directory. */
export interface VariantFiles {
  dir: string;
  /** Final weights and, for quantized variants, integer codes (`final.qgtw`). */
  final: string;
  /** The epoch checkpoint while the variant runs (`state.qgtw`). */
  state: string;
  /** What the complete variant produced (`result.json`). */
  result: string;
  /** The export folder. */
  exportDir: string;
  /** The exported model (`export/model.qgt`). */
  model: string;
}

/**
 * Paths of variant `name`'s files in `runDir`.
 *
 * @example
 * ```ts
 * import { variantFiles } from "./run_dir.ts";
 * const f = variantFiles("r", "qat-2");
 * if (f.model !== "r/variants/qat-2/export/model.qgt" || f.final !== "r/variants/qat-2/final.qgtw") throw new Error();
 * ```
 */
export function variantFiles(runDir: string, name: string): VariantFiles {
  const dir = join(runDir, "variants", name);
  return {
    dir,
    final: join(dir, "final.qgtw"),
    state: join(dir, "state.qgtw"),
    result: join(dir, "result.json"),
    exportDir: join(dir, "export"),
    model: join(dir, "export", "model.qgt"),
  };
}

/**
 * Where reusable float baselines are kept for a runs root (`<outRoot>/.checkpoints`).
 *
 * @example
 * ```ts
 * import { defaultCheckpointRoot } from "./run_dir.ts";
 * if (defaultCheckpointRoot("runs") !== "runs/.checkpoints") throw new Error();
 * ```
 */
export function defaultCheckpointRoot(outRoot: string): string {
  return join(outRoot, ".checkpoints");
}

/**
 * The reusable float baseline with settings key `key` (a SHA-256 hex).
 *
 * @example
 * ```ts
 * import { floatBaselinePath } from "./run_dir.ts";
 * if (floatBaselinePath("c", "0123456789abcdef0123") !== "c/float-0123456789abcdef.qgtw") throw new Error();
 * ```
 */
export function floatBaselinePath(checkpointRoot: string, key: string): string {
  return join(checkpointRoot, `float-${key.slice(0, 16)}.qgtw`);
}

/**
 * A new run id: UTC time, the commit's first 7 characters, the process id and
 * 4 random hex digits (so runs started at once never collide).
 *
 * @example
 * ```ts
 * import { newRunId } from "./run_dir.ts";
 * const id = newRunId("0123456789", new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
 * if (!id.startsWith("20260102-030405-0123456-")) throw new Error(id);
 * ```
 */
export function newRunId(commit: string, d: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const ts = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${
    p(d.getUTCHours())
  }${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  const rand = Math.floor(Math.random() * 0xffff).toString(16).padStart(4, "0");
  return `${ts}-${commit.slice(0, 7)}-${Deno.pid}${rand}`;
}

// ---------------------------------------------------------------- listing runs

/** A run found on disk. */
export interface LocatedRun {
  dir: string;
  record: RunRecord;
}

async function readJsonOrNull<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/** Called for a run directory whose run.json cannot be read, with the one-line reason. */
export type OnDamaged = (dir: string, reason: string) => void;

/**
 * Lists run directories of an experiment (or of all), newest first by start
 * time; directories without a readable run.json are left out.
 *
 * @example
 * ```ts
 * import { listRunDirs } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * const runs = await listRunDirs(dir, "fashion-mnist");
 * if (runs.length !== 0) throw new Error(); // nothing recorded yet
 * await Deno.remove(dir);
 * ```
 */
export async function listRunDirs(
  outRoot: string,
  experimentId?: string,
  onDamaged?: OnDamaged,
): Promise<LocatedRun[]> {
  const out: LocatedRun[] = [];
  const ids: string[] = [];
  if (experimentId) ids.push(experimentId);
  else {
    try {
      for await (const e of Deno.readDir(outRoot)) {
        // derived/ holds files made from committed models (deno task mcu, tflite), not runs
        if (e.isDirectory && !e.name.startsWith(".") && e.name !== "derived") ids.push(e.name);
      }
    } catch { /* no runs yet */ }
  }
  for (const id of ids) {
    try {
      for await (const e of Deno.readDir(join(outRoot, id))) {
        if (!e.isDirectory) continue;
        const dir = runDirOf(outRoot, id, e.name);
        if (!onDamaged) {
          const rec = await readJsonOrNull<RunRecord>(join(dir, RUN_FILES.record));
          if (rec) out.push({ dir, record: rec });
          continue;
        }
        try {
          out.push({ dir, record: await readRunRecord(dir) });
        } catch (err) {
          onDamaged(dir, (err as Error).message);
        }
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
 * import { newestFirst } from "./run_dir.ts";
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

/**
 * Whether another live process is running this run (this process's own runs can be resumed).
 *
 * @example
 * ```ts
 * import { runBusy } from "./run_dir.ts";
 * if (runBusy({ status: "running", pid: Deno.pid })) throw new Error(); // our own
 * ```
 */
export function runBusy(rec: Pick<RunRecord, "status" | "pid">): boolean {
  return rec.status === "running" && rec.pid !== Deno.pid && denoProcessAlive(rec.pid);
}

/**
 * A run's status as a reader should see it: `incomplete` for a run recorded
 * as running whose process is gone.
 *
 * @example
 * ```ts
 * import { runStatus } from "./run_dir.ts";
 * if (runStatus({ status: "running", pid: 2 ** 22 + 1 }) !== "incomplete") throw new Error();
 * ```
 */
export function runStatus(
  rec: Pick<RunRecord, "status" | "pid">,
): RunRecord["status"] | "incomplete" {
  return rec.status === "running" && !denoProcessAlive(rec.pid) ? "incomplete" : rec.status;
}

// ---------------------------------------------------------------- reading and writing

/**
 * Reads `run.json` of a run directory; a missing or unreadable file is a
 * one-line error naming it.
 *
 * @example
 * ```ts
 * import { readRunRecord } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/run.json`, '{"runId": "r"');
 * let msg = "";
 * try { await readRunRecord(dir); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith(`${dir}/run.json: not valid JSON`)) throw new Error(msg);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readRunRecord(runDir: string): Promise<RunRecord> {
  const path = join(runDir, RUN_FILES.record);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${runDir}: not a run directory (no ${RUN_FILES.record})`);
    }
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  let rec: RunRecord;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); the file is damaged`);
  }
  if (typeof rec?.runId !== "string" || typeof rec.variants !== "object" || !rec.experiment) {
    throw new Error(`${path}: not a run record (runId, experiment and variants expected)`);
  }
  return rec;
}

/**
 * Writes `run.json` atomically (creating the run directory).
 *
 * @example
 * ```ts ignore
 * await writeRunRecord(runDir, record);
 * ```
 */
export function writeRunRecord(runDir: string, rec: RunRecord): Promise<void> {
  return writeJsonAtomic(join(runDir, RUN_FILES.record), rec);
}

/**
 * Reads a complete run's summary.csv as typed rows (numbers parsed).
 *
 * @example
 * ```ts
 * import { readSummary, writeRunTables } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * const row = { variant: "float", mode: "float", bits: 32, accuracy: 0.5, loss: 0.7, bytes: 8,
 *   float32_bytes: 8, reduction: 1, accuracy_drop: 0, simulated_accuracy: 0.5, prediction_agreement: 1 };
 * await writeRunTables(dir, { summary: [row], metrics: [], layers: [], layerEpochs: [], sensitivity: [] });
 * const [back] = await readSummary(dir);
 * if (back.accuracy !== 0.5 || back.bits !== 32) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readSummary(runDir: string): Promise<VariantSummaryRow[]> {
  const path = join(runDir, RUN_FILES.summary);
  let rows: Record<string, unknown>[];
  try {
    rows = rowsOf(await readCsv(path));
  } catch (e) {
    throw new Error(`${path}: cannot read the summary table: ${(e as Error).message}`);
  }
  return rows.map((r) =>
    ({
      ...Object.fromEntries(SUMMARY_COLUMNS.map((c) => [c, r[c] ?? null])),
      variant: String(r.variant),
      mode: r.mode == null ? "" : String(r.mode),
    }) as VariantSummaryRow
  );
}

/**
 * Reads one of a run's tables (metrics, layers, layer epochs) as plain rows.
 *
 * @example
 * ```ts ignore
 * const metrics = await readTable(runDir, "metrics");
 * ```
 */
export async function readTable(
  runDir: string,
  table: "metrics" | "layers" | "layerEpochs" | "sensitivity",
): Promise<Record<string, unknown>[]> {
  return rowsOf(await readCsv(join(runDir, RUN_FILES[table])));
}

/**
 * Writes a run's tables with their fixed column orders (`sensitivity.csv`
 * only when there are sensitivity rows).
 *
 * @example
 * ```ts
 * import { writeRunTables } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await writeRunTables(dir, { summary: [], metrics: [], layers: [], layerEpochs: [], sensitivity: [] });
 * if (!(await Deno.readTextFile(`${dir}/metrics.csv`)).startsWith("variant,phase,epoch")) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeRunTables(runDir: string, t: RunTables): Promise<void> {
  await writeCsv(join(runDir, RUN_FILES.metrics), tableOf(t.metrics, METRIC_COLUMNS));
  await writeCsv(join(runDir, RUN_FILES.summary), tableOf(t.summary, SUMMARY_COLUMNS));
  await writeCsv(join(runDir, RUN_FILES.layers), tableOf(t.layers, LAYER_COLUMNS));
  await writeCsv(
    join(runDir, RUN_FILES.layerEpochs),
    tableOf(t.layerEpochs, LAYER_EPOCH_COLUMNS),
  );
  if (t.sensitivity.length) {
    await writeCsv(
      join(runDir, RUN_FILES.sensitivity),
      tableOf(t.sensitivity, SENSITIVITY_COLUMNS),
    );
  }
}

/**
 * Reads a complete variant's `result.json`, or null when there is none.
 *
 * @example
 * ```ts
 * import { readVariantResult } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * if (await readVariantResult(dir, "float") !== null) throw new Error();
 * await Deno.remove(dir);
 * ```
 */
export function readVariantResult(runDir: string, name: string): Promise<VariantResult | null> {
  return readJsonOrNull<VariantResult>(variantFiles(runDir, name).result);
}

/**
 * Writes a complete variant's `result.json` atomically.
 *
 * @example
 * ```ts ignore
 * await writeVariantResult(runDir, "qat-2", result);
 * ```
 */
export function writeVariantResult(runDir: string, name: string, r: VariantResult): Promise<void> {
  return writeJsonAtomic(variantFiles(runDir, name).result, r);
}

/**
 * The provenance an exported model of this run carries in its header: the
 * experiment, seed, variant, commit and the dataset it was validated on
 * (the run id is left out, so the same run repeated gives the same bytes).
 *
 * @example
 * ```ts
 * import { provenanceOf } from "./run_dir.ts";
 * const rec = { experiment: { id: "e", version: 2, profile: "quick" }, seed: 3,
 *   git: { commit: "c", dirty: false }, dataset: { name: "d", options: {} } };
 * const p = provenanceOf(rec as never, "qgt-2", 256);
 * if (p.variant !== "qgt-2" || p.validation.count !== 256 || p.seed !== 3) throw new Error();
 * ```
 */
export function provenanceOf(rec: RunRecord, variant: string, validationCount: number): Provenance {
  return {
    experiment: rec.experiment.id,
    version: rec.experiment.version,
    profile: rec.experiment.profile,
    seed: rec.seed,
    variant,
    commit: rec.git.commit,
    dirty: rec.git.dirty,
    dataset: { name: rec.dataset.name, options: rec.dataset.options },
    validation: { count: validationCount },
  };
}

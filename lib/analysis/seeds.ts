/**
 * Seed-to-seed statistics of an experiment: the latest complete run of each
 * seed (one experiment version, profile and dataset; several run roots may be
 * searched), each variant's accuracy over the seeds (mean, sd, min, max), and
 * paired differences between two variants on the seeds both were run with,
 * with a 95 % t interval. This is how "QGT is not worse than QAT" is read
 * against seed noise.
 * @module
 */
import { join } from "node:path";
import * as aq from "arquero";
import {
  listRunDirs,
  type LocatedRun,
  newestFirst,
  readSummary,
  RUN_FILES,
  type RunRecord,
  variantFiles,
  type VariantSummaryRow,
} from "../run/run_dir.ts";
import { rowsOf } from "../util/tables.ts";
import { pairedDifference } from "../report/stats.ts";

/** One variant's accuracy in one seed's run. */
export interface SeedSample {
  seed: number;
  variant: string;
  /** Accuracy in percent, as summary.csv states it (x 100). */
  accuracy: number;
  /** The variant's mode and weight bits ("mixed", 32 for float), when the summary says. */
  mode?: string;
  bits?: string;
  runId: string;
  commit: string;
}

/** The runs chosen and their samples. */
export interface SeedSelection {
  id: string;
  version: number;
  /** Earlier versions that supplied variants the chosen version's runs lack (see {@link SeedFilter}). */
  alsoVersions: number[];
  profile: string;
  /** The dataset all chosen runs used (name and options, as JSON). */
  dataset: string;
  runs: LocatedRun[];
  samples: SeedSample[];
  /** Variants in the order the runs list them. */
  variants: string[];
}

/** One variant over the seeds (accuracies in percent). */
export interface VariantSeedRow {
  variant: string;
  n: number;
  seeds: string;
  mean_pct: number;
  sd_pct: number | null;
  min_pct: number;
  max_pct: number;
}

/** One paired comparison b - a over shared seeds (in accuracy points). */
export interface PairRow {
  a: string;
  b: string;
  n: number;
  seeds: string;
  /** null when the two variants share no seed. */
  mean_diff: number | null;
  sd_diff: number | null;
  ci95_low: number | null;
  ci95_high: number | null;
  wins: number;
  ties: number;
  losses: number;
}

/** Which runs {@link collectSeeds} may take. */
export interface SeedFilter {
  /** The experiment version (default: the newest found). */
  version?: number;
  /**
   * Other versions whose runs supply each seed's variants that the chosen
   * version's runs lack, in this order (for variants the experiment left
   * unchanged between versions, e.g. a version that only added variants).
   */
  alsoVersions?: number[];
  /** The profile (default "default"). */
  profile?: string;
  /** Only these seeds (default: every seed found). */
  seeds?: number[];
  /** Only runs this accepts (e.g. a sweep's: every variant hash one of the sweep's). */
  accept?: (record: RunRecord) => boolean;
  /**
   * Variants in this order first (default: the order of the run with the most
   * variants), so that runs of one variant each report in a fixed order.
   */
  order?: string[];
}

const r4 = (x: number): number | null => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);

/**
 * Picks, under each of `roots`, the complete runs of experiment `id` with the
 * profile (default "default"), the version (default the newest found) and the
 * dataset of the newest such run, and takes each seed's accuracy of each
 * variant from the newest run that has it (then from the newest run of
 * `alsoVersions` that has it, in their order). Throws a one-line error naming the
 * experiment and the roots when nothing matches.
 *
 * @example
 * ```ts ignore
 * const sel = await collectSeeds(["reports/runs"], "fashion-mnist");
 * ```
 */
export async function collectSeeds(
  roots: string[],
  id: string,
  opts: SeedFilter = {},
): Promise<SeedSelection> {
  const profile = opts.profile ?? "default";
  const all = (await Promise.all(roots.map((r) => listRunDirs(r, id)))).flat()
    .filter((r) =>
      r.record.status === "complete" && r.record.experiment.profile === profile &&
      (!opts.seeds || opts.seeds.includes(r.record.seed)) && (!opts.accept || opts.accept(r.record))
    )
    .sort(newestFirst);
  if (!all.length) {
    throw new Error(
      `seeds: no complete ${profile}-profile runs of ${id} under ${roots.join(", ")}`,
    );
  }
  const versions = [...new Set(all.map((r) => r.record.experiment.version))].sort((a, b) => a - b);
  const version = opts.version ?? versions[versions.length - 1];
  const ofVersion = all.filter((r) => r.record.experiment.version === version);
  if (!ofVersion.length) {
    throw new Error(
      `seeds: --version ${version}: no complete runs of ${id} at that version (have ${
        versions.join(", ")
      })`,
    );
  }
  const also = (opts.alsoVersions ?? []).filter((v) => v !== version);
  for (const v of also) {
    if (!all.some((r) => r.record.experiment.version === v)) {
      throw new Error(
        `seeds: also version ${v}: no complete runs of ${id} at that version (have ${
          versions.join(", ")
        })`,
      );
    }
  }
  const dataset = JSON.stringify(ofVersion[0].record.dataset);
  // the chosen version's runs first, then each also-version's, each newest first
  const rank = (r: LocatedRun) => [version, ...also].indexOf(r.record.experiment.version);
  const runs = all.filter((r) => rank(r) >= 0 && JSON.stringify(r.record.dataset) === dataset)
    .sort((a, b) => rank(a) - rank(b));
  const tables: VariantSummaryRow[][] = [];
  for (const run of runs) tables.push(await readSummary(run.dir));
  // variants in the order asked for, then the order of the run with the most of them, then others
  const widest = tables.reduce((w, t) => (t.length > w.length ? t : w), [] as typeof tables[0]);
  const found = new Set(tables.flat().map((r) => String(r.variant)));
  const variants = [
    ...new Set([
      ...(opts.order ?? []).filter((v) => found.has(v)),
      ...[...widest, ...tables.flat()].map((r) => String(r.variant)),
    ]),
  ];
  const samples = new Map<string, SeedSample>();
  const used: LocatedRun[] = [];
  runs.forEach((run, i) => {
    let took = false;
    for (const row of tables[i]) {
      const variant = String(row.variant);
      const acc = row.accuracy === null ? NaN : Number(row.accuracy);
      if (!Number.isFinite(acc)) {
        throw new Error(
          `${join(run.dir, RUN_FILES.summary)}: variant ${variant}: accuracy is not a number`,
        );
      }
      const key = `${run.record.seed}\u0000${variant}`;
      if (samples.has(key)) continue;
      took = true;
      samples.set(key, {
        seed: run.record.seed,
        variant,
        // summary.csv holds fractions to 4 decimals: percent to 2, without float noise
        accuracy: r4(acc * 100)!,
        mode: row.mode ? row.mode : undefined,
        bits: row.bits == null ? undefined : String(row.bits),
        runId: run.record.runId,
        commit: run.record.git.commit,
      });
    }
    if (took) used.push(run);
  });
  const order = (s: SeedSample) => variants.indexOf(s.variant);
  return {
    id,
    version,
    alsoVersions: also,
    profile,
    dataset,
    runs: used,
    samples: [...samples.values()].sort((a, b) => order(a) - order(b) || a.seed - b.seed),
    variants,
  };
}

/**
 * Each variant's accuracy over the seeds: n, the seeds, mean, sample sd, min
 * and max in percent (an Arquero roll-up of the samples).
 *
 * @example
 * ```ts
 * import { variantSeedRows } from "./seeds.ts";
 * const s = (seed: number, accuracy: number) => ({ seed, variant: "q", accuracy, runId: "r", commit: "c" });
 * const [row] = variantSeedRows([s(1, 80), s(2, 84)], ["q"]);
 * if (row.mean_pct !== 82 || row.seeds !== "1,2") throw new Error();
 * ```
 */
export function variantSeedRows(samples: SeedSample[], variants: string[]): VariantSeedRow[] {
  if (!samples.length) return [];
  const t = aq.from(samples).groupby("variant").rollup({
    n: aq.op.count(),
    mean: aq.op.mean("accuracy"),
    sd: aq.op.stdev("accuracy"),
    min: aq.op.min("accuracy"),
    max: aq.op.max("accuracy"),
  });
  const byVariant = new Map(rowsOf(t).map((r) => [String(r.variant), r]));
  return variants.filter((v) => byVariant.has(v)).map((v) => {
    const r = byVariant.get(v)!;
    return {
      variant: v,
      n: Number(r.n),
      seeds: samples.filter((s) => s.variant === v).map((s) => s.seed).join(","),
      mean_pct: r4(Number(r.mean))!,
      sd_pct: Number(r.n) > 1 ? r4(Number(r.sd)) : null,
      min_pct: r4(Number(r.min))!,
      max_pct: r4(Number(r.max))!,
    };
  });
}

/**
 * The default pairs [qat, qgt]: a `qat` variant with the `qgt` variant of the
 * same weight bits whose name is its name with "qat" replaced by "qgt"
 * (`qat-2` / `qgt-2`, `lsq-qat-2` / `lsq-qgt-2`); then, among the variants so
 * left unpaired, any weight-bit setting with exactly one of each.
 *
 * @example
 * ```ts
 * import { defaultPairs } from "./seeds.ts";
 * const s = (variant: string, mode: string, bits: string) => ({ seed: 1, variant, accuracy: 0, mode, bits, runId: "r", commit: "c" });
 * const p = defaultPairs([s("q2", "qat", "2"), s("g2", "qgt", "2"), s("g4", "qgt", "4")]);
 * if (JSON.stringify(p) !== '[["q2","g2"]]') throw new Error();
 * const l = defaultPairs([s("qat-2", "qat", "2"), s("lsq-qat-2", "qat", "2"), s("lsq-qgt-2", "qgt", "2"), s("qgt-2", "qgt", "2")]);
 * if (JSON.stringify(l) !== '[["qat-2","qgt-2"],["lsq-qat-2","lsq-qgt-2"]]') throw new Error();
 * ```
 */
export function defaultPairs(samples: SeedSample[]): [string, string][] {
  const quantized = new Map<string, { mode: "qat" | "qgt"; bits: string }>();
  for (const s of samples) {
    if ((s.mode === "qat" || s.mode === "qgt") && s.bits !== undefined) {
      quantized.set(s.variant, { mode: s.mode, bits: s.bits });
    }
  }
  const pairs: [string, string][] = [];
  const paired = new Set<string>();
  for (const [v, q] of quantized) {
    const twin = v.replaceAll("qat", "qgt"), t = quantized.get(twin);
    if (q.mode === "qat" && twin !== v && t?.mode === "qgt" && t.bits === q.bits) {
      pairs.push([v, twin]);
      paired.add(v).add(twin);
    }
  }
  const byBits = new Map<string, { qat: string[]; qgt: string[] }>();
  for (const [v, q] of quantized) {
    if (paired.has(v)) continue;
    const e = byBits.get(q.bits) ?? { qat: [], qgt: [] };
    e[q.mode].push(v);
    byBits.set(q.bits, e);
  }
  for (const e of byBits.values()) {
    if (e.qat.length === 1 && e.qgt.length === 1) pairs.push([e.qat[0], e.qgt[0]]);
  }
  return pairs;
}

/**
 * The paired difference b - a in accuracy points over the seeds both variants
 * have; throws when either variant is in no run.
 *
 * @example
 * ```ts
 * import { pairRow } from "./seeds.ts";
 * const s = (seed: number, variant: string, accuracy: number) => ({ seed, variant, accuracy, runId: "r", commit: "c" });
 * const p = pairRow([s(1, "a", 80), s(1, "b", 81), s(2, "a", 80), s(2, "b", 79), s(3, "b", 90)], "a", "b");
 * if (p.n !== 2 || p.mean_diff !== 0 || p.wins !== 1 || p.losses !== 1) throw new Error();
 * ```
 */
export function pairRow(samples: SeedSample[], a: string, b: string): PairRow {
  for (const v of [a, b]) {
    if (!samples.some((s) => s.variant === v)) {
      const have = [...new Set(samples.map((s) => s.variant))].join(", ");
      throw new Error(`seeds: --pair ${a},${b}: no variant ${v} in the runs (have ${have})`);
    }
  }
  const of = (v: string) => new Map(samples.filter((s) => s.variant === v).map((s) => [s.seed, s]));
  const A = of(a), B = of(b);
  const seeds = [...A.keys()].filter((s) => B.has(s)).sort((x, y) => x - y);
  const d = pairedDifference(
    seeds.map((s) => A.get(s)!.accuracy),
    seeds.map((s) => B.get(s)!.accuracy),
  );
  return {
    a,
    b,
    n: d.n,
    seeds: seeds.join(","),
    mean_diff: r4(d.mean),
    sd_diff: r4(d.sd),
    ci95_low: r4(d.ciLow),
    ci95_high: r4(d.ciHigh),
    wins: d.wins,
    ties: d.ties,
    losses: d.losses,
  };
}

/**
 * Throws a one-line error naming the first of `names` that no chosen run
 * has (prefixed by the flag that named it, if any).
 *
 * @example
 * ```ts
 * import { requireVariants } from "./seeds.ts";
 * const sel = { variants: ["qat-2", "qgt-2"] } as never;
 * requireVariants(sel, ["qgt-2"]);
 * let msg = "";
 * try { requireVariants(sel, ["x"], "--variants"); } catch (e) { msg = (e as Error).message; }
 * if (msg !== "seeds: --variants: no variant x in the runs (have qat-2, qgt-2)") throw new Error(msg);
 * ```
 */
export function requireVariants(sel: SeedSelection, names: string[], flag?: string): void {
  for (const v of names) {
    if (!sel.variants.includes(v)) {
      throw new Error(
        `seeds: ${flag ? `${flag}: ` : ""}no variant ${v} in the runs (have ${
          sel.variants.join(", ")
        })`,
      );
    }
  }
}

/** Re-measures one exported model: its accuracy (0..1) on the chosen images. */
export type ModelEvaluator = (
  bytes: Uint8Array,
  file: string,
  sample: SeedSample,
) => Promise<number>;

/**
 * The exported model of a sample's variant in its run:
 * `<run dir>/variants/<variant>/export/model.qgt`.
 *
 * @example
 * ```ts
 * import { modelPath } from "./seeds.ts";
 * const run = { dir: "r/exp/1", record: { runId: "1" } } as never;
 * const s = { seed: 1, variant: "qat-2", accuracy: 0, runId: "1", commit: "c" };
 * if (modelPath([run], s) !== "r/exp/1/variants/qat-2/export/model.qgt") throw new Error();
 * ```
 */
export function modelPath(runs: LocatedRun[], s: SeedSample): string {
  const run = runs.find((r) => r.record.runId === s.runId);
  if (!run) throw new Error(`seeds: run ${s.runId} (seed ${s.seed}) is not among the chosen runs`);
  return variantFiles(run.dir, s.variant).model;
}

/**
 * The samples of `variants`, their accuracy re-measured from each run's
 * exported model by `evaluate` (in percent, like summary.csv's), in the
 * selection's order. Throws a one-line error naming the file when a model is
 * missing.
 *
 * @example
 * ```ts ignore
 * const fresh = await reevaluateSamples(sel, ["qat-2", "qgt-2"], (bytes) => accuracyOn(bytes));
 * ```
 */
export async function reevaluateSamples(
  sel: SeedSelection,
  variants: string[],
  evaluate: ModelEvaluator,
): Promise<SeedSample[]> {
  requireVariants(sel, variants);
  // every model is read before any is evaluated, so a missing one fails before work is done
  const chosen = sel.samples.filter((s) => variants.includes(s.variant));
  const files: { s: SeedSample; path: string; bytes: Uint8Array }[] = [];
  for (const s of chosen) {
    const path = modelPath(sel.runs, s);
    try {
      files.push({ s, path, bytes: await Deno.readFile(path) });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(
          `${path}: no exported model (seed ${s.seed}, variant ${s.variant}); only exported variants can be re-evaluated`,
        );
      }
      throw e;
    }
  }
  const out: SeedSample[] = [];
  for (const { s, path, bytes } of files) {
    out.push({ ...s, accuracy: r4((await evaluate(bytes, path, s)) * 100)! });
  }
  return out;
}

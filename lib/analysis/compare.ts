/**
 * Comparing runs across commits (like `dvc metrics diff`): the latest complete
 * run of an experiment at each of two commits, their summary tables joined on
 * the variant, with deltas and a regression check.
 * @module
 */
import { listRunDirs, type LocatedRun, readSummary, type RunRecord } from "../run/run_dir.ts";
import { commitOrder, resolveRev } from "../experiment/git.ts";
import { UsageError } from "../util/cli.ts";

/** One compared metric of one variant. */
export interface CompareRow {
  variant: string;
  metric: string;
  a: number;
  b: number;
  delta: number;
}

/** Metrics compared, from summary.csv. */
export const COMPARED = ["accuracy", "bytes", "reduction", "accuracy_drop"] as const;

/** Filters of {@link pickRuns}. */
export interface RunFilter {
  /** Only runs with this seed. */
  seed?: number;
  /** Only runs with this profile (`default`, `quick`, `full`). */
  profile?: string;
}

/** The complete runs that pass the filter, and every recorded commit (to tell a typo from a filtered-out run). */
async function completeRuns(
  outRoot: string,
  experiment: string | undefined,
  filter: RunFilter,
): Promise<{ runs: LocatedRun[]; commits: string[] }> {
  const every = await listRunDirs(outRoot, experiment);
  const runs = every.filter((r) =>
    r.record.status === "complete" &&
    (filter.seed === undefined || r.record.seed === filter.seed) &&
    (filter.profile === undefined || r.record.experiment.profile === filter.profile)
  );
  return { runs, commits: every.map((r) => r.record.git.commit) };
}

async function runsAt(
  { runs: all, commits }: { runs: LocatedRun[]; commits: string[] },
  rev: string,
  repo?: string,
): Promise<LocatedRun[]> {
  const full = await resolveRev(rev, repo);
  const at = all.filter((r) =>
    full ? r.record.git.commit === full : r.record.git.commit.startsWith(rev)
  );
  if (!full && !at.length && !commits.some((c) => c.startsWith(rev))) {
    throw new UsageError(
      `compare: ${
        JSON.stringify(rev)
      } is not a revision git knows, nor the start of a recorded run's commit`,
    );
  }
  return at;
}

/**
 * Finds the two runs to compare: at REV_A and REV_B, or by default the latest
 * complete runs at the two most recent commits that have any (history order
 * from git; commits git does not know are ordered by run start time).
 *
 * @example
 * ```ts ignore
 * const [a, b] = await pickRuns("reports/runs", undefined, undefined, "person-detect");
 * ```
 */
export async function pickRuns(
  outRoot: string,
  revA: string | undefined,
  revB: string | undefined,
  experiment: string | undefined,
  repo?: string,
  filter: RunFilter = {},
): Promise<[LocatedRun, LocatedRun]> {
  const filtered = [
    filter.seed !== undefined ? ` with seed ${filter.seed}` : "",
    filter.profile !== undefined ? ` with profile ${filter.profile}` : "",
  ].join("");
  const one = (runs: LocatedRun[], what: string): LocatedRun => {
    if (!runs.length) {
      throw new Error(
        `compare: no complete run at ${what}${
          experiment ? ` for ${experiment}` : ""
        }${filtered} in ${outRoot}`,
      );
    }
    const ids = new Set(runs.map((r) => r.record.experiment.id));
    if (ids.size > 1) {
      throw new Error(
        `compare: runs of several experiments at ${what} (${
          [...ids].join(", ")
        }): pass --experiment`,
      );
    }
    return runs[0]; // newest first
  };
  // the run directories are read once; every choice below filters this list
  const found = await completeRuns(outRoot, experiment, filter), all = found.runs;
  if (revA && revB) {
    return [
      one(await runsAt(found, revA, repo), revA),
      one(await runsAt(found, revB, repo), revB),
    ];
  }
  const ids = new Set(all.map((r) => r.record.experiment.id));
  if (ids.size > 1) {
    throw new Error(
      `compare: runs of several experiments (${[...ids].join(", ")}): pass --experiment`,
    );
  }
  const history = await commitOrder(repo);
  const rank = (c: string) => {
    const i = history.indexOf(c);
    return i < 0 ? Infinity : i;
  };
  const byCommit = new Map<string, LocatedRun>();
  for (const r of all) if (!byCommit.has(r.record.git.commit)) byCommit.set(r.record.git.commit, r);
  const commits = [...byCommit.values()].sort((x, y) => {
    const d = rank(x.record.git.commit) - rank(y.record.git.commit);
    if (d !== 0 && isFinite(d)) return d;
    if (rank(x.record.git.commit) !== rank(y.record.git.commit)) {
      return rank(x.record.git.commit) < rank(y.record.git.commit) ? -1 : 1;
    }
    return x.record.started < y.record.started ? 1 : -1;
  });
  if (revB && !revA) throw new Error("compare: give both revisions or neither");
  if (revA) {
    const a = one(await runsAt(found, revA, repo), revA);
    const b = commits.find((r) => r.record.git.commit !== a.record.git.commit);
    if (!b) throw new Error(`compare: no complete run at another commit than ${revA}`);
    return [a, b];
  }
  if (commits.length < 2) {
    throw new Error(
      `compare: need complete runs at two commits, found ${commits.length}${filtered} in ${outRoot}`,
    );
  }
  return [commits[1], commits[0]];
}

/**
 * What else than the commit differs between two runs (experiment version,
 * profile, seed, dataset, resolved settings), one "what: A vs B" each; a
 * delta between such runs measures that difference too, not only the
 * commits'.
 *
 * @example
 * ```ts
 * import { runDifferences } from "./compare.ts";
 * import type { RunRecord } from "../run/run_dir.ts";
 * const a = { seed: 1, experiment: { version: 3, profile: "default", hash: "h1" }, dataset: { name: "d", options: {} } };
 * const b = { ...a, seed: 2, experiment: { ...a.experiment, hash: "h2" } };
 * const d = runDifferences(a as unknown as RunRecord, b as unknown as RunRecord);
 * if (d.join("; ") !== "seed: 1 (A) vs 2 (B); settings hash: h1 (A) vs h2 (B)") throw new Error();
 * ```
 */
export function runDifferences(a: RunRecord, b: RunRecord): string[] {
  const out: string[] = [];
  const diff = (what: string, x: unknown, y: unknown) => {
    const sx = typeof x === "string" ? x : JSON.stringify(x);
    const sy = typeof y === "string" ? y : JSON.stringify(y);
    if (sx !== sy) out.push(`${what}: ${sx} (A) vs ${sy} (B)`);
  };
  diff("experiment version", a.experiment.version, b.experiment.version);
  diff("profile", a.experiment.profile, b.experiment.profile);
  diff("seed", a.seed, b.seed);
  diff("dataset", a.dataset, b.dataset);
  diff("settings hash", a.experiment.hash.slice(0, 12), b.experiment.hash.slice(0, 12));
  // the training backend (and its library): native and wasm kernels round differently
  diff("training backend", backendOf(a.versions), backendOf(b.versions));
  return out;
}

/**
 * A run's training backend in one line: `wasm`, or `native oneDNN 2.6.3 avx2` (empty for runs
 * that did not record it). Self-contained, like {@link runDifferences} that calls it, for the
 * results site's browser script.
 *
 * @example
 * ```ts
 * import { backendOf } from "./compare.ts";
 * if (backendOf({ deno: "", tfjs: "", backend: "native", onednn: "2.6.3", isa: "avx2" }) !== "native oneDNN 2.6.3 avx2") throw new Error();
 * ```
 */
export function backendOf(v: RunRecord["versions"] | undefined): string {
  return [v?.backend, v?.onednn && `oneDNN ${v.onednn}`, v?.isa].filter(Boolean).join(" ");
}

/** Result of {@link compareSummaries}. */
export interface Comparison {
  /** Per variant in both runs and metric of {@link COMPARED}: A, B and B - A. */
  rows: CompareRow[];
  /** Variants only one of the two runs has (not compared). */
  onlyA: string[];
  onlyB: string[];
}

/**
 * Joins two summary tables on the variant and computes deltas (B - A).
 *
 * @example
 * ```ts ignore
 * const { rows } = await compareSummaries(a.dir, b.dir);
 * ```
 */
export async function compareSummaries(dirA: string, dirB: string): Promise<Comparison> {
  return joinSummaries(await readSummary(dirA), await readSummary(dirB), COMPARED);
}

/**
 * The join of {@link compareSummaries} on summary rows already read: per
 * variant in both and metric of `metrics`, A, B and B - A. Self-contained (it
 * uses nothing outside its body), so the results site runs this very function
 * in the browser.
 *
 * @example
 * ```ts
 * import { joinSummaries } from "./compare.ts";
 * const c = joinSummaries([{ variant: "q", accuracy: 0.9 }, { variant: "x", accuracy: 1 }],
 *   [{ variant: "q", accuracy: 0.85 }], ["accuracy"]);
 * if (c.rows.length !== 1 || Math.abs(c.rows[0].delta + 0.05) > 1e-12 || c.onlyA[0] !== "x") throw new Error();
 * ```
 */
export function joinSummaries(
  ta: readonly object[],
  tb: readonly object[],
  metrics: readonly string[],
): Comparison {
  const get = (r: object, k: string) => (r as Record<string, unknown>)[k];
  const inB = new Map(tb.map((r) => [String(get(r, "variant")), r]));
  const rows: CompareRow[] = [];
  for (const ra of ta) {
    const variant = String(get(ra, "variant")), rb = inB.get(variant);
    if (!rb) continue;
    for (const m of metrics) {
      const a = Number(get(ra, m)), b = Number(get(rb, m));
      rows.push({ variant, metric: m, a, b, delta: b - a });
    }
  }
  const va = ta.map((r) => String(get(r, "variant"))),
    vb = tb.map((r) => String(get(r, "variant")));
  return {
    rows,
    onlyA: va.filter((v) => !vb.includes(v)),
    onlyB: vb.filter((v) => !va.includes(v)),
  };
}

/**
 * The comparison as a table to read: a row per variant with accuracy (%) and
 * exported bytes at A and B and their changes (points, bytes).
 *
 * @example
 * ```ts
 * import { wideRows } from "./compare.ts";
 * const w = wideRows([
 *   { variant: "q", metric: "accuracy", a: 0.9, b: 0.885, delta: -0.015 },
 *   { variant: "q", metric: "bytes", a: 100, b: 90, delta: -10 },
 * ]);
 * if (w[0]["accuracy A %"] !== 90 || w[0]["change (points)"] !== -1.5 || w[0]["change (bytes)"] !== -10) {
 *   throw new Error();
 * }
 * ```
 */
export function wideRows(rows: CompareRow[]): Record<string, string | number>[] {
  const out = new Map<string, Record<string, string | number>>();
  const pct = (x: number) => Number((x * 100).toFixed(2));
  for (const r of rows) {
    const w = out.get(r.variant) ?? { variant: r.variant };
    if (r.metric === "accuracy") {
      w["accuracy A %"] = pct(r.a);
      w["accuracy B %"] = pct(r.b);
      w["change (points)"] = Number((pct(r.b) - pct(r.a)).toFixed(2));
    } else if (r.metric === "bytes") {
      w["bytes A"] = r.a;
      w["bytes B"] = r.b;
      w["change (bytes)"] = r.delta;
    }
    out.set(r.variant, w);
  }
  return [...out.values()];
}

/**
 * Regressions beyond `pct`: accuracy lower by more than `pct` percentage
 * points, or size larger by more than `pct` percent.
 *
 * @example
 * ```ts
 * import { regressions } from "./compare.ts";
 * const r = regressions([{ variant: "v", metric: "accuracy", a: 0.9, b: 0.85, delta: -0.05 }], 2);
 * if (r.length !== 1) throw new Error();
 * ```
 */
export function regressions(rows: CompareRow[], pct: number): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.metric === "accuracy" && (r.a - r.b) * 100 > pct) {
      out.push(
        `${r.variant}: accuracy ${(r.a * 100).toFixed(2)}% -> ${(r.b * 100).toFixed(2)}% (-${
          ((r.a - r.b) * 100).toFixed(2)
        } points)`,
      );
    }
    if (r.metric === "bytes" && r.a > 0 && ((r.b - r.a) / r.a) * 100 > pct) {
      out.push(
        `${r.variant}: size ${r.a} -> ${r.b} bytes (+${(((r.b - r.a) / r.a) * 100).toFixed(2)}%)`,
      );
    }
  }
  return out;
}

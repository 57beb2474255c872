/**
 * Comparing runs across commits (like `dvc metrics diff`): the latest complete
 * run of an experiment at each of two commits, their summary tables joined on
 * the variant, with deltas and a regression check.
 * @module
 */
import { join } from "node:path";
import * as aq from "arquero";
import { listRunDirs, type RunRecord } from "./runner.ts";
import { commitOrder, resolveRev } from "./git.ts";
import { readCsv, rowsOf } from "../report/tables.ts";

/** One compared metric of one variant. */
export interface CompareRow {
  variant: string;
  metric: string;
  a: number;
  b: number;
  delta: number;
}

/** A located run. */
export interface LocatedRun {
  dir: string;
  record: RunRecord;
}

/** Metrics compared, from summary.csv. */
export const COMPARED = ["accuracy", "bytes", "reduction", "accuracy_drop"] as const;

async function runsAt(
  outRoot: string,
  rev: string,
  experiment: string | undefined,
  repo?: string,
): Promise<LocatedRun[]> {
  const all = (await listRunDirs(outRoot, experiment)).filter((r) =>
    r.record.status === "complete"
  );
  const full = await resolveRev(rev, repo);
  return all.filter((
    r,
  ) => (full ? r.record.git.commit === full : r.record.git.commit.startsWith(rev)));
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
): Promise<[LocatedRun, LocatedRun]> {
  const one = (runs: LocatedRun[], what: string): LocatedRun => {
    if (!runs.length) {
      throw new Error(
        `compare: no complete run at ${what}${
          experiment ? ` for ${experiment}` : ""
        } in ${outRoot}`,
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
  if (revA && revB) {
    return [
      one(await runsAt(outRoot, revA, experiment, repo), revA),
      one(await runsAt(outRoot, revB, experiment, repo), revB),
    ];
  }
  const all = (await listRunDirs(outRoot, experiment)).filter((r) =>
    r.record.status === "complete"
  );
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
    const a = one(await runsAt(outRoot, revA, experiment, repo), revA);
    const b = commits.find((r) => r.record.git.commit !== a.record.git.commit);
    if (!b) throw new Error(`compare: no complete run at another commit than ${revA}`);
    return [a, b];
  }
  if (commits.length < 2) {
    throw new Error(
      `compare: need complete runs at two commits, found ${commits.length} in ${outRoot}`,
    );
  }
  return [commits[1], commits[0]];
}

/**
 * Joins two summary tables on the variant and computes deltas (B - A).
 *
 * @example
 * ```ts ignore
 * const rows = await compareSummaries(a.dir, b.dir);
 * ```
 */
export async function compareSummaries(dirA: string, dirB: string): Promise<CompareRow[]> {
  const ta = (await readCsv(join(dirA, "summary.csv"))).select("variant", ...COMPARED);
  const tb = (await readCsv(join(dirB, "summary.csv"))).select("variant", ...COMPARED);
  const joined = ta.join(tb, "variant", undefined, { suffix: ["_a", "_b"] });
  const out: CompareRow[] = [];
  for (const r of rowsOf(joined)) {
    for (const m of COMPARED) {
      const a = Number(r[`${m}_a`]), b = Number(r[`${m}_b`]);
      out.push({ variant: String(r.variant), metric: m, a, b, delta: b - a });
    }
  }
  void aq;
  return out;
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

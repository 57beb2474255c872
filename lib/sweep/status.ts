/**
 * Which of a sweep's jobs are done, read from the run root alone (no state
 * of the sweep's own): a job is done when a complete run there holds its
 * variant with the same settings hash; a run of exactly the job's variants
 * that stopped part-way (interrupted, failed, its process gone) is resumed
 * with `--resume --run-id`; anything else runs afresh. So re-running a sweep
 * runs only what is missing or failed, whichever executor ran it before.
 * @module
 */
import { listRunDirs, type LocatedRun, runBusy } from "../run/run_dir.ts";
import type { SweepJob, SweepPlan } from "./plan.ts";

/** A job's state on disk. */
export type JobState =
  | { state: "done"; runId: string }
  | { state: "running"; runId: string }
  | { state: "resume"; runId: string }
  | { state: "missing" };

/**
 * The state of `job` among the runs of its experiment (newest first).
 *
 * @example
 * ```ts
 * import { jobState } from "./status.ts";
 * const job = { name: "seed1-qat", seed: 1, variant: "qat", level: 1 as const, args: [],
 *   run: [{ name: "float", hash: "f" }, { name: "qat", hash: "q" }] };
 * const rec = (runId: string, status: string, qat: string) => ({ dir: runId, record: {
 *   runId, status, pid: 2 ** 22 + 1,
 *   variants: { float: { hash: "f", status: "complete" }, qat: { hash: qat, status } } } });
 * const runs = [rec("b", "failed", "q"), rec("a", "complete", "other")] as never;
 * const s = jobState(job, runs);
 * if (s.state !== "resume" || s.runId !== "b") throw new Error(JSON.stringify(s));
 * ```
 */
export function jobState(job: SweepJob, runs: LocatedRun[]): JobState {
  const own = job.run.find((v) => v.name === job.variant)!;
  for (const { record } of runs) {
    const v = record.variants?.[job.variant];
    if (record.status === "complete" && v?.hash === own.hash && v.status === "complete") {
      return { state: "done", runId: record.runId };
    }
  }
  for (const { record } of runs) {
    const names = Object.keys(record.variants ?? {});
    const same = names.length === job.run.length &&
      job.run.every((v) => record.variants[v.name]?.hash === v.hash);
    if (!same || record.status === "complete") continue;
    return { state: runBusy(record) ? "running" : "resume", runId: record.runId };
  }
  return { state: "missing" };
}

/**
 * Every job's state in the sweep's run root.
 *
 * @example
 * ```ts ignore
 * const states = await sweepStates(plan);
 * ```
 */
export async function sweepStates(plan: SweepPlan): Promise<Map<string, JobState>> {
  const runs = await listRunDirs(plan.spec.out, plan.id);
  return new Map(plan.jobs.map((j) => [j.name, jobState(j, runs)]));
}

/**
 * Throws one line naming the job and run when a job's run is still running
 * in another process: a sweep does not start a job twice.
 *
 * @example
 * ```ts
 * import { assertIdle } from "./status.ts";
 * const plan = { spec: { out: "r" } } as never;
 * assertIdle(plan, new Map([["seed1-float", { state: "done", runId: "a" }]]));
 * let msg = "";
 * try { assertIdle(plan, new Map([["j", { state: "running", runId: "b" }]])); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("j: run b in r is still running")) throw new Error(msg);
 * ```
 */
export function assertIdle(plan: SweepPlan, states: Map<string, JobState>): void {
  for (const [name, s] of states) {
    if (s.state === "running") {
      throw new Error(
        `${name}: run ${s.runId} in ${plan.spec.out} is still running in another process; wait for it or stop it first`,
      );
    }
  }
}

/**
 * The arguments that run `job` given its state: as planned, or resuming the
 * run it left part-way.
 *
 * @example
 * ```ts
 * import { jobArgs } from "./status.ts";
 * const job = { name: "j", seed: 1, variant: "v", level: 0 as const, args: ["x.ts"], run: [] };
 * if (jobArgs(job, { state: "resume", runId: "r1" }).join(" ") !== "x.ts --resume --run-id r1") throw new Error();
 * ```
 */
export function jobArgs(job: SweepJob, state: JobState): string[] {
  return state.state === "resume" ? [...job.args, "--resume", "--run-id", state.runId] : job.args;
}

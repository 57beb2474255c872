/**
 * The Slurm executor: a sweep's missing jobs as one job array per level
 * (level 1 submitted with `--dependency=afterok:<level 0>` and
 * `--kill-on-invalid-dep=yes`, so a failed float job cancels the arrays
 * behind it instead of leaving them pending), written as batch scripts into
 * `<sweep dir>/slurm/`, submitted with `sbatch`, followed with `squeue`
 * (which, unlike `sacct`, needs no accounting database). Each array task
 * runs one job's `deno task run` from the repository, appending to the same
 * `logs/<job>.log` as the local executor. Whether a job is done is read from
 * the run root afterwards, as for the local executor; a re-run submits only
 * what is missing or failed, and first re-attaches to arrays of an earlier
 * submission that are still queued or running.
 * @module
 */
import { join } from "node:path";
import { REPO_ROOT } from "../util/path.ts";
import { shellQuote } from "../util/cli.ts";
import { exists, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import type { SweepJob, SweepPlan } from "./plan.ts";
import { assertIdle, jobArgs, type JobState, sweepStates } from "./status.ts";
import { jobLog, logTail, type SweepOutcome } from "./local.ts";

/** How a Slurm sweep is submitted and followed. */
export interface SlurmOptions {
  /** The sweep directory. */
  dir: string;
  log: (line: string) => void;
  /** Extra `sbatch` options for every array (partition, time, memory...). */
  slurmArgs: string[];
  /** At most this many tasks of an array at once (`--array=...%N`). */
  jobs?: number;
  /** The Deno executable on the compute nodes (default: this one; `$QGT_DENO` overrides). */
  deno?: string;
  /** Milliseconds between `squeue` polls (default 5,000). */
  poll?: number;
  /** Aborting stops following (the jobs keep running in Slurm). */
  signal?: AbortSignal;
}

/** One submitted array. */
interface Submitted {
  id: string;
  level: number;
  script: string;
  jobs: string[];
}

const ACTIVE = new Set([
  "PENDING",
  "RUNNING",
  "CONFIGURING",
  "COMPLETING",
  "REQUEUED",
  "REQUEUE_HOLD",
  "REQUEUE_FED",
  "RESIZING",
  "SUSPENDED",
  "STOPPED",
  "SIGNALING",
  "STAGE_OUT",
]);

/** Runs a Slurm command; its stdout, or a one-line error with its stderr. */
async function slurm(cmd: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new Error(
      `${cmd}: cannot run it (${(e as Error).message.split("\n")[0]}); is Slurm installed here?`,
    );
  }
  const dec = new TextDecoder();
  if (!out.success) {
    const err = dec.decode(out.stderr).trim().split("\n").at(-1) ?? "";
    throw new Error(`${cmd} ${args.join(" ")}: exit ${out.code}: ${err}`);
  }
  return dec.decode(out.stdout);
}

/**
 * The batch script of one level: an array with one task per job, each
 * appending its `deno task run` output to the job's log.
 *
 * @example
 * ```ts
 * import { batchScript } from "./slurm.ts";
 * const job = { name: "seed1-float", seed: 1, variant: "float", level: 0 as const,
 *   args: ["experiments/smoke.ts", "--seed", "1"], run: [] };
 * const s = batchScript([{ job, state: { state: "missing" } }], 0, {
 *   dir: "/runs/.sweeps/x", name: "smoke", threads: 1, deno: "/usr/bin/deno", repo: "/repo" });
 * if (!s.includes("#SBATCH --array=0-0") || !s.includes("0) NAME=seed1-float; ARGS=(experiments/smoke.ts --seed 1) ;;")) throw new Error(s);
 * ```
 */
export function batchScript(
  jobs: { job: SweepJob; state: JobState }[],
  level: number,
  o: { dir: string; name: string; threads: number; deno: string; repo: string; jobs?: number },
): string {
  const q = shellQuote;
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${q(`qgt-${o.name}-L${level}`)}`,
    `#SBATCH --array=0-${jobs.length - 1}${o.jobs ? `%${o.jobs}` : ""}`,
    `#SBATCH --cpus-per-task=${o.threads}`,
    `#SBATCH --ntasks=1`,
    `#SBATCH --output=${q(join(o.dir, "logs", "slurm-%A_%a.out"))}`,
    `# written by \`deno task sweep\`: level ${level} of sweep ${o.dir}, one array task per job`,
    "set -u",
    `cd ${q(o.repo)} || exit 1`,
    'case "$SLURM_ARRAY_TASK_ID" in',
    ...jobs.map(({ job, state }, i) =>
      `  ${i}) NAME=${q(job.name)}; ARGS=(${jobArgs(job, state).map(q).join(" ")}) ;;`
    ),
    '  *) echo "no job for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    "esac",
    `LOG=${q(join(o.dir, "logs"))}/"$NAME.log"`,
    'echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) slurm ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname): deno task run ${ARGS[*]}" >> "$LOG"',
    `NO_COLOR=1 exec "\${QGT_DENO:-${o.deno}}" task -q run "\${ARGS[@]}" >> "$LOG" 2>&1`,
    "",
  ];
  return lines.join("\n");
}

/** The state of every task of the given arrays: `<array>_<task>` -> state. */
async function queueStates(ids: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  if (!ids.length) return m;
  let text: string;
  try {
    text = await slurm("squeue", ["-h", "-r", "-t", "all", "-j", ids.join(","), "-o", "%i %T"]);
  } catch (e) {
    // arrays the controller has forgotten (older than MinJobAge) are finished
    if (/Invalid job id/i.test((e as Error).message)) return m;
    throw e;
  }
  for (const line of text.split("\n")) {
    const [task, state] = line.trim().split(/\s+/);
    if (task && state) m.set(task, state);
  }
  return m;
}

/** Follows arrays until none of their tasks is queued or running; false when aborted. */
async function follow(subs: Submitted[], o: SlurmOptions): Promise<boolean> {
  let last = "";
  while (true) {
    const states = await queueStates(subs.map((s) => s.id));
    const count = new Map<string, number>();
    for (const s of states.values()) count.set(s, (count.get(s) ?? 0) + 1);
    const line = [...count].sort().map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ");
    if (line !== last) {
      o.log(`[slurm ${subs.map((s) => s.id).join(",")}] ${line || "no tasks in the queue"}`);
      last = line;
    }
    if (![...states.values()].some((s) => ACTIVE.has(s))) return true;
    if (o.signal?.aborted) return false;
    await new Promise<void>((r) => {
      const t = setTimeout(r, o.poll ?? 5000);
      o.signal?.addEventListener("abort", () => {
        clearTimeout(t);
        r();
      }, { once: true });
    });
    if (o.signal?.aborted) return false;
  }
}

/** Splits a `--slurm-args` string into words (single and double quotes group). */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const m of s.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/**
 * Submits the sweep's missing jobs to Slurm (re-attaching first to arrays
 * of an earlier submission still in the queue), follows them and returns
 * what happened, read from the run root.
 *
 * @example
 * ```ts ignore
 * const outcome = await runSlurm(plan, { dir, log: console.log, slurmArgs: ["-p", "cpu"] });
 * ```
 */
export async function runSlurm(plan: SweepPlan, o: SlurmOptions): Promise<SweepOutcome> {
  const subPath = join(o.dir, "slurm", "submitted.json");
  const earlier: Submitted[] = await exists(subPath)
    ? JSON.parse(await Deno.readTextFile(subPath))
    : [];
  const out: SweepOutcome = { ran: [], skipped: [], failed: [], blocked: [], interrupted: false };
  const queued = await queueStates(earlier.map((s) => s.id));
  const active = earlier.filter((s) =>
    [...queued].some(([task, st]) => task.startsWith(`${s.id}_`) && ACTIVE.has(st))
  );
  let subs: Submitted[];
  const before = await sweepStates(plan);
  if (active.length) {
    o.log(`re-attaching to arrays still in the queue: ${active.map((s) => s.id).join(", ")}`);
    subs = active;
  } else {
    subs = [];
    assertIdle(plan, before);
    const todo = plan.jobs.filter((j) => before.get(j.name)!.state !== "done");
    await Deno.mkdir(join(o.dir, "logs"), { recursive: true });
    const deno = o.deno ?? Deno.execPath();
    for (const level of [0, 1]) {
      const jobs = todo.filter((j) => j.level === level)
        .map((job) => ({ job, state: before.get(job.name)! }));
      if (!jobs.length) continue;
      const n = earlier.length + subs.length;
      const script = join(o.dir, "slurm", `submit${n}-level${level}.sbatch`);
      await writeTextAtomic(
        script,
        batchScript(jobs, level, {
          dir: o.dir,
          name: plan.id,
          threads: plan.threads,
          deno,
          repo: REPO_ROOT,
          jobs: o.jobs,
        }),
      );
      const dep = subs.length ? [`--dependency=afterok:${subs.map((s) => s.id).join(":")}`] : [];
      const args = ["--parsable", "--kill-on-invalid-dep=yes", ...dep, ...o.slurmArgs, script];
      const id = (await slurm("sbatch", args)).trim().split(";")[0];
      if (!/^\d+$/.test(id)) {
        throw new Error(`sbatch: expected a job id, got ${JSON.stringify(id)}`);
      }
      subs.push({ id, level, script, jobs: jobs.map((j) => j.job.name) });
      o.log(`submitted level ${level}: array ${id} of ${jobs.length} job(s) (${script})`);
      await writeJsonAtomic(subPath, [...earlier, ...subs]);
    }
  }
  out.skipped = plan.jobs.filter((j) => before.get(j.name)!.state === "done").map((j) => j.name);
  if (!subs.length) return out;
  if (!(await follow(subs, o))) {
    out.interrupted = true;
    o.log(
      `stopped following; the jobs keep running in Slurm (cancel them with: scancel ${
        subs.map((s) => s.id).join(" ")
      }); run the same command again to re-attach`,
    );
    return out;
  }
  const final = await queueStates(subs.map((s) => s.id));
  const after = await sweepStates(plan);
  const byName = new Map(plan.jobs.map((j) => [j.name, j]));
  for (const s of subs) {
    for (const [i, name] of s.jobs.entries()) {
      const job = byName.get(name)!;
      if (after.get(name)!.state === "done") {
        out.ran.push(name);
        continue;
      }
      const st = final.get(`${s.id}_${i}`) ?? "no longer in the queue";
      if (job.after && out.failed.some((f) => f.name === job.after)) {
        out.blocked.push(name);
        continue;
      }
      out.failed.push({
        name,
        reason: `slurm ${s.id}_${i} ${st}`,
        tail: await logTail(jobLog(o.dir, job)),
      });
    }
  }
  return out;
}

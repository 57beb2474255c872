/**
 * The local executor: a sweep's jobs as `deno task run` processes on this
 * machine, at most `jobs` at once, each level-1 job after its seed's float
 * job. Every job's output is appended to `<sweep dir>/logs/<job>.log`; one
 * progress view (a line per start and end, and every `statusEvery` ms the
 * running jobs' latest progress lines) covers the whole sweep. An abort
 * (Ctrl-C) sends SIGINT to the running jobs, which stop at once keeping
 * their last epoch checkpoint; the next run of the sweep resumes them.
 * @module
 */
import { join } from "node:path";
import { REPO_ROOT } from "../util/path.ts";
import { formatDuration } from "../util/progress.ts";
import { shellQuote } from "../util/cli.ts";
import type { SweepJob, SweepPlan } from "./plan.ts";
import { assertIdle, jobArgs, type JobState, sweepStates } from "./status.ts";

/** How a local sweep runs. */
export interface LocalOptions {
  /** The sweep directory (logs go to `logs/` in it). */
  dir: string;
  /** Processes at once. */
  jobs: number;
  /** Where progress lines go. */
  log: (line: string) => void;
  /** Aborting stops the running jobs (SIGINT) and starts no more. */
  signal?: AbortSignal;
  /** The Deno executable (default: this one). */
  deno?: string;
  /** Milliseconds between status lines of the running jobs (default 60,000). */
  statusEvery?: number;
}

/** What a sweep's execution came to. */
export interface SweepOutcome {
  /** Jobs run now that completed. */
  ran: string[];
  /** Jobs that were already done. */
  skipped: string[];
  /** Jobs that failed (exit code, or done-ness not found on disk), with their log's tail. */
  failed: { name: string; reason: string; tail: string[] }[];
  /** Jobs not run because the job they start from failed. */
  blocked: string[];
  /** True when the sweep was stopped before it ended. */
  interrupted: boolean;
}

/** The last `n` non-empty lines of a log file (none when unreadable). */
export async function logTail(path: string, n = 12): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split(/\r?\n|\r/).filter((l) => l.trim()).slice(-n);
  } catch {
    return [];
  }
}

/** The log file of a job in the sweep directory. */
export function jobLog(dir: string, job: Pick<SweepJob, "name">): string {
  return join(dir, "logs", `${job.name}.log`);
}

interface Running {
  job: SweepJob;
  child: Deno.ChildProcess;
  started: number;
  last: string;
  done: Promise<number>;
}

/** Copies a child's output stream into the log file, keeping the last line seen. */
async function pump(
  stream: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  onLine: (l: string) => void,
): Promise<void> {
  const dec = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    await file.write(chunk);
    partial += dec.decode(chunk, { stream: true });
    const lines = partial.split(/\r?\n|\r/);
    partial = lines.pop() ?? "";
    const last = lines.filter((l) => l.trim()).at(-1);
    if (last) onLine(last);
  }
}

async function start(job: SweepJob, state: JobState, o: LocalOptions): Promise<Running> {
  const args = jobArgs(job, state);
  await Deno.mkdir(join(o.dir, "logs"), { recursive: true });
  const file = await Deno.open(jobLog(o.dir, job), { create: true, append: true });
  const head = `== ${new Date().toISOString()} deno task run ${args.map(shellQuote).join(" ")}\n`;
  await file.write(new TextEncoder().encode(head));
  const child = new Deno.Command(o.deno ?? Deno.execPath(), {
    args: ["task", "-q", "run", ...args],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const r: Running = { job, child, started: performance.now(), last: "", done: null! };
  const set = (l: string) => (r.last = l.trim()); // NO_COLOR: no escape codes
  r.done = Promise.all([pump(child.stdout, file, set), pump(child.stderr, file, set)])
    .then(() => child.status)
    .then((s) => s.code)
    .finally(() => file.close());
  return r;
}

/**
 * Runs the sweep's missing, failed and interrupted jobs locally and returns
 * what happened; done jobs are skipped. Never throws for a failing job: the
 * outcome lists it.
 *
 * @example
 * ```ts ignore
 * const outcome = await runLocal(plan, { dir, jobs: 2, log: console.log });
 * ```
 */
export async function runLocal(plan: SweepPlan, o: LocalOptions): Promise<SweepOutcome> {
  const states = await sweepStates(plan);
  assertIdle(plan, states);
  const out: SweepOutcome = { ran: [], skipped: [], failed: [], blocked: [], interrupted: false };
  const finished = new Set<string>();
  const waiting: SweepJob[] = [];
  for (const j of plan.jobs) {
    const s = states.get(j.name)!;
    if (s.state === "done") {
      out.skipped.push(j.name);
      finished.add(j.name);
    } else waiting.push(j);
  }
  const total = plan.jobs.length;
  const running = new Map<string, Running>();
  const status = (what: string) =>
    o.log(
      `[${finished.size}/${total} done, ${running.size} running, ${
        waiting.length + out.blocked.length
      } waiting${out.failed.length ? `, ${out.failed.length} failed` : ""}] ${what}`,
    );
  if (out.skipped.length) status(`already done: ${out.skipped.join(", ")}`);
  const stop = () => {
    out.interrupted = true;
    for (const r of running.values()) {
      try {
        r.child.kill("SIGINT");
      } catch { /* already gone */ }
    }
  };
  if (o.signal?.aborted) stop();
  o.signal?.addEventListener("abort", stop, { once: true });
  const ticker = setInterval(() => {
    for (const r of running.values()) {
      o.log(
        `  ${r.job.name} (${formatDuration((performance.now() - r.started) / 1000)}): ${r.last}`,
      );
    }
  }, o.statusEvery ?? 60_000);
  try {
    while (waiting.length || running.size) {
      // start what may start: a failed float job blocks its seed's other jobs
      for (let i = 0; i < waiting.length && running.size < o.jobs && !out.interrupted;) {
        const j = waiting[i];
        if (j.after && out.failed.some((f) => f.name === j.after)) {
          waiting.splice(i, 1);
          out.blocked.push(j.name);
          continue;
        }
        if (j.after && !finished.has(j.after)) {
          i++;
          continue;
        }
        waiting.splice(i, 1);
        const s = states.get(j.name)!;
        running.set(j.name, await start(j, s, o));
        status(`started ${j.name}${s.state === "resume" ? ` (resuming run ${s.runId})` : ""}`);
      }
      if (!running.size) break; // interrupted, or only blocked jobs left
      const [name, code] = await Promise.race(
        [...running.values()].map((r) => r.done.then((c) => [r.job.name, c] as const)),
      );
      const r = running.get(name)!;
      running.delete(name);
      const took = formatDuration((performance.now() - r.started) / 1000);
      // a zero exit is not enough: the job's variant must be complete on disk
      const now = code === 0 ? (await sweepStates(plan)).get(name)! : null;
      if (now?.state === "done") {
        finished.add(name);
        out.ran.push(name);
        status(`${name} done in ${took} (run ${now.runId})`);
      } else if (!out.interrupted) {
        const reason = code === 0 ? "exit 0 but no complete run on disk" : `exit code ${code}`;
        out.failed.push({ name, reason, tail: await logTail(jobLog(o.dir, r.job)) });
        status(`${name} FAILED after ${took} (${reason}; log ${jobLog(o.dir, r.job)})`);
      }
    }
  } finally {
    clearInterval(ticker);
    o.signal?.removeEventListener("abort", stop);
  }
  if (out.interrupted) out.blocked.push(...waiting.map((j) => j.name));
  return out;
}

/**
 * `deno task sweep <experiment.ts> [--seeds 1-5] [--variants a,b] [--profile quick|full]
 * [--out DIR] [--set key=value]... [--executor local|slurm] [--jobs N] [--slurm-args "..."]
 * [--plan]`: runs an experiment's seeds x variants as jobs (per seed the float network, then
 * every quantized variant from it), each an ordinary `deno task run ... --seed N --variants X`
 * into one run root, on this machine (`--jobs N` at once) or on Slurm (one job array per level,
 * afterok between them), then writes the seeds report (as `deno task seeds`) into the sweep's
 * directory `<out>/.sweeps/<id>-v<version>-<profile>-<key>/seeds/`. Re-running the same command
 * runs only what is missing or failed (interrupted runs resume from their last epoch).
 * @module
 */
import { join, resolve } from "node:path";
import { intFlag, parseFlags, parseSeeds, runMain, taskCommand, UsageError } from "../util/cli.ts";
import { exists, writeJsonAtomic } from "../util/fs.ts";
import { formatDuration } from "../util/progress.ts";
import { loadExperimentModule, resolveExperiment } from "../experiment/define.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";
import { writeSeedsReport } from "../analysis/seeds_report.ts";
import { planSweep, sweepDirName, type SweepSpec } from "../sweep/plan.ts";
import { runLocal, type SweepOutcome } from "../sweep/local.ts";
import { runSlurm, splitArgs } from "../sweep/slurm.ts";

const USAGE =
  'usage: deno task sweep <experiment.ts> [--seeds 1-5] [--variants a,b] [--profile quick|full] [--out DIR] [--set key=value]... [--executor local|slurm] [--jobs N] [--slurm-args "..."] [--plan]';
const PROFILES = ["default", "quick", "full"] as const;

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    seeds: {
      type: "string",
      arg: "1-5",
      help: "the seeds to run (default: the experiment's seed)",
    },
    variants: {
      type: "string",
      arg: "A,B",
      help: "only these variants (and the float network they start from)",
    },
    profile: { type: "string", arg: "P", help: "default, quick or full (default: default)" },
    out: { type: "string", arg: "DIR", help: "runs root (default: reports/runs)" },
    set: {
      type: "string",
      arg: "KEY=VALUE",
      multiple: true,
      help: "passed to every job's deno task run",
    },
    executor: { type: "string", arg: "NAME", help: "local or slurm (default: local)" },
    jobs: { type: "string", arg: "N", help: "local: jobs at once (default: 1)" },
    "slurm-args": {
      type: "string",
      arg: '"ARGS"',
      raw: true,
      help: "slurm: extra sbatch arguments",
    },
    plan: { type: "boolean", help: "print the jobs and their state; run nothing" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one experiment module\n${USAGE}`);
  const path = positionals[0];
  if (!(await exists(path))) throw new UsageError(`${path}: experiment file not found`);
  const profile = (f.profile ?? "default") as SweepSpec["profile"];
  if (!PROFILES.includes(profile)) {
    throw new UsageError(`--profile: expected one of ${PROFILES.join(", ")}, got ${f.profile}`);
  }
  const executor = (f.executor ?? "local") as string;
  if (executor !== "local" && executor !== "slurm") {
    throw new UsageError(`--executor: expected local or slurm, got ${JSON.stringify(executor)}`);
  }
  if (f["slurm-args"] !== undefined && executor !== "slurm") {
    throw new UsageError("--slurm-args goes with --executor slurm");
  }
  const jobs = f.jobs === undefined ? undefined : intFlag("--jobs", f.jobs, 1, 256);
  const variants = f.variants === undefined
    ? undefined
    : String(f.variants).split(",").map((s) => s.trim()).filter(Boolean);
  if (variants && !variants.length) {
    throw new UsageError(
      `--variants: expected variant names a,b, got ${JSON.stringify(f.variants)}`,
    );
  }
  const out = resolve((f.out as string | undefined) ?? DEFAULT_RUNS_ROOT);
  const st = await Deno.stat(out).catch(() => null);
  if (st && !st.isDirectory) throw new UsageError(`--out: ${out} is a file; expected a directory`);
  const def = await loadExperimentModule(path);
  const seeds = f.seeds === undefined
    ? [resolveExperiment(def, { where: path, profile }).seed]
    : parseSeeds("--seeds", f.seeds);
  const spec: SweepSpec = {
    experiment: path,
    seeds,
    variants,
    profile,
    out,
    set: (f.set as string[] | undefined) ?? [],
  };
  const plan = planSweep(def, spec);
  const dir = join(out, ".sweeps", sweepDirName(plan));
  const log = (l: string) => console.log(l);
  log(
    `sweep ${plan.id} v${plan.version} (${profile}): seeds ${
      seeds.join(",")
    }, ${plan.jobs.length} jobs, ${executor} executor; ${dir}`,
  );
  if (f.plan) {
    for (const j of plan.jobs) {
      log(`  ${j.name}${j.after ? ` (after ${j.after})` : ""}: ${taskCommand("run", j.args)}`);
    }
    return;
  }
  await writeJsonAtomic(join(dir, "plan.json"), plan);
  if (executor === "local" && plan.threads > 1 && (jobs ?? 1) > 1) {
    log(
      `note: each job trains with ${plan.threads} threads (train.threads); --jobs ${jobs} runs up to ${
        plan.threads * jobs!
      } at once`,
    );
  }
  const ctl = new AbortController();
  const onSignal = () => ctl.abort();
  for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, onSignal);
  const t0 = performance.now();
  let outcome: SweepOutcome;
  try {
    outcome = executor === "local"
      ? await runLocal(plan, { dir, jobs: jobs ?? 1, log, signal: ctl.signal })
      : await runSlurm(plan, {
        dir,
        log,
        jobs,
        slurmArgs: splitArgs((f["slurm-args"] as string | undefined) ?? ""),
        signal: ctl.signal,
      });
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(s, onSignal);
  }
  const took = formatDuration((performance.now() - t0) / 1000);
  if (outcome.interrupted) {
    console.error(
      `qgt: sweep interrupted after ${took}; run the same command again to continue (${outcome.ran.length} jobs finished now)`,
    );
    Deno.exit(130);
  }
  if (outcome.failed.length || outcome.blocked.length) {
    for (const fj of outcome.failed) {
      console.error(`\n${fj.name} failed (${fj.reason}); last lines of its log:`);
      for (const l of fj.tail) console.error(`  | ${l}`);
    }
    if (outcome.blocked.length) {
      console.error(`\nnot run, their float job failed: ${outcome.blocked.join(", ")}`);
    }
    throw new Error(
      `sweep: ${outcome.failed.length} job(s) failed${
        outcome.blocked.length ? `, ${outcome.blocked.length} not run` : ""
      }; logs in ${join(dir, "logs")}; run the same command again to retry them`,
    );
  }
  log(
    `sweep: all ${plan.jobs.length} jobs done (${outcome.ran.length} now, ${outcome.skipped.length} before) in ${took}\n`,
  );
  const hashes = new Set(plan.jobs.flatMap((j) => j.run.map((v) => v.hash)));
  const names = [...new Set(plan.jobs.map((j) => j.variant))];
  await writeSeedsReport({
    roots: [out],
    id: plan.id,
    version: plan.version,
    profile,
    seeds,
    order: names,
    variants: names,
    accept: (rec) => Object.values(rec.variants).every((v) => hashes.has(v.hash)),
    reportDir: join(dir, "seeds"),
    log,
  });
});

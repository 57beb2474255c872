// `deno task sweep`: the plan, the local executor (a failing float job, Ctrl-C, resuming,
// re-running) and the Slurm executor on a one-node cluster started here, each checked against
// the same seeds run by plain sequential `deno task run` calls and `deno task seeds`: the
// aggregated tables must be byte-identical.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { assert } from "./assert.ts";
import { cli } from "./helpers.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { parseSeeds } from "../lib/util/cli.ts";
import { planSweep } from "../lib/sweep/plan.ts";
import smoke from "../experiments/smoke.ts";

// a tiny smoke sweep: 2 seeds x (float, qat-4, qgt-4), one epoch on 500 images
const SEEDS = "1,2";
const VARIANTS = "float,qat-4,qgt-4";
const SET = [
  "--set",
  "train.epochs=1",
  "--set",
  "dataset.options.trainCount=500",
  "--set",
  "dataset.options.valCount=200",
  "--set",
  "export.tfliteCount=50",
];
const SWEEP = join(REPO_ROOT, "lib/cli/sweep.ts");
const sweepArgs = (out: string, ...more: string[]) => [
  SWEEP,
  "experiments/smoke.ts",
  "--seeds",
  SEEDS,
  "--variants",
  "qat-4,qgt-4", // the float job is planned without being named
  "--profile",
  "quick",
  "--out",
  out,
  ...SET,
  ...more,
];

/** The report files a comparison covers: samples.csv without its run ids and commits. */
async function tables(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of ["seeds.csv", "pairs.csv", "seeds.svg"]) {
    out[f] = await Deno.readTextFile(join(dir, f));
  }
  out["samples.csv"] = (await Deno.readTextFile(join(dir, "samples.csv"))).split("\n")
    .map((l) => l.split(",").slice(0, 6).join(",")).join("\n");
  return out;
}

const sweepReport = (out: string) => {
  const sweeps = join(out, ".sweeps");
  const [name] = [...Deno.readDirSync(sweeps)].map((e) => e.name);
  return join(sweeps, name, "seeds");
};

let reference: Promise<Record<string, string>> | null = null;
/** The same seeds run one after another by plain `deno task run`, aggregated by `deno task seeds`. */
function sequential(root: string): Promise<Record<string, string>> {
  reference ??= (async () => {
    const out = join(root, "sequential");
    for (const seed of SEEDS.split(",")) {
      const r = await cli([
        join(REPO_ROOT, "lib/cli/run.ts"),
        "experiments/smoke.ts",
        "--quick",
        "--seed",
        seed,
        "--variants",
        VARIANTS,
        "--out",
        out,
        "--quiet",
        ...SET,
      ]);
      assert(r.code === 0, r.stderr);
    }
    const report = join(out, "report");
    const s = await cli([
      join(REPO_ROOT, "lib/cli/seeds.ts"),
      "smoke",
      "--out",
      out,
      "--profile",
      "quick",
      "--seeds",
      SEEDS,
      "--variants",
      VARIANTS,
      "--report-dir",
      report,
    ]);
    assert(s.code === 0, s.stderr);
    return tables(report);
  })();
  return reference;
}

const root = await tempDir("qgt-sweep-test-");

Deno.test("sweep plan: float job first per seed, one job per variant, resume arguments; seed lists", () => {
  const p = planSweep(smoke, {
    experiment: "experiments/smoke.ts",
    seeds: [3, 5],
    variants: ["ptq-4", "qgt-4"],
    profile: "default",
    out: "/r",
    set: ["train.epochs=2"],
  });
  assert.deepStrictEqual(p.jobs.map((j) => [j.name, j.level, j.after ?? null]), [
    ["seed3-float", 0, null],
    ["seed5-float", 0, null],
    ["seed3-ptq-4", 1, "seed3-float"],
    ["seed3-qgt-4", 1, "seed3-float"],
    ["seed5-ptq-4", 1, "seed5-float"],
    ["seed5-qgt-4", 1, "seed5-float"],
  ]);
  assert.deepStrictEqual(p.jobs[3].args, [
    "experiments/smoke.ts",
    "--seed",
    "3",
    "--variants",
    "qgt-4",
    "--out",
    "/r",
    "--set",
    "train.epochs=2",
  ]);
  // the float network a quantized job starts from is the float job's, by its settings hash
  assert.strictEqual(p.jobs[3].run[0].hash, p.jobs[0].run[0].hash);
  assert.notStrictEqual(p.jobs[0].run[0].hash, p.jobs[1].run[0].hash); // another seed
  assert.deepStrictEqual(parseSeeds("--seeds", "1-3,7"), [1, 2, 3, 7]);
  for (const bad of ["3-1", "1,1", "x", "1-", ""]) {
    assert.throws(() => parseSeeds("--seeds", bad), /--seeds: expected seeds like 1-5/);
  }
});

Deno.test("deno task sweep: bad flags are one line naming the flag, exit 2, nothing written", async () => {
  const out = join(root, "bad");
  for (
    const [args, msg] of [
      [["--executor", "cluster"], /--executor: expected local or slurm/],
      [["--seeds", "5-2"], /--seeds: expected seeds/],
      [["--slurm-args", "-p x"], /--slurm-args goes with --executor slurm/],
      [["--jobs", "0"], /--jobs: expected an integer/],
      [["--profile", "fast"], /--profile: expected one of default, quick, full/],
    ] as [string[], RegExp][]
  ) {
    const r = await cli(sweepArgs(out, ...args));
    assert.strictEqual(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), msg);
    assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const typo = await cli([SWEEP, "experiments/smoke.ts", "--variants", "qat-5", "--out", out]);
  assert.strictEqual(typo.code, 2); // an unknown variant is a usage error
  assert.match(typo.stderr, /qat-5/);
  assert(!(await Deno.stat(out).catch(() => null)), "a failed sweep left files behind");
});

Deno.test("local executor: a failed float job blocks its seed, Ctrl-C stops, re-runs resume and finish with the sequential tables", async () => {
  const out = join(root, "local");
  // 1. the float jobs fail (their baseline cannot be written): the quantized jobs are not run
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(join(out, ".checkpoints"), "not a directory");
  const failed = await cli(sweepArgs(out, "--jobs", "2"));
  assert.strictEqual(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /seed1-float failed \(exit code 1\); last lines of its log:/);
  assert.match(failed.stderr, /not run, their float job failed: .*seed1-qat-4/);
  assert.match(failed.stderr, /sweep: 2 job\(s\) failed, 4 not run/);
  await Deno.remove(join(out, ".checkpoints"));

  // 2. Ctrl-C while the float jobs run: exit 130, their runs left to resume
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...sweepArgs(out, "--jobs", "2")],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/started seed2-float/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  await new Promise((r) => setTimeout(r, 1500));
  child.kill("SIGINT");
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const st = await child.status;
  assert.strictEqual(st.code, 130, seen + await stderr);

  // 3. the same command again: resumes the float runs, runs the rest, aggregates
  const done = await cli(sweepArgs(out, "--jobs", "2"));
  assert.strictEqual(done.code, 0, done.stderr);
  assert.match(done.stdout, /sweep: all 6 jobs done \(\d now, \d before\)/);
  // failed and interrupted runs were resumed, not started again: one complete run per job
  const runs = [...Deno.readDirSync(join(out, "smoke"))];
  assert.strictEqual(runs.length, 6, runs.map((e) => e.name).join());
  for (const e of runs) {
    const rec = JSON.parse(await Deno.readTextFile(join(out, "smoke", e.name, "run.json")));
    assert.strictEqual(rec.status, "complete", e.name);
  }
  assert.deepStrictEqual(await tables(sweepReport(out)), await sequential(root));

  // 4. and again: nothing left to run, the same tables
  const again = await cli(sweepArgs(out, "--jobs", "2"));
  assert.strictEqual(again.code, 0, again.stderr);
  assert.match(again.stdout, /all 6 jobs done \(0 now, 6 before\)/);
  assert.deepStrictEqual(await tables(sweepReport(out)), await sequential(root));
});

const CLUSTER = join(REPO_ROOT, "tests/slurm/cluster.sh");
const slurmMissing = await (async () => {
  for (const p of ["slurmctld", "slurmd", "sbatch", "squeue", "munged"]) {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${p}`] }).output();
    if (!r.success) return `${p} is not installed (Debian: slurmctld slurmd slurm-client munge)`;
  }
  if (Deno.uid() !== 0) return "a test cluster needs root";
  return null;
})();
if (slurmMissing) console.log(`SKIPPED the Slurm sweep test: ${slurmMissing}`);

Deno.test({
  name:
    "slurm executor on a one-node cluster: afterok levels, a failed level cancels the next, re-run, the sequential tables",
  ignore: slurmMissing !== null,
  fn: async () => {
    const dir = join(root, "slurm-cluster");
    const env = { SLURM_CONF: join(dir, "slurm.conf") };
    const up = await new Deno.Command("bash", { args: [CLUSTER, "start", dir] }).output();
    assert(up.success, new TextDecoder().decode(up.stderr));
    try {
      const out = join(root, "slurm");
      const run = async (...more: string[]) => {
        const r = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", ...sweepArgs(out, "--executor", "slurm", ...more)],
          stdout: "piped",
          stderr: "piped",
          env: { ...env, NO_COLOR: "1" },
        }).output();
        const dec = new TextDecoder();
        return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
      };
      // the float array fails: the quantized array behind it is cancelled, not left pending
      await Deno.mkdir(out, { recursive: true });
      await Deno.writeTextFile(join(out, ".checkpoints"), "not a directory");
      const failed = await run("--slurm-args", "--time=30");
      assert.strictEqual(failed.code, 1, failed.stderr);
      assert.match(
        failed.stderr,
        /seed1-float failed \(slurm \d+_0 FAILED\); last lines of its log:/,
      );
      assert.match(failed.stderr, /not run, their float job failed: seed1-qat-4, seed1-qgt-4/);
      await Deno.remove(join(out, ".checkpoints"));
      const ok = await run();
      assert.strictEqual(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /submitted level 0: array \d+ of 2 job/);
      assert.match(ok.stdout, /submitted level 1: array \d+ of 4 job/);
      assert.deepStrictEqual(await tables(sweepReport(out)), await sequential(root));
      const sweepDir = join(sweepReport(out), "..");
      const script = await Deno.readTextFile(join(sweepDir, "slurm", "submit3-level1.sbatch"));
      assert.match(script, /#SBATCH --array=0-3\n/);
    } finally {
      await new Deno.Command("bash", { args: [CLUSTER, "stop", dir] }).output();
    }
  },
});

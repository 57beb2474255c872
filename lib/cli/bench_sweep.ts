/**
 * `deno task bench --sweep`: the local sweep executor's wall time for the
 * two-seed smoke sweep (`--profile quick`, every variant: 8 jobs) with
 * `--jobs 1` and `--jobs 2`, in one bench run, the ratio between them, and
 * whether the two sweeps' seeds tables are byte-identical. The machine's
 * other load during each sweep (from /proc/stat: the CPU time not spent by
 * the sweep's own processes cannot be told apart, so the busy fraction of
 * all cores is reported) says whether it was quiet.
 * @module
 */
import { join } from "node:path";
import { REPO_ROOT } from "../util/path.ts";

/** Total and idle jiffies of all CPUs. */
function cpuTimes(): { total: number; idle: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return { total: v.reduce((a, b) => a + b, 0), idle: v[3] + (v[4] ?? 0) };
}

async function sweep(out: string, jobs: number): Promise<{ seconds: number; busy: number }> {
  const c0 = cpuTimes(), t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "-q",
      "sweep",
      "experiments/smoke.ts",
      "--seeds",
      "1-2",
      "--profile",
      "quick",
      "--out",
      out,
      "--jobs",
      String(jobs),
    ],
    cwd: REPO_ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(
      `bench --sweep: the sweep failed: ${new TextDecoder().decode(r.stderr).trim()}`,
    );
  }
  const c1 = cpuTimes();
  return {
    seconds: (performance.now() - t0) / 1000,
    busy: 1 - (c1.idle - c0.idle) / (c1.total - c0.total),
  };
}

async function seedsTables(out: string): Promise<string> {
  const sweeps = join(out, ".sweeps");
  const [dir] = [...Deno.readDirSync(sweeps)].map((e) => join(sweeps, e.name, "seeds"));
  return (await Promise.all(["seeds.csv", "pairs.csv"].map((f) => Deno.readTextFile(join(dir, f)))))
    .join("\n");
}

/**
 * Runs the two sweeps and prints (or returns as JSON) their wall times.
 *
 * @example
 * ```ts ignore
 * const r = await benchSweep(console.log);
 * ```
 */
export async function benchSweep(log: (l: string) => void): Promise<Record<string, unknown>> {
  const one = await Deno.makeTempDir({ prefix: "qgt-bench-sweep-" });
  const two = await Deno.makeTempDir({ prefix: "qgt-bench-sweep-" });
  try {
    log("sweep bench: experiments/smoke.ts, seeds 1-2, --profile quick, 8 jobs, local executor");
    const s1 = await sweep(one, 1);
    log(
      `  --jobs 1: ${s1.seconds.toFixed(1)} s wall (all cores ${
        (s1.busy * 100).toFixed(0)
      } % busy)`,
    );
    const s2 = await sweep(two, 2);
    log(
      `  --jobs 2: ${s2.seconds.toFixed(1)} s wall (all cores ${
        (s2.busy * 100).toFixed(0)
      } % busy)`,
    );
    const same = (await seedsTables(one)) === (await seedsTables(two));
    const ratio = s1.seconds / s2.seconds;
    log(
      `  --jobs 2 is ${
        ratio.toFixed(2)
      }x faster than --jobs 1 on ${navigator.hardwareConcurrency} cores; seeds.csv and pairs.csv ${
        same ? "byte-identical" : "DIFFER"
      }`,
    );
    return { jobs1: s1, jobs2: s2, speedup: ratio, identicalTables: same };
  } finally {
    await Deno.remove(one, { recursive: true });
    await Deno.remove(two, { recursive: true });
  }
}

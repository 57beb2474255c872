/**
 * A sweep's plan: seeds x variants as jobs. Per seed, the float job first
 * (level 0), then one job per quantized variant that starts from that float
 * network (level 1). Each job is an ordinary `deno task run <experiment>
 * --seed N --variants X` into the sweep's run root, so it reuses the float
 * network its float job trained (by the baseline's settings key) and can be
 * re-run alone. The float job is planned whether or not `--variants` names
 * it, as `deno task run --variants qat-2` trains it too. Pure: the plan is
 * data.
 * @module
 */
import { hashOf, resolveExperiment } from "../experiment/define.ts";
import { planRun } from "../experiment/plan.ts";

/** What a sweep covers. */
export interface SweepSpec {
  /** The experiment module, as given on the command line. */
  experiment: string;
  seeds: number[];
  /** Variant names (default: all the experiment's). */
  variants?: string[];
  profile: "default" | "quick" | "full";
  /** The run root every job writes into. */
  out: string;
  /** `--set key=value` overrides passed to every job. */
  set: string[];
}

/** One job: a `deno task run` of one variant (and, behind it, the float network). */
export interface SweepJob {
  /** `seed<N>-<variant>`: the log's name and the job's name in progress lines. */
  name: string;
  seed: number;
  variant: string;
  /** 0: trains from scratch (float baselines); 1: starts from the seed's float network. */
  level: 0 | 1;
  /** The level-0 job this one waits for. */
  after?: string;
  /** Arguments after `deno task run`. */
  args: string[];
  /** The variants the job's run holds (float first) and their settings hashes. */
  run: { name: string; hash: string }[];
}

/** A planned sweep. */
export interface SweepPlan {
  spec: SweepSpec;
  id: string;
  version: number;
  /** How many threads each job trains with (the experiment's `train.threads`). */
  threads: number;
  /** Stable across re-runs of the same command: names the sweep directory. */
  key: string;
  jobs: SweepJob[];
}

const profileFlag = (p: SweepSpec["profile"]) =>
  p === "quick" ? ["--quick"] : p === "full" ? ["--full"] : [];

/**
 * The jobs of a sweep over `spec.seeds` x the experiment's variants (or
 * `spec.variants`), level 0 before level 1, seeds in order. A bad variant,
 * `--set` or profile throws the experiment's own one-line error.
 *
 * @example
 * ```ts
 * import smoke from "../../experiments/smoke.ts";
 * import { planSweep } from "./plan.ts";
 * const p = planSweep(smoke, {
 *   experiment: "experiments/smoke.ts", seeds: [1, 2], variants: ["qat-4"],
 *   profile: "quick", out: "runs", set: [],
 * });
 * const names = p.jobs.map((j) => j.name).join();
 * if (names !== "seed1-float,seed2-float,seed1-qat-4,seed2-qat-4") throw new Error(names);
 * if (p.jobs[2].after !== "seed1-float" || !p.jobs[2].args.includes("--quick")) throw new Error();
 * ```
 */
export function planSweep(def: unknown, spec: SweepSpec): SweepPlan {
  const where = spec.experiment;
  const base = resolveExperiment(def, {
    where,
    profile: spec.profile,
    set: spec.set,
    variants: spec.variants,
  });
  const jobs: SweepJob[] = [];
  const later: SweepJob[] = [];
  for (const seed of spec.seeds) {
    const resolve = (variants?: string[]) =>
      resolveExperiment(def, { where, profile: spec.profile, set: spec.set, seed, variants });
    const all = resolve().variants;
    const asked = spec.variants ?? all.map((v) => v.name);
    // the float network the quantized variants start from is a job of its own, asked or not
    const wanted = planRun(resolve(asked), all, where).order.map((v) => v.name);
    for (const name of wanted) {
      const exp = resolve([name]);
      const { order } = planRun(exp, all, where);
      const level = order.length === 1 ? 0 : 1;
      const job: SweepJob = {
        name: `seed${seed}-${name}`,
        seed,
        variant: name,
        level,
        args: [
          spec.experiment,
          "--seed",
          String(seed),
          ...profileFlag(spec.profile),
          "--variants",
          name,
          "--out",
          spec.out,
          ...spec.set.flatMap((s) => ["--set", s]),
        ],
        run: order.map((v) => ({ name: v.name, hash: v.hash })),
      };
      if (level === 1) job.after = `seed${seed}-${order[0].name}`;
      (level === 0 ? jobs : later).push(job);
    }
  }
  jobs.push(...later);
  const threads = base.variants[0]?.train.threads ?? 1;
  const key = hashOf({
    id: base.id,
    version: base.version,
    profile: spec.profile,
    seeds: spec.seeds,
    variants: spec.variants ?? null,
    set: spec.set,
  }).slice(0, 10);
  return { spec, id: base.id, version: base.version, threads, key, jobs };
}

/**
 * The sweep directory's name under `<out>/.sweeps/`: the experiment, its
 * version, the profile and the plan's key.
 *
 * @example
 * ```ts
 * import { sweepDirName } from "./plan.ts";
 * if (sweepDirName({ id: "smoke", version: 1, key: "abc", spec: { profile: "quick" } }) !== "smoke-v1-quick-abc") throw new Error();
 * ```
 */
export function sweepDirName(
  p: Pick<SweepPlan, "id" | "version" | "key"> & { spec: Pick<SweepSpec, "profile"> },
): string {
  return `${p.id}-v${p.version}-${p.spec.profile}-${p.key}`;
}

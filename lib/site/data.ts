/**
 * What the results site shows, read from run roots: one record per run (its
 * run.json, summary table and what the other tables and derived files add),
 * the commits in history order, and a colour per variant for the whole site.
 * Reads through the run directory format only (lib/run/run_dir.ts).
 * @module
 */
import { basename, join, relative, resolve } from "node:path";
import {
  listRunDirs,
  readSummary,
  RUN_FILES,
  type RunRecord,
  runStatus,
  variantFiles,
  type VariantSummaryRow,
} from "../run/run_dir.ts";
import { derivedPath } from "../run/model_images.ts";
import { backendOf } from "../analysis/compare.ts";
import type { McuReport } from "../engine/mcu.ts";
import { exists } from "../util/fs.ts";

/** A variant's Cortex-M4 figures (`deno task mcu`'s mcu.json), when measured. */
export interface McuFigures {
  flash: number;
  ram: number;
  /** Instructions per image (the first image's; the plugin count is the same for every image). */
  instructions: number | null;
  /** The C kernels the firmware was built with (`dsp` or `reference`; absent before they existed). */
  kernels?: string;
}

/** One run as the site shows it. */
export interface SiteRun {
  /** Unique across the site: `<root label>/<folder>/<run id>`, the run's folder under its root. */
  key: string;
  /** The run root's label (its folder name, made unique). */
  root: string;
  dir: string;
  experiment: string;
  version: number;
  profile: string;
  seed: number;
  runId: string;
  commit: string;
  dirty: boolean;
  /** Start time (ISO). */
  started: string;
  status: string;
  /** Compute seconds summed over variants and resumes (null when none is timed). */
  seconds: number | null;
  /** Training backend (`wasm`, `native` with oneDNN's version and ISA, `cpu`). */
  backend: string;
  summary: VariantSummaryRow[];
  /** The run's run.json. */
  record: RunRecord;
  /** Cortex-M4 figures by variant, where measured. */
  mcu: Record<string, McuFigures>;
  /** The run page, relative to the site's root. */
  page: string;
}

/** Everything the pages are made from. */
export interface SiteData {
  runs: SiteRun[];
  /** Commits of the runs, oldest first: in git's history order where git knows them, else by first run. */
  commits: string[];
  /** A colour per variant name, the same on every page. */
  colors: Record<string, string>;
}

async function readMcu(path: string): Promise<McuFigures | null> {
  if (!(await exists(path))) return null;
  try {
    const j = JSON.parse(await Deno.readTextFile(path)) as Partial<McuReport>;
    if (typeof j.flash !== "number" || typeof j.ram !== "number") return null;
    const per = Array.isArray(j.instructionsPerImage) ? j.instructionsPerImage : [];
    return {
      flash: j.flash,
      ram: j.ram,
      instructions: typeof per[0] === "number" ? per[0] : null,
      ...(typeof j.kernels === "string" ? { kernels: j.kernels } : {}),
    };
  } catch {
    return null;
  }
}

/** The Cortex-M4 figures of each variant: `deno task mcu`'s output beside the model (or derived/), else `mcu-<variant>.json` in the run. */
async function mcuFigures(dir: string, variants: string[]): Promise<Record<string, McuFigures>> {
  const out: Record<string, McuFigures> = {};
  for (const v of variants) {
    const model = variantFiles(dir, v).model;
    const m = (await readMcu(join(derivedPath(model, "mcu"), "mcu.json"))) ??
      (await readMcu(join(dir, `mcu-${v}.json`)));
    if (m) out[v] = m;
  }
  return out;
}

/**
 * Labels for run roots: each root's folder name, with a number added where two share one.
 *
 * @example
 * ```ts
 * import { rootLabels } from "./data.ts";
 * if (rootLabels(["a/runs", "b/runs", "reports/results"]).join() !== "runs,runs-2,results") throw new Error();
 * ```
 */
export function rootLabels(roots: string[]): string[] {
  const seen = new Map<string, number>();
  return roots.map((r) => {
    const b = basename(resolve(r)) || "root";
    const n = (seen.get(b) ?? 0) + 1;
    seen.set(b, n);
    return n === 1 ? b : `${b}-${n}`;
  });
}

/**
 * The commits of `runs` oldest first: commits git knows in its history order,
 * the others (another branch, another clone) placed by their first run's start
 * time among them.
 *
 * @example
 * ```ts
 * import { orderCommits } from "./data.ts";
 * const runs = [{ commit: "c3", started: "3" }, { commit: "x", started: "2" }, { commit: "c1", started: "1" }];
 * // git log lists newest first
 * if (orderCommits(runs, ["c3", "c2", "c1"]).join() !== "c1,x,c3") throw new Error();
 * ```
 */
export function orderCommits(
  runs: { commit: string; started: string }[],
  gitNewestFirst: string[],
): string[] {
  const first = new Map<string, string>();
  for (const r of runs) {
    const f = first.get(r.commit);
    if (f === undefined || r.started < f) first.set(r.commit, r.started);
  }
  const rank = new Map(gitNewestFirst.map((c, i) => [c, gitNewestFirst.length - i]));
  const known = [...first.keys()].filter((c) => rank.has(c)).sort((a, b) =>
    rank.get(a)! - rank.get(b)!
  );
  const out = [...known];
  // an unknown commit goes after the last known commit whose first run started before its own
  const unknown = [...first.keys()].filter((c) => !rank.has(c))
    .sort((a, b) => (first.get(a)! < first.get(b)! ? -1 : 1));
  for (const c of unknown) {
    let at = 0;
    for (let i = 0; i < out.length; i++) if (first.get(out[i])! <= first.get(c)!) at = i + 1;
    out.splice(at, 0, c);
  }
  return out;
}

/** Vega's "tableau20": ten hues, each dark then light. */
const PALETTE = [
  "#4c78a8",
  "#f58518",
  "#e45756",
  "#72b7b2",
  "#54a24b",
  "#eeca3b",
  "#b279a2",
  "#ff9da6",
  "#9d755d",
  "#bab0ac",
  "#9ecae9",
  "#ffbf79",
  "#ff9d98",
  "#88d27a",
  "#83bcb6",
  "#439894",
  "#d6a5c9",
  "#fcbfd2",
  "#d8b5a5",
  "#79706e",
];

/**
 * Colours for variant names, stable across the site: names sorted (plain
 * method names such as `float`, `qat-2` first), the first 20 from the
 * tableau20 palette, then hues spread around the wheel.
 *
 * @example
 * ```ts
 * import { variantColors } from "./data.ts";
 * const c = variantColors(["qgt-2", "float", "qgt-2-dec30"]);
 * if (Object.keys(c).join() !== "float,qgt-2,qgt-2-dec30" || c.float === c["qgt-2"]) throw new Error();
 * ```
 */
export function variantColors(names: Iterable<string>): Record<string, string> {
  const plain = (v: string) => /^(float|ptq-\d+|qat-\d+|qgt-\d+|qgt-mixed)$/.test(v) ? 0 : 1;
  const sorted = [...new Set(names)].sort((a, b) =>
    plain(a) - plain(b) || (a < b ? -1 : a > b ? 1 : 0)
  );
  const out: Record<string, string> = {};
  sorted.forEach((v, i) => {
    const k = i - PALETTE.length;
    out[v] = k < 0
      ? PALETTE[i]
      : `hsl(${((k % 12) * 5 % 12) * 30 + 15}, 60%, ${[38, 55, 70][Math.floor(k / 12) % 3]}%)`;
  });
  return out;
}

/**
 * Reads every run under `roots` (complete, running, failed; unreadable ones
 * go to `onDamaged`) into the site's records, newest first.
 *
 * @example
 * ```ts ignore
 * const data = await collectSite(["reports/runs", "reports/results"], await commitOrder());
 * ```
 */
export async function collectSite(
  roots: string[],
  gitNewestFirst: string[],
  onDamaged?: (dir: string, reason: string) => void,
): Promise<SiteData> {
  const labels = rootLabels(roots);
  const runs: SiteRun[] = [];
  for (const [i, root] of roots.entries()) {
    for (const r of await listRunDirs(root, undefined, onDamaged)) {
      const rec = r.record;
      let summary: VariantSummaryRow[] = [];
      if (await exists(join(r.dir, RUN_FILES.summary))) {
        try {
          summary = await readSummary(r.dir);
        } catch (e) {
          onDamaged?.(r.dir, (e as Error).message);
          continue;
        }
      }
      const timed = Object.values(rec.variants ?? {}).flatMap((v) => v.seconds ?? []);
      // the folder as on disk (a committed copy may sit under another name than the experiment)
      const key = `${labels[i]}/${relative(root, r.dir)}`;
      runs.push({
        key,
        root: labels[i],
        dir: r.dir,
        experiment: rec.experiment.id,
        version: rec.experiment.version,
        profile: rec.experiment.profile,
        seed: rec.seed,
        runId: rec.runId,
        commit: rec.git.commit,
        dirty: rec.git.dirty,
        started: rec.started,
        status: runStatus(rec),
        seconds: timed.length ? timed.reduce((t, s) => t + s, 0) : null,
        backend: backendOf(rec.versions) || "?",
        summary,
        record: rec,
        mcu: await mcuFigures(r.dir, summary.map((s) => s.variant)),
        page: `runs/${key}.html`,
      });
    }
  }
  runs.sort((a, b) =>
    a.started < b.started ? 1 : a.started > b.started ? -1 : a.key < b.key ? -1 : 1
  );
  return {
    runs,
    commits: orderCommits(runs, gitNewestFirst),
    colors: variantColors(runs.flatMap((r) => r.summary.map((s) => s.variant))),
  };
}

/**
 * `deno task runs [--experiment ID] [--out DIR]`: lists recorded runs with
 * their commit, status, compute time and headline figures, then the compute
 * time of all of them together.
 * @module
 */
import { join } from "node:path";
import { parseFlags, runMain } from "../util/cli.ts";
import {
  DEFAULT_RUNS_ROOT,
  listRunDirs,
  readSummary,
  RUN_FILES,
  type RunRecord,
  runStatus,
} from "../run/run_dir.ts";
import { formatRows } from "../util/tables.ts";
import { summaryHeadline } from "../report/run_outputs.ts";
import { exists } from "../util/fs.ts";
import { formatDuration } from "../util/progress.ts";

const USAGE = "usage: deno task runs [--experiment ID] [--out DIR]";

/** A running run's place: variants done, the one running, its step, and the run's ETA. */
function progressText(rec: RunRecord): string {
  const p = rec.progress!;
  const done = Object.values(rec.variants).filter((v) => v.status === "complete").length;
  // the estimate as written, less the time since it was written
  const eta = p.etaSeconds === null
    ? "?"
    : formatDuration(p.etaSeconds - (Date.now() - Date.parse(p.at)) / 1000);
  return `${done}/${p.of} variants done; now variant ${p.index}/${p.of} ${p.variant}, step ${p.step}/${p.steps}, ETA ${eta}`;
}

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    experiment: { type: "string", arg: "ID", help: "only runs of this experiment" },
    out: { type: "string", arg: "DIR", help: "runs root (default: reports/runs)" },
  }, USAGE);
  const outRoot = (f.out as string | undefined) ?? DEFAULT_RUNS_ROOT;
  const damaged: { dir: string; reason: string }[] = [];
  const runs = await listRunDirs(
    outRoot,
    f.experiment as string | undefined,
    (dir, reason) => damaged.push({ dir, reason }),
  );
  const rows = [];
  let total = 0;
  for (const r of runs) {
    const rec = r.record;
    const status = runStatus(rec);
    let headline = "";
    if (status === "running" && rec.progress) headline = progressText(rec);
    else if (await exists(join(r.dir, RUN_FILES.summary))) {
      headline = summaryHeadline(await readSummary(r.dir));
    } else {
      const done = Object.values(rec.variants).filter((v) => v.status === "complete").length;
      headline = `${done}/${Object.keys(rec.variants).length} variants done`;
    }
    const timed = Object.values(rec.variants).flatMap((v) => v.seconds ?? []);
    const seconds = timed.reduce((t, s) => t + s, 0);
    total += seconds;
    rows.push({
      experiment: rec.experiment.id,
      run: rec.runId,
      // the start commit, and the last resume's when the code had moved ("+" marks a dirty tree)
      commit: [rec.git, ...(rec.resumed ?? []).slice(-1)]
        .map((g) => g.commit.slice(0, 7) + (g.dirty ? "+" : ""))
        .filter((c, i, all) => i === 0 || c !== all[0])
        .join("->"),
      status,
      profile: rec.experiment.profile,
      // compute time summed over variants and resumes (a running variant up to its last checkpoint)
      compute: timed.length ? formatDuration(seconds) : "-",
      headline: headline.length > 110 ? headline.slice(0, 107) + "..." : headline,
    });
  }
  const of = f.experiment ? ` of ${f.experiment}` : "";
  console.log(rows.length ? formatRows(rows) : `no runs${of} in ${outRoot}`);
  // what the listed runs cost together (e.g. a sweep's run root): the figure results state
  if (rows.length) {
    console.log(`\ntotal compute: ${formatDuration(total)} over ${rows.length} runs`);
  }
  for (const d of damaged) console.error(`note: damaged run skipped: ${d.reason}`);
});

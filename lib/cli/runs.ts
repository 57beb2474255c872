/**
 * `deno task runs [--experiment ID] [--out DIR]`: lists recorded runs with
 * their commit, status and headline figures.
 * @module
 */
import { join } from "node:path";
import { parseFlags, runMain } from "../util/cli.ts";
import { listRunDirs } from "../experiment/runner.ts";
import { formatRows, readCsv, rowsOf } from "../report/tables.ts";
import { exists } from "../util/fs.ts";
import { denoProcessAlive } from "../util/process.ts";

const REPO = new URL("../../", import.meta.url).pathname;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    experiment: { type: "string" },
    out: { type: "string" },
  });
  const outRoot = (f.out as string | undefined) ?? join(REPO, "reports", "runs");
  const runs = await listRunDirs(outRoot, f.experiment as string | undefined);
  const rows = [];
  for (const r of runs) {
    const rec = r.record;
    const status = rec.status === "running" && !denoProcessAlive(rec.pid)
      ? "incomplete"
      : rec.status;
    let headline = "";
    if (await exists(join(r.dir, "summary.csv"))) {
      const s = rowsOf(await readCsv(join(r.dir, "summary.csv")));
      headline = s.map((x) =>
        `${x.variant} ${(Number(x.accuracy) * 100).toFixed(1)}% ${
          (Number(x.bytes) / 1000).toFixed(0)
        }KB`
      ).join(" | ");
    } else {
      const done = Object.values(rec.variants).filter((v) => v.status === "complete").length;
      headline = `${done}/${Object.keys(rec.variants).length} variants done`;
    }
    rows.push({
      experiment: rec.experiment.id,
      run: rec.runId,
      commit: rec.git.commit.slice(0, 7) + (rec.git.dirty ? "+" : ""),
      status,
      profile: rec.experiment.profile,
      headline: headline.length > 110 ? headline.slice(0, 107) + "..." : headline,
    });
  }
  const of = f.experiment ? ` of ${f.experiment}` : "";
  console.log(rows.length ? formatRows(rows) : `no runs${of} in ${outRoot}`);
});

/**
 * `deno task site [ROOT...] [--out DIR]`: writes the results site (docs/site.md) from every run
 * under the run roots (default `reports/runs` and `reports/results`) into DIR (default
 * `reports/site/`, not committed): an index of runs, a page per experiment and per run, and a
 * compare view, with interactive plots. Open `DIR/index.html` in a browser; it needs no server
 * and no network.
 * @module
 */
import { join } from "node:path";
import { parseFlags, runMain, UsageError } from "../util/cli.ts";
import { REPO_ROOT } from "../util/path.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";
import { commitOrder } from "../experiment/git.ts";
import { writeSite } from "../site/site.ts";

const USAGE = "usage: deno task site [ROOT...] [--out DIR]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: {
      type: "string",
      arg: "DIR",
      default: join(REPO_ROOT, "reports", "site"),
      help: "where the site goes (replaced as a whole)",
    },
  }, USAGE);
  const isDir = (r: string) => Deno.stat(r).then((st) => st.isDirectory, () => false);
  const roots: string[] = [];
  for (const r of positionals) {
    if (!(await isDir(r))) throw new UsageError(`site: run root ${r}: not a directory`);
    roots.push(r);
  }
  if (!positionals.length) {
    for (const r of [DEFAULT_RUNS_ROOT, join(REPO_ROOT, "reports", "results")]) {
      if (await isDir(r)) roots.push(r);
    }
  }
  const s = await writeSite(
    roots,
    f.out as string,
    await commitOrder(),
    (dir, reason) => console.error(`note: damaged run skipped: ${dir}: ${reason}`),
  );
  console.log(
    `wrote ${s.pages} pages for ${s.runs} runs of ${s.experiments} experiments to ${s.dir}; open ${s.dir}/index.html`,
  );
});

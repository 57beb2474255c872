// The results site (deno task site): built from a fixture run root, then opened in headless
// Chromium (Debian's `chromium`; the browser tests say why they skip without it).
import { join } from "node:path";
import { assert } from "./assert.ts";
import { tempDir } from "./tmp.ts";
import { cli, fabricateRun } from "./helpers.ts";
import { chromium, openPage } from "./browser.ts";
import { readRunRecord, writeRunRecord, writeRunTables } from "../lib/run/run_dir.ts";
import { readSummary } from "../lib/run/run_dir.ts";
import { writeSite } from "../lib/site/site.ts";
import { REPO_ROOT } from "../lib/util/path.ts";

const A = "a".repeat(40), B = "b".repeat(40);

/**
 * Three runs of experiment `exp`: A at commit aaaa (seed 1), then B (seed 1) and C (seed 2) at
 * commit bbbb. B against A: qat-2 +1.0 point, qgt-2 -2.5 points (a regression at threshold 1).
 */
async function fixture(): Promise<{ root: string; runs: string[] }> {
  const root = await tempDir("site-root-");
  const rows = (qat: number, qgt: number) =>
    `float,float,32,0.9,0.3,80000,80000,1,0\n` +
    `qat-2,qat,2,${qat},0.4,5000,80000,16,${((0.9 - qat) * 100).toFixed(2)}\n` +
    `qgt-2,qgt,2,${qgt},0.4,5000,80000,16,${((0.9 - qgt) * 100).toFixed(2)}\n`;
  const a = await fabricateRun(root, {
    commit: A,
    started: "2026-01-01T10:00:00Z",
    rows: rows(0.85, 0.86),
    runId: "run-a",
  });
  const b = await fabricateRun(root, {
    commit: B,
    started: "2026-01-02T10:00:00Z",
    rows: rows(0.86, 0.835),
    runId: "run-b",
  });
  const c = await fabricateRun(root, {
    commit: B,
    started: "2026-01-02T11:00:00Z",
    rows: rows(0.84, 0.85),
    runId: "run-c",
    seed: 2,
  });
  const recC = await readRunRecord(c);
  await writeRunRecord(c, { ...recC, warnings: ["warning: only 40 validation images"] });
  // B has training curves: three epochs of two variants
  const metrics = ["float", "qgt-2"].flatMap((variant, k) =>
    [1, 2, 3].map((epoch) => ({
      variant,
      phase: "train",
      epoch,
      split: "val" as const,
      metric: "accuracy",
      value: 0.7 + 0.05 * epoch - 0.02 * k,
    }))
  );
  await writeRunTables(b, {
    summary: await readSummary(b),
    metrics,
    layers: [],
    layerEpochs: [],
    sensitivity: [],
  });
  return { root, runs: [a, b, c] };
}

/** Every file under `dir` with its bytes, by relative path. */
async function files(dir: string, at = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(join(dir, at))) {
    const rel = at ? `${at}/${e.name}` : e.name;
    if (e.isDirectory) { for (const [k, v] of await files(dir, rel)) out.set(k, v); }
    else out.set(rel, await Deno.readFile(join(dir, rel)));
  }
  return out;
}

/** The rows of table `id` in a page's HTML, each as its cells' text. */
function tableRows(html: string, id: string): string[][] {
  const t = html.match(new RegExp(`<table id="${id}"[^>]*>([\\s\\S]*?)</table>`));
  assert.ok(t, `no table ${id}`);
  const body = t[1].split("<tbody>")[1] ?? "";
  return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((r) =>
    [...r[1].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => c[1].replace(/<[^>]+>/g, ""))
  );
}

Deno.test("site: pages for every run, the same bytes from the same runs", async () => {
  const { root } = await fixture();
  const out1 = join(await tempDir(), "site"), out2 = join(await tempDir(), "site");
  const s = await writeSite([root], out1, []);
  await writeSite([root], out2, []);
  assert.strictEqual(s.runs, 3);
  // index, experiments, compare, one experiment, three runs
  assert.strictEqual(s.pages, 7);
  const f1 = await files(out1), f2 = await files(out2);
  assert.deepStrictEqual([...f1.keys()].sort(), [...f2.keys()].sort());
  for (const [k, v] of f1) assert.deepStrictEqual(v, f2.get(k), `${k} differs between two builds`);
  for (const lib of ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "site.js"]) {
    assert.ok(f1.has(`assets/${lib}`), `assets/${lib} missing: the site would need the network`);
  }
  // nothing in a page loads from the network
  for (const [k, v] of f1) {
    if (!k.endsWith(".html")) continue;
    const html = new TextDecoder().decode(v);
    assert.ok(!/(src|href)="(https?:)?\/\//.test(html), `${k} loads something from the network`);
  }
  const index = new TextDecoder().decode(f1.get("index.html"));
  const rows = tableRows(index, "runs");
  assert.deepStrictEqual(rows.map((r) => r[3]).sort(), ["run-a", "run-b", "run-c"]);
  // the commit order: git does not know these commits, so first runs' start times order them
  const exp = new TextDecoder().decode(f1.get("experiments/exp.html"));
  assert.ok(exp.includes('"sort":["aaaaaaa","bbbbbbb"]'), "commits not in run order");
  // the seed table: float over seeds 1 and 2 (the newest run per seed: B and C)
  const float = tableRows(exp, "seeds-default").find((r) => r[0] === "float")!;
  assert.deepStrictEqual(float.slice(1, 4), ["2", "1,2", "90"]);
  const pair = tableRows(exp, "pairs-default")[0];
  const pageC = new TextDecoder().decode(f1.get(`runs/${root.split("/").pop()}/exp/run-c.html`));
  assert.match(pageC, /<ul class="warnings"><li>only 40 validation images<\/li><\/ul>/);
  // qgt-2 - qat-2 over seeds 1 (83.5 - 86) and 2 (85 - 84): mean (-2.5 + 1) / 2
  assert.deepStrictEqual([pair[0], pair[1], pair[3]], ["qgt-2 - qat-2", "2", "-0.75"]);
});

Deno.test("site: a run root that is not a directory is a one-line error and writes nothing", async () => {
  const out = join(await tempDir(), "site");
  const r = await cli([join(REPO_ROOT, "lib/cli/site.ts"), "/nonexistent/runs", "--out", out]);
  assert.strictEqual(r.code, 2);
  assert.strictEqual(r.stderr.trim(), "qgt: site: run root /nonexistent/runs: not a directory");
  assert.ok(!(await Deno.stat(out).then(() => true, () => false)), "an output was written");
});

const browser = await chromium();
if (!browser) {
  console.error("site browser test skipped: no chromium (apt-get install chromium; .ci/run does)");
}

Deno.test({
  name: "site in Chromium: index, run, experiment and compare pages work offline",
  ignore: browser === null,
  fn: async () => {
    const { root, runs } = await fixture();
    const tmp = await tempDir();
    const out = join(tmp, "site");
    await writeSite([root], out, []);
    const open = (page: string, shot: string) =>
      openPage(browser!, `file://${out}/${page}`, join(tmp, shot), join(tmp, `profile-${shot}`));
    const keyB = `${root.split("/").pop()}/exp/run-b`;
    const keyA = keyB.replace("run-b", "run-a");

    // the index lists the runs, newest first
    const index = await open("index.html", "index.png");
    assert.deepStrictEqual(tableRows(index.dom, "runs").map((r) => r[3]), [
      "run-c",
      "run-b",
      "run-a",
    ]);

    // a run page: both plots rendered by vega-embed, with marks in their SVG
    const run = await open(`runs/${keyB}.html`, "run.png");
    assert.strictEqual((run.dom.match(/data-rendered="1"/g) ?? []).length, 2, "plots not rendered");
    assert.match(run.dom, /class="mark-line role-mark[^"]*"[^>]*><path/);
    assert.match(run.dom, /class="mark-symbol role-mark[^"]*"[^>]*><path/);
    // integer epoch ticks: the curves' x axis labels are 1, 2, 3 only
    const xLabels = [...run.dom.matchAll(/aria-label="X-axis[^"]*"[\s\S]*?<\/g><\/g><\/g>/g)];
    const epochTicks = xLabels.length
      ? [...xLabels[0][0].matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1])
        .filter((t) => /^[\d.]+$/.test(t))
      : [];
    assert.deepStrictEqual(epochTicks.filter((t) => !/^\d+$/.test(t)), [], `ticks ${epochTicks}`);
    assert.ok(epochTicks.includes("2"), `epoch ticks ${epochTicks}`);

    // the experiment page: three trend plots
    const exp = await open("experiments/exp.html", "experiment.png");
    assert.strictEqual((exp.dom.match(/data-rendered="1"/g) ?? []).length, 3);

    // the compare view: B - A per variant, the qgt-2 regression flagged
    const cmp = await open(
      `compare.html#a=${encodeURIComponent(keyA)}&b=${encodeURIComponent(keyB)}&pct=1`,
      "compare.png",
    );
    const rows = tableRows(cmp.dom, "compare-table");
    const byVariant = new Map(rows.map((r) => [r[0], r]));
    // variant, accuracy A %, accuracy B %, change (points), bytes A, bytes B, change (bytes), flag
    assert.deepStrictEqual(byVariant.get("qgt-2"), [
      "qgt-2",
      "86",
      "83.5",
      "-2.5",
      "5000",
      "5000",
      "0",
      "regression",
    ]);
    assert.deepStrictEqual(byVariant.get("qat-2")?.slice(3), ["1", "5000", "5000", "0", ""]);
    assert.match(cmp.dom, /1 regression\(s\) beyond 1: qgt-2: accuracy 86\.00% -&gt; 83\.50%/);

    for (
      const [name, p] of [["index", index], ["run", run], ["experiment", exp], ["compare", cmp]]
    ) {
      const page = p as { console: string[] };
      assert.deepStrictEqual(page.console, [], `${name} page's console`);
    }
    for (const shot of ["index", "run", "experiment", "compare"]) {
      const png = await Deno.readFile(join(tmp, `${shot}.png`));
      assert.deepStrictEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], `${shot}.png`);
    }
    // the run pages link to the run's files where they are
    assert.ok((await readRunRecord(runs[1])).runId === "run-b");
  },
});

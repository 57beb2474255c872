// Cross-run analysis over fabricated run directories: compare, and the runs listing.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { exists } from "../lib/util/fs.ts";
import { assert } from "./assert.ts";
import { cli, fabricateRun } from "./helpers.ts";

const read = (dir: string, f: string) => Deno.readTextFile(join(dir, f));

/** A complete fabricated run at commit aaaa…: float 90 %, q2 (2-bit QGT) 88 % in 100 bytes. */
const runAtA = (out: string) =>
  fabricateRun(out, {
    commit: "a".repeat(40),
    started: "2026-01-01T00:00:00Z",
    rows: "float,float,32,0.9,0.3,1000,1000,1,0\nq2,qgt,2,0.88,0.4,100,1000,10,2\n",
  });

Deno.test("compare: deltas between two fabricated runs and --fail-on-regression", async () => {
  const out = await tempDir();
  const B = "b".repeat(40);
  await runAtA(out);
  await fabricateRun(out, {
    commit: B,
    started: "2026-01-02T00:00:00Z",
    rows: "float,float,32,0.9,0.3,1000,1000,1,0\nq2,qgt,2,0.85,0.5,110,1000,9.0909,5\n",
  });
  const rep = await tempDir();
  const r = await cli(["lib/cli/compare.ts", "aaaa", "bbbb", "--out", out, "--report-dir", rep]);
  assert.equal(r.code, 0, r.stderr);
  // a row per variant: accuracy A %, B %, change in points, bytes A, B, change
  const line = r.stdout.split("\n").find((l) => /^q2\s/.test(l))!;
  assert.match(line, /^q2\s+88(\.0+)?\s+85(\.0+)?\s+-3(\.0+)?\s+100\s+110\s+10$/);
  assert.equal(r.stderr, ""); // same seed, profile, dataset and settings: nothing to note
  assert.ok(await exists(join(rep, "compare.svg")));
  const csv = await Deno.readTextFile(join(rep, "compare.csv"));
  assert.ok(csv.includes("q2,accuracy,0.88,0.85,"), csv);
  // a newer run at B with another seed and one more variant: compared, with notes saying so
  await fabricateRun(out, {
    commit: B,
    runId: "run-bbbb-seed2",
    seed: 2,
    started: "2026-01-03T00:00:00Z",
    rows: "float,float,32,0.91,0.3,1000,1000,1,0\nq2,qgt,2,0.86,0.5,110,1000,9.0909,5\n" +
      "q3,qgt,3,0.89,0.4,150,1000,6.6667,2\n",
  });
  const s2 = await cli(["lib/cli/compare.ts", "aaaa", "bbbb", "--out", out, "--report-dir", rep]);
  assert.match(s2.stdout, /B = run run-bbbb-seed2/);
  assert.match(
    s2.stderr,
    /note: the runs differ in more than the commit, and the changes include that: seed: 1 \(A\) vs 2 \(B\)\n/,
  );
  assert.match(s2.stderr, /note: only in B \(not compared\): q3\n/);
  // --seed picks the runs of that seed at both commits
  const s1 = await cli([
    "lib/cli/compare.ts",
    "aaaa",
    "bbbb",
    "--seed",
    "1",
    "--out",
    out,
    "--report-dir",
    rep,
  ]);
  assert.match(s1.stdout, /B = run run-bbbb \(/);
  assert.equal(s1.stderr, "");
  const s3 = await cli(["lib/cli/compare.ts", "aaaa", "bbbb", "--seed", "3", "--out", out]);
  assert.equal(s3.code, 1);
  assert.match(s3.stderr, /^qgt: compare: no complete run at aaaa with seed 3 in /);
  // defaults: the two commits with runs, older as A
  const d = await cli(["lib/cli/compare.ts", "--out", out, "--report-dir", rep]);
  assert.match(d.stdout, /A = run run-aaaa .* B = run run-bbbb/);
  // regression: accuracy -3 points and size +10 %
  const regress = (pct: string) =>
    cli([
      "lib/cli/compare.ts",
      "aaaa",
      "bbbb",
      "--out",
      out,
      "--report-dir",
      rep,
      "--seed",
      "1",
      "--fail-on-regression",
      pct,
    ]);
  const f2 = await regress("2");
  assert.equal(f2.code, 1);
  assert.match(f2.stderr, /regression: q2: accuracy 88\.00% -> 85\.00%/);
  const f20 = await regress("20");
  assert.equal(f20.code, 0, f20.stderr);
  const bad = await cli(["lib/cli/compare.ts", "--out", out, "--fail-on-regression", "x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^qgt: --fail-on-regression: expected a non-negative number, got "x"/);
});

Deno.test("runs: status (an unfinished run whose process is gone is incomplete), commits, headline", async () => {
  const out = await tempDir();
  const A = "a".repeat(40), B = "b".repeat(40);
  await runAtA(out);
  const dir = await fabricateRun(out, {
    commit: A,
    runId: "run-resumed",
    started: "2026-01-02T00:00:00Z",
    rows: "",
  });
  // unfinished, its process gone, resumed once at another commit with a dirty tree
  await Deno.remove(join(dir, "summary.csv"));
  const rec = JSON.parse(await read(dir, "run.json"));
  await Deno.writeTextFile(
    join(dir, "run.json"),
    JSON.stringify({
      ...rec,
      status: "running",
      pid: 2 ** 22 + 1,
      resumed: [{ at: "2026-01-03T00:00:00Z", commit: B, dirty: true }],
      variants: {
        float: { hash: "h", status: "complete", seconds: 3000 },
        q2: { hash: "h", status: "running", seconds: 725.4 },
      },
    }),
  );
  const r = await cli(["lib/cli/runs.ts", "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  const row = (id: string) => r.stdout.split("\n").find((l) => l.includes(id))!.split(/\s{2,}/);
  assert.deepStrictEqual(row("run-aaaa"), [
    "exp",
    "run-aaaa",
    "aaaaaaa",
    "complete",
    "default",
    "-", // no compute time recorded
    "float 90.0% 1.0KB | q2 88.0% 0.1KB",
  ]);
  assert.deepStrictEqual(row("run-resumed"), [
    "exp",
    "run-resumed",
    "aaaaaaa->bbbbbbb+",
    "incomplete",
    "default",
    "1h02m", // 3000 s + 725 s
    "1/2 variants done",
  ]);
  assert.ok(r.stdout.includes("\ntotal compute: 1h02m over 2 runs\n"), r.stdout);
  const none = await cli(["lib/cli/runs.ts", "--out", out, "--experiment", "nope"]);
  assert.equal(none.stdout.trim(), `no runs of nope in ${out}`);
});

// Seed statistics: Student t against closed forms and printed tables, the paired
// interval worked by hand, and `deno task seeds` on fabricated runs.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { mean, pairedDifference, sampleSd, tCdf, tQuantile } from "../lib/report/stats.ts";
import { variantSeedRows } from "../lib/analysis/seeds.ts";
import { seedsReportName } from "../lib/analysis/seeds_report.ts";
import { readCsv, rowsOf } from "../lib/util/tables.ts";
import { exists } from "../lib/util/fs.ts";
import { assert, assertAlmostEquals } from "./assert.ts";
import { cli, fabricateRun, handArch } from "./helpers.ts";
import { buildQgt } from "../lib/format/model_file.ts";
import { generateSyntheticPerson } from "../lib/data/synthetic_person.ts";

Deno.test("tCdf matches the closed forms for 1 and 2 degrees of freedom", () => {
  for (const t of [-7, -1.5, -0.2, 0, 0.3, 1, 2.5, 12.7]) {
    // Cauchy: 1/2 + atan(t)/pi; df 2: 1/2 + t / (2 sqrt(2 + t^2))
    assertAlmostEquals(tCdf(t, 1), 0.5 + Math.atan(t) / Math.PI, 1e-12, `df 1, t ${t}`);
    assertAlmostEquals(tCdf(t, 2), 0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-12, `df 2, t ${t}`);
  }
});

Deno.test("tQuantile reproduces the printed two-sided 95 % and 90 % critical values", () => {
  // the usual table of t(0.975, df) and t(0.95, df), to 3 decimals
  const t975: [number, number][] = [
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [4, 2.776],
    [5, 2.571],
    [
      10,
      2.228,
    ],
    [20, 2.086],
    [30, 2.042],
    [120, 1.98],
  ];
  for (const [df, v] of t975) assertAlmostEquals(tQuantile(0.975, df), v, 5e-4, `df ${df}`);
  for (const [df, v] of [[1, 6.314], [5, 2.015], [30, 1.697]]) {
    assertAlmostEquals(tQuantile(0.95, df), v, 5e-4, `0.95, df ${df}`);
  }
  // large df tends to the normal quantile; symmetric
  assertAlmostEquals(tQuantile(0.975, 1e6), 1.959966, 1e-4);
  assertAlmostEquals(tQuantile(0.025, 7), -tQuantile(0.975, 7), 1e-9);
  assert.throws(() => tQuantile(1, 3), /p must be in \(0, 1\)/);
});

Deno.test("pairedDifference: the interval worked by hand", () => {
  // b - a = 2, 0, 2: mean 4/3, sd sqrt(4/3), half = t(0.975, 2) sd / sqrt(3) = 4.302653 * 2/3
  const d = pairedDifference([79, 82, 84], [81, 82, 86]);
  assertAlmostEquals(d.mean, 4 / 3, 1e-12);
  assertAlmostEquals(d.sd, Math.sqrt(4 / 3), 1e-12);
  assertAlmostEquals(d.ciLow, 4 / 3 - 4.302653 * 2 / 3, 1e-5);
  assertAlmostEquals(d.ciHigh, 4 / 3 + 4.302653 * 2 / 3, 1e-5);
  assert.deepEqual([d.wins, d.ties, d.losses], [2, 1, 0]);
  const one = pairedDifference([1], [0]);
  assert.ok(Number.isNaN(one.ciLow) && one.losses === 1);
  assert.throws(() => pairedDifference([1, 2], [1]), /2 values against 1/);
});

Deno.test("variantSeedRows: Arquero's roll-up agrees with mean and sampleSd", () => {
  const accs = [84.41, 84.52, 84.41, 86.1, 85.7];
  const samples = accs.map((accuracy, i) => ({
    seed: i + 1,
    variant: i < 3 ? "qat-2" : "float",
    accuracy,
    runId: "r",
    commit: "c",
  }));
  const rows = variantSeedRows(samples, ["float", "qat-2"]);
  assert.deepEqual(rows.map((r) => [r.variant, r.n, r.seeds]), [["float", 2, "4,5"], [
    "qat-2",
    3,
    "1,2,3",
  ]]);
  assertAlmostEquals(rows[1].mean_pct, mean(accs.slice(0, 3)), 1e-4);
  assertAlmostEquals(rows[1].sd_pct!, sampleSd(accs.slice(0, 3)), 1e-4);
  assert.deepEqual([rows[0].min_pct, rows[0].max_pct], [85.7, 86.1]);
});

/** One seed-1 run of experiment "fm" (version 1) with a float and a qat-2 row. */
const floatAndQat2 = (out: string, float: number, qat2: number) =>
  fabricateRun(out, {
    id: "fm",
    runId: "r1",
    commit: "c".repeat(40),
    started: "2026-01-01T00:00:00Z",
    seed: 1,
    version: 1,
    rows: `float,float,32,${float},0.3,100,1000,10,0\nqat-2,qat,2,${qat2},0.3,100,1000,10,0\n`,
  });

Deno.test("seeds report directory: the default profile keeps the committed names, other profiles are named", () => {
  // committed reports (default profile) stay where the docs link them
  assert.equal(seedsReportName("fashion-mnist", "4", "default", ""), "fashion-mnist-v4");
  assert.equal(
    seedsReportName("person-detect", "5+4", "default", "-val10000-n10000"),
    "person-detect-v5+4-val10000-n10000",
  );
  // a --full report of the same version goes beside the default one, not over it
  assert.equal(seedsReportName("fashion-mnist", "5", "full", ""), "fashion-mnist-v5-full");
  assert.equal(seedsReportName("pd", "3", "quick", "-val10-n5"), "pd-v3-quick-val10-n5");
});

Deno.test("deno task seeds: samples.csv states summary.csv's accuracies in percent, no float noise", async () => {
  const out = await tempDir(), rep = join(await tempDir(), "rep");
  // 0.791 * 100 is 79.10000000000001 in binary floating point, 0.5814 * 100 is 58.14 exactly
  await floatAndQat2(out, 0.791, 0.5814);
  const r = await cli(["lib/cli/seeds.ts", "fm", "--out", out, "--report-dir", rep]);
  assert.equal(r.code, 0, r.stderr);
  const lines = (await Deno.readTextFile(join(rep, "samples.csv"))).split("\n");
  assert.deepEqual(lines.slice(1, 3).map((l) => l.split(",").slice(0, 5).join(",")), [
    "float,float,32,1,79.1",
    "qat-2,qat,2,1,58.14",
  ]);
});

Deno.test("deno task seeds <experiment.ts>: variants report in the order the experiment declares them", async () => {
  const out = await tempDir(), rep = join(await tempDir(), "rep"), exp = join(out, "fm.ts");
  await floatAndQat2(out, 0.8, 0.7);
  await Deno.writeTextFile(
    exp,
    `export default { id: "fm", variants: { "qat-2": {}, "qgt-2": {}, float: {} } };\n`,
  );
  for (const [arg, want] of [["fm", ["float", "qat-2"]], [exp, ["qat-2", "float"]]]) {
    const r = await cli(["lib/cli/seeds.ts", arg as string, "--out", out, "--report-dir", rep]);
    assert.equal(r.code, 0, r.stderr);
    const rows = rowsOf(await readCsv(join(rep, "seeds.csv")));
    assert.deepEqual(rows.map((x) => x.variant), want);
  }
});

Deno.test("deno task seeds: newest run per seed and variant, one version and dataset, two roots", async () => {
  const out1 = await tempDir(), out2 = await tempDir();
  const row = (v: string, acc: number) => {
    const [mode, bits] = v === "float" ? ["float", "32"] : v.split("-");
    return `${v},${mode},${bits},${acc},0.3,100,1000,10,0\n`;
  };
  const rows = (o: Record<string, number>) => Object.entries(o).map(([v, a]) => row(v, a)).join("");
  const fm = (out: string, runId: string, started: string, seed: number, r: string, extra = {}) =>
    fabricateRun(out, {
      id: "fm",
      runId,
      commit: "c".repeat(40),
      started: `2026-01-0${started}T00:00:00Z`,
      seed,
      version: 3,
      rows: r,
      ...extra,
    });
  const five = (f: number, q2: number, g2: number, q4: number, g4: number) =>
    rows({ float: f, "qat-2": q2, "qgt-2": g2, "qat-4": q4, "qgt-4": g4 });
  // an older version and another dataset are left out
  await fm(out1, "old-version", "1", 1, rows({ "qat-2": 0.5, "qgt-2": 0.99 }), { version: 2 });
  await fm(out1, "other-data", "1", 2, rows({ "qat-2": 0.1, "qgt-2": 0.99 }), {
    dataset: { name: "synthetic-person", options: { trainCount: 5 } },
  });
  await fm(out1, "s1", "2", 1, five(0.9, 0.8, 0.81, 0.88, 0.87));
  await fm(out1, "s2", "3", 2, five(0.91, 0.82, 0.82, 0.89, 0.89));
  await fm(out2, "s3-pair", "4", 3, rows({ float: 0.92, "qat-2": 0.84, "qgt-2": 0.86 }));
  // a newer seed-1 run of qat-2 alone replaces only that sample
  await fm(out2, "s1-qat2", "5", 1, rows({ "qat-2": 0.79 }));

  const rep = join(await tempDir(), "rep");
  const r = await cli([
    "lib/cli/seeds.ts",
    "fm",
    "--out",
    out1,
    "--out",
    out2,
    "--report-dir",
    rep,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /fm v3 \(default\).*: 4 runs/);
  const pairs = rowsOf(await readCsv(join(rep, "pairs.csv")));
  assert.deepEqual(pairs.map((p) => [p.a, p.b, p.n, p.seeds]), [
    ["qat-2", "qgt-2", 3, "1,2,3"],
    ["qat-4", "qgt-4", 2, "1,2"],
  ]);
  // qat-2 79, 82, 84 against qgt-2 81, 82, 86 (worked out in the pairedDifference test)
  assertAlmostEquals(pairs[0].mean_diff as number, 4 / 3, 1e-4);
  assertAlmostEquals(pairs[0].ci95_low as number, 4 / 3 - 4.302653 * 2 / 3, 1e-4);
  assert.deepEqual([pairs[0].wins, pairs[0].ties, pairs[0].losses], [2, 1, 0]);
  // qat-4 88, 89 against qgt-4 87, 89: differences -1, 0; half-width t(0.975, 1) sd / sqrt(2)
  assertAlmostEquals(pairs[1].mean_diff as number, -0.5, 1e-4);
  assertAlmostEquals(
    pairs[1].ci95_high as number,
    -0.5 + 12.706205 * Math.SQRT1_2 / Math.SQRT2,
    1e-4,
  );
  const seeds = rowsOf(await readCsv(join(rep, "seeds.csv")));
  assert.deepEqual(seeds.map((s) => s.variant), ["float", "qat-2", "qgt-2", "qat-4", "qgt-4"]);
  assertAlmostEquals(seeds[0].mean_pct as number, 91, 1e-4);
  assertAlmostEquals(seeds[0].sd_pct as number, 1, 1e-4);
  const samples = rowsOf(await readCsv(join(rep, "samples.csv")));
  const s1 = samples.find((s) => s.seed === 1 && s.variant === "qat-2")!;
  assert.equal(s1.run_id, "s1-qat2");
  assert.ok(await exists(join(rep, "seeds.svg")));

  // an explicit pair, and the version flag
  const p = await cli([
    "lib/cli/seeds.ts",
    "fm",
    "--out",
    out1,
    "--version",
    "2",
    "--pair",
    "qat-2,qgt-2",
    "--report-dir",
    rep,
  ]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /qat-2\s+qgt-2\s+1\s+1\s+49(\.0+)?\s/);
});

Deno.test("deno task seeds --also-version: variants a version's runs lack come from the other version's", async () => {
  const out = await tempDir(), rep = join(await tempDir(), "rep");
  const run = (runId: string, day: string, seed: number, version: number, rows: string) =>
    fabricateRun(out, {
      id: "fm",
      runId,
      commit: "c".repeat(40),
      started: `2026-01-0${day}T00:00:00Z`,
      seed,
      version,
      rows,
    });
  const q = (v: string, acc: number) => `${v},qat,2,${acc},0.3,100,1000,10,0\n`;
  const f = (acc: number) => `float,float,32,${acc},0.3,100,1000,10,0\n`;
  // version 1 ran float and qat-2; version 2 only its new variant (float again, differently here
  // so that the rule shows: the chosen version's sample wins)
  await run("v1-s1", "1", 1, 1, f(0.9) + q("qat-2", 0.8));
  await run("v1-s2", "2", 2, 1, f(0.9) + q("qat-2", 0.7));
  await run("v2-s1", "3", 1, 2, f(0.95) + q("new-qat-2", 0.85));
  await run("v2-s2", "4", 2, 2, q("new-qat-2", 0.72));
  const seeds = (...extra: string[]) =>
    cli(["lib/cli/seeds.ts", "fm", "--out", out, "--report-dir", rep, ...extra]);
  const r = await seeds("--also-version", "1", "--pair", "qat-2,new-qat-2");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /fm v2\+1 \(default\)/);
  const samples = rowsOf(await readCsv(join(rep, "samples.csv")))
    .map((x) => `${x.variant} ${x.seed} ${x.accuracy} ${x.run_id}`).sort();
  assert.deepEqual(samples, [
    "float 1 95 v2-s1",
    "float 2 90 v1-s2",
    "new-qat-2 1 85 v2-s1",
    "new-qat-2 2 72 v2-s2",
    "qat-2 1 80 v1-s1",
    "qat-2 2 70 v1-s2",
  ]);
  // differences +5 and +2 points
  const [pair] = rowsOf(await readCsv(join(rep, "pairs.csv")));
  assertAlmostEquals(pair.mean_diff as number, 3.5, 1e-4);
  assert.equal(pair.n, 2);
  // without it, version 2 alone has no qat-2
  const alone = await seeds("--pair", "qat-2,new-qat-2");
  assert.notEqual(alone.code, 0);
  assert.match(alone.stderr, /qat-2/);
  const none = await seeds("--also-version", "7");
  assert.notEqual(none.code, 0);
  assert.match(
    none.stderr,
    /^qgt: seeds: also version 7: no complete runs of fm at that version \(have 1, 2\)\n$/,
  );
});

Deno.test("deno task seeds: bad input is one line naming what is wrong, and writes nothing", async () => {
  const out = await tempDir();
  await fabricateRun(out, {
    id: "fm",
    commit: "c".repeat(40),
    started: "2026-01-01T00:00:00Z",
    rows: "qat-2,qat,2,0.8,0.3,100,1000,10,0\n",
  });
  const rep = join(await tempDir(), "rep");
  const run = (...args: string[]) =>
    cli(["lib/cli/seeds.ts", "fm", "--out", out, "--report-dir", rep, ...args]);
  const cases: [string[], number, RegExp][] = [
    [
      ["--pair", "qat-2,nope"],
      1,
      /^qgt: seeds: --pair qat-2,nope: no variant nope in the runs \(have qat-2\)$/,
    ],
    [["--pair", "qat-2"], 2, /^qgt: --pair: expected two variant names A,B, got "qat-2"$/],
    [
      ["--version", "7"],
      1,
      /^qgt: seeds: --version 7: no complete runs of fm at that version \(have 1\)$/,
    ],
    [["--version", "x"], 2, /^qgt: --version: expected an integer/],
    [["--profile", "quick"], 1, /^qgt: seeds: no complete quick-profile runs of fm under /],
  ];
  for (const [args, code, msg] of cases) {
    const r = await run(...args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), msg);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
  assert.equal(await exists(rep), false);
});

/** A model that always answers `cls` (weights 0, biases favour it), for 8x8x1 images. */
function constantModel(cls: 0 | 1): Uint8Array {
  const arch = handArch(`always-${cls}`, [8, 8, 1]);
  const q = (shape: number[], n: number, bits: number, axis: number) => ({
    shape,
    bits,
    symmetric: true,
    axis,
    codes: new Int32Array(n),
    scales: new Float32Array(n).fill(0.5),
    zeroPoints: new Int32Array(n),
  });
  return buildQgt({
    arch,
    classNames: ["non_person", "person"],
    biases: { c: Float32Array.from([0]), d: Float32Array.from(cls ? [-0.1, 0.1] : [0.1, -0.1]) },
    weights: { c: q([1, 1, 1, 1], 1, 8, 3), d: q([1, 2], 2, 4, 1) },
    specs: {
      c: { bits: 8, symmetric: true, perChannel: true, axis: 3 },
      d: { bits: 4, symmetric: true, perChannel: true, axis: 1 },
    },
    activationRanges: { c: [0, 6] },
    normalize: { mean: 128 / 255, std: 128 / 255 },
  });
}

Deno.test("deno task seeds --val-count: exported models re-evaluated on fresh images, reused from evaluations.csv", async () => {
  const out = await tempDir(), cacheRoot = await tempDir();
  const dataset = {
    name: "synthetic-person",
    options: { trainCount: 10, valCount: 4, size: 8, cacheRoot },
  };
  for (const seed of [1, 2]) {
    const dir = await fabricateRun(out, {
      id: "pd",
      runId: `s${seed}`,
      commit: "c".repeat(40),
      started: `2026-01-0${seed}T00:00:00Z`,
      seed,
      dataset,
      // summary.csv's accuracies are not what the fresh images give
      rows: "float,float,32,0.9,0.3,100,1000,10,0\n" +
        "always0,qat,2,0.7,0.3,100,1000,10,0\nalways1,qgt,2,0.6,0.3,100,1000,10,0\n",
    });
    for (const cls of [0, 1] as const) {
      const ex = join(dir, "variants", `always${cls}`, "export");
      await Deno.mkdir(ex, { recursive: true });
      await Deno.writeFile(join(ex, "model.qgt"), constantModel(cls));
    }
  }
  // the fresh images: 30 images after training (0..9) and validation (10..13), i.e. 14..43
  const labels = generateSyntheticPerson({ count: 44, seed: 1, size: 8 }).labels.subarray(14);
  const p1 = labels.filter((l) => l === 1).length / labels.length;
  assert.ok(p1 > 0 && p1 < 1);
  const rep = join(await tempDir(), "rep");
  const args = ["lib/cli/seeds.ts", "pd", "--out", out, "--val-count", "30", "--report-dir", rep];
  const fromCache = (stdout: string) => stdout.match(/from evaluations\.csv/g)?.length ?? 0;
  // a narrower invocation first: its two evaluations are reused by the wider one
  const narrow = await cli([...args, "--variants", "always0"]);
  assert.equal(narrow.code, 0, narrow.stderr);
  assert.equal(fromCache(narrow.stdout), 0);
  const r = await cli(args);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fromCache(r.stdout), 2);
  assert.equal((r.stdout.match(/seed \d always0: .*from evaluations\.csv/g) ?? []).length, 2);
  assert.match(r.stdout, /images 14\.\.43 \(interpreter\)/);
  const samples = rowsOf(await readCsv(join(rep, "samples.csv")));
  assert.deepEqual(samples.map((s) => [s.variant, s.seed]), [
    ["always0", 1],
    ["always0", 2],
    ["always1", 1],
    ["always1", 2],
  ]);
  for (const s of samples) {
    // percent to 4 decimals
    assertAlmostEquals(s.accuracy as number, (s.variant === "always1" ? p1 : 1 - p1) * 100, 5e-5);
  }
  const [pair] = rowsOf(await readCsv(join(rep, "pairs.csv")));
  assert.deepEqual([pair.a, pair.b, pair.n], ["always0", "always1", 2]);
  assertAlmostEquals(pair.mean_diff as number, (2 * p1 - 1) * 100, 1e-4);
  const evals = rowsOf(await readCsv(join(rep, "evaluations.csv")));
  assert.equal(evals.length, 4);
  assert.ok(evals.every((e) => e.images === 30 && /^[0-9a-f]{64}$/.test(String(e.model_sha256))));
  // a narrower invocation afterwards keeps the other variant's rows in evaluations.csv
  const pairsBefore = await Deno.readTextFile(join(rep, "pairs.csv"));
  const evalsBefore = await Deno.readTextFile(join(rep, "evaluations.csv"));
  const narrow1 = await cli([...args, "--variants", "always1"]);
  assert.equal(narrow1.code, 0, narrow1.stderr);
  assert.equal(fromCache(narrow1.stdout), 2);
  assert.equal(await Deno.readTextFile(join(rep, "evaluations.csv")), evalsBefore);
  // the same command again takes every accuracy from evaluations.csv and writes the same tables
  const again = await cli(args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(fromCache(again.stdout), 4);
  assert.equal(await Deno.readTextFile(join(rep, "evaluations.csv")), evalsBefore);
  assert.equal(await Deno.readTextFile(join(rep, "pairs.csv")), pairsBefore);

  // bad input: one line, nothing written
  const rep2 = join(await tempDir(), "rep2");
  const bad = (...extra: string[]) =>
    cli(["lib/cli/seeds.ts", "pd", "--out", out, "--report-dir", rep2, ...extra]);
  const cases: [string[], number, RegExp][] = [
    [
      ["--val-count", "30", "--variants", "float"],
      1,
      /^qgt: .*variants\/float\/export\/model\.qgt: no exported model \(seed 1, variant float\); only exported variants can be re-evaluated$/,
    ],
    [
      ["--val-count", "30", "--val-offset", "3"],
      1,
      /^qgt: dataset synthetic-person: options\.valOffset must be an integer >= trainCount \(10\)/,
    ],
    [["--val-offset", "20"], 2, /^qgt: --val-offset: needs --val-count N/],
    [
      ["--val-count", "0"],
      2,
      /^qgt: --val-count: expected an integer >= 1, got "0"$/,
    ],
    [
      ["--variants", "nope"],
      1,
      /^qgt: seeds: --variants: no variant nope in the runs \(have float, always0, always1\)$/,
    ],
  ];
  for (const [extra, code, msg] of cases) {
    const b = await bad(...extra);
    assert.equal(b.code, code, `${extra.join(" ")}: ${b.stderr}`);
    assert.match(b.stderr.trim(), msg);
    assert.equal(b.stderr.trim().split("\n").length, 1);
  }
  assert.equal(await exists(rep2), false);
  for (const d of [out, cacheRoot]) await Deno.remove(d, { recursive: true });
});

Deno.test("deno task seeds: runs trained on different backends are named, with a note", async () => {
  const out = await tempDir(), rep = join(await tempDir(), "rep");
  const rows = `float,float,32,0.8,0.3,100,1000,10,0\nqat-2,qat,2,0.7,0.3,100,1000,10,0\n`;
  const base = { id: "fm", started: "2026-01-01T00:00:00Z", version: 1, rows };
  await fabricateRun(out, { ...base, runId: "r1", commit: "c".repeat(40), seed: 1 });
  const two = await fabricateRun(out, { ...base, runId: "r2", commit: "d".repeat(40), seed: 2 });
  const recPath = join(two, "run.json");
  const rec = JSON.parse(await Deno.readTextFile(recPath));
  rec.versions.backend = "native";
  await Deno.writeTextFile(recPath, JSON.stringify(rec));
  const r = await cli(["lib/cli/seeds.ts", "fm", "--out", out, "--report-dir", rep]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /seed 1: run r1 \(v1, commit ccccccc, wasm\)/);
  assert.match(r.stdout, /seed 2: run r2 \(v1, commit ddddddd, native\)/);
  assert.match(r.stdout, /note: the runs trained on different backends \(wasm, native\)/);
});

// The experiment runner: determinism, validation errors, resume, compare, concurrent runs.
import { join } from "node:path";
import { endsWithLiveBatchNorm, resolveExperiment } from "../lib/experiment/define.ts";
import { runExperiment, type RunRecord } from "../lib/experiment/runner.ts";
import { planPhases, preflight, StopRequested } from "../lib/experiment/pipeline.ts";
import smoke from "../experiments/smoke.ts";
import personDetect from "../experiments/person-detect.ts";
import { consoleProgress, type ProgressSink } from "../lib/util/progress.ts";
import { exportVariant } from "../lib/export/mod.ts";
import { exists } from "../lib/util/fs.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/experiment/checkpoint.ts";
import { encodePng } from "../lib/data/image.ts";
import { loadVww } from "../lib/data/vww.ts";
import { assert } from "./assert.ts";
import { cli, fabricateRun } from "./helpers.ts";

const quiet = consoleProgress({ quiet: true });
const SMALL = [
  "dataset.options.trainCount=160",
  "dataset.options.valCount=64",
  "train.epochs=2",
  "train.batchSize=16",
];
const SMOKE = "experiments/smoke.ts";

async function run(
  out: string,
  extra: Partial<Parameters<typeof runExperiment>[0]> = {},
  set: string[] = [],
) {
  return await runExperiment({
    path: SMOKE,
    resolve: { set: [...SMALL, ...set] },
    outRoot: out,
    checkpointRoot: join(out, ".ckpt"),
    progress: quiet,
    exporter: exportVariant,
    ...extra,
  });
}

const read = (dir: string, f: string) => Deno.readTextFile(join(dir, f));

/** Runs the smoke experiment (SMALL) with `variants` in place of its own, as experiment `id`. */
async function runSmokeWith(
  id: string,
  variants: Record<string, unknown>,
  progress: ProgressSink = quiet,
): Promise<{ r: Awaited<ReturnType<typeof runExperiment>>; metrics: string }> {
  const dir = await Deno.makeTempDir();
  const smokeUrl = new URL("../experiments/smoke.ts", import.meta.url).href;
  const path = join(dir, `${id}.ts`);
  await Deno.writeTextFile(
    path,
    `import smoke from ${JSON.stringify(smokeUrl)};\n` +
      `export default { ...smoke, id: ${JSON.stringify(id)}, variants: ${
        JSON.stringify(variants)
      } };\n`,
  );
  const r = await runExperiment({
    path,
    resolve: { set: SMALL },
    outRoot: join(dir, "runs"),
    progress,
  });
  return { r, metrics: await read(r.runDir, "metrics.csv") };
}

Deno.test("same seed twice gives byte-identical metrics.csv and summary.csv; another seed changes them", async () => {
  const a = await run(await Deno.makeTempDir());
  const b = await run(await Deno.makeTempDir());
  for (const f of ["metrics.csv", "summary.csv", "layers.csv", "layer_epochs.csv"]) {
    assert.equal(
      await read(a.runDir, f),
      await read(b.runDir, f),
      `${f} differs between identical runs`,
    );
  }
  const c = await run(await Deno.makeTempDir(), { resolve: { set: SMALL, seed: 8 } });
  assert.notEqual(await read(a.runDir, "metrics.csv"), await read(c.runDir, "metrics.csv"));
  assert.notEqual(await read(a.runDir, "summary.csv"), await read(c.runDir, "summary.csv"));
  // the run directory holds everything the README lists
  for (
    const f of [
      "run.json",
      "report.html",
      "curves.vl.json",
      "curves.svg",
      "size_accuracy.svg",
      "layers.svg",
    ]
  ) {
    assert.ok(await exists(join(a.runDir, f)), f);
  }
  assert.ok(await exists(join(a.runDir, "variants", "qgt-4", "export", "model.qgt")));
  const rec = JSON.parse(await read(a.runDir, "run.json")) as RunRecord;
  assert.equal(rec.status, "complete");
  assert.match(rec.git.commit, /^[0-9a-f]{40}$|^unknown$/);
  assert.deepStrictEqual(Object.keys(rec.variants), ["float", "ptq-4", "qat-4", "qgt-4"]);
  const header = (await read(a.runDir, "metrics.csv")).split("\n")[0];
  assert.equal(header, "variant,phase,epoch,split,metric,value");
});

Deno.test("a float baseline with the same resolved config is reused, not retrained", async () => {
  const out = await Deno.makeTempDir();
  const a = await run(out);
  const b = await run(out);
  const rec = JSON.parse(await read(b.runDir, "run.json")) as RunRecord;
  assert.ok(rec.variants.float.reused, "float was retrained");
  assert.equal(await read(a.runDir, "metrics.csv"), await read(b.runDir, "metrics.csv"));
});

Deno.test("validation errors name the field and the expected value", () => {
  const bad = (over: (e: Record<string, unknown>) => void) => {
    const e = structuredClone(smoke) as unknown as Record<string, unknown>;
    over(e);
    try {
      resolveExperiment(e, { where: "x.ts" });
    } catch (err) {
      return (err as Error).message;
    }
    return "no error";
  };
  assert.match(
    bad((e) => ((e.train as Record<string, unknown>).epoch = 3)),
    /^x\.ts: train\.epoch: unknown key/,
  );
  assert.match(
    bad((e) => ((e.train as Record<string, unknown>).batchSize = "32")),
    /^x\.ts: train\.batchSize: .*number.*"32"/,
  );
  assert.match(
    bad((e) => ((e.train as Record<string, unknown>).batchSize = 0)),
    /^x\.ts: train\.batchSize: .*>=1/,
  );
  assert.match(
    bad((
      e,
    ) => ((e.variants as Record<string, Record<string, unknown>>)["qat-4"].qgt = {
      mode: "qat",
      bits: 9,
    })),
    /^x\.ts: variants\.qat-4\.qgt\.bits: .*<=8/,
  );
  assert.match(
    bad((e) => ((e.dataset as Record<string, unknown>).name = "imagenet")),
    /^x\.ts: dataset\.name: .*"synthetic-person"/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["qgt-4"].qgt = {
      mode: "qgt",
      regularizer: "sin",
      decoupled: true,
    })),
    /^x\.ts: variants\.qgt-4\.qgt\.decoupled: needs mode "qgt" with regularizer "grid", got mode "qgt", regularizer "sin"$/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["qgt-4"].qgt = {
      mode: "qgt",
      freeze: { momentum: 0.01, threshold: 0.02 },
    })),
    /^x\.ts: variants\.qgt-4\.qgt\.freeze: needs mode "qat", or "qgt" with fakeQuant true, got mode "qgt" without fakeQuant$/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["qat-4"].qgt = {
      mode: "qat",
      bnReestimate: { images: 512 },
    })),
    /^x\.ts: variants\.qat-4\.qgt\.bnReestimate: needs a "qat" or "qgt" variant whose last phase keeps BatchNorm live \(liveBatchNorm true or from "scratch"; qgt: finetuneEpochs 0\), got mode "qat" with BatchNorm folded before the last phase$/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["ptq-4"].qgt = {
      mode: "ptq",
      bnReestimate: { images: 512 },
    })),
    /^x\.ts: variants\.ptq-4\.qgt\.bnReestimate: needs .*, got mode "ptq"$/,
  );
  assert.throws(
    () =>
      resolveExperiment(smoke, {
        where: "x.ts",
        set: ['variants.qat-4.qgt.bnReestimate={"images":0}'],
      }),
    /x\.ts: variants\.qat-4\.qgt\.bnReestimate\.images: /,
  );
  assert.throws(
    () =>
      resolveExperiment(smoke, {
        where: "x.ts",
        set: ['variants.qat-4.qgt.freeze={"momentum":0.01,"threshold":1}'],
      }),
    /x\.ts: variants\.qat-4\.qgt\.freeze\.threshold: /,
  );
  assert.throws(
    () => resolveExperiment(smoke, { where: "x.ts", set: ["train.optimizer.type=rmsprop"] }),
    /x\.ts: train\.optimizer\.type: /,
  );
  assert.throws(
    () => resolveExperiment(smoke, { where: "x.ts", variants: ["nope"] }),
    /--variants: x\.ts has no variant "nope"/,
  );
  // dataset options the dataset does not read, and --data where no dataset reads a directory
  assert.match(
    bad((e) => ((e.dataset as Record<string, Record<string, unknown>>).options.holdout = 100)),
    /^x\.ts: dataset\.options\.holdout: not an option of dataset synthetic-person; its options: trainCount, valCount, valOffset, seed, size, channels$/,
  );
  const errorOf = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return (err as Error).message;
    }
    return "no error";
  };
  assert.equal(
    errorOf(() => resolveExperiment(smoke, { where: "x.ts", dataDir: "/d" })),
    "--data: x.ts: dataset synthetic-person reads no directory, and declares no dataset.withDir to switch to one",
  );
  // --data switches person-detect to VWW, whose trainCount / valCount are the profile's caps
  for (const [profile, train, val] of [["default", 8000, 2000], ["quick", 800, 256]] as const) {
    const r = resolveExperiment(personDetect, { profile, dataDir: "/d" });
    assert.deepStrictEqual(r.variants[0].dataset, {
      name: "vww",
      withDir: "vww",
      options: { trainCount: train, valCount: val, dir: "/d" },
    });
  }
  assert.match(
    errorOf(() =>
      resolveExperiment(personDetect, {
        where: "p.ts",
        dataDir: "/d",
        set: ["dataset.options.valOffset=9000"],
      })
    ),
    /^p\.ts: dataset\.options\.valOffset: not an option of dataset vww \(--data switched to it\); its options: dir, trainCount, valCount/,
  );
});

Deno.test("--data switches to VWW: the real loader through a run, capped by the experiment's counts", async () => {
  // a VWW folder of 32x32 PNGs: bright squares are people, dark ones are not
  const dir = await Deno.makeTempDir(), vww = join(dir, "vww");
  for (const [cls, v] of [["person", 200], ["non_person", 40]] as const) {
    await Deno.mkdir(join(vww, cls), { recursive: true });
    for (let i = 0; i < 24; i++) {
      const px = new Uint8Array(32 * 32 * 4).fill(255);
      for (let p = 0; p < 32 * 32; p++) px.fill(v + (p % 7) + i, p * 4, p * 4 + 3);
      await Deno.writeFile(
        join(vww, cls, `${i}.png`),
        encodePng({ width: 32, height: 32, data: px }),
      );
    }
  }
  const path = join(dir, "vww-run.ts");
  await Deno.writeTextFile(
    path,
    `import smoke from ${
      JSON.stringify(new URL("../experiments/smoke.ts", import.meta.url).href)
    };\n` +
      `export default { ...smoke, id: "vww-run", dataset: { ...smoke.dataset, withDir: "vww" },\n` +
      `  variants: { float: {}, "ptq-4": { qgt: { mode: "ptq", bits: 4 } } } };\n`,
  );
  const lines: string[] = [];
  const r = await runExperiment({
    path,
    resolve: {
      dataDir: vww,
      set: [
        "dataset.options.trainCount=20",
        "dataset.options.valCount=6",
        "train.epochs=1",
        "train.batchSize=8",
      ],
    },
    outRoot: join(dir, "runs"),
    dataRoot: join(dir, "cache"),
    progress: { status() {}, line: (t) => lines.push(t) },
    exporter: exportVariant,
  });
  assert.equal(r.record.status, "complete");
  assert.equal(r.record.dataset.name, "vww");
  const available = (await loadVww({ dir: vww })).available;
  assert.ok(
    lines.includes(
      `vww: 20 of ${available.train} training and 6 of ${available.val} validation images ` +
        "(options.trainCount / valCount; a fixed subset by path hash)",
    ),
    lines.join("\n"),
  );
  assert.ok(lines.some((l) => l.includes("vww/train 20 train / 6 val")), lines.join("\n"));
  assert.deepStrictEqual(r.summary.map((s) => s.variant), ["float", "ptq-4"]);
  // each finished variant says how far the run is
  assert.ok(
    lines.some((l) =>
      /^float: accuracy .*\[1\/2 variants done, .* since the run started\]$/.test(l)
    ),
  );
  assert.ok(
    lines.some((l) =>
      /^ptq-4: accuracy .*\[2\/2 variants done, .* since the run started\]$/.test(l)
    ),
  );
  assert.ok(r.summary[1].bytes > 0);
  assert.ok(await exists(join(dir, "cache", "vww")), "the cache went to dataRoot");
  // no validation images (valFraction 0): an error before anything is written
  const before = [...Deno.readDirSync(join(dir, "runs", "vww-run"))].length;
  await assert.rejects(
    () =>
      runExperiment({
        path,
        resolve: { dataDir: vww, set: ["dataset.options.valFraction=0"] },
        outRoot: join(dir, "runs"),
        dataRoot: join(dir, "cache"),
        progress: quiet,
      }),
    /: dataset vww has no validation images with these options \(\{.*"valFraction":0/,
  );
  assert.equal([...Deno.readDirSync(join(dir, "runs", "vww-run"))].length, before);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("preflight: the mixed budget's floor is the all-lowest-bits model, exactly", () => {
  const v = resolveExperiment(personDetect).variants.find((x) => x.name === "qgt-mixed")!;
  const train = {
    name: "t",
    shape: [96, 96, 1] as [number, number, number],
    classNames: ["non_person", "person"],
    images: new Uint8Array(0),
    labels: new Uint8Array(64), // 64 training images: two batches
  };
  preflight(v, train); // the shipped 81 KB budget is reachable
  const withBudget = (budgetBytes: number) => ({
    ...v,
    qgt: { ...v.qgt, mixed: { ...v.qgt.mixed!, budgetBytes } },
  });
  let floor = NaN;
  try {
    preflight(withBudget(1000), train);
  } catch (e) {
    floor = Number((e as Error).message.match(/allow \((\d+) bytes/)![1]);
  }
  assert.ok(floor > 1000 && floor < 80971, `floor ${floor}`);
  preflight(withBudget(floor), train); // exactly the floor fits
  assert.throws(() => preflight(withBudget(floor - 1), train), /budgetBytes: \d+ is below/);
});

Deno.test("a run stopped after its first epoch and resumed reproduces the uninterrupted tables", async () => {
  const full = await run(await Deno.makeTempDir());
  for (const stopAfter of [1, 4]) {
    const out = await Deno.makeTempDir();
    let stopped = false;
    try {
      await run(out, { stopAfterEpochs: stopAfter });
    } catch (e) {
      if (!(e instanceof StopRequested)) throw e;
      stopped = true;
    }
    assert.ok(stopped);
    const runs = [...Deno.readDirSync(join(out, "smoke"))];
    assert.equal(runs.length, 1);
    const dir = join(out, "smoke", runs[0].name);
    const rec = JSON.parse(await read(dir, "run.json")) as RunRecord;
    assert.equal(rec.status, "running"); // incomplete, no tables written
    assert.ok(!(await exists(join(dir, "summary.csv"))));
    if (stopAfter === 1) {
      // while another live Deno process owns the run, --resume leaves it alone
      const other = new Deno.Command(Deno.execPath(), {
        args: ["eval", "await new Promise((r) => setTimeout(r, 60000))"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await Deno.writeTextFile(join(dir, "run.json"), JSON.stringify({ ...rec, pid: other.pid }));
      await assert.rejects(
        () => run(out, { resume: true }),
        /--resume: no incomplete run of smoke/,
      );
      await assert.rejects(
        () => run(out, { resume: rec.runId }),
        new RegExp(`--resume: run ${rec.runId} is still running \\(process ${other.pid}\\)`),
      );
      other.kill();
      await other.status;
      await Deno.writeTextFile(join(dir, "run.json"), JSON.stringify(rec));
    }
    // the interrupted variant's compute time up to its checkpoint is in run.json and the
    // checkpoint; pretend the earlier process had spent 1000 s to see the resume add to it
    const [name] = Object.entries(rec.variants).find(([, v]) => v.status === "running")!;
    const statePath = join(dir, "variants", name, "state.qgtw");
    const saved = await loadCheckpoint(statePath);
    assert.ok((rec.variants[name].seconds ?? 0) > 0);
    assert.equal(saved.meta.seconds, rec.variants[name].seconds);
    await saveCheckpoint(statePath, saved.arrays, { ...saved.meta, seconds: 1000 });
    // the second time, pretend the run started at another commit with a dirty tree
    const started = stopAfter === 1 ? rec.git : { commit: "f".repeat(40), dirty: true };
    await Deno.writeTextFile(join(dir, "run.json"), JSON.stringify({ ...rec, git: started }));
    const lines: string[] = [];
    const t = performance.now();
    const resumed = await run(out, {
      resume: true,
      progress: { status() {}, line: (l) => lines.push(l) },
    });
    const resumeSeconds = (performance.now() - t) / 1000;
    assert.equal(resumed.runDir, dir);
    // run.json keeps the commit the run started at and records the resume's
    const after = JSON.parse(await read(dir, "run.json")) as RunRecord;
    const total = after.variants[name].seconds!;
    assert.ok(total > 1000 && total < 1000 + resumeSeconds, `${name}: ${total} s`);
    assert.deepStrictEqual(after.git, started);
    assert.equal(after.resumed?.length, 1);
    assert.equal(after.resumed![0].commit, rec.git.commit);
    const note = lines.find((l) => l.startsWith("note: run "));
    if (stopAfter === 1) assert.equal(note, undefined);
    else {
      assert.equal(
        note,
        `note: run ${rec.runId} ran at commit fffffff (dirty) and resumes at ${
          rec.git.commit.slice(0, 7)
        }${rec.git.dirty ? " (dirty)" : ""}; run.json records both (resumed)`,
      );
    }
    for (const f of ["metrics.csv", "summary.csv", "layers.csv", "layer_epochs.csv"]) {
      assert.equal(
        await read(resumed.runDir, f),
        await read(full.runDir, f),
        `${f} after resume (stopped after ${stopAfter})`,
      );
    }
  }
});

/** A complete fabricated run at commit aaaa…: float 90 %, q2 (2-bit QGT) 88 % in 100 bytes. */
const runAtA = (out: string) =>
  fabricateRun(out, {
    commit: "a".repeat(40),
    started: "2026-01-01T00:00:00Z",
    rows: "float,float,32,0.9,0.3,1000,1000,1,0\nq2,qgt,2,0.88,0.4,100,1000,10,2\n",
  });

Deno.test("compare: deltas between two fabricated runs and --fail-on-regression", async () => {
  const out = await Deno.makeTempDir();
  const B = "b".repeat(40);
  await runAtA(out);
  await fabricateRun(out, {
    commit: B,
    started: "2026-01-02T00:00:00Z",
    rows: "float,float,32,0.9,0.3,1000,1000,1,0\nq2,qgt,2,0.85,0.5,110,1000,9.0909,5\n",
  });
  const rep = await Deno.makeTempDir();
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
  const out = await Deno.makeTempDir();
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
  const none = await cli(["lib/cli/runs.ts", "--out", out, "--experiment", "nope"]);
  assert.equal(none.stdout.trim(), `no runs of nope in ${out}`);
});

Deno.test("two runs started at once both land complete", async () => {
  const out = await Deno.makeTempDir();
  const args = [
    "lib/cli/run.ts",
    SMOKE,
    "--out",
    out,
    "--quiet",
    "--variants",
    "float,ptq-4",
    ...SMALL.flatMap((s) => ["--set", s]),
  ];
  const [a, b] = await Promise.all([cli(args), cli(args)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const runs = [...Deno.readDirSync(join(out, "smoke"))];
  assert.equal(runs.length, 2);
  for (const r of runs) {
    const rec = JSON.parse(
      await Deno.readTextFile(join(out, "smoke", r.name, "run.json")),
    ) as RunRecord;
    assert.equal(rec.status, "complete");
    assert.ok(await exists(join(out, "smoke", r.name, "summary.csv")));
  }
});

Deno.test("CLI: bad flags and bad config give one clear line, exit non-zero and write nothing", async () => {
  const out = await Deno.makeTempDir(), empty = await Deno.makeTempDir();
  const vww = join(empty, "vww");
  const PD = "experiments/person-detect.ts";
  // [experiment, extra arguments, exit code, the one stderr line (or a pattern for it)]
  const cases: [string, string[], number, string | RegExp][] = [
    [SMOKE, ["--backend", "gpu"], 2, 'qgt: --backend: expected one of wasm, cpu, got "gpu"'],
    [SMOKE, ["--set", "train.epochs=-1"], 1, /^qgt: experiments\/smoke\.ts: train\.epochs: .*>=0/],
    ["experiments/nope.ts", [], 2, "qgt: experiments/nope.ts: experiment file not found"],
    [SMOKE, ["--variants", ","], 2, 'qgt: --variants: expected variant names a,b, got ","'],
    // settings that cannot work fail before anything trains or is written
    [
      SMOKE,
      ["--set", "dataset.options.trainCount=20", "--set", "train.batchSize=32"],
      1,
      "qgt: experiments/smoke.ts: variant float: train.batchSize 32 is more than the 20 training images",
    ],
    [
      PD,
      ["--quick", "--set", "variants.qgt-mixed.qgt.mixed.budgetBytes=5000"],
      1,
      /^qgt: experiments\/person-detect\.ts: variants\.qgt-mixed\.qgt\.mixed\.budgetBytes: 5000 is below the smallest model the candidates allow \(\d+ bytes estimated, every layer at 1 bits\)$/,
    ],
    [
      SMOKE,
      ["--set", "architecture.options.classes=3"],
      1,
      "qgt: experiments/smoke.ts: architecture.options.classes: 3, but dataset synthetic-person/train has 2 classes",
    ],
    [
      SMOKE,
      ["--set", 'variants.qat-4.qgt.layers={"conv1":{"bits":"float"}}'],
      1,
      'qgt: experiments/smoke.ts: variants.qat-4.qgt.layers.conv1.bits: "float" leaves the layer unquantized, but a run exports every quantized variant, which needs every weight layer at 1-8 bits',
    ],
    // a data folder that is not there
    [
      PD,
      ["--quick", "--data", vww],
      1,
      `qgt: vww: ${
        join(vww, "non_person")
      } not found; expected ${vww}/{person,non_person}/*.jpg (the MLPerf Tiny layout)`,
    ],
  ];
  for (const [path, extra, code, line] of cases) {
    const r = await cli(["lib/cli/run.ts", path, "--out", out, ...extra]);
    const what = `${path} ${extra.join(" ")}`;
    assert.equal(r.code, code, `${what}: ${r.stderr}`);
    if (typeof line === "string") assert.equal(r.stderr.trim(), line, what);
    else assert.match(r.stderr.trim(), line, what);
  }
  assert.equal([...Deno.readDirSync(out)].length, 0, "files were written");
});

Deno.test("CLI: Ctrl-C stops a run with exit 130 and prints the command that resumes it", async () => {
  const out = await Deno.makeTempDir();
  const args = [
    SMOKE,
    "--out",
    out,
    ...SMALL.flatMap((s) => ["--set", s]),
    "--set",
    "train.epochs=12",
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/cli/run.ts", ...args],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  // read stderr until the first epoch is done, interrupt, then read the rest
  let err = "", killed = false;
  const dec = new TextDecoder(), reader = child.stderr.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    err += dec.decode(r.value);
    if (!killed && /float\/float epoch 1\/12/.test(err)) {
      child.kill("SIGINT");
      killed = true;
    }
  }
  const { code } = await child.status;
  assert.ok(killed, err);
  assert.equal(code, 130);
  const hint = err.trim().split("\n").pop()!;
  assert.equal(
    hint,
    `qgt: interrupted; continue from the last epoch checkpoint with: deno task run ${
      args.join(" ")
    } --resume`,
  );
  // the printed command continues the same run to the end
  const again = await cli(["lib/cli/run.ts", ...hint.split(" deno task run ")[1].split(" ")]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /resuming run /);
  const runs = [...Deno.readDirSync(join(out, "smoke"))];
  assert.equal(runs.length, 1);
  const rec = JSON.parse(await read(join(out, "smoke", runs[0].name), "run.json")) as RunRecord;
  assert.equal(rec.status, "complete");
});

Deno.test("phases by mode: QAT / QGT with fake quantization, BatchNorm folded or live", () => {
  const lam = { type: "linear" as const, from: 0, to: 3, start: 0.5 };
  const e = resolveExperiment({
    ...smoke,
    variants: {
      float: {},
      qat: { qgt: { mode: "qat", bits: 2, epochs: 2 } },
      "qat-live": { qgt: { mode: "qat", bits: 2, epochs: 2, liveBatchNorm: true } },
      "qgt-ste": { qgt: { mode: "qgt", bits: 2, epochs: 3, fakeQuant: true, lambda: lam } },
      "qgt-live": {
        qgt: { mode: "qgt", bits: 2, epochs: 3, fakeQuant: true, liveBatchNorm: true, lambda: lam },
      },
      "qgt-reg": { qgt: { mode: "qgt", bits: 2, epochs: 3, lambda: lam } },
    },
  });
  const p = Object.fromEntries(e.variants.map((v) => [v.name, planPhases(v)]));
  const shape = (name: string) =>
    p[name].map((ph) => ({
      name: ph.name,
      folded: ph.folded,
      epochs: ph.epochs,
      fq: !!ph.setup?.fakeQuant,
      reg: ph.setup?.regularizer ?? null,
      act: !!ph.setup?.activations,
    }));
  assert.deepStrictEqual(shape("qat"), [
    { name: "qat", folded: true, epochs: 2, fq: true, reg: null, act: true },
  ]);
  assert.deepStrictEqual(shape("qat-live"), [
    { name: "qat", folded: false, epochs: 2, fq: true, reg: null, act: false },
  ]);
  // fake quantization + regularizer in one phase, no fine-tune by default
  assert.deepStrictEqual(shape("qgt-ste"), [
    { name: "qgt-reg", folded: true, epochs: 3, fq: true, reg: "grid", act: true },
  ]);
  assert.deepStrictEqual(shape("qgt-live"), [
    { name: "qgt-reg", folded: false, epochs: 3, fq: true, reg: "grid", act: false },
  ]);
  // the regularizer alone on the float network, then a folded fake-quantized epoch at the final lambda
  assert.deepStrictEqual(shape("qgt-reg"), [
    { name: "qgt-reg", folded: false, epochs: 3, fq: false, reg: "grid", act: false },
    { name: "qgt-finetune", folded: true, epochs: 1, fq: true, reg: "grid", act: true },
  ]);
  assert.deepStrictEqual(p["qgt-reg"][1].lambda, { type: "constant", lambda: 3 });
  assert.deepStrictEqual(p.float.map((ph) => ph.folded), [false]);
  // endsWithLiveBatchNorm (what bnReestimate is validated against) agrees with the planned phases
  const combos = [];
  for (const mode of ["qat", "qgt"] as const) {
    for (const liveBatchNorm of [undefined, true, false]) {
      for (const fakeQuant of [undefined, true, false]) {
        for (const finetuneEpochs of [undefined, 0, 1]) {
          for (const from of [undefined, "scratch" as const]) {
            combos.push({ mode, bits: 2, liveBatchNorm, fakeQuant, finetuneEpochs, from });
          }
        }
      }
    }
  }
  const all = resolveExperiment({
    ...smoke,
    variants: Object.fromEntries(combos.map((q, i) => [
      `v${i}`,
      { qgt: Object.fromEntries(Object.entries(q).filter(([, x]) => x !== undefined)) },
    ])),
  }).variants;
  let live = 0;
  for (const v of all) {
    const phases = planPhases(v);
    const want = phases.length > 0 && !phases[phases.length - 1].folded;
    assert.equal(endsWithLiveBatchNorm(v.qgt), want, JSON.stringify(v.qgt));
    live += want ? 1 : 0;
  }
  assert.ok(live > 10 && live < all.length, `${live} of ${all.length}`);
});

Deno.test("bnReestimate: training is unchanged, the final BatchNorm statistics (and so the result) are re-estimated", async () => {
  const qat = { mode: "qat", bits: 2, epochs: 1, liveBatchNorm: true };
  const lines: string[] = [];
  const { r, metrics } = await runSmokeWith("bnre", {
    float: {},
    qat: { qgt: qat },
    "qat-bnre": { qgt: { ...qat, bnReestimate: { images: 96 } } },
  }, { status() {}, line: (t) => lines.push(t) });
  const row = (v: string) => r.summary.find((s) => s.variant === v)!;
  const curve = (v: string) =>
    metrics.split("\n").filter((l) => l.startsWith(`${v},`) && /,train,/.test(l))
      .map((l) => l.split(",").slice(2).join(","));
  assert.ok(curve("qat").length > 0);
  assert.deepStrictEqual(curve("qat-bnre"), curve("qat"));
  assert.notEqual(row("qat-bnre").loss, row("qat").loss);
  assert.ok(
    lines.some((l) =>
      /^qat-bnre: BatchNorm statistics re-estimated on 96 training images with quantized weights \(largest variance change [0-9.]+ % in \w+\)$/
        .test(l)
    ),
    lines.join("\n"),
  );
  assert.ok(!lines.some((l) => l.startsWith("qat: BatchNorm")));
});

Deno.test("quantized variants fine-tune on the same batches: QGT with lambda 0 reproduces QAT exactly", async () => {
  // the fine-tuning data stream is shared per seed, so a QGT variant whose
  // pull is zero takes exactly QAT's steps; a non-zero pull must change them
  const qgt = (lambda: number, decoupled: boolean) => ({
    qgt: {
      mode: "qgt",
      bits: 2,
      epochs: 1,
      fakeQuant: true,
      liveBatchNorm: true,
      decoupled,
      lambda: { type: "constant", lambda },
    },
  });
  const { r, metrics } = await runSmokeWith("paired", {
    float: {},
    qat: { qgt: { mode: "qat", bits: 2, epochs: 1, liveBatchNorm: true } },
    "qgt-0": qgt(0, false),
    "qgt-dec-0": qgt(0, true),
    "qgt-dec-300": qgt(300, true),
  });
  const row = (v: string) => r.summary.find((s) => s.variant === v)!;
  const curve = (v: string) =>
    metrics.split("\n").filter((l) => l.startsWith(`${v},`) && /,(loss|accuracy),/.test(l))
      .map((l) => l.split(",").slice(2).join(","));
  for (const v of ["qgt-0", "qgt-dec-0"]) {
    assert.equal(row(v).accuracy, row("qat").accuracy, v);
    assert.equal(row(v).loss, row("qat").loss, v);
    assert.deepStrictEqual(curve(v), curve("qat"), v);
  }
  assert.notEqual(row("qgt-dec-300").loss, row("qat").loss);
});

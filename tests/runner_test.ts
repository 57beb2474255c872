// The experiment runner: determinism, float reuse, VWW through a run, resume, concurrent runs, the CLI.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { RunAborted, runExperiment } from "../lib/experiment/runner.ts";
import type { RunRecord } from "../lib/run/run_dir.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/run/checkpoint.ts";
import { consoleProgress } from "../lib/util/progress.ts";
import { exists } from "../lib/util/fs.ts";
import { encodePng } from "../lib/data/image.ts";
import { loadVww } from "../lib/data/vww.ts";
import { assert } from "./assert.ts";
import { cli, interruptAt, SMALL, stopAfterEpochs } from "./helpers.ts";

const quiet = consoleProgress({ quiet: true });
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
    ...extra,
  });
}

const read = (dir: string, f: string) => Deno.readTextFile(join(dir, f));

Deno.test("same seed twice gives byte-identical metrics.csv and summary.csv; another seed changes them", async () => {
  const a = await run(await tempDir());
  const b = await run(await tempDir());
  for (const f of ["metrics.csv", "summary.csv", "layers.csv", "layer_epochs.csv"]) {
    assert.equal(
      await read(a.runDir, f),
      await read(b.runDir, f),
      `${f} differs between identical runs`,
    );
  }
  const c = await run(await tempDir(), { resolve: { set: SMALL, seed: 8 } });
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
  const out = await tempDir();
  const a = await run(out);
  const b = await run(out);
  const rec = JSON.parse(await read(b.runDir, "run.json")) as RunRecord;
  assert.ok(rec.variants.float.reused, "float was retrained");
  assert.equal(await read(a.runDir, "metrics.csv"), await read(b.runDir, "metrics.csv"));
});

Deno.test("--data switches to VWW: the real loader through a run, capped by the experiment's counts", async () => {
  // a VWW folder of 32x32 PNGs: bright squares are people, dark ones are not
  const dir = await tempDir(), vww = join(dir, "vww");
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
  });
  assert.equal(r.record.status, "complete");
  assert.equal(r.record.dataset.name, "vww");
  // the subset the options asked for, as a fixed subset (the same images on every load)
  const available = (await loadVww({ dir: vww })).available;
  assert.ok(available.train > 20 && available.val > 6, JSON.stringify(available));
  assert.equal(r.record.dataset.options.trainCount, 20);
  assert.equal(r.record.dataset.options.valCount, 6);
  const once = await loadVww({ dir: vww, trainCount: 20, valCount: 6 });
  const twice = await loadVww({ dir: vww, trainCount: 20, valCount: 6 });
  assert.equal(once.train.labels.length, 20);
  assert.equal(once.val.labels.length, 6);
  assert.deepStrictEqual(twice.train.images, once.train.images);
  assert.deepStrictEqual(r.summary.map((s) => s.variant), ["float", "ptq-4"]);
  // each finished variant says how far the run is (k of n variants)
  for (const [k, v] of ["float", "ptq-4"].entries()) {
    const said = lines.find((l) => l.startsWith(`${v}: accuracy`));
    assert.ok(said?.includes(`${k + 1}/2`), `${v}: ${said}`);
  }
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

Deno.test("a run stopped after its first epoch and resumed reproduces the uninterrupted tables", async () => {
  const full = await run(await tempDir());
  for (const stopAfter of [1, 4]) {
    const out = await tempDir();
    let stopped = false;
    try {
      await run(out, stopAfterEpochs(stopAfter));
    } catch (e) {
      if (!(e instanceof RunAborted)) throw e;
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
        new RegExp(
          `--resume: run ${rec.runId} is still running \\(process ${other.pid}\\); wait for it or stop it`,
        ),
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
    // a resume at another commit says so, naming both commits (run.json records both, above)
    const note = lines.find((l) => l.startsWith("note:") && l.includes(rec.runId));
    if (stopAfter === 1) assert.equal(note, undefined);
    else assert.ok(note?.includes("fffffff") && note.includes(rec.git.commit.slice(0, 7)), note);
    for (const f of ["metrics.csv", "summary.csv", "layers.csv", "layer_epochs.csv"]) {
      assert.equal(
        await read(resumed.runDir, f),
        await read(full.runDir, f),
        `${f} after resume (stopped after ${stopAfter})`,
      );
    }
  }
});

Deno.test("two runs started at once both land complete", async () => {
  const out = await tempDir();
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
  const out = await tempDir(), empty = await tempDir();
  const vww = join(empty, "vww");
  const PD = "experiments/person-detect.ts";
  // [experiment, extra arguments, exit code, the one stderr line (or a pattern for it)]
  const cases: [string, string[], number, string | RegExp][] = [
    [
      SMOKE,
      ["--backend", "gpu"],
      2,
      'qgt: --backend: expected one of wasm, native, cpu, auto, got "gpu"',
    ],
    [SMOKE, ["--set", "train.epochs=-1"], 2, /^qgt: --set train\.epochs=-1: train\.epochs: .*>=1/],
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
      `qgt: dataset vww: ${
        join(vww, "non_person")
      } not found; expected ${vww}/{person,non_person}/*.jpg (the MLPerf Tiny layout)`,
    ],
  ];
  for (const [path, extra, code, line] of cases) {
    const r = await cli(["lib/cli/run.ts", path, "--out", out, ...extra]);
    const what = `${path} ${extra.join(" ")}`;
    assert.equal(r.code, code, `${what}: ${r.stderr}`);
    // one error line; on a slow machine the dataset's progress may print before it
    const lines = r.stderr.trim().split("\n"), last = lines.at(-1)!;
    for (const p of lines.slice(0, -1)) {
      assert.match(p, /^(generating|decoding|reading) [a-z ]*images: \d+(\/\d+)? images/, what);
    }
    if (typeof line === "string") assert.equal(last, line, what);
    else assert.match(last, line, what);
  }
  assert.equal([...Deno.readDirSync(out)].length, 0, "files were written");
});

Deno.test("CLI: Ctrl-C stops a run with exit 130, leaves only documented files and prints a pasteable command that resumes it", async () => {
  const out = await tempDir();
  const args = [
    SMOKE,
    "--out",
    out,
    ...SMALL.flatMap((s) => ["--set", s]),
    "--set",
    "train.epochs=12",
  ];
  // read stderr until the first epoch is done, interrupt, then read the rest; no deno on the
  // PATH (as after the README's npx set-up), only npx's own temporary bin
  const { code, stderr: err, interrupted: killed } = await interruptAt(
    ["lib/cli/run.ts", ...args],
    /float\/float epoch 1\/12/,
    { PATH: "/root/.npm/_npx/0/node_modules/.bin:/usr/bin:/bin" },
  );
  assert.ok(killed, err);
  assert.equal(code, 130);
  const hint = err.trim().split("\n").pop()!;
  assert.equal(
    hint,
    `qgt: interrupted; continue from the last epoch checkpoint with: npx -y deno@${Deno.version.deno} task run ${
      args.join(" ")
    } --resume`,
  );
  // the printed command continues the same run to the end
  const again = await cli(["lib/cli/run.ts", ...hint.split(" task run ")[1].split(" ")]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /resuming run /);
  const runs = [...Deno.readDirSync(join(out, "smoke"))];
  assert.equal(runs.length, 1);
  const rec = JSON.parse(await read(join(out, "smoke", runs[0].name), "run.json")) as RunRecord;
  assert.equal(rec.status, "complete");
});

// What a new user met on a fresh clone (#41), one case each: a model scored on another task's
// images, figures that deleted committed text, usage errors that exited 1 or blamed the module,
// settings that made no sense, hidden warnings, temporary files left by Ctrl-C, help without
// flags, derived files written into the committed results.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { buildQgt } from "../lib/format/model_file.ts";
import { encodePng } from "../lib/data/image.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { RESULTS_ROOT } from "../lib/run/model_images.ts";
import type { RunRecord } from "../lib/run/run_dir.ts";
import { assert } from "./assert.ts";
import { cli, fabricateRun, interruptAt, randomExport, SMALL } from "./helpers.ts";

const SMOKE = "experiments/smoke.ts";

/** A random exportable network with three classes, named as the user's folder names them. */
function threeClassModel(names: string[]): Uint8Array {
  for (let seed = 1;; seed++) {
    const src = randomExport(seed);
    if (src.arch.classes !== 3 || src.arch.inputShape[2] !== 1) continue;
    return buildQgt({ ...src, classNames: names });
  }
}

/** A folder of small grey PNGs, `n` per class, one subfolder per class. */
async function folder(dir: string, classes: string[], n: number): Promise<string> {
  for (const [k, c] of classes.entries()) {
    await Deno.mkdir(join(dir, c), { recursive: true });
    for (let i = 0; i < n; i++) {
      const px = new Uint8Array(8 * 8 * 4).map((_, j) => (j % 4 === 3 ? 255 : (j * (k + 1)) % 256));
      await Deno.writeFile(join(dir, c, `${i}.png`), encodePng({ width: 8, height: 8, data: px }));
    }
  }
  return dir;
}

/** Every file below `dir`, as paths relative to it, sorted. */
async function filesBelow(dir: string, at = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, at))) {
    const rel = at ? `${at}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await filesBelow(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** The SHA-256 of every file below `dir`, by relative path. */
async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await filesBelow(dir)) {
    const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(join(dir, f)));
    out[f] = [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return out;
}

const TASKS = [
  "run",
  "runs",
  "compare",
  "seeds",
  "sweep",
  "export",
  "eval-model",
  "mcu",
  "tflite",
  "data",
  "figures",
  "bench",
];
const script = (task: string) => `lib/cli/${task.replace("-", "_")}.ts`;

Deno.test("new user: each bad input gives one line blaming the flag or file, exit 2 for usage and 1 for data, nothing written", async () => {
  const tmp = await tempDir();
  const names = ["hstripes", "rings", "vstripes"];
  const model = join(tmp, "model.qgt");
  await Deno.writeFile(model, threeClassModel(names));
  const two = await folder(join(tmp, "two"), ["hstripes", "rings"], 3);
  const renamed = await folder(join(tmp, "renamed"), ["a", "b", "c"], 3);
  const few = await folder(join(tmp, "few"), names, 4); // 12 images: none in the 10 % validation part
  const empty = join(tmp, "no-runs"), figs = join(tmp, "figures"), out = join(tmp, "out");
  await Deno.mkdir(empty);
  await Deno.mkdir(out);
  const both = (a: string[], b: string[]) =>
    `the model's classes ${JSON.stringify(a)} are not the data's ${JSON.stringify(b)}`;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // [task, arguments, exit code, the one stderr line (or a pattern for it)]
  const cases: [string, string[], number, string | RegExp][] = [
    // 1: classes checked against the data's, both lists named
    [
      "eval-model",
      [model, "--dataset", "folder", "--data", two],
      1,
      new RegExp(`^qgt: ${esc(model)}: ${esc(both(names, ["hstripes", "rings"]))}`),
    ],
    [
      "eval-model",
      [model, "--dataset", "folder", "--data", renamed],
      1,
      new RegExp(`^qgt: ${esc(model)}: ${esc(both(names, ["a", "b", "c"]))}`),
    ],
    [
      "mcu",
      [model, "--dataset", "folder", "--data", two, "--out", join(out, "mcu")],
      1,
      new RegExp(esc(both(names, ["hstripes", "rings"]))),
    ],
    [
      "eval-model",
      [model, "--dataset", "folder", "--data", few],
      1,
      new RegExp(
        `^qgt: folder ${esc(few)}: no validation images .*score every image with --split all$`,
      ),
    ],
    [
      "eval-model",
      [model, "--split", "train"],
      2,
      'qgt: --split: expected one of val, all, got "train"',
    ],
    ["eval-model", [model, "--images", "0"], 2, 'qgt: --images: expected an integer >= 1, got "0"'],
    ["tflite", [model, "--images", "x"], 2, 'qgt: --images: expected an integer >= 1, got "x"'],
    // 2: figures with nothing to draw
    ["figures", ["--runs", empty, "--out", figs], 1, /^qgt: .*no complete runs .*nothing written/],
    // 6, 7: usage errors exit 2 and blame the flag; settings that make no sense are refused
    [
      "run",
      [SMOKE, "--variants", "qat-3"],
      2,
      'qgt: --variants: experiments/smoke.ts has no variant "qat-3" (has float, ptq-4, qat-4, qgt-4)',
    ],
    [
      "run",
      [SMOKE, "--set", "train.epochs=abc"],
      2,
      'qgt: --set train.epochs=abc: train.epochs: Invalid type: Expected number but received "abc"',
    ],
    [
      "run",
      [SMOKE, "--set", "train.epochs=0"],
      2,
      "qgt: --set train.epochs=0: train.epochs: Invalid value: Expected >=1 but received 0",
    ],
    [
      "run",
      [SMOKE, "--set", "train.batchSize=-4"],
      2,
      "qgt: --set train.batchSize=-4: train.batchSize: Invalid value: Expected >=1 but received -4",
    ],
    [
      "run",
      [SMOKE, "--set", "dataset.options.trainCount=0"],
      2,
      /^qgt: --set dataset\.options\.trainCount=0: dataset\.options\.trainCount: Invalid value: Expected >=1/,
    ],
    [
      "run",
      [SMOKE, "--set", "variants.qat-4.qgt.epochs=0"],
      2,
      /^qgt: --set variants\.qat-4\.qgt\.epochs=0: variants\.qat-4\.qgt\.epochs: Invalid value: Expected >=1/,
    ],
    [
      "run",
      [SMOKE, "--set", "train.gradKernels=fast"],
      2,
      'qgt: --set train.gradKernels=fast: train.gradKernels: Invalid type: Expected ("tfjs" | "qgt") but received "fast"',
    ],
    // every task: an unknown flag is a usage error naming it
    ...TASKS.map((t): [string, string[], number, RegExp] => [
      t,
      ["--bogus"],
      2,
      /^qgt: .*'--bogus'/,
    ]),
  ];
  for (const [task, args, code, line] of cases) {
    const withOut = task === "run" ? [...args, "--out", out] : args;
    const r = await cli([script(task), ...withOut]);
    const what = `${task} ${args.join(" ")}`;
    const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("note:"));
    assert.equal(r.code, code, `${what}: ${r.stderr}`);
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    if (typeof line === "string") assert.equal(lines[0], line, what);
    else assert.match(lines[0], line, what);
  }
  assert.deepStrictEqual(await filesBelow(out), [], "files were written");
  assert.ok(!(await Deno.stat(figs).catch(() => null)), "figures wrote into --out");
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("new user: eval-model says which images and how many it scored; --split all and --images N", async () => {
  const tmp = await tempDir();
  const names = ["hstripes", "rings", "vstripes"];
  const model = join(tmp, "model.qgt");
  await Deno.writeFile(model, threeClassModel(names));
  const dir = await folder(join(tmp, "mine"), names, 10);
  const flags = ["--dataset", "folder", "--data", dir];
  const all = await cli([script("eval-model"), model, ...flags, "--split", "all"]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /images: all 30 images \(training and validation\) of folder/);
  assert.match(all.stdout, /accuracy \d+\.\d\d% on 30 images/);
  const val = await cli([script("eval-model"), model, ...flags]);
  assert.equal(val.code, 0, val.stderr);
  const n = Number(val.stdout.match(/accuracy \d+\.\d\d% on (\d+) images/)?.[1]);
  assert.ok(n >= 1 && n < 30, val.stdout); // the validation fraction only, and it says so
  assert.match(val.stdout, new RegExp(`images: all ${n} validation images of folder`));
  const first = await cli([
    script("eval-model"),
    model,
    ...flags,
    "--split",
    "all",
    "--images",
    "5",
  ]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /images: the first 5 of the 30 images/);
  assert.match(first.stdout, /on 5 images/);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("new user: figures with no runs leaves every committed figure file as it was", async () => {
  const tmp = await tempDir();
  const dir = join(REPO_ROOT, "reports", "figures");
  const before = await fingerprint(dir);
  // the default --out (the committed reports/figures), an empty runs root: a fresh clone
  const r = await cli([script("figures"), "--runs", tmp]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no complete runs/);
  assert.deepStrictEqual(await fingerprint(dir), before);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("new user: every task's --help lists each flag of its usage line with a description", async () => {
  for (const task of TASKS) {
    const r = await cli([script(task), "--help"]);
    assert.equal(r.code, 0, `${task}: ${r.stderr}`);
    const [usage, flags = ""] = r.stdout.split("\nflags:\n");
    const described = new Map(
      flags.split("\n").map((l) => l.match(/^\s+(?:-\w, )?(--[\w-]+)(?: \S+)?\s{2,}(\S.*)$/))
        .filter((m) => m !== null).map((m) => [m![1], m![2]]),
    );
    const named = [...new Set(usage.match(/--[\w-]+/g) ?? [])];
    assert.ok(named.length > 0 || task === "runs", `${task}: no flags in the usage line`);
    for (const f of named) {
      assert.ok(described.get(f)?.length, `${task} --help: ${f} has no description:\n${r.stdout}`);
    }
    assert.ok(described.has("--help"), `${task}: --help not listed`);
  }
});

Deno.test("new user: a run too short to learn is warned about, on stderr even with --quiet, in run.json, report.html and each export's summary.md", async () => {
  const out = await tempDir();
  const r = await cli([
    script("run"),
    SMOKE,
    "--out",
    out,
    "--quiet",
    "--variants",
    "float,ptq-4",
    ...SMALL.flatMap((s) => ["--set", s]),
  ]);
  assert.equal(r.code, 0, r.stderr);
  // SMALL: 160 training images in batches of 16 for 2 epochs
  const want =
    "warning: the float network trains for only 20 steps (2 epochs x 10 batches of 16 from 160 training images)";
  assert.ok(r.stderr.includes(want), r.stderr);
  const [run] = await filesBelow(join(out, "smoke")).then((f) => [f[0].split("/")[0]]);
  const dir = join(out, "smoke", run);
  const rec = JSON.parse(await Deno.readTextFile(join(dir, "run.json"))) as RunRecord;
  assert.ok(rec.warnings?.some((w) => w.startsWith(want)), JSON.stringify(rec.warnings));
  assert.equal(rec.progress, undefined, "a complete run keeps no progress");
  const html = await Deno.readTextFile(join(dir, "report.html"));
  assert.match(html, /<h2[^>]*>Warnings<\/h2>/);
  assert.ok(html.includes(want.replace("warning: ", "")), "report.html lacks the warning");
  const md = await Deno.readTextFile(join(dir, "variants", "ptq-4", "export", "summary.md"));
  assert.ok(md.includes("the float network trains for only 20 steps"), md);
  await Deno.remove(out, { recursive: true });
});

Deno.test("new user: Ctrl-C at several points leaves only documented files, and the next start removes an interrupted write", async () => {
  const out = await tempDir();
  const args = [SMOKE, "--out", out, ...SMALL.flatMap((s) => ["--set", s])];
  // docs/run-directory.md's files
  const documented = [
    /^run\.json$/,
    /^(summary|metrics|layers|layer_epochs|sensitivity)\.csv$/,
    /^(curves|size_accuracy|layers|layer_epochs)\.(vl\.json|svg)$/,
    /^report\.html$/,
    /^variants\/[\w.-]+\/(final\.qgtw|result\.json|state\.qgtw)$/,
    /^variants\/[\w.-]+\/export\/(model\.qgt|model_data\.[ch]|model\.tflite|model\.json|weights\.bin|summary\.(json|md))$/,
  ];
  const check = async (when: string) => {
    const runs = await Array.fromAsync(Deno.readDir(join(out, "smoke")));
    assert.equal(runs.length, 1, when);
    const files = await filesBelow(join(out, "smoke", runs[0].name));
    const odd = files.filter((f) => !documented.some((d) => d.test(f)));
    assert.deepStrictEqual(odd, [], `${when}: undocumented files`);
    return join(out, "smoke", runs[0].name);
  };
  /** Runs until stderr matches `at`, interrupts, and returns the exit code. */
  const runUntil = async (extra: string[], at: RegExp) => {
    const r = await interruptAt([script("run"), ...args, ...extra], at);
    return { code: r.code, err: r.stderr };
  };
  const points: [string[], RegExp][] = [
    [[], /float\/float epoch 1\/2/], // in the float network's training, after a checkpoint
    [["--resume"], /ptq-4: accuracy/], // right after a finished variant, as the next starts
    [["--resume"], /qat-4.*epoch 1\/1/], // at the end of a fake-quantized phase, before its export
  ];
  let dir = "";
  for (const [i, [extra, at]] of points.entries()) {
    if (dir) {
      // a write the previous process was killed in: the next start removes it
      await Deno.writeTextFile(join(dir, "variants", "stray.json.4242-beef.1.tmp"), "{");
    }
    const r = await runUntil(extra, at);
    assert.ok(r.code === 130 || r.code === 0, `point ${i}: exit ${r.code}\n${r.err}`);
    dir = await check(`after interrupt ${i} (${at})`);
  }
  const done = await cli([script("run"), ...args, "--resume"]);
  assert.equal(done.code, 0, done.stderr);
  dir = await check("after the run completed");
  const rec = JSON.parse(await Deno.readTextFile(join(dir, "run.json"))) as RunRecord;
  assert.equal(rec.status, "complete");
  await Deno.remove(out, { recursive: true });
});

Deno.test("new user: runs shows a running run's position and ETA", async () => {
  const out = await tempDir();
  const dir = await fabricateRun(out, { commit: "c".repeat(40), started: "2026-01-01", rows: "" });
  const rec = JSON.parse(await Deno.readTextFile(join(dir, "run.json"))) as RunRecord;
  rec.status = "running";
  rec.pid = Deno.pid; // this test process: alive
  rec.variants = {
    float: { hash: "h", status: "running" },
    "qat-2": { hash: "h", status: "pending" },
  };
  rec.progress = {
    variant: "float",
    index: 1,
    of: 2,
    step: 40,
    steps: 100,
    etaSeconds: 600,
    at: new Date().toISOString(),
  };
  await Deno.writeTextFile(join(dir, "run.json"), JSON.stringify(rec));
  const r = await cli([script("runs"), "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /0\/2 variants done; now variant 1\/2 float, step 40\/100, ETA (10m00s|9m5\ds)/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test({
  name:
    "new user: tflite and mcu on a committed model write under reports/runs/derived, never into reports/results",
  ignore: !(await Deno.stat("/usr/share/datasets/fashion-mnist").catch(() => null)),
  fn: async () => {
    const run = "fashion-mnist/20261201-121052-e11eb06-9229f147";
    const model = join(RESULTS_ROOT, run, "variants", "qat-2", "export", "model.qgt");
    const before = await fingerprint(join(RESULTS_ROOT, run));
    const r = await cli([script("tflite"), model, "--images", "20"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /the first 20 of the 10000 validation images/);
    const derived = join(
      REPO_ROOT,
      "reports",
      "runs",
      "derived",
      run,
      "variants",
      "qat-2",
      "export",
    );
    assert.ok(await Deno.stat(join(derived, "model.tflite")).catch(() => null), r.stdout);
    assert.deepStrictEqual(await fingerprint(join(RESULTS_ROOT, run)), before);
    await Deno.remove(join(REPO_ROOT, "reports", "runs", "derived", run), { recursive: true });
  },
});

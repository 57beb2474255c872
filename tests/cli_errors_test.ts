// What a new user meets first: every bad input gives one line naming the file, flag or field,
// exit 2 for bad flags and usage and 1 for bad data or files, and nothing on disk; no tfjs
// banner; summary tables in one unit per quantity, rounded; eval-model says which images.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { gzipSync } from "node:zlib";
import { buildQgt } from "../lib/format/model_file.ts";
import { encodePng } from "../lib/data/image.ts";
import { assert } from "./assert.ts";
import { cli, fabricateRun, handNet, randomExport, SMALL } from "./helpers.ts";

const SMOKE = "experiments/smoke.ts";

/** A Fashion-MNIST folder whose uncompressed training images file is cut short. */
async function truncatedIdx(dir: string): Promise<string> {
  const idx = (dims: number[], n: number) => {
    const b = new Uint8Array(4 + 4 * dims.length + n);
    const dv = new DataView(b.buffer);
    dv.setUint8(2, 0x08);
    dv.setUint8(3, dims.length);
    dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
    return b;
  };
  await Deno.writeFile(join(dir, "train-images-idx3-ubyte"), idx([10, 28, 28], 100)); // 7840 expected
  await Deno.writeFile(join(dir, "train-labels-idx1-ubyte.gz"), gzipSync(idx([10], 10)));
  await Deno.writeFile(join(dir, "t10k-images-idx3-ubyte.gz"), gzipSync(idx([1, 28, 28], 784)));
  await Deno.writeFile(join(dir, "t10k-labels-idx1-ubyte.gz"), gzipSync(idx([1], 1)));
  return dir;
}

Deno.test("bad inputs: one line naming what is wrong, exit 2 (usage) or 1 (data), nothing written", async () => {
  const tmp = await tempDir(), out = join(tmp, "out");
  await Deno.mkdir(out);
  const file = join(tmp, "a-file");
  await Deno.writeTextFile(file, "x");
  const syntax = join(tmp, "broken.ts");
  await Deno.writeTextFile(syntax, 'export default {\n  id: "x",\n  version: 1 x\n};\n');
  const fm = await truncatedIdx(await tempDir());
  const fmExp = join(tmp, "fm.ts");
  await Deno.writeTextFile(
    fmExp,
    `import f from ${
      JSON.stringify(new URL("../experiments/fashion-mnist.ts", import.meta.url).href)
    };\n` +
      `export default f;\n`,
  );
  // a VWW folder with an unreadable image
  const vww = join(tmp, "vww");
  for (const c of ["person", "non_person"]) {
    await Deno.mkdir(join(vww, c), { recursive: true });
    const px = new Uint8Array(32 * 32 * 4).fill(200);
    for (let i = 0; i < 3; i++) {
      await Deno.writeFile(
        join(vww, c, `${i}.png`),
        encodePng({ width: 32, height: 32, data: px }),
      );
    }
  }
  await Deno.writeTextFile(join(vww, "person", "bad.jpg"), "not a jpeg");
  // a run whose run.json is cut short, and one with only a float variant
  const runs = join(tmp, "runs");
  const damaged = await fabricateRun(runs, {
    commit: "a".repeat(40),
    started: "2026-01-01",
    rows: "",
  });
  const text = await Deno.readTextFile(join(damaged, "run.json"));
  await Deno.writeTextFile(join(damaged, "run.json"), text.slice(0, text.length - 20));
  const floatOnly = await fabricateRun(runs, {
    commit: "b".repeat(40),
    runId: "run-float",
    started: "2026-01-02",
    rows: "float,float,32,0.9,0.3,1000,1000,1,0\n",
  });
  const badModel = join(tmp, "model.qgt");
  const m = buildQgt(handNet());
  m[m.length - 1] ^= 1;
  await Deno.writeFile(badModel, m);

  const asym = join(tmp, "asym.qgt"); // 8-bit asymmetric weights spanning more than int8
  await Deno.writeFile(asym, buildQgt(randomExport(12)));

  const PD = "experiments/person-detect.ts";
  // [task script, arguments, exit code, the one stderr line (or a pattern for it)]
  const cases: [string, string[], number, string | RegExp][] = [
    [
      "run",
      [SMOKE, "--seed", "-1"],
      2,
      'qgt: --seed: expected an integer in [0, 2147483648], got "-1"',
    ],
    [
      "run",
      [syntax],
      1,
      new RegExp(`^qgt: ${syntax}:3:14: cannot load experiment module: SyntaxError: Expected ','`),
    ],
    [
      "run",
      [fmExp, "--data", fm],
      1,
      new RegExp(`^qgt: ${join(fm, "train-images-idx3-ubyte")}: truncated`),
    ],
    [
      "run",
      [SMOKE, "--set", "variants.qat-9.qgt.bits=2"],
      2,
      'qgt: --set variants.qat-9.qgt.bits: the experiment has no variant "qat-9" (it has float, ptq-4, qat-4, qgt-4); add variants in the experiment module',
    ],
    [
      "run",
      [SMOKE, "--set", "train.epoch=3"],
      2,
      'qgt: --set train.epoch: train has no field "epoch" (its fields: epochs, batchSize, optimizer, schedule, augment, threads, bnMomentum, gradKernels)',
    ],
    ["run", [SMOKE, "--data", file], 2, `qgt: --data: ${file} is a file; expected a directory`],
    ["run", [SMOKE, "--out", file], 2, `qgt: --out: ${file} is a file; expected a directory`],
    [
      "run",
      [PD, "--quick", "--data", vww, ...SMALL.flatMap((s) => ["--set", s])],
      1,
      /bad\.jpg: .*to skip unreadable images: (deno|npx -y deno@[\d.]+) task run <experiment\.ts> --set dataset\.options\.skipBadImages=true/,
    ],
    [
      "export",
      [damaged],
      1,
      new RegExp(`^qgt: ${join(damaged, "run.json")}: not valid JSON .*the file is damaged$`),
    ],
    [
      "export",
      [floatOnly, "--variant", "float"],
      2,
      "qgt: --variant float: a float variant has no quantized model to export (quantized variants: none)",
    ],
    [
      "compare",
      ["foo", "bar", "--out", runs],
      2,
      'qgt: compare: "foo" is not a revision git knows, nor the start of a recorded run\'s commit',
    ],
    [
      "eval-model",
      [badModel],
      1,
      new RegExp(`^qgt: ${badModel}: checksum mismatch \\(stored CRC-32 0x`),
    ],
    ["eval-model", [join(tmp, "none.qgt")], 1, `qgt: ${join(tmp, "none.qgt")}: file not found`],
    ["tflite", [badModel], 1, new RegExp(`^qgt: ${badModel}: checksum mismatch`)],
    ["tflite", [badModel, "--out", tmp], 2, `qgt: --out: ${tmp} is a directory, expected a file`],
    [
      "tflite",
      [asym],
      1,
      new RegExp(
        `^qgt: ${asym}: layer h: weights minus zero points span -247\.\.155, outside int8`,
      ),
    ],
  ];
  for (const [task, args, code, line] of cases) {
    const script = `lib/cli/${task.replace("-", "_")}.ts`;
    const withOut = task === "run" && !args.includes("--out") ? [...args, "--out", out] : args;
    const r = await cli([script, ...withOut]);
    const what = `${task} ${args.join(" ")}`;
    const lines = r.stderr.trim().split("\n").filter((l) =>
      !l.startsWith("note:") && !l.startsWith("vww:")
    );
    assert.equal(r.code, code, `${what}: ${r.stderr}`);
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    if (typeof line === "string") assert.equal(lines[0], line, what);
    else assert.match(lines[0], line, what);
  }
  assert.deepStrictEqual([...Deno.readDirSync(out)], [], "files were written");
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("no tfjs banner: the CPU backend's 'install our node backend' notice stays out", async () => {
  const r = await cli(["tests/fixtures/tfjs_cpu.ts"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "ok 3");
  assert.ok(!/install our node backend|Hi, looks like/.test(r.stdout + r.stderr), r.stderr);
});

Deno.test("summary.csv: accuracies as fractions to 1e-4, points to 0.01, no float noise; eval-model names its images", async () => {
  const tmp = await tempDir();
  const r = await cli([
    "lib/cli/run.ts",
    SMOKE,
    "--out",
    tmp,
    "--quiet",
    "--variants",
    "float,qat-4",
    ...SMALL.flatMap((s) => ["--set", s]),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.match(/results: (\S+)\//)![1];
  const lines = (await Deno.readTextFile(join(runDir, "summary.csv"))).trim().split("\n");
  const head = lines[0].split(",");
  for (const row of lines.slice(1).map((l) => l.split(","))) {
    const v = (c: string) => row[head.indexOf(c)];
    for (const c of ["accuracy", "loss", "simulated_accuracy", "prediction_agreement"]) {
      assert.match(v(c), /^-?\d+(\.\d{1,4})?$/, `${c} ${v(c)}`);
    }
    assert.match(v("accuracy_drop"), /^-?\d+(\.\d{1,2})?$/, `accuracy_drop ${v("accuracy_drop")}`);
    assert.match(v("reduction"), /^\d+(\.\d{1,2})?$/);
    assert.ok(Number(v("accuracy")) <= 1, "accuracy is a fraction");
  }
  // the printed table: fixed decimals per column
  const table = r.stdout.split("\n").filter((l) => /^(float|qat-4)\s/.test(l));
  for (const l of table) assert.match(l, /\s\d+\.\d\d\s+\d+\.\d\d\s+-?\d+\.\d\d$/, l);
  // a model inside its run: evaluated on that run's validation set, and says so
  const model = join(runDir, "variants", "qat-4", "export", "model.qgt");
  const e = await cli(["lib/cli/eval_model.ts", model]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(
    e.stdout,
    /images: all 64 validation images of synthetic-person .*"valCount":64.*, the validation set of run \S+/,
  );
  // copied out of the run: its provenance names the same images
  const copy = join(tmp, "copied.qgt");
  await Deno.copyFile(model, copy);
  const c = await cli(["lib/cli/eval_model.ts", copy]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(
    c.stdout,
    /images: all 64 validation images of synthetic-person .*, the validation set its provenance names \(smoke v1, seed 7, variant qat-4, commit \w{7}\)/,
  );
  assert.equal(c.stdout.match(/accuracy [\d.]+%/)![0], e.stdout.match(/accuracy [\d.]+%/)![0]);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("--help / -h: every task's usage on stdout, exit 0, even beside bad flags; nothing written", async () => {
  // the tasks come from deno.json, so a new command line tool is covered when it is added there
  const tasks = (JSON.parse(await Deno.readTextFile("deno.json")).tasks ?? {}) as Record<
    string,
    string
  >;
  const tools = Object.entries(tasks)
    .map(([name, cmd]) => [name, /^deno run -A (lib\/\S+\.ts)$/.exec(cmd)?.[1]] as const)
    .filter((t): t is readonly [string, string] => t[1] !== undefined);
  assert(tools.length >= 13, `expected the CLI tasks in deno.json, found ${tools.length}`);
  const tmp = await tempDir();
  const results = await Promise.all(tools.flatMap(([name, file]) => [
    cli([file, "--help"]).then((r) => ({ name, how: "--help", r })),
    // -h wins over what else is wrong on the line (an unknown flag, a missing file)
    cli([file, join(tmp, "missing.ts"), "-h", "--no-such-flag"]).then((r) => ({
      name,
      how: "-h",
      r,
    })),
  ]));
  for (const { name, how, r } of results) {
    assert(r.code === 0, `${name} ${how}: exit ${r.code}: ${r.stderr}`);
    assert(
      r.stdout.startsWith(`usage: deno task ${name} `) ||
        r.stdout.startsWith(`usage: deno task ${name}\n`),
      `${name} ${how}: stdout ${JSON.stringify(r.stdout.slice(0, 80))}`,
    );
    // (deno itself may say it waits for the node_modules lock while other tests run)
    const said = r.stderr.split("\n").filter((l) => l && !l.startsWith("Blocking waiting"));
    assert(said.length === 0, `${name} ${how}: stderr ${JSON.stringify(r.stderr)}`);
  }
  // a "-h" that is another flag's value or after "--" is no request for help
  for (const args of [["--", "-h"], ["--out", "-h", "x.ts"]]) {
    const v = await cli(["lib/cli/run.ts", ...args]);
    assert(v.code === 2 && v.stdout === "", `run ${args.join(" ")}: ${v.code} ${v.stdout}`);
  }
  assert((await Array.fromAsync(Deno.readDir(tmp))).length === 0, "--help wrote files");
});

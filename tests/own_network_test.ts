// A user's own experiment end to end: a network declared only as a layer list in the module, on an
// image folder the test makes (PNG files in one subfolder per class), trained in float, QAT-2 and
// QGT-2, exported, and the exported model.qgt evaluated again by `deno task eval-model`.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { encodePng } from "../lib/data/image.ts";
import { readCsv, rowsOf } from "../lib/util/tables.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { toFileUrl } from "../lib/util/path.ts";
import { assert } from "./assert.ts";
import { cli } from "./helpers.ts";
import { rng } from "../lib/util/random.ts";

/**
 * Writes a 3-class set as 14x14 PNGs into dir/{across,down,none}/: a faint horizontal bar, a
 * faint vertical bar or nothing, at a random place on strong noise (learnable, not trivially).
 */
async function writeFolder(dir: string, n: number): Promise<void> {
  const r = rng(3);
  const classes = ["across", "down", "none"];
  for (const c of classes) await Deno.mkdir(join(dir, c), { recursive: true });
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    const px = new Uint8Array(14 * 14 * 4);
    const at = r.int(2, 11);
    for (let y = 0; y < 14; y++) {
      for (let x = 0; x < 14; x++) {
        const bar = (label === 0 && y === at) || (label === 1 && x === at);
        const v = Math.min(255, r.int(0, 150) + (bar ? 70 : 0));
        px.set([v, v, v, 255], (y * 14 + x) * 4);
      }
    }
    await Deno.writeFile(
      join(dir, classes[label], `${i}.png`),
      encodePng({ width: 14, height: 14, data: px }),
    );
  }
}

Deno.test("own network on own images: a layer list and a folder train, quantize to 2 bits, export and evaluate", async () => {
  const tmp = await tempDir("qgt-own-");
  try {
    const images = join(tmp, "images");
    await writeFolder(images, 480);
    const define = toFileUrl(join(REPO_ROOT, "lib/experiment/define.ts")).href;
    const module = join(tmp, "mine.ts");
    await Deno.writeTextFile(
      module,
      `import { defineExperiment } from ${JSON.stringify(define)};
export default defineExperiment({
  id: "mine", version: 1, description: "my network on my images", seed: 1,
  dataset: { name: "folder", options: { dir: ${
        JSON.stringify(images)
      }, size: 14, valFraction: 0.25 } },
  architecture: {
    name: "my_cnn",
    layers: [
      { type: "conv2d", name: "c1", filters: 8, kernel: 3, bn: true, act: "relu" },
      { type: "maxpool", name: "p1", size: 2 },
      { type: "depthwise2d", name: "d2", kernel: 3, bn: true, act: "relu6" },
      { type: "conv2d", name: "c2", filters: 16, kernel: 1, bn: true, act: "relu6" },
      { type: "gap", name: "g" },
      { type: "dense", name: "fc", units: 3 },
    ],
  },
  train: { epochs: 6, batchSize: 32, optimizer: { type: "adam" }, schedule: { type: "cosine", lr: 1e-2 } },
  qgt: { mode: "float", lr: 2e-3 },
  variants: {
    float: {},
    "qat-2": { qgt: { mode: "qat", bits: 2, epochs: 2, liveBatchNorm: true } },
    "qgt-2": { qgt: { mode: "qgt", bits: 2, epochs: 2, fakeQuant: true, liveBatchNorm: true,
      finetuneEpochs: 0, decoupled: true, lambda: { type: "linear", from: 0, to: 30, start: 0.5 } } },
  },
});
`,
    );
    const out = join(tmp, "runs");
    const r = await cli([join(REPO_ROOT, "lib/cli/run.ts"), module, "--out", out, "--quiet"]);
    assert.strictEqual(r.code, 0, r.stderr);
    const [runId] = [...Deno.readDirSync(join(out, "mine"))].map((e) => e.name);
    const run = join(out, "mine", runId);
    const summary = rowsOf(await readCsv(join(run, "summary.csv")));
    const by = Object.fromEntries(summary.map((s) => [String(s.variant), s]));
    assert(
      Number(by.float.accuracy) >= 0.7,
      `float ${by.float.accuracy}: it should learn the bars`,
    );
    for (const v of ["qat-2", "qgt-2"]) {
      // the integer interpreter agrees with the fake-quantized simulation
      assert(Number(by[v].prediction_agreement) >= 0.99, `${v}: ${by[v].prediction_agreement}`);
      const model = join(run, "variants", v, "export", "model.qgt");
      const e = await cli([join(REPO_ROOT, "lib/cli/eval_model.ts"), model]);
      assert.strictEqual(e.code, 0, e.stderr);
      // eval-model reads the run's own folder and split back from the model's provenance
      const acc = Number(e.stdout.match(/accuracy ([\d.]+) ?%/)?.[1]);
      assert(Math.abs(acc / 100 - Number(by[v].accuracy)) <= 5e-5, `${v}: ${e.stdout}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** 64x64 RGB images of three patterns on noise: horizontal stripes, rings, vertical stripes. */
async function writePatterns(dir: string, n: number): Promise<void> {
  const r = rng(11);
  const classes = ["hstripes", "rings", "vstripes"];
  for (const c of classes) await Deno.mkdir(join(dir, c), { recursive: true });
  for (let i = 0; i < n; i++) {
    const label = i % 3, period = r.int(6, 12), phase = r.int(0, 11);
    const cx = r.int(20, 44), cy = r.int(20, 44);
    const px = new Uint8Array(64 * 64 * 4);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const t = label === 0 ? y : label === 2 ? x : Math.hypot(x - cx, y - cy);
        const on = Math.floor((t + phase) / (period / 2)) % 2 === 0;
        const v = Math.min(255, r.int(0, 120) + (on ? 110 : 0));
        px.set([v, r.int(0, 255), v, 255], (y * 64 + x) * 4);
      }
    }
    await Deno.writeFile(
      join(dir, classes[label], `${i}.png`),
      encodePng({ width: 64, height: 64, data: px }),
    );
  }
}

Deno.test("the README's own-folder example learns with --quick on a 120-image folder, with no too-few-steps warning", async () => {
  const tmp = await tempDir("qgt-readme-");
  try {
    const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));
    const block = readme.match(/```ts\n([\s\S]*?id: "my-detector"[\s\S]*?)```/)?.[1];
    assert(block, "the README's example experiment is gone");
    const images = join(tmp, "images");
    await writePatterns(images, 120);
    const define = toFileUrl(join(REPO_ROOT, "lib/experiment/define.ts")).href;
    const module = join(tmp, "mine.ts");
    await Deno.writeTextFile(
      module,
      block.replace('"../lib/experiment/define.ts"', JSON.stringify(define))
        .replace('dir: "data/my-images"', `dir: ${JSON.stringify(images)}`),
    );
    const out = join(tmp, "runs");
    const r = await cli([
      join(REPO_ROOT, "lib/cli/run.ts"),
      module,
      "--quick",
      "--variants",
      "float",
      "--out",
      out,
      "--quiet",
    ]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert(!/trains for only/.test(r.stderr), r.stderr);
    const [runId] = [...Deno.readDirSync(join(out, "my-detector"))].map((e) => e.name);
    const summary = rowsOf(await readCsv(join(out, "my-detector", runId, "summary.csv")));
    // chance is 1/3: well above it
    assert(Number(summary[0].accuracy) >= 0.7, `float ${summary[0].accuracy}: ${r.stderr}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

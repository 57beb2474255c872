// experiments/resnet8-example.ts end to end at a tiny size: a ResNet-8 declared only in the
// experiment module, on an image folder this test makes (4 classes of 16x16 RGB PNGs), trained
// in float, QAT-2, QGT-2 and mixed precision, exported (model.qgt format version 4, with its
// residual sums; model.tflite with ADD operators, run in LiteRT), and the exported models
// evaluated again by `deno task eval-model`.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { encodePng } from "../lib/data/image.ts";
import { readCsv, rowsOf } from "../lib/util/tables.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { rng } from "../lib/util/random.ts";
import { assert } from "./assert.ts";
import { assertEnginesAgree, cli } from "./helpers.ts";
import { loadDataset } from "../lib/data/registry.ts";

const CLASSES = ["across", "down", "diagonal", "none"];

/** 4 classes: a faint bar across, down, along the diagonal, or nothing, on coloured noise. */
async function writeFolder(dir: string, perClass: number): Promise<void> {
  const r = rng(11);
  for (const [label, c] of CLASSES.entries()) {
    await Deno.mkdir(join(dir, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = new Uint8Array(16 * 16 * 4), at = r.int(2, 13);
      for (let y = 0; y < 16; y++) {
        for (let x = 0; x < 16; x++) {
          const bar = (label === 0 && y === at) || (label === 1 && x === at) ||
            (label === 2 && x - y === at - 8);
          for (let ch = 0; ch < 3; ch++) {
            px[(y * 16 + x) * 4 + ch] = Math.min(255, r.int(0, 100) + (bar ? 140 : 0));
          }
          px[(y * 16 + x) * 4 + 3] = 255;
        }
      }
      await Deno.writeFile(
        join(dir, c, `${i}.png`),
        encodePng({ width: 16, height: 16, data: px }),
      );
    }
  }
}

Deno.test("resnet8-example: a declared residual network on an image folder, to 2 bits and mixed, exported and re-evaluated", async () => {
  const tmp = await tempDir("qgt-resnet8-");
  try {
    const images = join(tmp, "images");
    await writeFolder(images, 80);
    const out = join(tmp, "runs");
    const r = await cli([
      join(REPO_ROOT, "lib/cli/run.ts"),
      "experiments/resnet8-example.ts",
      "--quick",
      "--data",
      images,
      "--set",
      "architecture.layers.13.units=4", // one per class folder
      "--out",
      out,
      "--quiet",
    ]);
    assert.strictEqual(r.code, 0, r.stderr);
    const [runId] = [...Deno.readDirSync(join(out, "resnet8-example"))].map((e) => e.name);
    const run = join(out, "resnet8-example", runId);
    const rows = rowsOf(await readCsv(join(run, "summary.csv")));
    const by = Object.fromEntries(rows.map((s) => [String(s.variant), s]));
    assert.deepStrictEqual(Object.keys(by), ["float", "qat-2", "qgt-2", "qgt-mixed"]);
    assert(Number(by.float.accuracy) > 0.4, `float ${by.float.accuracy} (chance 0.25)`);
    const record = JSON.parse(await Deno.readTextFile(join(run, "run.json")));
    const { val } = await loadDataset(record.dataset.name, record.dataset.options);
    for (const v of ["qat-2", "qgt-2", "qgt-mixed"]) {
      // the integer interpreter (int8 residual sums) agrees with the fake-quantized simulation
      assert(Number(by[v].prediction_agreement) >= 0.99, `${v}: ${by[v].prediction_agreement}`);
      const model = join(run, "variants", v, "export", "model.qgt");
      const e = await cli([join(REPO_ROOT, "lib/cli/eval_model.ts"), model]);
      assert.strictEqual(e.code, 0, e.stderr);
      assert.match(e.stdout, /format version 4/);
      // the C runtime reads version 3: it measured the run, and equals the interpreter bit for bit
      assert.equal(record.variants[v].evaluator, "c-runtime", v);
      const bytes = await Deno.readFile(model);
      assert.equal(await assertEnginesAgree(bytes, val, model), val.labels.length, v);
      const acc = Number(e.stdout.match(/accuracy ([\d.]+) ?%/)?.[1]);
      assert(Math.abs(acc / 100 - Number(by[v].accuracy)) <= 5e-5, `${v}: ${e.stdout}`);
      if (v === "qgt-2") {
        // --data points at the folder again: the recorded dataset (folder) is kept, not guessed
        const d = await cli([join(REPO_ROOT, "lib/cli/eval_model.ts"), model, "--data", images]);
        assert.strictEqual(d.code, 0, d.stderr);
        assert.match(d.stdout, new RegExp(`accuracy ${acc.toFixed(2)} ?%`));
      }
      // model.tflite (with TFLite ADD ops) in LiteRT predicts what model.qgt predicts
      assert(Number(by[v].tflite_bytes) > 0, `${v}: no model.tflite`);
      assert(Number(by[v].tflite_agreement) >= 0.98, `${v}: LiteRT ${by[v].tflite_agreement}`);
    }
    // the budget (32,000 bytes) is met and used: more bytes than the all-2-bit model
    const mixed = Number(by["qgt-mixed"].bytes), two = Number(by["qgt-2"].bytes);
    assert(mixed <= 32000 && mixed > two, `mixed ${mixed} bytes, 2-bit ${two}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

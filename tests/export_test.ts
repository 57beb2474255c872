// Export: bit packing, the model.qgt format and its validation, the integer interpreter
// against hand-worked results and against the fake-quantized simulation, C arrays and tfjs.
import * as tf from "@tensorflow/tfjs";
import { tempDir } from "./tmp.ts";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { packCodes, packedBytes, unpackCodes } from "../lib/format/pack.ts";
import { buildQgt } from "../lib/format/model_file.ts";
import {
  loadInterpreter,
  multiplyByQuantizedMultiplier,
  multiplyByQuantizedMultiplierSingleRounding,
  pixelsToInt8,
  quantizeMultiplier,
  runInterpreter,
  srdhm,
} from "../lib/engine/interpreter.ts";
import { cArray } from "../lib/format/c_array.ts";
import { exportSource, writeExport } from "../lib/export/export.ts";
import { evaluateInterpreter } from "../lib/engine/evaluate.ts";
import { fileLoader } from "../lib/export/keras.ts";
import { forward } from "../lib/models/mod.ts";
import { quantizeModel } from "../lib/methods/ptq.ts";
import { foldBatchNorm } from "../lib/models/fold.ts";
import { resolveLayerSpecs } from "../lib/quant/layers.ts";
import { evaluate } from "../lib/eval/evaluate.ts";
import { fakeQuantRange } from "../lib/quant/activation.ts";
import { rng } from "../lib/util/random.ts";
import { assert } from "./assert.ts";
import { handNet, trainToy } from "./helpers.ts";

await initBackend("wasm");

Deno.test("pack/unpack round trip for every width 1-8, counts not divisible by 8", () => {
  const r = rng(1);
  for (let bits = 1; bits <= 8; bits++) {
    for (const n of [1, 7, 8, 13, 100, 1001]) {
      const qmin = bits === 1 ? -1 : -(2 ** (bits - 1));
      const codes = Int32Array.from(
        { length: n },
        () => bits === 1 ? (r.next() < 0.5 ? -1 : 1) : r.int(qmin, qmin + 2 ** bits - 1),
      );
      const packed = packCodes(codes, bits, qmin);
      assert.equal(packed.length, Math.ceil((n * bits) / 8));
      assert.deepStrictEqual(unpackCodes(packed, n, bits, qmin), codes, `${bits} bits, n=${n}`);
    }
  }
  assert.throws(() => packCodes([2], 2, -2), /code 2 at 0 outside \[-2, 1\]/);
  assert.throws(() => unpackCodes(new Uint8Array(1), 5, 2, -2), /fewer than 5 codes/);
});

Deno.test("fixed-point requantization against a BigInt reference", () => {
  const r = rng(3);
  const ref = (a: number, b: number) => {
    if (a === -2147483648 && b === -2147483648) return 2147483647;
    const ab = BigInt(a) * BigInt(b);
    const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
    return Number((ab + nudge) / (1n << 31n)); // BigInt division truncates toward zero, as C
  };
  for (let i = 0; i < 20000; i++) {
    const a = r.int(-2147483648, 2147483647), b = r.int(1073741824, 2147483647);
    assert.equal(srdhm(a, b), ref(a, b), `srdhm(${a}, ${b})`);
    const small = r.int(-100000, 100000);
    assert.equal(srdhm(small, b), ref(small, b));
  }
  // single rounding against the exact 64-bit computation
  const single = (acc: number, m0: number, shift: number) => {
    const t = BigInt(31 - shift);
    const v = (BigInt(acc) * BigInt(m0) + (1n << (t - 1n))) >> t; // >> on BigInt is floor division
    return Number(v > 2147483647n ? 2147483647n : v < -2147483648n ? -2147483648n : v);
  };
  for (let i = 0; i < 20000; i++) {
    const acc = r.int(-2147483648, 2147483647),
      m0 = r.int(1073741824, 2147483647),
      shift = r.int(-20, 0);
    assert.equal(
      multiplyByQuantizedMultiplierSingleRounding(acc, m0, shift),
      single(acc, m0, shift),
      `single(${acc}, ${m0}, ${shift})`,
    );
  }
  // M = 0.3 applied to 1000 is 300 exactly; 0.25 * 6 = 1.5 rounds away from zero (gemmlowp)
  const [m, s] = quantizeMultiplier(0.3);
  assert.equal(multiplyByQuantizedMultiplier(1000, m, s), 300);
  const [m2, s2] = quantizeMultiplier(0.25);
  assert.equal(multiplyByQuantizedMultiplier(6, m2, s2), 2);
  assert.equal(multiplyByQuantizedMultiplier(-6, m2, s2), -2);
});

Deno.test("interpreter on a hand-built network equals integer results worked out by hand", () => {
  const it = loadInterpreter(buildQgt(handNet()), "hand.qgt");
  // pixels 200, 150, 100, 255 -> q = 72, 22, -28, 127 (q = pixel - 128, zero point 0)
  // conv: acc = 2q + 10 = 154, 54, -46, 264; out = floor(acc / 4 + 1/2) - 128, clamped to [-128 (ReLU), 127]
  //   154/4 = 38.5 -> 39 -> -89; 54/4 = 13.5 -> 14 -> -114; -46/4 = -11.5 -> -11 -> -139 -> -128; 264/4 = 66 -> -62
  // gap: (q - zp) = 39, 14, 0, 66 -> sum 119, /4 = 29.75 -> 30 -> q = 30 - 128 = -98
  // dense: x - zp = 30; acc = 30 * [3, -1] + [5, -7] = [95, -37]
  const { acc, logits } = runInterpreter(it, pixelsToInt8(Uint8Array.from([200, 150, 100, 255])));
  assert.deepStrictEqual([...acc], [95, -37]);
  // logits in real units: acc * s_x * s_w = 95 * (1/64) * 0.25, -37 * (1/64) * 0.5
  assert.deepStrictEqual([...logits], [95 / 256, -37 / 128]);
});

Deno.test("exported model: interpreter agrees with the fake-quantized simulation; files identical across exports; tfjs reloads", async () => {
  const { m, ds, val, arch } = await trainToy(240, 160);
  const q = quantizeModel(foldBatchNorm(m), resolveLayerSpecs(arch, { bits: 4 }), {
    calibration: ds,
  });
  const act = (l: string, y: tf.Tensor) =>
    q.activationRanges[l] ? fakeQuantRange(y, ...q.activationRanges[l]) : y;
  const sim = evaluate(q.model, val, { activationTransform: act });
  const src = exportSource(
    q.model,
    q.weights,
    resolveLayerSpecs(arch, { bits: 4 }),
    q.activationRanges,
    val.classNames,
  );
  const interp = await evaluateInterpreter(buildQgt(src), val);
  let agree = 0;
  for (let i = 0; i < val.labels.length; i++) {
    if (interp.predictions[i] === sim.predictions[i]) agree++;
  }
  assert.ok(agree / val.labels.length >= 0.99, `agreement ${agree}/${val.labels.length}`);
  assert.ok(sim.accuracy > 0.7, `simulated accuracy ${sim.accuracy}`);

  const d1 = await tempDir(), d2 = await tempDir();
  const job = {
    variant: "toy",
    src,
    model: q.model,
    val,
    calibration: ds,
    simulated: sim,
    floatAccuracy: 0.9,
    float32Bytes: 1000,
  };
  const s1 = await writeExport(d1, job);
  await writeExport(d2, job);
  for (
    const f of [
      "model.qgt",
      "model_data.c",
      "model_data.h",
      "model.tflite",
      "model.json",
      "weights.bin",
      "summary.json",
      "summary.md",
    ]
  ) {
    assert.deepStrictEqual(
      await Deno.readFile(join(d1, f)),
      await Deno.readFile(join(d2, f)),
      `${f} differs`,
    );
  }
  assert.equal(s1.accuracy, interp.accuracy);
  assert.equal(s1.bytes.total, (await Deno.readFile(join(d1, "model.qgt"))).length);
  // model.tflite ran in LiteRT on the same images: a shallow 4-bit network agrees with the interpreter
  assert.ok(!("skipped" in s1.tflite));
  assert.equal(s1.tflite.bytes, (await Deno.readFile(join(d1, "model.tflite"))).length);
  assert.ok(s1.tflite.agreement >= 0.99, `tflite agreement ${s1.tflite.agreement}`);
  assert.ok(s1.tflite.int4Layers.length > 0, "4-bit layers are stored as INT4");

  // the tfjs LayersModel reloads and predicts like the simulated (snapped, folded) model without activation quantization
  const lm = await tf.loadLayersModel(fileLoader(d1));
  const b = tf.tensor4d(Float32Array.from({ length: 8 * 144 }, (_, i) => Math.sin(i)), [
    8,
    12,
    12,
    1,
  ]);
  const want = tf.tidy(() => forward(q.model, b).dataSync());
  const got = tf.tidy(() => (lm.predict(b) as tf.Tensor).dataSync());
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(want[i] - got[i]) < 1e-4, `logit ${i}: ${got[i]} vs ${want[i]}`);
  }
  lm.dispose();
  b.dispose();
  await Deno.remove(d1, { recursive: true });
  await Deno.remove(d2, { recursive: true });
});

Deno.test({
  name: "model_data.c compiles with cc -std=c99 -Wall -Werror and its array equals model.qgt",
  ignore: !(await new Deno.Command("sh", { args: ["-c", "command -v cc"] }).output()).success,
  fn: async () => {
    const bytes = buildQgt(handNet());
    const dir = await tempDir();
    const { h, c } = cArray(bytes);
    await Deno.writeTextFile(join(dir, "model_data.h"), h);
    await Deno.writeTextFile(join(dir, "model_data.c"), c);
    const out = await new Deno.Command("cc", {
      args: ["-std=c99", "-Wall", "-Werror", "-c", "model_data.c", "-o", "model_data.o"],
      cwd: dir,
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const hex = [...c.matchAll(/0x([0-9a-f]{2})/g)].map((m) => parseInt(m[1], 16));
    assert.deepStrictEqual(Uint8Array.from(hex), bytes);
    assert.match(c, new RegExp(`g_qgt_model_data_len = ${bytes.length};`));
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("packedBytes", () => {
  assert.equal(packedBytes(9, 3), 4);
  assert.equal(packedBytes(8, 1), 1);
});

import { assert } from "./assert.ts";
import { buildQgt } from "../lib/format/model_file.ts";
import { loadInterpreter, pixelsToInt8, runInterpreter } from "../lib/engine/interpreter.ts";
import {
  type LogitRange,
  packInt4,
  qgtToTflite,
  TfliteUnsupportedError,
} from "../lib/export/tflite.ts";
import {
  Activation,
  BuiltinOperator,
  Padding,
  readTflite,
  TensorType,
  type TfModel,
  writeTflite,
} from "../lib/format/tflite_schema.ts";
import { compileTflite } from "../lib/engine/litert.ts";
import { handNet, randomExport } from "./helpers.ts";
import { rng } from "../lib/util/random.ts";

/** Sign-extends nibble i of INT4 bytes (low nibble first). */
const nibble = (b: Uint8Array, i: number) => (((b[i >> 1] >> (4 * (i & 1))) & 15) ^ 8) - 8;

/** The filter values of a TFLite tensor, unpacked. */
function filterValues(m: TfModel, t: number): number[] {
  const tensor = m.tensors[t], data = m.buffers[tensor.buffer];
  const n = tensor.shape.reduce((a, b) => a * b, 1);
  return tensor.type === TensorType.INT4
    ? Array.from({ length: n }, (_, i) => nibble(data, i))
    : Array.from(new Int8Array(data.buffer, data.byteOffset, n));
}

/** The random networks TFLite's int8 scheme can hold (asymmetric 8-bit weights may not fit int8). */
function convertible(seeds: number[]) {
  const out = [];
  for (const seed of seeds) {
    const bytes = buildQgt(randomExport(seed));
    try {
      const logits: LogitRange = { all: [-4, 4], topTwo: [-1, 4] };
      out.push({
        seed,
        bytes,
        t: qgtToTflite(bytes, { logits, output: "int8" }, `r${seed}.qgt`),
        t16: qgtToTflite(bytes, { logits }, `r${seed}.qgt`),
      });
    } catch (e) {
      assert.ok(e instanceof TfliteUnsupportedError, String(e));
      assert.match(
        String(e),
        new RegExp(`r${seed}\\.qgt: layer \\w+: weights minus zero points span`),
      );
    }
  }
  return out;
}

Deno.test("packInt4 against nibbles decoded one by one", () => {
  const r = rng(3);
  for (const n of [1, 2, 7, 64, 101]) {
    const v = Int8Array.from({ length: n }, () => r.int(-8, 7));
    const b = packInt4(v);
    assert.equal(b.length, Math.ceil(n / 2));
    for (let i = 0; i < n; i++) assert.equal(nibble(b, i), v[i], `n ${n}, i ${i}`);
  }
});

Deno.test("model.tflite of random networks: every tensor read back holds model.qgt's weights, biases and parameters in TFLite's layouts, int8 or int16 logits; rewriting gives the same bytes", () => {
  const nets = convertible(Array.from({ length: 30 }, (_, i) => i + 1));
  assert.ok(nets.length >= 20, `${nets.length} convertible`);
  let int4 = 0;
  for (const { seed, bytes, t } of nets) {
    const it = loadInterpreter(bytes);
    const m = readTflite(t.bytes, `r${seed}.tflite`);
    assert.deepStrictEqual(writeTflite(m), t.bytes, `seed ${seed}: rewrite`);
    assert.equal(m.operators.length, it.layers.length);
    assert.deepStrictEqual(m.inputs, [0]);
    assert.deepStrictEqual(m.tensors[0].shape, [1, ...it.header.input.shape]);
    assert.equal(m.tensors[0].quant!.zeroPoint[0], it.header.input.zp);
    assert.deepStrictEqual(m.signature.outputs, [["logits", m.outputs[0]]]);
    it.layers.forEach((rt, i) => {
      const l = it.file.layers[i], op = m.operators[i], where = `seed ${seed} ${l.name}`;
      const code = m.opcodes[op.opcode];
      const out = m.tensors[op.outputs[0]];
      assert.deepStrictEqual(out.shape, [1, ...rt.outShape], where);
      assert.equal(out.type, TensorType.INT8, where);
      if (l.type === "maxpool" || l.type === "gap") {
        assert.equal(
          code.builtin,
          l.type === "gap" ? BuiltinOperator.MEAN : BuiltinOperator.MAX_POOL_2D,
        );
        assert.equal(out.quant!.zeroPoint[0], rt.inZp, where); // same parameters as the input
        return;
      }
      if (l.out) {
        assert.deepStrictEqual(out.quant!.scale, [Math.fround(l.out[0])], where);
        assert.deepStrictEqual(out.quant!.zeroPoint, [l.out[1]], where);
      }
      const act = { none: Activation.NONE, relu: Activation.RELU, relu6: Activation.RELU6 }[l.act!];
      assert.equal((op.options as { act: number }).act, act, where);
      const f = m.tensors[op.inputs[1]], b = m.tensors[op.inputs[2]];
      const w = filterValues(m, op.inputs[1]);
      const [k0, k1] = l.kernelShape!, cout = l.channels!;
      // qgt holds [k,k,cin,cout] / [k,k,c,1] / [in,out]; TFLite OHWI / 1HWC / [out,in]
      if (l.type === "conv2d") {
        const cin = l.kernelShape![2];
        assert.deepStrictEqual(f.shape, [cout, k0, k1, cin], where);
        for (let co = 0; co < cout; co++) {
          for (let y = 0; y < k0; y++) {
            for (let x = 0; x < k1; x++) {
              for (let ci = 0; ci < cin; ci++) {
                assert.equal(
                  w[((co * k0 + y) * k1 + x) * cin + ci],
                  rt.w![((y * k1 + x) * cin + ci) * cout + co],
                  where,
                );
              }
            }
          }
        }
      } else if (l.type === "depthwise2d") {
        assert.deepStrictEqual(f.shape, [1, k0, k1, cout], where);
        assert.deepStrictEqual(w, Array.from(rt.w!), where);
        assert.equal(f.quant!.dim, 3, where);
      } else {
        assert.deepStrictEqual(f.shape, [cout, k0], where);
        for (let co = 0; co < cout; co++) {
          for (let ci = 0; ci < k0; ci++) {
            assert.equal(w[co * k0 + ci], rt.w![ci * cout + co], where);
          }
        }
      }
      if (f.type === TensorType.INT4) {
        int4++;
        assert.ok(l.bits! <= 4 && w.every((v) => v >= -8 && v <= 7), where);
        // TFLite Micro's kernels take INT4 per-channel filters in convolutions only
        assert.notEqual(l.type, "dense", where);
        assert.equal(code.version, 7, where);
      } else {
        assert.equal(code.version, l.type === "dense" ? 4 : 3, where);
      }
      assert.deepStrictEqual(f.quant!.scale, Array.from(rt.weightScale!, Math.fround), where);
      assert.ok(f.quant!.zeroPoint.every((z) => z === 0), where);
      assert.equal(b.type, TensorType.INT32, where);
      const bias = m.buffers[b.buffer];
      assert.deepStrictEqual(
        Array.from(new Int32Array(bias.slice().buffer)),
        Array.from(rt.bias!),
        where,
      );
    });
  }
  assert.ok(int4 >= 10, `${int4} INT4 filters`);
  // int16 logits (the default): the same graph, then QUANTIZE int8 -> int16 at the same scale with
  // zero point 0, and the logit layer as a 1x1 CONV_2D in 16x8 mode between two RESHAPEs (CMSIS-NN's
  // FULLY_CONNECTED takes per-channel scales only with int8 input): int8 filter [classes, 1, 1, C],
  // int64 bias, int16 output
  for (const { seed, bytes, t, t16 } of nets) {
    const it = loadInterpreter(bytes), m8 = readTflite(t.bytes), m = readTflite(t16.bytes);
    const where = `seed ${seed}`;
    assert.equal(m.operators.length, m8.operators.length + 3, where);
    const [quantize, to4d, conv, back] = m.operators.slice(-4);
    const builtins = [quantize, to4d, conv, back].map((o) => m.opcodes[o.opcode].builtin);
    assert.deepStrictEqual(builtins, [
      BuiltinOperator.QUANTIZE,
      BuiltinOperator.RESHAPE,
      BuiltinOperator.CONV_2D,
      BuiltinOperator.RESHAPE,
    ], where);
    const x8 = m.tensors[quantize.inputs[0]], x16 = m.tensors[quantize.outputs[0]];
    assert.equal(x16.type, TensorType.INT16, where);
    assert.deepStrictEqual(x16.quant!.scale, x8.quant!.scale, where);
    assert.deepStrictEqual(x16.quant!.zeroPoint, [0], where);
    assert.deepStrictEqual(to4d.inputs[0], quantize.outputs[0], where);
    assert.deepStrictEqual(conv.inputs[0], to4d.outputs[0], where);
    const last = it.layers[it.layers.length - 1], cin = last.inShape.reduce((a, v) => a * v, 1);
    const classes = last.outShape.at(-1)!;
    assert.deepStrictEqual(m.tensors[to4d.outputs[0]].shape, [1, 1, 1, cin], where);
    assert.deepStrictEqual(conv.options, {
      kind: "conv2d",
      padding: Padding.VALID,
      strideW: 1,
      strideH: 1,
      act: Activation.NONE,
    }, where);
    assert.equal(m.opcodes[conv.opcode].version, 4, where);
    const f = m.tensors[conv.inputs[1]], w = filterValues(m, conv.inputs[1]);
    assert.equal(f.type, TensorType.INT8, where);
    assert.deepStrictEqual(f.shape, [classes, 1, 1, cin], where);
    for (let co = 0; co < classes; co++) {
      for (let ci = 0; ci < cin; ci++) {
        assert.equal(w[co * cin + ci], last.w![ci * classes + co], where);
      }
    }
    const b = m.tensors[conv.inputs[2]];
    assert.equal(b.type, TensorType.INT64, where);
    assert.deepStrictEqual(
      Array.from(new BigInt64Array(m.buffers[b.buffer].slice().buffer), Number),
      Array.from(last.bias!),
      where,
    );
    const y = m.tensors[back.outputs[0]];
    assert.deepStrictEqual(m.outputs, [back.outputs[0]], where);
    assert.deepStrictEqual(y.shape, [1, classes], where);
    assert.equal(y.type, TensorType.INT16, where);
    assert.deepStrictEqual(y.quant!.scale, [Math.fround(8 / 32767)], where); // twice the largest |logit|
    assert.deepStrictEqual(y.quant!.zeroPoint, [0], where);
    assert.deepStrictEqual(m.tensors[conv.outputs[0]].quant, y.quant, where);
    assert.equal(t16.output.type, "int16");
  }
});

Deno.test("readTflite on damaged bytes: every truncation and 3,000 byte changes give a model or one error naming the file", () => {
  const [{ t }] = convertible([2]);
  const r = rng(11);
  let rejected = 0;
  const attempt = (b: Uint8Array) => {
    try {
      readTflite(b, "bad.tflite");
    } catch (e) {
      assert.ok(
        e instanceof Error && e.message.startsWith("bad.tflite: not a valid TFLite model: "),
        String(e),
      );
      rejected++;
    }
  };
  for (let n = 0; n < t.bytes.length; n += 7) attempt(t.bytes.slice(0, n));
  for (let i = 0; i < 3000; i++) {
    const b = t.bytes.slice();
    for (let k = r.int(1, 4); k > 0; k--) b[r.int(0, b.length - 1)] = r.int(0, 255);
    attempt(b);
  }
  assert.ok(rejected > t.bytes.length / 7, `${rejected} rejected`);
});

Deno.test("LiteRT runs the hand-built network and gives the integers worked out by hand, rounding ties to even where qgt rounds them up", async () => {
  const bytes = buildQgt(handNet());
  const t = qgtToTflite(
    bytes,
    { logits: { all: [-1, 1], topTwo: [-1, 1] }, output: "int8" },
    "hand.qgt",
  );
  // expose the conv and pooling outputs too
  const m = readTflite(t.bytes);
  const acts = m.operators.map((op) => op.outputs[0]);
  m.outputs = acts;
  m.signature.outputs = acts.map((a) => [m.tensors[a].name, a]);
  const model = await compileTflite(writeTflite(m), "hand.tflite");
  const x = pixelsToInt8(Uint8Array.from([200, 150, 100, 255])); // q = 72, 22, -28, 127
  const outs = await model.run([new Uint8Array(x.buffer)]);
  model.delete();
  const got = Object.fromEntries(
    model.outputs.map((
      o,
      i,
    ) => [o.name, Array.from(new Int8Array(outs[i].buffer, outs[i].byteOffset, outs[i].length))]),
  );
  // conv: acc = 2q + 10 = 154, 54, -46, 264, times M = 1/4: 38.5, 13.5, -11.5, 66; LiteRT (XNNPACK)
  // rounds ties to even: 38, 14, -12, 66 (qgt: 39, 14, -11, 66), + zero point -128, ReLU6 clamp at -128
  assert.deepStrictEqual(got.c, [-90, -114, -128, -62]);
  // MEAN: (q - zp) = 38, 14, 0, 66 -> 118 / 4 = 29.5 -> 30 (even) -> -98 (qgt: 119 / 4 = 29.75 -> 30)
  assert.deepStrictEqual(got.g, [-98]);
  // dense: 30 * [3, -1] + [5, -7] = [95, -37]; logits 95/256 and -37/128 on the output scale 2/255
  // (range [-1, 1]: zero point round(127.5) - 128 = 0): 47.31 -> 47 and -36.88 -> -37
  assert.equal(t.output.zeroPoint, 0);
  assert.deepStrictEqual(got.d, [47, -37]);
  // the same accumulators as qgt's interpreter: its conv outputs differ only at the ties
  const { acc } = runInterpreter(loadInterpreter(bytes), x);
  assert.deepStrictEqual([...acc], [95, -37]);
  // int16 logits (the default) on twice the range [-1, 1]: scale 2/32767, zero point 0;
  // 95/256 * 32767/2 = 6079.7 -> 6080 and -37/128 * 32767/2 = -4735.8 -> -4736
  const t16 = qgtToTflite(bytes, { logits: { all: [-1, 1], topTwo: [-1, 1] } }, "hand.qgt");
  assert.equal(t16.output.scale, Math.fround(2 / 32767));
  const m16 = await compileTflite(t16.bytes, "hand16.tflite");
  const [o16] = await m16.run([new Uint8Array(x.buffer)]);
  m16.delete();
  assert.deepStrictEqual(Array.from(new Int16Array(o16.slice().buffer)), [6080, -4736]);
});

Deno.test("LiteRT runs random networks of every layer kind, width and activation, INT4 or int8 weights, int8 or int16 logits: outputs match qgt's logits but for last-bit rounding", async () => {
  const tally = { int8: { equal: 0, total: 0 }, int16: { equal: 0, total: 0 } };
  for (const { seed, bytes } of convertible(Array.from({ length: 24 }, (_, i) => i + 1))) {
    const it = loadInterpreter(bytes);
    const [h, w, c] = it.header.input.shape, r = rng(seed);
    const images = Array.from(
      { length: 10 },
      () => Int8Array.from({ length: h * w * c }, () => r.int(-128, 127)),
    );
    const logits = images.map((x) => runInterpreter(it, x).logits);
    const lo = Math.min(0, ...logits.flatMap((l) => [...l])),
      hi = Math.max(0, ...logits.flatMap((l) => [...l]));
    for (const [int4, output] of [[true, "int8"], [false, "int8"], [true, "int16"]] as const) {
      const logitRange = {
        all: [lo, hi] as [number, number],
        topTwo: [lo, hi] as [number, number],
      };
      const t = qgtToTflite(bytes, { logits: logitRange, int4, output }, `r${seed}.qgt`);
      const [qmin, qmax] = output === "int8" ? [-128, 127] : [-32768, 32767];
      const model = await compileTflite(t.bytes, `r${seed}.tflite`);
      for (let i = 0; i < images.length; i++) {
        const [o] = await model.run([new Uint8Array(images[i].buffer)]);
        const y = output === "int8"
          ? new Int8Array(o.buffer, o.byteOffset, o.length)
          : new Int16Array(o.slice().buffer);
        logits[i].forEach((v, k) => {
          const q = Math.round(v / t.output.scale) + t.output.zeroPoint;
          const want = Math.max(qmin, Math.min(qmax, q));
          const n = tally[output];
          n.total++;
          if (y[k] === want) n.equal++;
        });
      }
      model.delete();
    }
  }
  // a wrong layout or parameter would scramble the outputs; last-bit differences (ties, float32
  // multipliers, MEAN) are rare and grow only through the layers after them (measured: 1,394 of
  // 1,500 int8 and 581 of 750 int16 outputs equal; an int16 step is finer, so it sees more, and
  // TFLite's 16x8 convolution requantizes its int64 sums with the multiplier rounded to 16 bits:
  // 656 of 750 were equal when the logits came from a 16x8 FULLY_CONNECTED)
  assert.ok(tally.int8.equal / tally.int8.total >= 0.85, JSON.stringify(tally));
  assert.ok(tally.int16.equal / tally.int16.total >= 0.7, JSON.stringify(tally));
});

// model.qgt version 4 (and 1-3): checksum, strict header validation, version-1 files, the
// activation-scale table, the exact numbers of docs/format.md, and thousands of damaged files
// that never crash a reader.
import {
  buildQgt,
  fileChecksum,
  parseQgt,
  QGT_VERSION,
  upgradeQgt,
} from "../lib/format/model_file.ts";
import { loadInterpreter, pixelsToInt8, runInterpreter } from "../lib/engine/interpreter.ts";
import {
  decimalToFloat32,
  predictClass,
  relu6Max,
  requantMultiplier,
} from "../lib/format/numbers.ts";
import type { Provenance } from "../lib/format/header.ts";
import { rng } from "../lib/util/random.ts";
import { assert } from "./assert.ts";
import { handNet, withHeader } from "./helpers.ts";

const PROV: Provenance = {
  experiment: "hand",
  version: 1,
  profile: "default",
  seed: 7,
  variant: "q",
  commit: "0".repeat(40),
  dirty: false,
  dataset: { name: "synthetic-person", options: { size: 2 } },
  validation: { count: 4 },
};

/** The same file with its checksum recomputed after `edit` changed bytes. */
function resealed(base: Uint8Array, edit: (b: Uint8Array) => void): Uint8Array {
  const b = base.slice();
  edit(b);
  new DataView(b.buffer).setUint32(12, fileChecksum(b), true);
  return b;
}

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof Error, `not an Error: ${e}`);
    return e.message;
  }
  return "no error";
};

Deno.test("version 4: preamble, CRC-32, provenance; deterministic bytes; the activation scales as float32", () => {
  const a = buildQgt({ ...handNet(), provenance: PROV });
  assert.deepStrictEqual(a, buildQgt({ ...handNet(), provenance: PROV }));
  const dv = new DataView(a.buffer);
  assert.equal(new TextDecoder().decode(a.subarray(0, 4)), "QGTM");
  assert.equal(dv.getUint16(4, true), QGT_VERSION);
  assert.equal(QGT_VERSION, 4);
  assert.equal(dv.getUint32(12, true), fileChecksum(a));
  const f = parseQgt(a, "m.qgt");
  assert.equal(f.version, 4);
  assert.deepStrictEqual(f.header.provenance, PROV);
  assert.deepStrictEqual(f.notes, []);
  assert.equal(f.parts.total, a.length);
  assert.equal(f.parts.header, 16 + dv.getUint32(8, true));
  assert.equal(f.parts.codes, 1 + 1); // 8 bits x 1 weight, 4 bits x 2 weights
  // float16 weight scales, then the float32 table: the input's scale and conv c's output scale
  assert.equal(f.parts.scales, 2 + 4 + 4 * 2);
  assert.equal(f.parts.biases, 4 + 8);
  // the raw header: no decimal scale anywhere, the table at the end of the payload
  const raw = JSON.parse(new TextDecoder().decode(a.subarray(16, 16 + dv.getUint32(8, true))));
  assert.deepStrictEqual(raw.input, { shape: [2, 2, 1], zp: f.header.input.zp });
  assert.equal(raw.layers[0].outZp, f.layers[0].out![1]);
  assert.ok(!("out" in raw.layers[0]));
  assert.equal(raw.actScales, raw.payload - 8);
  const table = new DataView(a.buffer, a.length - 8, 8);
  assert.equal(table.getFloat32(0, true), f.header.input.scale);
  assert.equal(table.getFloat32(4, true), f.layers[0].out![0]);
  // the same model as the version-3 layout: same layers, same numbers, and upgrading gives it
  const v3 = buildQgt({ ...handNet(), provenance: PROV }, 3);
  const g = parseQgt(v3, "m3.qgt");
  assert.deepStrictEqual(g.header.input, f.header.input);
  assert.deepStrictEqual(g.layers, f.layers);
  assert.deepStrictEqual(upgradeQgt(v3, "m3.qgt"), a);
  assert.strictEqual(upgradeQgt(a, "m.qgt"), a);
});

Deno.test("version 1 files still load, with a note that they carry no checksum", () => {
  const v1 = buildQgt(handNet(), 1);
  const f = parseQgt(v1, "old.qgt");
  assert.equal(f.version, 1);
  assert.equal(f.parts.header, 12 + new DataView(v1.buffer).getUint32(8, true));
  assert.deepStrictEqual(f.notes, [
    "old.qgt: format version 1 carries no checksum, so damage to it cannot be detected",
  ]);
  // the same network, the same integers
  const x = pixelsToInt8(Uint8Array.from([200, 150, 100, 255]));
  const acc1 = runInterpreter(loadInterpreter(v1), x).acc;
  const acc2 = runInterpreter(loadInterpreter(buildQgt(handNet())), x).acc;
  assert.deepStrictEqual([...acc1], [...acc2]);
  assert.deepStrictEqual([...acc1], [95, -37]); // worked out by hand in export_test.ts
});

Deno.test("a damaged version-4 file is rejected by its checksum: every single-byte change", () => {
  const a = buildQgt({ ...handNet(), provenance: PROV });
  const r = rng(11);
  for (let i = 0; i < a.length; i++) {
    const b = a.slice();
    b[i] ^= 1 << r.int(0, 7);
    const msg = errorOf(() => parseQgt(b, "m.qgt"));
    assert.match(
      msg,
      /^m\.qgt: (checksum mismatch \(stored CRC-32 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)|wrong magic|unsupported format version|flags: expected 0|truncated|header length)/,
      `byte ${i}`,
    );
  }
});

Deno.test("strict header (version 3 layout): each problem is one line naming the file, layer and field", () => {
  const a = buildQgt({ ...handNet(), provenance: PROV }, 3);
  type H = Record<string, unknown> & { layers: Record<string, unknown>[] };
  const cases: [string, (h: H) => void, string][] = [
    ["a renamed key", (h) => {
      h.nmae = h.name;
      delete h.name;
    }, 'm.qgt: header: unknown key "nmae" (expected format, version, name'],
    ["a missing key", (h) => delete h.classes, 'm.qgt: header: missing key "classes"'],
    [
      "stride 0",
      (h) => (h.layers[0].stride = 0),
      "m.qgt: layer c.stride: expected an integer in 1..8192, got 0",
    ],
    [
      "kernel 1.5",
      (h) => (h.layers[0].kernel = 1.5),
      "m.qgt: layer c.kernel: expected an integer in 1..8192, got 1.5",
    ],
    [
      "filters -1",
      (h) => (h.layers[0].filters = -1),
      "m.qgt: layer c.filters: expected an integer in 1..65536, got -1",
    ],
    [
      "a zero output scale",
      (h) => ((h.layers[0].out as number[])[0] = 0),
      "m.qgt: layer c.out[0]: expected a finite positive scale, got 0",
    ],
    [
      "a negative input scale",
      (h) => ((h.input as { scale: number }).scale = -0.5),
      "m.qgt: header.input.scale: expected a finite positive scale, got -0.5",
    ],
    [
      "an output zero point beyond int8",
      (h) => ((h.layers[0].out as number[])[1] = 200),
      "m.qgt: layer c.out[1]: expected an integer in -128..127, got 200",
    ],
    [
      "bits 9",
      (h) => (h.layers[2].bits = 9),
      "m.qgt: layer d.bits: expected an integer in 1..8, got 9",
    ],
    [
      "a qmin the bits cannot have",
      (h) => (h.layers[2].qmin = -3),
      "m.qgt: layer d.qmin: expected one of -8, -7, 0 for 4-bit codes, got -3",
    ],
    [
      "an unknown activation",
      (h) => (h.layers[0].act = "gelu"),
      'm.qgt: layer c.act: expected one of none, relu, relu6, got "gelu"',
    ],
    [
      "an unknown layer type",
      (h) => (h.layers[1].type = "avgpool"),
      'm.qgt: layer g.type: expected one of conv2d, depthwise2d, dense, maxpool, gap, add, got "avgpool"',
    ],
    [
      "a key of another layer type",
      (h) => (h.layers[1].stride = 1),
      'm.qgt: layer g: unknown key "stride" (expected name, type, inputs)',
    ],
    [
      "a logit layer with an activation",
      (h) => (h.layers[2].act = "relu"),
      'm.qgt: layer d: the last layer gives the logits: act must be "none" and it has no "out"',
    ],
    [
      "a weight layer without its output quantization",
      (h) => delete h.layers[0].out,
      "m.qgt: layer c.out: expected [scale, zeroPoint]",
    ],
    [
      "two layers with one name",
      (h) => (h.layers[1].name = "c"),
      "m.qgt: layer c: the name is used twice",
    ],
    [
      "dense on an image",
      (h) => h.layers.splice(1, 1),
      "m.qgt: layer d: dense needs a flat input (after gap or dense), got shape [2,2,1]",
    ],
    [
      "a class too many",
      (h) => (h.classes as string[]).push("c"),
      "m.qgt: the network outputs [2], but the header lists 3 classes",
    ],
    [
      "version disagreeing with the preamble",
      (h) => (h.version = 1),
      "m.qgt: header.version: 1 differs from the preamble's 3",
    ],
    [
      "an unknown provenance key",
      (h) => ((h.provenance as Record<string, unknown>).runid = "x"),
      'm.qgt: provenance: unknown key "runid"',
    ],
    [
      "an offset past the payload",
      (h) => (h.layers[0].bias = 4000),
      "m.qgt: layer c bias: offset 4000 (+4 bytes) outside the 28-byte payload or not 4-byte aligned",
    ],
    [
      "overlapping sections",
      (h) => (h.layers[0].bias = h.layers[0].scales),
      "m.qgt: layer c bias overlaps layer c scales",
    ],
  ];
  for (const [what, edit, want] of cases) {
    const msg = errorOf(() =>
      parseQgt(withHeader(a, edit as (h: Record<string, unknown>) => void), "m.qgt")
    );
    assert.ok(msg.startsWith(want), `${what}: ${msg}`);
    assert.ok(!msg.includes("\n"), `${what}: more than one line`);
  }
  // a header that is not JSON (a NaN scale cannot even be written in JSON)
  const scale = new TextEncoder().encode('"scale":0.0078125');
  const at = a.findIndex((_, i) => scale.every((c, j) => a[i + j] === c));
  assert.ok(at > 0);
  const broken = resealed(a, (b) => b.set(new TextEncoder().encode('"scale":NaN      '), at));
  assert.match(errorOf(() => parseQgt(broken, "m.qgt")), /^m\.qgt: corrupt header: /);
});

Deno.test("strict header (version 4): the scale table's place and values, and no decimal scales", () => {
  const a = buildQgt({ ...handNet(), provenance: PROV });
  type H = Record<string, unknown> & { layers: Record<string, unknown>[] };
  const cases: [string, (h: H) => void, string][] = [
    [
      "a table past the payload",
      (h) => (h.actScales = h.payload),
      "m.qgt: header.actScales: offset 36 (+8 bytes for 2 scales) outside the 36-byte payload",
    ],
    [
      "a table not 4-byte aligned",
      (h) => (h.actScales = 2),
      "m.qgt: header.actScales: offset 2 (+8 bytes for 2 scales)",
    ],
    ["no table", (h) => delete h.actScales, "m.qgt: header.actScales: offset undefined"],
    [
      "a table over a layer's sections",
      (h) => (h.actScales = 0),
      "m.qgt: layer c codes overlaps actScales",
    ],
    [
      "a decimal input scale",
      (h) => ((h.input as Record<string, unknown>).scale = 0.5),
      'm.qgt: header.input: unknown key "scale" (version 4 keeps it in the actScales table)',
    ],
    [
      "a version-3 out",
      (h) => (h.layers[0].out = [0.5, 0]),
      'm.qgt: layer c: unknown key "out" (version 4 has outZp and the actScales table)',
    ],
    [
      "an output zero point beyond int8",
      (h) => (h.layers[0].outZp = 200),
      "m.qgt: layer c.out[1]: expected an integer in -128..127, got 200",
    ],
    [
      "an outZp on the logit layer (one scale more than the table holds)",
      (h) => (h.layers[2].outZp = 0),
      "m.qgt: header.actScales: offset 28 (+12 bytes for 3 scales) outside the 36-byte payload",
    ],
  ];
  for (const [what, edit, want] of cases) {
    const msg = errorOf(() =>
      parseQgt(withHeader(a, edit as (h: Record<string, unknown>) => void), "m.qgt")
    );
    assert.ok(msg.startsWith(want), `${what}: ${msg}`);
    assert.ok(!msg.includes("\n"), `${what}: more than one line`);
  }
  // scales in the table: zero, negative, infinite, NaN
  const f = parseQgt(a, "m.qgt");
  const table = f.parts.total - 8;
  const bad: [number, string][] = [[0, "0"], [-0.5, "-0.5"], [Infinity, "null"], [NaN, "null"]];
  for (const [v, shown] of bad) {
    const b = resealed(a, (x) => new DataView(x.buffer).setFloat32(table + 4, v, true));
    assert.equal(
      errorOf(() => parseQgt(b, "m.qgt")),
      `m.qgt: layer c.out[0]: expected a finite positive scale, got ${shown}`,
    );
  }
});

Deno.test("payload values: float16 scales must be finite and positive, accumulators must fit int32", () => {
  const a = buildQgt(handNet());
  const f = parseQgt(a, "m.qgt");
  const start = f.parts.header;
  const d = f.layers[2]; // dense: scales at d.scales
  for (
    const [bitsHex, shown] of [[0x0000, "0"], [0x7c00, "Infinity"], [0x7e00, "NaN"], [
      0xbc00,
      "-1",
    ]] as const
  ) {
    const b = resealed(
      a,
      (x) => new DataView(x.buffer).setUint16(start + d.scales! + 2, bitsHex, true),
    );
    assert.equal(
      errorOf(() => loadInterpreter(b, "m.qgt")),
      `m.qgt: layer d: scales[1]: float16 0x${
        bitsHex.toString(16).padStart(4, "0")
      } is ${shown}, expected a finite positive scale`,
    );
  }
  // a bias so large that the accumulator could leave int32
  const c = f.layers[0];
  const big = resealed(
    a,
    (x) => new DataView(x.buffer).setInt32(start + c.bias!, 2147483400, true),
  );
  assert.match(
    errorOf(() => loadInterpreter(big, "m.qgt")),
    /^m\.qgt: layer c: the int32 accumulator could overflow \(1 products of up to 255 x 128, biases up to 2147483400\)$/,
  );
});

Deno.test("thousands of random flips and truncations: rejected with one line, or (version 1) run", () => {
  const r = rng(5);
  const x = pixelsToInt8(Uint8Array.from([200, 150, 100, 255]));
  for (const version of [1, 4]) {
    const a = buildQgt(version > 1 ? { ...handNet(), provenance: PROV } : handNet(), version);
    let rejected = 0, ran = 0;
    for (let t = 0; t < 2500; t++) {
      let b = a.slice();
      const kind = r.int(0, 2);
      if (kind === 0) b = b.subarray(0, r.int(0, a.length - 1)); // truncated
      else {
        const flips = kind === 1 ? 1 : r.int(2, 40);
        for (let k = 0; k < flips; k++) b[r.int(0, b.length - 1)] ^= 1 << r.int(0, 7);
      }
      try {
        const it = loadInterpreter(b, "m.qgt");
        runInterpreter(it, x); // whatever it computes, it computes without throwing
        ran++;
      } catch (e) {
        assert.ok(e instanceof Error, String(e));
        assert.match(e.message, /^m\.qgt: [^\n]+$/, `trial ${t}: ${e.message}`);
        rejected++;
      }
    }
    if (version > 1) assert.equal(ran, 0, `a damaged version-${version} file was accepted`);
    else assert.ok(ran > 0 && rejected > 0, `v1: ${ran} ran, ${rejected} rejected`);
  }
});

Deno.test("numbers: decimal to float32 exactly, the requantization multiplier's edge cases, ReLU6, ties", () => {
  // correctly rounded: against Math.fround of the double for decimals where both agree, and halfway cases
  const r = rng(9);
  for (let i = 0; i < 2000; i++) {
    const f = Math.fround(r.next() * 10 ** r.int(-8, 4));
    const t = f.toPrecision(9);
    assert.equal(decimalToFloat32(t), Math.fround(Number(t)), t);
  }
  // 1 + 2^-24 is halfway between 1 and 1 + 2^-23: ties to even (1)
  assert.equal(decimalToFloat32("1.000000059604644775390625"), 1);
  assert.equal(decimalToFloat32("1.000000059604644775390626"), 1 + 2 ** -23);
  assert.throws(() => decimalToFloat32("0x10"), /not a decimal number/);
  // M = m0 2^(shift - 31), m0 in [2^30, 2^31), against a BigInt-free check
  for (let i = 0; i < 2000; i++) {
    const a = Math.fround(r.next() * 0.1 + 1e-4),
      b = Math.fround(r.next() + 1e-3),
      c = Math.fround(r.next() * 0.1 + 1e-4);
    const [m0, shift] = requantMultiplier(a, b, c);
    assert.ok(m0 >= 2 ** 30 && m0 < 2 ** 31, `m0 ${m0}`);
    const M = (a * b) / c;
    assert.ok(Math.abs(m0 * 2 ** (shift - 31) - M) <= M * 2 ** -30, `${a} ${b} ${c}`);
  }
  // exactly M = 1 - 2^-32: rounds up to 2^31, which becomes 2^30 with shift + 1
  assert.deepStrictEqual(requantMultiplier(1 - 2 ** -32, 1, 1), [2 ** 30, 1]);
  // below 2^-32 the output is the zero point
  assert.deepStrictEqual(requantMultiplier(2 ** -33, 1, 1), [0, 0]);
  assert.deepStrictEqual(requantMultiplier(2 ** -32, 1, 1), [2 ** 30, -31]);
  assert.throws(() => requantMultiplier(0, 1, 1), /finite and positive/);
  // ReLU6's top: zp + floor(6 / s + 1/2), 6 / 4 = 1.5 rounds up, clamped to 127
  assert.equal(relu6Max(0, 4), 2);
  assert.equal(relu6Max(-128, 0.025), -128 + 240);
  assert.equal(relu6Max(-128, 0.01), 127);
  // argmax of acc * s_w: exact, ties to the lowest class
  assert.equal(predictClass(Int32Array.from([-4, -2]), [0.5, 1]), 0);
  assert.equal(predictClass(Int32Array.from([1, 3, 3]), [1]), 1);
});

// Gradient parity of the wasm training kernels with tfjs's cpu backend (the reference).
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend/mod.ts";
import { rng } from "../lib/util/random.ts";
import { assert, maxRelErr } from "./assert.ts";

interface Cfg {
  kind: "conv" | "dw";
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number; // filters (conv) or channel multiplier (dw)
  kh: number;
  kw: number;
  s: number;
  pad: "same" | "valid";
}

function grads(cfg: Cfg, xs: Float32Array, ws: Float32Array, rs: Float32Array): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(xs, [cfg.n, cfg.h, cfg.w, cfg.cin]);
    const w = tf.tensor4d(ws, [cfg.kh, cfg.kw, cfg.cin, cfg.cout]);
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => {
      const y = cfg.kind === "conv"
        ? tf.conv2d(x, w, cfg.s, cfg.pad)
        : tf.depthwiseConv2d(x, w, cfg.s, cfg.pad);
      return tf.sum(tf.mul(y, tf.tensor(rs.subarray(0, y.size), y.shape)));
    };
    const [dx, dw] = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, w]);
    return [dx.dataSync() as Float32Array, dw.dataSync() as Float32Array];
  });
}

function configs(): Cfg[] {
  const r = rng(2024);
  const out: Cfg[] = [];
  for (const kind of ["conv", "dw"] as const) {
    for (const s of [1, 2]) {
      for (const pad of ["same", "valid"] as const) {
        for (let t = 0; t < 14; t++) {
          const kh = r.int(1, 5), kw = t % 3 === 0 ? kh : r.int(1, 5);
          out.push({
            kind,
            n: r.int(1, 3),
            h: r.int(kh, 15),
            w: r.int(kw, 15),
            cin: r.int(1, 7),
            cout: kind === "conv" ? r.int(1, 9) : r.int(1, 3),
            kh,
            kw,
            s,
            pad,
          });
        }
      }
    }
  }
  // shapes of the MobileNet person detector
  out.push({ kind: "conv", n: 2, h: 96, w: 96, cin: 1, cout: 8, kh: 3, kw: 3, s: 2, pad: "same" });
  out.push({ kind: "conv", n: 2, h: 48, w: 48, cin: 8, cout: 16, kh: 1, kw: 1, s: 1, pad: "same" });
  out.push({ kind: "dw", n: 2, h: 48, w: 48, cin: 16, cout: 1, kh: 3, kw: 3, s: 2, pad: "same" });
  out.push({ kind: "dw", n: 2, h: 7, w: 7, cin: 64, cout: 1, kh: 3, kw: 3, s: 1, pad: "same" });
  return out;
}

Deno.test("wasm conv/depthwise gradients match the cpu backend on 116 random configurations", async () => {
  const cfgs = configs();
  const r = rng(7);
  const arr = (n: number) => Float32Array.from({ length: n }, () => r.uniform(-1, 1));
  let worst = 0, worstCfg = "";
  const kinds = new Set<string>();
  for (const cfg of cfgs) {
    const xs = arr(cfg.n * cfg.h * cfg.w * cfg.cin);
    const ws = arr(cfg.kh * cfg.kw * cfg.cin * cfg.cout);
    const rs = arr(cfg.n * cfg.h * cfg.w * cfg.cin * cfg.cout);
    await initBackend("cpu");
    const [cdx, cdw] = grads(cfg, xs, ws, rs);
    await initBackend("wasm");
    const before = tf.memory().numTensors;
    const [wdx, wdw] = grads(cfg, xs, ws, rs);
    assert.equal(tf.memory().numTensors, before, `tensor leak in ${JSON.stringify(cfg)}`);
    const e = Math.max(maxRelErr(wdx, cdx), maxRelErr(wdw, cdw));
    if (e > worst) [worst, worstCfg] = [e, JSON.stringify(cfg)];
    kinds.add(`${cfg.kind}/s${cfg.s}/${cfg.pad}/m${cfg.kind === "dw" ? cfg.cout : 1}`);
  }
  assert.ok(cfgs.length >= 50);
  assert.ok(kinds.size >= 12, `coverage: ${[...kinds]}`);
  assert.ok(worst <= 1e-4, `max relative error ${worst} at ${worstCfg}`);
});

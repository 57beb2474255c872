import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./lib/backend/mod.ts";
import { loadDeployed } from "./lib/export/deployed.ts";
import { buildQgt } from "./lib/export/format.ts";
import { loadInterpreter, pixelsToInt8, runInterpreter } from "./lib/export/interpreter.ts";
import { forward } from "./lib/models/model.ts";
import { fakeQuantRange, rangeParams } from "./lib/quant/activation.ts";
import { loadDataset } from "./lib/data/registry.ts";
import { makeBatch } from "./lib/data/dataset.ts";
await initBackend("wasm");
const d = await loadDeployed(Deno.args[0]);
const { val } = await loadDataset("synthetic-person", { trainCount: 8000, valCount: 2000 });
const it = loadInterpreter(buildQgt(d.source!), "x");
const r = d.source!.activationRanges;
const agg: Record<string, [number, number, number]> = {};
for (const i of [0, 1, 2, 3]) {
  const b = makeBatch(val, [i]);
  const simOut: Record<string, Float32Array> = {};
  tf.tidy(() =>
    forward(d.model, tf.tensor4d(b.x, [1, 96, 96, 1]), {
      activationTransform: (l, y) => r[l] ? fakeQuantRange(y, r[l][0], r[l][1], 8) : y,
      onLayerOutput: (n, y) => {
        simOut[n] = y.dataSync().slice() as Float32Array;
      },
    })
  );
  runInterpreter(
    it,
    pixelsToInt8(val.images.subarray(i * 9216, (i + 1) * 9216)),
    (name, out, zp) => {
      const rg = r[name];
      if (!rg) return;
      const s = rangeParams(rg[0], rg[1], 8).scale;
      const sim = simOut[name];
      let n = 0, maxd = 0;
      for (let k = 0; k < out.length; k++) {
        const dd = Math.abs((out[k] - zp) * s - sim[k]) / s;
        if (dd > 0.5) n++;
        maxd = Math.max(maxd, dd);
      }
      const a = agg[name] ??= [0, 0, 0];
      a[0] += n;
      a[1] += out.length;
      a[2] = Math.max(a[2], maxd);
    },
  );
}
for (const [k, [n, t, m]] of Object.entries(agg)) {
  console.log(k.padEnd(6), "differing", n, "/", t, "max steps", m.toFixed(1));
}

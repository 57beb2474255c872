// sanity: does MobileNet learn an easy 96x96 task (bright square present or not)?
import { initBackend } from "./lib/backend/mod.ts";
import { createModel, mobilenetV1 } from "./lib/models/mod.ts";
import { train } from "./lib/train/loop.ts";
import { rng } from "./lib/util/random.ts";
await initBackend("wasm");
function ds(n: number, seed: number) {
  const r = rng(seed);
  const S = 96;
  const images = new Uint8Array(n * S * S), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < S * S; p++) images[i * S * S + p] = r.int(0, 150);
    if (labels[i]) {
      const y0 = r.int(0, S - 12), x0 = r.int(0, S - 12);
      for (let y = y0; y < y0 + 12; y++) {
        for (let x = x0; x < x0 + 12; x++) images[i * S * S + y * S + x] = 230;
      }
    }
  }
  return {
    name: "sq",
    shape: [S, S, 1] as [number, number, number],
    classNames: ["n", "y"],
    images,
    labels,
  };
}
const m = createModel(mobilenetV1({ alpha: 0.25 }), 1);
await train({
  model: m,
  train: ds(1024, 1),
  val: ds(256, 2),
  config: {
    epochs: Number(Deno.args[0] ?? 2),
    batchSize: 32,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 2e-3, warmupSteps: 20 },
    seed: 1,
    threads: Number(Deno.args[1] ?? 2),
  },
});

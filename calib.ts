// difficulty calibration: float MobileNet on synthetic-person with a given budget
import { initBackend } from "./lib/backend/mod.ts";
import { createModel, mobilenetV1 } from "./lib/models/mod.ts";
import { train } from "./lib/train/loop.ts";
import { generateSyntheticPerson } from "./lib/data/synthetic_person.ts";
await initBackend("wasm");
const [ntrain, epochs, alpha] = [
  Number(Deno.args[0] ?? 6000),
  Number(Deno.args[1] ?? 6),
  Number(Deno.args[2] ?? 0.25),
];
const t0 = performance.now();
const tr = generateSyntheticPerson({ count: ntrain, seed: 1 });
const va = generateSyntheticPerson({ count: 1000, seed: 1, offset: ntrain });
console.log("gen", ((performance.now() - t0) / 1000).toFixed(0), "s");
const m = createModel(mobilenetV1({ alpha }), 1);
await train({
  model: m,
  train: tr,
  val: va,
  config: {
    epochs,
    batchSize: 32,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 2e-3, warmupSteps: 100 },
    augment: { flip: true, shift: 0.1, zoom: 0.1, brightness: 0.1, contrast: 0.2 },
    seed: 1,
    threads: 2,
  },
});

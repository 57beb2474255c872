import { createOptimizer } from "../lib/train/optim.ts";
import { learningRate } from "../lib/train/schedule.ts";
import { assert, assertAlmostEquals } from "./assert.ts";

Deno.test("Adam: first two steps against values worked out by hand", () => {
  // g = 1 then 2, b1 0.9, b2 0.999, lr 0.1, eps 0
  // step 1: m = 0.1, v = 0.001, mhat = 1, vhat = 1 -> w = 1 - 0.1 = 0.9
  // step 2: m = 0.29, v = 0.004999, mhat = 0.29/0.19, vhat = 0.004999/0.001999
  const w = new Float32Array([1]);
  const opt = createOptimizer({ type: "adam", epsilon: 0 }, [1]);
  opt.step([w], [new Float32Array([1])], 0.1);
  assertAlmostEquals(w[0], 0.9, 1e-7);
  opt.step([w], [new Float32Array([2])], 0.1);
  const want = 0.9 - 0.1 * (0.29 / 0.19) / Math.sqrt(0.004999 / 0.001999);
  assertAlmostEquals(w[0], want, 1e-6);
  assert.equal(opt.steps, 2);
});

Deno.test("SGD with momentum and Nesterov, PyTorch semantics", () => {
  const w = new Float32Array([0]);
  const opt = createOptimizer({ type: "sgd", momentum: 0.5 }, [1]);
  opt.step([w], [new Float32Array([1])], 1); // b = 1, w = -1
  opt.step([w], [new Float32Array([1])], 1); // b = 1.5, w = -2.5
  assertAlmostEquals(w[0], -2.5, 1e-7);
  const n = new Float32Array([0]);
  const nest = createOptimizer({ type: "sgd", momentum: 0.5, nesterov: true }, [1]);
  nest.step([n], [new Float32Array([1])], 1); // b = 1, d = 1 + 0.5 = 1.5
  assertAlmostEquals(n[0], -1.5, 1e-7);
});

Deno.test("optimizer state round trip continues identically", () => {
  const a = new Float32Array([1, 2]), b = new Float32Array([1, 2]);
  const oa = createOptimizer({ type: "adam" }, [2]);
  const g = () => [new Float32Array([0.3, -0.2])];
  oa.step([a], g(), 0.01);
  b.set(a);
  const ob = createOptimizer({ type: "adam" }, [2]);
  ob.setState(oa.getState());
  oa.step([a], g(), 0.01);
  ob.step([b], g(), 0.01);
  assert.deepStrictEqual(a, b);
});

Deno.test("learning-rate schedules", () => {
  assert.equal(learningRate({ type: "constant", lr: 0.1 }, 99, 100), 0.1);
  assertAlmostEquals(
    learningRate({ type: "step", lr: 1, stepEvery: 10, gamma: 0.5 }, 25, 100),
    0.25,
  );
  // warm-up: linear from lr/w to lr over w steps, then cosine over the remaining steps
  const s = { type: "cosine", lr: 1, warmupSteps: 4, minLr: 0 } as const;
  assert.deepStrictEqual([0, 1, 2, 3].map((i) => learningRate(s, i, 14)), [0.25, 0.5, 0.75, 1]);
  assertAlmostEquals(learningRate(s, 9, 14), 0.5, 1e-12); // halfway through 10 cosine steps
  assertAlmostEquals(learningRate(s, 14, 14), 0, 1e-12);
});

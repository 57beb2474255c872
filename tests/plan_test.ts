// Planning a run before anything trains: validation, phases, run order, preflight (fast, no training).
import { resolveExperiment } from "../lib/experiment/define.ts";
import { endsWithLiveBatchNorm, planPhases } from "../lib/experiment/phases.ts";
import { methodOf } from "../lib/experiment/method.ts";
import { planRun, preflight, preflightRun, specsFor } from "../lib/experiment/plan.ts";
import { smallCnn } from "../lib/models/zoo.ts";
import smoke from "../experiments/smoke.ts";
import personDetect from "../experiments/person-detect.ts";
import { assert } from "./assert.ts";

Deno.test("validation errors name the field and the expected value", () => {
  const bad = (over: (e: Record<string, unknown>) => void) => {
    const e = structuredClone(smoke) as unknown as Record<string, unknown>;
    over(e);
    try {
      resolveExperiment(e, { where: "x.ts" });
    } catch (err) {
      return (err as Error).message;
    }
    return "no error";
  };
  assert.match(
    bad((e) => ((e.train as Record<string, unknown>).epoch = 3)),
    /^x\.ts: train\.epoch: unknown key/,
  );
  assert.match(
    bad((e) => ((e.train as Record<string, unknown>).batchSize = "32")),
    /^x\.ts: train\.batchSize: .*number.*"32"/,
  );
  assert.match(
    bad((e) => ((e.train as Record<string, unknown>).batchSize = 0)),
    /^x\.ts: train\.batchSize: .*>=1/,
  );
  assert.match(
    bad((
      e,
    ) => ((e.variants as Record<string, Record<string, unknown>>)["qat-4"].qgt = {
      mode: "qat",
      bits: 9,
    })),
    /^x\.ts: variants\.qat-4\.qgt\.bits: .*<=8/,
  );
  assert.match(
    bad((e) => ((e.dataset as Record<string, unknown>).name = "imagenet")),
    /^x\.ts: dataset\.name: .*"synthetic-person"/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["qgt-4"].qgt = {
      mode: "qgt",
      regularizer: "sin",
      decoupled: true,
    })),
    /^x\.ts: variants\.qgt-4\.qgt\.decoupled: needs mode "qgt" with regularizer "grid", got mode "qgt", regularizer "sin"$/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["qgt-4"].qgt = {
      mode: "qgt",
      freeze: { momentum: 0.01, threshold: 0.02 },
    })),
    /^x\.ts: variants\.qgt-4\.qgt\.freeze: needs mode "qat", or "qgt" with fakeQuant true, got mode "qgt" without fakeQuant$/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["qat-4"].qgt = {
      mode: "qat",
      bnReestimate: { images: 512 },
    })),
    /^x\.ts: variants\.qat-4\.qgt\.bnReestimate: needs a "qat" or "qgt" variant whose last phase keeps BatchNorm live \(liveBatchNorm true or from "scratch"; qgt: finetuneEpochs 0\), got mode "qat" with BatchNorm folded before the last phase$/,
  );
  assert.match(
    bad((e) => ((e.variants as Record<string, Record<string, unknown>>)["ptq-4"].qgt = {
      mode: "ptq",
      bnReestimate: { images: 512 },
    })),
    /^x\.ts: variants\.ptq-4\.qgt\.bnReestimate: needs .*, got mode "ptq"$/,
  );
  assert.throws(
    () =>
      resolveExperiment(smoke, {
        where: "x.ts",
        set: ['variants.qat-4.qgt.bnReestimate={"images":0}'],
      }),
    // a bad value given by --set blames the assignment
    /--set variants\.qat-4\.qgt\.bnReestimate=\{"images":0\}: variants\.qat-4\.qgt\.bnReestimate\.images: /,
  );
  assert.throws(
    () =>
      resolveExperiment(smoke, {
        where: "x.ts",
        set: ['variants.qat-4.qgt.freeze={"momentum":0.01,"threshold":1}'],
      }),
    /--set variants\.qat-4\.qgt\.freeze=.*: variants\.qat-4\.qgt\.freeze\.threshold: /,
  );
  assert.throws(
    () => resolveExperiment(smoke, { where: "x.ts", set: ["train.optimizer.type=rmsprop"] }),
    /--set train\.optimizer\.type=rmsprop: train\.optimizer\.type: /,
  );
  assert.throws(
    () => resolveExperiment(smoke, { where: "x.ts", variants: ["nope"] }),
    /--variants: x\.ts has no variant "nope"/,
  );
  // dataset options the dataset does not read, and --data where no dataset reads a directory
  assert.match(
    bad((e) => ((e.dataset as Record<string, Record<string, unknown>>).options.holdout = 100)),
    /^x\.ts: dataset\.options\.holdout: not an option of dataset synthetic-person; its options: trainCount, valCount, valOffset, seed, size, channels$/,
  );
  const errorOf = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return (err as Error).message;
    }
    return "no error";
  };
  assert.equal(
    errorOf(() => resolveExperiment(smoke, { where: "x.ts", dataDir: "/d" })),
    "--data: x.ts: dataset synthetic-person reads no directory, and declares no dataset.withDir to switch to one",
  );
  // --data switches person-detect to VWW, whose trainCount / valCount are the profile's caps
  for (const [profile, train, val] of [["default", 8000, 2000], ["quick", 2000, 400]] as const) {
    const r = resolveExperiment(personDetect, { profile, dataDir: "/d" });
    assert.deepStrictEqual(r.variants[0].dataset, {
      name: "vww",
      withDir: "vww",
      options: { trainCount: train, valCount: val, dir: "/d" },
    });
  }
  assert.match(
    errorOf(() =>
      resolveExperiment(personDetect, {
        where: "p.ts",
        dataDir: "/d",
        set: ["dataset.options.valOffset=9000"],
      })
    ),
    /^p\.ts: dataset\.options\.valOffset: not an option of dataset vww \(--data switched to it\); its options: dir, trainCount, valCount/,
  );
});

Deno.test("preflight: the mixed budget's floor is the all-lowest-bits model, exactly", () => {
  const v = resolveExperiment(personDetect).variants.find((x) => x.name === "qgt-mixed")!;
  const train = {
    name: "t",
    shape: [96, 96, 1] as [number, number, number],
    classNames: ["non_person", "person"],
    images: new Uint8Array(0),
    labels: new Uint8Array(64), // 64 training images: two batches
  };
  preflight(v, train); // the shipped 81 KB budget is reachable
  const withBudget = (budgetBytes: number) => {
    const qgt = { ...v.qgt, mixed: { ...v.qgt.mixed!, budgetBytes } };
    return { ...v, qgt, method: methodOf(qgt, "x") };
  };
  let floor = NaN;
  try {
    preflight(withBudget(1000), train);
  } catch (e) {
    floor = Number((e as Error).message.match(/allow \((\d+) bytes/)![1]);
  }
  assert.ok(floor > 1000 && floor < 80971, `floor ${floor}`);
  preflight(withBudget(floor), train); // exactly the floor fits
  assert.throws(() => preflight(withBudget(floor - 1), train), /budgetBytes: \d+ is below/);
});

Deno.test("phases by mode: QAT / QGT with fake quantization, BatchNorm folded or live", () => {
  const lam = { type: "linear" as const, from: 0, to: 3, start: 0.5 };
  const e = resolveExperiment({
    ...smoke,
    variants: {
      float: {},
      qat: { qgt: { mode: "qat", bits: 2, epochs: 2 } },
      "qat-live": { qgt: { mode: "qat", bits: 2, epochs: 2, liveBatchNorm: true } },
      "qgt-ste": { qgt: { mode: "qgt", bits: 2, epochs: 3, fakeQuant: true, lambda: lam } },
      "qgt-live": {
        qgt: { mode: "qgt", bits: 2, epochs: 3, fakeQuant: true, liveBatchNorm: true, lambda: lam },
      },
      "qgt-reg": { qgt: { mode: "qgt", bits: 2, epochs: 3, lambda: lam } },
    },
  });
  const p = Object.fromEntries(e.variants.map((v) => [v.name, planPhases(v)]));
  const shape = (name: string) =>
    p[name].map((ph) => ({
      name: ph.name,
      folded: ph.folded,
      epochs: ph.epochs,
      fq: !!ph.setup?.fakeQuant,
      reg: ph.setup?.regularizer ?? null,
      act: !!ph.setup?.activations,
    }));
  assert.deepStrictEqual(shape("qat"), [
    { name: "qat", folded: true, epochs: 2, fq: true, reg: null, act: true },
  ]);
  assert.deepStrictEqual(shape("qat-live"), [
    { name: "qat", folded: false, epochs: 2, fq: true, reg: null, act: false },
  ]);
  // fake quantization + regularizer in one phase, no fine-tune by default
  assert.deepStrictEqual(shape("qgt-ste"), [
    { name: "qgt-reg", folded: true, epochs: 3, fq: true, reg: "grid", act: true },
  ]);
  assert.deepStrictEqual(shape("qgt-live"), [
    { name: "qgt-reg", folded: false, epochs: 3, fq: true, reg: "grid", act: false },
  ]);
  // the regularizer alone on the float network, then a folded fake-quantized epoch at the final lambda
  assert.deepStrictEqual(shape("qgt-reg"), [
    { name: "qgt-reg", folded: false, epochs: 3, fq: false, reg: "grid", act: false },
    { name: "qgt-finetune", folded: true, epochs: 1, fq: true, reg: "grid", act: true },
  ]);
  assert.deepStrictEqual(p["qgt-reg"][1].lambda, { type: "constant", lambda: 3 });
  assert.deepStrictEqual(p.float.map((ph) => ph.folded), [false]);
  // endsWithLiveBatchNorm (what bnReestimate is validated against), worked out by hand from the
  // rules above: the last phase is live only without a folded fine-tuning phase and unless
  // fake quantization trains the folded network
  const ends = (over: Record<string, unknown>) =>
    endsWithLiveBatchNorm(
      resolveExperiment({ ...smoke, variants: { v: { qgt: { bits: 2, ...over } } } }).variants[0],
    );
  assert.equal(ends({ mode: "qat" }), false);
  assert.equal(ends({ mode: "qat", liveBatchNorm: true }), true);
  assert.equal(ends({ mode: "qat", from: "scratch" }), true);
  assert.equal(ends({ mode: "qgt", fakeQuant: true }), false);
  assert.equal(ends({ mode: "qgt", fakeQuant: true, liveBatchNorm: true }), true);
  assert.equal(
    ends({ mode: "qgt", fakeQuant: true, liveBatchNorm: true, finetuneEpochs: 1 }),
    false,
  );
  assert.equal(ends({ mode: "qgt" }), false); // regularizer alone, then a folded fine-tune epoch
  assert.equal(ends({ mode: "qgt", finetuneEpochs: 0 }), true);
  assert.equal(ends({ mode: "qgt", from: "scratch", fakeQuant: true }), true);
  assert.equal(ends({ mode: "ptq" }), false);
  assert.equal(ends({ mode: "float" }), false);
});

Deno.test("run order: the float baseline a subset needs is added, floats first; no float is an error", () => {
  const all = resolveExperiment(smoke).variants;
  const names = (vs: { name: string }[]) => vs.map((v) => v.name).join();
  const only = (variants: string[]) => resolveExperiment(smoke, { variants });
  assert.equal(names(planRun(only(["qgt-4", "ptq-4"]), all, "s.ts").order), "float,ptq-4,qgt-4");
  assert.equal(names(planRun(only(["float"]), all, "s.ts").order), "float");
  assert.equal(planRun(only(["qat-4"]), all, "s.ts").floatVariant?.name, "float");
  const noFloat = resolveExperiment({ ...smoke, variants: { "qat-4": smoke.variants["qat-4"] } });
  assert.throws(
    () => planRun(noFloat, noFloat.variants, "s.ts"),
    /^Error: s\.ts: quantized variants start from a float variant, but there is none$/,
  );
  // from scratch, a quantized variant needs no float baseline
  const scratch = resolveExperiment({
    ...smoke,
    variants: { q: { qgt: { mode: "qat", bits: 2, from: "scratch" } } },
  });
  assert.equal(names(planRun(scratch, scratch.variants, "s.ts").order), "q");
});

Deno.test("preflightRun: no validation images, a batch larger than the data, per-layer bits", () => {
  const exp = resolveExperiment(smoke);
  const ds = (n: number) => ({
    name: "t",
    shape: [32, 32, 1] as [number, number, number],
    classNames: ["a", "b"],
    images: new Uint8Array(0),
    labels: new Uint8Array(n),
  });
  preflightRun(exp.variants, { train: ds(64), val: ds(8) }, "s.ts"); // fine
  assert.throws(
    () => preflightRun(exp.variants, { train: ds(64), val: ds(0) }, "s.ts"),
    /^Error: s\.ts: dataset synthetic-person has no validation images with these options/,
  );
  assert.throws(
    () => preflightRun(exp.variants, { train: ds(8), val: ds(8) }, "s.ts"),
    /^Error: s\.ts: variant float: train\.batchSize 32 is more than the 8 training images$/,
  );
  // per-layer overrides and a mixed assignment land on the right layers
  const qat4 = exp.variants.find((v) => v.name === "qat-4")!;
  const method = methodOf({ ...qat4.qgt, layers: { conv2: { bits: 3 } } }, "x");
  const specs = specsFor(
    { ...qat4, method },
    smallCnn(),
    { conv1: 2 },
  );
  assert.deepStrictEqual(
    Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, s.bits])),
    { conv1: 2, conv2: 3, conv3: 4, conv4: 4, fc: 4 },
  );
});

/** The smoke experiment with its own network declared as a layer list. */
function declared(layers: unknown[]): Record<string, unknown> {
  const e = structuredClone(smoke) as unknown as Record<string, unknown>;
  e.architecture = { name: "mine", layers };
  return e;
}
const LAYERS = [
  { type: "conv2d", name: "c1", filters: 8, kernel: 3, stride: 2, bn: true, act: "relu6" },
  { type: "depthwise2d", name: "d1", kernel: 3, bn: true, act: "relu6" },
  { type: "maxpool", name: "p1", size: 2 },
  { type: "gap", name: "g" },
  { type: "dense", name: "fc", units: 2 },
];
const data = (size: number, classes = 2) => ({
  name: "folder/train",
  shape: [size, size, 1] as [number, number, number],
  classNames: Array.from({ length: classes }, (_, i) => `c${i}`),
  images: new Uint8Array(0),
  labels: new Uint8Array(0),
});

Deno.test("architectures as data: a layer list with Keras-like defaults, its shapes checked against the data", async () => {
  const { variantArch } = await import("../lib/experiment/plan.ts");
  const r = resolveExperiment(declared(LAYERS), { where: "x.ts" });
  const arch = variantArch(r.variants[0], data(32));
  assert.deepStrictEqual(arch.inputShape, [32, 32, 1]);
  assert.strictEqual(arch.name, "mine");
  // defaults filled in: written out explicitly, the same settings hash
  assert.deepStrictEqual(arch.layers[1], {
    type: "depthwise2d",
    name: "d1",
    kernel: 3,
    stride: 1,
    padding: "same",
    bn: true,
    bias: false,
    act: "relu6",
  });
  assert.deepStrictEqual(arch.layers[2], { type: "maxpool", name: "p1", size: 2, stride: 2 });
  assert.deepStrictEqual(arch.layers[4], {
    type: "dense",
    name: "fc",
    units: 2,
    bias: true,
    act: "none",
  });
  const explicit = resolveExperiment(declared(arch.layers), { where: "x.ts" });
  assert.strictEqual(explicit.variants[0].hash, r.variants[0].hash);
  // the built-in networks are layer lists too: smallCnn written out trains as the same network
  const own = resolveExperiment(
    declared(smallCnn({ channels: [8, 16, 16, 32], classes: 2 }).layers),
    {
      where: "x.ts",
    },
  );
  const builtin = variantArch(resolveExperiment(smoke).variants[0], data(32));
  assert.deepStrictEqual(variantArch(own.variants[0], data(32)).layers, builtin.layers);

  // errors name the layer and the field, before anything trains
  const err = (layers: unknown[], size = 32, classes = 2) => {
    try {
      variantArch(
        resolveExperiment(declared(layers), { where: "x.ts" }).variants[0],
        data(size, classes),
      );
    } catch (e) {
      return (e as Error).message;
    }
    return "no error";
  };
  const w = (i: number, over: Record<string, unknown>) =>
    LAYERS.map((l, k) => (k === i ? { ...l, ...over } : l));
  assert.match(
    err(w(1, { type: "conv3d" })),
    /^x\.ts: architecture\.layers\.1\.type: Invalid type/,
  );
  assert.match(err(w(0, { filters: undefined })), /^x\.ts: architecture\.layers\.0\.filters: /);
  assert.match(
    err(w(0, { dilation: 2 })),
    /^x\.ts: architecture\.layers\.0\.dilation: unknown key/,
  );
  assert.match(
    err(w(2, { name: "c1" })),
    /architecture\.layers\.2\.name: "c1" names an earlier layer/,
  );
  assert.match(
    err(w(0, { kernel: 7, padding: "valid", stride: 8 }), 6),
    /^architecture\.layers\.0 \(conv2d c1\): output would be empty \(6x6 in\)/,
  );
  assert.match(
    err(LAYERS, 32, 3),
    /^architecture\.layers\.4 \(dense fc\)\.units: 2, but dataset folder\/train has 3 classes/,
  );
  assert.match(
    err([LAYERS[0], LAYERS[4]]),
    /^architecture\.layers\.1 \(dense fc\): expects a flat input, got 16,16,8/,
  );
  assert.match(
    err(LAYERS.slice(0, 4)),
    /layers\.3 \(gap g\): the last layer must be a dense layer/,
  );
  const withOptions = declared(LAYERS);
  (withOptions.architecture as Record<string, unknown>).options = { alpha: 0.5 };
  assert.throws(() => resolveExperiment(withOptions, { where: "x.ts" }), /architecture\.options: /);
  const unknown = structuredClone(smoke) as unknown as Record<string, unknown>;
  unknown.architecture = { name: "resnet8" };
  assert.throws(
    () => resolveExperiment(unknown, { where: "x.ts" }),
    /^Error: x\.ts: architecture\.name: expected one of mobilenet_v1, small_cnn, tiny_cnn, or your own network as architecture\.layers, got "resnet8"$/,
  );
});

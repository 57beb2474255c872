/** Small data and models the tests make. */
import type { ProgressSink } from "../lib/util/progress.ts";
import { join } from "node:path";
import type { Dataset } from "../lib/data/dataset.ts";
import type { ArchSpec } from "../lib/models/spec.ts";
import { type ExportSource, fileChecksum } from "../lib/format/model_file.ts";
import { layerShapes } from "../lib/models/spec.ts";
import { levelRange } from "../lib/quant/spec.ts";
import { rng } from "../lib/util/random.ts";
import {
  runDirOf,
  type RunRecord,
  type VariantSummaryRow,
  writeRunRecord,
  writeRunTables,
} from "../lib/run/run_dir.ts";

/** A learnable 2-class set: class 1 has a bright square at a random place, on noise. */
export function toyDataset(n: number, seed: number, size = 12): Dataset {
  const r = rng(seed);
  const images = new Uint8Array(n * size * size);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < size * size; p++) images[i * size * size + p] = r.int(0, 120);
    if (labels[i]) {
      const y0 = r.int(0, size - 4), x0 = r.int(0, size - 4);
      for (let y = y0; y < y0 + 4; y++) {
        for (let x = x0; x < x0 + 4; x++) images[i * size * size + y * size + x] = 240;
      }
    }
  }
  return { name: "toy", shape: [size, size, 1], classNames: ["no", "yes"], images, labels };
}

/** A tiny conv net with every layer kind, for fast tests. */
export function tinyArch(size = 12, bn = true): ArchSpec {
  return {
    name: "tiny",
    inputShape: [size, size, 1],
    classes: 2,
    layers: [
      {
        type: "conv2d",
        name: "c1",
        filters: 4,
        kernel: 3,
        stride: 2,
        padding: "same",
        bias: !bn,
        bn,
        act: "relu6",
      },
      {
        type: "depthwise2d",
        name: "d1",
        kernel: 3,
        stride: 1,
        padding: "same",
        bias: !bn,
        bn,
        act: "relu6",
      },
      {
        type: "conv2d",
        name: "p1",
        filters: 6,
        kernel: 1,
        stride: 1,
        padding: "same",
        bias: !bn,
        bn,
        act: "relu",
      },
      { type: "maxpool", name: "mp", size: 2, stride: 2 },
      { type: "gap", name: "gap" },
      { type: "dense", name: "fc", units: 2, bias: true, act: "none" },
    ],
  };
}

/** Trains the tiny network on toy data for 4 epochs (Adam 3e-3), quietly; returns model and data. */
export async function trainToy(nTrain: number, nVal: number, epochs = 4) {
  const { createModel } = await import("../lib/models/model.ts");
  const { train } = await import("../lib/train/loop.ts");
  const { consoleProgress } = await import("../lib/util/progress.ts");
  const arch = tinyArch();
  const m = createModel(arch, 5);
  const ds = toyDataset(nTrain, 8), val = toyDataset(nVal, 9);
  await train({
    model: m,
    train: ds,
    config: {
      epochs,
      batchSize: 16,
      optimizer: { type: "adam" },
      schedule: { type: "constant", lr: 3e-3 },
      seed: 2,
    },
    progress: consoleProgress({ quiet: true }),
  });
  return { m, ds, val, arch };
}

/**
 * Writes a fake complete run to `out/<id>/<runId>` through the run directory
 * format: run.json, and summary.csv (every column) from `rows`, one line per
 * variant as `variant,mode,bits,accuracy,loss,bytes,float32_bytes,reduction,accuracy_drop`
 * (the simulation's accuracy is taken equal, agreement 1), with empty other
 * tables. The run id defaults to `run-` and the commit's first 4 characters.
 */
export async function fabricateRun(out: string, o: {
  commit: string;
  started: string;
  rows: string;
  id?: string;
  runId?: string;
  seed?: number;
  version?: number;
  dataset?: { name: string; options: Record<string, unknown> };
}): Promise<string> {
  const runId = o.runId ?? `run-${o.commit.slice(0, 4)}`;
  const id = o.id ?? "exp";
  const dir = runDirOf(out, id, runId);
  const rec: RunRecord = {
    runId,
    experiment: {
      id,
      version: o.version ?? 1,
      path: "x.ts",
      hash: "h",
      profile: "default",
      description: "",
    },
    seed: o.seed ?? 1,
    git: { commit: o.commit, dirty: false },
    versions: { deno: "", tfjs: "", backend: "wasm" },
    dataset: o.dataset ?? { name: "synthetic-person", options: {} },
    status: "complete",
    pid: 1,
    started: o.started,
    variants: Object.fromEntries(
      o.rows.split("\n").filter((l) => l).map((l) => [l.split(",")[0], {
        hash: "h",
        status: "complete" as const,
      }]),
    ),
  };
  await writeRunRecord(dir, rec);
  const summary: VariantSummaryRow[] = o.rows.split("\n").filter((l) => l).map((l) => {
    const [variant, mode, bits, ...n] = l.split(",");
    const [accuracy, loss, bytes, float32_bytes, reduction, accuracy_drop] = n.map(Number);
    return {
      variant,
      mode,
      bits: Number.isFinite(Number(bits)) ? Number(bits) : bits,
      accuracy,
      loss,
      bytes,
      float32_bytes,
      reduction,
      accuracy_drop,
      simulated_accuracy: accuracy,
      prediction_agreement: 1,
    };
  });
  await writeRunTables(dir, { summary, metrics: [], layers: [], layerEpochs: [], sensitivity: [] });
  return dir;
}

/** Runs `deno run -A ...args` and returns exit code, stdout and stderr. */
export async function cli(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/**
 * Runs `deno run -A <args>`, sends SIGINT once its stderr matches `at`, reads the rest, and
 * returns the exit code, all of stderr and whether the signal was sent.
 */
export async function interruptAt(
  args: string[],
  at: RegExp,
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string; interrupted: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  let stderr = "", interrupted = false;
  const dec = new TextDecoder();
  for await (const chunk of child.stderr) {
    stderr += dec.decode(chunk);
    if (!interrupted && at.test(stderr)) {
      child.kill("SIGINT");
      interrupted = true;
    }
  }
  return { code: (await child.status).code, stderr, interrupted };
}

/**
 * The smallest exportable network: a 1x1 conv `c` (1 filter, ReLU6), global
 * average pooling `g` and a 2-unit dense layer `d`, on `inputShape` images.
 */
export function handArch(name: string, inputShape: [number, number, number]): ArchSpec {
  return {
    name,
    inputShape,
    classes: 2,
    layers: [
      {
        type: "conv2d",
        name: "c",
        filters: 1,
        kernel: 1,
        stride: 1,
        padding: "same",
        bias: true,
        bn: false,
        act: "relu6",
      },
      { type: "gap", name: "g" },
      { type: "dense", name: "d", units: 2, bias: true, act: "none" },
    ],
  };
}

/** Settings that make the smoke experiment a few seconds long (160 training, 64 validation images). */
export const SMALL = [
  "dataset.options.trainCount=160",
  "dataset.options.valCount=64",
  "train.epochs=2",
  "train.batchSize=16",
];

/** A hand-built network: 2x2x1 input, 1x1 conv (1 filter, ReLU6), global average pooling, dense with 2 units. */
export function handNet(): ExportSource {
  const arch = handArch("hand", [2, 2, 1]);
  const sIn = 1 / 128;
  return {
    arch,
    classNames: ["a", "b"],
    // biases chosen to be exact integers in accumulator units: 10 * sIn * 0.5 and [5, -7] * sOut * [0.25, 0.5]
    biases: {
      c: Float32Array.from([10 * sIn * 0.5]),
      d: Float32Array.from([5 * (1 / 64) * 0.25, -7 * (1 / 64) * 0.5]),
    },
    weights: {
      c: {
        shape: [1, 1, 1, 1],
        bits: 8,
        symmetric: true,
        axis: 3,
        codes: Int32Array.from([2]),
        scales: Float32Array.from([0.5]),
        zeroPoints: new Int32Array(1),
      },
      d: {
        shape: [1, 2],
        bits: 4,
        symmetric: true,
        axis: 1,
        codes: Int32Array.from([3, -1]),
        scales: Float32Array.from([0.25, 0.5]),
        zeroPoints: new Int32Array(2),
      },
    },
    specs: {
      c: { bits: 8, symmetric: true, perChannel: true, axis: 3 },
      d: { bits: 4, symmetric: true, perChannel: true, axis: 1 },
    },
    // conv output range [0, 255/64]: scale 1/64, int8 zero point -128, so M = (1/128 * 0.5) / (1/64) = 1/4
    activationRanges: { c: [0, 255 / 64] },
    normalize: { mean: 128 / 255, std: 128 / 255 },
  };
}

/**
 * A random exportable network with every layer kind and weight width: conv2d (k x k, stride,
 * same or valid), depthwise2d, maxpool, gap and dense, 1-8-bit codes, symmetric or
 * asymmetric (with zero points), per-channel or per-tensor scales, random biases and
 * activation ranges. The same seed gives the same network.
 */
export function randomExport(seed: number): ExportSource {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[r.int(0, xs.length - 1)];
  const acts = ["relu6", "relu", "none"] as const;
  const size = r.int(5, 12), cin = r.int(1, 3);
  const layers: ArchSpec["layers"] = [
    {
      type: "conv2d",
      name: "c1",
      filters: r.int(2, 12),
      kernel: pick([1, 3, 5]),
      stride: r.int(1, 2),
      padding: pick(["same", "valid"]),
      bias: true,
      bn: false,
      act: pick([...acts]),
    },
    {
      type: "depthwise2d",
      name: "d1",
      kernel: 3,
      stride: r.int(1, 2),
      padding: "same",
      bias: true,
      bn: false,
      act: pick([...acts]),
    },
    ...(r.next() < 0.5
      ? [{ type: "maxpool" as const, name: "mp", size: 2, stride: r.int(1, 2) }]
      : []),
    {
      type: "conv2d",
      name: "p1",
      filters: r.int(9, 20),
      kernel: 1,
      stride: 1,
      padding: "same",
      bias: true,
      bn: false,
      act: pick([...acts]),
    },
    { type: "gap", name: "gap" },
    ...(r.next() < 0.5
      ? [{
        type: "dense" as const,
        name: "h",
        units: r.int(3, 9),
        bias: true,
        act: pick([...acts]),
      }]
      : []),
    { type: "dense", name: "fc", units: r.int(2, 5), bias: true, act: "none" },
  ];
  const arch: ArchSpec = {
    name: `random${seed}`,
    inputShape: [size, size, cin],
    classes: (layers[layers.length - 1] as { units: number }).units,
    layers,
  };
  return randomWeights(arch, r);
}

/**
 * A random residual network (format version 3): a stem and a 1x1 branch from the network input
 * summed, an identity block, a strided block whose shortcut is a strided 1x1 convolution (or a
 * maxpool then a 1x1) reading the block's input, sometimes a tensor added to itself, then gap
 * and dense layers; add inputs in either order, every weight width and activation. Tensors stay
 * alive across branches of different lengths, so the C runtime's memory plan is exercised.
 */
export function randomResidualExport(seed: number): ExportSource {
  const r = rng(1000 + seed);
  const pick = <T>(xs: T[]): T => xs[r.int(0, xs.length - 1)];
  const acts = ["relu6", "relu", "none"] as const;
  const size = 2 * r.int(3, 6), cin = r.int(1, 3), f = r.int(2, 10);
  type L = ArchSpec["layers"][number];
  const conv = (name: string, filters: number, o: Partial<L> = {}): L =>
    ({
      type: "conv2d",
      name,
      filters,
      kernel: pick([1, 3]),
      stride: 1,
      padding: "same",
      bias: true,
      bn: false,
      act: pick([...acts]),
      ...o,
    }) as L;
  const add = (name: string, a: string, b: string): L =>
    ({ type: "add", name, inputs: r.next() < 0.5 ? [a, b] : [b, a], act: pick([...acts]) }) as L;
  const pool = r.next() < 0.5;
  const layers: L[] = [
    conv("stem", f, { kernel: 3 }),
    conv("side", f, { kernel: 1, inputs: ["input"] }),
    add("s0", "stem", "side"),
    conv("a1", f),
    {
      type: "depthwise2d",
      name: "a2",
      kernel: 3,
      stride: 1,
      padding: "same",
      bias: true,
      bn: false,
      act: pick([...acts]),
    } as L,
    add("s1", "a2", "s0"),
    conv("b1", 2 * f, { kernel: 3, stride: 2 }),
    conv("b2", 2 * f),
    ...(pool
      ? [
        { type: "maxpool", name: "bp", size: 2, stride: 2, inputs: ["s1"] } as L,
        conv("bs", 2 * f, { kernel: 1 }),
      ]
      : [
        conv("bs", 2 * f, {
          kernel: 1,
          stride: 2,
          padding: pick(["same", "valid"]),
          inputs: ["s1"],
        }),
      ]),
    add("s2", "b2", "bs"),
    ...(r.next() < 0.4 ? [add("s3", "s2", "s2")] : []),
    { type: "gap", name: "gap" } as L,
    ...(r.next() < 0.5
      ? [{ type: "dense", name: "h", units: r.int(3, 9), bias: true, act: pick([...acts]) } as L]
      : []),
    { type: "dense", name: "fc", units: r.int(2, 5), bias: true, act: "none" } as L,
  ];
  const arch: ArchSpec = {
    name: `residual${seed}`,
    inputShape: [size, size, cin],
    classes: (layers[layers.length - 1] as { units: number }).units,
    layers,
  };
  return randomWeights(arch, r);
}

/** Random codes, scales, zero points, biases and activation ranges for every layer of `arch`. */
export function randomWeights(arch: ArchSpec, r: ReturnType<typeof rng>): ExportSource {
  const shapes = layerShapes(arch);
  const src: ExportSource = {
    arch,
    classNames: Array.from({ length: arch.classes }, (_, i) => `c${i}`),
    biases: {},
    weights: {},
    specs: {},
    activationRanges: {},
    normalize: { mean: 128 / 255, std: r.next() * 0.3 + 0.2 },
  };
  for (const l of arch.layers) {
    if (l.type === "add") {
      const top = r.next() * 8 + 0.5;
      src.activationRanges[l.name] = l.act === "none" ? [-top * r.next(), top] : [0, top];
      continue;
    }
    if (l.type !== "conv2d" && l.type !== "depthwise2d" && l.type !== "dense") continue;
    const s = shapes.get(l.name)!;
    const cout = s.out[s.out.length - 1];
    const kshape = l.type === "dense"
      ? [s.in[0], cout]
      : l.type === "depthwise2d"
      ? [l.kernel, l.kernel, s.in[2], 1]
      : [l.kernel, l.kernel, s.in[2], cout];
    const bits = r.int(1, 8), symmetric = bits === 1 || r.next() < 0.6;
    const perChannel = r.next() < 0.7, narrowRange = symmetric && bits > 1 && r.next() < 0.3;
    const spec = { bits, symmetric, perChannel, narrowRange, axis: kshape.length - 1 };
    const { qmin, qmax } = levelRange(spec);
    const ns = perChannel ? cout : 1;
    const n = kshape.reduce((a, b) => a * b, 1);
    src.specs[l.name] = spec;
    src.weights[l.name] = {
      shape: kshape,
      bits,
      symmetric,
      axis: perChannel ? kshape.length - 1 : -1,
      codes: Int32Array.from(
        { length: n },
        () => bits === 1 ? (r.next() < 0.5 ? -1 : 1) : r.int(qmin, qmax),
      ),
      scales: Float32Array.from({ length: ns }, () => 2 ** (r.next() * 6 - 8)),
      zeroPoints: Int32Array.from({ length: ns }, () => (symmetric ? 0 : r.int(qmin, qmax))),
    };
    src.biases[l.name] = Float32Array.from({ length: cout }, () => (r.next() - 0.5) * 0.5);
    const top = r.next() * 8 + 0.5;
    src.activationRanges[l.name] = l.act === "relu6"
      ? [0, 6]
      : l.act === "relu"
      ? [0, top]
      : [-top, top];
  }
  return src;
}

/**
 * Checks that the C runtime and the TypeScript interpreter give the same int32 logits for
 * every image of `ds` (the interpreter in worker threads); returns how many images, or 0 when
 * there is no C compiler here.
 */
export async function assertEnginesAgree(
  bytes: Uint8Array,
  ds: Dataset,
  file: string,
): Promise<number> {
  const { loadNative } = await import("../lib/engine/native.ts");
  const { evaluateInterpreter } = await import("../lib/engine/evaluate.ts");
  const { pixelsToInt8 } = await import("../lib/engine/interpreter.ts");
  const native = await loadNative(bytes, file);
  if (!native) return 0;
  const ts = await evaluateInterpreter(bytes, ds, file, 2, true);
  const per = ds.shape.reduce((a, b) => a * b, 1), n = ds.labels.length;
  const k = ts.logits!.length / n;
  for (let i = 0; i < n; i++) {
    const x = pixelsToInt8(ds.images.subarray(i * per, (i + 1) * per));
    const c = native.invoke(x), t = ts.logits!.subarray(i * k, (i + 1) * k);
    if (c.join() !== t.join()) {
      throw new Error(
        `${file}: image ${i}: C runtime logits ${c.join()} != interpreter ${t.join()}`,
      );
    }
    if (native.predict(x) !== ts.predictions[i]) {
      throw new Error(`${file}: image ${i}: predictions differ`);
    }
  }
  return n;
}

/**
 * A version 2 or 3 model.qgt with its JSON header edited by `edit` (lengths and the checksum
 * made consistent again, and the preamble's version set when `version` is given), so that the
 * checks behind the checksum see the edit.
 */
export function withHeader(
  base: Uint8Array,
  edit: (h: Record<string, unknown>) => void,
  version?: number,
): Uint8Array {
  const dv = new DataView(base.buffer, base.byteOffset);
  const hlen = dv.getUint32(8, true);
  const h = JSON.parse(new TextDecoder().decode(base.subarray(16, 16 + hlen)));
  edit(h);
  const json = new TextEncoder().encode(JSON.stringify(h));
  const padded = (json.length + 3) & ~3;
  const payload = base.subarray(16 + hlen);
  const out = new Uint8Array(16 + padded + payload.length);
  out.set(base.subarray(0, 12));
  const odv = new DataView(out.buffer);
  if (version !== undefined) odv.setUint16(4, version, true);
  odv.setUint32(8, padded, true);
  out.set(json, 16);
  out.fill(0x20, 16 + json.length, 16 + padded);
  out.set(payload, 16 + padded);
  odv.setUint32(12, fileChecksum(out), true);
  return out;
}

/** Every `.ts` file under `dir`, recursively. */
export async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/**
 * Run options that stop a run (through its public `signal`) once `n` epochs have been
 * checkpointed in this process, as a kill between epochs would; progress is otherwise quiet.
 */
export function stopAfterEpochs(n: number): { signal: AbortSignal; progress: ProgressSink } {
  const stop = new AbortController();
  let epochs = 0;
  return {
    signal: stop.signal,
    progress: {
      status() {},
      line() {},
      epoch() {
        if (++epochs >= n) stop.abort();
      },
    },
  };
}

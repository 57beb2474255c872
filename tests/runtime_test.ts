// The C runtime (runtime/): compiles clean, equals the TypeScript interpreter bit for bit (SIMD and
// reference builds) on random networks of every layer kind and width, and survives thousands of
// damaged files under AddressSanitizer and UndefinedBehaviorSanitizer.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { buildQgt, type ExportSource, fileChecksum, parseQgt } from "../lib/format/model_file.ts";
import { loadInterpreter, predict, runInterpreter } from "../lib/engine/interpreter.ts";
import { findCompiler, loadNative, RUNTIME_SOURCES } from "../lib/engine/native.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { rng } from "../lib/util/random.ts";
import { assert } from "./assert.ts";
import {
  handNet,
  randomExport,
  randomResidualExport,
  randomWeights,
  withHeader,
} from "./helpers.ts";
import type { ArchSpec } from "../lib/models/spec.ts";

const cc = await findCompiler();
const has = async (cmd: string) => {
  try {
    return (await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
};
const SRC = join(REPO_ROOT, "runtime", "qgt_runtime.c");

async function compile(compiler: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(compiler, { args, stderr: "piped", stdout: "piped" }).output();
  return out.success ? "" : new TextDecoder().decode(out.stderr).trim() || "failed";
}

Deno.test({
  name:
    "runtime compiles clean: C99, -Wall -Wextra -Werror -pedantic (gcc, clang, arm-none-eabi-gcc)",
  ignore: !cc,
  fn: async () => {
    const flags = [
      "-std=c99",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-pedantic",
      "-c",
      SRC,
      "-o",
      "/dev/null",
    ];
    for (
      const [compiler, extra] of [
        ["cc", ["-O2"]],
        ["cc", ["-O2", "-DQGT_NO_SIMD"]],
        ["clang", ["-O2"]],
        ["arm-none-eabi-gcc", ["-Os", "-mcpu=cortex-m4", "-mthumb"]],
      ] as const
    ) {
      if (!(await has(compiler))) continue;
      assert.equal(
        await compile(compiler, [...flags, ...extra]),
        "",
        `${compiler} ${extra.join(" ")}`,
      );
    }
  },
});

Deno.test({
  name: "runtime on the hand-built network gives the integers worked out by hand",
  ignore: !cc,
  fn: async () => {
    const m = (await loadNative(buildQgt(handNet()), "hand.qgt"))!;
    // export_test.ts works these out: pixels 200, 150, 100, 255 -> logits [95, -37]
    const x = Int8Array.from([72, 22, -28, 127]);
    assert.deepStrictEqual([...m.invoke(x)], [95, -37]);
    assert.equal(m.predict(x), 0);
  },
});

/**
 * Loads `bytes` into the interpreter and both C builds and checks `images` random int8 images:
 * the same accumulators from all three and the same predicted class. Returns the interpreter.
 */
async function assertBuildsMatch(
  bytes: Uint8Array,
  name: string,
  r: ReturnType<typeof rng>,
  images: number,
): Promise<ReturnType<typeof loadInterpreter>> {
  const it = loadInterpreter(bytes, name);
  const simd = (await loadNative(bytes, name))!;
  const ref = (await loadNative(bytes, name, { simd: false }))!;
  // the two builds really differ: the reference one is compiled with -DQGT_NO_SIMD
  assert.equal(ref.kernels, "reference");
  assert.equal(simd.kernels, Deno.build.arch === "x86_64" ? "sse2" : "reference");
  const [h, w, c] = it.header.input.shape;
  for (let k = 0; k < images; k++) {
    const x = Int8Array.from({ length: h * w * c }, () => r.int(-128, 127));
    const want = [...runInterpreter(it, x).acc];
    assert.deepStrictEqual([...simd.invoke(x)], want, `${name} image ${k}`);
    assert.deepStrictEqual([...ref.invoke(x)], want, `${name} image ${k} (reference)`);
    assert.equal(simd.predict(x), predict(it, x), `${name} image ${k}: class`);
  }
  return it;
}

Deno.test({
  name:
    "runtime equals the TypeScript interpreter bit for bit: 40 random networks, SIMD and reference builds",
  ignore: !cc,
  fn: async () => {
    const r = rng(17);
    const widths = new Set<number>();
    for (let seed = 0; seed < 40; seed++) {
      const src = randomExport(seed);
      for (const s of Object.values(src.specs)) widths.add(s.bits);
      for (const version of [1, 2]) {
        await assertBuildsMatch(buildQgt(src, version), `r${seed}-v${version}.qgt`, r, 12);
      }
    }
    assert.deepStrictEqual([...widths].sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
  },
});

Deno.test({
  name:
    "k x k convolutions over many input channels (the small CNN's shape): SIMD and reference equal the interpreter",
  ignore: !cc,
  fn: async () => {
    // blocks of 8 output channels and a partial last block; input channels below, at and above
    // multiples of 8 (the SIMD loop's width and its scalar tail); 1-8-bit weights
    const r = rng(41);
    const conv = (name: string, filters: number, kernel: number, stride: number) => ({
      type: "conv2d" as const,
      name,
      filters,
      kernel,
      stride,
      padding: (r.next() < 0.5 ? "same" : "valid") as "same" | "valid",
      bias: true,
      bn: false,
      act: "relu" as const,
    });
    for (
      const [seed, cin, f1, f2] of [[1, 8, 16, 9], [2, 9, 17, 8], [3, 16, 8, 24], [4, 33, 12, 16]]
    ) {
      const arch: ArchSpec = {
        name: `kxk${seed}`,
        inputShape: [r.int(5, 9), r.int(5, 9), cin],
        classes: 3,
        layers: [
          conv("c1", f1, 3, 1),
          conv("c2", f2, r.next() < 0.5 ? 3 : 5, r.int(1, 2)),
          { type: "gap", name: "gap" },
          { type: "dense", name: "fc", units: 3, bias: true, act: "none" },
        ],
      };
      await assertBuildsMatch(buildQgt(randomWeights(arch, r)), `kxk${seed}.qgt`, r, 6);
    }
  },
});

Deno.test({
  name: "residual networks: the C runtime equals the interpreter bit for bit, SIMD and reference",
  ignore: !cc,
  fn: async () => {
    const r = rng(29);
    let adds = 0, selfAdds = 0;
    for (let seed = 0; seed < 24; seed++) {
      const src = randomResidualExport(seed);
      const bytes = buildQgt(src);
      assert.equal(bytes[4], 4);
      const it = await assertBuildsMatch(bytes, `res${seed}.qgt`, r, 8);
      adds += it.layers.filter((l) => l.type === "add").length;
      selfAdds += it.layers.some((l) => l.name === "s3") ? 1 : 0;
    }
    assert.ok(adds >= 72 && selfAdds > 0, `${adds} adds, ${selfAdds} self-adds`);
  },
});

Deno.test({
  name:
    "the memory plan keeps a branch alive: activations = the largest set of tensors alive at once (worked by hand)",
  ignore: !cc,
  fn: async () => {
    // 8x8x1 input (64 bytes), three 3x3 convolutions of 4 filters (256 bytes each), gap, dense
    const conv = (name: string) => ({
      type: "conv2d" as const,
      name,
      filters: 4,
      kernel: 3,
      stride: 1,
      padding: "same" as const,
      bias: true,
      bn: false,
      act: "relu" as const,
    });
    const tail = [
      { type: "gap" as const, name: "gap" },
      { type: "dense" as const, name: "fc", units: 2, bias: true, act: "none" as const },
    ];
    const arch = (layers: ArchSpec["layers"]): ArchSpec => ({
      name: "plan",
      inputShape: [8, 8, 1],
      classes: 2,
      layers,
    });
    const chain = arch([conv("stem"), conv("a"), conv("b"), ...tail]);
    const residual = arch([
      conv("stem"),
      conv("a"),
      conv("b"),
      { type: "add", name: "sum", inputs: ["stem", "b"], act: "relu" },
      ...tail,
    ]);
    const c = (await loadNative(buildQgt(randomWeights(chain, rng(1)))))!;
    const g = (await loadNative(buildQgt(randomWeights(residual, rng(1)))))!;
    // a chain ping-pongs: the largest input + output, 256 + 256
    assert.equal(c.activationBytes, 512);
    // stem stays alive while a and b run (and while the sum reads it): 3 x 256 at once
    assert.equal(g.activationBytes, 768);
    // same weights layers, same scratch: the arenas differ by the activations only
    assert.equal(g.arenaBytes - c.arenaBytes, 256);
  },
});

Deno.test({
  name:
    "residual headers the runtime rejects as the interpreter does: later inputs, shapes that do not add; an old preamble on a version-4 header",
  ignore: !cc,
  fn: async () => {
    const base = buildQgt(randomResidualExport(2));
    type H = { layers: Record<string, unknown>[] };
    const layer = (h: unknown, name: string) => (h as H).layers.find((l) => l.name === name)!;
    const cases: [string, (h: Record<string, unknown>) => void, RegExp, number?][] = [
      [
        "an input read before it is written",
        (h) => (layer(h, "s0").inputs = ["stem", "a1"]),
        /layer s0: inputs: a name that is not an earlier layer or "input" \(C runtime: header\)$/,
      ],
      [
        "an add of two shapes",
        (h) => (layer(h, "s2").inputs = ["b2", "s1"]),
        /layer s2: inputs: an add needs two outputs of the same shape \(C runtime: shape\)$/,
      ],
      [
        "an add of one input",
        (h) => (layer(h, "s1").inputs = ["a2"]),
        /layer s1: inputs: an add reads two layers \(C runtime: header\)$/,
      ],
      [
        "a layer named input",
        (h) => (layer(h, "a1").name = "input"),
        /the name is used twice.*\(C runtime: header\)$/,
      ],
      [
        // files of versions 1-3 reach the C runtime through the format's reader, which upgrades them
        "a version-3 preamble on a version-4 header",
        (h) => (h.version = 3),
        /^m\.qgt: header: unknown key "actScales"/,
        3,
      ],
    ];
    assert.ok(await loadNative(base));
    for (const [what, edit, want, version] of cases) {
      const bad = withHeader(base, edit, version);
      assert.throws(() => loadInterpreter(bad, "m.qgt"), Error);
      let msg = "loaded";
      try {
        await loadNative(bad, "m.qgt");
      } catch (e) {
        msg = (e as Error).message;
      }
      assert.match(msg, want, what);
    }
  },
});

Deno.test({
  name: "runtime rejects damaged files with the right status and one line",
  ignore: !cc,
  fn: async () => {
    const a = buildQgt(randomExport(3));
    const err = async (b: Uint8Array) => {
      try {
        await loadNative(b, "m.qgt");
      } catch (e) {
        return (e as Error).message;
      }
      return "loaded";
    };
    const flipped = a.slice();
    flipped[a.length - 1] ^= 4;
    assert.match(await err(flipped), /^m\.qgt: checksum mismatch.* \(C runtime: checksum\)$/);
    assert.match(await err(a.subarray(0, 10)), /\(C runtime: truncated\)$/);
    const wrongMagic = a.slice();
    wrongMagic[0] = 0;
    assert.match(await err(wrongMagic), /\(C runtime: magic\)$/);
    // a header edit with the checksum recomputed: the header check itself must object
    const text = new TextDecoder().decode(a);
    const at = text.indexOf('"stride":');
    const bad = a.slice();
    bad.set(new TextEncoder().encode('"stride":0'), at);
    new DataView(bad.buffer).setUint32(12, fileChecksum(bad), true);
    assert.match(await err(bad), /stride: expected an integer in 1\.\.8192 \(C runtime: header\)$/);
  },
});

Deno.test({
  name:
    "thousands of damaged models under ASan and UBSan: no crash, no report, every rejection says why",
  ignore: !cc,
  fn: async () => {
    const dir = await tempDir();
    const exe = join(dir, "qgt_fuzz");
    const build = await compile("cc", [
      "-std=c99",
      "-g",
      "-O1",
      "-fsanitize=address,undefined",
      "-fno-sanitize-recover=all",
      "-I",
      join(REPO_ROOT, "runtime"),
      SRC,
      join(REPO_ROOT, "runtime", "test", "qgt_fuzz.c"),
      "-o",
      exe,
    ]);
    if (build.includes("sanitize")) {
      console.warn(`sanitizers unavailable here (${build.split("\n")[0]}); the test is skipped`);
      return;
    }
    assert.equal(build, "");
    const r = rng(23);
    const parts: Uint8Array[] = [];
    const add = (b: Uint8Array) => {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, b.length, true);
      parts.push(len, b);
    };
    let n = 0;
    // the C runtime reads version 4 only: older files are rejected by their version
    const old = [1, 2, 3].map((v) => buildQgt(randomExport(90 + v), v));
    old.forEach(add);
    for (let seed = 0; seed < 8; seed++) {
      // six chains and two residual networks
      const base = seed >= 6
        ? buildQgt(randomResidualExport(100 + seed))
        : buildQgt(randomExport(100 + seed));
      const hlen = new DataView(base.buffer).getUint32(8, true), pre = 16;
      add(base);
      for (let k = 0; k < 700; k++, n++) {
        let b = base.slice();
        const kind = r.int(0, 3);
        if (kind === 0) b = b.subarray(0, r.int(0, b.length - 1));
        else {
          // flips anywhere, or concentrated in the header, or in the payload
          const lo = kind === 2 ? pre : kind === 3 ? pre + hlen : 0;
          const hi = kind === 2 ? pre + hlen - 1 : b.length - 1;
          for (let f = r.int(1, 6); f > 0; f--) b[r.int(lo, hi)] ^= 1 << r.int(0, 7);
        }
        // most of them resealed with a valid checksum, so the parser and checks behind it run
        if (b.length >= 16 && b[4] >= 2 && r.next() < 0.8) {
          new DataView(b.buffer, b.byteOffset).setUint32(12, fileChecksum(b), true);
        }
        add(b);
      }
    }
    const corpus = join(dir, "corpus.bin");
    const total = parts.reduce((a, p) => a + p.length, 0);
    const all = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    await Deno.writeFile(corpus, all);
    const out = await new Deno.Command(exe, { args: [corpus], stdout: "piped", stderr: "piped" })
      .output();
    const stderr = new TextDecoder().decode(out.stderr),
      stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, stderr.slice(0, 2000));
    assert.equal(stderr, "");
    const ran = Number(stdout.match(/^ran (\d+)/)![1]);
    assert.ok(n >= 5600 && ran >= 8 && ran < n / 2, stdout);
    assert.match(stdout, /header \d+/); // the header check saw resealed damage
    assert.ok(Number(stdout.match(/version (\d+)/)?.[1] ?? 0) >= old.length, stdout);
    await Deno.remove(dir, { recursive: true });
  },
});

const FASHION = "/usr/share/datasets/fashion-mnist";

Deno.test({
  name:
    "a small Fashion-MNIST run at 1, 2, 3, 4 and 8 bits and mixed: the C runtime equals the interpreter on every validation image; model.tflite in LiteRT agrees",
  ignore: !cc || !(await Deno.stat(FASHION).then(() => true, () => false)),
  fn: async () => {
    const { runExperiment } = await import("../lib/experiment/runner.ts");
    const { consoleProgress } = await import("../lib/util/progress.ts");
    const { loadDataset } = await import("../lib/data/registry.ts");
    const { assertEnginesAgree } = await import("./helpers.ts");
    const dir = await tempDir();
    const path = join(dir, "fm-runtime.ts");
    const bits = [1, 2, 3, 4, 8];
    const variants: Record<string, unknown> = { float: {} };
    for (const b of bits) variants[`qat-${b}`] = { qgt: { mode: "qat", bits: b, epochs: 1 } };
    variants["qgt-mixed"] = {
      qgt: {
        mode: "qgt",
        bits: 8,
        epochs: 1,
        fakeQuant: true,
        decoupled: true,
        lambda: { type: "constant", lambda: 30 },
        mixed: { budgetBytes: 6000, candidates: [1, 2, 4, 8], sensitivitySamples: 128 },
      },
    };
    await Deno.writeTextFile(
      path,
      `export default ${
        JSON.stringify({
          id: "fm-runtime",
          version: 1,
          description: "",
          seed: 3,
          dataset: { name: "fashion-mnist", options: { trainCount: 600, holdout: 300 } },
          architecture: { name: "small_cnn", options: { channels: [8, 8, 16, 16] } },
          train: {
            epochs: 1,
            batchSize: 32,
            optimizer: { type: "adam" },
            schedule: { type: "constant", lr: 2e-3 },
          },
          qgt: { mode: "float" },
          variants,
        })
      };\n`,
    );
    const res = await runExperiment({
      path,
      outRoot: join(dir, "runs"),
      progress: consoleProgress({ quiet: true }),
    });
    const { val } = await loadDataset(res.record.dataset.name, res.record.dataset.options);
    assert.equal(val.labels.length, 300);
    const { evaluateTflite } = await import("../lib/engine/litert.ts");
    const { evaluateModel } = await import("../lib/engine/evaluate.ts");
    for (const name of [...bits.map((b) => `qat-${b}`), "qgt-mixed"]) {
      assert.equal(res.record.variants[name].evaluator, "c-runtime", name);
      const file = join(res.runDir, "variants", name, "export", "model.qgt");
      const bytes = await Deno.readFile(file);
      assert.equal(await assertEnginesAgree(bytes, val, file), 300, name);
      // #26: model.tflite in LiteRT predicts what model.qgt predicts (>= 99.5 %, accuracy within 0.2 points)
      const tfl = join(res.runDir, "variants", name, "export", "model.tflite");
      const lite = await evaluateTflite(await Deno.readFile(tfl), val, tfl);
      const qgt = await evaluateModel(bytes, val, file);
      const same = lite.predictions.filter((p, i) => p === qgt.predictions[i]).length;
      assert.ok(same >= 0.995 * 300, `${name}: LiteRT agrees on ${same} of 300`);
      assert.ok(
        Math.abs(lite.accuracy - qgt.accuracy) <= 0.002 + 1e-12,
        `${name}: ${lite.accuracy} vs ${qgt.accuracy}`,
      );
      const row = res.summary.find((s) => s.variant === name)!;
      assert.equal(row.tflite_agreement, Number((same / 300).toFixed(4)), name);
    }
    const mixed = res.summary.find((s) => s.variant === "qgt-mixed")!;
    assert.equal(mixed.bits, "mixed");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "on an emulated Cortex-M4: the firmware's outputs equal the host runtime's (a chain and a residual network); flash, RAM and instructions reported",
  ignore: !cc,
  fn: async () => {
    const { mcuToolsMissing, runOnMcu } = await import("../lib/engine/mcu.ts");
    const missing = await mcuToolsMissing();
    if (missing) {
      console.warn(`skipped: ${missing}`);
      return;
    }
    const r = rng(4), dir = await tempDir();
    const imagesFor = (src: ExportSource, n: number) => {
      const [h, w, c] = src.arch.inputShape;
      return Array.from(
        { length: n },
        () => Int8Array.from({ length: h * w * c }, () => r.int(-128, 127)),
      );
    };
    const src = randomExport(7), bytes = buildQgt(src);
    const rep = await runOnMcu(bytes, "r7.qgt", imagesFor(src, 3), dir);
    assert.equal(rep.matching, 3);
    assert.equal(rep.instructionsPerImage.length, 3);
    // integer code: the same number of instructions for the same image size, and some work done
    assert.ok(rep.instructionsPerImage.every((n) => n > 1000), JSON.stringify(rep));
    // the DSP kernels are compiled for speed: about 30 KB of code (12 KB at -Os before them)
    assert.ok(rep.runtimeCode > 4000 && rep.runtimeCode <= 32 * 1024, `runtime ${rep.runtimeCode}`);
    assert.ok(rep.flash >= rep.modelBytes + rep.runtimeCode && rep.ram >= rep.arena + rep.stack);
    assert.equal(rep.arena, (await loadNative(bytes))!.arenaBytes);
    // one line per layer, and they add up to the image's count (each within the timer's 40)
    assert.equal(rep.layers.length, parseQgt(bytes, "r7.qgt").header.layers.length);
    const sum = rep.layers.reduce((a, l) => a + l.instructions, 0);
    assert.ok(Math.abs(sum - rep.instructionsPerImage[0]) <= 40 * rep.layers.length, `${sum}`);
    const saved = JSON.parse(await Deno.readTextFile(join(dir, "mcu.json")));
    assert.deepStrictEqual(saved, rep);
    // more random chains (odd channel counts: partial blocks; 1-8-bit codes; k x k and 1x1
    // convolutions; zero points) and residual networks (format version 3): the DSP kernels on
    // the board against the host's reference and SSE2 kernels, image by image
    for (
      const [name, net] of [
        ...[1, 2, 3].map((s) => [`r${s}.qgt`, randomExport(s)] as const),
        ...[1, 2].map((s) => [`res${s}.qgt`, randomResidualExport(s)] as const),
      ]
    ) {
      const b = buildQgt(net);
      const got = await runOnMcu(b, name, imagesFor(net, 2), dir);
      assert.equal(got.matching, 2, name);
      assert.equal(got.arena, (await loadNative(b))!.arenaBytes, name);
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("the host runtime's build cache is keyed on every file of runtime/src", async () => {
  // a source missing from the list would leave a stale cached library after it changes
  const files = [];
  for await (const e of Deno.readDir(join(REPO_ROOT, "runtime/src"))) {
    files.push(`runtime/src/${e.name}`);
  }
  assert.deepStrictEqual(
    RUNTIME_SOURCES.filter((f) => f.startsWith("runtime/src/")).sort(),
    files.sort(),
  );
});

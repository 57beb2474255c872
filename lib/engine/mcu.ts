/**
 * The exported model on an emulated Cortex-M4: builds firmware from the C
 * runtime, the model as a C array and `runtime/mcu/` (start-up, linker script,
 * a harness that reads images and writes logits through semihosting) with
 * `arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os`, measures flash and RAM,
 * runs it under `qemu-system-arm -M mps2-an386` with a deterministic
 * instruction count per image, and checks the logits against the host C
 * runtime.
 * @module
 */
import { join } from "node:path";
import { REPO_ROOT } from "../util/path.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { cArray } from "../format/c_array.ts";
import { parseQgt, upgradeQgt } from "../format/model_file.ts";
import { loadNative } from "./native.ts";

/** What a firmware build and run measured. */
export interface McuReport {
  model: string;
  modelBytes: number;
  /** Flash: code + read-only data (the model) + the .data image; RAM: .data + .bss + stack high-water. */
  flash: number;
  ram: number;
  /** The runtime's own code and read-only data in flash (qgt_runtime.o's sections, linked). */
  runtimeCode: number;
  /** The firmware's other code (start-up, harness, newlib with semihosting stdio). */
  otherCode: number;
  arena: number;
  stack: number;
  heap: number;
  /** Guest instructions per image (QEMU -icount; resolution 40). */
  instructionsPerImage: number[];
  /** The first image's instructions per layer (the firmware's per-layer hook; resolution 40). */
  layers: { layer: string; type: string; bits: number | null; instructions: number }[];
  images: number;
  /** The kernel set the firmware was built with: "dsp" (Cortex-M4 DSP extension) or "reference". */
  kernels: string;
  /** Images whose logits and class equal the host C runtime's. */
  matching: number;
  toolchain: string;
}

async function run(cmd: string, args: string[], cwd?: string, timeoutMs = 0) {
  const c = new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).spawn();
  const timer = timeoutMs ? setTimeout(() => c.kill("SIGKILL"), timeoutMs) : undefined;
  const out = await c.output();
  if (timer) clearTimeout(timer);
  return {
    ok: out.success,
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** {@link run}, telling `onOutput` the stdout so far whenever more arrives. */
async function runStreaming(
  cmd: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  onOutput: (stdoutSoFar: string) => void,
) {
  const c = new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => c.kill("SIGKILL"), timeoutMs);
  const dec = new TextDecoder();
  let stdout = "";
  const reading = (async () => {
    for await (const chunk of c.stdout) {
      stdout += dec.decode(chunk, { stream: true });
      onOutput(stdout);
    }
  })();
  const [status, stderr] = await Promise.all([
    c.status,
    new Response(c.stderr).text(),
    reading,
  ]).then(([s, e]) => [s, e] as const);
  clearTimeout(timer);
  return { ok: status.success, code: status.code, stdout, stderr };
}

/**
 * Whether the Cortex-M tools are here: a reason when not, "" when they are.
 *
 * @example
 * ```ts ignore
 * const why = await mcuToolsMissing();
 * ```
 */
export async function mcuToolsMissing(): Promise<string> {
  for (const tool of ["arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"]) {
    try {
      await run(tool, ["--version"]);
    } catch {
      return `${tool} not found (Debian: gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm)`;
    }
  }
  return "";
}

/**
 * The firmware's kernels: the Cortex-M4 DSP set (the default; runtime/src/kernels_dsp.c) or the
 * portable reference loops (QGT_NO_SIMD), for comparison.
 */
export type McuKernels = "dsp" | "reference";

const CPU = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"];

/** The firmware's shape parameters: its arena, input bytes and number of classes. */
interface FirmwareShape {
  arena: number;
  input: number;
  classes: number;
}

/** Compiles the runtime, the model and runtime/mcu into `dir/firmware.elf` for a Cortex-M4F. */
async function buildFirmware(
  bytes: Uint8Array,
  dir: string,
  shape: FirmwareShape,
  kernels: McuKernels,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const { h: hdr, c: src } = cArray(bytes);
  await Deno.writeTextFile(join(dir, "model_data.h"), hdr);
  await Deno.writeTextFile(join(dir, "model_data.c"), src);
  const rt = join(REPO_ROOT, "runtime"), mcu = join(rt, "mcu");
  const defs = [
    `-DQGT_ARENA_BYTES=${shape.arena}`,
    `-DQGT_INPUT_BYTES=${shape.input}`,
    `-DQGT_CLASSES=${shape.classes}`,
    "-DQGT_LAYER_DONE(i)=qgt_layer_done(i)",
    ...(kernels === "reference" ? ["-DQGT_NO_SIMD"] : []),
  ];
  const common = [
    ...CPU,
    "-Os",
    "-ffunction-sections",
    "-fdata-sections",
    "--specs=nano.specs",
    "-I",
    rt,
    "-I",
    dir,
  ];
  // the runtime calls the harness's per-layer hook, which it declares here
  const hook = ["-include", join(mcu, "layer_hook.h")];
  const units: [string, string, string[]][] = [
    ["qgt_runtime.o", join(rt, "qgt_runtime.c"), ["-std=c99", ...hook]],
    ["model_data.o", join(dir, "model_data.c"), ["-std=c99"]],
    ["main.o", join(mcu, "main.c"), ["-std=gnu99"]],
    ["startup.o", join(mcu, "startup.c"), ["-std=gnu99"]],
  ];
  for (const [out, srcFile, flags] of units) {
    const r = await run("arm-none-eabi-gcc", [
      ...common,
      ...flags,
      ...defs,
      "-c",
      srcFile,
      "-o",
      join(dir, out),
    ]);
    if (!r.ok) {
      throw new Error(`mcu: compiling ${srcFile} failed: ${r.stderr.trim().split("\n")[0]}`);
    }
  }
  const elf = join(dir, "firmware.elf");
  const link = await run("arm-none-eabi-gcc", [
    ...CPU,
    "-T",
    join(mcu, "mps2_an386.ld"),
    "-nostartfiles",
    "--specs=nano.specs",
    "--specs=rdimon.specs",
    "-Wl,--gc-sections",
    `-Wl,-Map=${join(dir, "firmware.map")}`,
    "-o",
    elf,
    ...units.map(([o]) => join(dir, o)),
  ]);
  if (!link.ok) throw new Error(`mcu: linking failed: ${link.stderr.trim().split("\n")[0]}`);
  return elf;
}

/**
 * Runs the firmware in `dir` under QEMU on `images.bin`; returns its stdout. `onImage` hears of
 * each image as the firmware reports it (`image <i> insns <n>`).
 */
async function runFirmware(
  dir: string,
  total: number,
  onImage?: (done: number, total: number) => void,
): Promise<string> {
  const q = await runStreaming(
    "qemu-system-arm",
    [
      "-M",
      "mps2-an386",
      "-nographic",
      "-monitor",
      "none",
      "-semihosting-config",
      "enable=on,target=native",
      "-icount",
      "shift=0",
      "-kernel",
      "firmware.elf",
    ],
    dir,
    600_000,
    (out) => onImage?.((out.match(/^image \d+ insns \d+$/gm) ?? []).length, total),
  );
  if (!q.ok) {
    throw new Error(
      `mcu: the firmware exited with ${q.code}: ${
        (q.stdout + q.stderr).trim().split("\n").slice(-2).join(" / ")
      }`,
    );
  }
  return q.stdout;
}

/**
 * Builds and runs the firmware for `bytes` on `images` (int8, H*W*C each) in
 * `dir`, writes `mcu.json` there, and returns the report.
 *
 * @example
 * ```ts ignore
 * const r = await runOnMcu(bytes, "model.qgt", images, "build/mcu");
 * ```
 */
export async function runOnMcu(
  bytes: Uint8Array,
  file: string,
  images: Int8Array[],
  dir: string,
  onImage?: (done: number, total: number) => void,
  kernels: McuKernels = "dsp",
): Promise<McuReport> {
  const missing = await mcuToolsMissing();
  if (missing) throw new Error(`mcu: ${missing}`);
  bytes = upgradeQgt(bytes, file); // the firmware's C runtime reads version 4
  const f = parseQgt(bytes, file);
  const host = await loadNative(bytes, file);
  if (!host) {
    throw new Error("mcu: the host C runtime is needed to check the firmware (no C compiler)");
  }
  const [h, w, c] = f.header.input.shape, classes = f.header.classes.length, per = h * w * c;
  const elf = await buildFirmware(
    bytes,
    dir,
    { arena: host.arenaBytes, input: per, classes },
    kernels,
  );
  const imgs = new Uint8Array(images.length * per);
  images.forEach((x, i) => imgs.set(new Uint8Array(x.buffer, x.byteOffset, x.length), i * per));
  await Deno.writeFile(join(dir, "images.bin"), imgs);
  const stdout = await runFirmware(dir, images.length, onImage);
  const num = (re: RegExp) => Number(stdout.match(re)?.[1] ?? NaN);
  const out = await Deno.readFile(join(dir, "logits.bin"));
  const got = new Int32Array(out.buffer, out.byteOffset, out.length / 4);
  let matching = 0;
  images.forEach((x, i) => {
    const want = [...host.invoke(x), host.predict(x)];
    if (want.join() === [...got.subarray(i * (classes + 1), (i + 1) * (classes + 1))].join()) {
      matching++;
    }
  });
  const sizes = await sectionSizes(elf),
    runtimeCode = await objectCodeInElf(join(dir, "qgt_runtime.o"), elf);
  const stack = num(/^stack (\d+)$/m);
  const report: McuReport = {
    model: file,
    modelBytes: bytes.length,
    flash: sizes.text + sizes.data,
    ram: sizes.data + sizes.bss + stack,
    runtimeCode,
    otherCode: sizes.text - bytes.length - runtimeCode,
    arena: num(/^arena (\d+)$/m),
    stack,
    heap: num(/^heap (\d+)$/m),
    instructionsPerImage: [...stdout.matchAll(/^image \d+ insns (\d+)$/gm)].map((m) =>
      Number(m[1])
    ),
    layers: [...stdout.matchAll(/^layer (\d+) insns (\d+)$/gm)].map((m) => {
      const l = f.header.layers[Number(m[1])];
      return { layer: l.name, type: l.type, bits: l.bits ?? null, instructions: Number(m[2]) };
    }),
    images: images.length,
    kernels: stdout.match(/^kernels (\w+)$/m)?.[1] ?? "unknown",
    matching,
    toolchain: (await run("arm-none-eabi-gcc", ["--version"])).stdout.split("\n")[0],
  };
  await writeJsonAtomic(join(dir, "mcu.json"), report);
  return report;
}

/** text (code and read-only data, including the model), data and bss of an ELF. */
async function sectionSizes(elf: string): Promise<{ text: number; data: number; bss: number }> {
  const r = await run("arm-none-eabi-size", [elf]);
  const [text, data, bss] = r.stdout.trim().split("\n")[1].trim().split(/\s+/).map(Number);
  return { text, data, bss };
}

/** Bytes of an object's functions and read-only data that made it into the linked ELF. */
async function objectCodeInElf(obj: string, elf: string): Promise<number> {
  const names = new Set(
    (await run("arm-none-eabi-nm", ["--defined-only", obj])).stdout.split("\n")
      .map((l) => l.trim().split(/\s+/)).filter((p) => p.length === 3 && /[tTrR]/.test(p[1]))
      .map((p) => p[2]),
  );
  let n = 0;
  for (
    const line of (await run("arm-none-eabi-nm", ["-S", "--defined-only", elf])).stdout.split("\n")
  ) {
    const p = line.trim().split(/\s+/);
    if (p.length === 4 && /[tTrR]/.test(p[2]) && names.has(p[3])) n += parseInt(p[1], 16);
  }
  return n;
}

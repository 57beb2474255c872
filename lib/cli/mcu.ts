/**
 * `deno task mcu <model.qgt> [--images N] [--out DIR] [--dataset NAME] [--data DIR]`: builds
 * Cortex-M4 firmware for an exported model (the C runtime plus the model as a C array), prints
 * its flash and RAM, runs N validation images (default 10) under QEMU's mps2-an386 with an
 * instruction count per image, and checks every output against the host C runtime. Writes
 * the firmware and `mcu.json` to DIR (default: `mcu/` beside the model; for a model in the
 * committed `reports/results/`, the same place under `reports/runs/derived/`). `--bench` adds
 * the first image's instructions per layer; `--kernels reference` builds the portable loops
 * instead of the Cortex-M4 DSP kernels, to compare.
 * @module
 */
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { pixelsToInt8 } from "../engine/interpreter.ts";
import { runOnMcu } from "../engine/mcu.ts";
import { derivedPath, modelImages, readModel, scoredImages } from "../run/model_images.ts";
import { formatRows } from "../util/tables.ts";
import { imageProgress } from "../util/progress.ts";

const USAGE =
  "usage: deno task mcu <model.qgt> [--images N] [--out DIR] [--dataset NAME] [--data DIR] [--bench] [--kernels dsp|reference]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    images: {
      type: "string",
      arg: "N",
      default: "10",
      help: "validation images to run under QEMU",
    },
    out: {
      type: "string",
      arg: "DIR",
      help:
        "where the firmware goes (default: mcu/ beside the model; reports/runs/derived/ for committed results)",
    },
    dataset: {
      type: "string",
      arg: "NAME",
      help: "take images from this dataset (default: the model's)",
    },
    data: { type: "string", arg: "DIR", help: "the dataset's folder (your images)" },
    bench: { type: "boolean", help: "also print the instructions of each layer (first image)" },
    kernels: {
      type: "string",
      arg: "dsp|reference",
      default: "dsp",
      help: "the Cortex-M4 DSP kernels, or the portable reference loops",
    },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${USAGE}`);
  const path = positionals[0];
  const n = intFlag("--images", f.images, 1, 100000);
  const kernels = f.kernels as string;
  if (kernels !== "dsp" && kernels !== "reference") {
    throw new UsageError(`--kernels: expected dsp or reference, got ${JSON.stringify(kernels)}`);
  }
  const { bytes, file } = await readModel(path);
  const header = file.header;
  const choice = await modelImages(path, header, f as Parameters<typeof modelImages>[2]);
  const { images: val, what } = await scoredImages(path, header, choice, { count: n });
  const per = val.shape.reduce((a, b) => a * b, 1), count = val.labels.length;
  const images = Array.from(
    { length: count },
    (_, i) => pixelsToInt8(val.images.subarray(i * per, (i + 1) * per)),
  );
  console.log(`images: ${what}`);
  const dir = (f.out as string | undefined) ?? derivedPath(path, "mcu");
  const r = await runOnMcu(bytes, path, images, dir, imageProgress("Cortex-M4 (QEMU)"), kernels);
  const kb = (b: number) => (b / 1024).toFixed(1);
  const mean = r.instructionsPerImage.reduce((a, b) => a + b, 0) / r.instructionsPerImage.length;
  console.log(formatRows([
    { what: "flash: runtime code", bytes: r.runtimeCode, KiB: kb(r.runtimeCode) },
    { what: "flash: model", bytes: r.modelBytes, KiB: kb(r.modelBytes) },
    { what: "flash: start-up, harness, newlib", bytes: r.otherCode, KiB: kb(r.otherCode) },
    { what: "flash: total", bytes: r.flash, KiB: kb(r.flash) },
    { what: "RAM: arena", bytes: r.arena, KiB: kb(r.arena) },
    { what: "RAM: stack high-water", bytes: r.stack, KiB: kb(r.stack) },
    { what: "RAM: total (data + bss + stack)", bytes: r.ram, KiB: kb(r.ram) },
  ]));
  if (f.bench) {
    const total = r.layers.reduce((a, l) => a + l.instructions, 0);
    console.log(formatRows(r.layers.map((l) => ({
      layer: l.layer,
      type: l.type,
      bits: l.bits ?? "",
      "M instructions": (l.instructions / 1e6).toFixed(2),
      share: `${(100 * l.instructions / total).toFixed(1)} %`,
    }))));
  }
  console.log(
    `${r.images} images on the Cortex-M4 (QEMU mps2-an386, ${r.kernels} kernels): ${
      (mean / 1e6).toFixed(2)
    } M instructions per image; outputs equal the host C runtime's on ${r.matching} of ${r.images}`,
  );
  console.log(`firmware and mcu.json: ${dir}`);
  if (r.matching !== r.images) {
    throw new Error(`mcu: ${r.images - r.matching} images differ from the host`);
  }
});

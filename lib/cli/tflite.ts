/**
 * `deno task tflite <model.qgt> [--out FILE] [--int8] [--images N] [--dataset NAME] [--data DIR]`:
 * converts an exported model to a standard int8 TFLite model (beside it as
 * `model.tflite` unless `--out` says where; a model in the committed
 * `reports/results/` gets it under `reports/runs/derived/`), runs it in LiteRT on the
 * validation images (`--images N`: the first N) and prints its
 * size next to model.qgt's and how often it predicts what model.qgt predicts.
 * The output range is calibrated on the first 512 training images of the
 * model's dataset, chosen as `deno task eval-model` chooses its images (the
 * run it sits in, its provenance, or a guess it names); the comparison runs on
 * that dataset's validation images. `--int8` stores every weight as int8
 * (default: layers of 4 bits or fewer as packed INT4); `--int8-logits`
 * makes the output int8 too (default: int16 logits, see docs/tflite.md). `--layers` also
 * compares every layer's int8 outputs on the first 100 validation images.
 * @module
 */
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import { basename } from "node:path";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { firstImages } from "../data/dataset.ts";
import { imageProgress } from "../util/progress.ts";
import { evaluateModel } from "../engine/evaluate.ts";
import { logitRange, qgtToTflite } from "../export/tflite.ts";
import { compareLayers, evaluateTflite, LITERT_VERSION } from "../engine/litert.ts";
import { pixelsToInt8 } from "../engine/interpreter.ts";
import { derivedPath, modelImages, readModel, scoredImages } from "../run/model_images.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { formatRows } from "../util/tables.ts";

const USAGE =
  "usage: deno task tflite <model.qgt> [--out FILE] [--int8] [--int8-logits] [--layers] [--images N] [--dataset NAME] [--data DIR] [--skip-bad-images]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: {
      type: "string",
      arg: "FILE",
      help:
        "where model.tflite goes (default: beside the model; reports/runs/derived/ for committed results)",
    },
    int8: { type: "boolean", help: "every weight as int8 (default: layers of <= 4 bits as INT4)" },
    "int8-logits": { type: "boolean", help: "int8 output (default: int16 logits)" },
    layers: { type: "boolean", help: "also compare every layer's outputs on the first 100 images" },
    images: {
      type: "string",
      arg: "N",
      help: "compare on the first N validation images (default: all)",
    },
    dataset: {
      type: "string",
      arg: "NAME",
      help: "compare on this dataset (default: the model's)",
    },
    data: { type: "string", arg: "DIR", help: "the dataset's folder (your images)" },
    "skip-bad-images": { type: "boolean", help: "skip unreadable images instead of failing" },
  }, USAGE);
  const output = f["int8-logits"] ? "int8" as const : "int16" as const;
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${USAGE}`);
  const count = f.images === undefined ? undefined : intFlag("--images", f.images, 1);
  const path = positionals[0];
  const out = (f.out as string | undefined) ??
    derivedPath(path, basename(path).replace(/\.qgt$/, "") + ".tflite");
  const outInfo = await Deno.stat(out).catch(() => null);
  if (outInfo?.isDirectory) throw new UsageError(`--out: ${out} is a directory, expected a file`);
  const { bytes, file } = await readModel(path);
  // a model TFLite cannot hold fails here, before any data is loaded
  qgtToTflite(bytes, { logits: { all: [-1, 1], topTwo: [-1, 1] } }, path);
  for (const n of file.notes) console.error(`note: ${n}`);
  const choice = await modelImages(path, file.header, f as Parameters<typeof modelImages>[2]);
  const { images: val, train, what } = await scoredImages(path, file.header, choice, { count });
  const logits = await logitRange(
    bytes,
    firstImages(train, CALIBRATION_IMAGES),
    CALIBRATION_IMAGES,
    path,
  );
  const t = qgtToTflite(bytes, { logits, int4: !f.int8, output }, path);
  const int8Bytes = f.int8
    ? t.bytes.length
    : qgtToTflite(bytes, { logits, int4: false, output }, path).bytes.length;
  const qgt = await evaluateModel(bytes, val, path, imageProgress("model.qgt"));
  const lite = await evaluateTflite(t.bytes, val, out, imageProgress("LiteRT"));
  await writeFileAtomic(out, t.bytes);
  let same = 0;
  for (let i = 0; i < qgt.predictions.length; i++) {
    if (qgt.predictions[i] === lite.predictions[i]) same++;
  }
  const pct = (x: number) => (x * 100).toFixed(2);
  console.log(
    `images: ${what} (output range from the first ${
      Math.min(CALIBRATION_IMAGES, train.labels.length)
    } training images)`,
  );
  console.log(formatRows([
    { file: path, bytes: bytes.length, "accuracy %": pct(qgt.accuracy), engine: qgt.evaluator },
    {
      file: out,
      bytes: t.bytes.length,
      "accuracy %": pct(lite.accuracy),
      engine: `LiteRT.js ${LITERT_VERSION}`,
    },
  ]));
  console.log(
    `model.qgt is ${(100 * bytes.length / t.bytes.length).toFixed(1)} % of the .tflite and ` +
      `${
        (100 * bytes.length / int8Bytes).toFixed(1)
      } % of the all-int8 TFLite model (${int8Bytes} bytes); ` +
      `${t.int4Layers.length} of ${
        file.layers.filter((l) => l.kernelShape).length
      } weight layers as packed INT4; ` +
      `${t.output.type} output: logit = ${t.output.scale} * (q - ${t.output.zeroPoint}); ` +
      `same predicted class on ${pct(same / Math.max(1, qgt.predictions.length))} % of images`,
  );
  if (f.layers) {
    const per = val.shape.reduce((a, b) => a * b, 1);
    const images = Array.from(
      { length: Math.min(100, val.labels.length) },
      (_, i) => pixelsToInt8(val.images.subarray(i * per, (i + 1) * per)),
    );
    const diffs = await compareLayers(bytes, t.bytes, images);
    console.log(`\nint8 outputs of each layer, LiteRT vs qgt, on ${images.length} images:`);
    console.log(formatRows(diffs.map((d) => ({
      layer: d.layer,
      values: d.values,
      differing: d.differing,
      "differing %": (100 * d.differing / Math.max(1, d.values)).toFixed(3),
      "max steps": d.maxSteps,
    }))));
  }
});

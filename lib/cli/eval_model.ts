/**
 * `deno task eval-model <model.qgt> [--dataset NAME] [--data DIR] [--split val|all] [--images N]`:
 * runs an exported model with the integer interpreter and prints its accuracy and its
 * bytes by part. The images: the run's validation set when the model sits in
 * a run directory (`variants/<name>/export/model.qgt`), else the dataset its
 * header's provenance names (format version 2), else a guess from its classes
 * (version 1); `--dataset` / `--data` override, `--split all` scores every
 * image (training and validation), `--images N` the first N. The model's
 * classes must be the data's, in the same order. It always says which images
 * it scored and how many.
 * @module
 */
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { evaluateModel } from "../engine/evaluate.ts";
import { imageProgress } from "../util/progress.ts";
import { modelImages, readModel, scoredImages, type Split, SPLITS } from "../run/model_images.ts";

const USAGE =
  "usage: deno task eval-model <model.qgt> [--dataset NAME] [--data DIR] [--split val|all] [--images N] [--skip-bad-images]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    dataset: { type: "string", arg: "NAME", help: "score on this dataset (default: the model's)" },
    data: { type: "string", arg: "DIR", help: "the dataset's folder (your images)" },
    split: {
      type: "string",
      arg: "SPLIT",
      default: "val",
      help: "val: the validation images; all: every image of the dataset or folder",
    },
    images: { type: "string", arg: "N", help: "score only the first N images (default: all)" },
    "skip-bad-images": { type: "boolean", help: "skip unreadable images instead of failing" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${USAGE}`);
  const split = f.split as Split;
  if (!SPLITS.includes(split)) {
    throw new UsageError(
      `--split: expected one of ${SPLITS.join(", ")}, got ${JSON.stringify(split)}`,
    );
  }
  const count = f.images === undefined ? undefined : intFlag("--images", f.images, 1);
  const path = positionals[0];
  const { bytes, file } = await readModel(path);
  for (const n of file.notes) console.error(`note: ${n}`);
  const h = file.header;
  const choice = await modelImages(path, h, f as Parameters<typeof modelImages>[2]);
  const { images, what } = await scoredImages(path, h, choice, { split, count });
  const r = await evaluateModel(bytes, images, path, imageProgress("eval-model"));
  const p = file.parts;
  console.log(
    `${path}: ${h.name}, format version ${file.version}, ${h.layers.length} layers, ${p.total} bytes ` +
      `(codes ${p.codes}, scales ${p.scales}, zero points ${p.zeroPoints}, biases ${p.biases}, header ${p.header})`,
  );
  console.log(`images: ${what}; classes ${h.classes.join(", ")}`);
  console.log(
    `accuracy ${(r.accuracy * 100).toFixed(2)}% on ${images.labels.length} images ` +
      `(${r.evaluator}, ${
        ((r.seconds / Math.max(1, images.labels.length)) * 1000).toFixed(2)
      } ms per image)`,
  );
});

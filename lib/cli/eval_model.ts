/**
 * `deno task eval-model <model.qgt> [--dataset NAME] [--data DIR]`: runs an
 * exported model with the integer interpreter and prints its accuracy and its
 * bytes by part. The images: the run's validation set when the model sits in
 * a run directory (`variants/<name>/export/model.qgt`), else the dataset its
 * header's provenance names (format version 2), else a guess from its classes
 * (version 1); `--dataset` / `--data` override. It always says which it used.
 * @module
 */
import { parseFlags, runMain, UsageError } from "../util/cli.ts";
import { loadDataset } from "../data/registry.ts";
import { evaluateModel } from "../export/export.ts";
import { modelImages, readModel } from "../run/model_images.ts";

const USAGE =
  "usage: deno task eval-model <model.qgt> [--dataset NAME] [--data DIR] [--skip-bad-images]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    dataset: { type: "string" },
    data: { type: "string" },
    "skip-bad-images": { type: "boolean" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const path = positionals[0];
  const { bytes, file } = await readModel(path);
  for (const n of file.notes) console.error(`note: ${n}`);
  const h = file.header;
  const choice = await modelImages(path, h, f as Parameters<typeof modelImages>[2]);
  const { val } = await loadDataset(choice.name, choice.options);
  const r = await evaluateModel(bytes, val, path);
  const p = file.parts;
  console.log(
    `${path}: ${h.name}, format version ${file.version}, ${h.layers.length} layers, ${p.total} bytes ` +
      `(codes ${p.codes}, scales ${p.scales}, zero points ${p.zeroPoints}, biases ${p.biases}, header ${p.header})`,
  );
  console.log(
    `images: ${choice.why}: ${choice.name} ${
      JSON.stringify(choice.options)
    }, ${val.name}, ${val.labels.length} images`,
  );
  console.log(
    `accuracy ${(r.accuracy * 100).toFixed(2)}% ` +
      `(${r.evaluator}, ${
        ((r.seconds / Math.max(1, val.labels.length)) * 1000).toFixed(2)
      } ms per image)`,
  );
});

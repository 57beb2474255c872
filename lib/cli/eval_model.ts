/**
 * `deno task eval-model <model.qgt> [--dataset NAME] [--data DIR]`: runs an
 * exported model with the integer interpreter on a dataset's validation set
 * and prints its accuracy and its bytes by part. The dataset defaults to
 * synthetic-person for 2-class person models and fashion-mnist for 10 classes.
 * @module
 */
import { parseFlags, runMain, UsageError } from "../util/cli.ts";
import { DATASET_OPTIONS, type DatasetName, loadDataset } from "../data/registry.ts";
import { parseQgt } from "../export/format.ts";
import { evaluateInterpreter } from "../export/export.ts";
import { exists } from "../util/fs.ts";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    dataset: { type: "string" },
    data: { type: "string" },
    "skip-bad-images": { type: "boolean" },
  });
  if (positionals.length !== 1) {
    throw new UsageError("usage: deno task eval-model <model.qgt> [--dataset NAME] [--data DIR]");
  }
  const path = positionals[0];
  if (!(await exists(path))) throw new Error(`${path}: file not found`);
  const bytes = await Deno.readFile(path);
  const file = parseQgt(bytes, path);
  const h = file.header;
  const name = (f.dataset as string | undefined) ??
    (f.data && h.classes.includes("person")
      ? "vww"
      : h.classes.length === 10
      ? "fashion-mnist"
      : "synthetic-person");
  const [size, , channels] = h.input.shape;
  const { val } = await loadDataset(name, {
    dir: f.data as string | undefined,
    // the model's input size and channels, for the datasets that render or resize to them
    ...(DATASET_OPTIONS[name as DatasetName]?.includes("size")
      ? { size, channels: channels as 1 | 3 }
      : {}),
    skipBadImages: f["skip-bad-images"] ? true : undefined,
  });
  const r = await evaluateInterpreter(bytes, val, path);
  const p = file.parts;
  console.log(
    `${path}: ${h.name}, ${h.layers.length} layers, ${p.total} bytes ` +
      `(codes ${p.codes}, scales ${p.scales}, zero points ${p.zeroPoints}, biases ${p.biases}, header ${p.header})`,
  );
  console.log(
    `${val.name}: ${val.labels.length} images, accuracy ${(r.accuracy * 100).toFixed(2)}% ` +
      `(${((r.seconds / Math.max(1, val.labels.length)) * 1000).toFixed(1)} ms per image)`,
  );
});

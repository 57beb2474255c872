/**
 * `deno task data <name> [--out DIR] [--data DIR] [--per-class N] [--zoom N]`:
 * prints counts per class of a dataset's train and validation sets and writes
 * a contact sheet PNG of labelled samples (`<out>/<name>-train.png`).
 * @module
 */
import { join } from "node:path";
import { classCounts, DATASETS, loadDataset } from "../data/registry.ts";
import { contactSheet } from "../report/preview.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { loadingProgress } from "../util/progress.ts";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";

const USAGE = `usage: deno task data <${
  DATASETS.join("|")
}> [--out DIR] [--data DIR] [--per-class N] [--zoom N] [--skip-bad-images]`;

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: {
      type: "string",
      arg: "DIR",
      default: "reports/data",
      help: "where the contact sheet goes",
    },
    data: { type: "string", arg: "DIR", help: "the dataset's folder (vww, fashion-mnist)" },
    "per-class": { type: "string", arg: "N", default: "12", help: "images per class on the sheet" },
    zoom: { type: "string", arg: "N", default: "1", help: "pixel zoom of the sheet (1-8)" },
    "skip-bad-images": { type: "boolean", help: "skip unreadable images instead of failing" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const name = positionals[0];
  if (!(DATASETS as readonly string[]).includes(name)) {
    throw new UsageError(`unknown dataset ${JSON.stringify(name)}\n${USAGE}`);
  }
  const perClass = intFlag("--per-class", f["per-class"], 1, 64);
  const zoom = intFlag("--zoom", f.zoom, 1, 8);
  const t0 = performance.now();
  const { train, val, notes } = await loadDataset(name, {
    dir: f.data as string | undefined,
    skipBadImages: f["skip-bad-images"] ? true : undefined,
    onProgress: loadingProgress(),
  });
  for (const n of notes) console.log(n);
  console.log(
    `${name}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; images ${
      train.shape.join("x")
    }`,
  );
  for (const ds of [train, val]) {
    const counts = classCounts(ds);
    console.log(
      `  ${ds.name}: ${ds.labels.length} images; ` +
        Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", "),
    );
  }
  const out = join(f.out as string, `${name}-train.png`);
  await writeFileAtomic(out, await contactSheet(train, perClass, zoom));
  console.log(`wrote ${out}`);
});

// Format version 4 against the committed models of versions 2 and 3: the upgraded file gives the
// same int32 logits as the original in the TypeScript interpreter and in the C runtime, on
// validation images of the model's own dataset.
import { join } from "node:path";
import { parseQgt, upgradeQgt } from "../lib/format/model_file.ts";
import { loadInterpreter, pixelsToInt8, runInterpreter } from "../lib/engine/interpreter.ts";
import { findCompiler, loadNative } from "../lib/engine/native.ts";
import { modelImages, readModel, scoredImages } from "../lib/run/model_images.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { assert } from "./assert.ts";

/** The first committed export of `variant` under reports/results/<experiment>/ in format `version`. */
async function committedModel(
  experiment: string,
  variant: string,
  version: number,
): Promise<string | null> {
  const root = join(REPO_ROOT, "reports", "results", experiment);
  const runs = [...Deno.readDirSync(root)].map((e) => e.name).sort();
  for (const r of runs) {
    const p = join(root, r, "variants", variant, "export", "model.qgt");
    const b = await Deno.readFile(p).catch(() => null);
    if (b && b[4] === version) return p;
  }
  return null;
}

const cc = await findCompiler();
const FASHION = await Deno.stat("/usr/share/datasets/fashion-mnist").then(() => true, () => false);

for (
  const [experiment, variant, version, count] of [
    ["fashion-mnist", "qgt-2", 2, 500],
    ["person-detect", "qgt-2", 1, 60],
    ["person-detect", "qat-2", 2, 60],
  ] as const
) {
  Deno.test({
    name:
      `format version 4: a committed version-${version} ${experiment} ${variant} model upgraded gives the same int32 logits (interpreter and C runtime, ${count} validation images)`,
    ignore: experiment === "fashion-mnist" && !FASHION,
    fn: async () => {
      const path = await committedModel(experiment, variant, version);
      assert.ok(path, `no committed version-${version} ${experiment} ${variant} model`);
      const { bytes, file } = await readModel(path);
      assert.equal(file.version, version);
      const v4 = upgradeQgt(bytes, path);
      assert.equal(parseQgt(v4, "v4").version, 4);
      const choice = await modelImages(path, file.header, {});
      const { images } = await scoredImages(path, file.header, choice, { count });
      const old = loadInterpreter(bytes, path), now = loadInterpreter(v4, "v4");
      const c = cc ? await loadNative(v4, "v4") : null;
      const per = images.images.length / images.labels.length;
      for (let i = 0; i < images.labels.length; i++) {
        const x = pixelsToInt8(images.images.subarray(i * per, (i + 1) * per));
        const want = [...runInterpreter(old, x).acc];
        assert.deepStrictEqual([...runInterpreter(now, x).acc], want, `image ${i}: interpreter`);
        if (c) assert.deepStrictEqual([...c.invoke(x)], want, `image ${i}: C runtime`);
      }
    },
  });
}

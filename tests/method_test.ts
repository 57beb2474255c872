import { loadExperimentModule, resolveExperiment } from "../lib/experiment/define.ts";
import { methodOf, startsFromFloat } from "../lib/experiment/method.ts";
import { join } from "node:path";
import { assert } from "./assert.ts";

Deno.test("methodOf: each mode keeps only its own settings, with the defaults worked out by hand", () => {
  // float drops what a base shares with its quantized variants
  assert.deepStrictEqual(methodOf({ mode: "float", lr: 5e-4, bits: 2 }, "x"), { mode: "float" });
  assert.deepStrictEqual(methodOf({ mode: "ptq", bits: 4, lr: 5e-4, epochs: 3 }, "x"), {
    mode: "ptq",
    quant: {
      bits: 4,
      symmetric: undefined,
      narrowRange: undefined,
      perChannel: undefined,
      scale: undefined,
      layers: {},
      activationBits: 8,
    },
  });
  const qat = methodOf({
    mode: "qat",
    bits: 2,
    from: "scratch",
    lambda: { type: "constant", lambda: 3 },
  }, "x");
  assert.equal(qat.mode, "qat");
  // from scratch BatchNorm is live; a QAT variant has no lambda even when the base gives one
  assert.deepStrictEqual([qat.mode === "qat" && qat.liveBatchNorm, "lambda" in qat], [true, false]);
  const qgt = (o: object) => methodOf({ mode: "qgt", bits: 2, ...o }, "x");
  const g = qgt({});
  assert.ok(g.mode === "qgt");
  // without fake quantization: one folded fine-tuning epoch after the regularized phase
  assert.deepStrictEqual(
    [g.fakeQuant, g.regularizer, g.lambda, g.finetuneEpochs, g.lsq],
    [false, "grid", { type: "linear", from: 0, to: 1 }, 1, undefined],
  );
  const ste = qgt({ fakeQuant: true, scale: "lsq", lsqStepLr: 0.01 });
  assert.ok(ste.mode === "qgt");
  assert.deepStrictEqual([ste.finetuneEpochs, ste.lsq], [0, { init: "paper", stepLr: 0.01 }]);
  // a mixed-precision search wraps the mode it quantizes with, PTQ included
  const mixed = { budgetBytes: 9000, candidates: [2, 4] };
  const mp = methodOf({ mode: "ptq", bits: 4, mixed }, "x");
  assert.ok(mp.mode === "mixed" && mp.base.mode === "ptq" && mp.search === mixed);
  assert.deepStrictEqual([startsFromFloat(mp), startsFromFloat(qat)], [true, false]);
});

Deno.test("methodOf: a setting that contradicts the mode is one line naming the field", () => {
  const err = (q: object) => {
    try {
      methodOf(q as never, "m.ts: variants.v.qgt");
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  };
  assert.match(
    err({ mode: "qat", decoupled: true }),
    /^m\.ts: variants\.v\.qgt\.decoupled: needs mode "qgt"/,
  );
  assert.match(
    err({ mode: "qgt", freeze: { momentum: 0.1, threshold: 0.5 } }),
    /^m\.ts: variants\.v\.qgt\.freeze: needs .* got mode "qgt" without fakeQuant$/,
  );
  assert.match(
    err({ mode: "qat", lsqInit: "mse" }),
    /^m\.ts: variants\.v\.qgt\.lsqInit: needs scale "lsq"/,
  );
  assert.match(
    err({ mode: "ptq", scale: "lsq" }),
    /^m\.ts: variants\.v\.qgt\.scale: "lsq" learns the step/,
  );
  assert.match(
    err({ mode: "ptq", from: "scratch" }),
    /^m\.ts: variants\.v\.qgt\.from: "scratch" needs mode/,
  );
  assert.equal(
    err({ mode: "qgt", fakeQuant: true, freeze: { momentum: 0.1, threshold: 0.5 } }),
    "",
  );
});

Deno.test("the settings hash of every committed run at its experiment's current version is unchanged", async () => {
  // the hash covers the settings as written (the `qgt` key), not the translated method: the runs
  // committed under reports/ were hashed before the method union existed
  let checked = 0;
  for (const root of ["reports/results", "reports/results-native"]) {
    for await (const file of walkRunFiles(root)) {
      const run = JSON.parse(await Deno.readTextFile(file));
      const def = await loadExperimentModule(run.experiment.path) as { version: number };
      if (def.version !== run.experiment.version) continue; // an older version of the module
      const ex = resolveExperiment(def, { profile: run.experiment.profile, seed: run.seed });
      for (const [name, rec] of Object.entries(run.variants as Record<string, { hash: string }>)) {
        const v = ex.variants.find((x) => x.name === name);
        if (!v) continue;
        assert.equal(v.hash, rec.hash, `${file}: variant ${name}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 100, `only ${checked} committed variants checked`);
});

async function* walkRunFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walkRunFiles(p);
    else if (e.name === "run.json") yield p;
  }
}

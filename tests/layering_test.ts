// The layering of lib/: a folder imports only from its own layer and the layers below it.
import { join, relative } from "node:path";
import { tempDir } from "./tmp.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { assert } from "./assert.ts";
import { tsFiles } from "./helpers.ts";

/**
 * The layers of `lib/`, lowest first: the one place the order is written
 * down (README "Layout" and docs/architecture.md describe it).
 */
export const LAYERS = [
  "util",
  "backend",
  "data",
  "models",
  "quant",
  "format",
  "run",
  "engine",
  "eval",
  "train",
  "methods",
  "export",
  "report",
  "experiment",
  "analysis",
  "site",
  "sweep",
  "cli",
];

/** Every import edge between two files of lib/, from `deno info --json` over all of them. */
async function libImports(): Promise<[string, string][]> {
  const lib = join(REPO_ROOT, "lib");
  const files = (await tsFiles(lib)).sort();
  // one graph for every file (workers and CLIs are entry points deno info would not reach)
  const entry = join(await tempDir(), "all.ts");
  await Deno.writeTextFile(
    entry,
    files.map((f) => `import ${JSON.stringify(`file://${f}`)};`).join("\n") + "\n",
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", join(REPO_ROOT, "deno.json"), entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { code?: { specifier?: string } }[] }[];
  };
  const inLib = (s: string) => s.startsWith(`file://${lib}/`);
  const edges: [string, string][] = [];
  for (const m of graph.modules) {
    if (!inLib(m.specifier)) continue;
    for (const d of m.dependencies ?? []) {
      const to = d.code?.specifier;
      if (to && inLib(to)) {
        edges.push([
          relative(lib, new URL(m.specifier).pathname),
          relative(lib, new URL(to).pathname),
        ]);
      }
    }
  }
  return edges;
}

Deno.test("layering: no module of lib/ imports from a higher layer", async () => {
  const edges = await libImports();
  assert.ok(edges.length > 100, `only ${edges.length} import edges found`);
  const layerOf = (file: string) => {
    const i = LAYERS.indexOf(file.split("/")[0]);
    assert.ok(i >= 0, `lib/${file} is in no layer (add its folder to LAYERS)`);
    return i;
  };
  const upward = edges.filter(([from, to]) => layerOf(to) > layerOf(from))
    .map(([from, to]) => `lib/${from} imports lib/${to}`);
  assert.deepStrictEqual(upward, []);
  // every layer is used, so the list stays the truth
  const used = new Set(edges.flat().map((f) => f.split("/")[0]));
  assert.deepStrictEqual(LAYERS.filter((l) => !used.has(l)), []);
});

Deno.test("layering: the check sees an upward import", async () => {
  // a mutation of the rule above: pretend util sits above cli, and the test must object
  const edges = await libImports();
  const swapped = ["cli", ...LAYERS.slice(1, -1), "util"];
  const upward = edges.filter(([from, to]) =>
    swapped.indexOf(to.split("/")[0]) > swapped.indexOf(from.split("/")[0])
  );
  assert.ok(upward.some(([from]) => from.startsWith("cli/")), "no cli -> util edge seen");
});

Deno.test("layering: lib/format/ is pure: nothing it imports reaches tfjs", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", join(REPO_ROOT, "deno.json"), "lib/format/mod.ts"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const specs = graph.modules.map((m) => m.specifier);
  assert.ok(specs.some((s) => s.endsWith("lib/format/model_file.ts")), "the graph is empty");
  // the modules reached (type-only imports included): none of tfjs, none of lib/backend/
  const tfjs = specs.filter((s) => s.includes("tensorflow") || s.includes("/lib/backend/"));
  assert.deepStrictEqual(tfjs, []);
});

// Tests clean up after themselves: tempDir's root goes when its module ends (pass or fail), and
// no test makes a temporary directory any other way.
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { assert } from "./assert.ts";
import { tsFiles } from "./helpers.ts";
import { REPO_ROOT } from "../lib/util/path.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Runs a one-test module that makes two directories and then runs `body`; what is left of them. */
async function leftBehind(body: string): Promise<{ code: number; dirs: string[] }> {
  const script = join(here, `.tmp-probe-${crypto.randomUUID()}_test.ts`);
  await Deno.writeTextFile(
    script,
    `import { tempDir } from "./tmp.ts";\n` +
      `Deno.test("probe", async () => {\n` +
      `  const a = await tempDir(), b = await tempDir("p-");\n` +
      `  await Deno.writeTextFile(a + "/f", "x");\n` +
      `  console.log("dirs:" + JSON.stringify([a, b]));\n${body}\n});\n`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
      l.startsWith("dirs:")
    );
    const dirs: string[] = JSON.parse(line!.slice("dirs:".length));
    const still = [];
    for (const d of [...dirs, join(dirs[0], "..")]) {
      try {
        await Deno.stat(d);
        still.push(d);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return { code: out.code, dirs: still };
  } finally {
    await Deno.remove(script);
  }
}

Deno.test("tempDir: the module's root and everything in it are gone at exit", async () => {
  assert.deepStrictEqual(await leftBehind(""), { code: 0, dirs: [] });
});

Deno.test("tempDir: gone too when the test fails", async () => {
  const r = await leftBehind(`throw new Error("a failing test");`);
  assert(r.code !== 0);
  assert.deepStrictEqual(r.dirs, []);
});

Deno.test("no test makes a temporary directory except through tests/tmp.ts", async () => {
  const offenders = [];
  for await (const e of Deno.readDir(here)) {
    if (!e.isFile || !e.name.endsWith(".ts") || e.name === "tmp.ts") continue;
    const src = await Deno.readTextFile(join(here, e.name));
    if (/Deno\.makeTemp(Dir|File)(Sync)?\(/.test(src)) {
      offenders.push(e.name);
    }
  }
  assert.deepStrictEqual(offenders, []);
});

Deno.test("every doc example that makes a temporary directory or file removes it", async () => {
  const offenders: string[] = [];
  for (const p of [...await tsFiles(join(REPO_ROOT, "lib")), join(REPO_ROOT, "mod.ts")]) {
    for (const m of (await Deno.readTextFile(p)).matchAll(/```ts\n([\s\S]*?)```/g)) {
      const made = (m[1].match(/Deno\.makeTemp(Dir|File)\(/g) ?? []).length;
      const removed = (m[1].match(/Deno\.remove\(/g) ?? []).length;
      if (made > removed) {
        offenders.push(`${relative(REPO_ROOT, p)}: ${made} made, ${removed} removed`);
      }
    }
  }
  assert.deepStrictEqual(offenders, []);
});

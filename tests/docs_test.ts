// The manual: every relative link in README.md and docs/*.md resolves, and the README stays short.
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../lib/util/path.ts";
import { assert } from "./assert.ts";

async function markdownFiles(): Promise<string[]> {
  const files = [join(REPO_ROOT, "README.md"), join(REPO_ROOT, "data", "README.md")];
  for await (const e of Deno.readDir(join(REPO_ROOT, "docs"))) {
    if (e.name.endsWith(".md")) files.push(join(REPO_ROOT, "docs", e.name));
  }
  return files.sort();
}

/** Relative link targets of a markdown text (inline links, not in code spans), without anchors. */
export function relativeLinks(md: string): string[] {
  const out: string[] = [];
  const noCode = md.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "``");
  for (const m of noCode.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1];
    if (/^[a-z]+:/i.test(target) || target.startsWith("#")) continue;
    out.push(decodeURIComponent(target.split("#")[0]));
  }
  return out;
}

Deno.test("relativeLinks finds links outside code, drops anchors and absolute URLs", () => {
  const md = "[a](docs/x.md#sec) `[b](nope.md)` [c](https://x.org) [d](#here)\n```\n[e](f.md)\n```";
  assert.deepStrictEqual(relativeLinks(md), ["docs/x.md"]);
});

Deno.test("every relative link in README.md and docs/*.md resolves", async () => {
  const broken: string[] = [];
  let n = 0;
  for (const file of await markdownFiles()) {
    for (const link of relativeLinks(await Deno.readTextFile(file))) {
      n++;
      try {
        await Deno.stat(join(dirname(file), link));
      } catch {
        broken.push(`${file.slice(REPO_ROOT.length)}: ${link}`);
      }
    }
  }
  assert.ok(n > 30, `only ${n} links found`);
  assert.deepStrictEqual(broken, []);
});

Deno.test("the README is a short manual (at most about 15 KB)", async () => {
  const size = (await Deno.stat(join(REPO_ROOT, "README.md"))).size;
  assert.ok(size <= 15500, `README.md is ${size} bytes`);
});

// Several jobs writing into one run root at the same moment (as a sweep's jobs do, on one machine
// or on a cluster's shared filesystem): each keeps its own run directory whole, and the files
// they share (the float baseline, the dataset cache) end up as one writer's complete version.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { assert } from "./assert.ts";
import { REPO_ROOT } from "../lib/util/path.ts";
import { listRunDirs, readRunRecord } from "../lib/run/run_dir.ts";
import { readFloatBaseline } from "../lib/run/final.ts";
import { loadCached } from "../lib/data/cache.ts";

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await allFiles(p));
    else out.push(p);
  }
  return out;
}

Deno.test("concurrent jobs in one run root: no run lost, shared files whole, no temporary files left", async () => {
  const root = await tempDir("qgt-concurrent-");
  try {
    const n = 6;
    const at = Date.now() + 4000; // every process started and waiting by then
    const procs = Array.from({ length: n }, (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(REPO_ROOT, "tests/fixtures/concurrent_writer.ts"),
          root,
          String(at),
          String(i + 1),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output());
    const results = await Promise.all(procs);
    for (const r of results) assert(r.success, new TextDecoder().decode(r.stderr));
    // every writer's run: its own directory, its record and result, all 20 tables
    const runs = await listRunDirs(root, "exp");
    assert.deepStrictEqual(runs.length, n);
    assert.deepStrictEqual(
      runs.map((r) => r.record.seed).sort(),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    for (const r of runs) {
      const rec = await readRunRecord(r.dir);
      const res = JSON.parse(await Deno.readTextFile(join(r.dir, "variants/float/result.json")));
      assert.deepStrictEqual(res.writer, rec.seed);
      for (let e = 0; e < 20; e++) {
        assert.deepStrictEqual(
          await Deno.readTextFile(join(r.dir, `epoch${e}.csv`)),
          `${rec.seed},${e}\n`,
        );
      }
    }
    // the shared baseline is one writer's, whole: its weights all carry that writer's index
    const ck = join(root, ".checkpoints");
    const [file] = [...Deno.readDirSync(ck)].map((e) => join(ck, e.name));
    const b = await readFloatBaseline(file);
    const writer = Number(b.hash.replace("writer ", ""));
    assert(writer >= 1 && writer <= n, b.hash);
    assert.deepStrictEqual(b.weights.w.length, 1 << 18);
    assert(b.weights.w.every((x) => x === writer), "the baseline mixes two writers' weights");
    // the shared cache entry loads and passes its checksum
    const cached = await loadCached("shared", "k1", join(root, "data"));
    assert(cached !== null, "the dataset cache entry is damaged");
    assert.deepStrictEqual(cached.ds.labels.length, 500);
    const tmp = (await allFiles(root)).filter((f) => f.endsWith(".tmp"));
    assert.deepStrictEqual(tmp, []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

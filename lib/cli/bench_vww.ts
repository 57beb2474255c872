/**
 * `deno task bench`'s VWW loading measurement: how fast MLPerf Tiny-layout JPEGs decode and
 * resize the first time, and load from the cache after.
 * @module
 */
import { encodeJpeg } from "../data/image.ts";
import { renderSyntheticPerson } from "../data/synthetic_person.ts";
import { loadVww } from "../data/vww.ts";

/**
 * Loading speed of `count` 96x96 RGB JPEGs (quality 90, synthetic-person
 * scenes) in the VWW layout into 96x96x1: decoded and resized, then again
 * from the decoded-array cache. Images per second; the files live in a
 * temporary directory that is removed.
 */
export async function vwwLoadSpeed(count: number) {
  const root = await Deno.makeTempDir({ prefix: "qgt-bench-vww-" });
  try {
    const dir = `${root}/vww`, px = new Uint8Array(96 * 96 * 3);
    for (const c of ["person", "non_person"]) await Deno.mkdir(`${dir}/${c}`, { recursive: true });
    for (let i = 0; i < count; i++) {
      const label = renderSyntheticPerson(1, i, 96, 3, px);
      const rgba = new Uint8Array(96 * 96 * 4);
      for (let p = 0; p < 96 * 96; p++) {
        rgba.set(px.subarray(p * 3, p * 3 + 3), p * 4);
        rgba[p * 4 + 3] = 255;
      }
      const jpg = encodeJpeg({ width: 96, height: 96, data: rgba }, 90);
      await Deno.writeFile(`${dir}/${label ? "person" : "non_person"}/${i}.jpg`, jpg);
    }
    const opts = { dir, channels: 1 as const, cacheRoot: `${root}/cache` };
    let t0 = performance.now();
    await loadVww(opts); // decodes everything and fills the cache
    const decodeS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    await loadVww(opts);
    const cachedS = (performance.now() - t0) / 1000;
    return { images: count, decodedPerSecond: count / decodeS, cachedPerSecond: count / cachedS };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

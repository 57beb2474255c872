// Datasets: synthetic-person determinism and balance, the VWW loader on files the
// test writes, the IDX reader on small and broken files, and the real Fashion-MNIST.
import { join } from "node:path";
import { tempDir } from "./tmp.ts";
import { gzipSync } from "node:zlib";
import {
  generateSyntheticPerson,
  GENERATOR_VERSION,
  loadSyntheticPerson,
} from "../lib/data/synthetic_person.ts";
import { loadVww, pathFraction } from "../lib/data/vww.ts";
import { parseIdx } from "../lib/data/idx.ts";
import {
  FASHION_MNIST_DIR,
  loadFashionMnist,
  loadFashionMnistSplit,
} from "../lib/data/fashion_mnist.ts";
import { encodeJpeg, encodePng, resizeImage } from "../lib/data/image.ts";
import { classCounts, loadDataset } from "../lib/data/registry.ts";
import { contactSheet } from "../lib/report/preview.ts";
import { exists } from "../lib/util/fs.ts";
import { assert } from "./assert.ts";

Deno.test("synthetic-person: same seed same bytes, other seed other images, balanced classes", () => {
  const a = generateSyntheticPerson({ count: 40, seed: 3, size: 48 });
  const b = generateSyntheticPerson({ count: 40, seed: 3, size: 48 });
  const c = generateSyntheticPerson({ count: 40, seed: 4, size: 48 });
  assert.deepStrictEqual(a.images, b.images);
  assert.deepStrictEqual(a.labels, b.labels);
  // every image differs from the other seed's image at the same index
  const per = 48 * 48;
  for (let i = 0; i < 40; i++) {
    assert.notDeepStrictEqual(
      a.images.subarray(i * per, (i + 1) * per),
      c.images.subarray(i * per, (i + 1) * per),
    );
  }
  assert.deepStrictEqual(classCounts(a), { non_person: 20, person: 20 });
  // an offset selects the same images as a longer run
  const tail = generateSyntheticPerson({ count: 10, seed: 3, size: 48, offset: 30 });
  assert.deepStrictEqual(tail.images, a.images.subarray(30 * per));
  // images are not blank: a spread of gray levels
  const levels = new Set(a.images);
  assert.ok(levels.size > 200);
  // RGB option
  const rgb = generateSyntheticPerson({ count: 2, seed: 3, size: 32, channels: 3 });
  assert.deepStrictEqual(rgb.shape, [32, 32, 3]);
  assert.equal(rgb.images.length, 2 * 32 * 32 * 3);
});

Deno.test("synthetic-person cache: built once with a manifest, reloaded identically, damage detected", async () => {
  const root = await tempDir();
  const a = await loadSyntheticPerson({ count: 6, seed: 2, size: 32 }, root);
  const dir = join(root, "synthetic-person", `v${GENERATOR_VERSION}-s2-o0-n6-32x32x1`);
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  assert.equal(manifest.generatorVersion, GENERATOR_VERSION);
  assert.equal(manifest.seed, 2);
  assert.equal(manifest.count, 6);
  assert.match(manifest.checksum, /^[0-9a-f]{64}$/);
  const b = await loadSyntheticPerson({ count: 6, seed: 2, size: 32 }, root);
  assert.deepStrictEqual(a.images, b.images);
  // corrupt the cached images: the checksum fails and the set is regenerated, not trusted
  const bytes = await Deno.readFile(join(dir, "images.bin"));
  bytes[0] ^= 0xff;
  await Deno.writeFile(join(dir, "images.bin"), bytes);
  const c = await loadSyntheticPerson({ count: 6, seed: 2, size: 32 }, root);
  assert.deepStrictEqual(c.images, a.images);
  await Deno.remove(root, { recursive: true });
});

function solid(w: number, h: number, v: number) {
  const d = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) d.set([v, v, v, 255], i * 4);
  return { width: w, height: h, data: d };
}

async function writeVww(root: string) {
  await Deno.mkdir(join(root, "person"), { recursive: true });
  await Deno.mkdir(join(root, "non_person"), { recursive: true });
  for (let i = 0; i < 6; i++) {
    await Deno.writeFile(join(root, "person", `p${i}.jpg`), encodeJpeg(solid(96, 96, 200), 95));
    await Deno.writeFile(join(root, "non_person", `n${i}.png`), encodePng(solid(96, 96, 40)));
  }
  // a wrong-size image (resized) and a corrupt one (truncated JPEG)
  await Deno.writeFile(join(root, "person", "big.jpeg"), encodeJpeg(solid(160, 120, 210), 95));
  const jpg = encodeJpeg(solid(96, 96, 100), 95);
  await Deno.writeFile(join(root, "non_person", "broken.jpg"), jpg.subarray(0, jpg.length >> 1));
  await Deno.writeFile(
    join(root, "non_person", "notes.txt"),
    new TextEncoder().encode("not an image"),
  );
}

Deno.test("vww loader: layout, resizing, labels, split, corrupt files and empty folders", async () => {
  const root = await tempDir();
  await writeVww(root);
  // by default a corrupt file fails the load, naming it
  await assert.rejects(() => loadVww({ dir: root }), /broken\.jpg: cannot decode image: truncated/);
  const r = await loadVww({ dir: root, skipBadImages: true, size: [32, 32], valFraction: 0.3 });
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0], /broken\.jpg/);
  const all = [...r.train.labels, ...r.val.labels];
  assert.equal(all.length, 13); // 7 person + 6 non_person, notes.txt ignored
  assert.equal(all.filter((l) => l === 1).length, 7);
  assert.deepStrictEqual(r.train.shape, [32, 32, 1]);
  // the split is the path hash: the validation set holds exactly the files hashing below 0.3
  const names = [...Array(6).keys()].flatMap((i) => [`person/p${i}.jpg`, `non_person/n${i}.png`])
    .concat("person/big.jpeg");
  assert.equal(r.val.labels.length, names.filter((n) => pathFraction(n) < 0.3).length);
  // pixel values survive decode + resize (JPEG within a few levels)
  const per = 32 * 32;
  for (let i = 0; i < r.train.labels.length; i++) {
    const v = r.train.images[i * per + 100];
    assert.ok(r.train.labels[i] === 1 ? Math.abs(v - 205) <= 8 : v === 40, `image ${i}: ${v}`);
  }
  // RGB output and a split file
  await Deno.writeTextFile(join(root, "val.txt"), "person/p0.jpg\nnon_person/n1.png\n");
  const s = await loadVww({
    dir: root,
    skipBadImages: true,
    channels: 3,
    splitFile: join(root, "val.txt"),
  });
  assert.deepStrictEqual(s.val.labels.length, 2);
  assert.deepStrictEqual(s.val.shape, [96, 96, 3]);
  await Deno.writeTextFile(join(root, "bad.txt"), "person/nope.jpg\n");
  await assert.rejects(
    () => loadVww({ dir: root, skipBadImages: true, splitFile: join(root, "bad.txt") }),
    /1 listed images not in/,
  );
  // an empty class folder and a missing one
  const empty = await tempDir();
  await Deno.mkdir(join(empty, "person"));
  await Deno.mkdir(join(empty, "non_person"));
  await Deno.writeFile(join(empty, "person", "a.png"), encodePng(solid(8, 8, 1)));
  await assert.rejects(() => loadVww({ dir: empty }), /non_person has no images/);
  await assert.rejects(
    () => loadVww({ dir: join(empty, "nope") }),
    /not found; expected .*person,non_person/,
  );
  await Deno.remove(root, { recursive: true });
  await Deno.remove(empty, { recursive: true });
});

Deno.test("vww cache: second load reads the cache and gives the same arrays", async () => {
  const root = await tempDir(), cache = await tempDir();
  await writeVww(root);
  const a = await loadVww({ dir: root, skipBadImages: true, cacheRoot: cache, size: [16, 16] });
  assert.ok(await exists(join(cache, "vww")));
  const b = await loadVww({ dir: root, skipBadImages: true, cacheRoot: cache, size: [16, 16] });
  assert.deepStrictEqual(a.train.images, b.train.images);
  assert.deepStrictEqual(a.skipped, b.skipped);
  await Deno.remove(root, { recursive: true });
  await Deno.remove(cache, { recursive: true });
});

Deno.test("vww trainCount / valCount: a fixed subset by path hash, decoded alone, cached apart", async () => {
  // 60 images, each a distinct gray level, so a pixel tells which file it came from
  const root = await tempDir(), cache = await tempDir();
  const level = new Map<string, number>();
  for (const [cls, base] of [["person", 100], ["non_person", 20]] as const) {
    await Deno.mkdir(join(root, cls));
    for (let i = 0; i < 30; i++) {
      level.set(`${cls}/${i}.png`, base + 2 * i);
      await Deno.writeFile(join(root, cls, `${i}.png`), encodePng(solid(8, 8, base + 2 * i)));
    }
  }
  const o = { dir: root, size: [8, 8] as [number, number], valFraction: 0.25 };
  const levels = (d: { images: Uint8Array; labels: Uint8Array }) =>
    [...d.labels.keys()].map((i) => d.images[i * 64]).sort((a, b) => a - b);
  const full = await loadVww(o);
  const capped = await loadVww({ ...o, trainCount: 10, valCount: 3, cacheRoot: cache });
  assert.deepStrictEqual(capped.available, {
    train: full.train.labels.length,
    val: full.val.labels.length,
  });
  assert.equal(capped.train.labels.length, 10);
  assert.equal(capped.val.labels.length, 3);
  // the documented rule, computed here: in each split, the paths lowest by pathFraction("subset/" + path)
  const pick = (inVal: boolean, n: number) =>
    [...level.keys()].filter((p) => (pathFraction(p) < 0.25) === inVal)
      .sort((a, b) => pathFraction(`subset/${a}`) - pathFraction(`subset/${b}`))
      .slice(0, n).map((p) => level.get(p)!).sort((a, b) => a - b);
  assert.deepStrictEqual(levels(capped.train), pick(false, 10));
  assert.deepStrictEqual(levels(capped.val), pick(true, 3));
  for (const l of levels(capped.train)) assert.ok(levels(full.train).includes(l));
  // labels follow the folder: person images are the levels >= 100
  for (const [i, y] of capped.train.labels.entries()) {
    assert.equal(y, capped.train.images[i * 64] >= 100 ? 1 : 0);
  }
  // only the chosen images are decoded: a corrupt file outside the subset does not matter
  const outside = [...level.keys()].find((p) =>
    pathFraction(p) >= 0.25 && !pick(false, 10).includes(level.get(p)!)
  )!;
  const bytes = await Deno.readFile(join(root, outside));
  await Deno.writeFile(join(root, outside), bytes.subarray(0, 20));
  assert.deepStrictEqual(levels((await loadVww({ ...o, trainCount: 10 })).train), pick(false, 10));
  await Deno.writeFile(join(root, outside), bytes);
  // the cache keeps the capped and the full set apart; a cap above the count takes every image
  const all = await loadVww({ ...o, trainCount: 1000, cacheRoot: cache });
  assert.deepStrictEqual(levels(all.train), levels(full.train));
  assert.deepStrictEqual(
    levels((await loadVww({ ...o, trainCount: 10, valCount: 3, cacheRoot: cache })).train),
    pick(false, 10),
  );
  await assert.rejects(
    () => loadVww({ ...o, trainCount: 0 }),
    /vww: trainCount must be an integer >= 1, got 0/,
  );
  // through the registry: a note says how many of how many
  const r = await loadDataset("vww", {
    dir: root,
    size: 8,
    valFraction: 0.25,
    trainCount: 10,
    cacheRoot: cache,
  });
  assert.equal(r.train.labels.length, 10);
  assert.deepStrictEqual(r.notes, [
    `vww: 10 of ${full.train.labels.length} training and ${full.val.labels.length} of ${full.val.labels.length} validation images (options.trainCount / valCount; a fixed subset by path hash)`,
  ]);
  await Deno.remove(root, { recursive: true });
  await Deno.remove(cache, { recursive: true });
});

Deno.test("datasets reject options they do not read, naming the option and the ones they read", async () => {
  await assert.rejects(
    () => loadDataset("vww", { dir: "/nonexistent", valOffset: 5 }),
    /^Error: dataset vww: options\.valOffset is not an option of vww \(its options: dir, trainCount, valCount, size, channels, valFraction, splitFile, skipBadImages\)$/,
  );
  await assert.rejects(
    () => loadDataset("synthetic-person", { trainCount: 4, valCount: 2, dir: "/x" }),
    /^Error: dataset synthetic-person: options\.dir is not an option of synthetic-person/,
  );
  await assert.rejects(
    () => loadDataset("fashion-mnist", { skipBadImages: true }),
    /^Error: dataset fashion-mnist: options\.skipBadImages is not an option of fashion-mnist \(its options: dir, trainCount, holdout\)$/,
  );
  // an option left undefined is not set
  const d = await tempDir();
  const r = await loadDataset("synthetic-person", {
    trainCount: 4,
    valCount: 2,
    size: 16,
    dir: undefined,
    cacheRoot: d,
  });
  assert.equal(r.train.labels.length, 4);
  await Deno.remove(d, { recursive: true });
});

Deno.test("resize: area averaging and BT.601 luma", () => {
  // 4x1 -> 2x1 averages pairs; red converts with 0.299
  const img = {
    width: 4,
    height: 1,
    data: new Uint8Array([0, 0, 0, 255, 100, 100, 100, 255, 255, 0, 0, 255, 255, 0, 0, 255]),
  };
  assert.deepStrictEqual([...resizeImage(img, 2, 1, 1)], [50, Math.round(0.299 * 255)]);
  assert.deepStrictEqual([...resizeImage(img, 2, 1, 3)], [50, 50, 50, 255, 0, 0]);
});

function idx(magic: number, dims: number[], data: number[]): Uint8Array {
  const b = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, magic);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  b.set(data, 4 + 4 * dims.length);
  return b;
}

Deno.test("IDX reader: small files, gzip, truncated and wrong magic", () => {
  const img = idx(0x803, [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const a = parseIdx(img, "img", 3);
  assert.deepStrictEqual(a.dims, [2, 2, 2]);
  assert.deepStrictEqual([...a.data], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepStrictEqual(parseIdx(new Uint8Array(gzipSync(img)), "img.gz", 3).dims, [2, 2, 2]);
  assert.throws(
    () => parseIdx(img.subarray(0, 18), "t.idx", 3),
    /t\.idx: truncated: header says 2x2x2 = 8 bytes, file has 2/,
  );
  assert.throws(
    () => parseIdx(idx(0x903, [1], [0]), "m.idx"),
    /m\.idx: wrong IDX magic number 0x00000903/,
  );
  assert.throws(() => parseIdx(img, "d.idx", 1), /d\.idx: IDX has 3 dimensions, expected 1/);
  assert.throws(
    () => parseIdx(new Uint8Array([0x1f, 0x8b, 1, 2]), "z.gz"),
    /z\.gz: not a valid gzip file/,
  );
});

Deno.test("fashion-mnist loader: files the test writes, with mismatched counts and a missing directory", async () => {
  const dir = await tempDir();
  const px = Array(3 * 28 * 28).fill(7);
  await Deno.writeFile(
    join(dir, "train-images-idx3-ubyte.gz"),
    new Uint8Array(gzipSync(idx(0x803, [3, 28, 28], px))),
  );
  await Deno.writeFile(
    join(dir, "train-labels-idx1-ubyte.gz"),
    new Uint8Array(gzipSync(idx(0x801, [3], [0, 9, 4]))),
  );
  const ds = await loadFashionMnistSplit("train", dir);
  assert.deepStrictEqual([...ds.labels], [0, 9, 4]);
  assert.equal(ds.classNames[9], "ankle boot");
  await Deno.writeFile(
    join(dir, "train-labels-idx1-ubyte.gz"),
    new Uint8Array(gzipSync(idx(0x801, [2], [0, 9]))),
  );
  await assert.rejects(() => loadFashionMnistSplit("train", dir), /3 images in .* but 2 labels in/);
  await assert.rejects(
    () => loadFashionMnistSplit("test", dir),
    /missing .*t10k-images-idx3-ubyte\.gz/,
  );
  await assert.rejects(
    () => loadFashionMnistSplit("train", join(dir, "nope")),
    /apt-get install -y dataset-fashion-mnist/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "fashion-mnist: the real Debian files (60,000 / 10,000, balanced)",
  ignore: !(await exists(FASHION_MNIST_DIR)),
  fn: async () => {
    const { train, test } = await loadFashionMnist();
    assert.equal(train.labels.length, 60000);
    assert.equal(test.labels.length, 10000);
    assert.ok(Object.values(classCounts(train)).every((n) => n === 6000));
    assert.ok(Object.values(classCounts(test)).every((n) => n === 1000));
  },
});

Deno.test({
  name:
    "fashion-mnist trainCount and holdout: first N training images, test set or last N as validation; bad counts named",
  ignore: !(await exists(FASHION_MNIST_DIR)),
  fn: async () => {
    const full = await loadFashionMnist();
    const sub = await loadDataset("fashion-mnist", { trainCount: 1000 });
    assert.equal(sub.train.labels.length, 1000);
    assert.deepStrictEqual(sub.train.labels, full.train.labels.slice(0, 1000));
    assert.deepStrictEqual(sub.train.images, full.train.images.slice(0, 1000 * 784));
    assert.equal(sub.val.labels.length, 10000);
    await assert.rejects(
      () => loadDataset("fashion-mnist", { trainCount: 60001 }),
      /options\.trainCount must be an integer in 1\.\.60000, got 60001/,
    );
    // holdout: validation on the last N training images, disjoint from the training slice
    const ho = await loadDataset("fashion-mnist", { trainCount: 1000, holdout: 500 });
    assert.deepStrictEqual(ho.train.labels, full.train.labels.slice(0, 1000));
    assert.deepStrictEqual(ho.val.labels, full.train.labels.slice(59500));
    assert.deepStrictEqual(ho.val.images, full.train.images.slice(59500 * 784));
    assert.ok(ho.notes.some((n) => n.includes("last 500 training images")));
    assert.equal((await loadDataset("fashion-mnist", { holdout: 500 })).train.labels.length, 59500);
    await assert.rejects(
      () => loadDataset("fashion-mnist", { trainCount: 59600, holdout: 500 }),
      /options\.trainCount must be an integer in 1\.\.59500 \(60000 training images less a holdout of 500\), got 59600/,
    );
  },
});

Deno.test("synthetic-person valOffset: a fresh validation range of the same stream, never training images", async () => {
  const cacheRoot = await tempDir();
  try {
    const o = { trainCount: 6, valCount: 4, size: 32, seed: 5, cacheRoot };
    const stream = generateSyntheticPerson({ count: 20, seed: 5, size: 32 });
    const per = 32 * 32;
    const dflt = await loadDataset("synthetic-person", o);
    assert.deepStrictEqual(dflt.val.images, stream.images.subarray(6 * per, 10 * per));
    assert.deepStrictEqual(dflt.notes, []);
    const fresh = await loadDataset("synthetic-person", { ...o, valOffset: 12 });
    assert.deepStrictEqual(fresh.train.images, dflt.train.images);
    assert.deepStrictEqual(fresh.val.images, stream.images.subarray(12 * per, 16 * per));
    assert.deepStrictEqual(fresh.val.labels, stream.labels.subarray(12, 16));
    assert.ok(fresh.notes.some((n) => n.includes("images 12..15") && n.includes("default 6..9")));
    await assert.rejects(
      () => loadDataset("synthetic-person", { ...o, valOffset: 5 }),
      /^Error: dataset synthetic-person: options\.valOffset must be an integer >= trainCount \(6\).*got 5$/,
    );
    await assert.rejects(
      () => loadDataset("synthetic-person", { ...o, valCount: 0 }),
      /options\.valCount must be an integer >= 1, got 0/,
    );
  } finally {
    await Deno.remove(cacheRoot, { recursive: true });
  }
});

Deno.test("contact sheet is a PNG of the right size", async () => {
  const ds = generateSyntheticPerson({ count: 8, seed: 1, size: 32 });
  const png = await contactSheet(ds, 3);
  assert.deepStrictEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  const v = new DataView(png.buffer, png.byteOffset);
  assert.equal(v.getUint32(16), 120 + 3 * 36); // width: label column + 3 tiles of 32 + 4 padding
});

/** An RGBA image of one colour. */
function colour(w: number, h: number, rgb: [number, number, number]) {
  const d = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) d.set([...rgb, 255], i * 4);
  return { width: w, height: h, data: d };
}

Deno.test("image folder: classes from subfolders, any size and format, RGB, split, valDir, bad files", async () => {
  const root = await tempDir();
  const cache = join(root, "cache");
  // three classes, each a colour; PNG and JPEG of several sizes; a hidden folder and a text file
  const classes: [string, [number, number, number]][] = [
    ["cat", [200, 30, 30]],
    ["bird", [30, 200, 30]],
    ["dog", [30, 30, 200]],
  ];
  for (const [c, rgb] of classes) {
    await Deno.mkdir(join(root, "train", c), { recursive: true });
    await Deno.mkdir(join(root, "val", c), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const img = colour(20 + 7 * i, 16 + 5 * i, rgb);
      await Deno.writeFile(
        join(root, "train", c, `${i}.${i % 2 ? "png" : "jpg"}`),
        i % 2 ? encodePng(img) : encodeJpeg(img, 95),
      );
    }
    await Deno.writeFile(join(root, "val", c, "v.png"), encodePng(colour(40, 30, rgb)));
  }
  await Deno.mkdir(join(root, "train", ".thumbs"));
  await Deno.writeTextFile(join(root, "train", "bird", "README.txt"), "not an image");

  const dir = join(root, "train");
  const r = await loadDataset("folder", {
    cacheRoot: cache,
    dir,
    size: 12,
    channels: 3,
    valFraction: 0.25,
  });
  // class names are the subfolders, sorted; labels follow them
  assert.deepStrictEqual(r.train.classNames, ["bird", "cat", "dog"]);
  assert.deepStrictEqual(r.train.shape, [12, 12, 3]);
  assert.equal(r.train.labels.length + r.val.labels.length, 24);
  // the split is the path hash (exactly the files hashing below 0.25 are validation images)
  const all = ["bird", "cat", "dog"].flatMap((c) =>
    [...Array(8).keys()].map((i) => `${c}/${i}.${i % 2 ? "png" : "jpg"}`)
  );
  assert.equal(r.val.labels.length, all.filter((p) => pathFraction(p) < 0.25).length);
  // every image keeps its class's colour through decode and resize (JPEG within a few levels)
  for (const ds of [r.train, r.val]) {
    for (let i = 0; i < ds.labels.length; i++) {
      const want = classes.find(([c]) => c === ds.classNames[ds.labels[i]])![1];
      const px = ds.images.subarray(i * 432 + 3 * 66, i * 432 + 3 * 66 + 3);
      for (let k = 0; k < 3; k++) {
        assert.ok(Math.abs(px[k] - want[k]) <= 6, `${ds.name} ${i}: ${px}`);
      }
    }
  }
  // a deterministic split: loading again (from the cache) gives the same bytes
  const again = await loadDataset("folder", {
    cacheRoot: cache,
    dir,
    size: 12,
    channels: 3,
    valFraction: 0.25,
  });
  assert.deepStrictEqual(again.val.images, r.val.images);
  assert.deepStrictEqual(again.train.labels, r.train.labels);
  // valDir: all of dir trains, the other folder validates; grayscale
  const v = await loadDataset("folder", {
    cacheRoot: cache,
    dir,
    valDir: join(root, "val"),
    size: 8,
  });
  assert.equal(v.train.labels.length, 24);
  assert.deepStrictEqual([...v.val.labels], [0, 1, 2]);
  assert.deepStrictEqual(v.val.shape, [8, 8, 1]);
  // classes given: their order is the label order, other folders are left out
  const two = await loadDataset("folder", {
    cacheRoot: cache,
    dir,
    classes: ["dog", "cat"],
    size: 8,
    valFraction: 0.3,
  });
  assert.deepStrictEqual(two.train.classNames, ["dog", "cat"]);
  assert.equal(two.train.labels.length + two.val.labels.length, 16);

  // bad input: one line naming the file or folder
  await Deno.writeFile(
    join(dir, "dog", "broken.png"),
    encodePng(colour(9, 9, [1, 2, 3])).subarray(0, 30),
  );
  await assert.rejects(
    () => loadDataset("folder", { cacheRoot: cache, dir, size: 8 }),
    (e: Error) =>
      /dog\/broken\.png: cannot decode image/.test(e.message) && !e.message.includes("\n"),
  );
  const skipped = await loadDataset("folder", {
    cacheRoot: cache,
    dir,
    size: 8,
    skipBadImages: true,
  });
  assert.match(skipped.notes[0], /folder: skipped 1 unreadable images, e\.g\. .*broken\.png/);
  await assert.rejects(
    () => loadDataset("folder", { cacheRoot: cache, dir: join(root, "nope") }),
    /dataset folder: .*nope not found/,
  );
  await assert.rejects(
    () => loadDataset("folder", { cacheRoot: cache }),
    /dataset folder: needs options\.dir/,
  );
  await Deno.mkdir(join(root, "one", "only"), { recursive: true });
  await assert.rejects(
    () => loadDataset("folder", { cacheRoot: cache, dir: join(root, "one") }),
    /has 1 class folder\(s\) \(only\); expected at least 2/,
  );
  await Deno.mkdir(join(root, "val", "fish"));
  await assert.rejects(
    () => loadDataset("folder", { cacheRoot: cache, dir, valDir: join(root, "val") }),
    /val\/fish is not a class of/,
  );
  await Deno.remove(root, { recursive: true });
});

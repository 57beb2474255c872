/**
 * Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test 28x28 grayscale
 * images of 10 clothing classes, read from the IDX `.gz` files that Debian's
 * `dataset-fashion-mnist` package installs.
 * @module
 */
import { join } from "node:path";
import type { Dataset } from "./dataset.ts";
import { parseIdx } from "./idx.ts";

/** Where Debian puts the files. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** Class names, in label order. */
export const FASHION_MNIST_CLASSES = [
  "t-shirt/top",
  "trouser",
  "pullover",
  "dress",
  "coat",
  "sandal",
  "shirt",
  "sneaker",
  "bag",
  "ankle boot",
];

const FILES = {
  train: ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
  test: ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
} as const;

/** The `.gz` file, or the uncompressed one beside it: its bytes and the path that was read. */
async function readFile(path: string): Promise<{ bytes: Uint8Array; path: string }> {
  try {
    return { bytes: await Deno.readFile(path), path };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const plain = path.replace(/\.gz$/, "");
      try {
        return { bytes: await Deno.readFile(plain), path: plain };
      } catch {
        throw new Error(`fashion-mnist: missing ${path} (or ${plain})`);
      }
    }
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
}

/**
 * Loads one split from `dir` (default {@link FASHION_MNIST_DIR}); `.gz` or
 * uncompressed files. Errors say which file is wrong and how.
 *
 * @example
 * ```ts ignore
 * const { train, test } = await loadFashionMnist();
 * ```
 */
export async function loadFashionMnistSplit(
  split: "train" | "test",
  dir = FASHION_MNIST_DIR,
): Promise<Dataset> {
  try {
    const st = await Deno.stat(dir);
    if (!st.isDirectory) throw new Error();
  } catch {
    throw new Error(
      `fashion-mnist: data directory ${dir} not found; install it with ` +
        `'apt-get install -y dataset-fashion-mnist' or pass --data DIR with the four IDX files`,
    );
  }
  const [imgName, lblName] = FILES[split];
  const img = await readFile(join(dir, imgName)), lbl = await readFile(join(dir, lblName));
  const imgPath = img.path, lblPath = lbl.path;
  const images = parseIdx(img.bytes, imgPath, 3);
  const labels = parseIdx(lbl.bytes, lblPath, 1);
  const [n, h, w] = images.dims;
  if (h !== 28 || w !== 28) throw new Error(`${imgPath}: images are ${h}x${w}, expected 28x28`);
  if (labels.dims[0] !== n) {
    throw new Error(
      `fashion-mnist ${split}: ${n} images in ${imgPath} but ${
        labels.dims[0]
      } labels in ${lblPath}`,
    );
  }
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw new Error(`${lblPath}: label ${labels.data[bad]} at index ${bad} is not 0-9`);
  return {
    name: `fashion-mnist/${split}`,
    shape: [28, 28, 1],
    classNames: FASHION_MNIST_CLASSES,
    images: images.data,
    labels: labels.data,
  };
}

/**
 * Loads both splits.
 *
 * @example
 * ```ts ignore
 * const { train, test } = await loadFashionMnist("/usr/share/datasets/fashion-mnist");
 * ```
 */
export async function loadFashionMnist(
  dir = FASHION_MNIST_DIR,
): Promise<{ train: Dataset; test: Dataset }> {
  return {
    train: await loadFashionMnistSplit("train", dir),
    test: await loadFashionMnistSplit("test", dir),
  };
}

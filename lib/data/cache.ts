/**
 * A small on-disk cache for decoded or generated datasets under `data/`:
 * `<name>/<key>/images.bin`, `labels.bin` and `manifest.json` (with a SHA-256
 * checksum of images and labels that is verified on load). Writes are atomic.
 * @module
 */
import { REPO_ROOT } from "../util/path.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { Dataset } from "./dataset.ts";
import { exists, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";

/** Default cache root: the project's `data/` folder. */
export const DATA_DIR: string = `${REPO_ROOT}data/`;

/**
 * SHA-256 (hex) of images then labels.
 *
 * @example
 * ```ts
 * import { datasetChecksum } from "./cache.ts";
 * if (datasetChecksum(new Uint8Array(0), new Uint8Array(0)).length !== 64) throw new Error();
 * ```
 */
export function datasetChecksum(images: Uint8Array, labels: Uint8Array): string {
  return createHash("sha256").update(images).update(labels).digest("hex");
}

/** A cache entry's manifest. */
export interface CacheManifest {
  name: string;
  key: string;
  count: number;
  shape: [number, number, number];
  classNames: string[];
  checksum: string;
  [extra: string]: unknown;
}

/**
 * Loads a cached dataset, or returns null when absent or when its checksum or
 * sizes do not match (a damaged cache is rebuilt, never trusted).
 *
 * @example
 * ```ts ignore
 * const ds = await loadCached("synthetic-person", key);
 * ```
 */
export async function loadCached(name: string, key: string, root = DATA_DIR): Promise<
  { ds: Dataset; manifest: CacheManifest } | null
> {
  const dir = join(root, name, key);
  if (!(await exists(join(dir, "manifest.json")))) return null;
  try {
    const manifest = JSON.parse(
      await Deno.readTextFile(join(dir, "manifest.json")),
    ) as CacheManifest;
    const images = await Deno.readFile(join(dir, "images.bin"));
    const labels = await Deno.readFile(join(dir, "labels.bin"));
    const [h, w, c] = manifest.shape;
    if (labels.length !== manifest.count || images.length !== manifest.count * h * w * c) {
      return null;
    }
    if (datasetChecksum(images, labels) !== manifest.checksum) return null;
    return {
      ds: { name, shape: manifest.shape, classNames: manifest.classNames, images, labels },
      manifest,
    };
  } catch {
    return null;
  }
}

/**
 * Stores a dataset in the cache (data first, manifest last, each atomically,
 * so a half-written entry has no manifest and is ignored).
 *
 * @example
 * ```ts ignore
 * await storeCached("synthetic-person", key, ds, { generatorVersion: 1 });
 * ```
 */
export async function storeCached(
  name: string,
  key: string,
  ds: Dataset,
  extra: Record<string, unknown> = {},
  root = DATA_DIR,
): Promise<CacheManifest> {
  const dir = join(root, name, key);
  await writeFileAtomic(join(dir, "images.bin"), ds.images);
  await writeFileAtomic(join(dir, "labels.bin"), ds.labels);
  const manifest: CacheManifest = {
    name,
    key,
    count: ds.labels.length,
    shape: ds.shape,
    classNames: ds.classNames,
    checksum: datasetChecksum(ds.images, ds.labels),
    ...extra,
  };
  await writeJsonAtomic(join(dir, "manifest.json"), manifest);
  return manifest;
}

/**
 * Visual Wake Words (Chowdhery et al. 2019) in the MLPerf Tiny layout:
 * `<dir>/person/*.jpg` and `<dir>/non_person/*.jpg` (`.jpeg` and `.png` too),
 * any image size, resized to the experiment's resolution, grayscale or RGB.
 * Labels: non_person 0, person 1. It is the image-folder loader
 * (`folder.ts`) with these two class folders, a 10 % validation split by path
 * hash (or a list file), and 96x96 grayscale by default.
 * @module
 */
import { type FolderData, type FolderOptions, loadImageFolder } from "./folder.ts";

export { capByHash, pathFraction } from "./folder.ts";

/** Class folders in label order. */
export const VWW_CLASSES = ["non_person", "person"];

/** Options of {@link loadVww}: an image folder's, less the class list and valDir. */
export type VwwOptions = Omit<FolderOptions, "name" | "classes" | "valDir" | "layout">;

/** Result of {@link loadVww}. */
export type VwwData = FolderData;

/**
 * Loads VWW from `opts.dir`.
 *
 * @example
 * ```ts ignore
 * const { train, val } = await loadVww({ dir: "/data/vw_coco2014_96" });
 * ```
 */
export function loadVww(opts: VwwOptions): Promise<VwwData> {
  return loadImageFolder({
    ...opts,
    name: "vww",
    classes: VWW_CLASSES,
    layout: `expected ${opts.dir}/{person,non_person}/*.jpg (the MLPerf Tiny layout)`,
  });
}

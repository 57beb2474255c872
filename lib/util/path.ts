/**
 * Path helpers from `node:path` / `node:url` (`@std/path` would replace this file).
 * @module
 */
import { resolve as nodeResolve } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * Absolute path.
 *
 * @example
 * ```ts
 * import { resolve } from "./path.ts";
 * if (!resolve("a").endsWith("/a")) throw new Error();
 * ```
 */
export function resolve(p: string): string {
  return nodeResolve(p);
}

/**
 * A file URL for an absolute path.
 *
 * @example
 * ```ts
 * import { toFileUrl } from "./path.ts";
 * if (toFileUrl("/x").href !== "file:///x") throw new Error();
 * ```
 */
export function toFileUrl(p: string): URL {
  return pathToFileURL(p);
}

/**
 * The repository root (the folder holding `deno.json`), with a trailing slash:
 * where `reports/`, `data/` and `experiments/` are.
 *
 * @example
 * ```ts
 * import { REPO_ROOT } from "./path.ts";
 * await Deno.stat(`${REPO_ROOT}deno.json`); // throws if the root were wrong
 * ```
 */
export const REPO_ROOT: string = new URL("../..", import.meta.url).pathname;

/**
 * The run directory format (docs/run-directory.md) and the `.qgtw` array
 * container its checkpoints use.
 * @module
 */
export * from "./checkpoint.ts";
export * from "./run_dir.ts";
export * from "./final.ts";

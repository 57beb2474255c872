/**
 * Sweeps: seeds x variants as `deno task run` jobs, run by a local pool of
 * processes or submitted to Slurm, and aggregated like `deno task seeds`
 * (docs/sweeps.md).
 * @module
 */
export * from "./plan.ts";
export * from "./status.ts";
export * from "./local.ts";
export * from "./slurm.ts";

/**
 * Cross-run analysis, above the runner: comparing runs across commits,
 * statistics over seeds, and the paper's figures from the latest runs.
 * @module
 */
export * from "./compare.ts";
export * from "./seeds.ts";
export * from "./figures.ts";
export * from "./paper_figures.ts";

/**
 * Training: the loop, gradient engines (local and data-parallel), optimizers
 * and learning-rate schedules.
 * @module
 */
export * from "./loop.ts";
export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./step.ts";
export { assignState, type GradEngine, LocalEngine, ParallelEngine } from "./engine.ts";
export * from "./bn_reestimate.ts";

/**
 * Architectures (plain-data specs) and model instances.
 * @module
 */
export * from "./spec.ts";
export * from "./zoo.ts";
export * from "./model.ts";
export * from "./fold.ts";

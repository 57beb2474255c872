/**
 * The results site (`deno task site`): every run, across commits, as static
 * pages that work offline and from file://.
 * @module
 */
export * from "./data.ts";
export * from "./html.ts";
export * from "./plots.ts";
export * from "./pages.ts";
export * from "./site.ts";

/**
 * Escaping text for XML, SVG and HTML.
 * @module
 */

/**
 * Escapes text for XML.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./xml.ts";
 * if (escapeXml(`a<b & "c"`) !== "a&lt;b &amp; &quot;c&quot;") throw new Error();
 * ```
 */
export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (ch) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[ch]!,
  );
}

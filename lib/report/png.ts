/**
 * SVG to PNG with resvg (WebAssembly, from the npm package's own files) and
 * the DejaVu Sans font from the `dejavu-fonts-ttf` npm package, so text renders
 * the same on every machine without system fonts.
 * @module
 */
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import fontPkg from "dejavu-fonts-ttf/package.json" with { type: "json" };
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The font family name to use in SVGs rendered by {@link svgToPng}. */
export const FONT_FAMILY = "DejaVu Sans";

let ready: Promise<Uint8Array[]> | null = null;

function init(): Promise<Uint8Array[]> {
  ready ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = join(dirname(require.resolve("@resvg/resvg-wasm")), "index_bg.wasm");
    await initWasm(await Deno.readFile(wasmPath));
    const fontDir = join(dirname(require.resolve("dejavu-fonts-ttf/package.json")), "ttf");
    if (!fontPkg.version) throw new Error("dejavu-fonts-ttf: no version");
    return [
      await Deno.readFile(join(fontDir, "DejaVuSans.ttf")),
      await Deno.readFile(join(fontDir, "DejaVuSans-Bold.ttf")),
    ];
  })();
  return ready;
}

/**
 * Renders SVG text to PNG bytes at `scale` (default 2, for sharp figures).
 *
 * @example
 * ```ts
 * import { svgToPng } from "./png.ts";
 * const png = await svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>', 1);
 * if (png[1] !== 0x50) throw new Error();
 * ```
 */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const fontBuffers = await init();
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    font: {
      fontBuffers,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
      loadSystemFonts: false,
    },
  });
  const img = r.render();
  const png = img.asPng();
  img.free();
  r.free();
  return png;
}

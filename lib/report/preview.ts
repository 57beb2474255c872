/**
 * A contact sheet of labelled samples (PNG), so a user can see what the model
 * learns from: for each class a row header and the first `perClass` samples.
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import { encodePng } from "../data/image.ts";
import { escapeXml } from "../util/xml.ts";
import { FONT_FAMILY, svgToPng } from "./png.ts";
import { encodeBase64 } from "../util/base64.ts";

/**
 * Renders a contact sheet PNG: one row per class, `perClass` tiles each,
 * scaled up `zoom` times (nearest neighbour), class names as row labels.
 *
 * @example
 * ```ts ignore
 * await Deno.writeFile("sheet.png", await contactSheet(ds, 8));
 * ```
 */
export async function contactSheet(ds: Dataset, perClass = 8, zoom = 1): Promise<Uint8Array> {
  const [h, w, c] = ds.shape;
  const tw = w * zoom, th = h * zoom, pad = 4, labelW = 120, titleH = 22;
  const rows = ds.classNames.map((_, k) => {
    const idx: number[] = [];
    for (let i = 0; i < ds.labels.length && idx.length < perClass; i++) {
      if (ds.labels[i] === k) idx.push(i);
    }
    return idx;
  });
  const W = labelW + perClass * (tw + pad), H = titleH + rows.length * (th + pad);
  let body = "";
  rows.forEach((idx, k) => {
    const y = titleH + k * (th + pad);
    body += `<text x="4" y="${y + th / 2 + 5}" font-size="13">${
      escapeXml(ds.classNames[k])
    }</text>`;
    idx.forEach((i, j) => {
      const rgba = new Uint8Array(tw * th * 4);
      for (let yy = 0; yy < th; yy++) {
        for (let xx = 0; xx < tw; xx++) {
          const s = ((Math.floor(yy / zoom) * w + Math.floor(xx / zoom)) * c) + i * h * w * c;
          const o = (yy * tw + xx) * 4;
          rgba[o] = ds.images[s];
          rgba[o + 1] = ds.images[s + (c === 3 ? 1 : 0)];
          rgba[o + 2] = ds.images[s + (c === 3 ? 2 : 0)];
          rgba[o + 3] = 255;
        }
      }
      const href = "data:image/png;base64," +
        encodeBase64(encodePng({ width: tw, height: th, data: rgba }));
      body += `<image x="${
        labelW + j * (tw + pad)
      }" y="${y}" width="${tw}" height="${th}" href="${href}"/>`;
    });
  });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="${FONT_FAMILY}">` +
    `<rect width="${W}" height="${H}" fill="white"/>` +
    `<text x="4" y="15" font-size="13" font-weight="bold">${
      escapeXml(ds.name)
    }: first ${perClass} samples per class</text>` +
    body + `</svg>`;
  return await svgToPng(svg, 1);
}

/**
 * A model summary in the spirit of Larq's `models.summary`: per weight layer
 * its parameters, bits and deployed bytes; totals for the float32 size of the
 * same (BatchNorm-folded) network, the quantized size and the reduction factor.
 * @module
 */
import type { ArchSpec } from "../models/spec.ts";
import type { QuantSpec } from "./spec.ts";
import { layerBytes, weightLayerSizes } from "./layers.ts";

/** One layer of the model summary (per-layer parameters, bits and bytes). */
export interface LayerSummaryRow {
  layer: string;
  params: number;
  /** 32 for float layers. */
  bits: number;
  bytes: number;
  float32Bytes: number;
}

/** The summary: rows and totals. */
export interface ModelSummary {
  rows: LayerSummaryRow[];
  params: number;
  float32Bytes: number;
  quantizedBytes: number;
  reduction: number;
}

/**
 * Summarises a network quantized with `specs` (layers absent from `specs` are
 * float32). Bytes count kernel codes, scales, zero points and int32 biases
 * (BatchNorm folded), as {@link layerBytes}; float32 bytes count the folded
 * kernel and bias at 4 bytes each.
 *
 * @example
 * ```ts
 * import { modelSummary } from "./summary.ts";
 * import { smallCnn } from "../models/zoo.ts";
 * const s = modelSummary(smallCnn(), {});
 * if (s.reduction !== 1 || s.params !== 65440) throw new Error();
 * ```
 */
export function modelSummary(arch: ArchSpec, specs: Record<string, QuantSpec>): ModelSummary {
  const rows = weightLayerSizes(arch).map((l) => {
    const spec = specs[l.name] ?? null;
    return {
      layer: l.name,
      params: l.params,
      bits: spec ? spec.bits : 32,
      bytes: layerBytes(l.params, l.channels, spec).total,
      float32Bytes: layerBytes(l.params, l.channels, null).total,
    };
  });
  const float32Bytes = rows.reduce((a, r) => a + r.float32Bytes, 0);
  const quantizedBytes = rows.reduce((a, r) => a + r.bytes, 0);
  return {
    rows,
    params: rows.reduce((a, r) => a + r.params, 0),
    float32Bytes,
    quantizedBytes,
    reduction: float32Bytes / quantizedBytes,
  };
}

/**
 * Formats a summary as a fixed-width text table.
 *
 * @example
 * ```ts
 * import { formatSummary, modelSummary } from "./summary.ts";
 * import { smallCnn } from "../models/zoo.ts";
 * if (!formatSummary(modelSummary(smallCnn(), {})).includes("conv1")) throw new Error();
 * ```
 */
export function formatSummary(s: ModelSummary): string {
  const head = ["layer", "params", "bits", "bytes", "float32 bytes"];
  const body = s.rows.map((
    r,
  ) => [r.layer, String(r.params), String(r.bits), String(r.bytes), String(r.float32Bytes)]);
  body.push(["total", String(s.params), "", String(s.quantizedBytes), String(s.float32Bytes)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ");
  return [
    line(head),
    w.map((n) => "-".repeat(n)).join("  "),
    ...body.map(line),
    `reduction vs float32: ${s.reduction.toFixed(2)}x (${
      (s.float32Bytes / 1024).toFixed(1)
    } KiB -> ${(s.quantizedBytes / 1024).toFixed(1)} KiB)`,
  ].join("\n");
}

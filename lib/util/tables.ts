/**
 * Tidy result tables with Arquero: building them from rows, writing CSV
 * atomically, reading CSV back.
 * @module
 */
import * as aq from "arquero";
import { writeTextAtomic } from "./fs.ts";

/** An Arquero table. */
export type Table = ReturnType<typeof aq.from>;

/**
 * A table from rows with columns in the order given (so CSV headers are stable
 * even for an empty table).
 *
 * @example
 * ```ts
 * import { tableOf } from "./tables.ts";
 * const t = tableOf([{ a: 1, b: "x" }], ["a", "b"]);
 * if (t.numRows() !== 1) throw new Error();
 * ```
 */
export function tableOf(rows: object[], columns: string[]): Table {
  const cols: Record<string, unknown[]> = Object.fromEntries(columns.map((c) => [c, []]));
  for (const r of rows) {
    for (const c of columns) cols[c].push((r as Record<string, unknown>)[c] ?? null);
  }
  return aq.table(cols);
}

/**
 * Writes a table as CSV atomically.
 *
 * @example
 * ```ts
 * import { tableOf, writeCsv } from "./tables.ts";
 * const p = await Deno.makeTempFile();
 * await writeCsv(p, tableOf([{ a: 1 }], ["a"]));
 * if (await Deno.readTextFile(p) !== "a\n1\n") throw new Error();
 * await Deno.remove(p);
 * ```
 */
export async function writeCsv(path: string, t: Table): Promise<void> {
  const csv = t.toCSV();
  await writeTextAtomic(path, csv.endsWith("\n") ? csv : csv + "\n");
}

/**
 * Reads a CSV file into a table (numbers parsed).
 *
 * @example
 * ```ts
 * import { readCsv } from "./tables.ts";
 * const p = await Deno.makeTempFile();
 * await Deno.writeTextFile(p, "a,b\n1,x\n");
 * if ((await readCsv(p)).get("a", 0) !== 1) throw new Error();
 * await Deno.remove(p);
 * ```
 */
export async function readCsv(path: string): Promise<Table> {
  return aq.fromCSV(await Deno.readTextFile(path));
}

/**
 * Rows of a table as plain objects.
 *
 * @example
 * ```ts
 * import { rowsOf, tableOf } from "./tables.ts";
 * if (rowsOf(tableOf([{ a: 1 }], ["a"]))[0].a !== 1) throw new Error();
 * ```
 */
export function rowsOf(t: Table): Record<string, unknown>[] {
  return t.objects() as Record<string, unknown>[];
}

/**
 * Formats rows as a fixed-width text table for terminals.
 *
 * @example
 * ```ts
 * import { formatRows } from "./tables.ts";
 * if (!formatRows([{ a: 1, b: "xy" }]).includes("xy")) throw new Error();
 * ```
 */
export function formatRows(rows: Record<string, unknown>[], columns?: string[]): string {
  if (!rows.length) return "(no rows)";
  const cols = columns ?? Object.keys(rows[0]);
  const cell = (v: unknown) =>
    v === null || v === undefined ? "" : typeof v === "number" ? fmtNum(v) : String(v);
  const body = rows.map((r) => cols.map((c) => cell(r[c])));
  const w = cols.map((c, i) => Math.max(c.length, ...body.map((r) => r[i].length)));
  // numbers (and numbers already formatted as text) right-aligned, other text left-aligned
  const isNum = (v: unknown) =>
    typeof v === "number" || v === "" || v == null ||
    (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v));
  const numeric = cols.map((c) => rows.every((r) => isNum(r[c])));
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(w[i]) : s.padEnd(w[i]));
  const line = (r: string[]) => r.map(pad).join("  ").trimEnd();
  return [line(cols), w.map((n) => "-".repeat(n)).join("  "), ...body.map(line)].join("\n");
}

function fmtNum(v: number): string {
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

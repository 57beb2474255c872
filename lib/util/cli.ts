/**
 * The one place qgt parses command-line flags. It wraps `parseArgs` from
 * `node:util` because JSR (`@std/cli`) is not reachable on the build machines;
 * swapping to `@std/cli/parse-args` later is a change to this file only.
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";

/** Flag declarations: name -> type (and optional short alias / multiple). */
export type FlagSpec = Record<
  string,
  {
    type: "string" | "boolean";
    short?: string;
    multiple?: boolean;
    default?: string | boolean;
    /** The next argument is the value even when it starts with "-" (options for another tool). */
    raw?: boolean;
    /** The value's placeholder in `--help` (`N`, `DIR`, `FILE`); a string flag's default `VALUE`. */
    arg?: string;
    /** One line for `--help`: what the flag does (the default is added from `default`). */
    help?: string;
  }
>;

/** Parsed flags and positional arguments. */
export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** An error in the user's command line; the CLIs print its message and exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** `--help` / `-h` was given: {@link runMain} prints the message (the usage) and exits 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

/**
 * Parses `args` against `spec`; an unknown flag or a missing value throws a
 * {@link UsageError} whose message names the flag. `--help` or `-h` (before
 * a `--`, not as another flag's value) throws {@link HelpRequested} carrying
 * `usage`, whatever else the line holds.
 *
 * @example
 * ```ts
 * import { HelpRequested, parseFlags } from "./cli.ts";
 * const a = parseFlags(["--seed", "3", "x.ts"], { seed: { type: "string" } });
 * if (a.values.seed !== "3" || a.positionals[0] !== "x.ts") throw new Error();
 * try {
 *   parseFlags(["x.ts", "-h"], {}, "usage: x");
 *   throw new Error("no help");
 * } catch (e) {
 *   if (!(e instanceof HelpRequested) || e.message !== "usage: x") throw e;
 * }
 * ```
 */
export function parseFlags(args: string[], spec: FlagSpec, usage = ""): ParsedArgs {
  const help = helpText(usage, spec);
  // "--seed -1": a value that looks like a flag would be taken as one; join negative numbers, and
  // any value of a `raw` flag (`--slurm-args "--time=1:00:00"`)
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    const next = args[i + 1] ?? "";
    if (spec[name]?.type === "string" && (/^-\d/.test(next) || (spec[name].raw && next))) {
      joined.push(`${args[i]}=${args[++i]}`);
    } else joined.push(args[i]);
  }
  args = joined;
  for (let i = 0; i < args.length && args[i] !== "--"; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    if (args[i] === "--help" || args[i] === "-h") throw new HelpRequested(help);
    if (spec[name]?.type === "string") i++; // "--out -h": a value, not a flag
  }
  const options = Object.fromEntries(
    Object.entries(spec).map(([k, { raw: _, ...o }]) => [k, o]),
  );
  try {
    const r = nodeParseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as ParsedArgs["values"], positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
}

/**
 * The text `--help` prints: the usage line(s), then one line per flag that
 * has a `help` text (`--name ARG  what it does (default: X)`), aligned.
 *
 * @example
 * ```ts
 * import { helpText } from "./cli.ts";
 * const t = helpText("usage: x [--n N]", { n: { type: "string", arg: "N", default: "3", help: "how many" } });
 * if (!t.includes("  --n N       how many (default: 3)")) throw new Error(t);
 * ```
 */
export function helpText(usage: string, spec: FlagSpec): string {
  const rows = Object.entries(spec).filter(([, o]) => o.help).map(([name, o]) => {
    const arg = o.type === "string" ? ` ${o.arg ?? "VALUE"}` : "";
    const short = o.short ? `-${o.short}, ` : "";
    const def = o.default !== undefined && o.default !== false && !/default/.test(o.help!)
      ? ` (default: ${o.default})`
      : "";
    const many = o.multiple ? " (may be repeated)" : "";
    return [`${short}--${name}${arg}`, `${o.help}${def}${many}`];
  });
  if (!rows.length) return usage;
  rows.push(["-h, --help", "print this help and exit"]);
  const w = Math.max(10, ...rows.map(([a]) => a.length)) + 2;
  return `${usage}\n\nflags:\n${rows.map(([a, b]) => `  ${a.padEnd(w)}${b}`).join("\n")}`;
}

/**
 * Parses an integer flag value, naming the flag in the error.
 *
 * @example
 * ```ts
 * import { intFlag } from "./cli.ts";
 * if (intFlag("--seed", "12") !== 12) throw new Error();
 * ```
 */
export function intFlag(name: string, v: unknown, min = -Infinity, max = Infinity): number {
  const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = min > -Infinity && max < Infinity
      ? ` in [${min}, ${max}]`
      : min > -Infinity
      ? ` >= ${min}`
      : max < Infinity
      ? ` <= ${max}`
      : "";
    throw new UsageError(`${name}: expected an integer${range}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * Parses a seed list: `3`, `1-5`, `1,4,7` or `1-3,8` (ascending, no
 * repeats), naming the flag in the error.
 *
 * @example
 * ```ts
 * import { parseSeeds } from "./cli.ts";
 * if (parseSeeds("--seeds", "1-3,8").join() !== "1,2,3,8") throw new Error();
 * ```
 */
export function parseSeeds(name: string, v: unknown): number[] {
  const bad = () =>
    new UsageError(
      `${name}: expected seeds like 1-5 or 1,3,4 (integers >= 0, ascending), got ${
        JSON.stringify(v)
      }`,
    );
  if (typeof v !== "string" || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw bad();
  const out: number[] = [];
  for (const part of v.split(",")) {
    const [a, b = a] = part.split("-").map(Number);
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a || b - a > 10000) throw bad();
    for (let s = a; s <= b; s++) out.push(s);
  }
  if (out.some((s, i) => i > 0 && s <= out[i - 1])) throw bad();
  return out;
}

/**
 * Quotes one argument for a POSIX shell (as printed in "continue with"
 * hints and written into batch scripts).
 *
 * @example
 * ```ts
 * import { shellQuote } from "./cli.ts";
 * if (shellQuote("a b") !== "'a b'" || shellQuote("x.ts") !== "x.ts") throw new Error();
 * if (shellQuote("it's") !== "'it'\\''s'") throw new Error();
 * ```
 */
export function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
}

/**
 * Runs a CLI main function: a {@link UsageError} or any other error is printed
 * as one line `qgt: <message>` and the process exits non-zero (2 for usage);
 * {@link HelpRequested} prints its usage to stdout and exits 0.
 *
 * @example
 * ```ts ignore
 * import { runMain } from "./cli.ts";
 * await runMain(async () => { console.log("hi"); });
 * ```
 */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof HelpRequested) {
      console.log(e.message);
      return;
    }
    const err = e as Error;
    console.error(`qgt: ${err.message}`);
    if (Deno.env.get("QGT_DEBUG")) console.error(err.stack);
    Deno.exit(err instanceof UsageError ? 2 : 1);
  }
}

/**
 * Whether an executable named `name` is on the PATH, not counting the
 * directories npx adds while it runs a package (`.../_npx/.../node_modules/.bin`):
 * those are gone from the user's shell afterwards.
 */
function onPath(name: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) =>
    d && !/[/\\]_npx[/\\]/.test(d)
  );
  for (const dir of dirs) {
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111)) return true;
    } catch { /* not there */ }
  }
  return false;
}

/**
 * The command that runs `deno task <task> <args>` as the user can paste it:
 * `deno task ...` when `deno` is on the PATH, else the README's set-up form
 * `npx -y deno@<this version> task ...`. Arguments are shell-quoted.
 *
 * @example
 * ```ts
 * import { taskCommand } from "./cli.ts";
 * const c = taskCommand("run", ["x.ts", "--resume"]);
 * if (!/^(deno|npx -y deno@\d+\.\d+\.\d+) task run x\.ts --resume$/.test(c)) throw new Error(c);
 * ```
 */
export function taskCommand(task: string, args: string[] = []): string {
  const deno = onPath("deno") ? "deno" : `npx -y deno@${Deno.version.deno}`;
  return [deno, "task", task, ...args.map(shellQuote)].join(" ");
}

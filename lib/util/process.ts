/**
 * Whether a recorded run's process is still alive.
 * @module
 */

/**
 * True when process `pid` exists and is a Deno process (so a pid reused by
 * another program after a reboot does not count). Reads `/proc`; where there
 * is none, a pid counts as alive only when it is this process.
 *
 * @example
 * ```ts
 * import { denoProcessAlive } from "./process.ts";
 * if (!denoProcessAlive(Deno.pid)) throw new Error();
 * if (denoProcessAlive(2 ** 22 + 1)) throw new Error(); // above Linux's pid_max
 * ```
 */
export function denoProcessAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("deno");
  } catch {
    return false;
  }
}

/**
 * The one place tests get their assertions. It re-exports `node:assert/strict`
 * because JSR (`@std/assert`) is not reachable on the build machines; swapping
 * to `@std/assert` later is a change to this file only.
 * @module
 */
import assert from "node:assert/strict";

export const assertEquals = assert.deepStrictEqual;
export const assertStrictEquals = assert.strictEqual;
export const assertNotEquals = assert.notDeepStrictEqual;
export const assert_ = assert.ok;
export { assert };
export const assertThrows = assert.throws;
export const assertRejects = assert.rejects;

/** Asserts |a - b| <= tol (absolute), with a message naming both values. */
export function assertAlmostEquals(a: number, b: number, tol = 1e-7, msg = ""): void {
  if (!(Math.abs(a - b) <= tol)) {
    throw new assert.AssertionError({
      message: `${msg} expected ${a} ≈ ${b} (tol ${tol}, diff ${Math.abs(a - b)})`,
    });
  }
}

/** Max relative error of `got` against `want`, relative to max |want|. */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) {
    throw new assert.AssertionError({ message: `length ${got.length} != ${want.length}` });
  }
  let m = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    m = Math.max(m, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return m / (scale || 1);
}

/**
 * Per-kernel timing of training steps, for `deno task bench --profile`.
 *
 * While a profile is recording, every kernel of the active tfjs backend is
 * timed (wall time of its `kernelFunc`; the wasm backend runs synchronously,
 * so that is the kernel's time) and charged to the innermost open *phase*.
 * Phases are named spans the training code opens with {@link profilePhase}
 * (`forward`, `backward`, `quantize`, `pull`, `optimizer`, ...); each phase
 * also records its own wall time, so the time a phase spends outside tfjs
 * kernels (JavaScript, tfjs's bookkeeping, host loops) is its wall time minus
 * its kernels and its nested phases. When no profile is recording,
 * {@link profilePhase} just calls its function.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Time of one kernel in one phase. */
export interface KernelTime {
  phase: string;
  kernel: string;
  calls: number;
  ms: number;
}

/** Wall time of one phase: total, and the part not in kernels or nested phases. */
export interface PhaseTime {
  phase: string;
  calls: number;
  /** Wall time, nested phases included. */
  ms: number;
  /** Time in tfjs kernels charged to this phase itself. */
  kernelMs: number;
  /** Wall time minus kernels minus nested phases: JavaScript and host work. */
  otherMs: number;
}

/** What {@link stopProfile} returns. */
export interface Profile {
  phases: PhaseTime[];
  kernels: KernelTime[];
}

interface Recorder {
  stack: string[];
  kernels: Map<string, KernelTime>;
  phases: Map<string, { calls: number; ms: number; nestedMs: number }>;
}

let rec: Recorder | null = null;
let kernelDepth = 0;
const wrapped = new Set<string>();

/**
 * Replaces each kernel of `backend` by one that times itself while a profile
 * records (once per backend; outside a recording the wrapper only checks a
 * flag). Kernels that run other kernels are timed once, as the outer one.
 */
function wrapKernels(backend: string): void {
  if (wrapped.has(backend)) return;
  wrapped.add(backend);
  for (const cfg of tf.getKernelsForBackend(backend)) {
    const inner = cfg.kernelFunc;
    const kernelFunc: tf.KernelFunc = (args) => {
      if (!rec || kernelDepth > 0) return inner(args);
      const r = rec, t0 = performance.now();
      kernelDepth++;
      try {
        return inner(args);
      } finally {
        kernelDepth--;
        const phase = r.stack[r.stack.length - 1] ?? "(none)";
        const key = `${phase}\u0000${cfg.kernelName}`;
        const k = r.kernels.get(key) ?? { phase, kernel: cfg.kernelName, calls: 0, ms: 0 };
        k.calls++;
        k.ms += performance.now() - t0;
        r.kernels.set(key, k);
      }
    };
    tf.unregisterKernel(cfg.kernelName, backend);
    tf.registerKernel({ ...cfg, kernelFunc });
  }
}

/**
 * Starts recording kernel and phase times on the active backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "./mod.ts";
 * import { profilePhase, startProfile, stopProfile } from "./profile.ts";
 * await initBackend("wasm");
 * startProfile();
 * profilePhase("forward", () => tf.tidy(() => tf.add(tf.ones([4]), tf.ones([4])).dataSync()));
 * const p = stopProfile();
 * const add = p.kernels.find((k) => k.kernel === "Add")!;
 * if (add.phase !== "forward" || add.calls !== 1) throw new Error();
 * if (p.phases[0].phase !== "forward" || !(p.phases[0].ms >= add.ms)) throw new Error();
 * ```
 */
export function startProfile(): void {
  wrapKernels(tf.getBackend());
  rec = { stack: [], kernels: new Map(), phases: new Map() };
}

/** Stops recording and returns the times, phases in first-seen order, kernels by time. */
export function stopProfile(): Profile {
  const r = rec;
  rec = null;
  if (!r) throw new Error("internal: stopProfile without startProfile");
  const kernels = [...r.kernels.values()].sort((a, b) => b.ms - a.ms);
  const phases = [...r.phases].map(([phase, p]) => {
    const kernelMs = kernels.filter((k) => k.phase === phase).reduce((a, k) => a + k.ms, 0);
    return {
      phase,
      calls: p.calls,
      ms: p.ms,
      kernelMs,
      otherMs: Math.max(0, p.ms - p.nestedMs - kernelMs),
    };
  });
  return { phases, kernels };
}

/**
 * Runs `f` as the phase `name`: while a profile records, kernels run by `f`
 * (outside nested phases) are charged to `name`, and its wall time is added
 * to the phase's. Otherwise just `f()`.
 *
 * @example
 * ```ts
 * import { profilePhase } from "./profile.ts";
 * if (profilePhase("optimizer", () => 2 + 2) !== 4) throw new Error();
 * ```
 */
export function profilePhase<T>(name: string, f: () => T): T {
  const r = rec;
  if (!r) return f();
  const parent = r.stack[r.stack.length - 1];
  r.stack.push(name);
  const t0 = performance.now();
  try {
    return f();
  } finally {
    const ms = performance.now() - t0;
    r.stack.pop();
    const p = r.phases.get(name) ?? { calls: 0, ms: 0, nestedMs: 0 };
    p.calls++;
    p.ms += ms;
    r.phases.set(name, p);
    if (parent !== undefined && parent !== name) {
      const q = r.phases.get(parent) ?? { calls: 0, ms: 0, nestedMs: 0 };
      q.nestedMs += ms;
      r.phases.set(parent, q);
    }
  }
}

/** Adds `ms` measured elsewhere (e.g. waiting for a worker) to phase `name`. */
export function addPhaseTime(name: string, ms: number): void {
  const r = rec;
  if (!r) return;
  const p = r.phases.get(name) ?? { calls: 0, ms: 0, nestedMs: 0 };
  p.calls++;
  p.ms += ms;
  r.phases.set(name, p);
}

/** Whether a profile is recording (to skip measuring what only a profile reports). */
export function profiling(): boolean {
  return rec !== null;
}

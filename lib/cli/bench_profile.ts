/**
 * `deno task bench --profile`: per-phase and per-kernel times of float, QAT-2 and QGT-2 training
 * steps, and on the native backend the oneDNN implementation each kernel ran in.
 * @module
 */
import { type BackendName } from "../backend/mod.ts";
import { nativeCalls } from "../backend/native_kernels.ts";
import { GRAD_KERNELS } from "../backend/conv_grad_kernel.ts";
import { type Net, NETS, randomBatch, trainSpeed } from "./bench_train.ts";

export function printProfile(r: Awaited<ReturnType<typeof trainSpeed>>, log: (s: string) => void) {
  const p = r.profile;
  if (!p) return;
  log(
    `  profile, ${r.net} ${r.method}, ${r.gradKernels} gradient kernels, ${r.threads} thread(s): ${
      p.msPerStep.toFixed(1)
    } ms/step (mean of the timed steps)`,
  );
  log("    phase                                     ms/step  in kernels  outside kernels");
  for (const f of p.phases) {
    log(
      `    ${f.phase.padEnd(40)} ${f.ms.toFixed(2).padStart(8)} ${
        f.kernelMs.toFixed(2).padStart(11)
      } ${f.otherMs.toFixed(2).padStart(16)}`,
    );
  }
  log("    kernel (phase)                                       ms/step  calls/step");
  for (const k of p.kernels) {
    log(
      `    ${`${k.kernel} (${k.phase})`.padEnd(52)} ${k.ms.toFixed(2).padStart(8)} ${
        k.calls.toFixed(0).padStart(11)
      }`,
    );
  }
}

/** The oneDNN implementations each native kernel ran in since `before` (a copy of nativeCalls). */
function implsSince(before: Map<string, Map<string, number>>): string[] {
  const lines: string[] = [];
  for (const [kernel, c] of [...nativeCalls].sort(([a], [b]) => a.localeCompare(b))) {
    const parts = [...c.impls].map(([impl, n]) => [impl, n - (before.get(kernel)?.get(impl) ?? 0)])
      .filter(([, n]) => (n as number) > 0).map(([impl, n]) => `${impl} x${n}`);
    if (parts.length) lines.push(`    ${kernel.padEnd(36)} ${parts.join(", ")}`);
  }
  return lines;
}

/**
 * `--profile`: per-phase and per-kernel times of float, QAT-2 and QGT-2
 * steps of both networks, at 1 and `threads` threads, on `backend`; on
 * native also the oneDNN implementation each kernel ran in (the calling
 * thread's calls; a worker runs the same shapes).
 */
export async function profiles(
  threads: number,
  warmup: number,
  steps: number,
  backend: BackendName,
  log: (s: string) => void,
) {
  const out = [];
  for (const net of Object.keys(NETS) as Net[]) {
    const { batch, shape, classes } = NETS[net];
    const b = randomBatch(batch, 5, [...shape], classes);
    for (const method of ["float", "qat-2", "qgt-2"] as const) {
      for (const th of threads > 1 ? [1, threads] : [1]) {
        const kernelSets = net === "mobilenet" && method === "float" && backend === "wasm"
          ? GRAD_KERNELS
          : ["tfjs" as const];
        for (const k of kernelSets) {
          const before = new Map([...nativeCalls].map(([n, c]) => [n, new Map(c.impls)]));
          const r = await trainSpeed(th, warmup, steps, b, method, net, true, k, backend);
          printProfile(r, log);
          const impls = implsSince(before);
          if (impls.length) log(`    oneDNN implementations (calls):\n${impls.join("\n")}`);
          out.push({ ...r, ...(impls.length ? { impls: implsObject(before) } : {}) });
        }
      }
    }
  }
  return out;
}

/** implsSince as data, for --json. */
function implsObject(before: Map<string, Map<string, number>>): Record<string, string[]> {
  const o: Record<string, string[]> = {};
  for (const [kernel, c] of nativeCalls) {
    const list = [...c.impls.keys()].filter((i) =>
      c.impls.get(i)! > (before.get(kernel)?.get(i) ?? 0)
    );
    if (list.length) o[kernel] = list;
  }
  return o;
}

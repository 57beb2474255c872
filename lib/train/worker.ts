/**
 * A training worker thread: holds its own tfjs instance and model replica and
 * computes gradients for the shards the main thread sends (see `engine.ts`).
 * @module
 */
import { initBackend, setGradKernels } from "../backend/mod.ts";
import { createModel, type Model } from "../models/model.ts";
import { assignState, type WorkerReply, type WorkerRequest } from "./engine.ts";
import { computeGrads, loadSetup, stateVariables, type StepSetup } from "./step.ts";

let model: Model | null = null;
let setup: StepSetup = {};

const scope = self as unknown as {
  postMessage(m: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
};
const post = (r: WorkerReply, transfer: Transferable[] = []) => scope.postMessage(r, transfer);

scope.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const msg = e.data;
  try {
    if (msg.type === "init") {
      await initBackend(msg.backend);
      setGradKernels(msg.gradKernels);
      model = createModel(msg.arch, 0);
      setup = await loadSetup(model, msg.setup);
      const names = stateVariables(model, setup).map((s) => s.name);
      if (names.join() !== msg.stateNames.join()) {
        throw new Error("worker state variables differ from the main thread's");
      }
      post({ type: "ready" });
    } else {
      if (!model) throw new Error("step before init");
      const t0 = performance.now();
      assignState(model, setup, msg.weights);
      const result = computeGrads(model, setup, msg.batch, msg.vars);
      post({ type: "result", result, ms: performance.now() - t0 }, [
        ...result.grads.map((g) => g.buffer),
        ...result.bnStats.map((g) => g.buffer),
      ] as Transferable[]);
    }
  } catch (err) {
    post({ type: "error", message: (err as Error).message });
  }
};

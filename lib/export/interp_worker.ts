/**
 * A worker thread running the integer interpreter on a shard of images
 * (see `evaluateInterpreterParallel`).
 * @module
 */
import { loadInterpreter, pixelsToInt8, runInterpreter } from "./interpreter.ts";

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage:
    | ((
      e: MessageEvent<{ bytes: Uint8Array; images: Uint8Array; per: number; file: string }>,
    ) => void)
    | null;
};

scope.onmessage = (e) => {
  try {
    const { bytes, images, per, file } = e.data;
    const it = loadInterpreter(bytes, file);
    const n = images.length / per;
    const predictions = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const { logits } = runInterpreter(it, pixelsToInt8(images.subarray(i * per, (i + 1) * per)));
      let best = 0;
      for (let c = 1; c < logits.length; c++) if (logits[c] > logits[best]) best = c;
      predictions[i] = best;
    }
    scope.postMessage({ predictions });
  } catch (err) {
    scope.postMessage({ error: (err as Error).message });
  }
};

/**
 * A worker thread running the integer interpreter on a shard of images
 * (see `evaluateInterpreterParallel`).
 * @module
 */
import { loadInterpreter, pixelsToInt8, runInterpreter } from "./interpreter.ts";
import { predictClass } from "../format/numbers.ts";

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage:
    | ((
      e: MessageEvent<
        { bytes: Uint8Array; images: Uint8Array; per: number; file: string; logits?: boolean }
      >,
    ) => void)
    | null;
};

scope.onmessage = (e) => {
  try {
    const { bytes, images, per, file } = e.data;
    const it = loadInterpreter(bytes, file);
    const n = images.length / per, k = it.header.classes.length;
    const predictions = new Uint8Array(n);
    const logits = e.data.logits ? new Int32Array(n * k) : null;
    const scales = it.layers[it.layers.length - 1].weightScale!;
    for (let i = 0; i < n; i++) {
      const { acc } = runInterpreter(it, pixelsToInt8(images.subarray(i * per, (i + 1) * per)));
      predictions[i] = predictClass(acc, scales);
      logits?.set(acc, i * k);
      if ((i + 1) % 16 === 0 && i + 1 < n) scope.postMessage({ done: 16 });
    }
    scope.postMessage({ predictions, logits });
  } catch (err) {
    scope.postMessage({ error: (err as Error).message });
  }
};

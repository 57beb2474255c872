/**
 * A worker thread running the integer interpreter on a shard of images
 * (see `evaluateInterpreterParallel`).
 * @module
 */
import { loadInterpreter, pixelsToInt8, predict } from "./interpreter.ts";

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
      predictions[i] = predict(it, pixelsToInt8(images.subarray(i * per, (i + 1) * per)));
    }
    scope.postMessage({ predictions });
  } catch (err) {
    scope.postMessage({ error: (err as Error).message });
  }
};

/**
 * TensorFlow.js as qgt imports it (`deno.json` maps `@tensorflow/tfjs` here, and
 * `@tensorflow/tfjs-upstream` to the npm package):
 * the npm package with its production flag set, so tfjs's own console notices
 * (the "install our node backend" banner the CPU backend prints in every
 * process and worker) stay out of qgt's output. `PROD` only silences tfjs's
 * warnings and logs; it changes no computation.
 * @module
 */
import * as tf from "@tensorflow/tfjs-upstream";

tf.env().set("PROD", true);

export * from "@tensorflow/tfjs-upstream";

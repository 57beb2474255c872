/**
 * The file formats qgt owns, as pure functions on bytes (no tfjs): `model.qgt` (building,
 * parsing and validating it, its header, sub-byte packing, the number rules every reader
 * shares), the TFLite flatbuffer schema it converts to, and a model's bytes as C source.
 * @module
 */
export * from "./model_file.ts";
export * from "./header.ts";
export * from "./pack.ts";
export * from "./numbers.ts";
export * from "./c_array.ts";
export * from "./tflite_schema.ts";

/*
 * qgt_runtime: runs a model.qgt (format version 4, docs/format.md; `deno task export --upgrade`
 * converts older files) in place from a const byte array. Portable C99, no heap, no floating
 * point: the caller passes one arena (qgt_arena_bytes says how big), every input is validated
 * before it is used, and the results are bit-exact with qgt's TypeScript interpreter
 * (lib/engine/interpreter.ts). The kernels are chosen at compile time (qgt_kernels() names
 * them): the reference loops, SSE2 on x86-64, or the DSP set on a Cortex-M4 and up.
 *
 *   qgt_model m;                                   (static or on the stack: qgt_model_size())
 *   if (qgt_load(&m, g_qgt_model_data, g_qgt_model_data_len) != QGT_OK) puts(qgt_error(&m));
 *   static uint8_t arena[QGT_ARENA_BYTES];         (at least qgt_arena_bytes(&m))
 *   int32_t logits[2];
 *   qgt_invoke(&m, image, image_len, arena, sizeof arena, logits);
 *   int cls = qgt_predict(&m, logits);
 *
 * docs/runtime.md describes the API, the memory plan and how to drop this into firmware.
 */
#ifndef QGT_RUNTIME_H
#define QGT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most layers a model may have (each costs sizeof(qgt_layer) bytes in qgt_model). */
#ifndef QGT_MAX_LAYERS
#define QGT_MAX_LAYERS 48
#endif

/* Output channels computed together: their weights are unpacked side by side into the arena's
 * scratch, so one pass over the input serves them all (never the whole kernel). */
#ifndef QGT_BLOCK
#define QGT_BLOCK 8
#endif

typedef enum {
  QGT_OK = 0,
  QGT_ERR_ARGUMENT,  /* a NULL pointer or a wrong length from the caller */
  QGT_ERR_TRUNCATED, /* the file is shorter than its preamble or header say */
  QGT_ERR_MAGIC,     /* not a model.qgt */
  QGT_ERR_VERSION,   /* a format version this runtime does not read */
  QGT_ERR_FLAGS,     /* reserved flags set */
  QGT_ERR_CHECKSUM,  /* CRC-32 mismatch: the file is damaged */
  QGT_ERR_HEADER,    /* JSON syntax, an unknown or missing key, a value of the wrong kind */
  QGT_ERR_SHAPE,     /* the layer sequence does not fit together */
  QGT_ERR_SECTION,   /* an offset or length outside the payload, or overlapping sections */
  QGT_ERR_VALUE,     /* a payload value out of range (scale, zero point, overflow bound) */
  QGT_ERR_LIMIT,     /* more layers than QGT_MAX_LAYERS, or tensors too large */
  QGT_ERR_ARENA      /* the arena passed to qgt_invoke is smaller than qgt_arena_bytes */
} qgt_status;

enum { QGT_CONV2D = 1, QGT_DEPTHWISE2D, QGT_DENSE, QGT_MAXPOOL, QGT_GAP, QGT_ADD };
enum { QGT_ACT_NONE = 0, QGT_ACT_RELU, QGT_ACT_RELU6 };

/* One layer as the header describes it, with its derived shapes and quantization. */
typedef struct {
  uint8_t type, act, bits, same, per_tensor, has_zero_points, has_out;
  int8_t qmin;
  uint32_t kernel, stride;          /* conv/depthwise kernel and stride; maxpool window, stride */
  uint32_t units;                   /* conv2d filters, dense units */
  uint32_t codes, scales, zero_points, bias; /* payload offsets */
  uint32_t out_scale;               /* float32 bits of its output scale (the actScales table) */
  int32_t out_zp;                   /* outZp, or the input zero point for pooling */
  uint32_t in_h, in_w, in_c, out_h, out_w, out_c, in_rank, out_rank;
  uint32_t pad_top, pad_left;
  uint32_t in_scale;                /* float32 bits of the input's scale */
  int32_t in_zp, act_min, act_max;
  uint32_t n_weights;               /* kernel elements */
  int16_t in1, in2;                 /* the layers read (-1: the network input); in2 for add */
  uint32_t in2_scale;               /* add: float32 bits of the second input's scale */
  int32_t in2_zp;                   /* add: the second input's zero point */
  size_t out_off;                   /* where the output lies in the activation region */
  const char *name;                 /* into the header, not terminated */
  uint32_t name_len;
} qgt_layer;

/* A loaded model: points into the caller's bytes, which must outlive it. */
typedef struct {
  const uint8_t *payload;
  uint32_t payload_len;
  uint32_t version, n_layers, n_classes;
  uint32_t in_h, in_w, in_c;
  uint32_t in_scale;                /* float32 bits (actScales[0]) */
  int32_t in_zp;
  uint32_t act_scales, act_scales_len; /* the activation-scale table: payload offset, bytes */
  size_t in_off;                    /* where the input lies in the activation region */
  size_t act_bytes;                 /* the activation region of the arena */
  size_t scratch_bytes;             /* per-channel weights and accumulators */
  qgt_layer layers[QGT_MAX_LAYERS];
  char error[160];                  /* what the last failure was, one line */
} qgt_model;

/* Parses and validates a model (magic, version, checksum, header, every section and value).
 * On failure the model holds a one-line message (qgt_error). The bytes must stay valid. */
qgt_status qgt_load(qgt_model *m, const uint8_t *bytes, size_t size);

/* The arena qgt_invoke needs: activations (one region, planned by tensor lifetimes) plus scratch. */
size_t qgt_arena_bytes(const qgt_model *m);

/* The activation region's share of the arena (the rest is per-block weight scratch). */
size_t qgt_activation_bytes(const qgt_model *m);

/* Runs one image: input is H*W*C int8 (q = pixel - 128 for uint8 pixels); logits receives the
 * last layer's n_classes int32 accumulators. The arena is the caller's scratch memory. */
qgt_status qgt_invoke(const qgt_model *m, const int8_t *input, size_t input_len,
                      uint8_t *arena, size_t arena_len, int32_t *logits);

/* The predicted class: the largest logit acc[c] * s_w[c], compared exactly, ties to the lowest. */
int qgt_predict(const qgt_model *m, const int32_t *logits);

/* The last failure's message, and a status's name. */
const char *qgt_error(const qgt_model *m);
const char *qgt_status_name(qgt_status s);

/* The number of classes (logits) of a loaded model. */
uint32_t qgt_num_classes(const qgt_model *m);

/* sizeof(qgt_model), for callers that allocate it through an FFI. */
size_t qgt_model_size(void);

/* Which kernels this build runs: "sse2" (x86-64 hosts) or "reference" (the plain C loops, what a
 * microcontroller runs; -DQGT_NO_SIMD selects them anywhere). Both give the same results. */
const char *qgt_kernels(void);

#ifdef __cplusplus
}
#endif

#endif /* QGT_RUNTIME_H */

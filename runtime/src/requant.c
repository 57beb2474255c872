/*
 * requant.c: int32 sums to int8 outputs: the format's fixed-point requantization (mul_q, one
 * rounding), and a block of output channels at once, in fewer steps under QGT_DSP.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

/* floor((acc m0 + 2^(t-1)) / 2^t), t = 31 - shift in 1..62, saturated to int32: the product
 * rounded once, half up. |acc m0| < 2^62; in unsigned arithmetic with 2^63 (a multiple of 2^t)
 * added, the sum is positive and below 2^64, so the shift is exact floor division (C leaves >>
 * of negative numbers to the compiler, and signed overflow undefined). */
static int32_t mul_q(int32_t acc, int32_t m0, int32_t shift) {
  int t = 31 - shift;
  uint64_t u = (uint64_t)((int64_t)acc * m0) + ((uint64_t)1 << (t - 1)) + ((uint64_t)1 << 63);
  int64_t v = (int64_t)(u >> t) - ((int64_t)1 << (63 - t));
  v = v > 2147483647 ? 2147483647 : v;
  v = v < -2147483647 - 1 ? -2147483647 - 1 : v;
  return (int32_t)v;
}

/* q = clamp(mul_q(acc) + zp, lo, hi): the layer's requantized int8 output. */
static int8_t requant(int32_t acc, int32_t m0, int32_t shift, const qgt_layer *l) {
  int64_t v = (int64_t)mul_q(acc, m0, shift) + l->out_zp;
  v = v < l->act_min ? l->act_min : v;
  v = v > l->act_max ? l->act_max : v;
  return (int8_t)v;
}

/* The requantization of a block of output channels. */
typedef struct {
  uint32_t co, n;
  int32_t bias[QGT_BLOCK], m0[QGT_BLOCK], shift[QGT_BLOCK];
#ifdef QGT_DSP
  int32_t rnd[QGT_BLOCK], rsh[QGT_BLOCK]; /* 2^(t-33) and t - 32 for t >= 33, else rsh 0 */
  int64_t half[QGT_BLOCK];                /* 2^(t-1) */
  int32_t t[QGT_BLOCK];                   /* 31 - shift */
  uint32_t all_hi;                        /* every channel's rsh is set */
#endif
} qgt_block;

#ifdef QGT_DSP
/* requant_block under QGT_DSP computes requant's value in fewer steps:
 * - t = 31 - shift >= 33, in 32-bit steps: with v = acc m0 = H 2^32 + L (0 <= L < 2^32) and
 *   2^(t-1) a multiple of 2^32, floor((v + 2^(t-1)) / 2^t) = floor((H + 2^(t-33)) / 2^(t-32)):
 *   SMMUL, an add and an arithmetic shift (GCC and Clang shift signed values arithmetically);
 *   |H| < 2^30, so nothing saturates.
 * - any other t, in 64-bit steps: the sum shifted arithmetically, clamped to the activation
 *   range without requant's saturation to int32 first, which gives the same result because
 *   act_min and act_max lie inside int32 and clamping is monotone. */
#endif

#ifdef QGT_DSP
/* Channel j's 32-bit steps (t >= 33, above): SMMUL, add 2^(t-33), shift by t - 32. */
static int32_t requant_hi(int32_t v, const qgt_block *b, uint32_t j) {
  return ((int32_t)(((int64_t)v * b->m0[j]) >> 32) + b->rnd[j]) >> b->rsh[j];
}
#endif

/* yp[j] = the requantized bias[j] + acc[j] of each channel of a block. */
static void requant_block(const qgt_layer *l, const qgt_block *b, const int32_t *acc, int8_t *yp) {
  uint32_t j, n = b->n;
#ifdef QGT_DSP
  /* the layer's constants in locals: stores through yp (int8) could alias them otherwise */
  int32_t zp = l->out_zp, lo = l->act_min, hi = l->act_max;
  if (b->all_hi) { /* every channel takes the 32-bit steps: no branch per channel */
    for (j = 0; j < n; j++) {
      int32_t q = requant_hi(b->bias[j] + acc[j], b, j) + zp;
      q = q < lo ? lo : q;
      yp[j] = (int8_t)(q > hi ? hi : q);
    }
    return;
  }
  for (j = 0; j < n; j++) {
    int32_t v = b->bias[j] + acc[j], q;
    if (b->rsh[j]) {
      q = requant_hi(v, b, j) + zp;
    } else {
      int64_t w = (((int64_t)v * b->m0[j] + b->half[j]) >> b->t[j]) + zp;
      q = w < lo ? lo : w > hi ? hi : (int32_t)w;
    }
    q = q < lo ? lo : q;
    yp[j] = (int8_t)(q > hi ? hi : q);
  }
#else
  for (j = 0; j < n; j++) yp[j] = requant(b->bias[j] + acc[j], b->m0[j], b->shift[j], l);
#endif
}


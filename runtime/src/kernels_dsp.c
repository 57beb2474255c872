/*
 * kernels_dsp.c: the inner loops for a Cortex-M with the DSP extension (Cortex-M4/M7/M33/M55:
 * __ARM_FEATURE_DSP), through ACLE intrinsics. A part of qgt_runtime.c, included by weights.c
 * when QGT_DSP is set; it computes the same integer sums as the reference loops, so the
 * outputs are bit-exact with them (the tests run both on the emulated Cortex-M4).
 *
 * The idea is CMSIS-NN's: SXTB16 sign-extends bytes 0 and 2 (or, rotated, 1 and 3) of a word
 * of four int8 activations into two int16 lanes, and SMLAD multiplies two int16 pairs and adds
 * both products to an accumulator, so four activations cost one load and two extensions, and
 * two multiply-accumulates each. The weights are unpacked from their 1-8-bit codes once per
 * block of output channels and layer pass (block_weights), straight into the lane order SMLAD
 * wants: within each group of four input channels, codes 0, 2, 1, 3 (dsp_slot in weights.c).
 */
#include <arm_acle.h>

/* Two int16 weights read as one word: the scratch holds int16 values, read here in pairs (GCC
 * and Clang, the compilers with ACLE, allow this alias through the attribute). Every pair
 * starts at a multiple of 4 bytes: groups are 8 bytes and the scratch is 8-byte aligned. */
typedef int32_t qgt_pair __attribute__((may_alias));
/* Two pairs at once (one LDRD): a channel's four weights of a group. */
typedef uint64_t qgt_quad __attribute__((may_alias));

/* SXTB16 of x rotated right by 8: bytes 1 and 3 as int16 lanes, one instruction (GCC does not
 * fold the rotation into SXTB16 by itself). */
static int32_t sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

static uint32_t rd_word(const int8_t *p) { /* four int8, any alignment (LDR on Cortex-M4) */
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* acc[0..7] = eight rows of a full block over `groups` groups of four input channels (each
 * group 32 int16: row j at w[4 j]): one word of activations, extended once, serves all eight
 * channels; the weights come two pairs per LDRD (GCC splits 64-bit loads into two LDRs on this
 * core). Not inlined, so that its 8 accumulators get the registers: 30 instructions per 32
 * multiply-accumulates. */
__attribute__((noinline)) static void dsp_dot8(const int8_t *x, const int16_t *w, uint32_t groups,
                                               int32_t *acc) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  const qgt_quad *wq = (const qgt_quad *)(const void *)w;
  const int8_t *end = x + 4u * groups;
  for (; x != end; x += 4, wq += 8) {
    uint32_t xv = rd_word(x);
    int32_t xa = (int32_t)__sxtb16(xv), xb = sxtb16_ror8(xv), u, v;
#define QGT_ROW(a, k)                                                                      \
  __asm__("ldrd %0, %1, [%2, #" #k "]" : "=&r"(u), "=r"(v) : "r"(wq), "m"(*(const qgt_quad(*)[8])wq)); \
  a = __smlad(xb, v, __smlad(xa, u, a))
    QGT_ROW(a0, 0);
    QGT_ROW(a1, 8);
    QGT_ROW(a2, 16);
    QGT_ROW(a3, 24);
    QGT_ROW(a4, 32);
    QGT_ROW(a5, 40);
    QGT_ROW(a6, 48);
    QGT_ROW(a7, 56);
#undef QGT_ROW
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
  acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
}

/* acc[j] = the dot product of x[0..cin) with row j of a block of n rows laid out for SMLAD:
 * the first 4 * (cin / 4) channels as groups, each group n rows of four int16 (dsp_slot
 * order), then the cin % 4 remaining channels as n plain rows. */
static void dsp_dot(const int8_t *x, const int16_t *w, uint32_t cin, uint32_t n, int32_t *acc) {
  uint32_t g, j, i, groups = cin >> 2, rem = cin & 3u;
  const int16_t *tail = w + (size_t)groups * 4u * n;
  if (n == 8) {
    dsp_dot8(x, w, groups, acc);
  } else {
    for (j = 0; j < n; j++) acc[j] = 0;
    for (g = 0; g < groups; g++) {
      uint32_t xv = rd_word(x + 4u * g);
      int32_t xa = (int32_t)__sxtb16(xv), xb = sxtb16_ror8(xv);
      const qgt_pair *ww = (const qgt_pair *)(const void *)(w + (size_t)g * n * 4u);
      for (j = 0; j < n; j++) acc[j] = __smlad(xb, ww[2 * j + 1], __smlad(xa, ww[2 * j], acc[j]));
    }
  }
  for (j = 0; j < n; j++)
    for (i = 0; i < rem; i++) acc[j] += (int32_t)x[4u * groups + i] * tail[j * rem + i];
}

/* Eight codes of B bits (a constant) from u, lowest first, as weights c * mul + lo at d[0],
 * d[st], ... (1 bit: -1 / +1 from 0 / 1): a bit-field extract, an add and a store each. */
#define QGT_UNPACK8(d, st, u, B, lo)                                                         \
  do {                                                                                       \
    uint32_t u_ = (u), k_;                                                                   \
    for (k_ = 0; k_ < 8; k_++)                                                               \
      (d)[k_ * (st)] = (int16_t)((int32_t)((u_ >> (B * k_)) & ((1u << B) - 1u)) * ((B) == 1 ? 2 : 1) + (lo)); \
  } while (0)


/* The input channels of one tap, B bits a code: each group of four channels' codes unpacked
 * into its slots (0, 2, 1, 3), then the cin % 4 left over as plain rows. Returns the next
 * channel's byte offset. */
#define QGT_UNPACK_TAP(B)                                                                    \
  do {                                                                                       \
    for (ci = 0; ci < grouped; ci += 4, at += 4u * step) {                                   \
      int16_t *d = wt + ci * 8u;                                                             \
      QGT_UNPACK8(d, 4, code_word_at(codes, at, end), B, lo);                                \
      QGT_UNPACK8(d + 2, 4, code_word_at(codes, at + step, end), B, lo);                     \
      QGT_UNPACK8(d + 1, 4, code_word_at(codes, at + 2u * step, end), B, lo);                \
      QGT_UNPACK8(d + 3, 4, code_word_at(codes, at + 3u * step, end), B, lo);                \
    }                                                                                        \
    for (; ci < cin; ci++, at += step)                                                       \
      QGT_UNPACK8(wt + grouped * 8u + (ci - grouped), rem, code_word_at(codes, at, end), B, lo); \
  } while (0)

/* block_weights for the common case, in fewer instructions: a full block of 8 output channels
 * of a conv2d or dense layer whose 1-4-bit codes start on byte boundaries at every input
 * channel and have no zero points. Each input channel's 8 codes come from one word, unpacked
 * with constant offsets and widths into dsp_dot's layout; the sums per tap are added up
 * afterwards from the unpacked weights (SMLAD against ones). Returns 0, having written
 * nothing, for any other layer. `end` is the length of the code section. */
static int dsp_unpack8(const uint8_t *codes, uint32_t end, uint32_t co, uint32_t taps,
                       uint32_t cin, uint32_t stride, uint32_t bits, int32_t lo, int16_t *w,
                       int32_t *wsum) {
  uint32_t t, ci, j, g, i, at = (co * bits) >> 3, step;
  uint32_t grouped = cin & ~3u, rem = cin & 3u, ts = tap_stride(8, cin);
  if (bits > 4 || ((co * bits) & 7u) || ((stride * bits) & 7u)) return 0;
  step = (stride * bits) >> 3; /* bytes from one input channel's codes to the next */
  for (t = 0; t < taps; t++) {
    int16_t *wt = w + t * ts;
    switch (bits) {
      case 1:
        QGT_UNPACK_TAP(1);
        break;
      case 2:
        QGT_UNPACK_TAP(2);
        break;
      case 3:
        QGT_UNPACK_TAP(3);
        break;
      default:
        QGT_UNPACK_TAP(4);
    }
    for (j = 0; j < 8; j++) {
      const qgt_pair *pp = (const qgt_pair *)(const void *)(wt + 4u * j);
      int32_t s = 0;
      for (g = 0; g < grouped; g += 4, pp += 16) s = __smlad(pp[1], 0x00010001, __smlad(pp[0], 0x00010001, s));
      for (i = 0; i < rem; i++) s += wt[grouped * 8u + j * rem + i];
      wsum[j * taps + t] = s;
    }
  }
  return 1;
}

/* Four channels of a depthwise (or one-input-channel) convolution over a window of rows x cols
 * taps: acc[j] = sum of x * w. For depthwise, the four channels' activations are the bytes of
 * one word (SXTB16 lanes (0, 2), rotated (1, 3)); with one input channel the one activation
 * sits in both lanes. The weights of a tap are two pairs in dsp_slot order. SMLABB / SMLATT
 * take one lane each: four products per tap, accumulated in registers. */
static void dsp_window4(const int8_t *x, uint32_t dw, uint32_t rows, uint32_t cols,
                        uint32_t rowstep, uint32_t colstep, const int16_t *w, uint32_t wrow,
                        int32_t *acc) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  uint32_t r, c;
  for (r = 0; r < rows; r++, x += rowstep, w += wrow) {
    const int8_t *xp = x;
    const qgt_pair *wp = (const qgt_pair *)(const void *)w;
    for (c = 0; c < cols; c++, xp += colstep, wp += 4) {
      int32_t lo, hi;
      if (dw) {
        uint32_t xv = rd_word(xp);
        lo = (int32_t)__sxtb16(xv), hi = sxtb16_ror8(xv);
      } else {
        lo = hi = (int32_t)((uint32_t)(uint16_t)(int16_t)*xp * 0x00010001u);
      }
      a0 = __smlabb(lo, wp[0], a0);
      a2 = __smlatt(lo, wp[0], a2);
      a1 = __smlabb(hi, wp[1], a1);
      a3 = __smlatt(hi, wp[1], a3);
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

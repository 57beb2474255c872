/*
 * kernels.c: the integer kernels (portable reference loops and SSE2 on x86-64), each with the scratch size it needs, and qgt_invoke / qgt_predict.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

/* ------------------------------------------------------------------ kernels */

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

/* The DSP extension's kernel set (Cortex-M4 and up), chosen at compile time; QGT_NO_SIMD
 * keeps the reference loops on any target. */
#if defined(__ARM_FEATURE_DSP) && !defined(QGT_NO_SIMD)
#define QGT_DSP 1
#if defined(__GNUC__) && !defined(__clang__) && !defined(QGT_KERNEL_OPT_NONE)
/* The kernels are the time; the parser and validation stay as the build says (-Os on the
 * firmware). The rest of this file is compiled for speed. */
#pragma GCC optimize("O3")
#endif
#endif

/* Where input channel ci of a group of four sits in the DSP layout: SXTB16 gives lanes (0, 2),
 * then, rotated, (1, 3). */
static uint32_t dsp_slot(uint32_t ci) { return (ci & ~3u) | ((ci & 1u) << 1) | ((ci & 2u) >> 1); }

#ifdef QGT_DSP
/* Int16 values per tap of a block's weights in the DSP layout, a multiple of 4 so that every
 * tap starts 8-byte aligned (at most QGT_BLOCK * cin: the scratch holds them). */
static uint32_t tap_stride(uint32_t n, uint32_t cin) { return (n * cin + 3u) & ~3u; }
#include "kernels_dsp.c"
#endif

/* Four bytes of codes as a little-endian word: one load where the target reads unaligned words
 * (the DSP targets do), else rd_u32's portable bytes. */
static uint32_t code_word(const uint8_t *p) {
#ifdef QGT_DSP
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
#else
  return rd_u32(p);
#endif
}

/* The weights (code - zero point) of output channels co..co+n-1 and their sums per tap. Kernels
 * are [kh][kw][cin][cout] (conv2d; dense as [in][out]) and [kh][kw][c] (depthwise), so at each
 * tap and input channel the n channels' codes are n adjacent elements: n * bits contiguous bits,
 * read at once. Layouts:
 * - one input per tap (depthwise, or a one-channel input): tap-major, w[t * n + j] (under
 *   QGT_DSP, a full block puts channel j at t * 8 + dsp_slot(j));
 * - else one row per channel, w[j * taps * cin + t * cin + ci], for dot products; under
 *   QGT_DSP per tap a block of rows (w + t * tap_stride) in the lane order of dsp_dot: groups
 *   of four input channels, n rows each, then the cin % 4 left over as plain rows. */
static void block_weights(const qgt_model *m, const qgt_layer *l, uint32_t co, uint32_t n,
                          int16_t *w, int32_t *wsum) {
  const uint8_t *codes = m->payload + l->codes;
  uint32_t dw = l->type == QGT_DEPTHWISE2D, taps = l->type == QGT_DENSE ? 1u : l->kernel * l->kernel;
  uint32_t cin = dw ? 1u : l->in_c, stride = dw ? l->in_c : l->out_c, bits = l->bits;
  uint32_t mask = (1u << bits) - 1u, t, ci, j, tapmajor = cin == 1;
  uint32_t end = (uint32_t)(((uint64_t)l->n_weights * bits + 7u) / 8u); /* the section's length */
#ifdef QGT_DSP
  uint32_t grouped = cin & ~3u, rem = cin & 3u, swap = tapmajor && n == 8, ts = tap_stride(n, cin);
#else
  uint32_t swap = 0;
#endif
  /* code = c * mul + lo: 1 bit stores -1 / +1 as 0 / 1, wider codes store code - qmin */
  int32_t mul = bits == 1 ? 2 : 1, base[QGT_BLOCK], lo = bits == 1 ? -1 : l->qmin;
#ifdef QGT_DSP
  if (n == 8 && !tapmajor && !l->has_zero_points &&
      dsp_unpack8(codes, end, co, taps, cin, stride, bits, lo, w, wsum))
    return;
#endif
  for (j = 0; j < n; j++) {
    uint32_t zc = l->per_tensor ? 0u : co + j;
    base[j] = lo - (l->has_zero_points ? rd_i32(m->payload + l->zero_points + 4u * zc) : 0);
  }
  for (t = 0; t < taps; t++) {
    int32_t ws[QGT_BLOCK] = {0};
    for (ci = 0; ci < cin; ci++) {
      uint32_t pos = ((t * cin + ci) * stride + co) * bits, byte = pos >> 3, off = pos & 7u;
      uint32_t nbytes = (off + n * bits + 7u) >> 3, k, first, step;
      uint64_t v = 0;
      if (tapmajor) {
        first = t * n, step = 1u;
      } else {
#ifdef QGT_DSP
        first = ci < grouped ? t * ts + (ci >> 2) * n * 4u + (dsp_slot(ci) & 3u)
                             : t * ts + grouped * n + (ci - grouped);
        step = ci < grouped ? 4u : rem;
#else
        first = t * cin + ci, step = taps * cin;
#endif
      }
      if (off + n * bits <= 32u && byte + 4u <= end) {
        /* the block's codes within one little-endian word (always at 1-3 bits) */
        uint32_t u = code_word(codes + byte) >> off, d = first;
        for (j = 0; j < n; j++, u >>= bits, d += step) {
          int32_t x = (int32_t)(u & mask) * mul + base[j];
          w[swap ? first + dsp_slot(j) : d] = (int16_t)x;
          ws[j] += x;
        }
        continue;
      }
      if (byte + 8u <= end) { /* eight bytes at once where the section has them */
        const uint8_t *c8 = codes + byte;
        v = (uint64_t)code_word(c8) | ((uint64_t)code_word(c8 + 4) << 32);
      } else {
        for (k = 0; k < nbytes; k++) v |= (uint64_t)codes[byte + k] << (8u * k);
      }
      v >>= off;
      for (j = 0; j < n; j++, v >>= bits) {
        int32_t x = (int32_t)((uint32_t)v & mask) * mul + base[j];
        w[first + (swap ? dsp_slot(j) : j) * step] = (int16_t)x;
        ws[j] += x;
      }
    }
    for (j = 0; j < n; j++) wsum[j * taps + t] = ws[j];
  }
}

/* The hot loops. The plain C below is the reference (and what a microcontroller runs); with
 * SSE2 (every x86-64 host) the same sums are computed eight products at a time. Integer
 * arithmetic makes both give the same results; the tests compare them. */
#if defined(__SSE2__) && !defined(QGT_NO_SIMD)
#define QGT_SSE2 1
#include <emmintrin.h>
#endif

#if defined(QGT_SSE2)
const char *qgt_kernels(void) { return "sse2"; }
#elif defined(QGT_DSP)
const char *qgt_kernels(void) { return "dsp"; }
#else
const char *qgt_kernels(void) { return "reference"; }
#endif

static int32_t dot(const int8_t *x, const int16_t *w, uint32_t n) {
  int32_t s = 0;
  uint32_t i;
  for (i = 0; i < n; i++) s += (int32_t)x[i] * w[i];
  return s;
}

#ifdef QGT_SSE2
static __m128i load8(const int8_t *x) { /* eight int8 as eight int16 */
  __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)x);
  return _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
}
static __m128i loadw(const int16_t *w) { return _mm_loadu_si128((const __m128i *)(const void *)w); }
static int32_t hsum(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
  return _mm_cvtsi128_si32(v);
}
#endif

#ifndef QGT_DSP
/* QGT_BLOCK dot products of n activations with the weight rows w + j * stride. */
static void dot_block(const int8_t *x, const int16_t *w, uint32_t n, uint32_t stride,
                      int32_t *out) {
  uint32_t i = 0, j;
#if defined(QGT_SSE2) && QGT_BLOCK == 8
  const int16_t *w1 = w + stride, *w2 = w1 + stride, *w3 = w2 + stride, *w4 = w3 + stride;
  const int16_t *w5 = w4 + stride, *w6 = w5 + stride, *w7 = w6 + stride;
  __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (; i + 8 <= n; i += 8) {
    __m128i xv = load8(x + i);
    a0 = _mm_add_epi32(a0, _mm_madd_epi16(xv, loadw(w + i)));
    a1 = _mm_add_epi32(a1, _mm_madd_epi16(xv, loadw(w1 + i)));
    a2 = _mm_add_epi32(a2, _mm_madd_epi16(xv, loadw(w2 + i)));
    a3 = _mm_add_epi32(a3, _mm_madd_epi16(xv, loadw(w3 + i)));
    a4 = _mm_add_epi32(a4, _mm_madd_epi16(xv, loadw(w4 + i)));
    a5 = _mm_add_epi32(a5, _mm_madd_epi16(xv, loadw(w5 + i)));
    a6 = _mm_add_epi32(a6, _mm_madd_epi16(xv, loadw(w6 + i)));
    a7 = _mm_add_epi32(a7, _mm_madd_epi16(xv, loadw(w7 + i)));
  }
  out[0] = hsum(a0);
  out[1] = hsum(a1);
  out[2] = hsum(a2);
  out[3] = hsum(a3);
  out[4] = hsum(a4);
  out[5] = hsum(a5);
  out[6] = hsum(a6);
  out[7] = hsum(a7);
#else
  for (j = 0; j < QGT_BLOCK; j++) out[j] = 0;
#endif
  for (; i < n; i++)
    for (j = 0; j < QGT_BLOCK; j++) out[j] += (int32_t)x[i] * w[j * stride + i];
}
#endif

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

/* yp[j] = the requantized bias[j] + acc[j] of each channel of a block. */
static void requant_block(const qgt_layer *l, const qgt_block *b, const int32_t *acc, int8_t *yp) {
  uint32_t j, n = b->n;
#ifdef QGT_DSP
  /* the layer's constants in locals: stores through yp (int8) could alias them otherwise */
  int32_t zp = l->out_zp, lo = l->act_min, hi = l->act_max;
  if (b->all_hi) { /* every channel takes the 32-bit steps: no branch per channel */
    for (j = 0; j < n; j++) {
      int32_t q = (((int32_t)(((int64_t)(b->bias[j] + acc[j]) * b->m0[j]) >> 32) + b->rnd[j]) >>
                   b->rsh[j]) + zp;
      q = q < lo ? lo : q;
      yp[j] = (int8_t)(q > hi ? hi : q);
    }
    return;
  }
  for (j = 0; j < n; j++) {
    int32_t v = b->bias[j] + acc[j], q;
    if (b->rsh[j]) {
      q = (((int32_t)(((int64_t)v * b->m0[j]) >> 32) + b->rnd[j]) >> b->rsh[j]) + zp;
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

/* Output channels co..co+n-1 of a 1x1 convolution (no padding can apply): per pixel, the dot
 * products of its input channels with each channel's weights (base: bias - zp_in * sum w). */
static void conv1x1(const qgt_layer *l, const int8_t *x, int8_t *y, const int16_t *w,
                    const qgt_block *b) {
  uint32_t oy, ox, cin = l->in_c;
  int32_t acc[QGT_BLOCK];
  for (oy = 0; oy < l->out_h; oy++)
    for (ox = 0; ox < l->out_w; ox++) {
      const int8_t *xp = x + ((oy * l->stride) * l->in_w + ox * l->stride) * cin;
      int8_t *yp = y + (oy * l->out_w + ox) * l->out_c + b->co;
#ifdef QGT_DSP
      dsp_dot(xp, w, cin, b->n, acc);
#else
      if (b->n == QGT_BLOCK) {
        dot_block(xp, w, cin, cin, acc);
      } else {
        uint32_t j;
        for (j = 0; j < b->n; j++) acc[j] = dot(xp, w + j * cin, cin);
      }
#endif
      requant_block(l, b, acc, yp);
    }
}

/* The taps of a k x k window that fall inside the image (padded taps hold the zero point and
 * add nothing): [ky0, ky1) x [kx0, kx1), and whether that is the whole window. */
typedef struct {
  uint32_t ky0, ky1, kx0, kx1, full;
  const int8_t *row; /* the input at tap (ky0, kx0), channel 0 */
} qgt_window;

static void window(const qgt_layer *l, const int8_t *x, uint32_t oy, uint32_t ox, qgt_window *win) {
  uint32_t top = oy * l->stride, left = ox * l->stride, k = l->kernel;
  win->ky0 = top < l->pad_top ? l->pad_top - top : 0u;
  win->kx0 = left < l->pad_left ? l->pad_left - left : 0u;
  win->ky1 = top + k > l->in_h + l->pad_top ? l->in_h + l->pad_top - top : k;
  win->kx1 = left + k > l->in_w + l->pad_left ? l->in_w + l->pad_left - left : k;
  win->full = win->ky0 == 0 && win->kx0 == 0 && win->ky1 == k && win->kx1 == k;
  win->row = x + ((top + win->ky0 - l->pad_top) * l->in_w + (left + win->kx0 - l->pad_left)) * l->in_c;
}

/* zp_in times the sum of the weights of a window's taps, for each of n channels (wsum[j * taps
 * + t]). Windows cut by the border come in few shapes (edges and corners): the sums of the last
 * shape are kept, so most border pixels reuse them. */
typedef struct {
  uint32_t key; /* (ky0, ky1, kx0, kx1) + 1, or 0 */
  int32_t z[QGT_BLOCK];
} qgt_zcache;

static void window_zsum(const qgt_layer *l, const qgt_window *win, const int32_t *wsum,
                        const int32_t *wall, uint32_t n, int32_t *z, qgt_zcache *cache) {
  uint32_t ky, kx, j, taps = l->kernel * l->kernel;
  uint32_t key = ((((win->ky0 * 8191u + win->ky1) * 8191u + win->kx0) * 8191u) + win->kx1) + 1u;
  if (win->full) {
    for (j = 0; j < n; j++) z[j] = l->in_zp * wall[j];
    return;
  }
  if (cache->key != key) {
    for (j = 0; j < n; j++) {
      int32_t s = 0;
      for (ky = win->ky0; ky < win->ky1; ky++)
        for (kx = win->kx0; kx < win->kx1; kx++) s += wsum[j * taps + ky * l->kernel + kx];
      cache->z[j] = l->in_zp * s;
    }
    cache->key = key;
  }
  for (j = 0; j < n; j++) z[j] = cache->z[j];
}

/* Depthwise channels co..co+n-1 (weights tap-major, w[t * n + j]), or, with one input channel,
 * n output channels of a k x k convolution (each tap one input value for all of them). */
static void conv_taps(const qgt_layer *l, const int8_t *x, int8_t *y, const int16_t *w,
                      const int32_t *wsum, const qgt_block *b) {
  uint32_t k = l->kernel, taps = k * k, C = l->in_c, n = b->n, dw = l->type == QGT_DEPTHWISE2D;
  uint32_t oy, ox, ky, kx, j, t;
  int32_t wall[QGT_BLOCK], z[QGT_BLOCK];
  qgt_zcache zc = {0, {0}};
#ifdef QGT_DSP
  qgt_block full = *b; /* full windows: zp_in * (sum of all taps' weights) folded into the bias */
#endif
  for (j = 0; j < n; j++)
    for (wall[j] = 0, t = 0; t < taps; t++) wall[j] += wsum[j * taps + t];
#ifdef QGT_DSP
  for (j = 0; j < n; j++) full.bias[j] -= l->in_zp * wall[j];
#endif
  for (oy = 0; oy < l->out_h; oy++)
    for (ox = 0; ox < l->out_w; ox++) {
      qgt_window win;
      int32_t acc[QGT_BLOCK];
      const int8_t *row;
      int8_t *yp = y + (oy * l->out_w + ox) * l->out_c + b->co;
      window(l, x, oy, ox, &win);
      row = win.row + (dw ? b->co : 0u);
#if defined(QGT_SSE2) && QGT_BLOCK == 8
      if (n == 8) {
        /* |x| <= 128 and |w| <= 255 (zero points lie in the code range): products fit int16 */
        __m128i lo = _mm_setzero_si128(), hi = lo;
        for (ky = win.ky0; ky < win.ky1; ky++, row += l->in_w * C) {
          const int8_t *xp = row;
          const int16_t *wt = w + (ky * k + win.kx0) * 8;
          for (kx = win.kx0; kx < win.kx1; kx++, xp += C, wt += 8) {
            __m128i xv = dw ? load8(xp) : _mm_set1_epi16(*xp);
            __m128i p = _mm_mullo_epi16(xv, loadw(wt));
            lo = _mm_add_epi32(lo, _mm_srai_epi32(_mm_unpacklo_epi16(p, p), 16));
            hi = _mm_add_epi32(hi, _mm_srai_epi32(_mm_unpackhi_epi16(p, p), 16));
          }
        }
        _mm_storeu_si128((__m128i *)(void *)acc, lo);
        _mm_storeu_si128((__m128i *)(void *)(acc + 4), hi);
      } else
#endif
#ifdef QGT_DSP
      if (n == 8) {
        /* two halves of four channels; the weights of a tap are 8 int16 in dsp_slot order */
        uint32_t rows = win.ky1 - win.ky0, cols = win.kx1 - win.kx0;
        const int16_t *wt = w + (win.ky0 * k + win.kx0) * 8;
        dsp_window4(row, dw, rows, cols, l->in_w * C, C, wt, k * 8, acc);
        dsp_window4(row + (dw ? 4 : 0), dw, rows, cols, l->in_w * C, C, wt + 4, k * 8, acc + 4);
        if (win.full) {
          requant_block(l, &full, acc, yp);
          continue;
        }
      } else
#endif
      {
        for (j = 0; j < n; j++) acc[j] = 0;
        for (ky = win.ky0; ky < win.ky1; ky++, row += l->in_w * C) {
          const int8_t *xp = row;
          const int16_t *wt = w + (ky * k + win.kx0) * n;
          for (kx = win.kx0; kx < win.kx1; kx++, xp += C, wt += n)
            for (j = 0; j < n; j++) acc[j] += (int32_t)xp[dw ? j : 0] * wt[j];
        }
      }
      window_zsum(l, &win, wsum, wall, n, z, &zc);
      for (j = 0; j < n; j++) acc[j] -= z[j];
      requant_block(l, b, acc, yp);
    }
}

/* Output channels co..co+n-1 of a k x k convolution over several input channels: per tap a dot
 * product over the input channels (weights one row per output channel). */
static void conv_kxk(const qgt_layer *l, const int8_t *x, int8_t *y, const int16_t *w,
                     const int32_t *wsum, const qgt_block *b) {
  uint32_t k = l->kernel, taps = k * k, cin = l->in_c, per = taps * cin, oy, ox, ky, kx, j, t;
  int32_t wall[QGT_BLOCK], z[QGT_BLOCK];
  qgt_zcache zc = {0, {0}};
  for (j = 0; j < b->n; j++)
    for (wall[j] = 0, t = 0; t < taps; t++) wall[j] += wsum[j * taps + t];
  for (oy = 0; oy < l->out_h; oy++)
    for (ox = 0; ox < l->out_w; ox++) {
      qgt_window win;
      int32_t acc[QGT_BLOCK] = {0};
      const int8_t *row;
      int8_t *yp = y + (oy * l->out_w + ox) * l->out_c + b->co;
      window(l, x, oy, ox, &win);
      row = win.row;
      for (ky = win.ky0; ky < win.ky1; ky++, row += l->in_w * cin) {
        const int8_t *xp = row;
        for (kx = win.kx0; kx < win.kx1; kx++, xp += cin) {
          t = ky * k + kx;
#ifdef QGT_DSP
          {
            int32_t part[QGT_BLOCK];
            dsp_dot(xp, w + t * tap_stride(b->n, cin), cin, b->n, part);
            for (j = 0; j < b->n; j++) acc[j] += part[j];
            continue;
          }
#endif
#ifdef QGT_SSE2
          /* the block's 8 channels at once, eight input channels a time (8-9x on the small CNN) */
          if (b->n == QGT_BLOCK) {
            int32_t part[QGT_BLOCK];
            dot_block(xp, w + t * cin, cin, per, part);
            for (j = 0; j < QGT_BLOCK; j++) acc[j] += part[j];
            continue;
          }
#endif
          for (j = 0; j < b->n; j++) acc[j] += dot(xp, w + j * per + t * cin, cin);
        }
      }
      window_zsum(l, &win, wsum, wall, b->n, z, &zc);
      for (j = 0; j < b->n; j++) acc[j] -= z[j];
      requant_block(l, b, acc, yp);
    }
}

/* The scratch a layer's kernel needs (block_scratch's layout): the weights of QGT_BLOCK output
 * channels as int16, then their sums per tap as int32; 0 for layers without weights. */
static size_t layer_scratch_bytes(const qgt_layer *l) {
  size_t taps, per;
  if (l->type > QGT_DENSE) return 0;
  taps = l->type == QGT_DENSE ? 1u : (size_t)l->kernel * l->kernel;
  per = l->type == QGT_DEPTHWISE2D ? taps : taps * l->in_c;
  return ((QGT_BLOCK * per * sizeof(int16_t) + 7u) & ~(size_t)7u) + QGT_BLOCK * taps * sizeof(int32_t);
}

/* Scratch of one block: the weights of QGT_BLOCK channels, then their sums per tap. */
static void block_scratch(const qgt_layer *l, uint8_t *scr, int16_t **w, int32_t **wsum) {
  uint32_t taps = l->type == QGT_DENSE ? 1u : l->kernel * l->kernel;
  uint32_t cin = l->type == QGT_DEPTHWISE2D ? 1u : l->in_c;
  *w = (int16_t *)(void *)scr;
  *wsum = (int32_t *)(void *)(scr + ((QGT_BLOCK * taps * cin * sizeof(int16_t) + 7u) & ~(size_t)7u));
}

/* The next block of output channels from co: weights, biases and multipliers. */
static void load_block(const qgt_model *m, const qgt_layer *l, uint32_t co, int16_t *w,
                       int32_t *wsum, qgt_block *b) {
  uint32_t j;
  b->co = co;
  b->n = l->out_c - co < QGT_BLOCK ? l->out_c - co : QGT_BLOCK;
  block_weights(m, l, co, b->n, w, wsum);
  for (j = 0; j < b->n; j++) {
    uint32_t c = co + j, sc = l->per_tensor ? 0u : c;
    b->bias[j] = rd_i32(m->payload + l->bias + 4u * c);
    b->m0[j] = 0;
    b->shift[j] = 0;
    if (l->has_out)
      requant_multiplier(l->in_scale, rd_u16(m->payload + l->scales + 2u * sc), l->out_scale,
                         &b->m0[j], &b->shift[j]);
#ifdef QGT_DSP
    {
      int32_t t = 31 - b->shift[j];
      b->rsh[j] = l->has_out && t >= 33 ? t - 32 : 0;
      b->rnd[j] = b->rsh[j] ? (int32_t)1 << (t - 33) : 0;
      b->t[j] = t;
      b->half[j] = (int64_t)1 << (t - 1);
    }
#endif
  }
#ifdef QGT_DSP
  for (b->all_hi = 1, j = 0; j < b->n; j++) b->all_hi &= b->rsh[j] != 0;
#endif
}

static void conv(const qgt_model *m, const qgt_layer *l, const int8_t *x, int8_t *y, uint8_t *scr) {
  int16_t *w;
  int32_t *wsum;
  qgt_block b;
  uint32_t co, j;
  block_scratch(l, scr, &w, &wsum);
  for (co = 0; co < l->out_c; co += QGT_BLOCK) {
    load_block(m, l, co, w, wsum, &b);
    if (l->kernel == 1 && l->type == QGT_CONV2D) {
      for (j = 0; j < b.n; j++) b.bias[j] -= l->in_zp * wsum[j];
      conv1x1(l, x, y, w, &b);
    } else if (l->type == QGT_DEPTHWISE2D || l->in_c == 1) {
      conv_taps(l, x, y, w, wsum, &b);
    } else {
      conv_kxk(l, x, y, w, wsum, &b);
    }
  }
}

static void dense(const qgt_model *m, const qgt_layer *l, const int8_t *x, int8_t *y,
                  int32_t *logits, uint8_t *scr) {
  int16_t *w;
  int32_t *wsum;
  qgt_block b;
  uint32_t co, j;
  block_scratch(l, scr, &w, &wsum);
  for (co = 0; co < l->out_c; co += QGT_BLOCK) {
    int32_t dots[QGT_BLOCK];
    load_block(m, l, co, w, wsum, &b);
#ifdef QGT_DSP
    dsp_dot(x, w, l->in_c, b.n, dots);
#else
    for (j = 0; j < b.n; j++) dots[j] = dot(x, w + j * l->in_c, l->in_c);
#endif
    for (j = 0; j < b.n; j++) {
      int32_t acc = b.bias[j] + dots[j] - l->in_zp * wsum[j];
      if (logits)
        logits[co + j] = acc;
      else
        y[co + j] = requant(acc, b.m0[j], b.shift[j], l);
    }
  }
}

static void maxpool(const qgt_layer *l, const int8_t *x, int8_t *y) {
  uint32_t oy, ox, c, dy, dx;
  for (oy = 0; oy < l->out_h; oy++)
    for (ox = 0; ox < l->out_w; ox++)
      for (c = 0; c < l->out_c; c++) {
        int8_t best = -128;
        for (dy = 0; dy < l->kernel; dy++)
          for (dx = 0; dx < l->kernel; dx++) {
            int8_t v = x[((oy * l->stride + dy) * l->in_w + ox * l->stride + dx) * l->in_c + c];
            if (v > best) best = v;
          }
        y[(oy * l->out_w + ox) * l->out_c + c] = best;
      }
}

static void gap(const qgt_layer *l, const int8_t *x, int8_t *y) {
  int64_t n = (int64_t)l->in_h * l->in_w;
  uint32_t c, i;
  for (c = 0; c < l->in_c; c++) {
    int64_t s = 0, q;
    for (i = 0; i < (uint32_t)n; i++) s += (int64_t)x[(size_t)i * l->in_c + c] - l->in_zp;
    /* round half away from zero */
    q = s >= 0 ? (2 * s + n) / (2 * n) : -((-2 * s + n) / (2 * n));
    q += l->in_zp;
    y[c] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
  }
}

/* TFLite's int8 ADD: both inputs less their zero points, shifted left 20 bits, rescaled to the
 * common scale 2 max(s1, s2), summed, and requantized to the output (docs/format.md). */
static void add(const qgt_layer *l, const int8_t *a, const int8_t *b, int8_t *y) {
  int32_t mm[6];
  size_t i, n = (size_t)l->out_h * l->out_w * l->out_c;
  add_multipliers(l->in_scale, l->in2_scale, l->out_scale, mm);
  for (i = 0; i < n; i++) {
    /* |q - zp| <= 255, so the shifted differences fit in 29 bits and their rescaled sum in 29 */
    int32_t x1 = mul_q((a[i] - l->in_zp) * ((int32_t)1 << ADD_LEFT_SHIFT), mm[0], mm[1]);
    int32_t x2 = mul_q((b[i] - l->in2_zp) * ((int32_t)1 << ADD_LEFT_SHIFT), mm[2], mm[3]);
    y[i] = requant(x1 + x2, mm[4], mm[5], l);
  }
}

/* A firmware may define QGT_LAYER_DONE(i) to hear when layer i has run (the Cortex-M
 * benchmark reads a timer there for its per-layer split); by default it costs nothing. */
#ifndef QGT_LAYER_DONE
#define QGT_LAYER_DONE(i) ((void)0)
#endif

qgt_status qgt_invoke(const qgt_model *m, const int8_t *input, size_t input_len, uint8_t *arena,
                      size_t arena_len, int32_t *logits) {
  uint32_t i;
  int8_t *buf;
  uint8_t *scr;
  if (!m || !m->n_layers || !input || !arena || !logits) return QGT_ERR_ARGUMENT;
  if (input_len != (size_t)m->in_h * m->in_w * m->in_c) return QGT_ERR_ARGUMENT;
  if (arena_len < qgt_arena_bytes(m)) return QGT_ERR_ARENA;
  buf = (int8_t *)arena;
  scr = arena + m->act_bytes;
  scr += (8u - ((uintptr_t)scr & 7u)) & 7u; /* int16 / int32 scratch, 8-byte aligned */
  /* every tensor at its planned offset (plan_arena) */
  memcpy(buf + m->in_off, input, input_len);
  for (i = 0; i < m->n_layers; i++) {
    const qgt_layer *l = &m->layers[i];
    const int8_t *x = buf + (l->in1 < 0 ? m->in_off : m->layers[l->in1].out_off);
    int8_t *y = buf + l->out_off;
    switch (l->type) {
      case QGT_CONV2D:
      case QGT_DEPTHWISE2D:
        conv(m, l, x, y, scr);
        break;
      case QGT_DENSE:
        dense(m, l, x, y, i + 1 == m->n_layers ? logits : 0, scr);
        break;
      case QGT_MAXPOOL:
        maxpool(l, x, y);
        break;
      case QGT_ADD:
        add(l, x, buf + (l->in2 < 0 ? m->in_off : m->layers[l->in2].out_off), y);
        break;
      default:
        gap(l, x, y);
    }
    QGT_LAYER_DONE(i);
  }
  return QGT_OK;
}

/* Sign of a * s_a - b * s_b for int32 a, b and float16 scales (exact). */
static int cmp_logit(int32_t a, uint32_t ha, int32_t b, uint32_t hb) {
  uint64_t ma = 0, mb = 0;
  int ea = 0, eb = 0, sa, sb;
  f16_parts(ha, &ma, &ea);
  f16_parts(hb, &mb, &eb);
  sa = (a > 0) - (a < 0);
  sb = (b > 0) - (b < 0);
  if (sa != sb) return sa > sb ? 1 : -1;
  if (sa == 0) return 0;
  {
    uint64_t pa = (uint64_t)(a < 0 ? -(int64_t)a : a) * ma, pb = (uint64_t)(b < 0 ? -(int64_t)b : b) * mb;
    int c = cmp_scaled_u(pa, ea, pb, eb);
    return sa > 0 ? c : -c;
  }
}

int qgt_predict(const qgt_model *m, const int32_t *logits) {
  const qgt_layer *l;
  uint32_t c;
  int best = 0;
  if (!m || !m->n_layers || !logits) return -1;
  l = &m->layers[m->n_layers - 1];
  for (c = 1; c < l->out_c; c++) {
    uint32_t hc = rd_u16(m->payload + l->scales + 2u * (l->per_tensor ? 0u : c));
    uint32_t hb = rd_u16(m->payload + l->scales + 2u * (l->per_tensor ? 0u : (uint32_t)best));
    if (cmp_logit(logits[c], hc, logits[best], hb) > 0) best = (int)c;
  }
  return best;
}

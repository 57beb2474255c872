/*
 * kernels.c: the integer kernels (portable reference loops, SSE2 on x86-64, and the DSP set of
 * kernels_dsp.c on Cortex-M), each with the scratch size it needs, and qgt_invoke / qgt_predict.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

/* ------------------------------------------------------------------ kernels */

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
      {
        uint32_t j;
        if (b->n == QGT_BLOCK) {
          dot_block(xp, w, cin, cin, acc);
        } else {
          for (j = 0; j < b->n; j++) acc[j] = dot(xp, w + j * cin, cin);
        }
        for (j = 0; j < b->n; j++) yp[j] = requant(b->bias[j] + acc[j], b->m0[j], b->shift[j], l);
        continue;
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

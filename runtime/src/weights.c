/*
 * weights.c: a block of output channels' weights unpacked from their 1-8-bit codes into the
 * arena's scratch, in the layout the kernel set of this build reads; the choice of that kernel set.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

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

/* Four bytes of codes at `at`, or the section's last bytes when fewer than four are left. */
static uint32_t code_word_at(const uint8_t *codes, uint32_t at, uint32_t end) {
  uint32_t u = 0, i;
  if (at + 4u <= end) return code_word(codes + at);
  for (i = 0; at + i < end; i++) u |= (uint32_t)codes[at + i] << (8u * i);
  return u;
}

#ifdef QGT_DSP
/* Int16 values per tap of a block's weights in the DSP layout, a multiple of 4 so that every
 * tap starts 8-byte aligned (at most QGT_BLOCK * cin: the scratch holds them). */
static uint32_t tap_stride(uint32_t n, uint32_t cin) { return (n * cin + 3u) & ~3u; }
#include "kernels_dsp.c"
#endif

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
      if (off + n * bits <= 32u) {
        /* the block's codes within one little-endian word (always at 1-3 bits) */
        uint32_t u = code_word_at(codes, byte, end) >> off, d = first;
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


/*
 * Symmetric fake quantization of a weight tensor on a grid of 2^b levels
 * (b > 1): the per-channel MSE clipping search, the quantized values and the
 * straight-through mask, in one pass per clipping ratio instead of about
 * fifteen tfjs kernels per ratio. Compiled to wasm32 with SIMD
 * (`deno task kernels`); driven by lib/backend/fake_quant.ts.
 *
 * Every float operation is the one the tensor implementation in
 * lib/quant/quantizer.ts performs, in the same order, on float32 (no
 * contraction into fused multiply-adds: -ffp-contract=off), so the results are
 * the same bits:
 *   s0[c]   = max(max|x[., c]| / qmax, MIN_SCALE)
 *   level   = clamp(sgn(v) * floor(|v| + 0.5), qmin, qmax), v = x / s
 *             (sgn as tfjs-backend-wasm's Sign: 0 below 2^-23 in magnitude)
 *   err[k,c]= sum over the rows, in order, of (x - level(x / sk) * sk)^2,
 *             sk = s0[c] * ratio[k]
 *   s[c]    = max(s0[c] * ratio[k*], MIN_SCALE), k* the first minimum
 *   y       = level(x / s) * s
 *   mask    = 1 unless |x - min(max(x, qmin s), qmax s)| > 0
 * x is a [rows, channels] matrix (the channel axis last; one channel for a
 * per-tensor grid). No heap: the caller lays out every array in memory.
 */
#include <stdint.h>

#define SIGN_EPS 1.1920928955078125e-7f /* 2^-23 */

static inline float sgn(float v) { return v >= SIGN_EPS ? 1.0f : (v <= -SIGN_EPS ? -1.0f : 0.0f); }
static inline float fmaxq(float a, float b) { return a < b ? b : a; } /* tfjs Maximum */
static inline float fminq(float a, float b) { return b < a ? b : a; } /* tfjs Minimum */
static inline float level(float v, float qmin, float qmax) {
  float q = sgn(v) * __builtin_floorf(__builtin_fabsf(v) + 0.5f);
  return q < qmin ? qmin : (q > qmax ? qmax : q);
}

/* s0[c] = max(max_r |x[r, c]| / qmax, min_scale) */
void qgt_max_scale(const float *x, int32_t rows, int32_t ch, float qmax, float min_scale, float *s0) {
  for (int32_t c = 0; c < ch; c++) s0[c] = 0.0f;
  for (int32_t r = 0; r < rows; r++) {
    const float *row = x + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float a = __builtin_fabsf(row[c]);
      s0[c] = s0[c] < a ? a : s0[c];
    }
  }
  for (int32_t c = 0; c < ch; c++) s0[c] = fmaxq(s0[c] / qmax, min_scale);
}

/*
 * The MSE search: s[c] = max(s0[c] * ratio[k*], min_scale). err is scratch of
 * k * ch floats, sk of k * ch floats.
 */
void qgt_mse_scale(const float *x, int32_t rows, int32_t ch, const float *s0, const float *ratio,
                   int32_t k, float qmin, float qmax, float min_scale, float *err, float *sk,
                   float *s) {
  for (int32_t j = 0; j < k; j++) {
    for (int32_t c = 0; c < ch; c++) {
      sk[j * ch + c] = s0[c] * ratio[j];
      err[j * ch + c] = 0.0f;
    }
  }
  for (int32_t r = 0; r < rows; r++) {
    const float *row = x + (int64_t)r * ch;
    for (int32_t j = 0; j < k; j++) {
      const float *skj = sk + j * ch;
      float *ej = err + j * ch;
      for (int32_t c = 0; c < ch; c++) {
        float v = row[c];
        float d = v - level(v / skj[c], qmin, qmax) * skj[c];
        ej[c] = ej[c] + d * d;
      }
    }
  }
  for (int32_t c = 0; c < ch; c++) {
    int32_t best = 0;
    float e = err[c];
    for (int32_t j = 1; j < k; j++) {
      if (err[j * ch + c] < e) {
        e = err[j * ch + c];
        best = j;
      }
    }
    s[c] = fmaxq(s0[c] * ratio[best], min_scale);
  }
}

/* y = level(x / s) * s and the straight-through mask, for the scales s[c]. */
void qgt_fake_quant(const float *x, int32_t rows, int32_t ch, const float *s, float qmin, float qmax,
                    float *y, float *mask) {
  for (int32_t r = 0; r < rows; r++) {
    const float *row = x + (int64_t)r * ch;
    float *yr = y + (int64_t)r * ch, *mr = mask + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float v = row[c], sc = s[c];
      yr[c] = level(v / sc, qmin, qmax) * sc;
      float lo = qmin * sc, hi = qmax * sc;
      float clipped = fminq(fmaxq(v, lo), hi);
      float a = __builtin_fabsf(v - clipped);
      mr[c] = 1.0f - (a > 0.0f ? 1.0f : 0.0f);
    }
  }
}

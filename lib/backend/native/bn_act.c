/*
 * Training-mode BatchNorm followed by its activation (none, ReLU, ReLU6) on NHWC float32, as one
 * forward and one backward call: the native backend's replacement for the ~20 tfjs kernels per
 * layer of lib/models/bn_act.ts (mean, centring, variance, normalization, activation, and their
 * gradients), each of which pays tfjs's per-kernel overhead. Same formulas as that module:
 *
 *   forward, over the M = rows positions of each channel c:
 *     mean = sum(x) / M, var = sum((x - mean)^2) / M (biased), rstd = 1 / sqrt(var + eps),
 *     xhat = (x - mean) rstd, y = gamma xhat + beta, z = act(y)
 *   backward (the batch statistics differentiated; y recomputed from xhat):
 *     dy = dz act'(y)  (relu: y > 0; relu6: 0 < y <= 6, as tfjs's step(y) - step(y - 6)),
 *     dbeta = sum(dy), dgamma = sum(dy xhat),
 *     dx = gamma rstd (dy - dbeta / M - xhat dgamma / M)
 *
 * Sums run over rows in order with double accumulators, so a call is deterministic and a little
 * more accurate than float sums. oneDNN's own batch normalization was not used: in 2.6 it fuses
 * ReLU only (MobileNet's activation is ReLU6) and its reduction order is its own.
 *
 * Every function validates its sizes and returns 0, -1 for bad arguments, -2 out of memory.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/**
 * This thread's per-channel scratch: 2 x ch double accumulators (zeroed) followed by room for
 * 3 x ch floats; grown as needed and kept for the thread's life (a few KB).
 */
static _Thread_local double *acc;
static _Thread_local int32_t acc_ch;

static double *accumulators(int32_t ch) {
  if (ch > acc_ch) {
    double *p = realloc(acc, sizeof(double) * 4 * (size_t)ch);
    if (!p) return NULL;
    acc = p;
    acc_ch = ch;
  }
  for (int32_t c = 0; c < 2 * ch; c++) acc[c] = 0;
  return acc;
}

static int bad_sizes(int32_t rows, int32_t ch, int32_t act) {
  return rows <= 0 || ch <= 0 || (int64_t)rows * ch > INT32_MAX || act < 0 || act > 2;
}

/* The loops below take `act` as a constant: each public function calls them from a switch, so the
   compiler makes one branch-free, vectorized copy per activation (a data-dependent branch per
   element costs about 4x on random signs). */
#define INLINE static inline __attribute__((always_inline))

INLINE float activate(float y, int32_t act) {
  if (act == 0) return y;
  float r = y > 0.0f ? y : 0.0f;
  return act == 2 ? (r < 6.0f ? r : 6.0f) : r;
}

INLINE float act_grad(float dz, float y, int32_t act) {
  if (act == 0) return dz;
  /* a product, as tfjs's dz * (step(y) - step(y - 6)) */
  float pass = (y > 0.0f) & ((act == 1) | (y <= 6.0f));
  return dz * pass;
}

INLINE void normalize(int32_t rows, int32_t ch, int32_t act, const float *restrict x,
                      const float *restrict mean, const float *restrict rstd,
                      const float *restrict gamma, const float *restrict beta, float *restrict z,
                      float *restrict xhat) {
  for (int32_t r = 0; r < rows; r++) {
    const int64_t o = (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float h = (x[o + c] - mean[c]) * rstd[c];
      xhat[o + c] = h;
      z[o + c] = activate(h * gamma[c] + beta[c], act);
    }
  }
}

INLINE void grad_sums(int32_t rows, int32_t ch, int32_t act, const float *restrict dz,
                      const float *restrict xhat, const float *restrict gamma,
                      const float *restrict beta, double *restrict db, double *restrict dg) {
  for (int32_t r = 0; r < rows; r++) {
    const int64_t o = (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float h = xhat[o + c];
      float dy = act_grad(dz[o + c], h * gamma[c] + beta[c], act);
      db[c] += dy;
      dg[c] += (double)dy * h;
    }
  }
}

INLINE void input_grad(int32_t rows, int32_t ch, int32_t act, const float *restrict dz,
                       const float *restrict xhat, const float *restrict gamma,
                       const float *restrict beta, const float *restrict dbm,
                       const float *restrict dgm, const float *restrict k, float *restrict dx) {
  for (int32_t r = 0; r < rows; r++) {
    const int64_t o = (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float h = xhat[o + c];
      float dy = act_grad(dz[o + c], h * gamma[c] + beta[c], act);
      dx[o + c] = (dy - dbm[c] - h * dgm[c]) * k[c];
    }
  }
}

/** Calls `f(..., act, ...)` with `act` as a constant (0, 1 or 2). */
#define BY_ACT(act, f, ...)  \
  switch (act) {             \
    case 0: f(0, __VA_ARGS__); break; \
    case 1: f(1, __VA_ARGS__); break; \
    default: f(2, __VA_ARGS__); break; \
  }
#define NORMALIZE(a, rows, ch, ...) normalize(rows, ch, a, __VA_ARGS__)
#define GRAD_SUMS(a, rows, ch, ...) grad_sums(rows, ch, a, __VA_ARGS__)
#define INPUT_GRAD(a, rows, ch, ...) input_grad(rows, ch, a, __VA_ARGS__)

static void column_sums(int32_t rows, int32_t ch, const float *restrict x, double *restrict sum) {
  for (int32_t r = 0; r < rows; r++) {
    const float *restrict xr = x + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) sum[c] += xr[c];
  }
}

static void centred_squares(int32_t rows, int32_t ch, const float *restrict x,
                            const float *restrict mean, double *restrict sq) {
  for (int32_t r = 0; r < rows; r++) {
    const float *restrict xr = x + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float d = xr[c] - mean[c];
      sq[c] += (double)d * d;
    }
  }
}

/**
 * Forward: x [rows, ch] -> z and xhat [rows, ch]; mean, var, rstd [ch]. The outputs must not
 * overlap the inputs or each other.
 */
int qn_bn_act_forward(int32_t rows, int32_t ch, int32_t act, float eps, const float *x,
                      const float *gamma, const float *beta, float *z, float *xhat, float *mean,
                      float *var, float *rstd) {
  if (bad_sizes(rows, ch, act) || !(eps >= 0) || !x || !gamma || !beta || !z || !xhat ||
      !mean || !var || !rstd)
    return -1;
  double *sum = accumulators(ch);
  if (!sum) return -2;
  double *sq = sum + ch;
  column_sums(rows, ch, x, sum);
  for (int32_t c = 0; c < ch; c++) mean[c] = (float)(sum[c] / rows);
  centred_squares(rows, ch, x, mean, sq);
  for (int32_t c = 0; c < ch; c++) {
    var[c] = (float)(sq[c] / rows);
    rstd[c] = 1.0f / sqrtf(var[c] + eps);
  }
  BY_ACT(act, NORMALIZE, rows, ch, x, mean, rstd, gamma, beta, z, xhat);
  return 0;
}

/**
 * Backward: dz, xhat [rows, ch]; gamma, beta, rstd [ch] -> dx [rows, ch], dgamma, dbeta [ch]
 * (outputs not overlapping the inputs).
 */
int qn_bn_act_backward(int32_t rows, int32_t ch, int32_t act, const float *dz, const float *xhat,
                       const float *gamma, const float *beta, const float *rstd, float *dx,
                       float *dgamma, float *dbeta) {
  if (bad_sizes(rows, ch, act) || !dz || !xhat || !gamma || !beta || !rstd || !dx || !dgamma ||
      !dbeta)
    return -1;
  double *db = accumulators(ch);
  if (!db) return -2;
  double *dg = db + ch;
  BY_ACT(act, GRAD_SUMS, rows, ch, dz, xhat, gamma, beta, db, dg);
  float *dbm = (float *)(dg + ch), *dgm = dbm + ch, *k = dgm + ch;
  for (int32_t c = 0; c < ch; c++) {
    dbeta[c] = (float)db[c];
    dgamma[c] = (float)dg[c];
    dbm[c] = dbeta[c] / (float)rows;
    dgm[c] = dgamma[c] / (float)rows;
    k[c] = gamma[c] * rstd[c];
  }
  BY_ACT(act, INPUT_GRAD, rows, ch, dz, xhat, gamma, beta, dbm, dgm, k, dx);
  return 0;
}

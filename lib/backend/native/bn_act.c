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
#include <string.h>

int omp_get_max_threads(void);
int omp_get_thread_num(void);
int qn_thread_ready(void); /* onednn.c: this thread's OpenMP thread count is set */

/*
 * Threads: with the shim's OpenMP threads (qn_set_threads) above 1, each pass splits the rows
 * into one fixed contiguous range per thread; the sums are per-thread partial sums added in
 * thread order, so a call is deterministic for a given thread count (and differs in the last
 * bits between thread counts). Small tensors stay on one thread.
 */
enum { MIN_PARALLEL = 1 << 15 };

/**
 * This thread's scratch: 2 x ch double accumulators per OpenMP thread (zeroed), 2 x ch for their
 * totals, and room for 3 x ch floats; grown as needed and kept for the thread's life (a few KB).
 */
static _Thread_local double *acc;
static _Thread_local size_t acc_len;

static double *accumulators(int32_t ch, int nt) {
  size_t need = (size_t)(2 * nt + 4) * (size_t)ch;
  if (need > acc_len) {
    double *p = realloc(acc, sizeof(double) * need);
    if (!p) return NULL;
    acc = p;
    acc_len = need;
  }
  memset(acc, 0, sizeof(double) * 2 * (size_t)nt * (size_t)ch);
  return acc;
}

/** The threads a pass over rows x ch elements uses. */
static int threads_for(int32_t rows, int32_t ch) {
  int nt = omp_get_max_threads();
  return (int64_t)rows * ch < MIN_PARALLEL || nt < 1 ? 1 : (nt > rows ? rows : nt);
}

/** Thread t's rows of nt: [*r0, *r1). */
static void row_range(int32_t rows, int nt, int t, int32_t *r0, int32_t *r1) {
  *r0 = (int32_t)((int64_t)rows * t / nt);
  *r1 = (int32_t)((int64_t)rows * (t + 1) / nt);
}

/** Adds the nt partial sums (each `width` doubles, `stride` apart) into out, in thread order. */
static void combine(const double *part, int nt, int32_t width, size_t stride, double *out) {
  for (int32_t c = 0; c < width; c++) out[c] = 0;
  for (int t = 0; t < nt; t++)
    for (int32_t c = 0; c < width; c++) out[c] += part[(size_t)t * stride + c];
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

INLINE void normalize(int32_t r0, int32_t rows, int32_t ch, int32_t act, const float *restrict x,
                      const float *restrict mean, const float *restrict rstd,
                      const float *restrict gamma, const float *restrict beta, float *restrict z,
                      float *restrict xhat) {
  for (int32_t r = r0; r < rows; r++) {
    const int64_t o = (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float h = (x[o + c] - mean[c]) * rstd[c];
      xhat[o + c] = h;
      z[o + c] = activate(h * gamma[c] + beta[c], act);
    }
  }
}

INLINE void grad_sums(int32_t r0, int32_t rows, int32_t ch, int32_t act, const float *restrict dz,
                      const float *restrict xhat, const float *restrict gamma,
                      const float *restrict beta, double *restrict db, double *restrict dg) {
  for (int32_t r = r0; r < rows; r++) {
    const int64_t o = (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float h = xhat[o + c];
      float dy = act_grad(dz[o + c], h * gamma[c] + beta[c], act);
      db[c] += dy;
      dg[c] += (double)dy * h;
    }
  }
}

INLINE void input_grad(int32_t r0, int32_t rows, int32_t ch, int32_t act, const float *restrict dz,
                       const float *restrict xhat, const float *restrict gamma,
                       const float *restrict beta, const float *restrict dbm,
                       const float *restrict dgm, const float *restrict k, float *restrict dx) {
  for (int32_t r = r0; r < rows; r++) {
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
#define NORMALIZE(a, r0, r1, ch, ...) normalize(r0, r1, ch, a, __VA_ARGS__)
#define GRAD_SUMS(a, r0, r1, ch, ...) grad_sums(r0, r1, ch, a, __VA_ARGS__)
#define INPUT_GRAD(a, r0, r1, ch, ...) input_grad(r0, r1, ch, a, __VA_ARGS__)

/** Runs `body` (which sees t, r0, r1) on nt threads, each over its rows. */
#define PER_THREAD(nt, rows, ...)                \
  _Pragma("omp parallel num_threads(nt)") {      \
    int t = nt > 1 ? omp_get_thread_num() : 0;   \
    int32_t r0, r1;                              \
    row_range(rows, nt, t, &r0, &r1);            \
    __VA_ARGS__;                                 \
  }

static void column_sums(int32_t r0, int32_t rows, int32_t ch, const float *restrict x, double *restrict sum) {
  for (int32_t r = r0; r < rows; r++) {
    const float *restrict xr = x + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) sum[c] += xr[c];
  }
}

static void centred_squares(int32_t r0, int32_t rows, int32_t ch, const float *restrict x,
                            const float *restrict mean, double *restrict sq) {
  for (int32_t r = r0; r < rows; r++) {
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
  if (qn_thread_ready()) return -1;
  int nt = threads_for(rows, ch);
  double *part = accumulators(ch, nt);
  if (!part) return -2;
  double *sum = part + (size_t)2 * nt * ch, *sq = sum + ch;
  PER_THREAD(nt, rows, column_sums(r0, r1, ch, x, part + (size_t)t * 2 * ch));
  combine(part, nt, ch, (size_t)2 * ch, sum);
  for (int32_t c = 0; c < ch; c++) mean[c] = (float)(sum[c] / rows);
  PER_THREAD(nt, rows, centred_squares(r0, r1, ch, x, mean, part + (size_t)t * 2 * ch + ch));
  combine(part + ch, nt, ch, (size_t)2 * ch, sq);
  for (int32_t c = 0; c < ch; c++) {
    var[c] = (float)(sq[c] / rows);
    rstd[c] = 1.0f / sqrtf(var[c] + eps);
  }
  PER_THREAD(nt, rows, BY_ACT(act, NORMALIZE, r0, r1, ch, x, mean, rstd, gamma, beta, z, xhat));
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
  if (qn_thread_ready()) return -1;
  int nt = threads_for(rows, ch);
  double *part = accumulators(ch, nt);
  if (!part) return -2;
  double *db = part + (size_t)2 * nt * ch, *dg = db + ch;
  PER_THREAD(nt, rows, {
    double *p = part + (size_t)t * 2 * ch;
    BY_ACT(act, GRAD_SUMS, r0, r1, ch, dz, xhat, gamma, beta, p, p + ch);
  });
  combine(part, nt, ch, (size_t)2 * ch, db);
  combine(part + ch, nt, ch, (size_t)2 * ch, dg);
  float *dbm = (float *)(dg + ch), *dgm = dbm + ch, *k = dgm + ch;
  for (int32_t c = 0; c < ch; c++) {
    dbeta[c] = (float)db[c];
    dgamma[c] = (float)dg[c];
    dbm[c] = dbeta[c] / (float)rows;
    dgm[c] = dgamma[c] / (float)rows;
    k[c] = gamma[c] * rstd[c];
  }
  PER_THREAD(nt, rows, BY_ACT(act, INPUT_GRAD, r0, r1, ch, dz, xhat, gamma, beta, dbm, dgm, k, dx));
  return 0;
}

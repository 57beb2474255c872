/*
 * The elementwise passes of training-mode BatchNorm + activation
 * (lib/models/bn_act.ts), in place on tfjs-backend-wasm's memory: the module
 * imports that memory and reads and writes tensors at their offsets, with no
 * data, no stack and no heap of its own. The reductions (sums over the batch
 * and positions) stay tfjs kernels; these four passes replace about sixteen
 * tfjs kernels per layer. Every float operation is the tensor ops' own, in
 * their order, on float32 (-ffp-contract=off), so the results are the same
 * bits. x and friends are [rows, ch] matrices (NHWC: ch = channels); per-channel
 * vectors have ch entries. act: 0 none, 1 relu, 2 relu6.
 */
#include <stdint.h>

/* xc = x - mean; sq = xc * xc (for the variance) */
void qgt_bn_center(const float *x, const float *mean, int32_t rows, int32_t ch, float *xc,
                   float *sq) {
  for (int32_t r = 0; r < rows; r++) {
    const float *xr = x + (int64_t)r * ch;
    float *cr = xc + (int64_t)r * ch, *qr = sq + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float v = xr[c] - mean[c];
      cr[c] = v;
      qr[c] = v * v;
    }
  }
}

/* xhat = xc * rstd; y = xhat * gamma + beta */
static void norm(const float *xc, const float *rstd, const float *gamma, const float *beta,
                 int32_t rows, int32_t ch, float *xhat, float *y) {
  for (int32_t r = 0; r < rows; r++) {
    const float *cr = xc + (int64_t)r * ch;
    float *hr = xhat + (int64_t)r * ch, *yr = y + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) {
      float h = cr[c] * rstd[c];
      hr[c] = h;
      yr[c] = h * gamma[c] + beta[c];
    }
  }
}

/* xhat = xc * rstd; y = xhat * gamma + beta; z = act(y) (relu and relu6 send -0 to +0, as tfjs) */
void qgt_bn_norm_act(const float *xc, const float *rstd, const float *gamma, const float *beta,
                     int32_t rows, int32_t ch, int32_t act, float *xhat, float *y, float *z) {
  norm(xc, rstd, gamma, beta, rows, ch, xhat, y);
  const int64_t n = (int64_t)rows * ch;
  if (act == 1) {
    for (int64_t i = 0; i < n; i++) z[i] = y[i] > 0.0f ? y[i] : 0.0f;
  } else if (act == 2) {
    for (int64_t i = 0; i < n; i++) {
      float a = y[i] > 0.0f ? y[i] : 0.0f;
      z[i] = a > 6.0f ? 6.0f : a;
    }
  }
}

/* dy = dz * act'(y) (relu6: step(y) - step(y - 6); relu: step(y); none: dz); p = dy * xhat */
void qgt_bn_act_grad(const float *dz, const float *y, const float *xhat, int32_t n, int32_t act,
                     float *dy, float *p) {
  if (act == 2) {
    for (int32_t i = 0; i < n; i++) {
      float y6 = y[i] - 6.0f;
      dy[i] = dz[i] * ((y[i] > 0.0f ? 1.0f : 0.0f) - (y6 > 0.0f ? 1.0f : 0.0f));
    }
  } else if (act == 1) {
    for (int32_t i = 0; i < n; i++) dy[i] = dz[i] * (y[i] > 0.0f ? 1.0f : 0.0f);
  } else {
    for (int32_t i = 0; i < n; i++) dy[i] = dz[i];
  }
  for (int32_t i = 0; i < n; i++) p[i] = dy[i] * xhat[i];
}

/* dx = ((dy - dbeta/m) - xhat * (dgamma/m)) * (gamma * rstd) */
void qgt_bn_input_grad(const float *dy, const float *xhat, const float *dbm, const float *dgm,
                       const float *k, int32_t rows, int32_t ch, float *dx) {
  for (int32_t r = 0; r < rows; r++) {
    const float *dr = dy + (int64_t)r * ch, *hr = xhat + (int64_t)r * ch;
    float *or = dx + (int64_t)r * ch;
    for (int32_t c = 0; c < ch; c++) or[c] = ((dr[c] - dbm[c]) - hr[c] * dgm[c]) * k[c];
  }
}

/*
 * The filter gradient of a depthwise convolution (NHWC, depth multiplier 1,
 * dilation 1) and the max-pooling gradient, in place on tfjs-backend-wasm's
 * memory like bn_act.c (no data, no stack). (An input-gradient kernel for the
 * depthwise convolution and a 1x1-convolution filter gradient were written
 * too and measured slower than the tfjs paths, so they are not here.) Plain loops vectorized over channels. They sum in their own order,
 * not in the order of the tfjs-op implementations in lib/backend/grad_math.ts
 * (which sum through average pooling), so they give slightly different
 * float32 results: experiments select them with `train.gradKernels: "qgt"`.
 * Reference for the tests: tfjs's cpu backend.
 */
#include <stdint.h>
#include <wasm_simd128.h>

/* The geometry, as scalar arguments: batch, input height and width, channels, output height and
 * width, filter height and width, strides, padding at the top and left. */
#define GEOMETRY                                                                                 \
  int32_t n, int32_t ih, int32_t iw, int32_t ch, int32_t oh, int32_t ow, int32_t kh, int32_t kw, \
      int32_t sh, int32_t sw, int32_t pt, int32_t pl

/*
 * dw[i, j, c] = sum over n, y, x of input[n, y sh + i - pt, x sw + j - pl, c] dy[n, y, x, c]
 * (taps outside the input contribute nothing).
 */
void qgt_dw_filter_grad(const float *input, const float *dy, GEOMETRY, float *dw) {
  const int32_t taps = kh * kw;
  for (int32_t t = 0; t < taps * ch; t++) dw[t] = 0.0f;
  for (int32_t b = 0; b < n; b++) {
    for (int32_t y = 0; y < oh; y++) {
      for (int32_t x = 0; x < ow; x++) {
        const float *d = dy + (((int64_t)b * oh + y) * ow + x) * ch;
        for (int32_t i = 0; i < kh; i++) {
          const int32_t yy = y * sh + i - pt;
          if (yy < 0 || yy >= ih) continue;
          for (int32_t j = 0; j < kw; j++) {
            const int32_t xx = x * sw + j - pl;
            if (xx < 0 || xx >= iw) continue;
            const float *in = input + (((int64_t)b * ih + yy) * iw + xx) * ch;
            float *w = dw + (i * kw + j) * ch;
            for (int32_t c = 0; c < ch; c++) w[c] += in[c] * d[c];
          }
        }
      }
    }
  }
}

/*
 * Max-pooling gradient (NHWC): each window's dy goes to the first position of
 * its largest input, row by row (NaN never wins); overlapping windows add in
 * output order. tfjs-backend-wasm 4.22's own kernel takes about 25 ns per
 * input value, loses the gradient of windows whose maximum is <= 0 (about 6 %
 * of the windows of signed random inputs; behind a ReLU those positions get
 * no gradient anyway) and breaks ties otherwise, so this is part of the "qgt"
 * set.
 */
void qgt_maxpool_grad(const float *x, const float *dy, GEOMETRY, float *dx) {
  const int64_t nx = (int64_t)n * ih * iw * ch;
  for (int64_t t = 0; t < nx; t++) dx[t] = 0.0f;
  for (int32_t b = 0; b < n; b++) {
    for (int32_t y = 0; y < oh; y++) {
      for (int32_t xo = 0; xo < ow; xo++) {
        const float *d = dy + (((int64_t)b * oh + y) * ow + xo) * ch;
        for (int32_t c = 0; c < ch; c++) {
          int64_t best = -1;
          float v = 0.0f;
          for (int32_t i = 0; i < kh; i++) {
            const int32_t yy = y * sh + i - pt;
            if (yy < 0 || yy >= ih) continue;
            for (int32_t j = 0; j < kw; j++) {
              const int32_t xx = xo * sw + j - pl;
              if (xx < 0 || xx >= iw) continue;
              const int64_t at = (((int64_t)b * ih + yy) * iw + xx) * ch + c;
              if (best < 0 || x[at] > v) {
                if (x[at] != x[at]) continue; /* NaN */
                best = at;
                v = x[at];
              }
            }
          }
          if (best >= 0) dx[best] += d[c];
        }
      }
    }
  }
}

/*
 * The filter gradient of a 1x1, stride-1 convolution: dw[ci][co] = sum over
 * p of x[p][ci] dy[p][co], x [P, cin], dy [P, cout]. Blocks of 4 input x 8
 * output channels stay in registers for the whole sum. Each output is summed
 * over p in order with a separate multiply and add, as XNNPACK's matrix
 * product (the tfjs path of grad_math.ts) does, so the bits are the same and
 * this kernel is the default for that case (tests/backend_grad_test.ts).
 */
static float dot_column(const float *x, const float *dy, int32_t P, int32_t cin, int32_t cout) {
  float s = 0.0f;
  for (int32_t p = 0; p < P; p++) s += x[(int64_t)p * cin] * dy[(int64_t)p * cout];
  return s;
}

void qgt_pw_filter_grad(const float *x, const float *dy, int32_t P, int32_t cin, int32_t cout,
                        float *dw) {
  int32_t ci = 0;
  for (; ci + 4 <= cin; ci += 4) {
    int32_t co = 0;
    for (; co + 8 <= cout; co += 8) {
      v128_t a[4][2];
      for (int32_t k = 0; k < 4; k++) a[k][0] = a[k][1] = wasm_f32x4_splat(0.0f);
      const float *xp = x + ci, *dp = dy + co;
      for (int32_t p = 0; p < P; p++, xp += cin, dp += cout) {
        const v128_t d0 = wasm_v128_load(dp), d1 = wasm_v128_load(dp + 4);
        for (int32_t k = 0; k < 4; k++) {
          const v128_t xv = wasm_f32x4_splat(xp[k]);
          a[k][0] = wasm_f32x4_add(a[k][0], wasm_f32x4_mul(xv, d0));
          a[k][1] = wasm_f32x4_add(a[k][1], wasm_f32x4_mul(xv, d1));
        }
      }
      for (int32_t k = 0; k < 4; k++) {
        wasm_v128_store(dw + (int64_t)(ci + k) * cout + co, a[k][0]);
        wasm_v128_store(dw + (int64_t)(ci + k) * cout + co + 4, a[k][1]);
      }
    }
    for (; co < cout; co++) {
      for (int32_t k = 0; k < 4; k++) {
        dw[(int64_t)(ci + k) * cout + co] = dot_column(x + ci + k, dy + co, P, cin, cout);
      }
    }
  }
  for (; ci < cin; ci++) {
    for (int32_t co = 0; co < cout; co++) {
      dw[(int64_t)ci * cout + co] = dot_column(x + ci, dy + co, P, cin, cout);
    }
  }
}

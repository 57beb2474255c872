/*
 * Gradient kernels for convolutions and pooling (NHWC, dilation 1), in place on
 * tfjs-backend-wasm's memory like bn_act.c (no data, no stack). Two kinds:
 * those of the default path (qgt_pw_filter_grad, qgt_conv_filter_grad,
 * qgt_maxpool_grad_tfjs), which give the bits of the tfjs paths they replace,
 * and the "qgt" set (qgt_dw_filter_grad, qgt_maxpool_grad), which sum or break
 * ties in their own way, so experiments select them with
 * `train.gradKernels: "qgt"`. (An input-gradient kernel for the depthwise
 * convolution and a plain 1x1-convolution filter gradient were written too and
 * measured slower than the tfjs paths, so they are not here.) Reference for
 * the tests: tfjs's cpu backend, and for the default path the replaced
 * kernels' bits.
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

/* One channel of a window as tfjs-backend-wasm's MaxPoolGrad (see below); the remainder path. */
static void maxpool_grad_tfjs_channel(const float *x, float *dx, float d, int32_t base, int32_t r0,
                                      int32_t r1, int32_t c0, int32_t c1, int32_t iw, int32_t ch) {
  float v = 0x1p-126f; /* FLT_MIN, tfjs's starting value */
  int32_t best = 0;
  for (int32_t r = r0; r < r1; r++) {
    for (int32_t q = c0; q < c1; q++) {
      const int32_t at = base + (r * iw + q) * ch;
      if (x[at] >= v) {
        v = x[at];
        best = at;
      }
    }
  }
  for (int32_t r = r0; r < r1; r++) {
    for (int32_t q = c0; q < c1; q++) {
      const int32_t at = base + (r * iw + q) * ch;
      dx[at] += d * (at == best ? 1.0f : 0.0f);
    }
  }
}

/*
 * tfjs-backend-wasm 4.22's own max-pooling gradient (its MaxPoolGrad), bit for
 * bit, in one pass instead of its per-input search over every covering window:
 * each window's maximum is found as that kernel finds it (a running value
 * starting at FLT_MIN with flat offset 0, replaced by any later value >= it, so
 * ties go to the last position, NaN never wins), and every input position a
 * window covers adds dy * (1 if it is that offset, else 0), windows in output
 * order, onto +0. So a window whose values all lie below FLT_MIN (zeros behind
 * a ReLU, negatives) sends its gradient to flat offset 0 when it covers it and
 * nowhere otherwise, and a NaN or infinite dy spreads NaN over its window, all
 * as tfjs does: this kernel is the default path ("tfjs" kernels), so it must
 * keep every earlier run's numbers (tests/backend_grad_test.ts compares bits
 * with the stock kernel). Offsets are 32-bit as tfjs's. Four channels at a
 * time: the same comparisons, selects, products and sums per lane.
 */
void qgt_maxpool_grad_tfjs(const float *x, const float *dy, GEOMETRY, float *dx) {
  const int64_t nx = (int64_t)n * ih * iw * ch;
  for (int64_t t = 0; t < nx; t++) dx[t] = 0.0f;
  const v128_t lane = wasm_i32x4_make(0, 1, 2, 3), one = wasm_f32x4_splat(1.0f);
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int32_t b = 0; b < n; b++) {
    for (int32_t y = 0; y < oh; y++) {
      const int32_t r1 = y * sh - pt + kh < ih ? y * sh - pt + kh : ih;
      const int32_t r0 = y * sh - pt > 0 ? y * sh - pt : 0;
      for (int32_t xo = 0; xo < ow; xo++) {
        const int32_t c1 = xo * sw - pl + kw < iw ? xo * sw - pl + kw : iw;
        const int32_t c0 = xo * sw - pl > 0 ? xo * sw - pl : 0;
        const float *d = dy + (((int64_t)b * oh + y) * ow + xo) * ch;
        const int32_t img = b * ih * iw * ch;
        int32_t c = 0;
        for (; c + 4 <= ch; c += 4) {
          v128_t v = wasm_f32x4_splat(0x1p-126f), best = wasm_i32x4_splat(0);
          for (int32_t r = r0; r < r1; r++) {
            for (int32_t q = c0; q < c1; q++) {
              const int32_t at = img + (r * iw + q) * ch + c;
              const v128_t xv = wasm_v128_load(x + at);
              const v128_t ge = wasm_f32x4_ge(xv, v);
              v = wasm_v128_bitselect(xv, v, ge);
              best = wasm_v128_bitselect(wasm_i32x4_add(wasm_i32x4_splat(at), lane), best, ge);
            }
          }
          const v128_t dv = wasm_v128_load(d + c);
          for (int32_t r = r0; r < r1; r++) {
            for (int32_t q = c0; q < c1; q++) {
              const int32_t at = img + (r * iw + q) * ch + c;
              const v128_t hit = wasm_i32x4_eq(wasm_i32x4_add(wasm_i32x4_splat(at), lane), best);
              const v128_t m = wasm_v128_bitselect(one, zero, hit);
              wasm_v128_store(dx + at, wasm_f32x4_add(wasm_v128_load(dx + at), wasm_f32x4_mul(dv, m)));
            }
          }
        }
        for (; c < ch; c++) maxpool_grad_tfjs_channel(x, dx, d[c], img + c, r0, r1, c0, c1, iw, ch);
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

/*
 * The filter gradient of a regular convolution (NHWC input, any kernel, stride and padding, no
 * dilation): dw[i][j][ci][co] = sum over y, x, b of x[b, y sh + i - pt, x sw + j - pl, ci]
 * dy[b, y, x, co], taps outside the input counting as 0 * dy. tfjs computes it (grad_math.ts) as
 * one XNNPACK convolution of the transposed, padded input with the transposed dy as a dilated
 * kernel, whose indirect matrix product sums each output over kernel rows y, then columns x, then
 * channels b, one separate multiply and add at a time. This kernel sums in that order too, so its
 * bits are the same (tests/backend_grad_test.ts), with blocks of 4 input x 8 output channels
 * accumulated in registers over a few output columns x at a time (as many as keep their input
 * and dy rows in about 32 KiB) and kept in dw in between.
 */
#define FG_ARGS                                                                                  \
  const float *x, const float *dy, int32_t n, int32_t ih, int32_t iw, int32_t cin, int32_t oh, \
      int32_t ow, int32_t cout, int32_t sh, int32_t sw, int32_t yy, int32_t j, int32_t pl,       \
      int32_t y, int32_t x0, int32_t x1
/* Output column xo of row y: whether tap (yy, xx) is inside the input, where its input channels
 * ci.. (of batch 0) and dy's channels co.. are; taps outside read nothing and count as 0 * dy. */
#define FG_ROW                                                                          \
  const int32_t xx = xo * sw + j - pl;                                                  \
  const int in = inrow && xx >= 0 && xx < iw;                                           \
  const float *xp = x + ((int64_t)(in ? yy : 0) * iw + (in ? xx : 0)) * cin + ci;       \
  const float *dp = dy + ((int64_t)y * ow + xo) * cout + co;

/* 4 input x 8 output channels at (ci, co): output columns x0..x1 of row y added to out. */
static void fg_block4x8(FG_ARGS, int32_t ci, int32_t co, float *out) {
  v128_t a[4][2];
  for (int32_t k = 0; k < 4; k++) {
    a[k][0] = wasm_v128_load(out + (int64_t)k * cout);
    a[k][1] = wasm_v128_load(out + (int64_t)k * cout + 4);
  }
  const int64_t xs = (int64_t)ih * iw * cin, ds = (int64_t)oh * ow * cout;
  const int inrow = yy >= 0 && yy < ih;
  for (int32_t xo = x0; xo < x1; xo++) {
    FG_ROW
    for (int32_t b = 0; b < n; b++, xp += xs, dp += ds) {
      const v128_t d0 = wasm_v128_load(dp), d1 = wasm_v128_load(dp + 4);
      for (int32_t k = 0; k < 4; k++) {
        const v128_t xv = wasm_f32x4_splat(in ? xp[k] : 0.0f);
        a[k][0] = wasm_f32x4_add(a[k][0], wasm_f32x4_mul(xv, d0));
        a[k][1] = wasm_f32x4_add(a[k][1], wasm_f32x4_mul(xv, d1));
      }
    }
  }
  for (int32_t k = 0; k < 4; k++) {
    wasm_v128_store(out + (int64_t)k * cout, a[k][0]);
    wasm_v128_store(out + (int64_t)k * cout + 4, a[k][1]);
  }
}

/* 1 input x 8 output channels. */
static void fg_block1x8(FG_ARGS, int32_t ci, int32_t co, float *out) {
  v128_t a0 = wasm_v128_load(out), a1 = wasm_v128_load(out + 4);
  const int64_t xs = (int64_t)ih * iw * cin, ds = (int64_t)oh * ow * cout;
  const int inrow = yy >= 0 && yy < ih;
  for (int32_t xo = x0; xo < x1; xo++) {
    FG_ROW
    for (int32_t b = 0; b < n; b++, xp += xs, dp += ds) {
      const v128_t xv = wasm_f32x4_splat(in ? xp[0] : 0.0f);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xv, wasm_v128_load(dp)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xv, wasm_v128_load(dp + 4)));
    }
  }
  wasm_v128_store(out, a0);
  wasm_v128_store(out + 4, a1);
}

/* One input and one output channel (the tails). */
static void fg_scalar(FG_ARGS, int32_t ci, int32_t co, float *out) {
  float s = out[0];
  const int64_t xs = (int64_t)ih * iw * cin, ds = (int64_t)oh * ow * cout;
  const int inrow = yy >= 0 && yy < ih;
  for (int32_t xo = x0; xo < x1; xo++) {
    FG_ROW
    for (int32_t b = 0; b < n; b++, xp += xs, dp += ds) s += (in ? xp[0] : 0.0f) * dp[0];
  }
  out[0] = s;
}

/* GEOMETRY's ch is the input channels; cout the output channels. */
void qgt_conv_filter_grad(const float *x, const float *dy, int32_t n, int32_t ih, int32_t iw,
                          int32_t cin, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh,
                          int32_t sw, int32_t pt, int32_t pl, int32_t cout, float *dw) {
  const int64_t total = (int64_t)kh * kw * cin * cout;
  for (int64_t t = 0; t < total; t++) dw[t] = 0.0f;
  /* output columns per pass: their inputs and dy over the batch stay in about 32 KiB */
  int32_t xc = (int32_t)(32768 / ((int64_t)n * (cin + cout) * 4));
  if (xc < 1) xc = 1;
  for (int32_t y = 0; y < oh; y++) {
    for (int32_t i = 0; i < kh; i++) {
      const int32_t yy = y * sh + i - pt;
      for (int32_t j = 0; j < kw; j++) {
        float *o = dw + ((int64_t)i * kw + j) * cin * cout;
        for (int32_t x0 = 0; x0 < ow; x0 += xc) {
          const int32_t x1 = x0 + xc < ow ? x0 + xc : ow;
#define FG_CALL(f, c, d) \
  f(x, dy, n, ih, iw, cin, oh, ow, cout, sh, sw, yy, j, pl, y, x0, x1, c, d, o + (int64_t)(c) * cout + (d))
          int32_t ci = 0;
          for (; ci + 4 <= cin; ci += 4) {
            int32_t co = 0;
            for (; co + 8 <= cout; co += 8) FG_CALL(fg_block4x8, ci, co);
            for (; co < cout; co++) {
              for (int32_t k = 0; k < 4; k++) FG_CALL(fg_scalar, ci + k, co);
            }
          }
          for (; ci < cin; ci++) {
            int32_t co = 0;
            for (; co + 8 <= cout; co += 8) FG_CALL(fg_block1x8, ci, co);
            for (; co < cout; co++) FG_CALL(fg_scalar, ci, co);
          }
#undef FG_CALL
        }
      }
    }
  }
}

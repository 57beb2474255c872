/*
 * numbers.c: the exact arithmetic on float16 / float32 scales: requantization and add multipliers, ReLU6 bounds (docs/format.md, Numbers).
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

/* ------------------------------------------------------------------ exact numbers */

/* A float32 (bits) as m * 2^e with m < 2^24; returns 0 for non-positive, infinite or NaN. */
static int f32_parts(uint32_t bits, uint64_t *m, int *e) {
  uint32_t ex = (bits >> 23) & 0xffu, fr = bits & 0x7fffffu;
  if ((bits >> 31) || ex == 0xffu || (ex == 0 && fr == 0)) return 0;
  *m = ex ? (fr | 0x800000u) : fr;
  *e = ex ? (int)ex - 150 : -149;
  return 1;
}

/* A float16 (bits) as m * 2^e with m < 2^11; returns 0 for non-positive, infinite or NaN. */
static int f16_parts(uint32_t bits, uint64_t *m, int *e) {
  uint32_t ex = (bits >> 10) & 0x1fu, fr = bits & 0x3ffu;
  if ((bits >> 15) || ex == 0x1fu || (ex == 0 && fr == 0)) return 0;
  *m = ex ? (fr | 0x400u) : fr;
  *e = ex ? (int)ex - 25 : -24;
  return 1;
}

static int bitlen64(uint64_t x) {
#if defined(__GNUC__)
  return x ? 64 - __builtin_clzll(x) : 0;
#else
  int n = 0;
  while (x) {
    n++;
    x >>= 1;
  }
  return n;
#endif
}

/* Sign of a * 2^p - b * 2^q for a, b < 2^57 (exact). */
static int cmp_scaled_u(uint64_t a, int p, uint64_t b, int q) {
  int d;
  if (a == 0 || b == 0) return (a > 0) - (b > 0);
  d = p - q;
  if (d >= 0) {
    if (bitlen64(a) + d > 63) return 1;
    a <<= d;
  } else {
    if (bitlen64(b) - d > 63) return -1;
    b <<= -d;
  }
  return (a > b) - (a < b);
}

/* docs/format.md, "The requantization multiplier": M = s_in * s_w / s_out exactly, as
 * m0 * 2^(shift - 31), m0 in [2^30, 2^31), rounded once, half up. Returns 0 when M >= 2^30. */
static int requant_multiplier(uint32_t s_in, uint32_t s_w16, uint32_t s_out, int32_t *m0,
                              int32_t *shift) {
  uint64_t ma, mb, mc, num, den, q;
  int ea, eb, ec, e, s, p;
  if (!f32_parts(s_in, &ma, &ea) || !f16_parts(s_w16, &mb, &eb) || !f32_parts(s_out, &mc, &ec))
    return 0;
  num = ma * mb; /* < 2^35 */
  den = mc;      /* < 2^24 */
  e = ea + eb - ec;
  /* shift with 2^(shift-1) <= num / den * 2^e < 2^shift */
  s = bitlen64(num) - bitlen64(den) + e;
  while (cmp_scaled_u(num, e - (s - 1), den, 0) < 0) s--;
  while (cmp_scaled_u(num, e - s, den, 0) >= 0) s++;
  if (s < -31) {
    *m0 = 0;
    *shift = 0;
    return 1;
  }
  if (s > 30) return 0;
  /* m0 = floor((2 num 2^p + den) / (2 den)), p = e + 31 - s; num 2^p < 2^31 den < 2^55 */
  p = e + 31 - s;
  if (p >= 0)
    q = ((num << p) * 2u + den) / (2u * den);
  else
    q = (num * 2u + (den << -p)) / ((2u * den) << -p);
  if (q == (1ull << 31)) {
    q = 1ull << 30;
    s++;
  }
  *m0 = (int32_t)q;
  *shift = s;
  return 1;
}

/* The float32 bits of 2 s, for a positive float32 s below 2^24 (no overflow). */
static uint32_t f32_twice(uint32_t bits) { return (bits >> 23) ? bits + (1u << 23) : bits << 1; }

#define F16_ONE 0x3c00u      /* 1.0 as float16 bits */
#define F16_2_POW_M20 0x10u  /* 2^-20 as float16 bits (a subnormal: 16 * 2^-24) */
#define ADD_LEFT_SHIFT 20    /* TFLite's int8 ADD shifts its inputs left by 20 bits */

/* docs/format.md, "add": twice = 2 max(s1, s2); m[0..1] = s1 / twice, m[2..3] = s2 / twice,
 * m[4..5] = twice / (2^20 s_out), each an exact multiplier like a layer's. 0 when the last is
 * >= 2^30 (the first two are at most 1/2). */
static int add_multipliers(uint32_t s1, uint32_t s2, uint32_t s_out, int32_t *m) {
  uint32_t twice = f32_twice(s1 >= s2 ? s1 : s2); /* positive float32 bits order as the values */
  requant_multiplier(s1, F16_ONE, twice, &m[0], &m[1]);
  requant_multiplier(s2, F16_ONE, twice, &m[2], &m[3]);
  return requant_multiplier(twice, F16_2_POW_M20, s_out, &m[4], &m[5]);
}

/* zp + floor(6 / s + 1/2), exactly, clamped to 127 (s a positive float32). */
static int32_t relu6_max(int32_t zp, uint32_t s) {
  uint64_t m, n, d, q;
  int e;
  if (!f32_parts(s, &m, &e)) return 127;
  if (e >= 0) {
    if (e > 40) return zp < 127 ? zp : 127; /* 6 / s < 2^-16: rounds to 0 */
    n = 12u;
    d = m << e;
  } else {
    if (-e > 58) return 127; /* 6 / s > 2^34 */
    n = 12ull << -e;
    d = m;
  }
  q = (n + d) / (2u * d);
  {
    int64_t v = (q > 1000u ? 1000 : (int64_t)q) + zp;
    return v > 127 ? 127 : (int32_t)v;
  }
}

/*
 * qgt_runtime.c: the integer interpreter of model.qgt in portable C99 (see qgt_runtime.h and
 * docs/format.md, whose rules this follows line by line). No heap, no floating point, no
 * library calls beyond <string.h>'s memcpy/memset/memcmp; every byte of the file is checked
 * before it is used.
 */
#include "qgt_runtime.h"

#include <string.h>

/* ------------------------------------------------------------------ errors */

typedef struct {
  char *buf;
  size_t n, cap;
} qgt_msg;

static void msg_str(qgt_msg *w, const char *s, size_t len) {
  while (len-- && *s && w->n + 1 < w->cap) w->buf[w->n++] = *s++;
  w->buf[w->n] = 0;
}

static void msg_cstr(qgt_msg *w, const char *s) { msg_str(w, s, (size_t)-1); }

static void msg_int(qgt_msg *w, int64_t v) {
  char t[24];
  int i = 0;
  uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1u : (uint64_t)v;
  if (v < 0) msg_cstr(w, "-");
  do {
    t[i++] = (char)('0' + (int)(u % 10u));
    u /= 10u;
  } while (u && i < 23);
  while (i) {
    char c[2];
    c[0] = t[--i];
    c[1] = 0;
    msg_cstr(w, c);
  }
}

/* Sets the model's message "<where>: <what>" and returns the status. */
static qgt_status fail(qgt_model *m, qgt_status s, const qgt_layer *l, const char *what,
                       int64_t value, int with_value) {
  qgt_msg w;
  w.buf = m->error;
  w.n = 0;
  w.cap = sizeof m->error;
  m->error[0] = 0;
  if (l && l->name) {
    msg_cstr(&w, "layer ");
    msg_str(&w, l->name, l->name_len);
    msg_cstr(&w, ": ");
  }
  msg_cstr(&w, what);
  if (with_value) msg_int(&w, value);
  return s;
}

#define FAIL(s, l, what) return fail(m, (s), (l), (what), 0, 0)
#define FAILV(s, l, what, v) return fail(m, (s), (l), (what), (int64_t)(v), 1)

const char *qgt_error(const qgt_model *m) { return m ? m->error : "no model"; }

const char *qgt_status_name(qgt_status s) {
  static const char *const names[] = {"ok",      "argument", "truncated", "magic", "version",
                                      "flags",   "checksum", "header",    "shape", "section",
                                      "value",   "limit",    "arena"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

size_t qgt_model_size(void) { return sizeof(qgt_model); }

uint32_t qgt_num_classes(const qgt_model *m) { return m ? m->n_classes : 0; }

/* ------------------------------------------------------------------ little-endian reads, CRC */

static uint32_t rd_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t rd_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static int32_t rd_i32(const uint8_t *p) {
  uint32_t u = rd_u32(p);
  return u <= 0x7fffffffu ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* CRC-32/ISO-HDLC with a 16-entry table (two lookups per byte). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
  static const uint32_t t[16] = {0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
                                 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
                                 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
                                 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    crc = (crc >> 4) ^ t[crc & 15u];
    crc = (crc >> 4) ^ t[crc & 15u];
  }
  return ~crc;
}

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

/* ------------------------------------------------------------------ a strict JSON reader */

typedef struct {
  const uint8_t *p, *end;
  int depth;
} jcur;

static void ws(jcur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int lit(jcur *c, char ch) {
  ws(c);
  if (c->p < c->end && *c->p == (uint8_t)ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A string: sets s/len to its raw bytes (escapes validated, not decoded). */
static int jstring(jcur *c, const char **s, uint32_t *len) {
  const uint8_t *start;
  ws(c);
  if (c->p >= c->end || *c->p != '"') return 0;
  start = ++c->p;
  while (c->p < c->end && *c->p != '"') {
    if (*c->p < 0x20) return 0;
    if (*c->p == '\\') {
      c->p++;
      if (c->p >= c->end) return 0;
      if (*c->p == 'u') {
        int i;
        for (i = 0; i < 4; i++) {
          uint8_t h;
          c->p++;
          if (c->p >= c->end) return 0;
          h = *c->p;
          if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
            return 0;
        }
      } else if (!strchr("\"\\/bfnrt", *c->p) || *c->p == 0) {
        return 0;
      }
    }
    c->p++;
  }
  if (c->p >= c->end) return 0;
  *s = (const char *)start;
  *len = (uint32_t)(c->p - start);
  c->p++;
  return 1;
}

/* Skips a JSON number (provenance may hold fractions; no value the runtime uses is one). */
static int jskip_number(jcur *c) {
  int digits = 0;
  ws(c);
  if (c->p < c->end && *c->p == '-') c->p++;
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
  if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9') return 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  if (c->p < c->end && *c->p == '.') {
    c->p++;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++, digits++;
    if (!digits) return 0;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++, digits++;
    if (!digits) return 0;
  }
  return 1;
}

/* Skips any value (depth-limited: malicious nesting cannot exhaust the stack). */
static int jskip(jcur *c) {
  const char *s;
  uint32_t len;
  ws(c);
  if (c->p >= c->end) return 0;
  if (*c->p == '"') return jstring(c, &s, &len);
  if (*c->p == '{' || *c->p == '[') {
    char close = *c->p == '{' ? '}' : ']';
    int obj = *c->p == '{';
    if (++c->depth > 16) return 0;
    c->p++;
    if (!lit(c, close)) {
      do {
        if (obj && !(jstring(c, &s, &len) && lit(c, ':'))) return 0;
        if (!jskip(c)) return 0;
      } while (lit(c, ','));
      if (!lit(c, close)) return 0;
    }
    c->depth--;
    return 1;
  }
  if (c->end - c->p >= 4 && !memcmp(c->p, "true", 4)) return (c->p += 4, 1);
  if (c->end - c->p >= 5 && !memcmp(c->p, "false", 5)) return (c->p += 5, 1);
  if (c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) return (c->p += 4, 1);
  return jskip_number(c);
}

/* An integer in [lo, hi], written as JSON writes integers: an optional minus and digits, no
 * leading zero, no fraction or exponent. */
static int jint(jcur *c, int64_t lo, int64_t hi, int64_t *out) {
  int neg = 0, digits = 0;
  uint64_t v = 0;
  ws(c);
  if (c->p < c->end && *c->p == '-') neg = 1, c->p++;
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
  if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9') return 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    if (++digits > 18) return 0;
    v = v * 10u + (uint64_t)(*c->p++ - '0');
  }
  if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return 0;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return *out >= lo && *out <= hi;
}

static int key_is(const char *s, uint32_t len, const char *k) {
  return strlen(k) == len && !memcmp(s, k, len);
}

/* ------------------------------------------------------------------ the header */

#define KEY(name) key_is(k, klen, name)

static uint32_t out_size(uint32_t in, uint32_t k, uint32_t s, int same) {
  if (same) return (in + s - 1) / s;
  return in >= k ? (in - k) / s + 1 : 0;
}

/* Field bits of the keys a layer gave. */
enum {
  F_NAME = 1, F_TYPE = 2, F_FILTERS = 4, F_UNITS = 8, F_KERNEL = 16, F_STRIDE = 32,
  F_PADDING = 64, F_SIZE = 128, F_ACT = 256, F_BITS = 512, F_QMIN = 1024, F_PERTENSOR = 2048,
  F_CODES = 4096, F_SCALES = 8192, F_ZP = 16384, F_BIAS = 32768, F_OUT = 65536, F_INPUTS = 131072
};

/* "inputs": a list of names of earlier layers or "input" (-1), compared as written.
 * Sets in1 (and in2) and returns how many names there were (0 on a syntax error). */
static int parse_inputs(qgt_model *m, jcur *c, qgt_layer *l, uint32_t idx) {
  int n = 0;
  if (!lit(c, '[')) return 0;
  do {
    const char *s;
    uint32_t sl, j;
    int16_t at = -2;
    if (n == 2 || !jstring(c, &s, &sl)) return 0;
    if (key_is(s, sl, "input")) at = -1;
    for (j = 0; j < idx && at == -2; j++)
      if (m->layers[j].name_len == sl && !memcmp(m->layers[j].name, s, sl)) at = (int16_t)j;
    if (at == -2) return -1;
    if (n++ == 0) l->in1 = at;
    else l->in2 = at;
  } while (lit(c, ','));
  return lit(c, ']') ? n : 0;
}

static qgt_status parse_layer(qgt_model *m, jcur *c, qgt_layer *l, uint32_t idx) {
  uint32_t seen = 0, need, allowed;
  int64_t v;
  int64_t qmin = 0;
  int n_inputs = 1;
  memset(l, 0, sizeof *l);
  l->in1 = (int16_t)((int32_t)idx - 1); /* the layer before, or the input */
  l->in2 = -1;
  if (!lit(c, '{')) FAIL(QGT_ERR_HEADER, 0, "header: a layer is not an object");
  if (!lit(c, '}')) {
    do {
      const char *k;
      uint32_t klen, bit = 0;
      if (!jstring(c, &k, &klen) || !lit(c, ':')) FAIL(QGT_ERR_HEADER, l, "corrupt header");
      if (KEY("name")) {
        bit = F_NAME;
        if (!jstring(c, &l->name, &l->name_len) || !l->name_len)
          FAIL(QGT_ERR_HEADER, 0, "header: a layer name is not a non-empty string");
      } else if (KEY("type")) {
        const char *t;
        uint32_t tl;
        bit = F_TYPE;
        if (!jstring(c, &t, &tl)) FAIL(QGT_ERR_HEADER, l, "type: expected a string");
        l->type = key_is(t, tl, "conv2d")        ? QGT_CONV2D
                  : key_is(t, tl, "depthwise2d") ? QGT_DEPTHWISE2D
                  : key_is(t, tl, "dense")       ? QGT_DENSE
                  : key_is(t, tl, "maxpool")     ? QGT_MAXPOOL
                  : key_is(t, tl, "gap")         ? QGT_GAP
                  : key_is(t, tl, "add")         ? QGT_ADD
                                                 : 0;
        if (!l->type) FAIL(QGT_ERR_HEADER, l, "type: unknown layer type");
      } else if (KEY("filters") || KEY("units")) {
        bit = KEY("filters") ? F_FILTERS : F_UNITS;
        if (!jint(c, 1, 65536, &v)) FAIL(QGT_ERR_HEADER, l, "filters/units: expected an integer in 1..65536");
        l->units = (uint32_t)v;
      } else if (KEY("kernel") || KEY("size")) {
        bit = KEY("kernel") ? F_KERNEL : F_SIZE;
        if (!jint(c, 1, 8192, &v)) FAIL(QGT_ERR_HEADER, l, "kernel/size: expected an integer in 1..8192");
        l->kernel = (uint32_t)v;
      } else if (KEY("stride")) {
        bit = F_STRIDE;
        if (!jint(c, 1, 8192, &v)) FAIL(QGT_ERR_HEADER, l, "stride: expected an integer in 1..8192");
        l->stride = (uint32_t)v;
      } else if (KEY("padding") || KEY("act")) {
        const char *t;
        uint32_t tl;
        int pad = KEY("padding");
        bit = pad ? F_PADDING : F_ACT;
        if (!jstring(c, &t, &tl)) FAIL(QGT_ERR_HEADER, l, "padding/act: expected a string");
        if (pad) {
          if (key_is(t, tl, "same")) l->same = 1;
          else if (!key_is(t, tl, "valid")) FAIL(QGT_ERR_HEADER, l, "padding: expected same or valid");
        } else {
          if (key_is(t, tl, "relu")) l->act = QGT_ACT_RELU;
          else if (key_is(t, tl, "relu6")) l->act = QGT_ACT_RELU6;
          else if (!key_is(t, tl, "none")) FAIL(QGT_ERR_HEADER, l, "act: expected none, relu or relu6");
        }
      } else if (KEY("bits")) {
        bit = F_BITS;
        if (!jint(c, 1, 8, &v)) FAIL(QGT_ERR_HEADER, l, "bits: expected an integer in 1..8");
        l->bits = (uint8_t)v;
      } else if (KEY("qmin")) {
        bit = F_QMIN;
        if (!jint(c, -128, 0, &qmin)) FAIL(QGT_ERR_HEADER, l, "qmin: expected an integer in -128..0");
      } else if (KEY("perTensor")) {
        bit = F_PERTENSOR;
        ws(c);
        if (c->end - c->p < 4 || memcmp(c->p, "true", 4)) FAIL(QGT_ERR_HEADER, l, "perTensor: expected true");
        c->p += 4;
        l->per_tensor = 1;
      } else if (KEY("codes") || KEY("scales") || KEY("zeroPoints") || KEY("bias")) {
        uint32_t *dst = KEY("codes") ? &l->codes : KEY("scales") ? &l->scales
                        : KEY("bias") ? &l->bias : &l->zero_points;
        bit = KEY("codes") ? F_CODES : KEY("scales") ? F_SCALES : KEY("bias") ? F_BIAS : F_ZP;
        if (!jint(c, 0, 0xffffffffll, &v)) FAIL(QGT_ERR_HEADER, l, "section offset: expected a non-negative integer");
        *dst = (uint32_t)v;
        if (bit == F_ZP) l->has_zero_points = 1;
      } else if (KEY("inputs")) {
        bit = F_INPUTS;
        n_inputs = parse_inputs(m, c, l, idx);
        if (n_inputs < 0) FAIL(QGT_ERR_HEADER, l, "inputs: a name that is not an earlier layer or \"input\"");
        if (!n_inputs) FAIL(QGT_ERR_HEADER, l, "inputs: expected a list of one or two layer names");
      } else if (KEY("outZp")) {
        bit = F_OUT; /* its scale is in the actScales table (read_act_scales) */
        if (!jint(c, -128, 127, &v)) FAIL(QGT_ERR_HEADER, l, "outZp: expected an integer in -128..127");
        l->out_zp = (int32_t)v;
        l->has_out = 1;
      } else {
        FAIL(QGT_ERR_HEADER, l, "unknown key");
      }
      if (seen & bit) FAIL(QGT_ERR_HEADER, l, "a key is given twice");
      seen |= bit;
    } while (lit(c, ','));
    if (!lit(c, '}')) FAIL(QGT_ERR_HEADER, l, "corrupt header");
  }
  if (!(seen & F_NAME)) FAIL(QGT_ERR_HEADER, 0, "header: a layer has no name");
  if (!(seen & F_TYPE)) FAIL(QGT_ERR_HEADER, l, "missing key type");
  switch (l->type) {
    case QGT_CONV2D:
      need = F_NAME | F_TYPE | F_FILTERS | F_KERNEL | F_STRIDE | F_PADDING;
      break;
    case QGT_DEPTHWISE2D:
      need = F_NAME | F_TYPE | F_KERNEL | F_STRIDE | F_PADDING;
      break;
    case QGT_DENSE:
      need = F_NAME | F_TYPE | F_UNITS;
      break;
    case QGT_MAXPOOL:
      need = F_NAME | F_TYPE | F_SIZE | F_STRIDE;
      break;
    case QGT_ADD:
      need = F_NAME | F_TYPE | F_INPUTS | F_ACT | F_OUT;
      break;
    default:
      need = F_NAME | F_TYPE;
  }
  allowed = need | F_INPUTS;
  if (l->type <= QGT_DENSE) {
    need |= F_ACT | F_BITS | F_QMIN | F_CODES | F_SCALES | F_BIAS;
    allowed |= need | F_PERTENSOR | F_ZP | F_OUT;
  }
  if (seen & ~allowed) FAIL(QGT_ERR_HEADER, l, "unknown key for its layer type");
  if ((seen & need) != need) FAIL(QGT_ERR_HEADER, l, "missing key");
  if ((seen & F_INPUTS) && n_inputs != (l->type == QGT_ADD ? 2 : 1))
    FAIL(QGT_ERR_HEADER, l, l->type == QGT_ADD ? "inputs: an add reads two layers" : "inputs: expected one layer name");
  if (key_is(l->name, l->name_len, "input")) FAIL(QGT_ERR_HEADER, l, "the name is used twice (\"input\" is the network input)");
  if (l->type <= QGT_DENSE) {
    int b = l->bits;
    int ok = b == 1 ? qmin == -1
                    : (qmin == -(1 << (b - 1)) || qmin == -(1 << (b - 1)) + 1 || qmin == 0);
    if (!ok) FAIL(QGT_ERR_HEADER, l, "qmin: not a lowest level of its bits");
    l->qmin = (int8_t)qmin;
  }
  return QGT_OK;
}

static qgt_status parse_input(qgt_model *m, jcur *c) {
  int seen = 0;
  int64_t v;
  if (!lit(c, '{')) FAIL(QGT_ERR_HEADER, 0, "header.input: expected an object");
  do {
    const char *k;
    uint32_t klen;
    if (!jstring(c, &k, &klen) || !lit(c, ':')) FAIL(QGT_ERR_HEADER, 0, "corrupt header");
    if (KEY("shape") && !(seen & 1)) {
      int64_t d[3];
      if (!lit(c, '[') || !jint(c, 1, 8192, &d[0]) || !lit(c, ',') || !jint(c, 1, 8192, &d[1]) ||
          !lit(c, ',') || !jint(c, 1, 65536, &d[2]) || !lit(c, ']'))
        FAIL(QGT_ERR_HEADER, 0, "header.input.shape: expected [height, width, channels]");
      m->in_h = (uint32_t)d[0];
      m->in_w = (uint32_t)d[1];
      m->in_c = (uint32_t)d[2];
      seen |= 1;
    } else if (KEY("zp") && !(seen & 4)) {
      if (!jint(c, -128, 127, &v)) FAIL(QGT_ERR_HEADER, 0, "header.input.zp: expected an integer in -128..127");
      m->in_zp = (int32_t)v;
      seen |= 4;
    } else {
      FAIL(QGT_ERR_HEADER, 0, "header.input: unknown or repeated key");
    }
  } while (lit(c, ','));
  if (!lit(c, '}') || seen != 5) FAIL(QGT_ERR_HEADER, 0, "header.input: expected { shape, zp }");
  return QGT_OK;
}

static qgt_status parse_header(qgt_model *m, const uint8_t *h, uint32_t hlen, uint32_t *payload) {
  jcur c;
  int seen = 0;
  qgt_status st;
  c.p = h;
  c.end = h + hlen;
  c.depth = 0;
  if (!lit(&c, '{')) FAIL(QGT_ERR_HEADER, 0, "corrupt header: not a JSON object");
  do {
    const char *k;
    uint32_t klen;
    int64_t v;
    if (!jstring(&c, &k, &klen) || !lit(&c, ':')) FAIL(QGT_ERR_HEADER, 0, "corrupt header");
    if (KEY("format") && !(seen & 1)) {
      const char *s;
      uint32_t sl;
      if (!jstring(&c, &s, &sl) || !key_is(s, sl, "qgt")) FAIL(QGT_ERR_HEADER, 0, "header.format: expected \"qgt\"");
      seen |= 1;
    } else if (KEY("version") && !(seen & 2)) {
      if (!jint(&c, 0, 65535, &v) || (uint32_t)v != m->version)
        FAIL(QGT_ERR_HEADER, 0, "header.version: differs from the preamble's");
      seen |= 2;
    } else if (KEY("name") && !(seen & 4)) {
      const char *s;
      uint32_t sl;
      if (!jstring(&c, &s, &sl)) FAIL(QGT_ERR_HEADER, 0, "header.name: expected a string");
      seen |= 4;
    } else if (KEY("classes") && !(seen & 8)) {
      const char *s;
      uint32_t sl;
      m->n_classes = 0;
      if (!lit(&c, '[')) FAIL(QGT_ERR_HEADER, 0, "header.classes: expected a list of names");
      do {
        if (!jstring(&c, &s, &sl)) FAIL(QGT_ERR_HEADER, 0, "header.classes: expected a list of names");
        m->n_classes++;
      } while (lit(&c, ','));
      if (!lit(&c, ']')) FAIL(QGT_ERR_HEADER, 0, "header.classes: expected a list of names");
      seen |= 8;
    } else if (KEY("input") && !(seen & 16)) {
      if ((st = parse_input(m, &c)) != QGT_OK) return st;
      seen |= 16;
    } else if (KEY("layers") && !(seen & 32)) {
      if (!lit(&c, '[')) FAIL(QGT_ERR_HEADER, 0, "header.layers: expected a list");
      m->n_layers = 0;
      do {
        if (m->n_layers >= QGT_MAX_LAYERS) FAILV(QGT_ERR_LIMIT, 0, "more layers than QGT_MAX_LAYERS = ", QGT_MAX_LAYERS);
        if ((st = parse_layer(m, &c, &m->layers[m->n_layers], m->n_layers)) != QGT_OK) return st;
        m->n_layers++;
      } while (lit(&c, ','));
      if (!lit(&c, ']')) FAIL(QGT_ERR_HEADER, 0, "header.layers: corrupt list");
      seen |= 32;
    } else if (KEY("payload") && !(seen & 64)) {
      if (!jint(&c, 0, 0xffffffffll, &v)) FAIL(QGT_ERR_HEADER, 0, "header.payload: expected a byte count");
      *payload = (uint32_t)v;
      seen |= 64;
    } else if (KEY("actScales") && !(seen & 256)) {
      if (!jint(&c, 0, 0xffffffffll, &v)) FAIL(QGT_ERR_HEADER, 0, "header.actScales: expected a payload offset");
      m->act_scales = (uint32_t)v;
      seen |= 256;
    } else if (KEY("provenance") && !(seen & 128)) {
      ws(&c);
      if (c.p >= c.end || *c.p != '{' || !jskip(&c)) FAIL(QGT_ERR_HEADER, 0, "header.provenance: expected an object");
      seen |= 128;
    } else {
      FAIL(QGT_ERR_HEADER, 0, "header: unknown or repeated key");
    }
  } while (lit(&c, ','));
  if (!lit(&c, '}')) FAIL(QGT_ERR_HEADER, 0, "corrupt header");
  while (c.p < c.end)
    if (*c.p++ != ' ') FAIL(QGT_ERR_HEADER, 0, "corrupt header: trailing bytes are not spaces");
  if ((seen & 383) != 383) FAIL(QGT_ERR_HEADER, 0, "header: missing key");
  if (!m->n_classes || !m->n_layers) FAIL(QGT_ERR_HEADER, 0, "header: no classes or no layers");
  return QGT_OK;
}

/* ------------------------------------------------------------------ shapes, sections, values */

/* The actScales table: 1 + (layers with outZp) float32 values, the input's scale first, then each
 * such layer's output scale in order; each positive, finite and below 2^24. */
static qgt_status read_act_scales(qgt_model *m) {
  uint32_t n = 1, i, k = 1;
  for (i = 0; i < m->n_layers; i++) n += m->layers[i].has_out;
  if (m->act_scales % 4u || (uint64_t)m->act_scales + 4u * n > m->payload_len)
    FAILV(QGT_ERR_SECTION, 0, "header.actScales: the table lies outside the payload or is not 4-byte aligned, offset ", m->act_scales);
  m->act_scales_len = 4u * n;
#define SCALE_OK(b) ((b) != 0 && (b) < 0x4b800000u) /* positive, finite, below 2^24 */
  m->in_scale = rd_u32(m->payload + m->act_scales);
  if (!SCALE_OK(m->in_scale)) FAIL(QGT_ERR_VALUE, 0, "actScales[0]: the input scale is not a finite positive float32 below 2^24");
  for (i = 0; i < m->n_layers; i++) {
    qgt_layer *l = &m->layers[i];
    if (!l->has_out) continue;
    l->out_scale = rd_u32(m->payload + m->act_scales + 4u * k++);
    if (!SCALE_OK(l->out_scale)) FAIL(QGT_ERR_VALUE, l, "its output scale (actScales) is not a finite positive float32 below 2^24");
  }
#undef SCALE_OK
  return QGT_OK;
}

/* The shape and quantization of what layer `at` (-1: the network input) outputs. */
typedef struct {
  uint32_t h, w, c, rank, scale;
  int32_t zp;
} qgt_tensor;

static qgt_tensor tensor_of(const qgt_model *m, int at) {
  qgt_tensor t;
  if (at < 0) {
    t.h = m->in_h;
    t.w = m->in_w;
    t.c = m->in_c;
    t.rank = 3;
    t.scale = m->in_scale;
    t.zp = m->in_zp;
  } else {
    const qgt_layer *p = &m->layers[at];
    t.h = p->out_h;
    t.w = p->out_w;
    t.c = p->out_c;
    t.rank = p->out_rank;
    t.scale = p->out_scale;
    t.zp = p->out_zp;
  }
  return t;
}

static qgt_status shape_layers(qgt_model *m) {
  uint32_t h, w, ch, rank = 3, i, j;
  for (i = 0; i < m->n_layers; i++) {
    qgt_layer *l = &m->layers[i];
    int last = i + 1 == m->n_layers;
    qgt_tensor in = tensor_of(m, l->in1);
    for (j = 0; j < i; j++)
      if (m->layers[j].name_len == l->name_len && !memcmp(m->layers[j].name, l->name, l->name_len))
        FAIL(QGT_ERR_HEADER, l, "the name is used twice");
    h = in.h;
    w = in.w;
    ch = in.c;
    rank = in.rank;
    l->in_h = h;
    l->in_w = w;
    l->in_c = ch;
    l->in_rank = rank;
    l->in_scale = in.scale;
    l->in_zp = in.zp;
    if (l->type == QGT_ADD) {
      qgt_tensor b = tensor_of(m, l->in2);
      if (b.h != h || b.w != w || b.c != ch || b.rank != rank)
        FAIL(QGT_ERR_SHAPE, l, "inputs: an add needs two outputs of the same shape");
      l->in2_scale = b.scale;
      l->in2_zp = b.zp;
    }
    if (l->type != QGT_DENSE && l->type != QGT_ADD && rank != 3) FAIL(QGT_ERR_SHAPE, l, "needs an image input");
    if (l->type == QGT_DENSE && rank != 1) FAIL(QGT_ERR_SHAPE, l, "dense needs a flat input (after gap or dense)");
    switch (l->type) {
      case QGT_CONV2D:
      case QGT_DEPTHWISE2D:
        l->out_h = out_size(h, l->kernel, l->stride, l->same);
        l->out_w = out_size(w, l->kernel, l->stride, l->same);
        l->out_c = l->type == QGT_CONV2D ? l->units : ch;
        if ((uint64_t)l->kernel * l->kernel * ch * (l->type == QGT_CONV2D ? l->out_c : 1u) > 0x10000000u)
          FAIL(QGT_ERR_LIMIT, l, "kernel larger than 2^28 elements");
        l->n_weights = l->kernel * l->kernel * ch * (l->type == QGT_CONV2D ? l->out_c : 1u);
        if (l->same) {
          uint32_t th = (l->out_h - 1) * l->stride + l->kernel, tw = (l->out_w - 1) * l->stride + l->kernel;
          l->pad_top = th > h ? (th - h) / 2 : 0;
          l->pad_left = tw > w ? (tw - w) / 2 : 0;
        }
        l->out_rank = 3;
        break;
      case QGT_DENSE:
        l->out_h = l->out_w = 1;
        l->out_c = l->units;
        if ((uint64_t)ch * l->out_c > 0x10000000u) FAIL(QGT_ERR_LIMIT, l, "kernel larger than 2^28 elements");
        l->n_weights = ch * l->out_c;
        l->out_rank = 1;
        break;
      case QGT_MAXPOOL:
        l->out_h = out_size(h, l->kernel, l->stride, 0);
        l->out_w = out_size(w, l->kernel, l->stride, 0);
        l->out_c = ch;
        l->out_rank = 3;
        break;
      case QGT_ADD:
        l->out_h = h;
        l->out_w = w;
        l->out_c = ch;
        l->out_rank = rank;
        break;
      default: /* gap */
        l->out_h = l->out_w = 1;
        l->out_c = ch;
        l->out_rank = 1;
    }
    if (!l->out_h || !l->out_w) FAIL(QGT_ERR_SHAPE, l, "empty output");
    if ((uint64_t)l->out_h * l->out_w * l->out_c > 0x10000000u)
      FAIL(QGT_ERR_LIMIT, l, "tensor larger than 2^28 elements");
    if (l->type <= QGT_DENSE || l->type == QGT_ADD) {
      if (last && (l->act != QGT_ACT_NONE || l->has_out || l->type != QGT_DENSE))
        FAIL(QGT_ERR_SHAPE, l, "the last layer must be dense with act none and no out");
      if (!last && !l->has_out) FAIL(QGT_ERR_SHAPE, l, "out: missing (every weight layer but the last has one)");
      l->act_min = l->act != QGT_ACT_NONE ? l->out_zp : -128;
      l->act_max = l->act == QGT_ACT_RELU6 ? relu6_max(l->out_zp, l->out_scale) : 127;
    } else {
      if (last) FAIL(QGT_ERR_SHAPE, l, "the last layer must be dense");
      l->out_scale = in.scale; /* pooling keeps its input's quantization */
      l->out_zp = in.zp;
    }
    rank = l->out_rank;
    ch = l->out_c;
  }
  if (rank != 1 || ch != m->n_classes) FAIL(QGT_ERR_SHAPE, 0, "the network's outputs differ from the number of classes");
  return QGT_OK;
}

typedef struct {
  uint32_t at, end;
  const qgt_layer *l;
} qgt_span;

static qgt_status check_sections(qgt_model *m) {
  qgt_span spans[4 * QGT_MAX_LAYERS + 1];
  uint32_t n = 0, i, j;
  for (i = 0; i < m->n_layers; i++) {
    qgt_layer *l = &m->layers[i];
    uint32_t ns, k;
    uint64_t len[4];
    uint32_t at[4];
    if (l->type > QGT_DENSE) continue;
    ns = l->per_tensor ? 1u : l->out_c;
    at[0] = l->codes;
    len[0] = ((uint64_t)l->n_weights * l->bits + 7u) / 8u;
    at[1] = l->scales;
    len[1] = 2u * (uint64_t)ns;
    at[2] = l->bias;
    len[2] = 4u * (uint64_t)l->out_c;
    at[3] = l->zero_points;
    len[3] = l->has_zero_points ? 4u * (uint64_t)ns : 0u;
    for (k = 0; k < 4; k++) {
      if (k == 3 && !l->has_zero_points) continue;
      if (at[k] % 4u || (uint64_t)at[k] + len[k] > m->payload_len)
        FAILV(QGT_ERR_SECTION, l, "a section lies outside the payload or is not 4-byte aligned, offset ", at[k]);
      spans[n].at = at[k];
      spans[n].end = at[k] + (uint32_t)len[k];
      spans[n].l = l;
      n++;
    }
  }
  spans[n].at = m->act_scales; /* the activation-scale table (read_act_scales checked its bounds) */
  spans[n].end = m->act_scales + m->act_scales_len;
  spans[n].l = 0;
  n++;
  for (i = 0; i < n; i++) /* no two sections overlap (n is small) */
    for (j = i + 1; j < n; j++)
      if (spans[i].at < spans[j].end && spans[j].at < spans[i].end && spans[i].end > spans[i].at &&
          spans[j].end > spans[j].at)
        FAIL(QGT_ERR_SECTION, spans[j].l, "sections overlap");
  return QGT_OK;
}

/* Scales finite and positive, zero points in -255..255, multipliers representable, and no
 * accumulator that could leave int32. */
static qgt_status check_values(qgt_model *m) {
  uint32_t i, c;
  for (i = 0; i < m->n_layers; i++) {
    qgt_layer *l = &m->layers[i];
    uint32_t ns, window;
    int64_t wmax = 0, bmax = 0;
    const uint8_t *p = m->payload;
    if (l->type == QGT_ADD) {
      int32_t mm[6];
      if (!add_multipliers(l->in_scale, l->in2_scale, l->out_scale, mm))
        FAIL(QGT_ERR_VALUE, l, "the add's output multiplier is >= 2^30");
      continue;
    }
    if (l->type > QGT_DENSE) continue;
    ns = l->per_tensor ? 1u : l->out_c;
    for (c = 0; c < ns; c++) {
      uint64_t mm;
      int e;
      int32_t m0, sh;
      uint32_t h = rd_u16(p + l->scales + 2u * c);
      if (!f16_parts(h, &mm, &e)) FAILV(QGT_ERR_VALUE, l, "a float16 scale is not finite and positive: scales[", c);
      if (l->has_out && !requant_multiplier(l->in_scale, h, l->out_scale, &m0, &sh))
        FAILV(QGT_ERR_VALUE, l, "requantization multiplier >= 2^30 in channel ", c);
    }
    /* the largest |code - zero point|: codes span [qmin, qmin + 2^bits - 1] (1 bit: -1, 1) */
    for (c = 0; c < ns; c++) {
      int32_t zp = l->has_zero_points ? rd_i32(p + l->zero_points + 4u * c) : 0;
      int64_t lo = l->bits == 1 ? -1 : l->qmin, hi = l->bits == 1 ? 1 : l->qmin + (1 << l->bits) - 1;
      int64_t a = lo - zp, b = hi - zp;
      if (zp < lo || zp > hi) FAILV(QGT_ERR_VALUE, l, "a zero point outside the code range: zeroPoints[", c);
      if (a < 0) a = -a;
      if (b < 0) b = -b;
      if (a > wmax) wmax = a;
      if (b > wmax) wmax = b;
    }
    for (c = 0; c < l->out_c; c++) {
      int64_t b = rd_i32(p + l->bias + 4u * c);
      if (b < 0) b = -b;
      if (b > bmax) bmax = b;
    }
    window = l->type == QGT_DENSE ? l->in_c : l->kernel * l->kernel * (l->type == QGT_CONV2D ? l->in_c : 1u);
    if ((uint64_t)window * 255u * (uint64_t)wmax + (uint64_t)bmax > 2147483647u)
      FAIL(QGT_ERR_VALUE, l, "the int32 accumulator could overflow");
  }
  return QGT_OK;
}

/* Tensor t of the memory plan: 0 is the input, t > 0 layer t - 1's output (the last layer's
 * output is the logits, outside the arena: 0 bytes). */
static size_t tensor_bytes(const qgt_model *m, uint32_t t) {
  const qgt_layer *l;
  if (t == 0) return (size_t)m->in_h * m->in_w * m->in_c;
  if (t == m->n_layers) return 0;
  l = &m->layers[t - 1];
  return (size_t)l->out_h * l->out_w * l->out_c;
}

static size_t *tensor_off(qgt_model *m, uint32_t t) {
  return t == 0 ? &m->in_off : &m->layers[t - 1].out_off;
}

/* The arena: an activation region, then per-block weight scratch. A chain (no layer names its
 * inputs) ping-pongs: the input at the start of one region of max(input + output) bytes, each
 * layer writing to the other end, so the next layer's input is already in place. A graph keeps
 * each tensor alive from the layer that writes it to the last layer that reads it, and places
 * the tensors largest first, each at the lowest offset where it overlaps no tensor alive at the
 * same time (TFLite Micro's greedy planner). */
static qgt_status plan_arena(qgt_model *m) {
  size_t act = 0, scratch = 0;
  uint32_t i, j, n = m->n_layers + 1; /* tensor 0 is the input, tensor i + 1 layer i's output */
  int graph = 0;
  for (i = 0; i < m->n_layers; i++) {
    const qgt_layer *l = &m->layers[i];
    size_t in = (size_t)l->in_h * l->in_w * l->in_c, out = (size_t)l->out_h * l->out_w * l->out_c;
    size_t s = 0;
    if (in + out > act) act = in + out;
    if (l->type <= QGT_DENSE) {
      size_t taps = l->type == QGT_DENSE ? 1u : (size_t)l->kernel * l->kernel;
      size_t per = l->type == QGT_DEPTHWISE2D ? taps : taps * l->in_c;
      s = ((QGT_BLOCK * per * sizeof(int16_t) + 7u) & ~(size_t)7u) + QGT_BLOCK * taps * sizeof(int32_t);
    }
    if (s > scratch) scratch = s;
    if (l->in1 != (int32_t)i - 1 || l->type == QGT_ADD) graph = 1;
  }
  m->scratch_bytes = ((scratch + 7u) & ~(size_t)7u) + 8u; /* + 8: the scratch is aligned inside */
  if (!graph) {
    m->act_bytes = (act + 7u) & ~(size_t)7u;
    m->in_off = 0;
    for (i = 0; i < m->n_layers; i++) {
      qgt_layer *l = &m->layers[i];
      l->out_off = i % 2u ? 0u : m->act_bytes - (size_t)l->out_h * l->out_w * l->out_c;
    }
    return QGT_OK;
  } else {
    /* little stack (qgt_load's frame may hold this inlined): offsets go straight into the
     * model, sizes come from the shapes, and only the last reader of each tensor is kept */
    uint16_t last[QGT_MAX_LAYERS + 1];
    uint8_t placed[QGT_MAX_LAYERS + 1];
    uint64_t total = 0;
    for (i = 0; i < n; i++) {
      last[i] = (uint16_t)i; /* tensor i is written at step i (the input at step 0) */
      placed[i] = 0;
      total += tensor_bytes(m, i);
    }
    for (i = 0; i < m->n_layers; i++) { /* layer i reads at step i + 1 */
      const qgt_layer *l = &m->layers[i];
      last[l->in1 + 1] = (uint16_t)(i + 1);
      if (l->type == QGT_ADD) last[l->in2 + 1] = (uint16_t)(i + 1);
    }
    if (total > 0x7fffffffu) FAIL(QGT_ERR_LIMIT, 0, "activations larger than 2^31 bytes");
    act = 0;
    for (i = 0; i < n; i++) {
      uint32_t t = n;
      size_t o = 0, size;
      int moved;
      for (j = 0; j < n; j++) /* the largest unplaced tensor, the first of equals */
        if (!placed[j] && (t == n || tensor_bytes(m, j) > tensor_bytes(m, t))) t = j;
      size = tensor_bytes(m, t);
      do { /* bump past every placed tensor alive at the same time that it would overlap */
        moved = 0;
        for (j = 0; j < n; j++) {
          size_t sj = tensor_bytes(m, j), oj = *tensor_off(m, j);
          if (placed[j] && sj && size && j <= last[t] && t <= last[j] && o < oj + sj && oj < o + size) {
            o = oj + sj;
            moved = 1;
          }
        }
      } while (moved);
      *tensor_off(m, t) = o;
      placed[t] = 1;
      if (o + size > act) act = o + size;
    }
    m->act_bytes = (act + 7u) & ~(size_t)7u;
    return QGT_OK;
  }
}

qgt_status qgt_load(qgt_model *m, const uint8_t *b, size_t size) {
  uint32_t version, flags, hlen, pre, payload = 0;
  qgt_status st;
  if (!m) return QGT_ERR_ARGUMENT;
  memset(m, 0, sizeof *m);
  if (!b) FAIL(QGT_ERR_ARGUMENT, 0, "no model bytes");
  if (size < 12) FAIL(QGT_ERR_TRUNCATED, 0, "truncated: shorter than the 12-byte preamble");
  if (memcmp(b, "QGTM", 4)) FAIL(QGT_ERR_MAGIC, 0, "wrong magic (not a qgt model)");
  version = rd_u16(b + 4);
  if (version != 4)
    FAILV(QGT_ERR_VERSION, 0,
          "this runtime reads format version 4 (deno task export --upgrade converts older files); got ",
          version);
  flags = rd_u16(b + 6);
  if (flags) FAILV(QGT_ERR_FLAGS, 0, "flags: expected 0, got ", flags);
  pre = 16u;
  if (size < pre) FAIL(QGT_ERR_TRUNCATED, 0, "truncated: shorter than the preamble");
  hlen = rd_u32(b + 8);
  if ((uint64_t)pre + hlen > size) FAIL(QGT_ERR_TRUNCATED, 0, "truncated: the header does not fit");
  if (hlen % 4u) FAIL(QGT_ERR_HEADER, 0, "header length is not a multiple of 4");
  if (rd_u32(b + 12) != crc32_update(crc32_update(0, b, 12), b + 16, size - 16))
    FAIL(QGT_ERR_CHECKSUM, 0, "checksum mismatch: the file is damaged or truncated");
  m->version = version;
  if ((st = parse_header(m, b + pre, hlen, &payload)) != QGT_OK) return st;
  if ((uint64_t)payload != size - pre - hlen)
    FAILV(QGT_ERR_TRUNCATED, 0, "truncated or padded payload: the header says ", payload);
  m->payload = b + pre + hlen;
  m->payload_len = payload;
  if ((st = read_act_scales(m)) != QGT_OK) return st;
  if ((st = shape_layers(m)) != QGT_OK) return st;
  if ((st = check_sections(m)) != QGT_OK) return st;
  if ((st = check_values(m)) != QGT_OK) return st;
  return plan_arena(m);
}

size_t qgt_arena_bytes(const qgt_model *m) { return m ? m->act_bytes + m->scratch_bytes : 0; }

size_t qgt_activation_bytes(const qgt_model *m) { return m ? m->act_bytes : 0; }

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

/* The weights (code - zero point) of output channels co..co+n-1 and their sums per tap. Kernels
 * are [kh][kw][cin][cout] (conv2d; dense as [in][out]) and [kh][kw][c] (depthwise), so at each
 * tap and input channel the n channels' codes are n adjacent elements: n * bits contiguous bits,
 * read at once. Layout: with one input per tap (depthwise, or a one-channel input) tap-major,
 * w[t * n + j]; else one row per channel, w[j * taps * cin + t * cin + ci], for dot products. */
static void block_weights(const qgt_model *m, const qgt_layer *l, uint32_t co, uint32_t n,
                          int16_t *w, int32_t *wsum) {
  const uint8_t *codes = m->payload + l->codes;
  uint32_t dw = l->type == QGT_DEPTHWISE2D, taps = l->type == QGT_DENSE ? 1u : l->kernel * l->kernel;
  uint32_t cin = dw ? 1u : l->in_c, stride = dw ? l->in_c : l->out_c, bits = l->bits;
  uint32_t mask = (1u << bits) - 1u, t, ci, j, per = taps * cin, tapmajor = cin == 1;
  uint32_t end = (uint32_t)(((uint64_t)l->n_weights * bits + 7u) / 8u); /* the section's length */
  /* code = c * mul + lo: 1 bit stores -1 / +1 as 0 / 1, wider codes store code - qmin */
  int32_t mul = bits == 1 ? 2 : 1, base[QGT_BLOCK], lo = bits == 1 ? -1 : l->qmin;
  for (j = 0; j < n; j++) {
    uint32_t zc = l->per_tensor ? 0u : co + j;
    base[j] = lo - (l->has_zero_points ? rd_i32(m->payload + l->zero_points + 4u * zc) : 0);
  }
  for (t = 0; t < taps; t++) {
    int32_t ws[QGT_BLOCK] = {0};
    for (ci = 0; ci < cin; ci++) {
      uint32_t pos = ((t * cin + ci) * stride + co) * bits, byte = pos >> 3, off = pos & 7u;
      uint32_t nbytes = (off + n * bits + 7u) >> 3, k;
      int16_t *wp = tapmajor ? w + t * n : w + t * cin + ci;
      uint32_t wstep = tapmajor ? 1u : per;
      uint64_t v = 0;
      if (byte + 8u <= end) { /* eight bytes at once where the section has them */
        const uint8_t *c8 = codes + byte;
        v = (uint64_t)rd_u32(c8) | ((uint64_t)rd_u32(c8 + 4) << 32);
      } else {
        for (k = 0; k < nbytes; k++) v |= (uint64_t)codes[byte + k] << (8u * k);
      }
      v >>= off;
      for (j = 0; j < n; j++, v >>= bits, wp += wstep) {
        int32_t x = (int32_t)((uint32_t)v & mask) * mul + base[j];
        *wp = (int16_t)x;
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

#ifdef QGT_SSE2
const char *qgt_kernels(void) { return "sse2"; }
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

/* The requantization of a block of output channels. */
typedef struct {
  uint32_t co, n;
  int32_t bias[QGT_BLOCK], m0[QGT_BLOCK], shift[QGT_BLOCK];
} qgt_block;

/* Output channels co..co+n-1 of a 1x1 convolution (no padding can apply): per pixel, the dot
 * products of its input channels with each channel's weights (base: bias - zp_in * sum w). */
static void conv1x1(const qgt_layer *l, const int8_t *x, int8_t *y, const int16_t *w,
                    const qgt_block *b) {
  uint32_t oy, ox, j, cin = l->in_c;
  int32_t acc[QGT_BLOCK];
  for (oy = 0; oy < l->out_h; oy++)
    for (ox = 0; ox < l->out_w; ox++) {
      const int8_t *xp = x + ((oy * l->stride) * l->in_w + ox * l->stride) * cin;
      int8_t *yp = y + (oy * l->out_w + ox) * l->out_c + b->co;
      if (b->n == QGT_BLOCK) {
        dot_block(xp, w, cin, cin, acc);
      } else {
        for (j = 0; j < b->n; j++) acc[j] = dot(xp, w + j * cin, cin);
      }
      for (j = 0; j < b->n; j++) yp[j] = requant(b->bias[j] + acc[j], b->m0[j], b->shift[j], l);
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
  for (j = 0; j < n; j++)
    for (wall[j] = 0, t = 0; t < taps; t++) wall[j] += wsum[j * taps + t];
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
      for (j = 0; j < n; j++) yp[j] = requant(b->bias[j] + acc[j] - z[j], b->m0[j], b->shift[j], l);
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
      for (j = 0; j < b->n; j++) yp[j] = requant(b->bias[j] + acc[j] - z[j], b->m0[j], b->shift[j], l);
    }
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
  }
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
    load_block(m, l, co, w, wsum, &b);
    for (j = 0; j < b.n; j++) {
      int32_t acc = b.bias[j] + dot(x, w + j * l->in_c, l->in_c) - l->in_zp * wsum[j];
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

/*
 * errors.c: one-line error messages, statuses, little-endian reads and the CRC-32.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

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

/*
 * header.c: reading and validating a model: the strict JSON reader, the header, shapes, sections, values, and qgt_load.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

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

/* One key of a layer (its name k, its value at c): sets *bit to the key's field bit. */
static qgt_status parse_layer_key(qgt_model *m, jcur *c, qgt_layer *l, uint32_t idx, const char *k,
                                  uint32_t klen, uint32_t *bit, int64_t *qmin, int *n_inputs) {
  int64_t v;
  if (KEY("name")) {
    *bit = F_NAME;
    if (!jstring(c, &l->name, &l->name_len) || !l->name_len)
      FAIL(QGT_ERR_HEADER, 0, "header: a layer name is not a non-empty string");
  } else if (KEY("type")) {
    const char *t;
    uint32_t tl;
    *bit = F_TYPE;
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
    *bit = KEY("filters") ? F_FILTERS : F_UNITS;
    if (!jint(c, 1, 65536, &v)) FAIL(QGT_ERR_HEADER, l, "filters/units: expected an integer in 1..65536");
    l->units = (uint32_t)v;
  } else if (KEY("kernel") || KEY("size")) {
    *bit = KEY("kernel") ? F_KERNEL : F_SIZE;
    if (!jint(c, 1, 8192, &v)) FAIL(QGT_ERR_HEADER, l, "kernel/size: expected an integer in 1..8192");
    l->kernel = (uint32_t)v;
  } else if (KEY("stride")) {
    *bit = F_STRIDE;
    if (!jint(c, 1, 8192, &v)) FAIL(QGT_ERR_HEADER, l, "stride: expected an integer in 1..8192");
    l->stride = (uint32_t)v;
  } else if (KEY("padding") || KEY("act")) {
    const char *t;
    uint32_t tl;
    int pad = KEY("padding");
    *bit = pad ? F_PADDING : F_ACT;
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
    *bit = F_BITS;
    if (!jint(c, 1, 8, &v)) FAIL(QGT_ERR_HEADER, l, "bits: expected an integer in 1..8");
    l->bits = (uint8_t)v;
  } else if (KEY("qmin")) {
    *bit = F_QMIN;
    if (!jint(c, -128, 0, qmin)) FAIL(QGT_ERR_HEADER, l, "qmin: expected an integer in -128..0");
  } else if (KEY("perTensor")) {
    *bit = F_PERTENSOR;
    ws(c);
    if (c->end - c->p < 4 || memcmp(c->p, "true", 4)) FAIL(QGT_ERR_HEADER, l, "perTensor: expected true");
    c->p += 4;
    l->per_tensor = 1;
  } else if (KEY("codes") || KEY("scales") || KEY("zeroPoints") || KEY("bias")) {
    uint32_t *dst = KEY("codes") ? &l->codes : KEY("scales") ? &l->scales
                    : KEY("bias") ? &l->bias : &l->zero_points;
    *bit = KEY("codes") ? F_CODES : KEY("scales") ? F_SCALES : KEY("bias") ? F_BIAS : F_ZP;
    if (!jint(c, 0, 0xffffffffll, &v)) FAIL(QGT_ERR_HEADER, l, "section offset: expected a non-negative integer");
    *dst = (uint32_t)v;
    if (*bit == F_ZP) l->has_zero_points = 1;
  } else if (KEY("inputs")) {
    *bit = F_INPUTS;
    *n_inputs = parse_inputs(m, c, l, idx);
    if (*n_inputs < 0) FAIL(QGT_ERR_HEADER, l, "inputs: a name that is not an earlier layer or \"input\"");
    if (!*n_inputs) FAIL(QGT_ERR_HEADER, l, "inputs: expected a list of one or two layer names");
  } else if (KEY("outZp")) {
    *bit = F_OUT; /* its scale is in the actScales table (read_act_scales) */
    if (!jint(c, -128, 127, &v)) FAIL(QGT_ERR_HEADER, l, "outZp: expected an integer in -128..127");
    l->out_zp = (int32_t)v;
    l->has_out = 1;
  } else {
    FAIL(QGT_ERR_HEADER, l, "unknown key");
  }
  return QGT_OK;
}

static qgt_status parse_layer(qgt_model *m, jcur *c, qgt_layer *l, uint32_t idx) {
  uint32_t seen = 0, need, allowed;
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
      qgt_status st = parse_layer_key(m, c, l, idx, k, klen, &bit, &qmin, &n_inputs);
      if (st != QGT_OK) return st;
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

/*
 * plan.c: the memory planner: where each activation lies in the arena, and how much scratch the kernels need.
 * A part of qgt_runtime.c (compiled as one translation unit with it; not built on its own).
 */

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
    size_t s = layer_scratch_bytes(l);
    if (in + out > act) act = in + out;
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

size_t qgt_arena_bytes(const qgt_model *m) { return m ? m->act_bytes + m->scratch_bytes : 0; }

size_t qgt_activation_bytes(const qgt_model *m) { return m ? m->act_bytes : 0; }

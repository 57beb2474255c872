/*
 * qgt's native training kernels: a small shim over oneDNN's C API (oneDNN 2.6, Debian's
 * libdnnl-dev), called from Deno through FFI on tensors that live in tfjs-backend-wasm's
 * WebAssembly.Memory (no copies). Layouts are tfjs's: activations NHWC, convolution weights
 * HWIO ([kh, kw, in, out]), depthwise weights [kh, kw, channels, multiplier].
 *
 * Each primitive is created once per shape and kept in a cache (a convolution's weights in the
 * blocked layout oneDNN's JIT kernels want, reordered from and to tfjs's layout on each call;
 * the weights are small next to the activations, which stay NHWC so that no activation is ever
 * reordered). Every entry point validates its arguments and returns 0 or a negative error code
 * (-1 bad arguments, -2 out of memory, -(100 + dnnl_status_t) a oneDNN failure); qn_error()
 * says what failed.
 *
 * Threads: tfjs's data-parallel workers call in from several threads at once. Each thread has
 * its own stream and its own cache (freed when the thread ends; the least recently used entry
 * makes room when it is full), so no primitive, weight buffer or scratchpad is ever shared.
 */
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void omp_set_num_threads(int);
int omp_get_max_threads(void);

static dnnl_engine_t engine;
static _Thread_local char error_text[256];
static int omp_threads = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int thread_init(void);

#define CHECK(call)                                                                    \
  do {                                                                                 \
    dnnl_status_t s_ = (call);                                                         \
    if (s_ != dnnl_success) {                                                          \
      snprintf(error_text, sizeof error_text, "%s failed: status %d", #call, (int)s_); \
      return -(100 + (int)s_);                                                         \
    }                                                                                  \
  } while (0)

/** What the last failing call said ("" when nothing failed). */
const char *qn_error(void) { return error_text; }

/** oneDNN's version, "2.6.3". */
const char *qn_version(void) {
  static char v[32];
  const dnnl_version_t *d = dnnl_version();
  snprintf(v, sizeof v, "%d.%d.%d", d->major, d->minor, d->patch);
  return v;
}

/** The instruction set oneDNN dispatches to here ("avx2", "avx512_core", ...). */
const char *qn_isa(void) {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

/**
 * Creates the CPU engine (once per process) and this thread's stream; the first call sets the
 * OpenMP threads inside each kernel to `threads` (later calls, from workers loading the same
 * library, keep what qn_set_threads set).
 */
int qn_init(int threads) {
  if (threads < 1 || threads > 256) return -1;
  pthread_mutex_lock(&lock);
  dnnl_status_t s = dnnl_success;
  if (!engine) {
    omp_threads = threads;
    s = dnnl_engine_create(&engine, dnnl_cpu, 0);
  }
  pthread_mutex_unlock(&lock);
  if (s != dnnl_success) {
    snprintf(error_text, sizeof error_text, "dnnl_engine_create failed: status %d", (int)s);
    return -(100 + (int)s);
  }
  return thread_init();
}

/** Sets the OpenMP threads each kernel uses. */
int qn_set_threads(int threads) {
  if (threads < 1 || threads > 256) return -1;
  omp_threads = threads;
  omp_set_num_threads(threads);
  return 0;
}

/* ------------------------------------------------------------------ the primitive cache */

enum { KEY_INTS = 20, CACHE_SIZE = 256 };

typedef struct {
  int used;
  int key[KEY_INTS];
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  /* the weights (or weight gradients) in the primitive's layout, with reorders from and to
     tfjs's layout (NULL when the primitive takes tfjs's layout as it is) */
  dnnl_memory_desc_t user_w, prim_w;
  dnnl_primitive_t to_prim, to_user;
  void *w_buf;
  void *scratch;
  /* max pooling's gradient: the forward pass that makes its workspace, into tmp */
  dnnl_primitive_desc_t fwd_pd;
  void *tmp;
  const char *impl;
  unsigned long last_used;
} entry;

/** A thread's stream and primitives. */
typedef struct {
  dnnl_stream_t stream;
  entry entries[CACHE_SIZE];
  unsigned long tick;
} thread_state;

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static _Thread_local thread_state *state;
static _Thread_local const char *last_impl = "";

static void entry_free(entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->pd) dnnl_primitive_desc_destroy(e->pd);
  if (e->to_prim) dnnl_primitive_destroy(e->to_prim);
  if (e->to_user) dnnl_primitive_destroy(e->to_user);
  if (e->fwd_pd) dnnl_primitive_desc_destroy(e->fwd_pd);
  free(e->w_buf);
  free(e->scratch);
  free(e->tmp);
  memset(e, 0, sizeof *e);
}

/** A thread's state when the thread ends. */
static void state_free(void *p) {
  thread_state *t = p;
  for (int i = 0; i < CACHE_SIZE; i++) entry_free(&t->entries[i]);
  if (t->stream) dnnl_stream_destroy(t->stream);
  free(t);
}

static void make_key(void) { pthread_key_create(&state_key, state_free); }

/** This thread's stream and cache, made on its first call. */
static int thread_init(void) {
  if (state) return 0;
  pthread_once(&state_once, make_key);
  thread_state *t = calloc(1, sizeof *t);
  if (!t) return -2;
  omp_set_num_threads(omp_threads); /* OpenMP's thread count is per calling thread */
  if (dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
    snprintf(error_text, sizeof error_text, "dnnl_stream_create failed");
    free(t);
    return -101;
  }
  state = t;
  pthread_setspecific(state_key, t);
  return 0;
}

/** Makes this thread's state (and its OpenMP thread count) ready: 0, or an error code. */
int qn_thread_ready(void) { return engine ? thread_init() : -1; }

/** The implementation oneDNN chose for the last primitive run (for --profile). */
const char *qn_last_impl(void) { return last_impl; }

/** How many primitives are cached. */
int qn_cached(void) {
  int n = 0;
  for (int i = 0; state && i < CACHE_SIZE; i++) n += state->entries[i].used;
  return n;
}

static unsigned key_hash(const int *k) {
  unsigned h = 2166136261u;
  for (int i = 0; i < KEY_INTS; i++) h = (h ^ (unsigned)k[i]) * 16777619u;
  return h;
}

/**
 * This thread's cache entry for `key` (*found = 1), or a free one (*found = 0; the caller
 * creates the primitive and sets used): when every slot is taken, the least recently used
 * entry is freed for it.
 */
static entry *slot(const int *key, int *found) {
  unsigned h = key_hash(key);
  entry *lru = NULL;
  state->tick++;
  for (int i = 0; i < CACHE_SIZE; i++) {
    entry *e = &state->entries[(h + (unsigned)i) % CACHE_SIZE];
    if (!e->used) {
      memset(e, 0, sizeof *e);
      memcpy(e->key, key, sizeof e->key);
      *found = 0;
      return e;
    }
    if (!memcmp(e->key, key, sizeof e->key)) {
      e->last_used = state->tick;
      *found = 1;
      return e;
    }
    if (!lru || e->last_used < lru->last_used) lru = e;
  }
  entry_free(lru);
  memcpy(lru->key, key, sizeof lru->key);
  *found = 0;
  return lru;
}

/**
 * This thread's primitive of kind `kind` for the n parameters p, made by create(entry, p, dir)
 * when it is not cached; NULL with *err set when creating it failed (the slot is free again).
 */
static entry *cached(int kind, const int *p, int n, int dir, int (*create)(entry *, const int *, int),
                     int *err) {
  int key[KEY_INTS] = {0}, found;
  key[0] = kind;
  memcpy(key + 1, p, sizeof(int) * (size_t)n);
  entry *e = slot(key, &found);
  if (!found) {
    *err = create(e, p, dir);
    if (*err) {
      entry_free(e); /* what was made of it */
      return NULL;
    }
    e->used = 1;
    e->last_used = state->tick;
  }
  return e;
}

/* ------------------------------------------------------------------ convolutions */

/* The integer parameters of a convolution, in this order (qn_conv's `p`). */
enum {
  P_N, P_H, P_W, P_C, P_OH, P_OW, P_OC, P_KH, P_KW, P_SH, P_SW, P_PT, P_PL, P_PB, P_PR,
  P_DEPTHWISE, P_BIAS, P_ACT, P_COUNT
};
enum { DIR_FORWARD = 0, DIR_BACKWARD_DATA = 1, DIR_BACKWARD_WEIGHTS = 2 };
enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU6 = 2 };

static int valid_conv(const int *p) {
  for (int i = 0; i < P_COUNT; i++) if (p[i] < 0) return 0;
  if (!p[P_N] || !p[P_H] || !p[P_W] || !p[P_C] || !p[P_OH] || !p[P_OW] || !p[P_OC]) return 0;
  if (!p[P_KH] || !p[P_KW] || !p[P_SH] || !p[P_SW] || p[P_ACT] > ACT_RELU6) return 0;
  if (p[P_DEPTHWISE] > 1 || p[P_BIAS] > 1) return 0;
  if (p[P_DEPTHWISE] && p[P_OC] % p[P_C]) return 0;
  /* the output size the padding gives */
  if ((p[P_H] + p[P_PT] + p[P_PB] - p[P_KH]) / p[P_SH] + 1 != p[P_OH]) return 0;
  if ((p[P_W] + p[P_PL] + p[P_PR] - p[P_KW]) / p[P_SW] + 1 != p[P_OW]) return 0;
  if (p[P_H] + p[P_PT] + p[P_PB] < p[P_KH] || p[P_W] + p[P_PL] + p[P_PR] < p[P_KW]) return 0;
  return 1;
}

/** The forward descriptor of a convolution (also the hint of its backward primitives). */
static int conv_desc(const int *p, int dir, dnnl_convolution_desc_t *cd,
                     dnnl_memory_desc_t *src, dnnl_memory_desc_t *wany, dnnl_memory_desc_t *wuser,
                     dnnl_memory_desc_t *bias, dnnl_memory_desc_t *dst) {
  dnnl_dims_t sd = {p[P_N], p[P_C], p[P_H], p[P_W]}, dd = {p[P_N], p[P_OC], p[P_OH], p[P_OW]};
  CHECK(dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, dnnl_nhwc));
  CHECK(dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, dnnl_nhwc));
  if (p[P_DEPTHWISE]) {
    dnnl_dims_t wd = {p[P_C], p[P_OC] / p[P_C], 1, p[P_KH], p[P_KW]};
    CHECK(dnnl_memory_desc_init_by_tag(wuser, 5, wd, dnnl_f32, dnnl_hwigo));
    CHECK(dnnl_memory_desc_init_by_tag(wany, 5, wd, dnnl_f32, dnnl_format_tag_any));
  } else {
    dnnl_dims_t wd = {p[P_OC], p[P_C], p[P_KH], p[P_KW]};
    CHECK(dnnl_memory_desc_init_by_tag(wuser, 4, wd, dnnl_f32, dnnl_hwio));
    CHECK(dnnl_memory_desc_init_by_tag(wany, 4, wd, dnnl_f32, dnnl_format_tag_any));
  }
  dnnl_dims_t bd = {p[P_OC]};
  CHECK(dnnl_memory_desc_init_by_tag(bias, 1, bd, dnnl_f32, dnnl_a));
  dnnl_dims_t strides = {p[P_SH], p[P_SW]}, pl = {p[P_PT], p[P_PL]}, pr = {p[P_PB], p[P_PR]};
  const dnnl_memory_desc_t *b = p[P_BIAS] ? bias : NULL;
  if (dir == DIR_FORWARD) {
    CHECK(dnnl_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct,
                                             src, wany, b, dst, strides, pl, pr));
  } else if (dir == DIR_BACKWARD_DATA) {
    CHECK(dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, src, wany, dst,
                                                   strides, pl, pr));
  } else {
    CHECK(dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, src, wany, b,
                                                      dst, strides, pl, pr));
  }
  return 0;
}

/** Creates the cached primitive of a convolution in direction `dir`. */
static int conv_create(entry *e, const int *p, int dir) {
  dnnl_convolution_desc_t cd, fd;
  dnnl_memory_desc_t src, wany, wuser, bias, dst;
  int r = conv_desc(p, dir, &cd, &src, &wany, &wuser, &bias, &dst);
  if (r) return r;
  dnnl_primitive_attr_t attr;
  CHECK(dnnl_primitive_attr_create(&attr));
  CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
  dnnl_primitive_desc_t hint = NULL;
  if (dir != DIR_FORWARD) {
    int fp[P_COUNT];
    memcpy(fp, p, sizeof fp);
    fp[P_ACT] = ACT_NONE;
    r = conv_desc(fp, DIR_FORWARD, &fd, &src, &wany, &wuser, &bias, &dst);
    if (r) return r;
    CHECK(dnnl_primitive_desc_create(&hint, &fd, NULL, engine, NULL));
  } else if (p[P_ACT] != ACT_NONE) {
    dnnl_post_ops_t ops;
    CHECK(dnnl_post_ops_create(&ops));
    if (p[P_ACT] == ACT_RELU) CHECK(dnnl_post_ops_append_eltwise(ops, 1.f, dnnl_eltwise_relu, 0.f, 0.f));
    else CHECK(dnnl_post_ops_append_eltwise(ops, 1.f, dnnl_eltwise_clip_v2, 0.f, 6.f));
    CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
    dnnl_post_ops_destroy(ops);
  }
  CHECK(dnnl_primitive_desc_create(&e->pd, &cd, attr, engine, hint));
  dnnl_primitive_attr_destroy(attr);
  if (hint) dnnl_primitive_desc_destroy(hint);
  CHECK(dnnl_primitive_create(&e->prim, e->pd));
  dnnl_primitive_desc_query(e->pd, dnnl_query_impl_info_str, 0, &e->impl);
  const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(
      e->pd, dir == DIR_BACKWARD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
  e->user_w = wuser;
  e->prim_w = *pw;
  if (!dnnl_memory_desc_equal(&e->user_w, &e->prim_w)) {
    e->w_buf = aligned_alloc(64, (dnnl_memory_desc_get_size(pw) + 63) / 64 * 64);
    if (!e->w_buf) return -2;
    dnnl_primitive_desc_t rpd;
    if (dir == DIR_BACKWARD_WEIGHTS) {
      CHECK(dnnl_reorder_primitive_desc_create(&rpd, pw, engine, &e->user_w, engine, NULL));
      CHECK(dnnl_primitive_create(&e->to_user, rpd));
    } else {
      CHECK(dnnl_reorder_primitive_desc_create(&rpd, &e->user_w, engine, pw, engine, NULL));
      CHECK(dnnl_primitive_create(&e->to_prim, rpd));
    }
    dnnl_primitive_desc_destroy(rpd);
  }
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
  size_t sbytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
  if (sbytes) {
    e->scratch = aligned_alloc(64, (sbytes + 63) / 64 * 64);
    if (!e->scratch) return -2;
  }
  return 0;
}

/** Runs `prim` on `n` (argument, descriptor, pointer) triples. */
static int execute(dnnl_primitive_t prim, int n, const int *args, const dnnl_memory_desc_t **mds,
                   void **ptrs) {
  dnnl_exec_arg_t a[8];
  dnnl_memory_t m[8];
  for (int i = 0; i < n; i++) {
    CHECK(dnnl_memory_create(&m[i], mds[i], engine, ptrs[i]));
    a[i].arg = args[i];
    a[i].memory = m[i];
  }
  dnnl_status_t s = dnnl_primitive_execute(prim, state->stream, n, a);
  if (s == dnnl_success) s = dnnl_stream_wait(state->stream);
  for (int i = 0; i < n; i++) dnnl_memory_destroy(m[i]);
  if (s != dnnl_success) {
    snprintf(error_text, sizeof error_text, "dnnl_primitive_execute failed: status %d", (int)s);
    return -(100 + (int)s);
  }
  return 0;
}

/**
 * A convolution (`p`: the P_* parameters). `dir` 0, forward: dst = act(conv(src, wei) + bias);
 * 1, backward data: src = the input gradient from dst (the output gradient) and wei;
 * 2, backward weights: wei (and bias, when p[P_BIAS]) = the weight (and bias) gradients from
 * src and dst. `bias` may be NULL unless p[P_BIAS].
 */
int qn_conv(int dir, const int *p, float *src, float *wei, float *bias, float *dst) {
  if (!engine || dir < 0 || dir > 2 || !p || !src || !wei || !dst) return -1;
  if (thread_init()) return -101;
  if (!valid_conv(p) || (p[P_BIAS] && !bias) || (dir != DIR_FORWARD && p[P_ACT])) return -1;
  if (dir == DIR_BACKWARD_DATA && p[P_BIAS]) return -1;
  int r;
  entry *e = cached(dir + 1, p, P_COUNT, dir, conv_create, &r);
  if (!e) return r;
  last_impl = e->impl;
  void *w = e->w_buf ? e->w_buf : wei;
  const dnnl_memory_desc_t *user_w = &e->user_w, *prim_w = &e->prim_w;
  if (e->to_prim) {
    int ra[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    const dnnl_memory_desc_t *rm[2] = {user_w, prim_w};
    void *rp[2] = {wei, w};
    r = execute(e->to_prim, 2, ra, rm, rp);
    if (r) return r;
  }
  dnnl_query_t src_q = dir == DIR_BACKWARD_DATA ? dnnl_query_diff_src_md : dnnl_query_src_md;
  dnnl_query_t dst_q = dir == DIR_FORWARD ? dnnl_query_dst_md : dnnl_query_diff_dst_md;
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(e->pd, src_q, 0);
  const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(e->pd, dst_q, 0);
  const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
  int args[6], n = 0;
  const dnnl_memory_desc_t *mds[6];
  void *ptrs[6];
#define ARG(a_, md_, p_) (args[n] = (a_), mds[n] = (md_), ptrs[n] = (p_), n++)
  ARG(dir == DIR_BACKWARD_DATA ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC, smd, src);
  ARG(dir == DIR_BACKWARD_WEIGHTS ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS, prim_w, w);
  ARG(dir == DIR_FORWARD ? DNNL_ARG_DST : DNNL_ARG_DIFF_DST, dmd, dst);
  if (p[P_BIAS]) {
    ARG(dir == DIR_FORWARD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS,
        dnnl_primitive_desc_query_md(e->pd, dir == DIR_FORWARD ? dnnl_query_weights_md
                                                                : dnnl_query_diff_weights_md, 1),
        bias);
  }
  if (e->scratch) ARG(DNNL_ARG_SCRATCHPAD, spmd, e->scratch);
#undef ARG
  r = execute(e->prim, n, args, mds, ptrs);
  if (r) return r;
  if (e->to_user) {
    int ra[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    const dnnl_memory_desc_t *rm[2] = {prim_w, user_w};
    void *rp[2] = {w, wei};
    r = execute(e->to_user, 2, ra, rm, rp);
  }
  return r;
}

/* ------------------------------------------------------------------ pooling */

/* The integer parameters of a pooling, in this order (qn_pool's `p`). */
/* (The layout of a convolution's first 15, Q_OC equal to Q_C, then whether it is max pooling.) */
enum {
  Q_N, Q_H, Q_W, Q_C, Q_OH, Q_OW, Q_OC, Q_KH, Q_KW, Q_SH, Q_SW, Q_PT, Q_PL, Q_PB, Q_PR, Q_MAX,
  Q_COUNT
};

static int valid_pool(const int *p) {
  for (int i = 0; i < Q_COUNT; i++) if (p[i] < 0) return 0;
  if (!p[Q_N] || !p[Q_H] || !p[Q_W] || !p[Q_C] || !p[Q_OH] || !p[Q_OW]) return 0;
  if (!p[Q_KH] || !p[Q_KW] || !p[Q_SH] || !p[Q_SW] || p[Q_MAX] > 1 || p[Q_OC] != p[Q_C]) return 0;
  /* every window holds at least one input pixel */
  if (p[Q_PT] >= p[Q_KH] || p[Q_PB] >= p[Q_KH] || p[Q_PL] >= p[Q_KW] || p[Q_PR] >= p[Q_KW]) return 0;
  if ((p[Q_H] + p[Q_PT] + p[Q_PB] - p[Q_KH]) / p[Q_SH] + 1 != p[Q_OH]) return 0;
  if ((p[Q_W] + p[Q_PL] + p[Q_PR] - p[Q_KW]) / p[Q_SW] + 1 != p[Q_OW]) return 0;
  if (p[Q_H] + p[Q_PT] + p[Q_PB] < p[Q_KH] || p[Q_W] + p[Q_PL] + p[Q_PR] < p[Q_KW]) return 0;
  return 1;
}

/** A pooling's descriptor: forward (`kind` inference or training) or backward (`kind` 0). */
static int pool_desc(const int *p, dnnl_prop_kind_t kind, int backward, dnnl_pooling_desc_t *d,
                     dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst) {
  dnnl_dims_t sd = {p[Q_N], p[Q_C], p[Q_H], p[Q_W]}, dd = {p[Q_N], p[Q_C], p[Q_OH], p[Q_OW]};
  CHECK(dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, dnnl_nhwc));
  CHECK(dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, dnnl_nhwc));
  dnnl_alg_kind_t alg = p[Q_MAX] ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
  dnnl_dims_t k = {p[Q_KH], p[Q_KW]}, st = {p[Q_SH], p[Q_SW]};
  dnnl_dims_t pl = {p[Q_PT], p[Q_PL]}, pr = {p[Q_PB], p[Q_PR]};
  if (backward) CHECK(dnnl_pooling_backward_desc_init(d, alg, src, dst, st, k, pl, pr));
  else CHECK(dnnl_pooling_forward_desc_init(d, kind, alg, src, dst, st, k, pl, pr));
  return 0;
}

/** Creates the cached primitives of a pooling: forward (inference) or backward. */
static int pool_create(entry *e, const int *p, int backward) {
  dnnl_pooling_desc_t d;
  dnnl_memory_desc_t src, dst;
  int r = pool_desc(p, backward ? dnnl_forward_training : dnnl_forward_inference, 0, &d, &src,
                    &dst);
  if (r) return r;
  if (!backward) {
    CHECK(dnnl_primitive_desc_create(&e->pd, &d, NULL, engine, NULL));
  } else {
    CHECK(dnnl_primitive_desc_create(&e->fwd_pd, &d, NULL, engine, NULL));
    if (p[Q_MAX]) {
      /* oneDNN's max-pooling gradient reads the argmax workspace of a training forward pass */
      CHECK(dnnl_primitive_create(&e->to_prim, e->fwd_pd));
      const dnnl_memory_desc_t *ws =
          dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_workspace_md, 0);
      e->w_buf = aligned_alloc(64, (dnnl_memory_desc_get_size(ws) + 63) / 64 * 64);
      e->tmp = aligned_alloc(64, (dnnl_memory_desc_get_size(&dst) + 63) / 64 * 64);
      if (!e->w_buf || !e->tmp) return -2;
    }
    dnnl_pooling_desc_t bd;
    r = pool_desc(p, 0, 1, &bd, &src, &dst);
    if (r) return r;
    CHECK(dnnl_primitive_desc_create(&e->pd, &bd, NULL, engine, e->fwd_pd));
  }
  CHECK(dnnl_primitive_create(&e->prim, e->pd));
  dnnl_primitive_desc_query(e->pd, dnnl_query_impl_info_str, 0, &e->impl);
  return 0;
}

/**
 * A pooling (`p`: the Q_* parameters; max or average excluding padding, NHWC). `dir` 0:
 * dst = pool(src); 1: src = the input gradient from dst (the output gradient) and `x` (the
 * forward input, which max pooling's argmax needs; NULL for average pooling).
 */
int qn_pool(int dir, const int *p, const float *x, float *src, float *dst) {
  if (!engine || dir < 0 || dir > 1 || !p || !src || !dst || !valid_pool(p)) return -1;
  if (dir == 1 && p[Q_MAX] && !x) return -1;
  if (thread_init()) return -101;
  int r;
  entry *e = cached(10 + dir, p, Q_COUNT, dir, pool_create, &r);
  if (!e) return r;
  last_impl = e->impl;
  const dnnl_memory_desc_t *pd_src, *pd_dst;
  if (dir == 0) {
    pd_src = dnnl_primitive_desc_query_md(e->pd, dnnl_query_src_md, 0);
    pd_dst = dnnl_primitive_desc_query_md(e->pd, dnnl_query_dst_md, 0);
    int a[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    const dnnl_memory_desc_t *m[2] = {pd_src, pd_dst};
    void *ptr[2] = {src, dst};
    return execute(e->prim, 2, a, m, ptr);
  }
  const dnnl_memory_desc_t *ws = NULL;
  if (e->to_prim) {
    ws = dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_workspace_md, 0);
    int a[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
    const dnnl_memory_desc_t *m[3] = {
        dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_src_md, 0),
        dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_dst_md, 0), ws};
    void *ptr[3] = {(void *)x, e->tmp, e->w_buf};
    r = execute(e->to_prim, 3, a, m, ptr);
    if (r) return r;
  }
  pd_src = dnnl_primitive_desc_query_md(e->pd, dnnl_query_diff_src_md, 0);
  pd_dst = dnnl_primitive_desc_query_md(e->pd, dnnl_query_diff_dst_md, 0);
  int a[3] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE};
  const dnnl_memory_desc_t *m[3] = {pd_src, pd_dst, ws};
  void *ptr[3] = {src, dst, e->w_buf};
  return execute(e->prim, ws ? 3 : 2, a, m, ptr);
}

/* ------------------------------------------------------------------ matrix products */

/**
 * C[m x n] = op(A) op(B), row-major, op transposing when ta / tb: oneDNN's sgemm (its JIT
 * kernels, the threads of qn_set_threads).
 */
int qn_gemm(int ta, int tb, int m, int n, int k, const float *a, const float *b, float *c) {
  if (!engine || m < 1 || n < 1 || k < 1 || !a || !b || !c) return -1;
  if (thread_init()) return -101;
  last_impl = "sgemm";
  CHECK(dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a, ta ? m : k, b, tb ? k : n,
                   0.f, c, n));
  return 0;
}

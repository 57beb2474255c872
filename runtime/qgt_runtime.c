/*
 * qgt_runtime.c: the integer interpreter of model.qgt in portable C99 (see qgt_runtime.h and
 * docs/format.md, whose rules this follows line by line). No heap, no floating point, no
 * library calls beyond <string.h>'s memcpy/memset/memcmp; every byte of the file is checked
 * before it is used.
 */
#include "qgt_runtime.h"

#include <string.h>

/* The runtime is one translation unit built from its parts (build this file; include
 * qgt_runtime.h), so every internal function stays static and a firmware links one object. */
static qgt_status plan_arena(qgt_model *m);
static size_t layer_scratch_bytes(const qgt_layer *l);

#include "src/errors.c"
#include "src/numbers.c"
#include "src/header.c"
#include "src/weights.c"
#include "src/requant.c"
#include "src/kernels.c"
#include "src/plan.c"

/*
 * Test driver for qgt_runtime under AddressSanitizer / UndefinedBehaviorSanitizer: loads every
 * model of a corpus file (records of a uint32 little-endian length, then that many bytes) and
 * runs each one that loads on a fixed image. A crash or a sanitizer report fails the test; the
 * driver prints how many files loaded and how many were rejected, by status.
 *
 *   cc -std=c99 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
 *      -I runtime runtime/qgt_runtime.c runtime/test/qgt_fuzz.c -o qgt_fuzz
 *   ./qgt_fuzz corpus.bin
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgt_runtime.h"

int main(int argc, char **argv) {
  FILE *f;
  unsigned long counts[16] = {0}, ran = 0, i;
  qgt_model *m = malloc(sizeof *m);
  if (argc != 2 || !m || !(f = fopen(argv[1], "rb"))) {
    fprintf(stderr, "usage: qgt_fuzz corpus.bin\n");
    return 2;
  }
  for (;;) {
    unsigned char h[4];
    uint32_t len;
    uint8_t *bytes;
    qgt_status st;
    if (fread(h, 1, 4, f) != 4) break;
    len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    /* each file in its own exact-size allocation, so any read past its end is caught */
    bytes = malloc(len ? len : 1);
    if (!bytes || fread(bytes, 1, len, f) != len) return 3;
    st = qgt_load(m, bytes, len);
    counts[st < 16 ? st : 15]++;
    if (st == QGT_OK) {
      size_t n = (size_t)m->in_h * m->in_w * m->in_c, a = qgt_arena_bytes(m);
      int8_t *img = malloc(n);
      uint8_t *arena = malloc(a);
      int32_t *logits = malloc(sizeof(int32_t) * m->n_classes);
      if (!img || !arena || !logits) return 3;
      for (i = 0; i < n; i++) img[i] = (int8_t)((i * 37u + 11u) & 255u);
      if (qgt_invoke(m, img, n, arena, a, logits) != QGT_OK) return 4;
      if (qgt_invoke(m, img, n, arena, a - 1, logits) != QGT_ERR_ARENA) return 5;
      if (qgt_predict(m, logits) < 0) return 6;
      ran++;
      free(img);
      free(arena);
      free(logits);
    } else if (!m->error[0] || strchr(m->error, '\n')) {
      return 7; /* a rejection always says why, on one line */
    }
    free(bytes);
  }
  fclose(f);
  printf("ran %lu", ran);
  for (i = 1; i < 16; i++)
    if (counts[i]) printf(", %s %lu", qgt_status_name((qgt_status)i), counts[i]);
  printf("\n");
  free(m);
  return 0;
}

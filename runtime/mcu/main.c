/* qgt's Cortex-M4 test firmware: runs the embedded model (model_data.c) on images the host
 * passes through semihosting, writes the logits back, and reports memory and a deterministic
 * instruction count per image. Built and run by `deno task mcu`.
 *
 *   images.bin   in:  N images, H*W*C int8 each (q = pixel - 128)
 *   logits.bin   out: per image, the int32 logits (little-endian) then the predicted class (int32)
 *   stdout       "arena <bytes>", "image <i> insns <n>", "stack <bytes>", "heap <bytes>", and for
 *                the first image one line per layer "layer <i> insns <n>" (built with
 *                QGT_LAYER_DONE(i) defined as qgt_layer_done(i), as `deno task mcu` does)
 *
 * Instruction counts: QEMU's -icount shift=0 advances virtual time by 1 ns per instruction and the
 * CMSDK timer 0 (0x40000000) ticks at 25 MHz, so one tick is 40 instructions.
 */
#include <stdint.h>
#include <stdio.h>

#include "model_data.h"
#include "qgt_runtime.h"

#ifndef QGT_ARENA_BYTES
#error "define QGT_ARENA_BYTES (qgt_arena_bytes of the model)"
#endif

extern uint32_t qgt_stack_high_water(void);
extern uint32_t qgt_heap_used(void);

static qgt_model model;
static uint8_t arena[QGT_ARENA_BYTES] __attribute__((aligned(8)));
static int8_t image[QGT_INPUT_BYTES];

#define TIMER0 ((volatile uint32_t *)0x40000000u) /* CTRL, VALUE, RELOAD */

/* The timer when each layer of the current image ended (it counts down). */
static uint32_t layer_end[QGT_MAX_LAYERS];
void qgt_layer_done(uint32_t i) {
  if (i < QGT_MAX_LAYERS) layer_end[i] = TIMER0[1];
}

int main(void) {
  FILE *in, *out;
  uint32_t i = 0;
  int32_t logits[QGT_CLASSES + 1];
  qgt_status st = qgt_load(&model, g_qgt_model_data, g_qgt_model_data_len);
  if (st != QGT_OK) {
    printf("load failed: %s (%s)\n", qgt_error(&model), qgt_status_name(st));
    return 2;
  }
  if (qgt_arena_bytes(&model) > sizeof arena || model.n_classes != QGT_CLASSES ||
      (size_t)model.in_h * model.in_w * model.in_c != sizeof image) {
    printf("the firmware was built for another model\n");
    return 3;
  }
  printf("arena %lu\nkernels %s\n", (unsigned long)qgt_arena_bytes(&model), qgt_kernels());
  in = fopen("images.bin", "rb");
  out = fopen("logits.bin", "wb");
  if (!in || !out) {
    printf("cannot open images.bin / logits.bin\n");
    return 4;
  }
  TIMER0[2] = 0xFFFFFFFFu;
  while (fread(image, 1, sizeof image, in) == sizeof image) {
    uint32_t t0, t1;
    TIMER0[1] = 0xFFFFFFFFu;
    TIMER0[0] = 1u;
    t0 = TIMER0[1];
    st = qgt_invoke(&model, image, sizeof image, arena, sizeof arena, logits);
    t1 = TIMER0[1];
    TIMER0[0] = 0u;
    if (st != QGT_OK) {
      printf("invoke failed: %s\n", qgt_status_name(st));
      return 5;
    }
    logits[QGT_CLASSES] = qgt_predict(&model, logits);
    if (fwrite(logits, sizeof logits, 1, out) != 1) return 6;
    if (i == 0) {
      uint32_t k, prev = t0;
      for (k = 0; k < model.n_layers; k++) {
        printf("layer %lu insns %lu\n", (unsigned long)k, (unsigned long)((prev - layer_end[k]) * 40u));
        prev = layer_end[k];
      }
    }
    printf("image %lu insns %lu\n", (unsigned long)i++, (unsigned long)((t0 - t1) * 40u));
  }
  fclose(in);
  fclose(out);
  printf("stack %lu\nheap %lu\n", (unsigned long)qgt_stack_high_water(),
         (unsigned long)qgt_heap_used());
  return 0;
}

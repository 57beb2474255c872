/* The benchmark harness's per-layer hook (main.c), declared for the runtime built into the
 * firmware with QGT_LAYER_DONE(i)=qgt_layer_done(i). */
#include <stdint.h>
void qgt_layer_done(uint32_t i);

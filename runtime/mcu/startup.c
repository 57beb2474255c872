/* Bare-metal start-up for the Cortex-M4F test firmware (QEMU mps2-an386, see mps2_an386.ld):
 * vector table, reset (FPU on, .data copied, .bss zeroed, stack painted), a heap bounded below
 * the stack for newlib, and a fault handler that stops QEMU with status 127. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_start, __data_end, __data_image, __bss_start, __bss_end;
extern uint32_t __stack_limit, __stack_top;
extern char __heap_start, __heap_end;
extern int main(void);
extern void initialise_monitor_handles(void); /* librdimon: semihosting stdio */
extern void __libc_init_array(void);

void qgt_reset(void);
void qgt_fault(void);

#define PAINT 0xC0DEC0DEu

__attribute__((section(".vectors"), used)) void (*const qgt_vectors[16])(void) = {
    (void (*)(void))&__stack_top, qgt_reset, qgt_fault, qgt_fault, qgt_fault, qgt_fault,
    qgt_fault, 0, 0, 0, 0, qgt_fault, qgt_fault, 0, qgt_fault, qgt_fault};

/* Bytes of stack ever used: from the top down to the lowest word no longer holding the paint. */
uint32_t qgt_stack_high_water(void) {
  const uint32_t *p = &__stack_limit;
  while (p < &__stack_top && *p == PAINT) p++;
  return (uint32_t)((const char *)&__stack_top - (const char *)p);
}

static char *brk_now = &__heap_start;
void *_sbrk(ptrdiff_t n) { /* newlib's heap (stdio buffers), never into the stack */
  char *was = brk_now;
  if (brk_now + n > &__heap_end) {
    errno = ENOMEM;
    return (void *)-1;
  }
  brk_now += n;
  return was;
}

uint32_t qgt_heap_used(void) { return (uint32_t)(brk_now - &__heap_start); }

void _init(void) {}
void _fini(void) {}

static int semihost(int op, void *arg) {
  register int r0 __asm("r0") = op;
  register void *r1 __asm("r1") = arg;
  __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void qgt_fault(void) {
  static const char msg[] = "qgt firmware: fault\n";
  uint32_t stop[2] = {0x20026u, 127u}; /* ADP_Stopped_ApplicationExit, status */
  semihost(0x04, (void *)msg);         /* SYS_WRITE0 */
  semihost(0x20, stop);                /* SYS_EXIT_EXTENDED */
  for (;;) {
  }
}

void qgt_reset(void) {
  uint32_t *s = &__data_image, *d = &__data_start, *sp;
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: FPU on before any FP instruction */
  __asm volatile("dsb\n\tisb");
  while (d < &__data_end) *d++ = *s++;
  for (d = &__bss_start; d < &__bss_end;) *d++ = 0;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (d = &__stack_limit; d < sp - 16; d++) *d = PAINT; /* below the frames in use */
  initialise_monitor_handles();
  __libc_init_array();
  exit(main());
}

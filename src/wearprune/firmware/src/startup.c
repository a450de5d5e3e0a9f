/* Bare-metal start-up for the QEMU Cortex-M boards (mps2-an386, mps2-an505,
 * mps3-an547): vector table, reset handler, fault reporting.
 *
 * Reset: enable the FPU (and MVE on M55) through CPACR before any compiled
 * code can touch an FP register, copy .data, clear .bss, set up newlib's
 * semihosting stdio (librdimon), run C++ constructors, fetch argv from QEMU
 * and call main().  The image is linked with -nostartfiles, so newlib's own
 * crt0 (which would query SYS_HEAPINFO and move the stack) is not used. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "semihost.h"

extern uint32_t __stack_top;
extern uint32_t __data_load, __data_start, __data_end;
extern uint32_t __bss_start, __bss_end;

extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(int argc, char** argv);
extern void SysTick_Handler(void);

void Reset_Handler(void) __attribute__((naked, noreturn));
void wp_c_start(void) __attribute__((noreturn, used));
void Fault_Handler(void) __attribute__((naked));
void wp_fault_report(uint32_t* frame, uint32_t exc_return) __attribute__((used));
void Default_Handler(void);

/* newlib's __libc_init_array calls _init (normally from crti.o); C++ static
 * destructors registered with __cxa_atexit need __dso_handle (crtbegin.o). */
void _init(void) {}
void _fini(void) {}
void* __dso_handle = 0;

typedef void (*vector_fn)(void);

__attribute__((section(".vectors"), used)) const vector_fn wp_vectors[16 + 32] = {
    (vector_fn)&__stack_top,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (v8-M) */
    0,
    0,
    0,
    Default_Handler, /* SVC */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    /* 32 external interrupts, all unused */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler};

void Reset_Handler(void) {
  __asm__ volatile(
      /* CPACR (0xE000ED88): full access to CP10/CP11 = FPU (+ MVE on v8.1-M) */
      "ldr r0, =0xE000ED88\n"
      "ldr r1, [r0]\n"
      "orr r1, r1, #(0xF << 20)\n"
      "str r1, [r0]\n"
      "dsb\n"
      "isb\n"
      /* VTOR: point at our table wherever QEMU booted from */
      "ldr r0, =0xE000ED08\n"
      "ldr r1, =wp_vectors\n"
      "str r1, [r0]\n"
      "ldr r0, =__stack_top\n"
      "mov sp, r0\n"
      "b wp_c_start\n"
      ".ltorg\n");
}

void wp_c_start(void) {
  uint32_t* src = &__data_load;
  for (uint32_t* dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  initialise_monitor_handles();
  __libc_init_array();
  static char* argv[32];
  int argc = wp_semihost_args(argv, 31);
  argv[argc] = 0;
  wp_exit(main(argc, argv));
}

void Fault_Handler(void) {
  __asm__ volatile(
      "tst lr, #4\n"
      "ite eq\n"
      "mrseq r0, msp\n"
      "mrsne r0, psp\n"
      "mov r1, lr\n"
      "b wp_fault_report\n");
}

static void put_hex(char* out, uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) out[i] = digits[(v >> (28 - 4 * i)) & 0xF];
  out[8] = 0;
}

void wp_fault_report(uint32_t* frame, uint32_t exc_return) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  char hex[9];
  wp_semihost_puts("\n{\"event\":\"fault\",\"exception\":\"0x");
  put_hex(hex, ipsr & 0x1FF);
  wp_semihost_puts(hex);
  wp_semihost_puts("\",\"pc\":\"0x");
  put_hex(hex, frame[6]);
  wp_semihost_puts(hex);
  wp_semihost_puts("\",\"lr\":\"0x");
  put_hex(hex, frame[5]);
  wp_semihost_puts(hex);
  wp_semihost_puts("\",\"cfsr\":\"0x");
  put_hex(hex, *(volatile uint32_t*)0xE000ED28u);
  wp_semihost_puts(hex);
  wp_semihost_puts("\",\"exc_return\":\"0x");
  put_hex(hex, exc_return);
  wp_semihost_puts(hex);
  wp_semihost_puts("\"}\n");
  wp_exit(3);
}

void Default_Handler(void) {
  wp_semihost_puts("\n{\"event\":\"fault\",\"exception\":\"unexpected interrupt\"}\n");
  wp_exit(3);
}

#include "insn_counter.h"

#include "board.h"

/* Core peripheral registers (architectural addresses, same on v7-M/v8-M). */
#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define SYST_MASK 0x00FFFFFFu

static volatile uint32_t systick_wraps;
static uint32_t read_seq;

void SysTick_Handler(void) { systick_wraps++; }

void wp_counter_init(void) {
  SYST_CSR = 0;
  SYST_RVR = SYST_MASK;
  SYST_CVR = 0; /* any write clears the current value */
  systick_wraps = 0;
  read_seq = 0;
  SYST_CSR = 7; /* CLKSOURCE=processor clock, TICKINT, ENABLE */
}

__attribute__((noinline, used)) void wp_marker(void) { __asm__ volatile("" ::: "memory"); }

wp_stamp wp_counter_read(void) {
  uint32_t primask;
  __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  uint32_t wraps = systick_wraps;
  uint32_t val = SYST_CVR;
  if (SCB_ICSR & ICSR_PENDSTSET) { /* wrapped, handler not run yet */
    val = SYST_CVR;
    wraps++;
  }
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  wp_stamp s;
  s.ticks = ((uint64_t)wraps << 24) + (SYST_MASK - (val & SYST_MASK));
  s.seq = read_seq++;
  wp_marker();
  return s;
}

uint64_t wp_ticks_to_insns(uint64_t ticks) {
  /* 1e9 / f, kept exact for 25 MHz (40), 20 MHz (50), 32 MHz (31.25). */
  return ticks * 1000000000ull / WP_SYSTICK_HZ;
}

uint32_t wp_insns_per_tick_x100(void) { return (uint32_t)(100000000000ull / WP_SYSTICK_HZ); }

/* Instruction counter for QEMU's Cortex-M boards.
 *
 * QEMU models no DWT cycle counter or PMU for M-profile, but with
 * `-icount shift=0` its virtual clock advances exactly 1 ns per executed guest
 * instruction, and SysTick (CLKSOURCE=1) is clocked from that virtual clock at
 * WP_SYSTICK_HZ.  So SysTick ticks * (1e9 / WP_SYSTICK_HZ) = instructions,
 * quantised to one tick (40 instructions on mps2-an386).  Without -icount the
 * same counter measures host time instead and the numbers are meaningless.
 *
 * Every read also calls wp_marker(), an empty non-inlined function.  The QEMU
 * TCG plugin in ../tools/insn_plugin.c records the exact number of executed
 * instructions each time wp_marker is entered, so a run with the plugin gives
 * exact counts for the same intervals (see ../tools/exact_counts.py).
 */
#ifndef WEARPRUNE_FW_INSN_COUNTER_H
#define WEARPRUNE_FW_INSN_COUNTER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint64_t ticks; /* SysTick ticks since wp_counter_init (64-bit extended) */
  uint32_t seq;   /* index of this read (0, 1, 2, ...) = plugin marker index */
} wp_stamp;

void wp_counter_init(void);
wp_stamp wp_counter_read(void);
/* ticks -> instructions (exact only under -icount shift=0, +-1 tick). */
uint64_t wp_ticks_to_insns(uint64_t ticks);
/* Instructions per tick * 100 (4000 on AN386), for reports. */
uint32_t wp_insns_per_tick_x100(void);

void wp_marker(void);

#ifdef __cplusplus
}
#endif

#endif /* WEARPRUNE_FW_INSN_COUNTER_H */

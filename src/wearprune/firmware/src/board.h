/* Per-board constants for the QEMU machines the runner targets.
 *
 * BOARD_* is set by the Makefile from TARGET:
 *   cortex-m4  -> BOARD_MPS2_AN386 (qemu-system-arm -M mps2-an386, Cortex-M4F)
 *   cortex-m33 -> BOARD_MPS2_AN505 (qemu-system-arm -M mps2-an505, Cortex-M33)
 *   cortex-m55 -> BOARD_MPS3_AN547 (qemu-system-arm -M mps3-an547, Cortex-M55)
 *
 * WP_SYSTICK_HZ is the frequency QEMU clocks SysTick with (CLKSOURCE=1, the
 * processor clock of the board model).  Under `-icount shift=0` QEMU's virtual
 * clock advances 1 ns per executed instruction, so one SysTick tick equals
 * 1e9 / WP_SYSTICK_HZ instructions (40 on AN386, 50 on AN505, 31.25 on AN547).
 */
#ifndef WEARPRUNE_FW_BOARD_H
#define WEARPRUNE_FW_BOARD_H

#if defined(BOARD_MPS2_AN386)
#define WP_BOARD_NAME "mps2-an386"
#define WP_CORE_NAME "cortex-m4"
#define WP_SYSTICK_HZ 25000000u
#elif defined(BOARD_MPS2_AN505)
#define WP_BOARD_NAME "mps2-an505"
#define WP_CORE_NAME "cortex-m33"
#define WP_SYSTICK_HZ 20000000u
#elif defined(BOARD_MPS3_AN547)
#define WP_BOARD_NAME "mps3-an547"
#define WP_CORE_NAME "cortex-m55"
#define WP_SYSTICK_HZ 32000000u
#else
#error "define one of BOARD_MPS2_AN386, BOARD_MPS2_AN505, BOARD_MPS3_AN547"
#endif

#endif /* WEARPRUNE_FW_BOARD_H */

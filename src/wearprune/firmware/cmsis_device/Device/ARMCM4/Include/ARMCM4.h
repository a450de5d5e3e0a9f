/* Minimal CMSIS device header for a generic CM4 ("ARMCM4").
 *
 * Written for wearprune's firmware build: TFLM's cortex_m_generic target
 * expects the ARM Cortex_DFP pack (Device/ARMCM4/Include/ARMCM4.h), which is
 * not among the offline third-party archives.  Only the pieces that TFLM's
 * cortex_m_generic/micro_time.cc and the runner need are provided here:
 * the exception numbers and the core configuration macros, followed by the
 * CMSIS_6 core header.
 */
#ifndef WEARPRUNE_ARMCM4_H
#define WEARPRUNE_ARMCM4_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum IRQn {
  NonMaskableInt_IRQn    = -14,
  HardFault_IRQn         = -13,
  MemoryManagement_IRQn  = -12,
  BusFault_IRQn          = -11,
  UsageFault_IRQn        = -10,
  SVCall_IRQn            =  -5,
  DebugMonitor_IRQn      =  -4,
  PendSV_IRQn            =  -2,
  SysTick_IRQn           =  -1,
  Interrupt0_IRQn        =   0
} IRQn_Type;

#define __CM4_REV               0x0001U
#define __FPU_PRESENT           1U
#define __MPU_PRESENT           1U
#define __VTOR_PRESENT          1U
#define __NVIC_PRIO_BITS        3U
#define __Vendor_SysTickConfig  0U

#include "core_cm4.h"

#ifdef __cplusplus
}
#endif

#endif /* WEARPRUNE_ARMCM4_H */

/* Minimal CMSIS device header for a generic CM33 ("ARMCM33").
 *
 * Written for wearprune's firmware build: TFLM's cortex_m_generic target
 * expects the ARM Cortex_DFP pack (Device/ARMCM33/Include/ARMCM33.h), which is
 * not among the offline third-party archives.  Only the pieces that TFLM's
 * cortex_m_generic/micro_time.cc and the runner need are provided here:
 * the exception numbers and the core configuration macros, followed by the
 * CMSIS_6 core header.
 */
#ifndef WEARPRUNE_ARMCM33_H
#define WEARPRUNE_ARMCM33_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum IRQn {
  NonMaskableInt_IRQn    = -14,
  HardFault_IRQn         = -13,
  MemoryManagement_IRQn  = -12,
  BusFault_IRQn          = -11,
  UsageFault_IRQn        = -10,
  SecureFault_IRQn       =  -9,
  SVCall_IRQn            =  -5,
  DebugMonitor_IRQn      =  -4,
  PendSV_IRQn            =  -2,
  SysTick_IRQn           =  -1,
  Interrupt0_IRQn        =   0
} IRQn_Type;

#define __CM33_REV              0x0000U
#define __FPU_PRESENT           1U
#define __DSP_PRESENT           1U
#define __MPU_PRESENT           1U
#define __SAUREGION_PRESENT     1U
#define __VTOR_PRESENT          1U
#define __NVIC_PRIO_BITS        3U
#define __Vendor_SysTickConfig  0U

#include "core_cm33.h"

#ifdef __cplusplus
}
#endif

#endif /* WEARPRUNE_ARMCM33_H */

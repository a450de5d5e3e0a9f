/* Arm semihosting helpers (QEMU `-semihosting`), on top of newlib's librdimon
 * which already routes stdio and fopen/fread/fwrite to the host. */
#ifndef WEARPRUNE_FW_SEMIHOST_H
#define WEARPRUNE_FW_SEMIHOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raw semihosting call (BKPT 0xAB on M-profile). */
int wp_semihost(int op, void* arg);

/* Write a NUL-terminated string to the host console (SYS_WRITE0); usable
 * before newlib is initialised and from fault handlers. */
void wp_semihost_puts(const char* s);

/* Split the command line QEMU passes with
 * `-semihosting-config enable=on,arg=prog,arg=a,arg=b` (SYS_GET_CMDLINE) into
 * argv.  Arguments are separated by spaces (QEMU joins them with spaces and
 * does not quote), so paths must not contain spaces.  Returns argc. */
int wp_semihost_args(char** argv, int max_args);

/* Flush stdio and stop QEMU with exit status `code` (SYS_EXIT_EXTENDED). */
void wp_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* WEARPRUNE_FW_SEMIHOST_H */

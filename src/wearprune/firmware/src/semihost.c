#include "semihost.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

int wp_semihost(int op, void* arg) {
  register int r0 __asm__("r0") = op;
  register void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void wp_semihost_puts(const char* s) { wp_semihost(SYS_WRITE0, (void*)s); }

static char cmdline[1024];

int wp_semihost_args(char** argv, int max_args) {
  struct {
    char* buf;
    int len;
  } block = {cmdline, (int)sizeof(cmdline) - 1};
  if (wp_semihost(SYS_GET_CMDLINE, &block) != 0) return 0;
  cmdline[block.len < (int)sizeof(cmdline) ? block.len : (int)sizeof(cmdline) - 1] = 0;
  int argc = 0;
  char* p = cmdline;
  while (*p && argc < max_args) {
    while (*p == ' ') *p++ = 0;
    if (!*p) break;
    argv[argc++] = p;
    while (*p && *p != ' ') p++;
  }
  return argc;
}

void wp_exit(int code) {
  fflush(NULL);
  uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  wp_semihost(SYS_EXIT_EXTENDED, block);
  /* Fallback for hosts without SYS_EXIT_EXTENDED: status 0 only. */
  wp_semihost(SYS_EXIT, (void*)ADP_STOPPED_APPLICATION_EXIT);
  for (;;) {
  }
}

/* Heap: newlib's malloc grows through _sbrk.  librdimon's own _sbrk refuses to
 * grow past the stack pointer, which does not work when the heap lives in a
 * separate RAM bank above the stack (PSRAM/DDR here), so the linker script
 * provides __heap_start/__heap_end and this bounded _sbrk replaces it. */
extern char __heap_start[];
extern char __heap_end[];
static char* heap_top = __heap_start;

void* _sbrk(ptrdiff_t incr) {
  if (incr > __heap_end - heap_top || -incr > heap_top - __heap_start) {
    errno = ENOMEM;
    return (void*)-1;
  }
  char* prev = heap_top;
  heap_top += incr;
  return prev;
}

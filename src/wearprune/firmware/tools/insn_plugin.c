/* QEMU TCG plugin: exact guest instruction counts at firmware markers.
 *
 *   qemu-system-arm ... -plugin CACHE/build/insn_plugin.so,marker=0xADDR,out=FILE
 *
 * Counts every executed guest instruction (an inline add before each one)
 * and, each time execution reaches `marker` (the address of the runner's
 * wp_marker()), appends the
 * number of instructions executed *before* that entry to FILE, one decimal
 * number per line.  The last line is "total N".  Marker k corresponds to the
 * runner's counter read with seq == k, so the exact cost of an interval
 * [seq a, seq b] is line[b] - line[a].
 *
 * Exact with or without -icount (see on_translate); an instruction that
 * faults would be counted although it did not complete (none do here).  Built with the host C compiler against the QEMU plugin
 * ABI version 1 (QEMU 5.2 .. 8.x); the few declarations needed are below, so
 * no QEMU headers are required.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin ABI (subset, version 1) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
  const char* target_name;
  struct {
    int min;
    int cur;
  } version;
  bool system_emulation;
  union {
    struct {
      int smp_vcpus;
      int max_vcpus;
    } system;
  };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb* tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void* userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void* userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn* insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void* userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn* insn, enum qemu_plugin_op op,
                                                void* ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb* tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn* insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void* userdata);
void qemu_plugin_outs(const char* string);
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
/* ---- end of ABI subset ---- */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t insns;         /* instructions executed so far */
static uint64_t marker_addr;   /* wp_marker, Thumb bit cleared */
static uint64_t* stamps;       /* insns at each marker entry */
static size_t n_stamps, cap_stamps;
static FILE* out;

static void on_marker(unsigned int vcpu, void* udata) {
  if (n_stamps == cap_stamps) {
    cap_stamps = cap_stamps ? 2 * cap_stamps : 4096;
    stamps = realloc(stamps, cap_stamps * sizeof(*stamps));
    if (!stamps) abort();
  }
  stamps[n_stamps++] = insns;
  insns += 1; /* the marker instruction itself */
}

/* Counting is per instruction (an inline add before each one), not per block:
 * under -icount QEMU aborts a block at an I/O access and re-runs that one
 * instruction in a fresh block that carries no exec instrumentation
 * (CF_MEMI_ONLY), so per-instruction adds stay exact where a per-block add
 * would count the aborted block's tail twice. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, i);
    if (marker_addr && qemu_plugin_insn_vaddr(insn) == marker_addr) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
    } else {
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insns, 1);
    }
  }
}

static void on_qemu_exit(qemu_plugin_id_t id, void* udata) {
  if (!out) return;
  for (size_t i = 0; i < n_stamps; i++) fprintf(out, "%" PRIu64 "\n", stamps[i]);
  fprintf(out, "total %" PRIu64 "\n", insns);
  fclose(out);
  out = NULL;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc,
                                           char** argv) {
  const char* path = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strncmp(argv[i], "marker=", 7)) marker_addr = strtoull(argv[i] + 7, NULL, 0) & ~1ull;
    else if (!strncmp(argv[i], "out=", 4)) path = argv[i] + 4;
    else {
      fprintf(stderr, "insn_plugin: unknown argument %s (marker=ADDR, out=FILE)\n", argv[i]);
      return -1;
    }
  }
  if (!path) {
    fprintf(stderr, "insn_plugin: out=FILE is required\n");
    return -1;
  }
  out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "insn_plugin: cannot write %s\n", path);
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
  return 0;
}

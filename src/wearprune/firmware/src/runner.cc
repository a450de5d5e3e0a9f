/* wearprune TFLM runner: runs a .tflite model on an emulated Cortex-M and
 * reports outputs and instruction counts.
 *
 * Everything comes and goes over Arm semihosting, so one ELF serves every
 * model (no rebuild per model):
 *   argv    <- -semihosting-config enable=on,arg=runner,arg=--model,arg=m.tflite,...
 *   model   <- fopen(--model)          input <- fopen(--input)
 *   outputs -> fopen(--output, "wb")   report -> stdout, one JSON object a line
 *   TFLM log messages -> stderr
 *
 * Usage (arguments after the program name):
 *   --model FILE      .tflite flatbuffer (required unless --calibrate)
 *   --input FILE      raw input tensor bytes; W windows back to back, each the
 *                     concatenation of all input tensors (file size must be a
 *                     multiple of that).  Default: one all-zero window.
 *   --output FILE     raw output tensor bytes, per window, all outputs back to
 *                     back (from the last run of each window)
 *   --runs N          invokes per window (default 1)
 *   --arena BYTES     tensor arena size (default 4 MiB, taken from the heap)
 *   --profile MODE    per-op events for: first (default; first invoke only),
 *                     all, none.  Un-profiled invokes carry no per-op counter
 *                     reads, so their totals are the clean per-inference cost.
 *   --calibrate N[,N...]  no model: time a 2-instruction loop of N iterations
 *                     (counter validation, see NOTES.md)
 *   --dump-tensors FILE  debugging: keep every tensor (preserve_all_tensors, so
 *                     the arena grows) and after the first invoke write each one
 *                     as <u32 index><u32 bytes><bytes> (tools/host_tflm.py tensors)
 *
 * Exit status: 0 ok, 1 bad arguments/model/input, 2 allocation failed,
 * 3 CPU fault. */
#include <malloc.h>
#include <new>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "insn_counter.h"
#include "insn_profiler.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

constexpr size_t kDefaultArena = 4u * 1024u * 1024u;

enum class ProfileMode { kFirst, kAll, kNone };

struct Args {
  const char* model = nullptr;
  const char* input = nullptr;
  const char* output = nullptr;
  const char* calibrate = nullptr;
  const char* dump_tensors = nullptr;
  long runs = 1;
  size_t arena = kDefaultArena;
  ProfileMode profile = ProfileMode::kFirst;
};

void LogToStderr(const char* s) {
  /* MicroPrintf sends the message, then "\r\n" as a second call; prefix each
   * line with "tflm: " and drop the '\r'. */
  static bool line_start = true;
  for (; *s; ++s) {
    if (*s == '\r') continue;
    if (line_start) fputs("tflm: ", stderr);
    fputc(*s, stderr);
    line_start = (*s == '\n');
  }
}

void Fail(const char* what, const char* detail) {
  printf("{\"event\":\"error\",\"error\":\"%s\",\"detail\":\"%s\"}\n", what, detail ? detail : "");
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const char* k = argv[i];
    const char* v = (i + 1 < argc) ? argv[i + 1] : nullptr;
    if (!v) {
      Fail("missing value", k);
      return false;
    }
    ++i;
    if (!strcmp(k, "--model")) {
      a->model = v;
    } else if (!strcmp(k, "--input")) {
      a->input = v;
    } else if (!strcmp(k, "--output")) {
      a->output = v;
    } else if (!strcmp(k, "--runs")) {
      a->runs = strtol(v, nullptr, 0);
    } else if (!strcmp(k, "--arena")) {
      a->arena = strtoul(v, nullptr, 0);
    } else if (!strcmp(k, "--dump-tensors")) {
      a->dump_tensors = v;
    } else if (!strcmp(k, "--calibrate")) {
      a->calibrate = v;
    } else if (!strcmp(k, "--profile")) {
      if (!strcmp(v, "first")) a->profile = ProfileMode::kFirst;
      else if (!strcmp(v, "all")) a->profile = ProfileMode::kAll;
      else if (!strcmp(v, "none")) a->profile = ProfileMode::kNone;
      else {
        Fail("bad --profile (first|all|none)", v);
        return false;
      }
    } else {
      Fail("unknown argument", k);
      return false;
    }
  }
  if (a->runs < 1) {
    Fail("--runs must be >= 1", nullptr);
    return false;
  }
  if (!a->model && !a->calibrate) {
    Fail("--model is required", nullptr);
    return false;
  }
  return true;
}

/* Whole file into a 16-byte aligned heap buffer. */
uint8_t* ReadFile(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return nullptr;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0) {
    fclose(f);
    return nullptr;
  }
  uint8_t* buf = static_cast<uint8_t*>(memalign(16, n > 0 ? n : 1));
  if (buf && n > 0 && fread(buf, 1, n, f) != static_cast<size_t>(n)) {
    free(buf);
    buf = nullptr;
  }
  fclose(f);
  *size = static_cast<size_t>(n);
  return buf;
}

/* 2 instructions per iteration (subs + bne), plus the bx lr. */
__attribute__((noinline, naked)) void CalibrationLoop(uint32_t n) {
  __asm__ volatile(
      "cbz r0, 2f\n"
      "1: subs r0, r0, #1\n"
      "bne 1b\n"
      "2: bx lr\n");
}

int Calibrate(const char* list) {
  char buf[128];
  strncpy(buf, list, sizeof(buf) - 1);
  buf[sizeof(buf) - 1] = 0;
  for (char* tok = strtok(buf, ","); tok; tok = strtok(nullptr, ",")) {
    uint32_t n = strtoul(tok, nullptr, 0);
    wp_stamp a = wp_counter_read();
    CalibrationLoop(n);
    wp_stamp b = wp_counter_read();
    uint64_t ticks = b.ticks - a.ticks;
    printf("{\"event\":\"calibrate\",\"n\":%lu,\"loop_insns\":%llu,\"ticks\":%llu,"
           "\"instructions\":%llu,\"seq\":[%lu,%lu]}\n",
           (unsigned long)n, 2ull * n + 2, (unsigned long long)ticks,
           (unsigned long long)wp_ticks_to_insns(ticks), (unsigned long)a.seq, (unsigned long)b.seq);
  }
  return 0;
}

/* Every tensor of subgraph 0 after an invoke (needs preserve_all_tensors). */
bool DumpTensors(const char* path, const tflite::Model* model, tflite::MicroInterpreter* interp) {
  FILE* f = fopen(path, "wb");
  if (!f) return false;
  uint32_t n = model->subgraphs()->Get(0)->tensors()->size();
  for (uint32_t i = 0; i < n; ++i) {
    TfLiteEvalTensor* t = interp->GetTensor(static_cast<int>(i));
    size_t bytes = 0;
    if (!t || !t->data.data || tflite::TfLiteEvalTensorByteLength(t, &bytes) != kTfLiteOk) bytes = 0;
    uint32_t header[2] = {i, static_cast<uint32_t>(bytes)};
    fwrite(header, sizeof(header), 1, f);
    if (bytes) fwrite(t->data.data, 1, bytes, f);
  }
  fclose(f);
  return true;
}

void PrintTensor(const char* kind, size_t index, const TfLiteTensor* t, bool last) {
  printf("{\"kind\":\"%s\",\"index\":%u,\"type\":\"%s\",\"bytes\":%u,\"shape\":[", kind,
         (unsigned)index, TfLiteTypeGetName(t->type), (unsigned)t->bytes);
  for (int d = 0; t->dims && d < t->dims->size; ++d) printf(d ? ",%d" : "%d", t->dims->data[d]);
  printf("],\"scale\":%.9g,\"zero_point\":%ld}%s", (double)t->params.scale,
         (long)t->params.zero_point, last ? "" : ",");
}

}  // namespace

static wearprune::InsnProfiler profiler;

int main(int argc, char** argv) {
  RegisterDebugLogCallback(LogToStderr);
  wp_counter_init();

  Args args;
  if (!ParseArgs(argc, argv, &args)) return 1;
  if (args.calibrate) {
    printf("{\"event\":\"start\",\"board\":\"%s\",\"core\":\"%s\",\"systick_hz\":%lu,"
           "\"insns_per_tick_x100\":%lu}\n",
           WP_BOARD_NAME, WP_CORE_NAME, (unsigned long)WP_SYSTICK_HZ,
           (unsigned long)wp_insns_per_tick_x100());
    return Calibrate(args.calibrate);
  }

  size_t model_size = 0;
  uint8_t* model_data = ReadFile(args.model, &model_size);
  if (!model_data) {
    Fail("cannot read model", args.model);
    return 1;
  }
  flatbuffers::Verifier verifier(model_data, model_size);
  if (!tflite::VerifyModelBuffer(verifier)) {
    Fail("not a valid .tflite flatbuffer", args.model);
    return 1;
  }
  const tflite::Model* model = tflite::GetModel(model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    Fail("unsupported schema version", args.model);
    return 1;
  }

  static wearprune::OpResolver resolver;
  if (wearprune::RegisterOps(resolver) != kTfLiteOk) {
    Fail("op registration failed", nullptr);
    return 1;
  }
  uint8_t* arena = static_cast<uint8_t*>(memalign(16, args.arena));
  if (!arena) {
    Fail("cannot allocate arena", nullptr);
    return 2;
  }
  /* Placement new: keeps the interpreter (and its allocator) off the stack
   * without needing operator delete. */
  static uint8_t interp_storage[sizeof(tflite::MicroInterpreter)] __attribute__((aligned(8)));
  tflite::MicroInterpreter* interp = new (interp_storage)
      tflite::MicroInterpreter(model, resolver, arena, args.arena, nullptr, &profiler,
                               /*preserve_all_tensors=*/args.dump_tensors != nullptr);

  wp_stamp alloc_begin = wp_counter_read();
  TfLiteStatus alloc_status = interp->AllocateTensors();
  wp_stamp alloc_end = wp_counter_read();
  if (alloc_status != kTfLiteOk) {
    Fail("AllocateTensors failed (see stderr; try a bigger --arena)", args.model);
    return 2;
  }

  size_t in_bytes = 0, out_bytes = 0;
  for (size_t i = 0; i < interp->inputs_size(); ++i) in_bytes += interp->input(i)->bytes;
  for (size_t i = 0; i < interp->outputs_size(); ++i) out_bytes += interp->output(i)->bytes;

  printf("{\"event\":\"model\",\"board\":\"%s\",\"core\":\"%s\",\"systick_hz\":%lu,"
         "\"insns_per_tick_x100\":%lu,\"model\":\"%s\",\"model_bytes\":%u,\"arena_size\":%u,"
         "\"arena_used_bytes\":%u,\"allocate_tensors_instructions\":%llu,\"tensors\":[",
         WP_BOARD_NAME, WP_CORE_NAME, (unsigned long)WP_SYSTICK_HZ,
         (unsigned long)wp_insns_per_tick_x100(), args.model, (unsigned)model_size,
         (unsigned)args.arena, (unsigned)interp->arena_used_bytes(),
         (unsigned long long)wp_ticks_to_insns(alloc_end.ticks - alloc_begin.ticks));
  for (size_t i = 0; i < interp->inputs_size(); ++i) PrintTensor("input", i, interp->input(i), false);
  for (size_t i = 0; i < interp->outputs_size(); ++i)
    PrintTensor("output", i, interp->output(i), i + 1 == interp->outputs_size());
  printf("]}\n");

  /* What one profiler event costs by itself: BeginEvent immediately followed
   * by EndEvent.  Every "op" interval contains this much besides the kernel. */
  {
    uint32_t h = profiler.BeginEvent("overhead");
    profiler.EndEvent(h);
    const wearprune::InsnProfiler::Event& e = profiler.event(h);
    uint64_t t = e.end.ticks - e.begin.ticks;
    printf("{\"event\":\"profiler_overhead\",\"ticks\":%llu,\"instructions\":%llu,\"seq\":[%lu,%lu]}\n",
           (unsigned long long)t, (unsigned long long)wp_ticks_to_insns(t), (unsigned long)e.begin.seq,
           (unsigned long)e.end.seq);
    profiler.Clear();
  }

  uint8_t* inputs = nullptr;
  size_t input_size = 0, windows = 1;
  if (args.input) {
    inputs = ReadFile(args.input, &input_size);
    if (!inputs) {
      Fail("cannot read input", args.input);
      return 1;
    }
    if (in_bytes == 0 || input_size == 0 || input_size % in_bytes != 0) {
      Fail("input file size is not a multiple of the model's input bytes", args.input);
      return 1;
    }
    windows = input_size / in_bytes;
  }
  FILE* out = nullptr;
  if (args.output) {
    out = fopen(args.output, "wb");
    if (!out) {
      Fail("cannot open output", args.output);
      return 1;
    }
  }

  uint64_t total_min = UINT64_MAX, total_max = 0, total_sum = 0, clean_n = 0;
  uint64_t clean_min = UINT64_MAX, clean_max = 0, clean_sum = 0, n_invokes = 0;
  for (size_t w = 0; w < windows; ++w) {
    for (long r = 0; r < args.runs; ++r) {
      /* (Re)load the input every run: the planner reuses the input tensor's
       * arena bytes for later activations, so an invoke clobbers it. */
      size_t off = w * in_bytes;
      for (size_t i = 0; i < interp->inputs_size(); ++i) {
        TfLiteTensor* t = interp->input(i);
        if (inputs) memcpy(t->data.raw, inputs + off, t->bytes);
        else memset(t->data.raw, 0, t->bytes);
        off += t->bytes;
      }
      bool profiled = args.profile == ProfileMode::kAll ||
                      (args.profile == ProfileMode::kFirst && n_invokes == 0);
      profiler.Clear();
      profiler.set_enabled(profiled);
      wp_stamp a = wp_counter_read();
      TfLiteStatus st = interp->Invoke();
      wp_stamp b = wp_counter_read();
      uint64_t insns = wp_ticks_to_insns(b.ticks - a.ticks);
      ++n_invokes;
      printf("{\"event\":\"invoke\",\"window\":%u,\"run\":%ld,\"status\":%d,\"profiled\":%s,"
             "\"ticks\":%llu,\"instructions\":%llu,\"seq\":[%lu,%lu]}\n",
             (unsigned)w, r, (int)st, profiled ? "true" : "false",
             (unsigned long long)(b.ticks - a.ticks), (unsigned long long)insns,
             (unsigned long)a.seq, (unsigned long)b.seq);
      if (st != kTfLiteOk) {
        Fail("Invoke failed (see stderr)", args.model);
        return 1;
      }
      if (args.dump_tensors && n_invokes == 1 && !DumpTensors(args.dump_tensors, model, interp)) {
        Fail("cannot write tensor dump", args.dump_tensors);
        return 1;
      }
      total_min = insns < total_min ? insns : total_min;
      total_max = insns > total_max ? insns : total_max;
      total_sum += insns;
      if (!profiled) {
        ++clean_n;
        clean_min = insns < clean_min ? insns : clean_min;
        clean_max = insns > clean_max ? insns : clean_max;
        clean_sum += insns;
      }
      for (uint32_t i = 0; i < profiler.count(); ++i) {
        const wearprune::InsnProfiler::Event& e = profiler.event(i);
        uint64_t t = e.end.ticks - e.begin.ticks;
        printf("{\"event\":\"op\",\"window\":%u,\"run\":%ld,\"index\":%lu,\"op\":\"%s\","
               "\"ticks\":%llu,\"instructions\":%llu,\"seq\":[%lu,%lu]}\n",
               (unsigned)w, r, (unsigned long)i, e.tag, (unsigned long long)t,
               (unsigned long long)wp_ticks_to_insns(t), (unsigned long)e.begin.seq,
               (unsigned long)e.end.seq);
      }
    }
    if (out) {
      for (size_t i = 0; i < interp->outputs_size(); ++i) {
        TfLiteTensor* t = interp->output(i);
        fwrite(t->data.raw, 1, t->bytes, out);
      }
    }
  }
  if (out) fclose(out);

  printf("{\"event\":\"summary\",\"board\":\"%s\",\"windows\":%u,\"runs\":%ld,\"invokes\":%llu,"
         "\"arena_used_bytes\":%u,\"input_bytes\":%u,\"output_bytes\":%u,"
         "\"instructions_per_invoke\":{\"min\":%llu,\"max\":%llu,\"mean\":%llu},"
         "\"unprofiled_invokes\":%llu,\"unprofiled_instructions_per_invoke\":",
         WP_BOARD_NAME, (unsigned)windows, args.runs, (unsigned long long)n_invokes,
         (unsigned)interp->arena_used_bytes(), (unsigned)in_bytes, (unsigned)out_bytes,
         (unsigned long long)total_min, (unsigned long long)total_max,
         (unsigned long long)(total_sum / n_invokes), (unsigned long long)clean_n);
  if (clean_n)
    printf("{\"min\":%llu,\"max\":%llu,\"mean\":%llu}}\n", (unsigned long long)clean_min,
           (unsigned long long)clean_max, (unsigned long long)(clean_sum / clean_n));
  else
    printf("null}\n");
  return 0;
}

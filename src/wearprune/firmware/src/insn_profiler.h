/* TFLM profiler whose timer is the instruction counter (insn_counter.h).
 *
 * The interpreter calls BeginEvent/EndEvent around every operator's Eval
 * (MicroInterpreterGraph::InvokeSubgraph), tagging it with the op name.  Each
 * event keeps both counter stamps, so the runner can report ticks, the derived
 * instruction count, and the read sequence numbers that the exact QEMU plugin
 * uses to recompute the same interval to the instruction. */
#ifndef WEARPRUNE_FW_INSN_PROFILER_H
#define WEARPRUNE_FW_INSN_PROFILER_H

#include <stdint.h>

#include "insn_counter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

namespace wearprune {

class InsnProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr uint32_t kMaxEvents = 1024;

  struct Event {
    const char* tag;
    wp_stamp begin;
    wp_stamp end;
  };

  uint32_t BeginEvent(const char* tag) override {
    if (!enabled_ || count_ >= kMaxEvents) return kMaxEvents;
    Event& e = events_[count_];
    e.tag = tag;
    e.end.ticks = 0;
    e.end.seq = 0;
    e.begin = wp_counter_read();
    return count_++;
  }

  void EndEvent(uint32_t handle) override {
    if (handle >= count_) return; /* disabled or overflowed */
    events_[handle].end = wp_counter_read();
  }

  void Clear() { count_ = 0; }
  void set_enabled(bool on) { enabled_ = on; }
  uint32_t count() const { return count_; }
  const Event& event(uint32_t i) const { return events_[i]; }

 private:
  bool enabled_ = true;
  uint32_t count_ = 0;
  Event events_[kMaxEvents];
};

}  // namespace wearprune

#endif  // WEARPRUNE_FW_INSN_PROFILER_H

#!/usr/bin/env bash
# Run a .tflite model on an emulated Cortex-M (qemu-system-arm) with the runner
# firmware built by build.sh; print the runner's report as JSON lines.
#
#   run.sh CACHE_DIR TARGET --model M.tflite [runner options] [run.sh options]
#   run.sh CACHE_DIR TARGET --calibrate 0,1000,100000
#
# TARGET: cortex-m4 (mps2-an386) | cortex-m33 (mps2-an505) | cortex-m55 (mps3-an547)
#
# Runner options (passed to the firmware, files are read/written over semihosting):
#   --model FILE  --input FILE  --output FILE  --runs N  --arena BYTES
#   --profile first|all|none   --calibrate N[,N...]
# run.sh options:
#   --count both|icount|exact  both (default): SysTick under -icount shift=0 on the
#                 target ("instructions", +-1 tick) and the QEMU plugin's exact
#                 count of the same intervals ("exact_instructions"), one run.
#                 icount: no plugin.  exact: plugin only (no -icount; the
#                 firmware's own "instructions" are then host time, ignore them).
#   --exec-log FILE  also write QEMU's single-step execution log (one line per
#                 executed instruction; ~80 bytes each, slow) and add the counts
#                 it gives as "exec_log_instructions" (tools/exec_log_count.py)
#   --timeout SECONDS  (default 600)
#
# stdout: JSON lines (events model, invoke, op, summary or calibrate; error on
# failure).  stderr: TFLM log messages and QEMU diagnostics.  Exit status: the
# firmware's (0 ok, 1 bad input, 2 arena too small, 3 CPU fault), 124 on timeout.
set -euo pipefail

die() { echo "run.sh: error: $*" >&2; exit 2; }
[[ $# -ge 2 ]] || die "usage: $0 CACHE_DIR TARGET --model M.tflite [options]  (see the header of $0)"
CACHE_DIR=$1
TARGET=$2
shift 2
FW_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

case "$TARGET" in
  cortex-m4) BOARD=mps2-an386 ;;
  cortex-m33) BOARD=mps2-an505 ;;
  cortex-m55) BOARD=mps3-an547 ;;
  *) die "unknown TARGET '$TARGET' (cortex-m4, cortex-m33 or cortex-m55)" ;;
esac
command -v qemu-system-arm >/dev/null 2>&1 \
  || die "qemu-system-arm not found; install it with: apt-get install -y qemu-system-arm"
ELF=$CACHE_DIR/build/$TARGET/runner.elf
[[ -f "$ELF" ]] || die "$ELF not found; build it first: $FW_DIR/build.sh $CACHE_DIR $TARGET"
PLUGIN=$CACHE_DIR/build/insn_plugin.so

COUNT=both
EXEC_LOG=
TIMEOUT=600
FW_ARGS=()
abs_path() {  # semihosting resolves paths from QEMU's cwd; pass absolute ones
  local p
  p=$(realpath -m -- "$1")
  [[ "$p" != *[\ ,]* ]] || die "path '$p' contains a space or comma (not passable over semihosting)"
  echo "$p"
}
while [[ $# -gt 0 ]]; do
  opt=$1
  [[ $# -ge 2 ]] || die "$opt needs a value"
  val=$2
  shift 2
  case "$opt" in
    --model | --input)
      [[ -f "$val" ]] || die "$opt: no such file: $val"
      FW_ARGS+=("$opt" "$(abs_path "$val")") ;;
    --output | --dump-tensors) FW_ARGS+=("$opt" "$(abs_path "$val")") ;;
    --runs | --arena | --profile | --calibrate)
      [[ "$val" != *[\ ,]* || "$opt" == --calibrate ]] || die "bad value for $opt: $val"
      FW_ARGS+=("$opt" "$val") ;;
    --count) COUNT=$val ;;
    --exec-log) EXEC_LOG=$(realpath -m -- "$val") ;;
    --timeout) TIMEOUT=$val ;;
    *) die "unknown option $opt" ;;
  esac
done
case "$COUNT" in both | icount | exact) ;; *) die "--count must be both, icount or exact" ;; esac
if [[ "$COUNT" != icount && ! -f "$PLUGIN" ]]; then
  echo "run.sh: note: $PLUGIN missing, falling back to --count icount" >&2
  COUNT=icount
fi

# -semihosting-config arg=... : QEMU joins the args with spaces (argv for the
# firmware); a literal comma inside an option value is written ",,".
SEMI="enable=on,target=native,arg=runner"
for a in "${FW_ARGS[@]}"; do SEMI+=",arg=${a//,/,,}"; done

QEMU=(qemu-system-arm -M "$BOARD" -nographic -monitor none -serial none -kernel "$ELF"
  -semihosting-config "$SEMI")
[[ "$COUNT" == exact ]] || QEMU+=(-icount shift=0)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [[ "$COUNT" != icount ]]; then
  MARKER=$(arm-none-eabi-nm "$ELF" 2>/dev/null | awk '$3 == "wp_marker" {print "0x" $1}')
  [[ -n "$MARKER" ]] || die "wp_marker not found in $ELF (arm-none-eabi-nm needed)"
  QEMU+=(-plugin "$PLUGIN,marker=$MARKER,out=$TMP/markers.txt")
fi
[[ -z "$EXEC_LOG" ]] || QEMU+=(-singlestep -d exec,nochain -D "$EXEC_LOG")

rc=0
nice -n "${NICE:-10}" timeout "$TIMEOUT" "${QEMU[@]}" < /dev/null > "$TMP/stdout.txt" || rc=$?
REPORT=$TMP/stdout.txt
if [[ "$COUNT" != icount && -f "$TMP/markers.txt" ]]; then
  python3 "$FW_DIR/tools/exact_counts.py" "$REPORT" "$TMP/markers.txt" > "$TMP/merged1.txt"
  REPORT=$TMP/merged1.txt
fi
if [[ -n "$EXEC_LOG" && -f "$EXEC_LOG" ]]; then
  MARKER=${MARKER:-$(arm-none-eabi-nm "$ELF" | awk '$3 == "wp_marker" {print "0x" $1}')}
  python3 "$FW_DIR/tools/exec_log_count.py" "$EXEC_LOG" "$MARKER" > "$TMP/execlog.txt"
  python3 "$FW_DIR/tools/exact_counts.py" "$REPORT" "$TMP/execlog.txt" exec_log_instructions \
    > "$TMP/merged2.txt"
  REPORT=$TMP/merged2.txt
fi
cat "$REPORT"
[[ $rc -ne 124 ]] || echo "run.sh: error: QEMU timed out after $TIMEOUT s" >&2
exit $rc

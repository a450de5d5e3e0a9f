#!/usr/bin/env bash
# Build TensorFlow Lite Micro (CMSIS-NN kernels) for a Cortex-M core and the
# wearprune runner firmware that runs .tflite models under qemu-system-arm.
#
#   build.sh CACHE_DIR TARGET        TARGET: cortex-m4 | cortex-m33 | cortex-m55
#
# CACHE_DIR receives everything (nothing is written into the repository):
#   CACHE_DIR/tflm-<commit>/tflite-micro/     TFLM tree + downloads/ (extracted once per TFLM commit)
#   CACHE_DIR/tflm-<commit>/tflite-micro/gen/ TFLM build output (libtensorflow-microlite.a per core)
#   CACHE_DIR/build/<TARGET>/runner.elf       the firmware
#   CACHE_DIR/build/insn_plugin.so            QEMU TCG plugin for exact instruction counts
#   CACHE_DIR/logs/                           build logs
#
# Third-party archives are read from $WEARPRUNE_THIRD_PARTY (default
# ../shared/third_party beside the repository); nothing is downloaded.  Idempotent: a second call
# reuses the extracted tree and the built library (FORCE_TFLM=1 re-runs TFLM's
# make).  Compiles run under `nice -n ${NICE:-10}` with `make -j${JOBS:-2}`.
set -euo pipefail

die() { echo "build.sh: error: $*" >&2; exit 2; }

if [[ $# -ne 2 ]]; then
  echo "usage: $0 CACHE_DIR TARGET   (TARGET: cortex-m4 | cortex-m33 | cortex-m55)" >&2
  exit 2
fi
CACHE_DIR=$1
TARGET=$2
FW_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
THIRD_PARTY=${WEARPRUNE_THIRD_PARTY:-$(cd "$FW_DIR/../../../.." && pwd)/shared/third_party}
JOBS=${JOBS:-2}
NICE=(nice -n "${NICE:-10}")

EXTRA_MAKE_ARGS=()
case "$TARGET" in
  cortex-m4) TFLM_ARCH=cortex-m4+fp ;;
  cortex-m33) TFLM_ARCH=cortex-m33 ;;
  cortex-m55)
    TFLM_ARCH=cortex-m55
    # Debian 12's binutils 2.40 rejects the IT-predicated "vcvtne.f32.s32" GCC
    # emits when MVE is enabled (it parses it as MVE "vcvtn" + "e"; fixed in
    # binutils 2.41).  No if-conversion after reload = no such IT blocks.
    # GCC_TARGET_ARCH is TFLM's -mcpu= value; the option rides along with it.
    EXTRA_MAKE_ARGS=("GCC_TARGET_ARCH=cortex-m55 -fno-if-conversion2") ;;
  *) die "unknown TARGET '$TARGET' (use cortex-m4, cortex-m33 or cortex-m55)" ;;
esac

# --- toolchain ---------------------------------------------------------------
APT_HINT="apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
for tool in arm-none-eabi-gcc arm-none-eabi-g++ arm-none-eabi-ar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found; install the Arm toolchain with: $APT_HINT"
done
rdimon=$(arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -print-file-name=librdimon.a)
[[ "$rdimon" == /* && -f "$rdimon" ]] || die "newlib for arm-none-eabi not found; install it with: $APT_HINT"
for tool in make tar patch python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (needed to build TFLM)"
done

# --- sources: extract once per TFLM commit ------------------------------------
archive() {  # archive NAME-PREFIX -> path of the single matching archive
  local matches=("$THIRD_PARTY"/"$1"-*.tar.gz)
  [[ -f "${matches[0]}" ]] || die "no $1-*.tar.gz in $THIRD_PARTY (set WEARPRUNE_THIRD_PARTY)"
  [[ ${#matches[@]} -eq 1 ]] || die "several $1-*.tar.gz in $THIRD_PARTY"
  echo "${matches[0]}"
}
TFLM_TGZ=$(archive tflite-micro)
KEY=$(basename "$TFLM_TGZ" .tar.gz); KEY=${KEY#tflite-micro-}
mkdir -p "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd -P)  # physical: the build records absolute paths
SRC=$CACHE_DIR/tflm-$KEY
TFLM=$SRC/tflite-micro
LOGS=$CACHE_DIR/logs
mkdir -p "$LOGS"

exec 9>"$CACHE_DIR/.lock-$KEY"
flock 9  # one build at a time per cache + TFLM commit

if [[ ! -f "$SRC/.extracted" ]]; then
  echo "build.sh: extracting TFLM $KEY and its dependencies into $SRC" >&2
  t0=$SECONDS
  rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
  "${NICE[@]}" tar xzf "$TFLM_TGZ" -C "$SRC.tmp"
  MK=$SRC.tmp/tflite-micro/tensorflow/lite/micro/tools/make
  DL=$MK/downloads
  mkdir -p "$DL"
  # Archive top folders are already the names TFLM's download scripts use.
  for dep in cmsis_nn cmsis_6 flatbuffers gemmlowp ruy kissfft; do
    "${NICE[@]}" tar xzf "$(archive "$dep")" -C "$DL"
  done
  # Check that the archives are the revisions this TFLM pins.
  pinned_nn=$(sed -n 's/^ZIP_PREFIX_NN="\(.*\)"/\1/p' "$MK/ext_libs/cmsis_nn_download.sh")
  pinned_cmsis=$(sed -n 's/^  ZIP_PREFIX="\(.*\)"/\1/p' "$MK/ext_libs/cmsis_download.sh" | head -1)
  got_nn=$(basename "$(archive cmsis_nn)" .tar.gz); got_nn=${got_nn#cmsis_nn-}
  got_cmsis=$(basename "$(archive cmsis_6)" .tar.gz); got_cmsis=${got_cmsis#cmsis_6-}
  [[ "$pinned_nn" == "$got_nn"* ]] || echo "build.sh: warning: TFLM pins CMSIS-NN $pinned_nn, archive is $got_nn" >&2
  [[ "$pinned_cmsis" == "$got_cmsis"* ]] || echo "build.sh: warning: TFLM pins CMSIS $pinned_cmsis, archive is $got_cmsis" >&2
  # What flatbuffers_download.sh / kissfft_download.sh do after unzipping:
  # drop Bazel BUILD files (flatbuffers) and apply TFLM's patches.
  find "$DL/flatbuffers" \( -name BUILD -o -name BUILD.bazel \) -delete
  patch -s -p1 -l -d "$DL/flatbuffers" < "$MK/flatbuffers.patch"
  patch -s -p1 -l -d "$DL/kissfft" < "$SRC.tmp/tflite-micro/third_party/kissfft/kissfft.patch"
  # pigweed is only used by TFLM's own tests; an empty folder stops the git clone.
  mkdir -p "$DL/pigweed"
  rm -rf "$SRC" && mv "$SRC.tmp" "$SRC"
  touch "$SRC/.extracted"
  echo "build.sh: extracted in $((SECONDS - t0)) s" >&2
fi

# --- TFLM static library ------------------------------------------------------
# microlite_test= and the *_TESTS/BENCHMARKS overrides keep TFLM's Makefile from
# generating test/example sources at parse time (that needs numpy + Pillow).
# CORTEX_DFP_PATH: the ARM Cortex_DFP pack is not among the archives; the few
# device headers cortex_m_generic needs are in cmsis_device/, copied into the cache so that the
# library's recorded flags do not depend on where this package is installed.
mkdir -p "$CACHE_DIR/cmsis_device"
cp -ru "$FW_DIR/cmsis_device/." "$CACHE_DIR/cmsis_device/"
TFLM_MAKE=(make -C "$TFLM" -f tensorflow/lite/micro/tools/make/Makefile
  TARGET=cortex_m_generic TARGET_ARCH="$TFLM_ARCH" OPTIMIZED_KERNEL_DIR=cmsis_nn
  TOOLCHAIN=gcc TARGET_TOOLCHAIN_ROOT="$(dirname "$(command -v arm-none-eabi-gcc)")/"
  CORTEX_DFP_PATH="$CACHE_DIR/cmsis_device" BUILD_TYPE=release_with_logs
  microlite_test= MICRO_LITE_EXAMPLE_TESTS= MICRO_LITE_INTEGRATION_TESTS=
  MICRO_LITE_GEN_MUTABLE_OP_RESOLVER_TEST= MICRO_LITE_LAYER_BY_LAYER_OUTPUT=
  OLD_MICRO_LITE_BENCHMARKS= MICRO_LITE_BENCHMARKS= "${EXTRA_MAKE_ARGS[@]}")

OUT=$CACHE_DIR/build/$TARGET
mkdir -p "$OUT"
FLAGS_MK=$OUT/tflm_flags.mk
SIG_FILE=$OUT/tflm_make_args
SIG=$(printf '%q ' "${TFLM_MAKE[@]}")
STAMP=$OUT/.tflm-lib-built
if [[ -f "$SIG_FILE" && "$(cat "$SIG_FILE")" != "$SIG" ]]; then
  # TFLM's make does not track flags: different arguments need a clean library.
  echo "build.sh: TFLM make arguments changed for $TARGET; rebuilding its library from scratch" >&2
  if [[ -f "$FLAGS_MK" ]]; then
    old_lib=$(sed -n 's/^TFLM_MICROLITE_LIB_PATH := //p' "$FLAGS_MK")
    old_gen=$(dirname "$(dirname "$old_lib")")  # gen/<target>_<arch>_..._gcc
    [[ "$old_gen" != gen/?* ]] || rm -rf "${TFLM:?}/$old_gen"
  fi
  rm -f "$FLAGS_MK" "$STAMP"
fi
if [[ ! -f "$FLAGS_MK" || ! -f "$SIG_FILE" ]]; then
  "${TFLM_MAKE[@]}" -s print-CXXFLAGS print-CCFLAGS print-INCLUDES print-MICROLITE_LIB_PATH 2>/dev/null \
    | sed -n 's/^\(CXXFLAGS\|CCFLAGS\|INCLUDES\|MICROLITE_LIB_PATH\)=/TFLM_\1 := /p' > "$FLAGS_MK.tmp"
  [[ $(wc -l < "$FLAGS_MK.tmp") -eq 4 ]] || die "could not read TFLM's compiler flags (see $FLAGS_MK.tmp)"
  mv "$FLAGS_MK.tmp" "$FLAGS_MK"
  echo "$SIG" > "$SIG_FILE"
fi
LIB=$TFLM/$(sed -n 's/^TFLM_MICROLITE_LIB_PATH := //p' "$FLAGS_MK")

if [[ -f "$STAMP" && -f "$LIB" && "${FORCE_TFLM:-0}" != 1 ]]; then
  echo "build.sh: reusing $LIB" >&2
else
  echo "build.sh: building TFLM for $TARGET (TARGET_ARCH=$TFLM_ARCH, CMSIS-NN), log: $LOGS/tflm-$TARGET.log" >&2
  t0=$SECONDS
  if ! "${NICE[@]}" "${TFLM_MAKE[@]}" -j"$JOBS" microlite > "$LOGS/tflm-$TARGET.log" 2>&1; then
    tail -n 20 "$LOGS/tflm-$TARGET.log" >&2
    die "TFLM build failed for $TARGET (full log: $LOGS/tflm-$TARGET.log)"
  fi
  echo "$((SECONDS - t0))" > "$OUT/tflm_build_seconds"
  touch "$STAMP"
  echo "build.sh: TFLM library built in $((SECONDS - t0)) s" >&2
fi

# --- runner firmware ----------------------------------------------------------
if ! "${NICE[@]}" make -s -f "$FW_DIR/Makefile" TARGET="$TARGET" TFLM_DIR="$TFLM" TFLM_LIB="$LIB" \
    TFLM_FLAGS_MK="$FLAGS_MK" BUILD_DIR="$OUT" > "$LOGS/runner-$TARGET.log" 2>&1; then
  tail -n 30 "$LOGS/runner-$TARGET.log" >&2
  die "runner build failed for $TARGET (full log: $LOGS/runner-$TARGET.log)"
fi

# --- QEMU plugin for exact instruction counts (host C compiler, optional) ----
PLUGIN=$CACHE_DIR/build/insn_plugin.so
if command -v cc >/dev/null 2>&1; then
  if [[ ! -f "$PLUGIN" || "$FW_DIR/tools/insn_plugin.c" -nt "$PLUGIN" ]]; then
    cc -O2 -shared -fPIC -Wall -o "$PLUGIN" "$FW_DIR/tools/insn_plugin.c" \
      || echo "build.sh: warning: could not build the QEMU plugin (exact counts unavailable)" >&2
  fi
else
  echo "build.sh: note: no host C compiler, skipping the QEMU plugin (exact counts unavailable)" >&2
fi

echo "build.sh: library $LIB ($(stat -c %s "$LIB") bytes)" >&2
echo "build.sh: firmware $OUT/runner.elf" >&2
echo "$OUT/runner.elf"

#!/usr/bin/env bash
# The direct convolution kernels (xsimd) at every SIMD width we meet, not only the CI
# machine's: builds tests/simd/check_conv2d_direct.cpp with the kernels for SSE2, AVX2+FMA
# and -march=native, in float and double, and checks 300 random shapes against a plain loop.
# A width the CPU cannot run (AVX2 on an old machine) is skipped. Exits non-zero on a mismatch.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
status=0
for arch in "" "-march=haswell" "-march=native"; do
  if [ "$arch" = "-march=haswell" ] && { [[ "$cpu_flags" != *" avx2 "* ]] || [[ "$cpu_flags" != *" fma "* ]]; }; then
    echo "simd_widths: skipping AVX2 (this CPU has no avx2/fma)"
    continue
  fi
  for scalar in "" "-DTAPEGRAD_DOUBLE"; do
    g++ -std=c++20 -O2 $arch $scalar -ffp-contract=off -Wall -Wextra -Werror -Iinclude \
      -o "$out/check" tests/simd/check_conv2d_direct.cpp src/ops/kernels/fast/conv2d_direct.cpp \
      src/core/parallel.cpp -lpthread
    if result="$("$out/check")"; then :; else status=1; fi
    echo "simd_widths [${arch:-default (SSE2)} ${scalar:-float}]: $(tail -1 <<<"$result")"
  done
done
exit "$status"

# Sourced by the project's scripts before running a program.
#
# OpenBLAS 0.3.21 (Debian 12) does not recognise some newer x86 CPUs and falls back to its
# generic "Prescott" kernels, 4-6x slower at GEMM. It reads OPENBLAS_CORETYPE once, when the
# library loads, so the choice has to be made before the program starts: name the kernels
# the CPU's features allow, unless the user already chose.
if [ -z "${OPENBLAS_CORETYPE+x}" ] && [ -r /proc/cpuinfo ]; then
  _tg_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  _tg_has() { case "$_tg_flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
  if _tg_has avx512f && _tg_has avx512dq && _tg_has avx512bw && _tg_has avx512vl; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif _tg_has avx2 && _tg_has fma; then
    export OPENBLAS_CORETYPE=Haswell
  fi
  unset -f _tg_has
  unset _tg_flags
fi

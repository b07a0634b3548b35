#!/usr/bin/env bash
# expect_abort.sh MPIEXEC NP PROGRAM: runs PROGRAM on NP ranks (rank 1 throws) and checks that
# the job ends within 60 s, fails, and says which rank died.
set -u
out=$(timeout 60 "$1" --oversubscribe -np "$2" "$3" 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung (killed after 60 s)"; exit 1; fi
if [ "$rc" -eq 0 ]; then echo "FAIL: the job exited 0 although rank 1 threw"; exit 1; fi
if ! grep -q "tg::dist: rank 1 of $2: uncaught exception: deliberate failure" <<<"$out"; then
  echo "FAIL: no message naming rank 1"; exit 1
fi
echo "OK: exit code $rc, rank 1 named"

#!/usr/bin/env bash
# check_sync_example.sh MPIEXEC NP PROGRAM: runs ch310_sync_batchnorm --quick on NP ranks and
# checks the chapter's claim in its output: with plain BatchNorm the ranks' running_mean differ
# after every epoch, with SyncBatchNorm they are identical; and that its files were written.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log=$(timeout 300 "$1" --oversubscribe -np "$2" "$3" --quick --out "$out" 2>&1)
echo "$log"
fail() { echo "FAIL: $*"; exit 1; }
# The lines after "BatchNorm, epoch" / "SyncBatchNorm, epoch" end in "largest difference ...".
plain=$(grep -A$(($2 + 1)) '^  BatchNorm, epoch' <<<"$log" | grep 'largest difference' || true)
sync=$(grep -A$(($2 + 1)) '^  SyncBatchNorm, epoch' <<<"$log" | grep 'largest difference' || true)
[ "$(wc -l <<<"$plain")" -eq 2 ] || fail "expected 2 epochs of BatchNorm statistics"
[ "$(wc -l <<<"$sync")" -eq 2 ] || fail "expected 2 epochs of SyncBatchNorm statistics"
if grep -q 'identical' <<<"$plain"; then fail "plain BatchNorm: ranks should differ"; fi
[ "$(grep -c 'identical on every rank' <<<"$sync")" -eq 2 ] || fail "SyncBatchNorm: ranks differ"
for f in ch310_sync_batchnorm_steps.csv ch310_sync_batchnorm_epochs.csv ch310_sync_batchnorm.gp; do
  [ -s "$out/$f" ] || fail "$f not written"
done
head -1 "$out/ch310_sync_batchnorm_steps.csv" | grep -q "syncbn_rank$(($2 - 1))_running_mean0" ||
  fail "steps CSV lacks rank $(($2 - 1))"
echo "OK"

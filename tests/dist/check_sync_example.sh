#!/usr/bin/env bash
# check_sync_example.sh MPIEXEC NP PROGRAM: runs ch310_sync_batchnorm --quick on NP ranks and
# checks the chapter's claim in its output: with plain BatchNorm the ranks' running_mean differ
# after every epoch, with SyncBatchNorm they are identical; every epoch's test accuracy is well
# above chance and the same on ranks whose weights are bit-identical; its files were written.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# MALLOC_PERTURB_: glibc fills every freed and every fresh heap block with a byte pattern, so
# numbers read from freed or uninitialised memory come out as garbage every time, not only when
# the heap layout happens to overwrite them (as a dangling reference to the logits once did).
log=$(MALLOC_PERTURB_=165 timeout 300 "$1" --oversubscribe -np "$2" "$3" --quick --out "$out" 2>&1)
echo "$log"
fail() { echo "FAIL: $*"; exit 1; }
# The lines after "BatchNorm, epoch" / "SyncBatchNorm, epoch" end in "largest difference ...".
plain=$(grep -A$(($2 + 1)) '^  BatchNorm, epoch' <<<"$log" | grep 'largest difference' || true)
sync=$(grep -A$(($2 + 1)) '^  SyncBatchNorm, epoch' <<<"$log" | grep 'largest difference' || true)
[ "$(wc -l <<<"$plain")" -eq 2 ] || fail "expected 2 epochs of BatchNorm statistics"
[ "$(wc -l <<<"$sync")" -eq 2 ] || fail "expected 2 epochs of SyncBatchNorm statistics"
if grep -q 'identical' <<<"$plain"; then fail "plain BatchNorm: ranks should differ"; fi
[ "$(grep -c 'identical on every rank' <<<"$sync")" -eq 2 ] || fail "SyncBatchNorm: ranks differ"
# Eval accuracy, one line per epoch and run: "test accuracy (eval mode):  rank 0 65.40%  ...".
# Every run learns (well above the 10% of guessing) and, as the weights and buffers of
# SyncBatchNorm's ranks are bit-identical, its ranks score the same on the same test images.
acc=$(grep 'test accuracy (eval mode)' <<<"$log" || true)
[ "$(wc -l <<<"$acc")" -eq 4 ] || fail "expected 4 lines of test accuracy"
while read -r pct; do
  awk -v p="${pct%\%}" 'BEGIN { exit !(p > 30) }' || fail "test accuracy $pct: not above 30%"
done < <(grep -o '[0-9.]*%' <<<"$acc")
same=$(grep -A1 'weights and buffers: bit-identical on every rank' <<<"$log" |
  grep 'test accuracy' || true)
[ "$(wc -l <<<"$same")" -eq 2 ] || fail "SyncBatchNorm: expected bit-identical weights, 2 epochs"
while read -r line; do
  [ "$(grep -o '[0-9.]*%' <<<"$line" | sort -u | wc -l)" -eq 1 ] ||
    fail "bit-identical ranks score differently: $line"
done <<<"$same"
for f in ch310_sync_batchnorm_steps.csv ch310_sync_batchnorm_epochs.csv ch310_sync_batchnorm.gp; do
  [ -s "$out/$f" ] || fail "$f not written"
done
head -1 "$out/ch310_sync_batchnorm_steps.csv" | grep -q "syncbn_rank$(($2 - 1))_running_mean0" ||
  fail "steps CSV lacks rank $(($2 - 1))"
echo "OK"

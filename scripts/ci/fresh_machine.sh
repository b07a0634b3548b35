#!/usr/bin/env bash
# fresh_machine.sh: the README's two commands as a new user runs them, on a pristine Debian 12.
#
#   1. a pristine Debian 12 minbase root (debootstrap from this machine's own apt mirror, the
#      first URIs: line of /etc/apt/sources.list.d/*.sources), kept as a tarball in
#      $TAPEGRAD_CI_CACHE (default /var/cache/tapegrad-ci) and rebuilt when absent;
#   2. a fresh copy of it, with a clone of this repository's committed HEAD in /root/tapegrad;
#   3. as root under `env -i` (PATH, HOME, TERM only), with /proc, /sys, a new devpts on
#      /dev/pts and a tmpfs on /dev/shm mounted and resolv.conf copied in, exactly
#        bash scripts/test.sh
#        bash scripts/run_chapter.sh --quick
#      and fails when either fails, or when out/ch310/index.html or a figure is missing; then
#      README's commands as a reader runs them after the main job, in order
#      (tests/check_docs.py reader);
#   4. prints each phase's time and what each command installed (groups, packages, download,
#      disk): the figures of README's install table.
# The compiler cache: the build group installs ccache, which test.sh and run_chapter.sh use, and
# the root's cache directory (/root/.cache/ccache) is $TAPEGRAD_CI_CACHE/ccache, bind-mounted,
# so a later run reuses the objects of an earlier one (the clone is always /root/tapegrad). It
# changes how long the builds take, not what they check: ccache hashes every header a file
# included, so a header a package no longer brings makes a miss and a real, failing compile.
# TAPEGRAD_FRESH_CCACHE=0 gives the root an empty cache of its own (every object compiled).
# Needs root (debootstrap, chroot, mount). Uncommitted edits are not tested: commit first.
# Everything it mounts is unmounted on every exit path, deepest first, and the root is removed
# only when nothing is mounted under it. TAPEGRAD_FRESH_KEEP=1 keeps the root (for a look).
#   bash scripts/ci/fresh_machine.sh              all of the above
#   bash scripts/ci/fresh_machine.sh --pristine   only step 1 (fill the cache)
set -euo pipefail
cd "$(dirname "$0")/../.."
pristine_only=0
case "${1:-}" in
  --pristine) pristine_only=1 ;;
  "") ;;
  *) echo "usage: bash scripts/ci/fresh_machine.sh [--pristine]" >&2; exit 2 ;;
esac
repo="$PWD"
t_all=$SECONDS
phase_t=$SECONDS
declare -a summary=()
phase_done() {  # phase_done NAME: records and prints how long the phase took
  local line
  line="$(printf '%-38s %5d s' "$1" $((SECONDS - phase_t)))"
  summary+=("$line")
  echo "=== fresh_machine: $line"
  phase_t=$SECONDS
}

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_machine: needs root (debootstrap, chroot and mount); run it as root" >&2
  exit 1
fi
cache="${TAPEGRAD_CI_CACHE:-/var/cache/tapegrad-ci}"
tarball="$cache/debian12-minbase.tar"
mirror="$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
mirror="${mirror%% *}"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
mkdir -p "$cache"

# --- unmount and remove, on every exit path ----------------------------------------------------
roots=()  # trees to clean up (the pristine build, the test root)
mounts_under() {  # the mount points under $1, deepest first (/proc/mounts escapes spaces as \040)
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r
}
cleanup() {
  local status=$? r m
  for r in "${roots[@]-}"; do
    [ -n "$r" ] && [ -d "$r" ] || continue
    for m in $(mounts_under "$r"); do
      umount "$m" 2>/dev/null || umount -l "$m" || echo "fresh_machine: could not unmount $m" >&2
    done
    if [ -n "$(mounts_under "$r")" ]; then
      echo "fresh_machine: still mounted under $r, not removing it:" >&2
      mounts_under "$r" >&2
      status=1
    elif [ "${TAPEGRAD_FRESH_KEEP:-0}" = 1 ] && [ "$r" = "${root:-}" ]; then
      echo "fresh_machine: kept $r (TAPEGRAD_FRESH_KEEP=1)"
    else
      rm -rf --one-file-system "$r"
    fi
  done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. the pristine root, cached as a tarball --------------------------------------------------
if [ ! -s "$tarball" ]; then
  if ! command -v debootstrap >/dev/null; then
    echo "fresh_machine: installing debootstrap"
    apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 || {
      apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null
    }
  fi
  build="$cache/build.$$"
  roots+=("$build")
  echo "fresh_machine: building a pristine Debian 12 minbase root from $mirror" \
    "(debootstrap, a few minutes; log in $cache/debootstrap.log)"
  if ! debootstrap --variant=minbase bookworm "$build" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -n 30 "$cache/debootstrap.log" >&2
    exit 1
  fi
  [ -z "$(mounts_under "$build")" ] || { echo "fresh_machine: debootstrap left mounts" >&2; exit 1; }
  tar -C "$build" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$build"
  phase_done "pristine root (debootstrap, cached)"
else
  echo "fresh_machine: the pristine root from the cache: $tarball"
fi
[ "$pristine_only" = 0 ] || exit 0

# --- 2. a fresh copy, the repository cloned into it --------------------------------------------
root="$(mktemp -d /var/tmp/tapegrad-fresh.XXXXXX)"
roots+=("$root")
tar -C "$root" --numeric-owner -xf "$tarball"
base_pkgs="$(chroot "$root" dpkg-query -W -f='${Status}\n' | grep -c 'install ok installed')"
base_mb="$(du -sm --one-file-system "$root" | cut -f1)"
echo "fresh_machine: pristine root $root: $base_pkgs packages, $base_mb MB"
head="$(git -C "$repo" rev-parse HEAD)"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
  echo "fresh_machine: note: uncommitted edits are not tested (the clone is HEAD, $head)"
git clone --quiet --no-hardlinks "$repo" "$root/root/tapegrad"
git -C "$root/root/tapegrad" checkout --quiet --detach "$head"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
phase_done "copy of the root, clone of $(git -C "$repo" rev-parse --short HEAD)"

# --- 3. mounts, then the README's commands under env -i ----------------------------------------
for d in proc sys dev/pts dev/shm; do mkdir -p "$root/$d"; done
# debootstrap makes the device nodes it can; make sure of the few every program expects.
for node in "null c 1 3" "zero c 1 5" "full c 1 7" "random c 1 8" "urandom c 1 9" "tty c 5 0"; do
  set -- $node
  [ -e "$root/dev/$1" ] || { mknod -m 666 "$root/dev/$1" "$2" "$3" "$4"; }
done
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
if [ "${TAPEGRAD_FRESH_CCACHE:-1}" != 0 ]; then
  mkdir -p "$cache/ccache" "$root/root/.cache/ccache"
  mount --bind "$cache/ccache" "$root/root/.cache/ccache"
  echo "fresh_machine: the root's compiler cache is $cache/ccache ($(du -sm "$cache/ccache" | cut -f1) MB;" \
    "TAPEGRAD_FRESH_CCACHE=0 for none)"
fi
rm -f "$root/dev/ptmx"
ln -s pts/ptmx "$root/dev/ptmx"

run_in_root() {  # run_in_root LOG COMMAND...: in /root/tapegrad, as a new user would
  local log="$1"
  shift
  set +e
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM="${TERM:-dumb}" /bin/bash -c 'cd /root/tapegrad && "$@"' bash "$@" 2>&1 |
    tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}
cache_stats() {  # cache_stats WHEN: the compiler cache's hits and misses so far, zeroed after
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root ccache --print-stats 2>/dev/null |
    awk -v w="$1" -F'\t' '$1 ~ /^(direct_cache_hit|preprocessed_cache_hit|cache_miss)$/ { n[$1] = $2 }
      END { printf "fresh_machine: compiler cache %s: %d hits, %d misses\n", w,
            n["direct_cache_hit"] + n["preprocessed_cache_hit"], n["cache_miss"] }' || true
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root ccache --zero-stats >/dev/null 2>&1 || true
}
logs="${TAPEGRAD_FRESH_LOGS:-$cache/logs}"  # test.log and chapter.log
mkdir -p "$logs"
# What each command would install on the pristine root by itself (apt's figures, nothing
# installed): the groups as scripts/test.sh and scripts/run_chapter.sh name them.
test_groups="$(sed -n 's/^groups=(\(.*\))$/\1/p' scripts/test.sh | head -n 1)"
chapter_groups="$(sed -n 's/^bash scripts\/setup.sh \([a-z ]*\)$/\1/p' scripts/run_chapter.sh | head -n 1)"
plans=()
for g in "$test_groups" "$chapter_groups"; do
  run_in_root "$logs/plan.txt" bash scripts/setup.sh --plan $g >/dev/null
  plans+=("$(grep '^setup: plan: .* packages with' "$logs/plan.txt" | sed 's/^setup: plan: //')")
done
# The packages run_chapter.sh's own groups bring to the pristine root (it runs after test.sh
# here, whose groups would hide one it lacks: checked after test.sh, below).
chapter_closure=" $(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package} ' 2>/dev/null)"
chapter_closure+=" $(sed -n 's/^setup: plan: would install: //p' "$logs/plan.txt") "
printf "fresh_machine: alone on the pristine root, setup.sh would install for %s\n" "${plans[@]}"
phase_t=$SECONDS

echo
echo "=== fresh_machine: bash scripts/test.sh (log: $logs/test.log)"
run_in_root "$logs/test.log" bash scripts/test.sh ||
  { echo "fresh_machine: FAILED: bash scripts/test.sh on a pristine Debian 12" >&2; exit 1; }
phase_done "bash scripts/test.sh"
cache_stats "after test.sh"
after_test_pkgs="$(chroot "$root" dpkg-query -W -f='${Status}\n' | grep -c 'install ok installed')"

# What run_chapter.sh and the files it runs call by absolute path (/usr/bin/python3 for the
# page), and the tools it and its programs run by name: each must come from a package of the
# pristine root or of run_chapter.sh's own groups, not only from test.sh's.
needs="$(grep -ohE '/usr/bin/[A-Za-z0-9._+-]+' scripts/run_chapter.sh scripts/chapter_lib.sh \
  scripts/env.sh scripts/chapter_page.py | sort -u) cmake c++ make gnuplot dot"
for prog in $needs; do
  owner="$(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "p=\$(command -v $prog) && dpkg-query -S \"\$p\" 2>/dev/null ||
    dpkg-query -S \"\$(readlink -f \"\$p\")\"" 2>/dev/null | head -n 1 | cut -d: -f1 | cut -d, -f1)" || true
  case "$chapter_closure" in
    *" ${owner:-?} "* | *" ${owner:-?}:amd64 "*) ;;
    *) echo "fresh_machine: FAILED: run_chapter.sh runs $prog (package ${owner:-not found}), which" \
         "its groups ($chapter_groups) do not install on a pristine Debian 12" >&2
       exit 1 ;;
  esac
done
echo "fresh_machine: run_chapter.sh's groups ($chapter_groups) install what it runs: $(echo $needs)"

echo
echo "=== fresh_machine: bash scripts/run_chapter.sh --quick (log: $logs/chapter.log)"
run_in_root "$logs/chapter.log" bash scripts/run_chapter.sh --quick ||
  { echo "fresh_machine: FAILED: bash scripts/run_chapter.sh --quick on a pristine Debian 12" >&2; exit 1; }
phase_done "bash scripts/run_chapter.sh --quick"
cache_stats "after run_chapter.sh"
after_chapter_pkgs="$(chroot "$root" dpkg-query -W -f='${Status}\n' | grep -c 'install ok installed')"

# --- 4. the page and its figures ----------------------------------------------------------------
out="$root/root/tapegrad/out/ch310"
fail=0
[ -s "$out/index.html" ] || { echo "fresh_machine: FAILED: out/ch310/index.html is missing" >&2; fail=1; }
# Every program of run_chapter.sh ran (a line in runs.tsv) ...
programs="$(sed -n '/^programs=(/,/)/p' scripts/run_chapter.sh | tr -d '()' | sed 's/programs=//' | tr -s ' \n' '\n' | grep . || true)"
for p in $programs; do
  grep -q "^$p	" "$out/runs.tsv" 2>/dev/null ||
    { echo "fresh_machine: FAILED: $p did not run (no line in out/ch310/runs.tsv)" >&2; fail=1; }
done
# ... every gnuplot script a program wrote has its figure, and the figures are PNGs ...
n_png=0
for gp in "$out"/*.gp; do
  [ -e "$gp" ] || continue
  png="${gp%.gp}.png"
  if [ ! -s "$png" ] || [ "$(head -c 4 "$png" | tail -c 3)" != "PNG" ]; then
    echo "fresh_machine: FAILED: $(basename "$gp") has no figure $(basename "$png")" >&2
    fail=1
  fi
done
for png in "$out"/*.png; do [ -e "$png" ] && n_png=$((n_png + 1)); done
# ... every figure of README's figure table ("| figure | what it shows |") is there, and the
# page shows them all.
readme_figures="$(awk '/^\| figure \| what it shows \|/ { f = 1 } f && /^$/ { exit } f' README.md |
  grep -oE '^\| `[a-z0-9_]+\.png`' | tr -d '|` ' || true)"
[ -n "$readme_figures" ] || { echo "fresh_machine: FAILED: no figure table in README.md" >&2; fail=1; }
for want in $readme_figures; do
  [ -s "$out/$want" ] || { echo "fresh_machine: FAILED: figure $want (README's figure table) is missing" >&2; fail=1; }
done
n_img="$(grep -o '<img ' "$out/index.html" 2>/dev/null | wc -l || true)"
[ "$n_img" -ge "$n_png" ] ||
  { echo "fresh_machine: FAILED: index.html shows $n_img images, out/ch310 has $n_png figures" >&2; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "fresh_machine: out/ch310/index.html with $n_img images; $n_png figures"

# --- 4b. the page in a real browser -------------------------------------------------------------
# scripts/ci/page_live.sh needs the CTest quick runs test.sh left in build/ci: it runs here, in
# the same root. Its 1280 px screenshot is kept beside the logs.
echo
echo "=== fresh_machine: bash scripts/ci/page_live.sh (log: $logs/page_live.log)"
run_in_root "$logs/page_live.log" bash scripts/ci/page_live.sh ||
  { echo "fresh_machine: FAILED: scripts/ci/page_live.sh (the page in headless Chromium)" >&2; exit 1; }
cp "$root/root/tapegrad/build/ci/page_live/index_1280.png" "$logs/index_1280.png" &&
  echo "fresh_machine: the page's first screen at 1280 px: $logs/index_1280.png"
phase_done "bash scripts/ci/page_live.sh"

# --- 4c. README's commands in the reader's order, after the main job ---------------------------
# Every README block not marked "not run by tests/check_docs.py", as written, in order, in this
# root's clone: build/release holds what run_chapter.sh built and nothing else, so a command
# running a program the main job does not build fails here (CTest's docs test runs them in a
# build that has every program). Last, since the blocks write into out/.
echo
echo "=== fresh_machine: README's commands after the main job (log: $logs/readme.log)"
run_in_root "$logs/readme.log" /usr/bin/python3 tests/check_docs.py reader . ||
  { echo "fresh_machine: FAILED: a README command, run as written after run_chapter.sh" >&2; exit 1; }
phase_done "README's commands after the main job"

# --- 5. the figures of README's install table ---------------------------------------------------
echo
echo "=== fresh_machine: summary (pristine Debian 12 minbase: $base_pkgs packages, $base_mb MB)"
for l in "${summary[@]}"; do echo "  $l"; done
for l in "${plans[@]}"; do echo "  alone on the pristine root: $l"; done
for step in test chapter; do
  echo "  $step: $(grep -E '^setup: (installing|done in|.*already installed)' "$logs/$step.log" | tr '\n' ' ')"
done
echo "  packages: $base_pkgs pristine, $after_test_pkgs after test.sh, $after_chapter_pkgs after run_chapter.sh;" \
  "root $(du -sm --one-file-system "$root" | cut -f1) MB with builds"
echo "fresh_machine: passed in $((SECONDS - t_all)) s"

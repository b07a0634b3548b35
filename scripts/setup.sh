#!/usr/bin/env bash
# Installs the Debian 12 packages a command needs, in named groups, and nothing else:
#
#   bash scripts/setup.sh                 # the group "build" (compiler, CMake, libraries)
#   bash scripts/setup.sh build chapter   # several groups
#   bash scripts/setup.sh --list          # the groups and their packages
#   bash scripts/setup.sh --plan GROUP... # what apt would install (from the current package
#                                         # lists), without installing: count, download, disk
#
# Idempotent: packages already installed are skipped; when all are, it says so and stops.
# Otherwise it says what it installs and roughly how long it takes, refreshes the package
# lists, installs with --no-install-recommends and keeps apt/dpkg's output in a log file
# (TAPEGRAD_SETUP_LOG, default /tmp/tapegrad-setup.log), printing a progress line now and
# then. Works as root, or through sudo when it is present.
set -euo pipefail

# --- the groups (other scripts ask for the ones they need) -----------------------------------
declare -A GROUP_PACKAGES GROUP_WHAT
GROUP_WHAT[build]="compile the library, tests and programs (ccache: a rebuild reuses what did not change)"
GROUP_PACKAGES[build]="build-essential cmake pkg-config ccache
  libxtensor-dev xtl-dev libxsimd-dev libxtensor-blas-dev libopenblas-dev
  zlib1g-dev libcli11-dev doctest-dev nlohmann-json3-dev"
GROUP_WHAT[chapter]="the chapter's figures, tape graph, Fashion-MNIST; python3 writes the page"
GROUP_PACKAGES[chapter]="gnuplot-nox graphviz dataset-fashion-mnist python3 fonts-dejavu-core"
GROUP_WHAT[test]="the test scripts CTest runs (python3 standard library only)"
GROUP_PACKAGES[test]="python3"
GROUP_WHAT[notebooks]="execute notebooks/*.ipynb (nbconvert, matplotlib), open them (Jupyter Notebook)"
GROUP_PACKAGES[notebooks]="jupyter-nbconvert python3-ipykernel python3-matplotlib python3-numpy
  jupyter-notebook"
GROUP_WHAT[browser]="render out/ch310/index.html headless (the page check)"
GROUP_PACKAGES[browser]="chromium nodejs fonts-dejavu-core"
GROUP_WHAT[torch]="PyTorch: only the benchmark and regenerating tests/reference/"
GROUP_PACKAGES[torch]="python3 python3-torch python3-numpy"
GROUP_WHAT[debug]="step through the programs"
GROUP_PACKAGES[debug]="gdb lldb python3-lldb-14"
GROUP_WHAT[sanitizers]="clang with its sanitizer runtimes"
GROUP_PACKAGES[sanitizers]="clang libclang-rt-14-dev"
GROUP_WHAT[clang]="clang++ with libc++ (the clang preset, as on macOS)"
GROUP_PACKAGES[clang]="clang libc++-dev libc++abi-dev"
GROUP_WHAT[mpi]="OpenMPI (SyncBatchNorm)"
GROUP_PACKAGES[mpi]="libopenmpi-dev openmpi-bin"
GROUP_WHAT[perf]="callgrind instruction counts"
GROUP_PACKAGES[perf]="valgrind"
GROUP_WHAT[live]="rebuild the page's live figure (emscripten; only after changing its sources: scripts/build_live.sh)"
GROUP_PACKAGES[live]="emscripten node-acorn"
GROUP_WHAT[fresh]="debootstrap: CI's pristine Debian 12 root (scripts/ci/fresh_machine.sh)"
GROUP_PACKAGES[fresh]="debootstrap"
GROUP_ORDER=(build chapter test notebooks browser torch debug sanitizers clang mpi perf live fresh)

LOG="${TAPEGRAD_SETUP_LOG:-/tmp/tapegrad-setup.log}"

plan_figures() {  # sets count, get, disk, download_mb for "${missing[@]}"; $1: apt-get prefix
  local plan apt_says
  plan="$(apt-get install -s --no-install-recommends "${missing[@]}" 2>&1)" || {
    echo "setup: apt cannot install ${missing[*]}:" >&2
    echo "$plan" | grep -E '^(E:|  )' >&2 || echo "$plan" | tail -n 10 >&2
    exit 1
  }
  count="$(echo "$plan" | grep -c '^Inst ' || true)"
  would_install="$(echo "$plan" | sed -n 's/^Inst \([^ ]*\).*/\1/p' | tr '\n' ' ')"
  apt_says="$(cd / && LC_ALL=C "$@" apt-get install --assume-no --no-install-recommends \
    "${missing[@]}" 2>/dev/null || true)"
  # "Need to get 127 MB/176 MB of archives." and "After this operation, 734 MB of additional..."
  get="$(echo "$apt_says" | sed -n 's/^Need to get \([0-9.,]* [kMG]B\).*/\1/p')"
  disk="$(echo "$apt_says" | sed -n 's/^After this operation, \([0-9.,]* [kMG]B\).*/\1/p')"
  download_mb="$(echo "${get:-0 MB}" | awk '{gsub(",", "", $1); m = $1;
    if ($2 == "kB") m /= 1000; if ($2 == "GB") m *= 1000; printf "%d", m}')"
}

usage() {
  echo "usage: bash scripts/setup.sh [GROUP...]   (default: build)"
  echo "groups:"
  for g in "${GROUP_ORDER[@]}"; do
    printf '  %-10s %s\n' "$g" "${GROUP_WHAT[$g]}"
    echo ${GROUP_PACKAGES[$g]} | fold -s -w 64 | sed 's/^/               /'
  done
}

groups=()
plan_only=0
for a in "$@"; do
  case "$a" in
    -h | --help | --list) usage; exit 0 ;;
    --plan) plan_only=1 ;;
    *)
      if [ -z "${GROUP_PACKAGES[$a]+x}" ]; then
        echo "setup: unknown group '$a' (groups: ${GROUP_ORDER[*]})" >&2
        exit 2
      fi
      groups+=("$a") ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || groups=(build)

# --- what is missing --------------------------------------------------------------------------
wanted=()
for g in "${groups[@]}"; do
  for p in ${GROUP_PACKAGES[$g]}; do
    case " ${wanted[*]-} " in *" $p "*) ;; *) wanted+=("$p") ;; esac
  done
done
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: ${groups[*]}: all ${#wanted[@]} packages already installed"
  exit 0
fi

if [ "$plan_only" = 1 ]; then  # from the package lists as they are; nothing is installed
  plan_figures env
  echo "setup: plan: ${groups[*]}: $count packages with their dependencies" \
    "(${get:-?} to download, ${disk:-?} on disk)"
  echo "setup: plan: would install: $would_install"
  exit 0
fi

# --- root, sudo, or a clear message -----------------------------------------------------------
# sudo resets the environment, so DEBIAN_FRONTEND is passed through env(1) explicitly.
if [ "$(id -u)" -eq 0 ]; then
  AS_ROOT=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1; then
  AS_ROOT=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "setup: ${groups[*]} needs these Debian packages, and installing them needs root:" >&2
  echo "  ${missing[*]}" >&2
  echo "Run as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "setup: ${groups[*]}: ${#missing[@]} of ${#wanted[@]} packages missing: ${missing[*]}"
echo "setup: apt/dpkg output goes to $LOG"
: >"$LOG"
echo "setup: refreshing the package lists (apt-get update, about 10-30 s)..."
if ! "${AS_ROOT[@]}" apt-get update >>"$LOG" 2>&1; then
  echo "setup: apt-get update failed; last lines of $LOG:" >&2
  tail -n 15 "$LOG" >&2
  exit 1
fi

# How much: the packages apt would install with their dependencies, the download and the disk.
plan_figures "${AS_ROOT[@]}"
# A rough model (measured here: 100 packages, 127 MB in 137 s): download at ~10 MB/s, ~1 s
# per package to unpack and configure.
secs=$(( ${download_mb:-0} / 10 + count + 10 ))
if [ "$secs" -lt 90 ]; then eta="about $secs s"; else eta="about $(( (secs + 30) / 60 )) minutes"; fi
echo "setup: installing $count packages with their dependencies (${get:-?} to download," \
  "${disk:-?} on disk), $eta..."

# Install in the background; every 15 s say how far apt and dpkg have got, from the log: apt
# logs "Get:" per download, dpkg "Unpacking X" and later "Setting up X" (it unpacks packages in
# batches and sets them up after), and what it is doing now. Setting up can take minutes on one
# package (triggers, Python byte-compiling): the line then says so, with the time on it.
start=$SECONDS
base=$(($(wc -l <"$LOG") + 1))  # the install's lines start here (the update's are above)
"${AS_ROOT[@]}" apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" \
  >>"$LOG" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' INT TERM
last_counts="" since=$SECONDS
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 1 15); do
    sleep 1
    kill -0 "$pid" 2>/dev/null || break
  done
  if kill -0 "$pid" 2>/dev/null; then
    lines="$(tail -n +"$base" "$LOG")"
    done_n="$(grep -c '^Setting up ' <<<"$lines" || true)"
    got_n="$(grep -c '^Get:' <<<"$lines" || true)"
    unpacked_n="$(grep -c '^Unpacking ' <<<"$lines" || true)"
    now="$(grep -E '^(Get:|Unpacking |Setting up |Processing triggers for )' <<<"$lines" | tail -n 1 |
      sed -E 's/^Get:[0-9]+ [^ ]+ [^ ]+ [^ ]+ ([^ ]+).*/downloading \1/; s/^Unpacking ([^ ]+).*/unpacking \1/;
              s/^Setting up ([^ ]+).*/setting up \1/; s/^Processing triggers for ([^ ]+).*/triggers of \1/')"
    counts="$got_n $unpacked_n $done_n"
    [ "$counts" = "$last_counts" ] || { last_counts="$counts"; since=$SECONDS; }
    still=""
    if [ $((SECONDS - since)) -ge 30 ]; then
      still="; on it for $((SECONDS - since)) s"
      case "$now" in
        setting* | triggers*) still+=" (configuring is the slow part; not stuck)" ;;
        unpacking*) still+=" (a large package; not stuck)" ;;
      esac
    fi
    echo "setup:   ... $((SECONDS - start)) s: $got_n downloaded, $unpacked_n unpacked," \
      "$done_n of $count set up; now ${now:-starting}$still"
  fi
done
status=0
wait "$pid" || status=$?
trap - INT TERM
if [ "$status" -ne 0 ]; then
  echo "setup: apt-get install failed (exit $status); last lines of $LOG:" >&2
  tail -n 20 "$LOG" >&2
  exit "$status"
fi
echo "setup: done in $((SECONDS - start)) s (${groups[*]})"

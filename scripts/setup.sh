#!/usr/bin/env bash
# Installs every Debian package tapegrad needs. Idempotent: when all are present it does
# nothing; otherwise it runs `apt-get update` once and installs what is missing.
# Needs root (or sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config           # compiler and build
  libxtensor-dev xtl-dev libxsimd-dev         # arrays
  libxtensor-blas-dev libopenblas-dev         # GEMM through BLAS
  zlib1g-dev                                  # gzip-compressed IDX files
  doctest-dev                                 # unit tests
  libcli11-dev                                # command-line flags of the examples
  gnuplot-nox                                 # figures (PNG via pngcairo)
  graphviz                                    # drawing the tape (dot)
  python3 python3-torch python3-numpy         # PyTorch reference values and benchmarks
  dataset-fashion-mnist                       # Fashion-MNIST 60k/10k (IDX)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} Debian packages are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

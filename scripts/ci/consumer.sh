#!/usr/bin/env bash
# tapegrad as another project uses it (CI stage; about 2-4 minutes with a warm ccache):
#   1. copies the sources to a scratch tree, configures them with a prefix that never exists,
#      builds, installs with `cmake --install --prefix` into a staging directory and moves that
#      to another name, then deletes the scratch sources: the installed files must stand on
#      their own wherever they land (relocatable tapegrad.pc and CMake package); the dist
#      headers are installed exactly when libtapegrad_dist.a is;
#   2. builds the README's 5-line CMakeLists (tests/consumer/CMakeLists.txt) with the README's
#      first program (examples/first_look.cpp) against the install with find_package, runs it
#      from an unrelated directory (the digits come from <prefix>/share/tapegrad/data, known to
#      the program only through the package) and checks it reaches 95% test accuracy;
#   3. a small program through pkg-config (tapegrad.pc), which must find the digits there too;
#   4. the data lookup's last resort and its error: the installed data moved away, found
#      through $TAPEGRAD_DATA; without it, an error listing where it looked;
#   5. a project that adds tapegrad with add_subdirectory (tests/consumer/subdirectory/), with
#      no C++ standard or build type of its own; its configure step checks that no tests,
#      programs or build type leaked in; then its program runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}"
jobs="${JOBS:-$(nproc)}"
work="$repo/build/consumer"  # under the repository, so ccache (base_dir) reuses its objects
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
source scripts/env.sh
start=$SECONDS
step() { echo; echo "=== consumer: $* ($((SECONDS - start)) s)"; }

step "1. build tapegrad from a scratch copy of the sources, install it with --prefix, move it"
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard | grep -zv '^tests/consumer/' | xargs -0 cp --parents -t "$work/src"
# The work tree's files (tracked and new, not ignored): uncommitted edits are tested too.
# The configured prefix is never created: everything below must come from --prefix.
unused_prefix="$work/configured-prefix-never-installed"
# With MPI (CI installs it), tapegrad_dist and its headers are installed too.
dist=OFF
if command -v mpicxx >/dev/null; then dist=ON; fi
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_INSTALL_DIST="$dist" \
  -DCMAKE_INSTALL_PREFIX="$unused_prefix" -DTAPEGRAD_BUILD_TESTS=OFF \
  -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF >"$work/configure.log"
grep -q -- "-march=native" "$work/build/CMakeFiles/tapegrad.dir/flags.make" &&
  { echo "consumer: a plain configure compiles the library with -march=native"; exit 1; }
cmake --build "$work/build" -j "$jobs" >"$work/build.log" || { tail -n 40 "$work/build.log"; exit 1; }
cmake --install "$work/build" --prefix "$work/staging" >"$work/install.log"
mv "$work/staging" "$work/prefix"
rm -rf "$work/src" "$work/build"
for f in lib/libtapegrad.a include/tapegrad/tapegrad.hpp lib/cmake/tapegrad/tapegradConfig.cmake \
  lib/cmake/tapegrad/tapegradConfigVersion.cmake lib/pkgconfig/tapegrad.pc \
  share/tapegrad/data/train-images-idx3-ubyte.gz; do
  [ -f "$work/prefix/$f" ] || { echo "consumer: the install lacks $f"; exit 1; }
done
if grep -rlF -e "$unused_prefix" -e "$work/staging" "$work/prefix/lib/cmake" "$work/prefix/lib/pkgconfig"; then
  echo "consumer: the files above name the configured prefix or the staging directory"; exit 1
fi
# The dist headers come exactly with the dist library (TAPEGRAD_INSTALL_DIST).
for f in lib/libtapegrad_dist.a include/tapegrad/dist/context.hpp; do
  if [ "$dist" = ON ] && [ ! -f "$work/prefix/$f" ]; then
    echo "consumer: TAPEGRAD_INSTALL_DIST=ON, but the install lacks $f"; exit 1
  fi
  if [ "$dist" = OFF ] && [ -e "$work/prefix/$f" ]; then
    echo "consumer: TAPEGRAD_INSTALL_DIST=OFF, but $f is installed"; exit 1
  fi
done
echo "installed: $(cd "$work/prefix" && find . -type f | wc -l) files in $work/prefix" \
  "(tapegrad_dist and its headers: $dist)"

step "2. the README's CMakeLists and first program, with find_package"
mkdir -p "$work/app" "$work/elsewhere"
cp tests/consumer/CMakeLists.txt "$work/app/CMakeLists.txt"
cp examples/first_look.cpp "$work/app/first_program.cpp"
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/app.log"
cmake --build "$work/app/build" -j "$jobs" >>"$work/app.log" || { tail -n 40 "$work/app.log"; exit 1; }
(cd "$work/elsewhere" && env -u TAPEGRAD_DATA "$work/app/build/first_program") | tee "$work/first.txt"
/usr/bin/python3 - "$work/first.txt" <<'PY'
import re, sys
acc = [float(a) for a in re.findall(r"test accuracy\s+([0-9.]+)%", open(sys.argv[1]).read())]
if not acc or acc[-1] < 95.0:
    sys.exit(f"consumer: the first program's final test accuracy {acc[-1:] or 'missing'} is below 95%")
print(f"consumer: final test accuracy {acc[-1]:.2f}% >= 95%")
PY

step "3. a small program through pkg-config (tapegrad.pc), run from elsewhere"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
pkg-config --exists tapegrad
# shellcheck disable=SC2046  # pkg-config's flags are meant to split into words
c++ -O2 tests/consumer/consumer.cpp -o "$work/consumer_pc" $(pkg-config --cflags --libs tapegrad)
echo "flags: $(pkg-config --cflags --libs tapegrad)"
(cd "$work/elsewhere" && env -u TAPEGRAD_DATA "$work/consumer_pc") | tee "$work/pc.txt"
grep -qF "from $work/prefix/share/tapegrad/data;" "$work/pc.txt" ||
  { echo "consumer: the pkg-config program did not find the digits in the install"; exit 1; }

step "4. the data through TAPEGRAD_DATA, and the error when it is nowhere"
mv "$work/prefix/share/tapegrad/data" "$work/moved-data"
(cd "$work/elsewhere" && TAPEGRAD_DATA="$work/moved-data" "$work/consumer_pc")
if (cd "$work/elsewhere" && env -u TAPEGRAD_DATA "$work/consumer_pc") >"$work/err.txt" 2>&1; then
  echo "consumer: ran without its data"; exit 1
fi
cat "$work/err.txt"
for want in "$work/prefix/share/tapegrad/data" "TAPEGRAD_DATA" "--dataset DIR"; do
  grep -qF -- "$want" "$work/err.txt" || { echo "consumer: the error does not mention $want"; exit 1; }
done

step "5. add_subdirectory(tapegrad) from a project with no standard or build type of its own"
cmake -S tests/consumer/subdirectory -B "$work/sub" -DTAPEGRAD_SOURCE_DIR="$repo" >"$work/sub.log" ||
  { cat "$work/sub.log"; exit 1; }
cmake --build "$work/sub" -j "$jobs" --target consumer >>"$work/sub.log" || { tail -n 40 "$work/sub.log"; exit 1; }
(cd "$work/elsewhere" && "$work/sub/consumer")

echo
echo "consumer: all passed in $((SECONDS - start)) s"

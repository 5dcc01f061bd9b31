#!/bin/sh
# test_install.sh — `cmake --install` into a fresh prefix, then check the installed tree as a user
# of the library meets it: files and symlinks, the shared library's soname, that it exports exactly
# the functions sdstream.h declares (nm -D), and examples/stream_images.c built against it with
# pkg-config (shared and --static) and with find_package (sdstream::sdstream, ::sdstream_static),
# each run on the reference model; all four must write the same images.
# usage: test_install.sh SOURCE_DIR BUILD_DIR WORK_DIR REFERENCE_DIR   (CFLAGS: extra compiler flags)
set -eu
src=$1 build=$2 work=$3 ref=$4
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in cmake cc nm readelf pkg-config cmp; do
  command -v "$tool" >/dev/null || fail "$tool not found (Debian: apt-get install cmake build-essential binutils pkgconf)"
done
rm -rf "$work" && mkdir -p "$work"

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
libdir=$(dirname "$(find "$prefix" -name libsdstream.a | head -n 1)")
[ -n "$libdir" ] || fail "no libsdstream.a under $prefix"
for f in "$prefix/include/sdstream.h" "$prefix/bin/sdstream" "$libdir/libsdstream.a" "$libdir/libsdstream.so" \
         "$libdir/libsdstream.so.0" "$libdir/pkgconfig/sdstream.pc" "$libdir/cmake/sdstream/sdstreamConfig.cmake" \
         "$libdir/cmake/sdstream/sdstreamConfigVersion.cmake" "$libdir/cmake/sdstream/sdstreamTargets.cmake"; do
  [ -e "$f" ] || fail "not installed: $f"
done
[ -L "$libdir/libsdstream.so" ] && [ -L "$libdir/libsdstream.so.0" ] || fail "libsdstream.so and .so.0 must be symlinks"
real=$(readlink -f "$libdir/libsdstream.so")
case "$real" in *libsdstream.so.[0-9]*.[0-9]*.[0-9]*) ;; *) fail "libsdstream.so points to $real, not a versioned file";; esac
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libsdstream.so.0 ] || fail "soname is '$soname', expected libsdstream.so.0"
"$prefix/bin/sdstream" --version >/dev/null || fail "installed sdstream --version"
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

# exports: every defined dynamic symbol is an sd_* function the public header declares, and back
nm -D --defined-only "$real" | awk '{print $3}' | sort -u >"$work/exported.txt"
cc -E -P -x c "$prefix/include/sdstream.h" | grep -oE '\bsd_[a-z0-9_]+[[:space:]]*\(' |
  sed 's/[[:space:]]*($//' | sort -u >"$work/declared.txt"
bad=$(grep -v '^sd_' "$work/exported.txt" || true)
[ -z "$bad" ] || fail "exported symbols outside sd_*: $bad"
diff "$work/declared.txt" "$work/exported.txt" >"$work/exports.diff" ||
  { cat "$work/exports.diff"; fail "exports differ from the header's functions (< declared only, > exported only)"; }
echo "exports: $(wc -l <"$work/exported.txt") sd_* functions, exactly the header's"

run_example() { # name binary: runs it on two reference images, output prefix $work/name_
  "$2" "$ref/models/tiny-sd15" "$ref/models/taesd" "a watercolor cat" "$work/$1_" \
    "$src/fuzz/corpus/image/rgb_16x8.png" "$src/fuzz/corpus/image/rgb_8x8.jpg" >"$work/$1.log" 2>&1 ||
    { cat "$work/$1.log"; fail "$1 did not run"; }
}
example=$src/examples/stream_images.c

# pkg-config, shared: the usual `cc app.c $(pkg-config --cflags --libs sdstream)`
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046,SC2086
cc ${CFLAGS:-} -o "$work/pc_shared" "$example" $(pkg-config --cflags --libs sdstream) ||
  fail "build against pkg-config --cflags --libs sdstream"
LD_LIBRARY_PATH=$libdir ldd "$work/pc_shared" | grep -q "$libdir/libsdstream.so.0" ||
  fail "pc_shared does not load the installed libsdstream.so.0"
LD_LIBRARY_PATH=$libdir run_example pc_shared "$work/pc_shared"
# pkg-config, static: the archive plus Libs.private
# shellcheck disable=SC2046,SC2086
cc ${CFLAGS:-} -o "$work/pc_static" "$example" $(pkg-config --cflags sdstream) "$libdir/libsdstream.a" \
  $(pkg-config --static --libs-only-l --libs-only-other sdstream | sed 's/-lsdstream\b//') ||
  fail "static build with pkg-config --static --libs sdstream"
run_example pc_static "$work/pc_static"

# find_package(sdstream) from a separate project
cmake -S "$src/tests/install_consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DSD_EXAMPLE="$example" >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; fail "find_package(sdstream) configure"; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; fail "find_package build"; }
run_example cmake_shared "$work/consumer/example_shared"   # RPATH of the build tree points at $libdir
run_example cmake_static "$work/consumer/example_static"

n=0
for out in "$work"/pc_shared_*.png; do
  base=${out##*/pc_shared_}
  for other in pc_static cmake_shared cmake_static; do
    cmp -s "$out" "$work/${other}_$base" || fail "$other wrote a different $base than pc_shared"
  done
  n=$((n + 1))
done
[ "$n" -ge 2 ] || fail "the example wrote $n images, expected 2"
echo "OK: 4 builds of examples/stream_images.c against the installed tree wrote the same $n images"

#!/bin/sh
# install_consumers.sh BUILD_DIR SOURCE_DIR — `cmake --install` into a
# temporary prefix, move the prefix elsewhere (everything installed must
# be relocatable), then build and run both consumers against it:
# samples/make-consumer with pkg-config, samples/cmake-consumer with
# find_package(gradc) and gradc_generate(). Also checks the installed
# files themselves: the libraries, the header, the man page, gradc.pc.
set -eu
build=$1
src=$2
cmake=${CMAKE_COMMAND:-cmake}
work=$build/install-test
rm -rf "$work"
mkdir -p "$work"
export GRADC_CACHE="$work/cache.sqlite"

fail() { echo "install_consumers: $*" >&2; exit 1; }

# A sanitizer build (docs/testing.md) installs an instrumented libgradc:
# its users must be built with the same flags (GRADC_TEST_CFLAGS, from
# CMAKE_C_FLAGS).
flags=${GRADC_TEST_CFLAGS:-}
case $flags in *-fsanitize*) ;; *) flags="";; esac

"$cmake" --install "$build" --prefix "$work/stage" >"$work/install.log"
mv "$work/stage" "$work/moved"
P=$work/moved

# What was installed.
test -x "$P/bin/gradc" || fail "no bin/gradc"
"$P/bin/gradc" --version | grep -q '^gradc ' || fail "bin/gradc --version"
pc=$(find "$P" -name gradc.pc)
test -n "$pc" || fail "no gradc.pc"
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libgradc.so" "$libdir/libgradc.a" "$P/include/gradc_runtime.h" \
         "$P/share/man/man1/gradc.1" "$libdir/cmake/gradc/gradcConfig.cmake" \
         "$libdir/cmake/gradc/gradcConfigVersion.cmake"; do
  test -e "$f" || fail "not installed: $f"
done
# The shared library: position-independent (no text relocations), carries
# its dependencies (SQLite), exports the public API and not the compiler.
if command -v readelf >/dev/null; then
  readelf -d "$libdir/libgradc.so" | grep -q TEXTREL && fail "libgradc.so has text relocations"
  readelf -d "$libdir/libgradc.so" | grep -q 'NEEDED.*libsqlite3' ||
    fail "libgradc.so does not record its SQLite dependency"
  readelf -d "$libdir/libgradc.so" | grep -q 'SONAME.*libgradc\.so\.0' || fail "libgradc.so: no SONAME"
fi
if command -v nm >/dev/null; then
  nm -D --defined-only "$libdir/libgradc.so" | grep -q ' T gradc_compile$' || fail "gradc_compile not exported"
  nm -D --defined-only "$libdir/libgradc.so" | grep -q ' T ir_' && fail "libgradc.so exports compiler internals"
fi
# The man page renders without a warning.
if command -v groff >/dev/null; then
  w=$(groff -man -Tutf8 -ww -z "$P/share/man/man1/gradc.1" 2>&1)
  test -z "$w" || fail "man page: $w"
else
  echo "install_consumers: groff not installed, man page not rendered"
fi
# No installed text file names the prefix it was installed to.
grep -rl "$work/stage" "$P/lib" "$P/include" "$P/share" 2>/dev/null |
  grep -v '\.so\|\.a$' && fail "installed files name the install prefix"

# pkg-config from the moved prefix.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists gradc || fail "pkg-config does not find gradc"
case $(pkg-config --cflags gradc) in *"$P"*) ;; *) fail "pkg-config --cflags: $(pkg-config --cflags gradc)";; esac

# The Makefile consumer, built in a copy of its directory.
cp -r "$src/samples/make-consumer" "$work/make"
make -s -C "$work/make" CFLAGS="-O2 -Wall -Wextra -Werror $flags" >"$work/make.log" 2>&1 || { cat "$work/make.log"; fail "make-consumer did not build"; }
(cd "$work/make" && ./consumer) || fail "make-consumer: ./consumer failed"
# The same program linked statically with libgradc.a and its private deps.
cc -O2 $flags -o "$work/make/consumer_static" "$work/make/consumer.c" $(pkg-config --cflags gradc) \
   "$libdir/libgradc.a" $(pkg-config --static --libs-only-l gradc | sed 's/-lgradc//') ||
  fail "cannot link libgradc.a"
"$work/make/consumer_static" >/dev/null || fail "static consumer failed"

# The CMake consumer: find_package(gradc) + gradc_generate().
"$cmake" -S "$src/samples/cmake-consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$P" \
  -DCMAKE_C_FLAGS="$flags" \
  >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake-consumer: configure failed"; }
"$cmake" --build "$work/cmake" >"$work/cmake-build.log" 2>&1 ||
  { cat "$work/cmake-build.log"; fail "cmake-consumer: build failed"; }
"$work/cmake/consumer" || fail "cmake-consumer: consumer failed"
"$work/cmake/runtime_consumer" || fail "cmake-consumer: runtime_consumer failed"
# Regenerated when the .grad file changes: an edited model is re-emitted.
cp -r "$src/samples/cmake-consumer" "$work/cmake-src"
"$cmake" -S "$work/cmake-src" -B "$work/cmake2" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$flags" >/dev/null 2>&1
"$cmake" --build "$work/cmake2" >/dev/null 2>&1 || fail "cmake-consumer copy: build failed"
grep -q '0\.25' "$work/cmake2/gradc/model.c" && fail "model.c has 0.25 before the edit"
sleep 1
sed -i 's/0\.5\*v^2/0.25*v^2/' "$work/cmake-src/model.grad"
"$cmake" --build "$work/cmake2" >"$work/rebuild.log" 2>&1 || true
grep -q 'gradc emit model' "$work/rebuild.log" || fail "no regeneration after model.grad changed"
grep -q '0\.25' "$work/cmake2/gradc/model.c" || fail "model.c not regenerated"

echo "install_consumers: installed, moved, both consumers built and right"

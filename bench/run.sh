#!/bin/sh
# run.sh — build gradc and run the benchmark suite (docs/performance.md).
#   bench/run.sh [--quick] [--build-dir DIR] [other bench/run.py options]
# Builds gradc and bench_compile in DIR (default build-bench) with CMake,
# then runs bench/run.py with Debian's python (PyTorch and SymPy come from
# Debian packages, not from a pyenv or virtualenv python).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build-bench"
prev=
for a in "$@"; do
    [ "$prev" = --build-dir ] && build=$a
    case $a in --build-dir=*) build=${a#--build-dir=} ;; esac
    prev=$a
done
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target gradc bench_compile -j2 >/dev/null
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$here/run.py" --build-dir "$build" "$@"

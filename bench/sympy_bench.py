"""sympy_bench.py — SymPy's differentiate-and-generate-C on W4 (the chained
Rosenbrock function of n variables), to show expression swell: the time
to build the expression, to differentiate it with respect to every input,
to print C for the value and every gradient entry, and that C's size.

usage: sympy_bench.py N      prints one JSON object
(The runner applies a time cap; SymPy's differentiation is quadratic in n.)"""
import json
import sys
import time

import sympy


def main():
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    x = sympy.symbols("x0:%d" % n)
    f = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(n - 1))
    t1 = time.perf_counter()
    grad = [sympy.diff(f, xi) for xi in x]
    t2 = time.perf_counter()
    lines = ["double f = %s;" % sympy.ccode(f)]
    lines += ["grad[%d] = %s;" % (i, sympy.ccode(g)) for i, g in enumerate(grad)]
    code = "\n".join(lines) + "\n"
    t3 = time.perf_counter()
    print(json.dumps({"n": n, "sympy": sympy.__version__, "build_s": t1 - t0,
                      "diff_s": t2 - t1, "codegen_s": t3 - t2,
                      "total_s": t3 - t0, "c_bytes": len(code)}))


main()

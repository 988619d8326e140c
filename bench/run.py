"""run.py — gradc's benchmark suite (issue 6); bench/run.sh is the entry.

For every workload and both flag sets it emits gradc's C, compiles it with
the hand-written C and bench/harness.c using exactly the same flags, and
times both in one process (interleaved repetitions, medians). ADOL-C,
PyTorch and SymPy run in the same invocation when installed and are
skipped with a note otherwise. W6 (gradc's own compile time) runs
bench_compile, built by CMake with the compiler core. Prints tables and
writes JSON. Nothing is ever estimated in place of a measurement: a
contender or workload that cannot run is listed under "skipped" with why.

See docs/performance.md for what each workload and column means."""
import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FLAGSETS = ["-O2", "-O2 -march=native"]
# The python for PyTorch and SymPy: Debian's, where python3-torch and
# python3-sympy live ($BENCH_PYTHON overrides).
PYTHON = os.environ.get("BENCH_PYTHON") or (
    "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)


# ---- workloads ---------------------------------------------------------

def rosen_source(n):
    """W4s: W4 as one scalar formula over named inputs x0..x{n-1}, which
    gradc compiles to straight-line code. Each term is in parentheses, as
    a sum over i adds them: the hand-written loop and the formula then
    round identically."""
    params = ", ".join("x%d" % i for i in range(n))
    terms = " + ".join("(100*(x%d - x%d^2)^2 + (1 - x%d)^2)" % (i + 1, i, i)
                       for i in range(n - 1))
    return "rosen(%s) = %s\n" % (params, terms)


def rosen_start(n):
    """The classical starting point (-1.2, 1, -1.2, 1, ...)."""
    return [-1.2 if i % 2 == 0 else 1.0 for i in range(n)]


def rosen_vector_source(n):
    """W4 in the vector language: a range sum, compiled to loops."""
    return "rosen(x[%d]) = sum(i = 0 .. %d, 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n" % (n, n - 2)


def random_source(n, seed=42):
    """A random formula of n operation nodes over v0..v63: the recipe and
    generator of bench/compile_scaling.c (W6), so the same seed gives the
    same formula."""
    state = [seed]

    def rnd(k):
        state[0] = (state[0] * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (state[0] >> 33) % k

    out = []

    def gen(size):
        if size == 0:
            if rnd(4):
                out.append("v%d" % rnd(64))
            else:
                a = 1 + rnd(9)
                out.append("%d.%d" % (a, rnd(10)))
            return
        if rnd(5) == 0:
            out.append(("sin", "exp", "log", "tanh", "sqrt", "sigmoid")[rnd(6)] + "(")
            gen(size - 1)
            out.append(")")
            return
        left = rnd(size)
        out.append("(")
        gen(left)
        out.append(" %s " % "+-*/"[rnd(4)])
        gen(size - 1 - left)
        out.append(")")

    gen(n)
    return "rnd(%s) = %s\n" % (", ".join("v%d" % i for i in range(64)), "".join(out))


MLP = "network mlp(x[784]) { dense(128, relu)  dense(10, softmax) }\n"
MLP_PARAMS = 784 * 128 + 128 + 128 * 10 + 10


def mlp_inputs(batch):
    """Seeded inputs for W5: pixels in [0, 1), weights uniform in the
    He/Glorot ranges of docs/tensors.md, small biases."""
    rng = random.Random(5)
    xs = [rng.random() for _ in range(batch * 784)]
    l1, l2 = (6 / 784) ** 0.5, (6 / 138) ** 0.5
    xs += [rng.uniform(-l1, l1) for _ in range(128 * 784)]
    xs += [rng.uniform(-0.01, 0.01) for _ in range(128)]
    xs += [rng.uniform(-l2, l2) for _ in range(10 * 128)]
    xs += [rng.uniform(-0.01, 0.01) for _ in range(10)]
    return xs


def workloads(quick):
    """Every workload with the scalar-valued contract (value; value and
    gradient of all inputs, or of those `--wrt` in emit_flags names).
    `peer` names it for ADOL-C and PyTorch."""
    ws = [
        {"id": "W1", "title": "sigmoid neuron 1/(1+exp(-(w0*x0+w1*x1+w2)))",
         "expr": "1/(1+exp(-(w0*x0+w1*x1+w2)))", "hand": "w1.c", "peer": "W1",
         # the notes' neuron: w = (2, -3, -3), x = (-1, -2)
         "inputs": [2.0, -1.0, -3.0, -2.0, -3.0]},
        {"id": "W2", "title": "circuit 2*(x*y + max(z,w))",
         "expr": "2*(x*y + max(z,w))", "hand": "w2.c", "peer": "W2",
         "inputs": [3.0, -4.0, 2.0, -1.0]},
    ]
    ws.append({"id": "W3", "title": "softmax of 3 values and its 3x3 Jacobian "
               "(value = softmax, grad = Jacobian)", "source": "sm(x[3]) = softmax(x)\n",
               "func": "sm", "hand": "w3.c", "peer": "W3", "jacobian": True,
               "inputs": [2.0, 1.0, 0.1]})   # the notes' softmax example
    rng = random.Random(3)
    ws.append({"id": "W3b", "title": "softmax + cross-entropy (class 3) of 1,000 values",
               "source": "l(x[1000]) = cross_entropy(softmax(x), 3)\n", "func": "l",
               "hand": "w3b.c", "peer": "W3b",
               "inputs": [rng.gauss(0, 3) for _ in range(1000)]})
    for n in ([100] if quick else [100, 10000]):
        ws.append({"id": "W4 n=%d" % n, "title": "chained Rosenbrock, n=%d, vector form "
                   "(range sum)" % n, "source": rosen_vector_source(n), "func": "rosen",
                   "hand": "w4.c", "peer": "W4", "inputs": rosen_start(n)})
    for n in ([100] if quick else [100, 1000]):
        ws.append({"id": "W4s n=%d" % n, "title": "chained Rosenbrock, n=%d, as one scalar "
                   "formula of n named inputs" % n, "source": rosen_source(n), "func": "rosen",
                   "hand": "w4.c", "peer": "W4", "inputs": rosen_start(n)})
    # W5 as issue 6 states it: the loss gradient with respect to all
    # weights (`--wrt p`); the sample is an input but gets no gradient.
    ws.append({"id": "W5", "title": "MLP 784-128-10, cross-entropy, gradient w.r.t. all "
               "101,770 weights (--wrt p), one sample",
               "source": MLP + "loss(x[784], p[%d]) = cross_entropy(mlp(x, p), 3)\n" % MLP_PARAMS,
               "func": "loss", "hand": "w5.c", "hand_defs": ["-DBATCH=1"], "peer": "W5",
               "emit_flags": ["--wrt", "p"], "inputs": mlp_inputs(1)})
    if not quick:
        ws.append({"id": "W5 b=64", "title": "MLP as W5, loss summed over a batch of 64",
                   # A network applied to a matrix runs the batch as one
                   # matrix product per layer (docs/tensors.md, Batches).
                   "source": MLP + "lossb(X[64,784], p[%d]) = cross_entropy(mlp(X, p), 3)\n"
                   % MLP_PARAMS,
                   "func": "lossb", "hand": "w5.c", "hand_defs": ["-DBATCH=64"],
                   "peer": "W5b", "emit_flags": ["--wrt", "p"], "inputs": mlp_inputs(64)})
        # The same through `gradc emit --blas` (cblas_dgemm, one thread),
        # when a CBLAS is installed; the hand-written C stays as it is.
        blas = subprocess.run(["pkg-config", "--cflags", "--libs", "openblas"],
                              capture_output=True, text=True)
        if blas.returncode == 0:
            w = dict(ws[-1])
            w.update({"id": "W5 b=64 blas", "title": "MLP batch of 64 as W5 b=64, "
                      "gradc emit --blas (OpenBLAS, 1 thread)",
                      "emit_flags": ["--wrt", "p", "--blas"],
                      "link": blas.stdout.split()})
            ws.append(w)
    return ws


# Workloads whose entry points the harness cannot call yet. The runner
# asks gradc to compile each and reports what happened; nothing is timed.
PENDING = []


# ---- small helpers -----------------------------------------------------

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, timeout=None):
    """Runs cmd, capturing its output; on timeout kills its whole process
    group (cc's cc1 too) and raises subprocess.TimeoutExpired."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def first_line(s):
    """The first error line of a tool's output, else its first line."""
    lines = (s or "").strip().splitlines()
    errors = [l for l in lines if "error" in l.lower()]
    return (errors or lines or ["(no output)"])[0]


def failure(r):
    """Why a command failed: its first error line, or the signal."""
    if r.returncode < 0:
        return "killed by signal %d (%s)" % (-r.returncode, first_line(r.stderr))
    return first_line(r.stderr)


def merge_layouts(outs):
    """One result from the harness built with the hand-written code linked
    first and with gradc's code first. Where a function lands in memory
    moves its time by up to 10 %: W3b's two gradients are the same
    instructions, yet whichever was linked second ran 5-12 % slower.
    Each contender's time is the geometric mean of its medians (and of its
    minima) in the two layouts, so gradc ÷ hand is the geometric mean of
    the two ratios, each measured in one process with the contenders
    interleaved (the two processes may meet the machine in different
    moods). The per-layout figures and samples stay in the JSON."""
    out = dict(outs[0])
    out["contenders"] = {}
    for name in outs[0]["contenders"]:
        merged = {}
        for k in ("value", "grad"):
            per = [o["contenders"][name][k] for o in outs]
            merged[k] = {"median_ns": math.prod(p["median_ns"] for p in per) ** (1 / len(per)),
                         "min_ns": math.prod(p["min_ns"] for p in per) ** (1 / len(per)),
                         "by_layout": per}
        out["contenders"][name] = merged
    out["check"] = {k: max(o["check"][k] for o in outs) for k in outs[0]["check"]}
    out["layouts"] = ["hand-written code linked first", "gradc's code linked first"]
    return out


def write_inputs(path, xs):
    with open(path, "w") as f:
        f.write("%d\n" % len(xs))
        for v in xs:
            f.write("%.17g\n" % v)


def machine():
    m = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        out = run(["lscpu"]).stdout
        for key in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache"):
            hit = re.search(r"^%s:\s*(.*)$" % re.escape(key), out, re.M)
            if hit:
                m[key] = hit.group(1).strip()
        flags = re.search(r"^Flags:\s*(.*)$", out, re.M)
        if flags:
            m["simd"] = " ".join(f for f in ("sse2", "avx", "avx2", "fma", "avx512f")
                                 if f in flags.group(1).split())
    except OSError:
        pass
    cc = os.environ.get("CC", "cc")
    m["cc"] = first_line(run([cc, "--version"]).stdout)
    git = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    m["git"] = git.stdout.strip() if git.returncode == 0 else "?"
    return m


# ---- gradc and hand-written C (same flags, same process) ----------------

class Suite:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.reps = args.reps or (5 if self.quick else 31)
        # each timed batch lasts at least this long
        self.min_ns = 2e5 if self.quick else 2e6
        self.work = os.path.join(args.build_dir, "bench-work")
        os.makedirs(self.work, exist_ok=True)
        self.gradc = args.gradc or os.path.join(args.build_dir, "gradc")
        self.cc = os.environ.get("CC", "cc")
        self.skipped = []
        self.failures = []
        self.results = {"workloads": {}, "pending": {}}
        self.torch_jobs = []

    def skip(self, what, why):
        self.skipped.append({"what": what, "why": why})
        log("  skipped %s: %s" % (what, why))

    def emit(self, w, tag):
        """gradc emit for workload w; returns (c, h, symbol) or raises."""
        c = os.path.join(self.work, "gradc_%s.c" % tag)
        h = os.path.join(self.work, "gradc_%s.h" % tag)
        if "expr" in w:
            cmd = [self.gradc, "emit", "-e", w["expr"], "--name", "gradc_" + tag]
            sym = "gradc_" + tag
        else:
            src = os.path.join(self.work, "%s.grad" % tag)
            with open(src, "w") as f:
                f.write(w["source"])
            cmd = [self.gradc, "emit", "%s:%s" % (src, w["func"]), "--prefix", "gradc_"]
            sym = "gradc_" + w["func"]
        t0 = time.perf_counter()
        r = run(cmd + w.get("emit_flags", []) + ["-o", c, "--header", h])
        w["emit_s"] = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("gradc emit failed: " + failure(r))
        w["emit_c_bytes"] = os.path.getsize(c)
        return c, h, sym

    def build_harness(self, w, tag, c, h, sym, flags, fi, order=0):
        with open(h) as f:
            header = f.read()
        work = re.search(r"#define (\w+)_WORK_SIZE (\d+)", header)
        # --wrt: the gradient holds only some inputs (NAME_GRAD_SIZE).
        grad_size = re.search(r"#define (\w+_GRAD_SIZE) ", header)
        jac = re.search(r"#define (\w+_OUT_SIZE) ", header) if w.get("jacobian") else None
        ninputs = (re.search(r"#define (\w+_IN_SIZE) ", header) or
                   re.search(r"#define (\w+_NUM_INPUTS) ", header)).group(1)
        exe = os.path.join(self.work, "harness_%s_%d%s" % (tag, fi, "_swapped" if order else ""))
        # order 1 links gradc's code before the hand-written code (see
        # merge_layouts: the two layouts are both measured).
        contenders = [os.path.join(HERE, "hand", w["hand"]), c]
        if order:
            contenders.reverse()
        cmd = [self.cc] + flags.split() + [
            "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-I", self.work,
            '-DGRADC_HEADER="%s"' % os.path.basename(h), "-DGRADC_SYM=" + sym,
            "-DGRADC_NINPUTS=" + ninputs,
            "-DGRADC_WORK=%s" % (work.group(2) if work else "0")] + (
            ["-DGRADC_JACOBIAN=" + jac.group(1)] if jac else []) + (
            ["-DGRADC_GRAD_SIZE=" + grad_size.group(1)] if grad_size else []) + [
            os.path.join(HERE, "harness.c")] + w.get("hand_defs", []) + contenders + [
            "-o", exe] + w.get("link", []) + ["-lm"]
        t0 = time.perf_counter()
        r = run(cmd, timeout=self.args.cc_timeout)
        w.setdefault("cc_s", {})[flags] = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("cc failed: " + first_line(r.stderr))
        return exe

    def workload(self, w):
        tag = re.sub(r"\W+", "_", w["id"]).lower()
        log("%s: %s" % (w["id"], w["title"]))
        inputs = os.path.join(self.work, "inputs_%s.txt" % tag)
        write_inputs(inputs, w["inputs"])
        w["inputs_file"] = inputs
        res = {"title": w["title"], "flags": {}, "peers": {}}
        self.results["workloads"][w["id"]] = res
        try:
            c, h, sym = self.emit(w, tag)
        except RuntimeError as e:
            self.skip(w["id"], str(e))
            self.failures.append("%s: %s" % (w["id"], e))
            return
        res["gradc_emit_s"] = w["emit_s"]
        res["gradc_c_bytes"] = w["emit_c_bytes"]
        for fi, flags in enumerate(FLAGSETS):
            try:
                exes = [self.build_harness(w, tag, c, h, sym, flags, fi, order)
                        for order in (0, 1)]
            except subprocess.TimeoutExpired:
                self.skip("%s %s" % (w["id"], flags), "cc took longer than the %d s cap "
                          "on the straight-line C (%d bytes); later flag sets not tried"
                          % (self.args.cc_timeout, w["emit_c_bytes"]))
                break
            except RuntimeError as e:
                self.skip("%s %s" % (w["id"], flags), str(e))
                self.failures.append("%s %s: %s" % (w["id"], flags, e))
                continue
            one_thread = ["env", "OPENBLAS_NUM_THREADS=1"] if "link" in w else []
            outs = []
            for exe in exes:
                r = run(one_thread + [exe, inputs, str(self.reps), str(self.min_ns)])
                if r.returncode != 0:
                    self.failures.append("%s %s: harness failed: %s" % (w["id"], flags, failure(r)))
                    break
                outs.append(json.loads(r.stdout))
            if len(outs) < 2:
                continue
            out = merge_layouts(outs)
            out["cc_s"] = w["cc_s"][flags]
            res["flags"][flags] = out
            res["reference"] = {k: out[k] for k in ("value", "grad_sum", "grad_abs_sum")}
            chk = out["check"]
            worst = max(chk.values())
            if not worst <= self.args.tolerance:
                self.failures.append("%s %s: gradc and hand-written C disagree (%s)"
                                     % (w["id"], flags, chk))
        self.peers(w, res)

    # ---- peers --------------------------------------------------------

    def agree(self, w, res, name, out):
        ref = res.get("reference")
        if not ref:
            return
        # grad_sum can cancel to about zero (softmax gradients sum to 0):
        # it is compared relative to the gradient's absolute sum.
        scale = {"value": max(abs(ref["value"]), 1e-300),
                 "grad_sum": max(ref["grad_abs_sum"], 1e-300),
                 "grad_abs_sum": max(ref["grad_abs_sum"], 1e-300)}
        bad = [k for k in scale if abs(out[k] - ref[k]) > 1e-9 * scale[k]]
        out["agrees_with_hand"] = not bad
        if bad:
            self.failures.append("%s: %s disagrees with hand-written C on %s"
                                 % (w["id"], name, ", ".join(bad)))

    def peers(self, w, res):
        if self.args.no_peers:
            return
        try:
            self.peers_timed(w, res)
        except subprocess.TimeoutExpired as e:
            self.skip("peer on %s" % w["id"], "exceeded %d s" % e.timeout)

    def peers_timed(self, w, res):
        if self.adolc_exe and w["peer"] == "W5b":
            self.skip("ADOL-C %s" % w["id"], "not run: the batch tape would hold ~25 million "
                      "operations (W5, one sample, shows ADOL-C on the MLP)")
        elif self.adolc_exe:
            r = run([self.adolc_exe, w["peer"], w["inputs_file"], str(self.reps), str(self.min_ns)],
                    timeout=600)
            if r.returncode == 0:
                out = json.loads(r.stdout)
                self.agree(w, res, "ADOL-C", out)
                res["peers"]["ADOL-C"] = out
            else:
                self.skip("ADOL-C %s" % w["id"], first_line(r.stderr))
        if self.torch_ok:
            self.torch_jobs.append((w, res))

    def torch_all(self):
        """PyTorch for every workload, in one process (its import is slow)."""
        jobs = self.torch_jobs
        if not jobs:
            return
        log("PyTorch: %s" % ", ".join(w["id"] for w, _ in jobs))
        try:
            r = run([PYTHON, os.path.join(HERE, "torch_bench.py"), str(self.reps),
                     str(self.min_ns), "1,2"] + ["%s=%s" % (w["peer"], w["inputs_file"])
                                                 for w, _ in jobs], timeout=1800)
        except subprocess.TimeoutExpired:
            self.skip("PyTorch", "exceeded 1800 s")
            return
        lines = r.stdout.splitlines()
        for i, (w, res) in enumerate(jobs):
            if i >= len(lines):
                self.skip("PyTorch %s" % w["id"], failure(r))
                continue
            out = json.loads(lines[i])
            for t in ("1", "2"):
                p = dict(out[t], value=out["value"], grad_sum=out["grad_sum"],
                         grad_abs_sum=out["grad_abs_sum"], blas=out["blas"],
                         version=out["torch"])
                self.agree(w, res, "PyTorch", p)
                res["peers"]["PyTorch %st" % t] = p

    def find_peers(self):
        self.adolc_exe = None
        self.torch_ok = False
        if self.args.no_peers:
            self.skip("peers", "--no-peers")
            return
        cxx = os.environ.get("CXX", "c++")
        exe = os.path.join(self.work, "adolc_bench")
        r = run([cxx, "-O2", os.path.join(HERE, "adolc_bench.cpp"), "-o", exe, "-ladolc"]) \
            if shutil.which(cxx) else None
        if r and r.returncode == 0:
            self.adolc_exe = exe
        else:
            self.skip("ADOL-C", "not installed (Debian libadolc-dev): " +
                      (first_line(r.stderr) if r else "no C++ compiler"))
        r = run([PYTHON, "-c", "import torch"])
        if r.returncode == 0:
            self.torch_ok = True
        else:
            self.skip("PyTorch", "not installed (Debian python3-torch): " + first_line(r.stderr))

    # ---- workloads waiting for features ---------------------------------

    def pending(self, w):
        src = os.path.join(self.work, "%s.grad" % w["id"].lower())
        with open(src, "w") as f:
            f.write(w["source"])
        r = run([self.gradc, "emit", "%s:%s" % (src, w["func"]), "-o", os.devnull])
        if r.returncode != 0:
            why = "gradc cannot compile it yet: " + first_line(r.stderr)
        else:
            why = "gradc compiles it, but " + w["why"]
        self.results["pending"][w["id"]] = {"title": w["title"], "skipped": why}
        self.skip(w["id"], why)

    # ---- W4 through SymPy -----------------------------------------------

    def sympy(self):
        if self.args.no_peers:
            return
        if run([PYTHON, "-c", "import sympy"]).returncode != 0:
            self.skip("SymPy", "not installed (Debian python3-sympy)")
            return
        out = []
        cap = 60 if self.quick else 300
        for n in ([20] if self.quick else [100, 300]):
            log("SymPy W4 n=%d (cap %d s)" % (n, cap))
            try:
                r = run([PYTHON, os.path.join(HERE, "sympy_bench.py"), str(n)], timeout=cap)
            except subprocess.TimeoutExpired:
                self.skip("SymPy n=%d" % n, "exceeded the %d s cap" % cap)
                break
            if r.returncode != 0:
                self.skip("SymPy n=%d" % n, first_line(r.stderr))
                break
            out.append(json.loads(r.stdout))
        res = {"runs": out}
        if len(out) >= 2:
            a, b = out[-2], out[-1]
            import math
            k = math.log(b["diff_s"] / a["diff_s"]) / math.log(b["n"] / a["n"])
            res["diff_exponent"] = k
            res["diff_s_extrapolated_n1000"] = b["diff_s"] * (1000 / b["n"]) ** k
            res["note"] = ("n=1000 is extrapolated from the measured n=%d and n=%d as "
                           "time ~ n^%.2f; not measured" % (a["n"], b["n"], k))
        self.results["sympy_W4"] = res

    # ---- W6: gradc's own compile time -----------------------------------

    def first_compiles(self, exe, what, n):
        """W6's time for one formula: the first compile in a fresh
        process, as `gradc emit` does it, median of several processes
        (item 41). A repeat in the same process finds its memory already
        mapped and runs up to a third faster at 10^5 nodes, while at 10^6
        the big blocks go back to the system between compiles, so every
        compile there is a first one: timing repeats for the small sizes
        only would compare warm with cold. Returns (row, error); the row
        is the median process's, with every total in total_samples_s."""
        procs = 3 if self.quick or n >= 100000 else 5
        got = []
        for _ in range(procs):
            r = run([exe] + what + ["--runs", "1"], timeout=600)
            if r.returncode != 0:
                return None, first_line(r.stderr)
            got.append(json.loads(r.stdout))
        order = sorted(got, key=lambda x: x["total_s"])
        row = order[len(order) // 2]
        row["processes"] = procs
        row["total_samples_s"] = [x["total_s"] for x in got]
        return row, None

    def compile_scaling(self):
        exe = self.args.bench_compile or os.path.join(self.args.build_dir, "bench", "bench_compile")
        if not os.path.exists(exe):
            self.skip("W6", "bench_compile not built (%s)" % exe)
            return
        sizes = [1000, 10000, 100000] if self.quick else [1000, 10000, 100000, 1000000]
        rows = []
        for n in sizes:
            log("W6: random formula, %d nodes" % n)
            row, err = self.first_compiles(exe, ["random", str(n)], n)
            if row is None:
                self.failures.append("W6 n=%d: %s" % (n, err))
                return
            rows.append(row)
        for a, b in zip(rows, rows[1:]):
            b["time_growth"] = b["total_s"] / a["total_s"]
            b["c_bytes_growth"] = b["c_bytes"] / a["c_bytes"]
        rosen = []
        for n in ([100, 1000] if self.quick else [100, 1000, 10000]):
            row, _ = self.first_compiles(exe, ["rosen", str(n)], n)
            if row is not None:
                rosen.append(row)
        self.results["W6"] = {"random": rows, "rosen": rosen}

    # ---- W9: the C compiler on gradc's output ----------------------------

    def cc_measured(self, c, obj):
        """cc -O2 -c of one generated file under /usr/bin/time -v: CPU
        seconds (user + system), wall seconds, peak memory in MB (None
        when /usr/bin/time is not installed)."""
        cmd = [self.cc, "-O2", "-std=c99", "-c", c, "-o", obj]
        timed = os.path.exists("/usr/bin/time")
        t0 = time.perf_counter()
        # The 10^5-node case takes a minute of CPU, several on a loaded
        # machine: W9 allows three times the usual cap.
        r = run((["/usr/bin/time", "-v"] if timed else []) + cmd,
                timeout=3 * self.args.cc_timeout)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("cc failed: " + first_line(r.stderr))
        if not timed:
            return None, wall, None
        def field(name):
            m = re.search(r"%s: ([0-9.]+)" % re.escape(name), r.stderr)
            return float(m.group(1)) if m else None
        cpu = field("User time (seconds)") + field("System time (seconds)")
        return cpu, wall, field("Maximum resident set size (kbytes)") / 1024

    def cc_scaling(self):
        """For each size: gradc emit (wall), C size, cc -O2 (CPU, wall, peak
        memory), and where a hand-written contender exists the gradient's
        run time beside it, all in this one run."""
        cases = [("W4 n=10000 range sum", rosen_vector_source(10000), "rosen", [], 10000),
                 ("W4s n=1000 terms", rosen_source(1000), "rosen", [], 1000)]
        if self.quick:
            cases = [("W4 n=1000 range sum", rosen_vector_source(1000), "rosen", [], 1000),
                     ("W4s n=200 terms", rosen_source(200), "rosen", [], 200)]
        else:
            cases += [("W4s n=1000 one body", rosen_source(1000), "rosen",
                       ["--max-block", "1000000"], 1000),
                      ("W4s n=10000 terms", rosen_source(10000), "rosen", [], 10000),
                      ("random 10^5 nodes", random_source(100000), "rnd", [], None)]
        rows = []
        for wid, src, func, flags, n in cases:
            log("W9: %s" % wid)
            tag = "w9_" + re.sub(r"\W+", "_", wid).lower()
            w = {"id": wid, "source": src, "func": func, "emit_flags": flags, "hand": "w4.c"}
            row = {"id": wid, "source_bytes": len(src)}
            try:
                c, h, sym = self.emit(w, tag)
                row.update({"emit_s": w["emit_s"], "c_bytes": w["emit_c_bytes"]})
                r = run([self.gradc, "emit", "%s:%s" % (os.path.join(self.work, tag + ".grad"),
                         func), "--report", "-o", os.devnull] + flags)
                row["report"] = r.stderr
                obj = os.path.join(self.work, tag + ".o")
                row["cc_cpu_s"], row["cc_wall_s"], row["cc_peak_mb"] = self.cc_measured(c, obj)
                if n is not None:
                    inputs = os.path.join(self.work, "inputs_%s.txt" % tag)
                    write_inputs(inputs, rosen_start(n))
                    exe = self.build_harness(w, tag, obj, h, sym, "-O2", 0)
                    r = run([exe, inputs, str(self.reps), str(self.min_ns)])
                    if r.returncode != 0:
                        raise RuntimeError("harness failed: " + failure(r))
                    out = json.loads(r.stdout)
                    g = out["contenders"]["gradc"]["grad"]["median_ns"]
                    hg = out["contenders"]["hand"]["grad"]["median_ns"]
                    row.update({"grad_ns": g, "hand_grad_ns": hg, "grad_ratio": g / hg})
                    if not max(out["check"].values()) <= self.args.tolerance:
                        self.failures.append("W9 %s: gradc and hand-written C disagree (%s)"
                                             % (wid, out["check"]))
            except subprocess.TimeoutExpired:
                self.skip("W9 " + wid, "cc took longer than the %d s cap"
                          % (3 * self.args.cc_timeout))
            except RuntimeError as e:
                self.failures.append("W9 %s: %s" % (wid, e))
            rows.append(row)
        self.results["W9"] = rows

    # ---- W4H: Hessian and Hessian-vector product of W4 ------------------

    def second_order(self):
        """gradc emit --entry value,grad,hvp,hess of W4 (range sum), timed by
        bench/hess_harness.c in one process against bench/hand/w4h.c (the
        tridiagonal Hessian by hand, same layout) and gradc's own gradient."""
        rows = []
        for n in ([100] if self.quick else [100, 1000]):
            wid = "W4H n=%d" % n
            log("%s: Hessian and HVP of chained Rosenbrock (range sum)" % wid)
            tag = "w4h_%d" % n
            src = os.path.join(self.work, tag + ".grad")
            with open(src, "w") as f:
                f.write(rosen_vector_source(n))
            c, h = (os.path.join(self.work, "gradc_%s.%s" % (tag, x)) for x in "ch")
            r = run([self.gradc, "emit", src + ":rosen", "--prefix", "gradc_", "--entry",
                     "value,grad,hvp,hess", "-o", c, "--header", h])
            if r.returncode != 0:
                self.failures.append("%s: gradc emit failed: %s" % (wid, failure(r)))
                continue
            row = {"id": wid, "n": n, "flags": {}}
            with open(h) as f:
                work = re.search(r"#define \w+_WORK_SIZE (\d+)", f.read())
            for fi, flags in enumerate(FLAGSETS):
                exe = os.path.join(self.work, "hess_harness_%s_%d" % (tag, fi))
                r = run([self.cc] + flags.split() + [
                    "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-I", self.work,
                    '-DGRADC_HEADER="%s"' % os.path.basename(h), "-DGRADC_SYM=gradc_rosen",
                    "-DROSEN_NNZ=GRADC_ROSEN_HESS_NNZ"] + (
                    ["-DGRADC_WORK=" + work.group(1)] if work else []) + [
                    os.path.join(HERE, "hess_harness.c"),
                    os.path.join(HERE, "hand", "w4h.c"), c, "-o", exe, "-lm"],
                    timeout=self.args.cc_timeout)
                if r.returncode != 0:
                    self.failures.append("%s %s: cc failed: %s" % (wid, flags, first_line(r.stderr)))
                    continue
                r = run([exe, str(n), str(self.reps), str(self.min_ns)])
                if not r.stdout.strip():
                    self.failures.append("%s %s: harness failed: %s" % (wid, flags, failure(r)))
                    continue
                out = json.loads(r.stdout)
                row["flags"][flags] = out
                if r.returncode != 0:
                    self.failures.append("%s %s: gradc's Hessian and the hand-written one "
                                         "disagree (%s)" % (wid, flags, out["max_rel_diff"]))
            rows.append(row)
        self.results["W4H"] = rows

    def cache(self):
        exe = os.path.join(self.args.build_dir, "bench", "bench_cache")
        if not os.path.exists(exe):
            self.skip("W7", "bench_cache not built (owned by the cache work, issue 3)")
            return
        r = run([exe] + (["--quick"] if self.quick else []), timeout=600)
        self.results["W7"] = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr[-2000:]}
        if r.returncode != 0:
            self.failures.append("W7: bench_cache failed: " + first_line(r.stderr))

    def go(self):
        self.results["machine"] = machine()
        self.results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.results["quick"] = self.quick
        self.results["reps"] = self.reps
        self.results["flagsets"] = FLAGSETS
        self.find_peers()
        only = set(self.args.only.split(",")) if self.args.only else None
        for w in workloads(self.quick):
            if not only or w["id"].split()[0] in only:
                self.workload(w)
        self.torch_all()
        for w in PENDING:
            if not only or w["id"] in only:
                self.pending(w)
        if not only or "W4H" in only:
            self.second_order()
        if not only or "W4" in only:
            self.sympy()
        if not only or "W6" in only:
            self.compile_scaling()
        if not only or "W7" in only:
            self.cache()
        if not only or "W9" in only:
            self.cc_scaling()
        self.results["skipped"] = self.skipped
        self.results["failures"] = self.failures


# ---- the report ----------------------------------------------------------

def fmt_ns(ns):
    if ns is None:
        return "-"
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e4:
        return "%.1f us" % (ns / 1e3)
    return "%.1f ns" % ns


def table(results):
    out = []
    m = results["machine"]
    out.append("gradc benchmarks  %s  git %s  %s" % (results["date"], m.get("git"),
               "quick" if results["quick"] else "full"))
    out.append("machine: %s, %s CPUs, %s; %s" % (m.get("Model name", "?"), m.get("CPU(s)", "?"),
               m.get("simd", "?"), m.get("cc", "?")))
    out.append("times: median of %d batches per evaluation; value = value only, "
               "grad = value + gradient; ratios on grad times" % results["reps"])
    hdr = "%-12s %-12s %11s %11s %9s %11s %11s" % ("workload", "contender", "value", "grad",
                                                   "grad/val", "gradc÷this", "this÷gradc")
    for flags in results["flagsets"]:
        out.append("")
        out.append("== C contenders compiled with: %s ==" % flags)
        out.append(hdr)
        for wid, res in results["workloads"].items():
            fr = res["flags"].get(flags)
            if not fr:
                out.append("%-12s (no result for these flags)" % wid)
                continue
            g = fr["contenders"]["gradc"]["grad"]["median_ns"]
            rows = [(k, v["value"]["median_ns"], v["grad"]["median_ns"])
                    for k, v in fr["contenders"].items()]
            rows += [(k, v["value_ns"], v["grad_ns"]) for k, v in res["peers"].items()]
            for i, (name, tv, tg) in enumerate(rows):
                out.append("%-12s %-12s %11s %11s %9.2f %11s %11s" % (
                    wid if i == 0 else "", name, fmt_ns(tv), fmt_ns(tg), tg / tv,
                    "" if name == "gradc" else "%.3g" % (g / tg),
                    "" if name == "gradc" else "%.3g" % (tg / g)))
    if results.get("pending"):
        out.append("")
        for wid, p in results["pending"].items():
            out.append("%-5s skipped: %s" % (wid, p["skipped"]))
    s = results.get("sympy_W4")
    if s:
        out.append("")
        out.append("W4 through SymPy (diff + ccode; gradc: see W6 rosen rows)")
        for r in s["runs"]:
            out.append("  n=%-6d build %.2f s  diff %.2f s  ccode %.2f s  C %d bytes" % (
                r["n"], r["build_s"], r["diff_s"], r["codegen_s"], r["c_bytes"]))
        if "note" in s:
            out.append("  n=1000 diff ≈ %.0f s (%s)" % (s["diff_s_extrapolated_n1000"], s["note"]))
    w6 = results.get("W6")
    if w6:
        out.append("")
        out.append("W6 gradc compile time, first compile in a fresh process, C compiler excluded "
                   "(median of 3-5 processes)")
        out.append("  %-8s %-9s %10s %10s %9s %9s %9s %9s %7s" % (
            "formula", "nodes", "IR nodes", "C bytes", "parse", "diff", "emit", "total", "growth"))
        for r in w6["random"] + w6["rosen"]:
            out.append("  %-8s %-9d %10d %10d %8.1fms %8.1fms %8.1fms %8.1fms %7s" % (
                r["kind"], r["n"], r["kernel_nodes"], r["c_bytes"], r["parse_s"] * 1e3,
                r["diff_s"] * 1e3, r["emit_s"] * 1e3, r["total_s"] * 1e3,
                "%.1fx" % r["time_growth"] if "time_growth" in r else ""))
    w9 = results.get("W9")
    if w9:
        out.append("")
        out.append("W9 the C compiler on gradc's output (cc -O2 -c; CPU = user + system; "
                   "grad run time at -O2)")
        out.append("  %-22s %9s %8s %10s %9s %9s %9s %10s %10s %7s" % (
            "case", "source", "emit", "C bytes", "cc CPU", "cc wall", "cc peak", "grad",
            "hand grad", "÷hand"))
        for r in w9:
            if "cc_wall_s" not in r:
                out.append("  %-22s (failed or skipped)" % r["id"])
                continue
            out.append("  %-22s %9d %7.2fs %10d %9s %8.2fs %9s %10s %10s %7s" % (
                r["id"], r["source_bytes"], r["emit_s"], r["c_bytes"],
                "%.2fs" % r["cc_cpu_s"] if r["cc_cpu_s"] is not None else "-", r["cc_wall_s"],
                "%.0f MB" % r["cc_peak_mb"] if r["cc_peak_mb"] is not None else "-",
                fmt_ns(r.get("grad_ns")), fmt_ns(r.get("hand_grad_ns")),
                "%.2f" % r["grad_ratio"] if "grad_ratio" in r else ""))
    if results.get("W4H"):
        out.append("")
        out.append("W4H second order (range-sum W4): gradc f_hess vs hand-written tridiagonal "
                   "Hessian, gradc f_hvp vs gradc f_grad")
        out.append("%-10s %-18s %10s %10s %7s %10s %10s %7s" % (
            "workload", "flags", "hess", "hand", "ratio", "hvp", "grad", "hvp/g"))
        for r in results["W4H"]:
            for flags, o in r["flags"].items():
                out.append("%-10s %-18s %10s %10s %7.2f %10s %10s %7.2f" % (
                    r["id"], flags, fmt_ns(o["gradc_hess_ns"]), fmt_ns(o["hand_hess_ns"]),
                    o["hess_ratio"], fmt_ns(o["gradc_hvp_ns"]), fmt_ns(o["gradc_grad_ns"]),
                    o["hvp_over_grad"]))
    if results.get("W7"):
        out.append("")
        out.append("W7 cache (bench_cache):")
        out.append(results["W7"]["stdout"].rstrip())
    if results["skipped"]:
        out.append("")
        out.append("skipped:")
        for s in results["skipped"]:
            out.append("  %s: %s" % (s["what"], s["why"]))
    if results["failures"]:
        out.append("")
        out.append("FAILURES:")
        for f in results["failures"]:
            out.append("  " + f)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions, small n (CI)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--gradc", help="gradc binary (default: BUILD_DIR/gradc)")
    ap.add_argument("--bench-compile", help="bench_compile binary (default: BUILD_DIR/bench/bench_compile)")
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--only", help="comma-separated workloads, e.g. W1,W4,W6")
    ap.add_argument("--reps", type=int, help="repetitions per contender")
    ap.add_argument("--no-peers", action="store_true", help="skip ADOL-C, PyTorch and SymPy")
    ap.add_argument("--cc-timeout", type=int, default=300,
                    help="seconds allowed for compiling one harness (default 300)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if anything failed or gradc disagrees with the hand-written C")
    ap.add_argument("--tolerance", type=float, default=1e-10,
                    help="largest normwise relative difference gradc vs hand-written")
    args = ap.parse_args()
    suite = Suite(args)
    suite.go()
    with open(args.json, "w") as f:
        json.dump(suite.results, f, indent=1)
    print(table(suite.results))
    print("\nJSON: %s" % args.json)
    if args.check and suite.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()

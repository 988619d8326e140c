"""torch_bench.py — the PyTorch (CPU autograd) contender.

Each workload is written the way a PyTorch user would: leaf tensors with
requires_grad, the formula, backward(). "value" is the formula alone under
torch.no_grad(); "grad" is the formula plus backward() (which gives value
and gradient together), with the leaves' .grad reset each time.

usage: torch_bench.py REPS MIN_BATCH_NS THREADS[,THREADS] WORKLOAD=INPUTS_FILE...
prints one JSON object per workload (a line each), keyed by thread count."""
import json
import sys
import time

import torch

torch.set_default_dtype(torch.float64)


def w1(v):
    w0, x0, w1_, x1, w2 = v
    return 1 / (1 + torch.exp(-(w0 * x0 + w1_ * x1 + w2)))


def w2(v):
    x, y, z, w = v
    return 2 * (x * y + torch.maximum(z, w))


def w4(v):
    (x,) = v
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def w3(v):
    (x,) = v
    return torch.softmax(x, 0)


def w3b(v):
    (x,) = v
    return torch.nn.functional.cross_entropy(x.unsqueeze(0), torch.tensor([3]))


NI, NH, NO = 784, 128, 10


def mlp_loss(x, p):
    """x: (batch, 784); p: the parameter vector in gradc's layout (layer by
    layer, weights row-major, then biases). Summed cross-entropy, class 3."""
    W1 = p[: NH * NI].view(NH, NI)
    b1 = p[NH * NI : NH * NI + NH]
    W2 = p[NH * NI + NH : NH * NI + NH + NO * NH].view(NO, NH)
    b2 = p[NH * NI + NH + NO * NH :]
    h = torch.relu(x @ W1.T + b1)
    z = h @ W2.T + b2
    target = torch.full((x.shape[0],), 3, dtype=torch.long)
    return torch.nn.functional.cross_entropy(z, target, reduction="sum")


def w5(v):
    x, p = v
    return mlp_loss(x.view(-1, NI), p)


def leaves(name, xs):
    """Scalar workloads take one 0-d leaf per input, vector ones one vector
    leaf; W5 two: the samples (data, no gradient) and the parameter vector,
    the one leaf the gradient is taken for."""
    if name in ("W3", "W3b", "W4"):
        return [torch.tensor(xs, requires_grad=True)]
    if name in ("W5", "W5b"):
        nx = len(xs) - (NH * NI + NH + NO * NH + NO)
        return [torch.tensor(xs[:nx]),
                torch.tensor(xs[nx:], requires_grad=True)]
    return [torch.tensor(v, requires_grad=True) for v in xs]


def blas_library():
    """The BLAS actually mapped into this process (Debian's torch uses the
    libblas.so.3 alternative: OpenBLAS when installed, else reference)."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    return ", ".join(sorted(libs)) or "none mapped"


def median_ns(f, reps, min_ns, clock):
    iters = 1
    while True:
        t0 = clock()
        for _ in range(iters):
            f()
        t = clock() - t0
        if t >= min_ns:
            break
        iters = int(iters * min_ns / t * 1.1) + 1 if t > min_ns / 64 else iters * 8
    v = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(iters):
            f()
        v.append((clock() - t0) / iters)
    v.sort()
    return v[reps // 2] if reps % 2 else 0.5 * (v[reps // 2 - 1] + v[reps // 2])


def bench(name, path, reps, min_ns, threads):
    with open(path) as f:
        nums = f.read().split()
    xs = [float(s) for s in nums[1 : 1 + int(nums[0])]]
    func = {"W1": w1, "W2": w2, "W3": w3, "W3b": w3b, "W4": w4, "W5": w5, "W5b": w5}[name]
    ls = leaves(name, xs)

    def value():
        with torch.no_grad():
            return func(ls)

    def grad():
        for leaf in ls:
            leaf.grad = None
        y = func(ls)
        y.backward()
        return y

    if name == "W3":                    # vector output: the full Jacobian
        def grad():
            return torch.autograd.functional.jacobian(lambda x: torch.softmax(x, 0), ls[0])
        g = grad().reshape(-1)
        y = value()[0]
    else:
        y = grad()
        g = torch.cat([leaf.grad.reshape(-1) for leaf in ls if leaf.requires_grad])
    out = {"value": y.item(), "grad_sum": g.sum().item(),
           "grad_abs_sum": g.abs().sum().item(),
           "torch": torch.__version__,
           "blas": blas_library()}
    for t in threads.split(","):
        torch.set_num_threads(int(t))
        # One thread: this thread's CPU time, as the C harness measures.
        # More: wall time (CPU time would add up the threads).
        clock = time.thread_time_ns if t == "1" else time.perf_counter_ns
        out[t] = {"value_ns": median_ns(value, reps, min_ns, clock),
                  "grad_ns": median_ns(grad, reps, min_ns, clock),
                  "clock": "thread CPU time" if t == "1" else "wall time"}
    return out


def main():
    """One process for several workloads: importing torch takes seconds."""
    reps, min_ns, threads = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    for job in sys.argv[4:]:
        name, path = job.split("=", 1)
        print(json.dumps(bench(name, path, reps, min_ns, threads)), flush=True)


main()

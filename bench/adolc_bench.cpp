// adolc_bench.cpp — the ADOL-C contender: each workload is taped once with
// adouble, then zos_forward (function()) and gradient() are timed on the
// tape, the way ADOL-C is meant to be used for repeated evaluation.
// W5 is the loss gradient by the weights only: the sample stays an
// independent and the weights' part of gradient() is reported. Taping the
// sample as passive values (double, or pdouble tape parameters) measured
// 2.3x slower: ADOL-C then cannot record `s += W*x` as its fused
// eq_plus_prod operation, and one reverse sweep gives all adjoints anyway.
//
// usage: adolc_bench W1|W2|W3b|W4|W5 INPUTS_FILE REPS MIN_BATCH_NS
// prints one JSON object: medians, value and gradient checksums.
#include <adolc/adolc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

static adouble w1(const std::vector<adouble> &v)
{
    // inputs in gradc's order: w0, x0, w1, x1, w2
    return 1.0 / (1.0 + exp(-(v[0] * v[1] + v[2] * v[3] + v[4])));
}

static adouble w2(const std::vector<adouble> &v)
{
    return 2.0 * (v[0] * v[1] + fmax(v[2], v[3]));
}

static adouble w4(const std::vector<adouble> &x)
{
    adouble f = 0.0;
    for (size_t i = 0; i + 1 < x.size(); i++) {
        adouble a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
        f += 100.0 * a * a + b * b;
    }
    return f;
}

static adouble w3b(const std::vector<adouble> &x)
{
    // log-sum-exp shifted by the maximum, taken as a passive constant: the
    // value and gradient do not depend on the shift.
    double m = x[0].getValue();
    for (const adouble &v : x)
        m = std::max(m, v.getValue());
    adouble s = 0.0;
    for (const adouble &v : x)
        s += exp(v - m);
    return m + log(s) - x[3];
}

// MLP 784-128-10 on one sample, cross-entropy for class 3; inputs are
// x (784) then the parameters in gradc's layout.
static adouble w5(const std::vector<adouble> &in)
{
    enum { NI = 784, NH = 128, NO = 10 };
    const adouble *x = in.data(), *W1 = x + NI, *b1 = W1 + NH * NI;
    const adouble *W2 = b1 + NH, *b2 = W2 + NO * NH;
    std::vector<adouble> h(NH), z(NO);
    for (int j = 0; j < NH; j++) {
        adouble s = 0.0;
        for (int k = 0; k < NI; k++)
            s += W1[j * NI + k] * x[k];
        s += b1[j];
        h[j] = fmax(s, 0.0);
    }
    for (int o = 0; o < NO; o++) {
        adouble s = 0.0;
        for (int j = 0; j < NH; j++)
            s += W2[o * NH + j] * h[j];
        z[o] = s + b2[o];
    }
    return w3b(z);                  // softmax cross-entropy, class 3
}

static double now_ns()
{
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);   // as bench/harness.c
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static volatile double sink;

// ns per call of a batch of `iters` calls of f.
template <class F> static double batch(F f, long iters)
{
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        f();
    return (now_ns() - t0) / iters;
}

template <class F> static double median_ns(F f, int reps, double min_ns)
{
    long iters = 1;
    for (;;) {
        double t = batch(f, iters) * iters;
        if (t >= min_ns)
            break;
        iters = t > min_ns / 64 ? long(iters * (min_ns / t) * 1.1) + 1 : iters * 8;
    }
    std::vector<double> v;
    for (int r = 0; r < reps; r++)
        v.push_back(batch(f, iters));
    std::sort(v.begin(), v.end());
    return reps % 2 ? v[reps / 2] : 0.5 * (v[reps / 2 - 1] + v[reps / 2]);
}

static void report(double tv, double tg, double value, const double *g, int n)
{
    double gsum = 0, gabs = 0;
    for (int i = 0; i < n; i++) {
        gsum += g[i];
        gabs += std::fabs(g[i]);
    }
    printf("{\"value_ns\": %.6g, \"grad_ns\": %.6g, \"value\": %.17g, "
           "\"grad_sum\": %.17g, \"grad_abs_sum\": %.17g}\n", tv, tg, value, gsum, gabs);
}

// W3: softmax of 3 values (3 dependents); function() and jacobian().
static int softmax_jacobian(short tag, std::vector<double> &x, int reps, double min_ns)
{
    double y[3];
    trace_on(tag);
    {
        adouble ax[3], e[3], ay[3];
        for (int i = 0; i < 3; i++)
            ax[i] <<= x[i];
        double m = std::max(x[0], std::max(x[1], x[2]));   // passive shift
        adouble s = 0.0;
        for (int i = 0; i < 3; i++) {
            e[i] = exp(ax[i] - m);
            s += e[i];
        }
        for (int i = 0; i < 3; i++) {
            ay[i] = e[i] / s;
            ay[i] >>= y[i];
        }
    }
    trace_off();
    double **J = myalloc2(3, 3), flat[9];
    double tv = median_ns([&] { function(tag, 3, 3, x.data(), y); sink = y[0]; }, reps, min_ns);
    double tg = median_ns([&] { jacobian(tag, 3, 3, x.data(), J); sink = J[0][0]; }, reps, min_ns);
    function(tag, 3, 3, x.data(), y);
    jacobian(tag, 3, 3, x.data(), J);
    for (int i = 0; i < 9; i++)
        flat[i] = J[i / 3][i % 3];
    report(tv, tg, y[0], flat, 9);
    myfree2(J);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: adolc_bench W1|W2|W4 INPUTS_FILE REPS MIN_BATCH_NS\n");
        return 2;
    }
    const char *w = argv[1];
    int reps = atoi(argv[3]);
    double min_ns = atof(argv[4]);
    FILE *f = fopen(argv[2], "r");
    int n;
    if (!f || fscanf(f, "%d", &n) != 1)
        return 2;
    std::vector<double> x(n), g(n);
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%lf", &x[i]) != 1)
            return 2;
    fclose(f);

    const short tag = 1;
    if (!strcmp(w, "W3"))
        return softmax_jacobian(tag, x, reps, min_ns);
    double y = 0;
    trace_on(tag);
    {
        std::vector<adouble> ax(n);
        for (int i = 0; i < n; i++)
            ax[i] <<= x[i];
        adouble ay = !strcmp(w, "W1") ? w1(ax) : !strcmp(w, "W2") ? w2(ax)
                   : !strcmp(w, "W3b") ? w3b(ax) : !strcmp(w, "W5") ? w5(ax) : w4(ax);
        ay >>= y;
    }
    trace_off();

    double value = 0;
    function(tag, 1, n, x.data(), &value);
    gradient(tag, n, x.data(), g.data());
    int first = !strcmp(w, "W5") ? 784 : 0;     // W5: the weights' part
    double gsum = 0, gabs = 0;
    for (int i = first; i < n; i++) {
        gsum += g[i];
        gabs += std::fabs(g[i]);
    }
    double tv = median_ns([&] { double o; function(tag, 1, n, x.data(), &o); sink = o; },
                          reps, min_ns);
    double tg = median_ns([&] { gradient(tag, n, x.data(), g.data()); sink = g[0]; },
                          reps, min_ns);
    printf("{\"value_ns\": %.6g, \"grad_ns\": %.6g, \"value\": %.17g, "
           "\"grad_sum\": %.17g, \"grad_abs_sum\": %.17g, \"note\": \"taped once; "
           "function() and gradient() on the tape\"}\n", tv, tg, value, gsum, gabs);
    return 0;
}

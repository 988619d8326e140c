/* hess_harness.c — W4H: gradc's second-order entry points of W4 (the
 * range-sum form) in one process, interleaved, against the hand-written
 * tridiagonal Hessian (hand/w4h.c) and against gradc's own gradient:
 *   hess   gradc's f_hess vs hand_hess (same layout, checked to agree)
 *   hvp    gradc's f_hvp vs gradc's f_grad (the cost of H v in gradients)
 * Built by bench/run.py from this file, hand/w4h.c and `gradc emit
 * --entry value,grad,hvp,hess` output with identical flags; every
 * function is called through a pointer into another translation unit.
 *
 * usage: hess_harness N REPS MIN_BATCH_NS; prints one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include GRADC_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

double hand_hess(const double *x, int n, double *g, double *H);

enum { HESS, HAND, HVP, GRAD, NC };
static const char *const name[NC] = {"gradc_hess", "hand_hess", "gradc_hvp", "gradc_grad"};

static double *x, *v, *g, *H, *out;
static int n;
static volatile double sink;

/* -DGRADC_WORK=N: the code needs a work array (NAME_WORK_SIZE), and the
 * entry points are the _work variants. */
#ifdef GRADC_WORK
static double work[GRADC_WORK];
#define ENTRY(s) CAT(CAT(GRADC_SYM, s), _work)
#define WORK , work
#else
#define ENTRY(s) CAT(GRADC_SYM, s)
#define WORK
#endif

static double call(int c)
{
    switch (c) {
    case HESS: return ENTRY(_hess)(x, g, H WORK);
    case HAND: return hand_hess(x, n, g, H);
    case HVP: return ENTRY(_hvp)(x, v, out WORK);
    default: return ENTRY(_grad)(x, g WORK);
    }
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static double batch(int c, long iters)
{
    double t0 = now_ns(), s = 0;
    for (long i = 0; i < iters; i++)
        s += call(c);
    sink = s;
    return (now_ns() - t0) / (double)iters;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    n = atoi(argv[1]);
    int reps = atoi(argv[2]);
    double min_ns = atof(argv[3]);
    x = malloc(n * sizeof *x), v = malloc(n * sizeof *v), g = malloc(n * sizeof *g);
    H = malloc(3 * n * sizeof *H), out = malloc(n * sizeof *out);
    for (int i = 0; i < n; i++) {
        x[i] = i % 2 == 0 ? -1.2 : 1.0;         /* the classical start */
        v[i] = 1.0 / (1 + i);
    }
    /* Agreement: gradc's entries against the hand-written ones. */
    double *Hg = malloc(3 * n * sizeof *Hg), worst = 0;
    call(HESS);
    memcpy(Hg, H, (2 * n - 1) * sizeof *H);
    call(HAND);
    for (int q = 0; q < 2 * n - 1; q++)
        worst = fmax(worst, fabs(Hg[q] - H[q]) / fmax(1.0, fabs(H[q])));
    long iters[NC];
    for (int c = 0; c < NC; c++) {
        iters[c] = 1;
        while (batch(c, iters[c]) * iters[c] < min_ns)
            iters[c] *= 2;
    }
    double *t = malloc(NC * reps * sizeof *t);
    for (int r = 0; r < reps; r++)
        for (int c = 0; c < NC; c++)
            t[c * reps + r] = batch(c, iters[c]);
    printf("{\"n\": %d, \"nnz\": %d, \"max_rel_diff\": %.3g", n, ROSEN_NNZ, worst);
    double med[NC];
    for (int c = 0; c < NC; c++) {
        qsort(t + c * reps, reps, sizeof *t, cmp);
        med[c] = t[c * reps + reps / 2];
        printf(", \"%s_ns\": %.1f", name[c], med[c]);
    }
    printf(", \"hess_ratio\": %.3f, \"hvp_over_grad\": %.3f}\n", med[HESS] / med[HAND],
           med[HVP] / med[GRAD]);
    return worst <= 1e-12 ? 0 : 1;
}

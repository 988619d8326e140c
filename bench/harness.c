/* harness.c — times gradc's generated code against the hand-written C of
 * one workload, in the same process, interleaved, and checks that the two
 * agree. Built by bench/run.py once per workload and flag set, from three
 * translation units compiled with identical flags:
 *
 *   harness.c          this file (timing, checking, JSON output)
 *   hand/wN.c          the hand-written contender: hand_value, hand_grad
 *   gradc_wN.c         `gradc emit` output, renamed with --prefix/--name
 *
 * Both contenders are called through function pointers in other
 * translation units, so neither can be inlined into the timing loop.
 *
 * usage: harness INPUTS_FILE REPS MIN_BATCH_NS
 * INPUTS_FILE holds the input count, then one number per line (%.17g). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include GRADC_HEADER           /* the emitted header, e.g. "gradc_w1.h" */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* The hand-written side (hand/wN.c). hand_grad returns the value too. */
extern const int hand_ninputs;          /* -1: any n (read from inputs) */

#ifdef GRADC_JACOBIAN
/* Vector-valued workloads (-DGRADC_JACOBIAN=OUT_SIZE): "value" is the
 * forward function into out[], "grad" the full Jacobian, row-major,
 * outputs x inputs; both report out[0] / J[0] to the timing loop. */
#define GRAD_SIZE(n) (GRADC_JACOBIAN * (n))
void hand_forward(const double *in, double *out);
void hand_jacobian(const double *in, double *J);
static double out_buf[GRADC_JACOBIAN];
static double hand_value(const double *in, int n)
{
    (void)n;
    hand_forward(in, out_buf);
    return out_buf[0];
}
static double hand_grad(const double *in, int n, double *J)
{
    (void)n;
    hand_jacobian(in, J);
    return J[0];
}
static double gradc_value(const double *in, int n)
{
    (void)n;
    GRADC_SYM(in, out_buf);
    return out_buf[0];
}
static double gradc_grad(const double *in, int n, double *J)
{
    (void)n;
    CAT(GRADC_SYM, _jacobian)(in, J);
    return J[0];
}
#elif defined GRADC_GRAD_SIZE
/* A gradient by some inputs only (gradc emit --wrt; the header's
 * NAME_GRAD_SIZE): both contenders write that many entries, and the
 * hand-written side says how many it writes in hand_ngrad. */
#define GRAD_SIZE(n) (GRADC_GRAD_SIZE)
extern const int hand_ngrad;
double hand_value(const double *in, int n);
double hand_grad(const double *in, int n, double *grad);
#else
#define GRAD_SIZE(n) (n)
double hand_value(const double *in, int n);
double hand_grad(const double *in, int n, double *grad);
#endif

/* GRADC_SYM is the emitted function's C name; GRADC_WORK its work size (0
 * when the emitted functions keep their temporaries on the stack). */
#if defined GRADC_JACOBIAN
#elif GRADC_WORK
static double work[GRADC_WORK];
static double gradc_value(const double *in, int n)
{
    (void)n;
    return CAT(GRADC_SYM, _work)(in, work);
}
static double gradc_grad(const double *in, int n, double *grad)
{
    (void)n;
    return CAT(GRADC_SYM, _grad_work)(in, grad, work);
}
#else
/* The plain case: gradc's entry points are timed as they are, called
 * through pointers of their own types (native_value, native_grad in
 * batch), as the hand-written functions are through theirs. A wrapper
 * with the hand-written signature would add an argument move and a jump
 * to every call of gradc's code only: 4 % of W1's 12 ns. The wrappers
 * below serve the checks outside the timed loops. */
#define GRADC_NATIVE 1
static double (*volatile native_value)(const double *) = GRADC_SYM;
static double (*volatile native_grad)(const double *, double *) = CAT(GRADC_SYM, _grad);
static double gradc_value(const double *in, int n)
{
    (void)n;
    return GRADC_SYM(in);
}
static double gradc_grad(const double *in, int n, double *grad)
{
    (void)n;
    return CAT(GRADC_SYM, _grad)(in, grad);
}
#endif

typedef struct Contender {
    const char *name;
    double (*value)(const double *, int);
    double (*grad)(const double *, int, double *);
} Contender;

/* volatile: the compiler must reload the pointers and keep every call. */
static Contender *volatile contenders;
static volatile double sink;

/* CPU time of this thread: on a shared machine, the time other processes
 * held the core is not charged to whichever contender was running. */
static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* One timed batch of `iters` calls; returns nanoseconds per call. */
static double batch(int c, int want_grad, const double *in, int n,
                    double *grad, long iters)
{
    double acc = 0, t0 = now_ns();
#ifdef GRADC_NATIVE
    if (c == 0) {               /* gradc: table[0] */
        for (long i = 0; i < iters; i++)
            acc += want_grad ? native_grad(in, grad) : native_value(in);
        double t1 = now_ns();
        sink = acc;
        return (t1 - t0) / (double)iters;
    }
#endif
    for (long i = 0; i < iters; i++)
        acc += want_grad ? contenders[c].grad(in, n, grad)
                         : contenders[c].value(in, n);
    double t1 = now_ns();
    sink = acc;
    return (t1 - t0) / (double)iters;
}

/* Iterations per batch so that one batch lasts at least min_ns. */
static long calibrate(int c, int want_grad, const double *in, int n,
                      double *grad, double min_ns)
{
    long iters = 1;
    for (;;) {
        double t = batch(c, want_grad, in, n, grad, iters) * (double)iters;
        if (t >= min_ns || iters > (1L << 40))
            return iters;
        iters = t > min_ns / 64 ? (long)(iters * (min_ns / t) * 1.1) + 1 : iters * 8;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Normwise relative difference of b from the reference a. */
static double rel_err(const double *a, const double *b, int n)
{
    double diff = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i]))
            return INFINITY;
        diff = fmax(diff, fabs(a[i] - b[i]));
        scale = fmax(scale, fabs(a[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static double *read_inputs(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%d", n) != 1 || *n < 0) {
        fprintf(stderr, "harness: cannot read inputs from %s\n", path);
        exit(2);
    }
    double *x = malloc((size_t)(*n + 1) * sizeof *x);
    for (int i = 0; i < *n; i++)
        if (fscanf(f, "%lf", &x[i]) != 1) {
            fprintf(stderr, "harness: %s: too few numbers\n", path);
            exit(2);
        }
    fclose(f);
    return x;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: harness INPUTS_FILE REPS MIN_BATCH_NS\n");
        return 2;
    }
    int n, reps = atoi(argv[2]);
    double min_ns = atof(argv[3]);
    double *in = read_inputs(argv[1], &n);
    if ((hand_ninputs >= 0 && n != hand_ninputs) || n != GRADC_NINPUTS) {
        fprintf(stderr, "harness: %d inputs given; hand-written code takes %d, gradc's %d\n",
                n, hand_ninputs, GRADC_NINPUTS);
        return 2;
    }
#if defined GRADC_GRAD_SIZE && !defined GRADC_JACOBIAN
    if (hand_ngrad != GRADC_GRAD_SIZE) {
        fprintf(stderr, "harness: the hand-written gradient has %d entries, gradc's %d\n",
                hand_ngrad, GRADC_GRAD_SIZE);
        return 2;
    }
#endif
    static Contender table[] = {
        {"gradc", gradc_value, gradc_grad},
        {"hand", hand_value, hand_grad},
    };
    contenders = table;
    enum { NC = 2 };
    double *grad[NC], value[NC], gvalue[NC];
    for (int c = 0; c < NC; c++) {
        grad[c] = calloc((size_t)GRAD_SIZE(n) + 1, sizeof(double));
        value[c] = contenders[c].value(in, n);
        gvalue[c] = contenders[c].grad(in, n, grad[c]);
    }
    double err_v = rel_err(&value[1], &value[0], 1);
    double err_gv = rel_err(&gvalue[1], &gvalue[0], 1);
    double err_g = rel_err(grad[1], grad[0], GRAD_SIZE(n));

    long iters[NC][2];
    double *t[NC][2];
    for (int c = 0; c < NC; c++)
        for (int k = 0; k < 2; k++) {
            iters[c][k] = calibrate(c, k, in, n, grad[c], min_ns);
            t[c][k] = malloc((size_t)reps * sizeof(double));
        }
    /* Interleaved: every repetition runs every contender, so a slow phase
     * of a noisy machine hits all of them alike. */
    for (int r = 0; r < reps; r++)
        for (int c = 0; c < NC; c++)
            for (int k = 0; k < 2; k++)
                t[c][k][r] = batch(c, k, in, n, grad[c], iters[c][k]);

    double gsum = 0, gabs = 0;
    for (int i = 0; i < GRAD_SIZE(n); i++) {
        gsum += grad[1][i];
        gabs += fabs(grad[1][i]);
    }
    printf("{\"n\": %d, \"reps\": %d, \"value\": %.17g, \"grad_sum\": %.17g, \"grad_abs_sum\": %.17g,\n",
           n, reps, value[1], gsum, gabs);
    printf(" \"check\": {\"value_rel_err\": %.3g, \"grad_value_rel_err\": %.3g, \"grad_rel_err\": %.3g},\n",
           err_v, err_gv, err_g);
    printf(" \"contenders\": {");
    for (int c = 0; c < NC; c++) {
        printf("%s\n  \"%s\": {", c ? "," : "", contenders[c].name);
        for (int k = 0; k < 2; k++) {
            printf("%s\"%s\": {\"iters\": %ld, \"ns\": [", k ? ", " : "",
                   k ? "grad" : "value", iters[c][k]);
            for (int r = 0; r < reps; r++)
                printf("%s%.4g", r ? ", " : "", t[c][k][r]);
            double med = median(t[c][k], reps);   /* sorts: t[..][0] is the minimum */
            printf("], \"median_ns\": %.6g, \"min_ns\": %.6g}", med, t[c][k][0]);
        }
        printf("}");
    }
    printf("}}\n");
    return 0;
}

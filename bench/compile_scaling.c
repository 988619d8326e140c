/* compile_scaling.c — W6: how gradc's own compilation time and output size
 * grow with the formula. Random formulas of N operation nodes (and W4, the
 * Rosenbrock function, for a given n) go through the compiler core in this
 * process: parse -> IR (front_parse), differentiate + extract (opt_kernel),
 * C emission (emit_c_source). The C compiler is not involved.
 *
 * usage: bench_compile random N [SEED] | rosen N, then optionally --runs R
 * prints one JSON object; every time is the median of a few compiles in
 * this process (R: that many; 1 for profiling under valgrind or perf).
 * bench/run.py times first compiles: --runs 1 in several processes. */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this thread, as bench/harness.c: on a shared machine other
 * processes' time slices are not charged to gradc. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)        /* uniform-ish in [0, n) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* Appends a random formula with exactly `size` operation nodes (leaves
 * not counted). The split point is uniform, so the depth is O(log size)
 * on average, like a random binary search tree: formulas are bushy, not
 * degenerate chains. Leaves are drawn from 64 variables and small
 * constants, so hash-consing finds some, but not much, sharing. */
static void gen(Buf *b, uint32_t size)
{
    static const char *const unary[] = {"sin", "exp", "log", "tanh", "sqrt", "sigmoid"};
    static const char binary[] = "+-*/";
    if (size == 0) {
        if (rnd(4))
            buf_printf(b, "v%u", rnd(64));
        else
            buf_printf(b, "%u.%u", 1 + rnd(9), rnd(10));
        return;
    }
    if (rnd(5) == 0) {
        buf_printf(b, "%s(", unary[rnd(6)]);
        gen(b, size - 1);
        buf_puts(b, ")");
        return;
    }
    uint32_t left = rnd(size);          /* 0 .. size-1 nodes on the left */
    buf_puts(b, "(");
    gen(b, left);
    buf_printf(b, " %c ", binary[rnd(4)]);
    gen(b, size - 1 - left);
    buf_puts(b, ")");
}

/* The chained Rosenbrock function of n inputs, as one scalar formula. */
static void rosen(Buf *b, uint32_t n)
{
    for (uint32_t i = 0; i + 1 < n; i++)
        buf_printf(b, "%s(100*(x%u - x%u^2)^2 + (1 - x%u)^2)", i ? " + " : "", i + 1, i, i);
}

typedef struct Run {
    double parse, diff, emit;
    uint32_t ir_nodes, kernel_nodes;
    size_t c_bytes;
} Run;

static int one_run(const char *text, Run *r)
{
    Source src = {"<bench>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    double t0 = now_s();
    Program *p = front_parse(&src, 1, &d);
    if (!p || !p->bare) {
        fprintf(stderr, "bench_compile: %s", d.out.data ? d.out.data : "parse failed\n");
        return -1;
    }
    double t1 = now_s();
    Kernel *k = opt_kernel(p, p->bare, 1);
    double t2 = now_s();
    Buf c = {0};
    EmitOptions o = {.name = "f"};
    if (emit_c_source(k, &o, &c, &d) != 0)
        return -1;
    double t3 = now_s();
    *r = (Run){t1 - t0, t2 - t1, t3 - t2, p->g->n, k->g->n, c.len};
    buf_free(&c);
    kernel_free(k);
    program_free(p);
    diag_free(&d);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = 0;
    if (argc >= 5 && !strcmp(argv[argc - 2], "--runs")) {
        runs = atoi(argv[argc - 1]);
        argc -= 2;
    }
    if (argc < 3 || (strcmp(argv[1], "random") && strcmp(argv[1], "rosen")) || runs < 0) {
        fprintf(stderr, "usage: bench_compile random N [SEED] | rosen N  [--runs R]\n");
        return 2;
    }
    uint32_t n = (uint32_t)strtoul(argv[2], NULL, 10);
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : 42;
    Buf text = {0};
    buf_puts(&text, "");
    if (!strcmp(argv[1], "random"))
        gen(&text, n);
    else
        rosen(&text, n);
    enum { MAXRUNS = 5 };
    /* Fewer repetitions for big inputs: the spread is small there. */
    if (runs == 0 || runs > MAXRUNS)
        runs = n >= 500000 ? 1 : n >= 50000 ? 3 : MAXRUNS;
    Run r[MAXRUNS];
    double total[MAXRUNS], sorted[MAXRUNS];
    for (int i = 0; i < runs; i++) {
        if (one_run(text.data, &r[i]) != 0)
            return 1;
        sorted[i] = total[i] = r[i].parse + r[i].diff + r[i].emit;
    }
    qsort(sorted, (size_t)runs, sizeof *sorted, cmp);
    int m = 0;
    while (total[m] != sorted[runs / 2])
        m++;
    printf("{\"kind\": \"%s\", \"n\": %u, \"text_bytes\": %zu, \"ir_nodes\": %u, "
           "\"kernel_nodes\": %u, \"c_bytes\": %zu, \"runs\": %d, \"parse_s\": %.6g, "
           "\"diff_s\": %.6g, \"emit_s\": %.6g, \"total_s\": %.6g}\n",
           argv[1], n, text.len, r[m].ir_nodes, r[m].kernel_nodes, r[m].c_bytes, runs,
           r[m].parse, r[m].diff, r[m].emit, total[m]);
    buf_free(&text);
    return 0;
}

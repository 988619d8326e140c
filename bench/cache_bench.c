/* cache_bench.c — W7: what the cache of compiled graphs buys (issue 3).
 * Prints, in one run, the median time of a cold compile-and-load (a miss:
 * emit, cc, store, dlopen) against a cache hit (key, look up, verify,
 * write, dlopen) for the notes' sigmoid neuron and a ~1000-node formula,
 * in process through rt_load, then for whole `gradc eval` processes.
 *
 *     bench_cache [--quick] [--gradc PATH]
 *
 * Targets: in process a hit at least 50x faster than a cold load; whole
 * process a hit at least 10x faster than a miss and under 5 ms. Timing
 * never makes it fail; a wrong answer or a failed load does. */
#include "cache.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v, returns its median. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_cache: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* The notes' sigmoid neuron, f(w, x) = 1 / (1 + e^-(w0 x0 + w1 x1 + w2)). */
static const char neuron[] = "1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))";

/* A formula whose kernel (value and gradient) has about `target` nodes:
 * terms in x, y, z, each with its own constants so none are shared. */
static char *big_formula(int terms)
{
    Buf b = {0};
    for (int i = 0; i < terms; i++)
        buf_printf(&b, "%ssin(%d.5*x + y*%d) * exp(-z*%d.25) + log(1 + x*x*%d)",
                   i ? " + " : "", i + 1, i + 2, i + 1, i + 3);
    return b.data;
}

typedef struct Formula {
    const char *label;
    char *text;
    Program *p;
    Kernel *k;
    double in[8];
} Formula;

static void formula_init(Formula *f, const char *label, char *text)
{
    f->label = label;
    f->text = text;
    Source src = {"<bench>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    f->p = front_parse(&src, 1, &d);
    if (!f->p)
        die("cannot parse", d.out.data);
    diag_free(&d);
    f->k = opt_kernel(f->p, f->p->bare, 1);
    double vals[] = {2, -1, -3, -2, -3, 0.5, 0.25, 0.125};
    memcpy(f->in, vals, sizeof vals);
}

static char *fresh_cache(const char *root, int n)
{
    char *dir = malloc(strlen(root) + 32);
    sprintf(dir, "%s/c%d", root, n);
    mkdir(dir, 0700);
    char *path = malloc(strlen(dir) + 16);
    sprintf(path, "%s/c.sqlite", dir);
    free(dir);
    return path;
}

/* One rt_load, timed; checks that the code computes what the interpreter does. */
static double load_once(const Formula *f, const gradc_options *opt)
{
    Loaded l;
    char *err = NULL;
    double t0 = now_ms();
    if (rt_load(f->k, opt, &l, &err) != 0)
        die("rt_load failed", err);
    double t = now_ms() - t0;
    double got = rt_value(&l, f->in), want;
    interp_eval(f->k->g, f->k->input, f->in, f->k->ninputs, &f->k->value, 1, &want);
    if (!(fabs(got - want) <= 1e-12 * (1 + fabs(want))))
        die("wrong value from loaded code", f->label);
    rt_unload(&l);
    return t;
}

typedef struct Result {
    double cold, hit;           /* medians */
    double hit_best;            /* the fastest hit: its cost without load */
} Result;

static Result in_process(const Formula *f, const char *root, int cold_reps, int hit_reps)
{
    static int serial;
    double *t = malloc(sizeof *t * (size_t)(cold_reps > hit_reps ? cold_reps : hit_reps));
    char *path = NULL;
    for (int i = 0; i < cold_reps; i++) {
        free(path);
        path = fresh_cache(root, serial++);          /* an empty cache: a miss */
        gradc_options opt = {.cache_path = path};
        t[i] = load_once(f, &opt);
    }
    Result r = {median(t, cold_reps), 0, 0};
    gradc_options opt = {.cache_path = path};
    for (int i = 0; i < hit_reps; i++)
        t[i] = load_once(f, &opt);
    r.hit = median(t, hit_reps);
    r.hit_best = t[0];
    free(path);
    free(t);
    return r;
}

/* One `gradc eval FORMULA --at ...` with GRADC_CACHE=cache, timed. */
static double eval_once(const char *gradc, const Formula *f, const char *cache)
{
    Buf at = {0};
    for (uint32_t i = 0; i < f->k->ninputs; i++)
        buf_printf(&at, "%s%s=%g", i ? "," : "", f->k->input_name[i], f->in[i]);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        setenv("GRADC_CACHE", cache, 1);
        execl(gradc, gradc, "eval", f->text, "--at", at.data, "--grad", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    double t = now_ms() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("gradc eval failed for", f->label);
    buf_free(&at);
    return t;
}

/* The median time of `gradc --version`: starting a process at all. */
static double process_start(const char *gradc, int reps)
{
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            execl(gradc, gradc, "--version", (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        t[i] = now_ms() - t0;
    }
    double m = median(t, reps);
    free(t);
    return m;
}

static Result whole_process(const char *gradc, const Formula *f, const char *root,
                            int cold_reps, int hit_reps)
{
    static int serial = 1000;
    double *t = malloc(sizeof *t * (size_t)(cold_reps > hit_reps ? cold_reps : hit_reps));
    char *path = NULL;
    for (int i = 0; i < cold_reps; i++) {
        free(path);
        path = fresh_cache(root, serial++);
        t[i] = eval_once(gradc, f, path);
    }
    Result r = {median(t, cold_reps), 0, 0};
    for (int i = 0; i < hit_reps; i++)
        t[i] = eval_once(gradc, f, path);
    r.hit = median(t, hit_reps);
    r.hit_best = t[0];
    free(path);
    free(t);
    return r;
}

static void report(const char *where, const Formula *f, Result r, double want_ratio,
                   double want_hit_ms)
{
    double ratio = r.cold / r.hit;
    int met = ratio >= want_ratio && (want_hit_ms <= 0 || r.hit < want_hit_ms);
    printf("%-10s  %-26s %5u  %9.2f  %8.3f  %7.1fx  %8.3f  >= %.0fx%s: %s\n",
           where, f->label, f->k->g->n - 1, r.cold, r.hit, ratio, r.hit_best, want_ratio,
           want_hit_ms > 0 ? ", hit < 5 ms" : "", met ? "met" : "MISSED");
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *gradc = GRADC_BIN;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--gradc") && i + 1 < argc)
            gradc = argv[++i];
        else
            die("usage: bench_cache [--quick] [--gradc PATH]", NULL);
    }
    char root[] = "/tmp/gradc-bench-cache-XXXXXX";
    if (!mkdtemp(root))
        die("cannot create a temporary directory", NULL);

    Formula fs[2];
    formula_init(&fs[0], "sigmoid neuron (notes Q3)", xstrdup(neuron));
    /* As many terms as make a kernel (value and gradient) of 1000 nodes. */
    for (int terms = 30;; terms += 2) {
        formula_init(&fs[1], "~1000-node formula", big_formula(terms));
        if (fs[1].k->g->n - 1 >= 1000)
            break;
        kernel_free(fs[1].k);
        program_free(fs[1].p);
        free(fs[1].text);
    }

    int cold = quick ? 3 : 11, hit = quick ? 11 : 101;
    int big_cold = quick ? 2 : 5;
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(la);
    }
    printf("gradc cache benchmark (%s; times in ms, medians unless 'best'; cc %s; load %.2f)\n",
           quick ? "quick" : "full", gradc_default_cc(NULL), load[0]);
    printf("%-10s  %-26s %5s  %9s  %8s  %8s  %8s  %s\n", "where", "formula", "nodes",
           "cold", "hit", "ratio", "best hit", "target");
    for (int i = 0; i < 2; i++)
        report("in-process", &fs[i], in_process(&fs[i], root, i ? big_cold : cold, hit), 50, 0);
    for (int i = 0; i < 2; i++)
        report("gradc eval", &fs[i], whole_process(gradc, &fs[i], root, i ? big_cold : cold,
                                                   quick ? 11 : 51), 10, 5);
    printf("gradc --version alone (process start): %.3f ms\n", process_start(gradc, quick ? 11 : 51));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_cache: could not remove %s\n", root);
    for (int i = 0; i < 2; i++) {
        kernel_free(fs[i].k);
        program_free(fs[i].p);
        free(fs[i].text);
    }
    return 0;
}

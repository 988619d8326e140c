/* test_hess.c — forward mode and second order (compiler/fwd.c,
 * compiler/hessian.c, the f_jvp/f_hvp/f_hess entry points). The generated
 * code (compiled and loaded, runtime/) is checked against references
 * computed another way: central differences of the generated gradient,
 * central differences of the interpreter's gradient (a kernel without any
 * second-order part), the interpreter on the same kernel, H v and J v
 * formed from H and the gradient, and Hessians worked out by hand. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { ANY, POS };

/* Inputs are x, y, z in order of appearance. POS draws from [0.3, 1.5],
 * ANY from [-1.5, 1.5]. */
static const struct Formula {
    const char *text;
    int domain;
} formulas[] = {
    {"x * y", ANY}, {"x / y", POS}, {"x^2 * y", ANY}, {"x^3", ANY}, {"x^y", POS},
    {"2^x * y", ANY}, {"x^-1 + y", POS}, {"pow(x, 2.5) * y", POS}, {"exp(x*y)", ANY},
    {"log(x*y)", POS}, {"log1p(x*y)", POS}, {"expm1(x*y)", ANY}, {"sqrt(x + y)", POS},
    {"sin(x*y)", ANY}, {"cos(x - y)", ANY}, {"tan(x*y/2)", ANY}, {"asin(x*y/3)", ANY},
    {"acos(x*y/3)", ANY}, {"atan(x*y)", ANY}, {"atan2(y, x)", POS}, {"sinh(x*y)", ANY},
    {"cosh(x + y)", ANY}, {"tanh(x*y)", ANY}, {"hypot(x, y)", POS}, {"erf(x*y)", ANY},
    {"sigmoid(x*y + z)", ANY}, {"softplus(x*y)", ANY}, {"relu(x) * y", ANY},
    {"abs(x) * y^2", ANY}, {"max(x, y) * z", ANY}, {"min(x*y, z)^2", ANY},
    {"step(x) * y^2", ANY}, {"sin(x*y) + cos(x/y)", POS},
    {"exp(sin(x)) * log(y^2 + 1)", ANY}, {"sqrt(x^2 + y^2 + z^2)", ANY},
    {"tanh(tanh(tanh(x*y)))", ANY}, {"1/(1 + exp(-(x*y + z)))", ANY},
    {"log(exp(x) + exp(y))", ANY}, {"x^y^z", POS}, {"hypot(sin(x), cos(y)) * erf(z)", ANY},
    {"(x - y)/(x + y + 10)", ANY}, {"log(x) * log(y)", POS}, {"exp(-x^2/2 - y^2)", ANY},
    {"log1p(exp(x*y - z))", ANY}, {"(x*y)^2 + sin(x*y) + exp(x*y)", ANY},
    {"a = x*y\nb = sin(a) + a^2\nb*z + a", ANY}, {"x*x*x*x*y", ANY},
    {"x / (1 + abs(y))", ANY}, {"exp(x) * exp(-y) * z", ANY}, {"x + 2*y - z", ANY},
    {"sigmoid(x) * tanh(y) * z^2", ANY},
};
enum { NFORMULAS = sizeof formulas / sizeof formulas[0] };

typedef struct Compiled {
    Program *p;
    Kernel *k;
    Loaded code;
    uint32_t n;                 /* variables (scalar inputs here) */
} Compiled;

static Program *parse_text(const char *text, int bare)
{
    Source src = {"<expr>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, bare, &d);
    cr_assert_not_null(p, "%s: %s", text, d.out.data ? d.out.data : "");
    diag_free(&d);
    return p;
}

static void load(Compiled *c, const char *what)
{
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    cr_assert_eq(rt_load(c->k, &opt, &c->code, &err), 0, "%s does not load: %s", what,
                 err ? err : "");
    cr_assert(!(c->k->entries & (ENTRY_JVP | ENTRY_HVP | ENTRY_HESS)) || c->code.entry2);
}

static void compile_func(Compiled *c, const char *text, const char *func, unsigned entries)
{
    memset(c, 0, sizeof *c);
    c->p = parse_text(text, func == NULL);
    Func *f = func ? program_find(c->p, func) : c->p->bare;
    cr_assert_null(opt_entries_error(c->p, f, NULL, entries));
    c->k = opt_kernel_entries(c->p, f, NULL, entries);
    c->n = c->k->hess.n;
    load(c, text);
}

static void release(Compiled *c)
{
    rt_unload(&c->code);
    kernel_free(c->k);
    program_free(c->p);
}

static double draw(unsigned *seed, int domain)
{
    double u = (double)rand_r(seed) / RAND_MAX;
    return domain == POS ? 0.3 + 1.2 * u : -1.5 + 3.0 * u;
}

/* The dense Hessian (n x n) from the pattern's entries. */
static void densify(const HessPattern *h, const double *vals, double *H)
{
    memset(H, 0, (size_t)h->n * h->n * sizeof *H);
    for (uint32_t j = 0; j < h->n; j++)
        for (uint32_t q = h->colptr[j]; q < h->colptr[j + 1]; q++) {
            uint32_t i = h->rowind[q];
            H[i * h->n + j] = H[j * h->n + i] = vals[q];
        }
}

static void generated_hessian(const Compiled *c, const double *in, double *grad, double *H)
{
    double *vals = malloc((c->k->hess.nnz + 1) * sizeof *vals);
    rt_call2(&c->code, in, NULL, NULL, NULL, NULL, grad, vals);
    densify(&c->k->hess, vals, H);
    free(vals);
}

static int close_to(double a, double b, double rel, double abs_tol)
{
    return fabs(a - b) <= abs_tol + rel * fabs(b) || (isnan(a) && isnan(b));
}

/* Central differences of a gradient function: column j of the Hessian. */
typedef void (*GradFn)(const void *ctx, const double *in, double *grad);

static void fd_hessian(GradFn gradf, const void *ctx, uint32_t n, const double *x, double *H)
{
    double *xp = malloc(n * sizeof *xp), *gp = malloc(n * sizeof *gp), *gm = malloc(n * sizeof *gm);
    for (uint32_t j = 0; j < n; j++) {
        double h = 1e-5 * fmax(1.0, fabs(x[j]));
        memcpy(xp, x, n * sizeof *xp);
        xp[j] = x[j] + h;
        gradf(ctx, xp, gp);
        xp[j] = x[j] - h;
        gradf(ctx, xp, gm);
        for (uint32_t i = 0; i < n; i++)
            H[i * n + j] = (gp[i] - gm[i]) / (2 * h);
    }
    free(xp);
    free(gp);
    free(gm);
}

/* The generated gradient of the ordinary kernel (value, grad). */
static void jit_grad(const void *ctx, const double *in, double *grad)
{
    rt_grad(ctx, in, grad);
}

/* The interpreter's gradient on a kernel with no second-order part. */
static void interp_grad(const void *ctx, const double *in, double *grad)
{
    const Kernel *k = ctx;
    interp_eval(k->g, k->input, in, k->ninputs, k->grad, k->ninputs, grad);
}

/* One formula, every check: the generated Hessian against central
 * differences of the generated gradient and of the interpreter's gradient
 * (kernels without second-order parts), its entries against the
 * interpreter on the same kernel, f_hess's gradient against f_grad,
 * f_hvp(v) against H v and f_jvp(v) against grad . v. */
static void check_formula(int f)
{
    Compiled c, plain;
    compile_func(&c, formulas[f].text, NULL,
                 ENTRY_VALUE | ENTRY_GRAD | ENTRY_JVP | ENTRY_HVP | ENTRY_HESS);
    memset(&plain, 0, sizeof plain);
    plain.p = parse_text(formulas[f].text, 1);
    plain.k = opt_kernel(plain.p, plain.p->bare, 1);
    load(&plain, formulas[f].text);
    uint32_t n = c.n, nnz = c.k->hess.nnz;
    const char *text = formulas[f].text;
    cr_assert_eq(n, c.k->ninputs);
    cr_assert_leq(nnz, 6);
    unsigned seed = 1234u + (unsigned)f;
    for (int trial = 0; trial < 4; trial++) {
        double x[3], v[3], grad[3], H[9], Hfd[9], Hint[9], vals[6], ref[6], hv[3], jv, g2[3];
        for (uint32_t i = 0; i < n; i++) {
            x[i] = draw(&seed, formulas[f].domain);
            v[i] = draw(&seed, ANY);
        }
        rt_call2(&c.code, x, NULL, NULL, NULL, NULL, grad, vals);
        densify(&c.k->hess, vals, H);
        fd_hessian(jit_grad, &plain.code, n, x, Hfd);
        fd_hessian(interp_grad, plain.k, n, x, Hint);
        for (uint32_t i = 0; i < n * n; i++) {
            cr_assert(close_to(H[i], Hfd[i], 1e-5, 1e-5),
                      "%s at trial %d: H[%u][%u] = %.17g, differences of the generated gradient %.17g",
                      text, trial, i / n, i % n, H[i], Hfd[i]);
            cr_assert(close_to(H[i], Hint[i], 1e-5, 1e-5),
                      "%s: H[%u][%u] = %.17g, differences of the interpreter's gradient %.17g",
                      text, i / n, i % n, H[i], Hint[i]);
        }
        NodeId roots[6];
        for (uint32_t q = 0; q < nnz; q++)
            roots[q] = c.k->hval[q];
        interp_eval(c.k->g, c.k->input, x, n, roots, nnz, ref);
        for (uint32_t q = 0; q < nnz; q++)
            cr_assert(close_to(vals[q], ref[q], 1e-12, 1e-300), "%s: entry %u: %.17g, interpreter %.17g",
                      text, q, vals[q], ref[q]);
        rt_grad(&plain.code, x, g2);
        for (uint32_t i = 0; i < n; i++)
            cr_assert(close_to(grad[i], g2[i], 1e-13, 1e-300), "%s: grad[%u]", text, i);
        rt_call2(&c.code, x, NULL, v, &jv, hv, NULL, NULL);
        double dot = 0, scale = 0;
        for (uint32_t i = 0; i < n; i++) {
            dot += grad[i] * v[i];
            scale += fabs(grad[i] * v[i]);
        }
        cr_assert(close_to(jv, dot, 1e-12, 1e-12 * scale), "%s: jvp %.17g, grad.v %.17g", text, jv, dot);
        for (uint32_t i = 0; i < n; i++) {
            double s = 0, sc = 0;
            for (uint32_t j = 0; j < n; j++) {
                s += H[i * n + j] * v[j];
                sc += fabs(H[i * n + j] * v[j]);
            }
            cr_assert(close_to(hv[i], s, 1e-12, 1e-12 * sc), "%s: (Hv)[%u] = %.17g, H v = %.17g",
                      text, i, hv[i], s);
        }
    }
    release(&plain);
    release(&c);
}

/* Two halves, so that the compilations run on two cores. */
Test(hess, formulas_first_half)
{
    cr_assert_geq(NFORMULAS, 40);
    for (int f = 0; f < NFORMULAS / 2; f++)
        check_formula(f);
}

Test(hess, formulas_second_half)
{
    for (int f = NFORMULAS / 2; f < NFORMULAS; f++)
        check_formula(f);
}

/* Kinks: relu, abs, max and min are piecewise linear, their second
 * derivatives are 0 (also exactly at the kink); step's first is 0. */
Test(hess, second_derivatives_at_and_beside_kinks_are_zero)
{
    static const char *const text[] = {"relu(x)", "abs(x)", "max(x, y)", "min(x, y)",
                                       "step(x) * x", "relu(x) + abs(y) * 3"};
    static const double at[][2] = {{0, 0}, {1, -1}, {-1, 2}, {0.5, 0.5}};
    for (int f = 0; f < 6; f++) {
        Compiled c;
        compile_func(&c, text[f], NULL, ENTRY_VALUE | ENTRY_HESS);
        cr_assert_eq(c.k->hess.nnz, 0, "%s has no second derivatives", text[f]);
        for (int a = 0; a < 4; a++) {
            double grad[2], H[4];
            generated_hessian(&c, at[a], grad, H);
            for (uint32_t i = 0; i < c.n * c.n; i++)
                cr_assert_eq(H[i], 0.0);
        }
        release(&c);
    }
}

/* By hand: f = x y + e^x + x sin z. */
Test(hess, a_small_hessian_worked_out_by_hand)
{
    Compiled c;
    compile_func(&c, "x*y + exp(x) + sin(z)*x", NULL, ENTRY_VALUE | ENTRY_HESS);
    cr_assert_eq(c.k->hess.nnz, 4);     /* xx, yx, zx, zz: not yy, zy */
    double x[3] = {0.5, -2, 1.25}, grad[3], H[9];
    generated_hessian(&c, x, grad, H);
    double want[9] = {exp(0.5), 1, cos(1.25), 1, 0, 0, cos(1.25), 0, -0.5 * sin(1.25)};
    for (int i = 0; i < 9; i++)
        cr_assert(close_to(H[i], want[i], 1e-15, 1e-300), "H[%d] = %.17g, want %.17g", i, H[i], want[i]);
    release(&c);
}

static char *rosen_vector(uint32_t n)
{
    char *s = malloc(200);
    snprintf(s, 200, "rosen(x[%u]) = sum(i = 0 .. %u, 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n",
             n, n - 2);
    return s;
}

static char *rosen_scalar(uint32_t n)
{
    size_t cap = 200 + (size_t)n * 64;
    char *s = malloc(cap);
    size_t len = (size_t)snprintf(s, cap, "rosen(");
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%sx%u", i ? ", " : "", i);
    len += (size_t)snprintf(s + len, cap - len, ") = ");
    for (uint32_t i = 0; i + 1 < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s100*(x%u - x%u^2)^2 + (1 - x%u)^2",
                                i ? " + " : "", i + 1, i, i);
    snprintf(s + len, cap - len, "\n");
    return s;
}

/* The tridiagonal pattern: column j holds rows j and j + 1. */
static void assert_tridiagonal(const HessPattern *h, uint32_t n, uint32_t sweeps)
{
    cr_assert_eq(h->n, n);
    cr_assert_eq(h->nnz, 2 * n - 1, "n = %u: %u entries in the lower triangle", n, h->nnz);
    for (uint32_t j = 0; j < n; j++) {
        uint32_t len = j + 1 < n ? 2 : 1;
        cr_assert_eq(h->colptr[j], 2 * j);
        cr_assert_eq(h->colptr[j + 1] - h->colptr[j], len);
        cr_assert_eq(h->rowind[h->colptr[j]], j);
        if (len == 2)
            cr_assert_eq(h->rowind[h->colptr[j] + 1], j + 1);
    }
    cr_assert_eq(h->ncolors, sweeps, "n = %u: %u sweeps", n, h->ncolors);
}

/* The Hessian of chained Rosenbrock, by hand:
 *   d2/dxi2 = 1200 xi^2 - 400 x(i+1) + 2 (i < n-1), + 200 (i > 0)
 *   d2/dxi dx(i+1) = -400 xi */
static void rosen_hessian(const double *x, uint32_t n, double *H)
{
    memset(H, 0, (size_t)n * n * sizeof *H);
    for (uint32_t i = 0; i + 1 < n; i++) {
        H[i * n + i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2;
        H[(i + 1) * n + i + 1] += 200;
        H[i * n + i + 1] = H[(i + 1) * n + i] = -400 * x[i];
    }
}

Test(hess, rosenbrock_pattern_is_exactly_tridiagonal)
{
    static const uint32_t sizes[] = {10, 100, 1000};
    for (int s = 0; s < 3; s++) {
        char *text = rosen_vector(sizes[s]);
        Program *p = parse_text(text, 0);
        Func *f = program_find(p, "rosen");
        HessPattern h = {0};
        hess_pattern(p->g, f->result, f->input, 1, &h);
        /* colours are found with the entries; rebuild through the kernel */
        Kernel *k = opt_kernel_entries(p, f, NULL, ENTRY_HESS);
        cr_assert_eq(h.nnz, k->hess.nnz);
        hess_pattern_free(&h);
        assert_tridiagonal(&k->hess, sizes[s], 2);     /* one per slice: x[i], x[i+1] */
        kernel_free(k);
        program_free(p);
        free(text);
        /* the same function as one scalar formula of n inputs */
        text = rosen_scalar(sizes[s]);
        p = parse_text(text, 0);
        k = opt_kernel_entries(p, program_find(p, "rosen"), NULL, ENTRY_HESS);
        assert_tridiagonal(&k->hess, sizes[s], 3);     /* colours of n scalars */
        kernel_free(k);
        program_free(p);
        free(text);
    }
}

Test(hess, rosenbrock_values_match_the_hand_worked_hessian)
{
    static const uint32_t sizes[] = {10, 100};
    for (int s = 0; s < 2; s++) {
        uint32_t n = sizes[s];
        char *text = rosen_vector(n);
        Compiled c;
        compile_func(&c, text, "rosen", ENTRY_VALUE | ENTRY_HESS | ENTRY_HVP);
        double *x = malloc(n * sizeof *x), *grad = malloc(n * sizeof *grad);
        double *H = malloc((size_t)n * n * sizeof *H), *want = malloc((size_t)n * n * sizeof *want);
        unsigned seed = 5;
        for (uint32_t i = 0; i < n; i++)
            x[i] = draw(&seed, ANY);
        generated_hessian(&c, x, grad, H);
        rosen_hessian(x, n, want);
        for (uint32_t i = 0; i < n * n; i++)
            cr_assert(close_to(H[i], want[i], 1e-13, 1e-12), "n=%u H[%u][%u] = %.17g, want %.17g",
                      n, i / n, i % n, H[i], want[i]);
        release(&c);
        free(text);
        free(x);
        free(grad);
        free(H);
        free(want);
    }
}

static const char rosen_text[] =
    "rosen(x[%u]) = sum(i = 0 .. %u, 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n";

Test(hess, rosenbrock_hessian_code_size_grows_linearly)
{
    size_t len[3];
    static const uint32_t sizes[3] = {100, 1000, 4000};
    for (int s = 0; s < 3; s++) {
        char text[200];
        snprintf(text, sizeof text, rosen_text, sizes[s], sizes[s] - 2);
        Program *p = parse_text(text, 0);
        Kernel *k = opt_kernel_entries(p, program_find(p, "rosen"), NULL, ENTRY_HESS);
        Buf c = {0};
        Diag d;
        diag_init(&d);
        EmitOptions o = {0};
        cr_assert_eq(emit_c_source(k, &o, &c, &d), 0);
        len[s] = c.len;
        cr_assert_lt(k->g->n, 40 * sizes[s], "n = %u: %u nodes", sizes[s], k->g->n);
        buf_free(&c);
        diag_free(&d);
        kernel_free(k);
        program_free(p);
    }
    /* 10x and 40x the variables: at most 12x and 48x the text (linear, with
     * the pattern's numbers a little longer) */
    cr_assert_lt(len[1], 12 * len[0], "%zu -> %zu bytes", len[0], len[1]);
    cr_assert_lt(len[2], 48 * len[0], "%zu -> %zu bytes", len[0], len[2]);
}

/* The definition of function name (rosen_hess) in emitted C: its length,
 * its lines and its loops. */
static size_t function_length(const char *c, const char *name, size_t *lines, size_t *loops)
{
    char sig[64];
    snprintf(sig, sizeof sig, "%s(const double *restrict", name);
    const char *start = strstr(c, sig);
    cr_assert_not_null(start, "no %s", name);
    const char *end = strstr(start, "\n}\n");
    cr_assert_not_null(end);
    *lines = *loops = 0;
    for (const char *q = start; q < end; q++) {
        *lines += *q == '\n';
        *loops += strncmp(q, "for (", 5) == 0;
    }
    return (size_t)(end - start);
}

/* Written as a range sum, the Hessian's entries are stored by loops (one
 * per diagonal, HessBand), not one statement each: f_hess is the same
 * few lines for n = 100, 1000 and 8000, only their numbers longer; and
 * f_hess and f_hvp are each one loop, as the hand-written code. */
Test(hess, rosenbrock_hessian_entries_are_written_in_loops)
{
    size_t len[3], lines[3];
    /* 8000: the slices' 15,998 elements, past GRADC_MAX_HESS */
    static const uint32_t sizes[3] = {100, 1000, 8000};
    for (int s = 0; s < 3; s++) {
        char text[200];
        snprintf(text, sizeof text, rosen_text, sizes[s], sizes[s] - 2);
        Program *p = parse_text(text, 0);
        Kernel *k = opt_kernel_entries(p, program_find(p, "rosen"), NULL,
                                       ENTRY_VALUE | ENTRY_GRAD | ENTRY_HVP | ENTRY_HESS);
        cr_assert_eq(k->hess.nband, 2, "the diagonal and the one below it");
        Buf c = {0};
        Diag d;
        diag_init(&d);
        EmitOptions o = {0};
        cr_assert_eq(emit_c_source(k, &o, &c, &d), 0);
        size_t loops, hvp_lines, hvp_loops;
        len[s] = function_length(c.data, "rosen_hess", &lines[s], &loops);
        function_length(c.data, "rosen_hvp", &hvp_lines, &hvp_loops);
        /* one pass each, as the gradient's: value, gradient (or H v) and
         * both diagonals in the same loop */
        cr_assert_eq(loops, 1, "n = %u: f_hess has %zu loops", sizes[s], loops);
        cr_assert_eq(hvp_loops, 1, "n = %u: f_hvp has %zu loops", sizes[s], hvp_loops);
        buf_free(&c);
        diag_free(&d);
        kernel_free(k);
        program_free(p);
    }
    cr_assert_lt(lines[0], 60, "f_hess of n = 100 has %zu lines", lines[0]);
    /* gradc emit --report says so */
    char text[200];
    snprintf(text, sizeof text, rosen_text, 100, 98);
    Program *p = parse_text(text, 0);
    Kernel *k = opt_kernel_entries(p, program_find(p, "rosen"), NULL, ENTRY_VALUE | ENTRY_HESS);
    Buf r = {0};
    Diag d;
    diag_init(&d);
    EmitOptions o = {0};
    cr_assert_eq(emit_report(k, &o, &r, &d), 0);
    cr_assert_not_null(strstr(r.data, "\nrosen_hess: "), "%s", r.data);
    cr_assert_not_null(strstr(r.data, "  Hessian: 199 entries (lower triangle): 199 written by 2 band "
                                      "loops (2 of them fused with the loop of their terms), 0 one by one\n"),
                       "%s", r.data);
    buf_free(&r);
    diag_free(&d);
    kernel_free(k);
    program_free(p);
    for (int s = 1; s < 3; s++) {
        cr_assert_eq(lines[s], lines[0], "%zu lines, then %zu", lines[0], lines[s]);
        /* longer numbers: trip counts, node names (e48026) */
        cr_assert_lt(len[s], len[0] + len[0] / 8, "%zu bytes, then %zu", len[0], len[s]);
    }
}

/* Banded Hessians of other range sums (three slices, two vector inputs,
 * a term that is a slice itself), written by bands, against differences
 * of the generated gradient, the interpreter's entries and H v. */
static void tensor_case(const char *text, const char *func, uint32_t n, double tol);

static void banded_case(const char *text, uint32_t n, uint32_t min_bands)
{
    Compiled c;
    compile_func(&c, text, "f", ENTRY_VALUE | ENTRY_HESS);
    cr_assert_geq(c.k->hess.nband, min_bands, "%s: %u bands", text, c.k->hess.nband);
    uint32_t nnz = c.k->hess.nnz;
    double *x = malloc(n * sizeof *x), *grad = malloc(n * sizeof *grad);
    double *vals = malloc(nnz * sizeof *vals), *ref = malloc(nnz * sizeof *ref);
    unsigned seed = 7;
    for (uint32_t i = 0; i < n; i++)
        x[i] = draw(&seed, ANY);
    rt_call2(&c.code, x, NULL, NULL, NULL, NULL, grad, vals);
    interp_eval(c.k->g, c.k->input, x, c.k->ninputs, c.k->hval, nnz, ref);
    for (uint32_t q = 0; q < nnz; q++)
        cr_assert(close_to(vals[q], ref[q], 1e-14, 1e-300), "%s: entry %u: %.17g, interpreter %.17g",
                  text, q, vals[q], ref[q]);
    free(x);
    free(grad);
    free(vals);
    free(ref);
    release(&c);
    tensor_case(text, "f", n, 1e-5);
}

Test(hess, banded_range_sums)
{
    banded_case("f(x[12]) = sum(i = 0 .. 9, (x[i] - x[i+1] * x[i+2])^2 + exp(0.1 * x[i+1] * x[i]))\n",
                12, 3);
    banded_case("f(x[9], y[9]) = sum(i = 0 .. 7, x[i] * y[i+1]^2 + sin(x[i+1] * y[i]))\n", 18, 3);
    /* the diagonals of x and of y far apart: separate bands */
    banded_case("f(x[20], y[20]) = sum(i = 0 .. 18, x[i] * y[i+1]^2 + sin(x[i+1] * y[i]))\n", 40, 4);
    banded_case("f(x[10]) = sum(i = 0 .. 7, x[i] * x[i+1] * x[i+2])\n", 10, 2);
    /* a band whose entries are not evenly spaced in H: a table of places */
    banded_case("f(x[8], y[7]) = sum(i = 0 .. 6, x[i+1] * y[i]^2 + exp(x[i] * y[i]))\n", 15, 2);
    banded_case("f(x[8], y[8]) = sum(i = 0 .. 6, x[i] * y[i]^2 + x[i+1]^2 * x[i])\n", 16, 3);
    /* x[0] alone: colouring, entry by entry */
    banded_case("f(x[10]) = sum(i = 0 .. 8, x[i+1]^2 * x[i]) + x[0]^3\n", 10, 0);
}

/* Tensor inputs: the Hessian by a vector and by a matrix, through
 * matrix products, logsumexp, softmax and elementwise ops, against
 * differences of the generated gradient. */
static void tensor_case(const char *text, const char *func, uint32_t n, double tol)
{
    Compiled c, plain;
    compile_func(&c, text, func, ENTRY_VALUE | ENTRY_HESS | ENTRY_HVP);
    cr_assert_eq(c.n, n);
    memset(&plain, 0, sizeof plain);
    plain.p = parse_text(text, 0);
    plain.k = opt_kernel(plain.p, program_find(plain.p, func), 1);
    load(&plain, text);
    double *x = malloc(n * sizeof *x), *grad = malloc(n * sizeof *grad);
    double *H = malloc((size_t)n * n * sizeof *H), *Hfd = malloc((size_t)n * n * sizeof *Hfd);
    double *v = malloc(n * sizeof *v), *hv = malloc(n * sizeof *hv);
    unsigned seed = 42;
    for (uint32_t i = 0; i < n; i++) {
        x[i] = draw(&seed, ANY);
        v[i] = draw(&seed, ANY);
    }
    generated_hessian(&c, x, grad, H);
    fd_hessian(jit_grad, &plain.code, n, x, Hfd);
    for (uint32_t i = 0; i < n * n; i++)
        cr_assert(close_to(H[i], Hfd[i], tol, tol), "%s: H[%u][%u] = %.17g, differences %.17g",
                  text, i / n, i % n, H[i], Hfd[i]);
    rt_call2(&c.code, x, NULL, v, NULL, hv, NULL, NULL);
    for (uint32_t i = 0; i < n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < n; j++)
            s += H[i * n + j] * v[j];
        cr_assert(close_to(hv[i], s, 1e-10, 1e-10), "%s: (Hv)[%u]", text, i);
    }
    free(x);
    free(grad);
    free(H);
    free(Hfd);
    free(v);
    free(hv);
    release(&plain);
    release(&c);
}

Test(hess, tensor_inputs)
{
    tensor_case("f(x[4]) = logsumexp(x * x) + sum(tanh(x) * x[0])\n", "f", 4, 1e-5);
    tensor_case("f(x[3], W[2,3]) = logsumexp(W @ x) + dot(x, x) * W[1, 2]\n", "f", 9, 1e-5);
    tensor_case("f(W[2,3]) = sum(softmax(W @ [1, -2, 0.5]) * [3, 1]) + sum(W * W * W)\n", "f", 6, 1e-5);
    tensor_case("f(x[3], y) = sum(exp(x * y)) + dot(x, x) * y^2\n", "f", 4, 1e-5);
    tensor_case("f(x[5]) = sum(i = 0 .. 3, sin(x[i] * x[i+1]) + x[i]^2 * x[i+1])\n", "f", 5, 1e-5);
    /* pentadiagonal: 5 colours, or one sweep per slice (3) */
    tensor_case("f(x[10]) = sum(i = 0 .. 7, exp(x[i] * x[i+1] * x[i+2] / 4))\n", "f", 10, 1e-5);
    /* slices and the whole vector: x[k]^3 and x[i] x[i+1] */
    tensor_case("f(x[6]) = sum(x * x * x) + sum(i = 0 .. 4, sin(x[i] * x[i+1]))\n", "f", 6, 1e-5);
    tensor_case("f(x[6], y) = sum(i = 0 .. 2, x[2*i] * x[2*i+1] * y) + y^3\n", "f", 7, 1e-5);
}

/* A network's loss by its input (the parameters held at their initial
 * values): Hessian with respect to a chosen input. */
Test(hess, network_hessian_by_the_input)
{
    const char *text =
        "network net(x[3]) { dense(4, tanh)  dense(2, softmax) }\n"
        "loss(x[3], p[26]) = cross_entropy(net(x, p), 1)\n";
    Program *p = parse_text(text, 0);
    Func *f = program_find(p, "loss");
    uint8_t wrt[2] = {1, 0};
    cr_assert_null(opt_entries_error(p, f, wrt, ENTRY_VALUE | ENTRY_GRAD | ENTRY_HESS));
    Kernel *k = opt_kernel_entries(p, f, wrt, ENTRY_VALUE | ENTRY_GRAD | ENTRY_HESS);
    cr_assert_eq(k->hess.n, 3);
    cr_assert_eq(k->hess.nnz, 6);       /* dense lower triangle */
    gradc_options opt = {.no_cache = 1};
    Loaded code;
    char *err = NULL;
    cr_assert_eq(rt_load(k, &opt, &code, &err), 0, "%s", err ? err : "");
    /* p is an input like x (the network's parameters are no params block
     * here: nparams is 0), so the kernel reads x and p from one array. */
    cr_assert_eq(k->nparams, 0);
    double in[29] = {0.3, -0.7, 1.1}, grad[3], vals[6], H[9], Hfd[9];
    uint32_t n = 3;
    const Network *net = f->net ? f->net : program_find(p, "net")->net;
    net_init_params(net, 0, in + 3);
    rt_call2(&code, in, NULL, NULL, NULL, NULL, grad, vals);
    densify(&k->hess, vals, H);
    double xp[29], gp[3], gm[3], val;
    for (uint32_t j = 0; j < n; j++) {
        memcpy(xp, in, sizeof xp);
        xp[j] = in[j] + 1e-5;
        rt_call(&code, xp, NULL, NULL, &val, gp, NULL);
        xp[j] = in[j] - 1e-5;
        rt_call(&code, xp, NULL, NULL, &val, gm, NULL);
        for (uint32_t i = 0; i < n; i++)
            Hfd[i * n + j] = (gp[i] - gm[i]) / 2e-5;
    }
    for (uint32_t i = 0; i < n * n; i++)
        cr_assert(close_to(H[i], Hfd[i], 1e-5, 1e-6), "H[%u][%u] = %.17g, differences %.17g",
                  i / n, i % n, H[i], Hfd[i]);
    rt_unload(&code);
    kernel_free(k);
    program_free(p);
}

/* J v of a tensor value against the Jacobian's rows (f_jacobian's reverse
 * sweeps) and against differences of the value along v. */
Test(hess, jvp_of_a_tensor_value)
{
    const char *text = "g(x[3], y) = softmax(x * y) * x[0] + exp(x) * y\n";
    Compiled c;
    compile_func(&c, text, "g", ENTRY_VALUE | ENTRY_GRAD | ENTRY_JVP);
    double in[4] = {0.2, -0.4, 0.9, 1.3}, v[4] = {1, 0.5, -2, 0.25}, jv[3], J[12];
    rt_call2(&c.code, in, NULL, v, jv, NULL, NULL, NULL);
    double seed[3], row[4], val[3];
    for (int i = 0; i < 3; i++) {
        memset(seed, 0, sizeof seed);
        seed[i] = 1;
        rt_call(&c.code, in, NULL, seed, val, row, NULL);
        memcpy(J + 4 * i, row, sizeof row);
    }
    double ip[4], im[4], vp[3], vm[3];
    for (int j = 0; j < 4; j++) {
        ip[j] = in[j] + 1e-6 * v[j];
        im[j] = in[j] - 1e-6 * v[j];
    }
    rt_call(&c.code, ip, NULL, NULL, vp, NULL, NULL);
    rt_call(&c.code, im, NULL, NULL, vm, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int j = 0; j < 4; j++)
            s += J[4 * i + j] * v[j];
        cr_assert(close_to(jv[i], s, 1e-12, 1e-14), "(Jv)[%d] = %.17g, J v = %.17g", i, jv[i], s);
        cr_assert(close_to(jv[i], (vp[i] - vm[i]) / 2e-6, 1e-6, 1e-7), "(Jv)[%d] vs differences", i);
    }
    release(&c);
}

/* --dense-hessian: both halves of an n x n row-major array. */
Test(hess, dense_layout)
{
    Program *p = parse_text("x*y + exp(x) + sin(z)*x", 1);
    Kernel *k = opt_kernel_entries(p, p->bare, NULL, ENTRY_VALUE | ENTRY_HESS | ENTRY_HESS_DENSE);
    gradc_options opt = {.no_cache = 1};
    Loaded code;
    char *err = NULL;
    cr_assert_eq(rt_load(k, &opt, &code, &err), 0, "%s", err ? err : "");
    double x[3] = {0.5, -2, 1.25}, grad[3], H[9];
    for (int i = 0; i < 9; i++)
        H[i] = NAN;
    rt_call2(&code, x, NULL, NULL, NULL, NULL, grad, H);
    double want[9] = {exp(0.5), 1, cos(1.25), 1, 0, 0, cos(1.25), 0, -0.5 * sin(1.25)};
    for (int i = 0; i < 9; i++)
        cr_assert(close_to(H[i], want[i], 1e-15, 1e-300), "H[%d] = %.17g", i, H[i]);
    rt_unload(&code);
    kernel_free(k);
    program_free(p);
}

Test(hess, second_order_needs_a_scalar_value_and_a_variable)
{
    Program *p = parse_text("g(x[2]) = x * x\nnetwork net(x[2]) { dense(1, tanh) }\n"
                            "h(x[2], q[3]) = sum(net(x, q))\n", 0);
    cr_assert_str_eq(opt_entries_error(p, program_find(p, "g"), NULL, ENTRY_HESS),
                     "Hessians and Hessian-vector products need a scalar value");
    cr_assert_null(opt_entries_error(p, program_find(p, "g"), NULL, ENTRY_JVP));
    uint8_t params_only[2] = {0, 1};    /* net's inputs: x, then its parameters */
    cr_assert_not_null(opt_entries_error(p, program_find(p, "net"), params_only, ENTRY_JVP));
    program_free(p);
}

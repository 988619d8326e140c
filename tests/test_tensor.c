/* test_tensor.c — vectors, matrices, Jacobians and networks (issue 4):
 * generated code against the interpreter and central finite differences,
 * the lecture notes' numbers, shape diagnostics, stability rewrites and
 * the emitted network API. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* ---- helpers ---- */

typedef struct Compiled {
    Program *p;
    Func *f;
    Kernel *k;
    Loaded code;
    uint32_t in_size, params_size, out_size;
} Compiled;

static Program *parse(const char *text, int bare, Diag *d)
{
    Source src = {"test.grad", text, strlen(text)};
    diag_init(d);
    return front_parse(&src, bare, d);
}

static void compile(Compiled *c, const char *text, const char *func)
{
    Diag d;
    memset(c, 0, sizeof *c);
    c->p = parse(text, 0, &d);
    cr_assert(c->p, "does not compile:\n%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    c->f = program_find(c->p, func);
    cr_assert(c->f, "no function %s", func);
    c->k = opt_kernel(c->p, c->f, 1);
    for (uint32_t i = 0; i < c->f->ninputs; i++)
        *(i < c->f->ninputs - c->f->nparams ? &c->in_size : &c->params_size) +=
            shape_size(c->p->g->node[c->f->input[i]].shape);
    c->out_size = shape_size(c->k->g->node[c->k->value].shape);
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    int rc = rt_load(c->k, &opt, &c->code, &err);
    cr_assert_eq(rc, 0, "does not load: %s", err ? err : "");
}

static void release(Compiled *c)
{
    rt_unload(&c->code);
    kernel_free(c->k);
    program_free(c->p);
}

/* The interpreter on the kernel: value, and with v the VJP (or gradient). */
static void interp(const Compiled *c, const double *in, const double *v, double *out, double *grad)
{
    const Kernel *k = c->k;
    uint32_t n = k->ninputs;
    NodeId inputs[16], roots[16];
    double vals[4096];
    cr_assert(n + 1 < 16 && c->in_size + c->params_size + c->out_size < 4096);
    memcpy(vals, in, (c->in_size + c->params_size) * sizeof *vals);
    for (uint32_t i = 0; i < n; i++) {
        inputs[i] = k->input[i];
        roots[1 + i] = k->grad[i];
    }
    uint32_t ninputs = n;
    if (k->seed) {
        inputs[n] = k->seed;
        memcpy(vals + c->in_size + c->params_size, v, c->out_size * sizeof *vals);
        ninputs++;
    }
    roots[0] = k->value;
    double res[8192];
    interp_eval(k->g, inputs, vals, ninputs, roots, grad ? n + 1 : 1, res);
    memcpy(out, res, c->out_size * sizeof *out);
    if (grad)
        memcpy(grad, res + c->out_size, (c->in_size + c->params_size) * sizeof *grad);
}

static int close_to(double a, double b, double rel, double abs_tol)
{
    return fabs(a - b) <= abs_tol + rel * fmax(fabs(a), fabs(b));
}

static double urand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return ((*seed >> 8) & 0xffff) / 65536.0;
}

/* Jacobian rows from the generated VJP vs central differences of the
 * interpreter's value, and generated vs interpreted to 1e-12. */
static void check_jacobian(const char *text, const char *func, unsigned seed)
{
    Compiled c;
    compile(&c, text, func);
    uint32_t n = c.in_size + c.params_size, m = c.out_size;
    double *x = calloc(n, sizeof *x), *v = calloc(m, sizeof *v);
    double *out = calloc(m, sizeof *out), *ref = calloc(m, sizeof *ref);
    double *g = calloc(n, sizeof *g), *gi = calloc(n, sizeof *gi);
    double *hi = calloc(m, sizeof *hi), *lo = calloc(m, sizeof *lo);
    for (uint32_t i = 0; i < n; i++)
        x[i] = 0.25 + 1.5 * urand(&seed);
    for (uint32_t row = 0; row < m; row++) {
        memset(v, 0, m * sizeof *v);
        v[row] = 1;
        rt_call(&c.code, x, x + c.in_size, v, out, g, g + c.in_size);
        interp(&c, x, v, ref, gi);
        for (uint32_t i = 0; i < m; i++)
            cr_assert(close_to(out[i], ref[i], 1e-12, 1e-300), "%s: value[%u] %.17g vs interpreter %.17g",
                      func, i, out[i], ref[i]);
        for (uint32_t j = 0; j < n; j++) {
            cr_assert(close_to(g[j], gi[j], 1e-12, 1e-300), "%s: d%u/d%u %.17g vs interpreter %.17g",
                      func, row, j, g[j], gi[j]);
            double h = 1e-6 * fmax(1.0, fabs(x[j])), keep = x[j];
            x[j] = keep + h;
            interp(&c, x, v, hi, NULL);
            x[j] = keep - h;
            interp(&c, x, v, lo, NULL);
            x[j] = keep;
            double fd = (hi[row] - lo[row]) / (2 * h);
            cr_assert(close_to(g[j], fd, 1e-5, 1e-6), "%s: d%u/d%u = %.10g, finite differences %.10g",
                      func, row, j, g[j], fd);
        }
    }
    free(x); free(v); free(out); free(ref); free(g); free(gi); free(hi); free(lo);
    release(&c);
}

/* ---- Jacobians and VJPs against finite differences ---- */

static const char *const tensor_formulas =
    "soft(x[3]) = softmax(x)\n"
    "soft5(x[5]) = softmax(2 * x - 1)\n"
    "logsoft(x[4]) = log_softmax(x)\n"
    "lse(x[6]) = logsumexp(x)\n"
    "layer(W[3,4], x[4], b[3]) = relu(W @ x + b)\n"
    "layer2(W[2,3], x[3], b[2]) = tanh(W @ x + b)\n"
    "vecmat(x[3], W[3,2]) = sigmoid(x @ W)\n"
    "mm(A[2,3], B[3,4]) = sum((A @ B) * (A @ B))\n"
    "mmt(A[3,2], B[4,2]) = A @ transpose(B)\n"
    "outerish(a[3], b[2]) = sum(exp(transpose(transpose([[1, 2], [3, 4], [5, 6]])) * 0.1) * 0) + dot(a, a) * b[1]\n"
    "dots(a[4], b[4]) = dot(a, b) * sum(a)\n"
    "lit(x, y) = [[x, y], [y * x, 1]] @ [x, y]\n"
    "idx(W[3,3], x[3]) = W[1] * x[2] + W[2, 0]\n"
    "rows(W[4,3]) = sum(i = 0 .. 2, W[i, 0] * W[i + 1, 2] + W[i, 1])\n"
    "rosen(x[6]) = sum(i = 0 .. 4, 100 * (x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n"
    "strided(x[7]) = sum(i = 0 .. 2, x[2*i] * x[2*i + 1])\n"
    "msel(a[3], b[3]) = mse(a, b)\n"
    "xent(z[4]) = cross_entropy(softmax(z), 2)\n"
    "xentp(z[3], t[3]) = cross_entropy(softmax(z), t)\n"
    "bcast(x[3], s) = sum(x * s + s ^ 2 / x)\n"
    "elem(x[3], y[3]) = max(x, y) * min(x, 2) + hypot(x, y) + atan2(y, x)\n"
    "network small(x[3]) {\n"
    "  dense(4, tanh, weights = 0.3, bias = 0.1)\n"
    "  dense(2, softmax)\n"
    "}\n"
    "loss(x[3], p[26]) = cross_entropy(small(x, p), 1)\n"
    "bsoft(M[2,3]) = softmax(M)\n"
    "blse(M[3,2]) = logsumexp(M)\n"
    "blogsoft(M[2,3]) = log_softmax(M) * [[1, 2, 3], [4, 5, 6]]\n"
    "bnet(X[4,3], p[26]) = small(X, p)\n"
    "bloss(X[4,3], T[4,2], p[26]) = cross_entropy(small(X, p), T)\n"
    "bmm(A[3,2], B[2,4], C[3,4]) = sum((A @ B) * C) + sum(transpose(A) @ C)\n"
    "bxent(Z[3,4]) = cross_entropy(softmax(Z), 2)\n"
    "bxent2(X[5,3], p[26]) = cross_entropy(small(X, p), 1)\n";

Test(tensor, jacobians_match_interpreter_and_finite_differences)
{
    const char *funcs[] = {"soft", "soft5", "logsoft", "lse", "layer", "layer2", "vecmat",
                           "mm", "mmt", "outerish", "dots", "lit", "idx", "rows", "rosen",
                           "strided", "msel", "xent", "xentp", "bcast", "elem", "small", "loss",
                           "bsoft", "blse", "blogsoft", "bnet", "bloss", "bmm", "bxent", "bxent2"};
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        check_jacobian(tensor_formulas, funcs[i], 7 + (unsigned)i);
}

Test(tensor, random_shapes)
{
    unsigned seed = 12345;
    for (int t = 0; t < 6; t++) {
        int m = 1 + (int)(urand(&seed) * 5), n = 1 + (int)(urand(&seed) * 5);
        char text[512];
        snprintf(text, sizeof text,
                 "g(W[%d,%d], x[%d], b[%d]) = softmax(sigmoid(W @ x + b) * 3)\n"
                 "h(W[%d,%d], x[%d]) = logsumexp(W @ x) + sum(x * x)\n", m, n, n, m, m, n, n);
        check_jacobian(text, "g", seed);
        check_jacobian(text, "h", seed + 1);
    }
}

/* The vector workloads' code paths (docs/performance.md, optimisations
 * 7-10): overlapping slice gradients written inside the main loop (two
 * blocks in either order, three blocks), arrays kept as loop locals, an
 * element of an elementwise vector computed alone, a softmax and a
 * logsumexp of one operand sharing one pass (vector and rows), softmax
 * Jacobian rows with unit seeds, outputs written by their loops. */
static const char *const vector_formulas =
    "chain3(x[8]) = sum(i = 0 .. 5, x[i] * x[i+1] * x[i+2] + x[i+2]^2)\n"
    "back(x[6]) = sum(i = 0 .. 4, x[i+1]^3 - 2 * x[i] * x[i+1])\n"
    "rosen(x[40]) = sum(i = 0 .. 38, 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n"
    "two(x[7], y[7]) = sum(i = 0 .. 5, (x[i+1] - y[i])^2 * y[i+1]) + sum(x * y)\n"
    "xent(z[50]) = cross_entropy(softmax(z), 17)\n"
    "both(x[6]) = logsumexp(x) * softmax(x)[2] + sum(softmax(x) * [1, 2, 3, 4, 5, 6])\n"
    "rboth(M[3,4]) = sum(softmax(M) * M) + sum(logsumexp(M) * [1, -2, 3])\n"
    "pick(x[5]) = (2 * x - exp(x))[3] * (x / 3)[1] + log_softmax(x)[4]\n"
    "soft7(x[7]) = softmax(x * x - x)\n"
    "rows(x[5]) = exp(x) * 2 + x\n"
    "offset(x[8]) = sum(i = 0 .. 3, x[i+2] * x[i+3]^2)\n"
    "pair2(x[6]) = sum(i = 0 .. 4, sin(x[i]) * exp(x[i+1]))\n"
    "gap(x[7]) = sum(i = 0 .. 4, x[i] * x[i+2] - x[i+2])\n";

Test(tensor, vector_workload_paths_match_interpreter_and_differences)
{
    const char *funcs[] = {"chain3", "back", "rosen", "two", "xent", "both", "rboth",
                           "pick", "soft7", "rows", "offset", "pair2", "gap"};
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        check_jacobian(vector_formulas, funcs[i], 40 + (unsigned)i);
}

/* The same paths when tensors live in the caller's work array and scalars
 * in reused slots (small max_locals): the _rt entry point against the
 * interpreter, value and every VJP row. */
Test(tensor, vector_workload_paths_with_work_arrays_and_slots)
{
    const char *funcs[] = {"chain3", "back", "rosen", "two", "xent", "both", "rboth",
                           "pick", "soft7", "offset"};
    const int budgets[] = {1, 8, 60};
    for (size_t f = 0; f < sizeof funcs / sizeof funcs[0]; f++)
        for (int b = 0; b < 3; b++) {
            Compiled c;
            compile(&c, vector_formulas, funcs[f]);
            EmitOptions o = {.prefix = "wk_", .max_locals = budgets[b], .runtime_entry = 1};
            Diag d;
            diag_init(&d);
            Buf src = {0};
            cr_assert_eq(emit_c_source(c.k, &o, &src, &d), 0);
            uint32_t nwork = emit_work_size(c.k, &o);
            gradc_options opt = {.no_cache = 1};
            char *err = NULL;
            gradc_so *so = gradc_so_compile(src.data, &opt, &err);
            cr_assert(so, "%s: %s", funcs[f], err ? err : "");
            char sym[64];
            snprintf(sym, sizeof sym, "wk_%s_rt", funcs[f]);
            void (*rt)(const double *, const double *, const double *, double *, double *, double *,
                       double *) = (void (*)(const double *, const double *, const double *, double *,
                                             double *, double *, double *))gradc_so_symbol(so, sym);
            cr_assert(rt, "%s", sym);
            double x[64], v[64], out[64], ref[64], g[64], gi[64], *work = calloc(nwork + 1, sizeof *work);
            unsigned seed = 11 + (unsigned)f;
            cr_assert(c.in_size < 64 && c.out_size < 64);
            for (uint32_t i = 0; i < c.in_size; i++)
                x[i] = 0.25 + 1.5 * urand(&seed);
            for (uint32_t row = 0; row < c.out_size; row++) {
                memset(v, 0, sizeof v);
                v[row] = 1;
                rt(x, NULL, v, out, g, NULL, work);
                interp(&c, x, v, ref, gi);
                for (uint32_t i = 0; i < c.out_size; i++)
                    cr_assert(close_to(out[i], ref[i], 1e-12, 1e-300), "%s budget %d: value[%u] %.17g vs %.17g",
                              funcs[f], budgets[b], i, out[i], ref[i]);
                for (uint32_t j = 0; j < c.in_size; j++)
                    cr_assert(close_to(g[j], gi[j], 1e-12, 1e-300), "%s budget %d: d%u/d%u %.17g vs %.17g",
                              funcs[f], budgets[b], row, j, g[j], gi[j]);
            }
            free(work);
            gradc_so_close(so);
            buf_free(&src);
            diag_free(&d);
            release(&c);
        }
}

static int same_number(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b || close_to(a, b, 1e-12, 1e-300);
}

/* The stable softmax path at the edges: huge, tiny, infinite and NaN
 * inputs give the generated code the interpreter's values, gradients and
 * Jacobians (inf and NaN included). */
Test(tensor, softmax_paths_at_extreme_inputs)
{
    const char *text = "xent(z[5]) = cross_entropy(softmax(z), 3)\n"
                       "both(z[5]) = logsumexp(z) + sum(softmax(z) * [1, 2, 3, 4, 5])\n"
                       "soft(z[5]) = softmax(z)\n";
    const double inf = INFINITY;
    const double cases[][5] = {
        {1e300, -1e300, 0, 5, -7},
        {800, 790, -800, 700, 805},
        {-1e308, -1e308, -1e308, -1e308, -1e308},
        {-inf, -inf, -inf, -inf, -inf},
        {-inf, 2, -inf, 1, 0},
        {inf, 0, 1, 2, 3},
        {0, 1, NAN, 2, 3},
        {inf, NAN, 1, 2, 3},            /* NaN beside an infinite maximum */
        {-inf, -inf, NAN, -inf, -inf},
        {NAN, NAN, NAN, NAN, NAN},
        {-745, -744, -746, -800, -740},
        {1e-320, -1e-320, 0, -0.0, 4e-310},
    };
    const char *funcs[] = {"xent", "both", "soft"};
    for (int f = 0; f < 3; f++) {
        Compiled c;
        compile(&c, text, funcs[f]);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            double out[5], ref[5], g[5], gi[5], v[5] = {0};
            for (uint32_t row = 0; row < c.out_size; row++) {
                memset(v, 0, sizeof v);
                v[row] = 1;
                rt_call(&c.code, cases[t], NULL, v, out, g, NULL);
                interp(&c, cases[t], v, ref, gi);
                for (uint32_t i = 0; i < c.out_size; i++)
                    cr_assert(same_number(out[i], ref[i]), "%s case %zu: value[%u] %.17g, interpreter %.17g",
                              funcs[f], t, i, out[i], ref[i]);
                for (uint32_t j = 0; j < 5; j++)
                    cr_assert(same_number(g[j], gi[j]), "%s case %zu row %u: d/dz%u %.17g, interpreter %.17g",
                              funcs[f], t, row, j, g[j], gi[j]);
            }
            if (f == 0 && t < 2) {      /* by hand: logsumexp(z) - z[3], softmax(z) - e_3 */
                const double *z = cases[t];
                double m = z[0], s = 0;
                for (int i = 1; i < 5; i++)
                    m = fmax(m, z[i]);
                for (int i = 0; i < 5; i++)
                    s += exp(z[i] - m);
                cr_assert(close_to(out[0], m + log(s) - z[3], 1e-14, 1e-300), "xent case %zu: %.17g", t, out[0]);
                for (int i = 0; i < 5; i++)
                    cr_assert(close_to(g[i], exp(z[i] - m) / s - (i == 3), 1e-14, 1e-300),
                              "xent case %zu: d/dz%d %.17g", t, i, g[i]);
            }
        }
        if (f == 2) {                   /* soft_jacobian (unit seeds) against the VJP rows */
            Diag d;
            diag_init(&d);
            Buf src = {0};
            EmitOptions o = {.prefix = "ex_"};
            cr_assert_eq(emit_c_source(c.k, &o, &src, &d), 0);
            gradc_options opt = {.no_cache = 1};
            char *err = NULL;
            gradc_so *so = gradc_so_compile(src.data, &opt, &err);
            cr_assert(so, "%s", err ? err : "");
            void (*jac)(const double *, double *) =
                (void (*)(const double *, double *))gradc_so_symbol(so, "ex_soft_jacobian");
            cr_assert(jac);
            for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
                double J[25], out[5], row[5], v[5];
                jac(cases[t], J);
                for (int i = 0; i < 5; i++) {
                    memset(v, 0, sizeof v);
                    v[i] = 1;
                    rt_call(&c.code, cases[t], NULL, v, out, row, NULL);
                    for (int j = 0; j < 5; j++)
                        cr_assert(same_number(J[i * 5 + j], row[j]), "case %zu: J[%d][%d] %.17g, VJP %.17g",
                                  t, i, j, J[i * 5 + j], row[j]);
                }
            }
            gradc_so_close(so);
            buf_free(&src);
            diag_free(&d);
        }
        release(&c);
    }
}

/* ---- the notes' numbers ---- */

static void values(const char *text, const char *func, const double *in, double *out)
{
    Compiled c;
    compile(&c, text, func);
    double params[64];
    cr_assert(c.params_size < 64);
    if (c.f->net)
        net_init_params(c.f->net, 0, params);
    rt_call(&c.code, in, params, NULL, out, NULL, NULL);
    release(&c);
}

Test(notes, softmax_and_its_jacobian)
{
    const char *text = "s(x[3]) = softmax(x)\n";
    double x[3] = {2, 1, 0.1}, s[3];
    values(text, "s", x, s);
    cr_assert(close_to(s[0], 0.6590, 0, 5e-5) && close_to(s[1], 0.2424, 0, 5e-5) &&
              close_to(s[2], 0.0986, 0, 5e-5), "softmax %g %g %g", s[0], s[1], s[2]);
    Compiled c;
    compile(&c, text, "s");
    double J[3][3], out[3];
    for (int i = 0; i < 3; i++) {
        double v[3] = {0, 0, 0};
        v[i] = 1;
        rt_call(&c.code, x, NULL, v, out, J[i], NULL);
    }
    /* Diagonal s_i (1 - s_i), off-diagonal -s_i s_j, independently. */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double want = i == j ? s[i] * (1 - s[i]) : -s[i] * s[j];
            cr_assert(close_to(J[i][j], want, 1e-12, 1e-15), "J[%d][%d] = %.17g, want %.17g", i, j, J[i][j], want);
        }
    cr_assert(close_to(J[0][0], 0.2247, 0, 5e-5) && close_to(J[1][1], 0.1837, 0, 5e-5) &&
              close_to(J[2][2], 0.0889, 0, 5e-5));
    release(&c);
}

Test(notes, single_neuron_linear_relu_softmax)
{
    const char *text =
        "z(x[4]) = [0.001, 0.01, -0.005, -1.2] @ x\n"
        "a_relu(x[4]) = relu([0.001, 0.01, -0.005, -1.2] @ x)\n"
        "a_soft(x[4]) = softmax([0.001, 0.01, -0.005, -1.2] @ x)\n";
    double x[4] = {0.2, -1.3, 2, 0.01}, v;
    values(text, "z", x, &v);
    /* 0.0002 - 0.013 - 0.01 - 0.012 */
    cr_assert(close_to(v, -0.0348, 1e-12, 1e-15), "z = %.17g", v);
    values(text, "a_relu", x, &v);
    cr_assert_eq(v, 0.0);
    values(text, "a_soft", x, &v);
    cr_assert_eq(v, 1.0);
}

static const char *const networks =
    "network net(x[4]) {\n"
    "  dense(3, relu,    weights = 0.1,  bias = 0)\n"
    "  dense(3, relu,    weights = 0.001, bias = 0)\n"
    "  dense(2, softmax, weights = 0.01,  bias = 0)\n"
    "}\n"
    "network deep(x[3]) { dense(4, relu)  dense(4, relu)  dense(1, sigmoid) }\n"
    "network and_gate(x[2]) { dense(1, step, weights = [[1, 1]], bias = -1) }\n"
    "network or_gate(x[2])  { dense(1, step, weights = [[1, 1]], bias = 0) }\n"
    "network xor_single(x[2]) { dense(1, step, weights = [[1, 1]], bias = 0) }\n"
    "network xor(x[2]) {\n"
    "  dense(2, relu, weights = [[1, 1], [1, 1]], bias = [0, -1])\n"
    "  dense(1, relu, weights = [[1, -2]],        bias = [0])\n"
    "}\n"
    "n_net() = params(net)\n"
    "n_deep() = params(deep)\n"
    "table_and() = and_gate([[0, 0], [0, 1], [1, 0], [1, 1]])\n"
    "table_or() = or_gate([[0, 0], [0, 1], [1, 0], [1, 1]])\n"
    "table_xor1() = xor_single([[0, 0], [0, 1], [1, 0], [1, 1]])\n"
    "table_xor() = xor([[0, 0], [0, 1], [1, 0], [1, 1]])\n";

Test(notes, four_three_three_two_network)
{
    double x[4] = {-2.4, 1.2, -0.8, 1.1}, y[2];
    values(networks, "net", x, y);
    cr_assert_eq(y[0], 0.5);
    cr_assert_eq(y[1], 0.5);
}

Test(notes, parameter_count)
{
    double n;
    values(networks, "n_deep", NULL, &n);
    cr_assert_eq(n, 16 + 20 + 5);       /* 3->4->4->1: the notes' 41 */
    values(networks, "n_net", NULL, &n);
    cr_assert_eq(n, 4 * 3 + 3 + 3 * 3 + 3 + 3 * 2 + 2);
}

Test(notes, perceptrons_and_xor)
{
    double t[4];
    const double want_and[4] = {0, 0, 0, 1}, want_or[4] = {0, 1, 1, 1};
    const double want_xor[4] = {0, 1, 1, 0}, single[4] = {0, 1, 1, 1};
    values(networks, "table_and", NULL, t);
    cr_assert_arr_eq(t, want_and, sizeof t);
    values(networks, "table_or", NULL, t);
    cr_assert_arr_eq(t, want_or, sizeof t);
    values(networks, "table_xor1", NULL, t);
    cr_assert_arr_eq(t, single, sizeof t, "a single perceptron cannot do XOR");
    values(networks, "table_xor", NULL, t);
    cr_assert_arr_eq(t, want_xor, sizeof t);
}

/* ---- diagnostics ---- */

static void expect_error(const char *text, const char *want)
{
    Diag d;
    Program *p = parse(text, 0, &d);
    cr_assert_null(p, "compiled: %s", text);
    cr_assert(d.out.data && strstr(d.out.data, want), "for %s\nwant: %s\ngot:\n%s", text, want,
              d.out.data ? d.out.data : "");
    diag_free(&d);
}

Test(diagnostics, shape_mismatches_name_both_shapes)
{
    expect_error("f(x[3], y[4]) = x + y\n", "test.grad:1:19: error: shape mismatch in '+': [3] and [4]");
    expect_error("f(W[3,4], x[3]) = W @ x\n", "test.grad:1:21: error: shape mismatch in '@': [3,4] and [3]");
    expect_error("f(x[3]) = dot(x, [1, 2])\n", "shape mismatch in 'dot': [3] and [2]");
    expect_error("g(x[2]) = x\nf(y[3]) = g(y)\n", "test.grad:2:13: error: argument 1 of 'g' has shape [3], but parameter 'x' is [2]");
    expect_error("f(x[3]) = x[3]\n", "index 3 is out of range for shape [3]");
    expect_error("f(x) = [1, [2, 3]]\n", "element 1 of the literal has shape [2], but element 0 has scalar");
    expect_error("network n(x[2]) { dense(2, relu, weights = [[1, 2]]) }\n",
                 "'weights' has shape [1,2], but this layer needs [2,2]");
    expect_error("network n(x[2]) { dense(2, rellu) }\n", "unknown activation 'rellu'");
    expect_error("f(x[3]) = cross_entropy(softmax(x), 3)\n", "the label must be a constant class index from 0 to 2");
}

/* ---- stability rewrites ---- */

Test(rewrite, sigmoid_at_minus_800_is_finite)
{
    const char *text = "f(z) = 1/(1+exp(-z))\n";
    Compiled c;
    compile(&c, text, "f");
    double z = -800, g, v = rt_grad(&c.code, &z, &g);
    cr_assert_eq(v, 0.0);
    cr_assert(isfinite(g) && g == 0.0, "gradient %g", g);
    release(&c);

    Diag d;
    Program *p = parse(text, 0, &d);
    p->no_rewrite = 1;                  /* as written: exp(800) overflows */
    Kernel *k = opt_kernel(p, program_find(p, "f"), 1);
    double out[2];
    NodeId roots[2] = {k->value, k->grad[0]};
    interp_eval(k->g, k->input, &z, 1, roots, 2, out);
    cr_assert(isnan(out[1]), "without the rewrite the gradient is NaN, got %g", out[1]);
    kernel_free(k);
    program_free(p);
    diag_free(&d);
}

Test(rewrite, log_forms_become_stable)
{
    const char *text =
        "sp(x) = log(1 + exp(x))\n"
        "lse(x[2]) = log(sum(exp(x)))\n"
        "ls(x[2]) = log(softmax(x))\n"
        "ce(x[2]) = cross_entropy(softmax(x), 1)\n";
    double big = 800, v;
    values(text, "sp", &big, &v);
    cr_assert_eq(v, 800.0);
    double x[2] = {1000, 1000}, y[2];
    values(text, "lse", x, &v);
    cr_assert(close_to(v, 1000 + log(2.0), 1e-15, 0));
    double x2[2] = {1000, 0};
    values(text, "ls", x2, y);
    cr_assert(y[0] == 0.0 && y[1] == -1000.0, "%g %g", y[0], y[1]);
    values(text, "ce", x2, &v);
    cr_assert_eq(v, 1000.0);
}

/* ---- the emitted network API ---- */

Test(emit, mlp_is_small_and_its_gradient_is_right)
{
    const char *text =
        "network mlp(x[784]) { dense(128, relu)  dense(10, softmax) }\n"
        "loss(x[784], p[101770]) = cross_entropy(mlp(x, p), 3)\n";
    Diag d;
    Program *p = parse(text, 0, &d);
    cr_assert(p);
    Func *f = program_find(p, "loss");
    Kernel *k = opt_kernel(p, f, 1);
    Buf c = {0};
    EmitOptions o = {0};
    cr_assert_eq(emit_c_source(k, &o, &c, &d), 0);
    cr_assert_lt(c.len, 64 * 1024, "the MLP loss is %zu bytes of C", c.len);
    buf_free(&c);
    Kernel *km = opt_kernel(p, program_find(p, "mlp"), 1);
    EmitOptions om = {.net = program_find(p, "mlp")->net};
    cr_assert_eq(emit_c_source(km, &om, &c, &d), 0);
    cr_assert_lt(c.len, 64 * 1024, "the MLP is %zu bytes of C", c.len);
    cr_assert(strstr(c.data, "void mlp_init_params(double *restrict params, unsigned long seed)"));
    buf_free(&c);
    kernel_free(km);

    /* Loss gradient at initialised weights vs finite differences on a sample of them. */
    gradc_options opt = {.no_cache = 1};
    Loaded code;
    char *err = NULL;
    cr_assert_eq(rt_load(k, &opt, &code, &err), 0, "%s", err ? err : "");
    uint32_t n = 784 + 101770;
    double *in = malloc(n * sizeof *in), *g = malloc(n * sizeof *g), v;
    unsigned seed = 99;
    for (uint32_t i = 0; i < 784; i++)
        in[i] = urand(&seed);
    net_init_params(program_find(p, "mlp")->net, 42, in + 784);
    rt_call(&code, in, NULL, NULL, &v, g, NULL);
    cr_assert(isfinite(v) && v > 0);
    for (int t = 0; t < 20; t++) {
        uint32_t j = 784 + (uint32_t)(urand(&seed) * 101770) % 101770;
        if (t < 4)
            j = (uint32_t)(urand(&seed) * 784);
        double keep = in[j], h = 1e-5, hi, lo;
        in[j] = keep + h;
        rt_call(&code, in, NULL, NULL, &hi, NULL, NULL);
        in[j] = keep - h;
        rt_call(&code, in, NULL, NULL, &lo, NULL, NULL);
        in[j] = keep;
        double fd = (hi - lo) / (2 * h);
        cr_assert(close_to(g[j], fd, 1e-4, 1e-7), "d loss / d in[%u] = %.10g, finite differences %.10g", j, g[j], fd);
    }
    free(in);
    free(g);
    rt_unload(&code);
    kernel_free(k);
    program_free(p);
    diag_free(&d);
}

/* The generated init function and the compiler's scheme agree exactly. */
Test(emit, init_params_matches_the_documented_scheme)
{
    const char *text = "network m(x[5]) { dense(4, relu)  dense(3, tanh, weights = 0.5, bias = [1, 2, 3])  dense(2, linear) }\n"
                       "first(x[5]) = m(x)\n";
    Compiled c;
    compile(&c, text, "first");
    Diag d;
    diag_init(&d);
    Func *mf = program_find(c.p, "m");
    Kernel *k = opt_kernel(c.p, mf, 1);
    Buf src = {0};
    EmitOptions o = {.net = mf->net, .prefix = "t_"};
    cr_assert_eq(emit_c_source(k, &o, &src, &d), 0);
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    gradc_so *so = gradc_so_compile(src.data, &opt, &err);
    cr_assert(so, "%s", err ? err : "");
    void (*init)(double *, unsigned long) = (void (*)(double *, unsigned long))gradc_so_symbol(so, "t_m_init_params");
    cr_assert(init);
    uint32_t np = mf->net->nparams;
    double got[64], want[64];
    cr_assert(np <= 64);
    for (unsigned long s = 0; s < 3; s++) {
        init(got, s);
        net_init_params(mf->net, s, want);
        cr_assert_arr_eq(got, want, np * sizeof *got, "seed %lu", s);
    }
    /* Omitted weights are uniform within the He limit sqrt(6/5). */
    for (uint32_t i = 0; i < 20; i++)
        cr_assert(fabs(want[i]) <= sqrt(6.0 / 5) && want[i] != 0);
    cr_assert_eq(want[20 + 4 + 12], 1.0);       /* biases of layer 2 */
    gradc_so_close(so);
    buf_free(&src);
    kernel_free(k);
    diag_free(&d);
    release(&c);
}

/* --freeze: parameters become constants; zero weights produce no terms. */
Test(emit, freeze_folds_weights_into_the_code)
{
    const char *text = "network xor(x[2]) {\n"
                       "  dense(2, relu, weights = [[1, 1], [1, 0]], bias = [0, -1])\n"
                       "  dense(1, relu, weights = [[1, -2]], bias = [0])\n"
                       "}\n";
    Diag d;
    Program *p = parse(text, 0, &d);
    cr_assert(p);
    p->freeze = 1;
    Kernel *k = opt_kernel(p, program_find(p, "xor"), 1);
    cr_assert_eq(k->nparams, 0);
    cr_assert_eq(k->ninputs, 1);
    Buf src = {0};
    EmitOptions o = {.prefix = "fz_"};
    cr_assert_eq(emit_c_source(k, &o, &src, &d), 0);
    cr_assert_null(strstr(src.data, "params"), "frozen code still takes parameters");
    cr_assert(strstr(src.data, "= in[0];"), "the zero weight of row 2 is skipped:\n%s", src.data);
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    gradc_so *so = gradc_so_compile(src.data, &opt, &err);
    cr_assert(so, "%s", err ? err : "");
    void (*batch)(unsigned long, const double *, double *) =
        (void (*)(unsigned long, const double *, double *))gradc_so_symbol(so, "fz_xor_batch");
    cr_assert(batch);
    const double x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    double y[4];
    batch(4, x, y);
    /* h = relu([x0 + x1, x0 - 1]); y = relu(h0 - 2 h1) */
    const double want[4] = {0, 1, 1, 2};
    cr_assert_arr_eq(y, want, sizeof y);
    gradc_so_close(so);
    buf_free(&src);
    kernel_free(k);
    program_free(p);
    diag_free(&d);
}

/* Range sums: the vectorised form must mean exactly the sum of the terms. */
Test(range, sums_mean_the_sum_of_their_terms)
{
    const char *text =
        "a() = sum(i = 0 .. 3, i)\n"
        "b(x) = sum(i = 0 .. 3, i * x)\n"
        "c(v[4]) = sum(i = 0 .. 2, v[i] * v[i+1])\n"
        "d(v[4]) = sum(i = 0 .. 1, v)\n"
        "f(W[3,3]) = sum(i = 0 .. 1, W[i, 1] * W[i+1, 0])\n"
        "g(W[3,3]) = sum(i = 0 .. 2, W[i, i])\n"
        "l(v[4]) = sum(i = 0 .. 2, v[i]^2 + i)\n"
        "o(v[4]) = sum(i = 1 .. 2, v[2*i - 2] * 10)\n";
    double v[4] = {1, 2, 3, 4}, W[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, x = 2, r, rv[4];
    values(text, "a", NULL, &r);
    cr_assert_eq(r, 0 + 1 + 2 + 3);
    values(text, "b", &x, &r);
    cr_assert_eq(r, (0 + 1 + 2 + 3) * 2);
    values(text, "c", v, &r);
    cr_assert_eq(r, 1 * 2 + 2 * 3 + 3 * 4);
    values(text, "d", v, rv);           /* a term without i: counted per term */
    const double twice[4] = {2, 4, 6, 8};
    cr_assert_arr_eq(rv, twice, sizeof rv);
    values(text, "f", W, &r);
    cr_assert_eq(r, 2 * 4 + 5 * 7);
    values(text, "g", W, &r);
    cr_assert_eq(r, 1 + 5 + 9);
    values(text, "l", v, &r);
    cr_assert_eq(r, 1 + 4 + 9 + 0 + 1 + 2);
    values(text, "o", v, &r);
    cr_assert_eq(r, (1 + 3) * 10);
    check_jacobian(text, "f", 3);
    check_jacobian(text, "o", 4);
}

Test(range, bodies_that_are_not_termwise_are_errors)
{
    expect_error("e(v[4]) = sum(i = 0 .. 1, sum(v[i]))\n",
                 "test.grad:1:27: error: each term of a range sum must be a scalar computed elementwise");
    expect_error("h(W[3,3]) = sum(i = 0 .. 1, W[i])\n", "each term of a range sum must be a scalar (here each term has shape [3])");
    expect_error("m(v[4]) = sum(i = 0 .. 1, v[i] * v)\n", "shape mismatch in '*': [2] and [4]");
    expect_error("m(v[2]) = sum(i = 0 .. 1, v[i] * v)\n", "a vector in a range sum must be indexed by the range's index");
    expect_error("n(v[4]) = sum(i = 0 .. 9, v[i])\n", "the index runs from 0 to 9, out of range for shape [4]");
    expect_error("k(v[4]) = sum(i = 0 .. 2, v[2 - i])\n", "a range index must increase");
    expect_error("q(v[4]) = sum(i = 0 .. 2, v[i * i])\n", "an index must be a constant integer, or i, i + c or k*i + c");
    expect_error("z() = sum(i = 0 .. 2, sum(j = 0 .. 2, i * j))\n", "range sums cannot be nested");
    expect_error("w(x) = prod(i = 0 .. 2, x)\n", "'prod(i = a .. b, ...)' is not a range reduction");
}

/* A syntax error inside a range sum or a network leaves no state behind:
 * the next definitions still compile, and only one error is reported. */
Test(range, recovery_after_a_syntax_error)
{
    Diag d;
    Program *p = parse("f(v[3]) = sum(i = 0 .. 1, v[i] +)\n"
                       "network n(x[2]) { dense(2, relu\n"
                       "g(v[3]) = sum(i = 0 .. 1, v[i])\n", 0, &d);
    cr_assert_null(p);
    cr_assert_eq(d.nerrors, 2, "%s", d.out.data);
    cr_assert_null(strstr(d.out.data, "nested"), "%s", d.out.data);
    diag_free(&d);
}

/* A network applied to a batch (rows) equals the network applied to each
 * row: the batched form is matrix products, the other matrix-vector ones. */
Test(tensor, batched_network_equals_rows)
{
    const char *text =
        "network m(x[3]) { dense(5, relu)  dense(4, tanh, bias = 0.5)  dense(3, softmax) }\n"
        "batch(X[4,3]) = m(X)\n"
        "one(x[3]) = m(x)\n";
    double X[12], B[12], row[3];
    unsigned seed = 5;
    for (int i = 0; i < 12; i++)
        X[i] = urand(&seed) * 2 - 1;
    values(text, "batch", X, B);
    for (int r = 0; r < 4; r++) {
        values(text, "one", X + 3 * r, row);
        for (int c = 0; c < 3; c++)
            cr_assert(close_to(B[3 * r + c], row[c], 1e-14, 1e-300), "row %d col %d: %.17g vs %.17g",
                      r, c, B[3 * r + c], row[c]);
    }
}

/* A batch's cross-entropy with one class for every row is the sum of the
 * rows' cross-entropies. */
Test(tensor, batch_cross_entropy_is_the_sum_over_rows)
{
    const char *text = "b(Z[3,4]) = cross_entropy(softmax(Z), 2)\n"
                       "one(z[4]) = cross_entropy(softmax(z), 2)\n";
    double Z[12], total = 0, v;
    unsigned seed = 17;
    for (int i = 0; i < 12; i++)
        Z[i] = urand(&seed) * 4 - 2;
    for (int r = 0; r < 3; r++) {
        values(text, "one", Z + 4 * r, &v);
        total += v;
    }
    values(text, "b", Z, &v);
    cr_assert(close_to(v, total, 1e-14, 0), "%.17g vs %.17g", v, total);
}

/* NAME_jacobian (one forward pass, a reverse sweep per row for small
 * values) agrees with the VJP rows. */
Test(emit, jacobian_function_matches_vjp_rows)
{
    const char *text = "s(x[3], t) = softmax(x * t)\n"
                       "g(W[2,3], x[3]) = tanh(W @ x)\n";
    const char *names[] = {"s", "g"};
    for (int f = 0; f < 2; f++) {
        Compiled c;
        compile(&c, text, names[f]);
        cr_assert(c.k->jac, "%s has a small value: its Jacobian is built directly", names[f]);
        Diag d;
        diag_init(&d);
        Buf src = {0};
        EmitOptions o = {.prefix = "jt_"};
        cr_assert_eq(emit_c_source(c.k, &o, &src, &d), 0);
        gradc_options opt = {.no_cache = 1};
        char *err = NULL;
        gradc_so *so = gradc_so_compile(src.data, &opt, &err);
        cr_assert(so, "%s", err ? err : "");
        char sym[64];
        snprintf(sym, sizeof sym, "jt_%s_jacobian", names[f]);
        void (*jac)(const double *, double *) = (void (*)(const double *, double *))gradc_so_symbol(so, sym);
        cr_assert(jac);
        double x[16], J[64], row[16], out[16], v[16];
        unsigned seed = 3 + f;
        for (uint32_t i = 0; i < c.in_size; i++)
            x[i] = urand(&seed) * 2 - 1;
        jac(x, J);
        for (uint32_t i = 0; i < c.out_size; i++) {
            memset(v, 0, sizeof v);
            v[i] = 1;
            rt_call(&c.code, x, NULL, v, out, row, NULL);
            for (uint32_t j = 0; j < c.in_size; j++)
                cr_assert(close_to(J[i * c.in_size + j], row[j], 1e-14, 1e-300),
                          "%s: J[%u][%u] = %.17g, VJP %.17g", names[f], i, j, J[i * c.in_size + j], row[j]);
        }
        gradc_so_close(so);
        buf_free(&src);
        diag_free(&d);
        release(&c);
    }
}

/* --blas: matrix products through cblas_dgemm/dgemv give the same numbers
 * (to rounding: BLAS sums in its own order) as gradc's own loops. */
Test(emit, blas_products_agree_with_own_loops)
{
#ifndef GRADC_TEST_BLAS
    cr_skip_test("no CBLAS found (Debian: libopenblas-dev)");
#else
    const char *text = "network m(x[40]) { dense(32, relu)  dense(3, softmax) }\n"
                       "b(X[8,40], p[1411]) = cross_entropy(m(X, p), 1)\n";
    double *in = malloc((8 * 40 + 1411) * sizeof *in);
    double *g[2], v[2];
    unsigned seed = 21;
    for (int i = 0; i < 8 * 40; i++)
        in[i] = urand(&seed);
    for (int use_blas = 0; use_blas < 2; use_blas++) {
        Diag d;
        Program *p = parse(text, 0, &d);
        cr_assert(p);
        p->blas = use_blas;
        Func *f = program_find(p, "b");
        if (use_blas == 0)
            net_init_params(program_find(p, "m")->net, 5, in + 8 * 40);
        Kernel *k = opt_kernel(p, f, 1);
        Buf src = {0};
        EmitOptions o = {.prefix = use_blas ? "bl_" : "own_", .blas = use_blas};
        cr_assert_eq(emit_c_source(k, &o, &src, &d), 0);
        cr_assert_eq(strstr(src.data, "cblas_dgemm(") != NULL, use_blas);
        gradc_options opt = {.no_cache = 1, .cflags = use_blas ? "-O2 " GRADC_TEST_BLAS : "-O2"};
        char *err = NULL;
        gradc_so *so = gradc_so_compile(src.data, &opt, &err);
        cr_assert(so, "%s", err ? err : "");
        char sym[32];
        snprintf(sym, sizeof sym, "%sb_grad_work", use_blas ? "bl_" : "own_");
        double (*grad)(const double *, double *, double *) =
            (double (*)(const double *, double *, double *))gradc_so_symbol(so, sym);
        if (!grad) {
            snprintf(sym, sizeof sym, "%sb_grad", use_blas ? "bl_" : "own_");
            double (*plain)(const double *, double *) = (double (*)(const double *, double *))gradc_so_symbol(so, sym);
            cr_assert(plain, "no %s", sym);
            g[use_blas] = calloc(8 * 40 + 1411, sizeof **g);
            v[use_blas] = plain(in, g[use_blas]);
        } else {
            double *work = calloc(emit_work_size(k, &o) + 1, sizeof *work);
            g[use_blas] = calloc(8 * 40 + 1411, sizeof **g);
            v[use_blas] = grad(in, g[use_blas], work);
            free(work);
        }
        gradc_so_close(so);
        buf_free(&src);
        kernel_free(k);
        program_free(p);
        diag_free(&d);
    }
    cr_assert(close_to(v[0], v[1], 1e-13, 0), "%.17g vs %.17g", v[0], v[1]);
    for (int i = 0; i < 8 * 40 + 1411; i++)
        cr_assert(close_to(g[0][i], g[1][i], 1e-11, 1e-15), "grad[%d]: %.17g vs %.17g", i, g[0][i], g[1][i]);
    free(g[0]);
    free(g[1]);
    free(in);
#endif
}

/* ---- gradients with respect to some inputs (--wrt) ---- */

/* The mask of f's inputs that `list` names (front_wrt must accept it). */
static uint8_t *wrt_mask(const Func *f, const char *list)
{
    Source src = {"<wrt>", list, strlen(list)};
    Diag d;
    diag_init(&d);
    uint8_t *wrt = malloc(f->ninputs + 1);
    cr_assert_eq(front_wrt(f, &src, wrt, &d), 0, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    return wrt;
}

/* Loads k; the sizes of its in/params arrays and of its gradient arrays. */
static void load_kernel(const Kernel *k, Loaded *code, uint32_t *gsize, uint32_t *gpsize)
{
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    cr_assert_eq(rt_load(k, &opt, code, &err), 0, "does not load: %s", err ? err : "");
    *gsize = *gpsize = 0;
    for (uint32_t j = 0; j < k->nwrt; j++) {
        uint32_t i = k->wrt[j];
        *(i < k->ninputs - k->nparams ? gsize : gpsize) += shape_size(k->g->node[k->input[i]].shape);
    }
}

/* The gradient (a VJP with a random seed for tensor values) by the inputs
 * `list` names equals the same entries of the full gradient, the
 * interpreter on the --wrt kernel, and central differences of the value. */
static void check_wrt(const char *text, const char *func, const char *list, unsigned seed)
{
    Compiled c;
    compile(&c, text, func);            /* the full gradient */
    uint8_t *mask = wrt_mask(c.f, list);
    Kernel *k = opt_kernel_wrt(c.p, c.f, mask);
    Loaded code;
    uint32_t gsize, gpsize, n = c.in_size + c.params_size, m = c.out_size;
    load_kernel(k, &code, &gsize, &gpsize);
    cr_assert_lt(gsize + gpsize, n, "%s --wrt %s: the gradient should be smaller", func, list);
    double *x = calloc(n, sizeof *x), *v = calloc(m, sizeof *v), *out = calloc(m, sizeof *out);
    double *full = calloc(n, sizeof *full), *sub = calloc(n, sizeof *sub);
    double *hi = calloc(m, sizeof *hi), *lo = calloc(m, sizeof *lo);
    for (uint32_t i = 0; i < n; i++)
        x[i] = 0.25 + 1.5 * urand(&seed);
    for (uint32_t i = 0; i < m; i++)
        v[i] = urand(&seed) - 0.5;
    rt_call(&c.code, x, x + c.in_size, v, out, full, full + c.in_size);
    rt_call(&code, x, x + c.in_size, v, out, sub, sub + gsize);

    /* The interpreter on the --wrt kernel: value, then one root per entry. */
    NodeId inputs[16], roots[16];
    double vals[4096], ref[8192];
    cr_assert(k->ninputs + 1 < 16 && n + m < 4096);
    for (uint32_t i = 0; i < k->ninputs; i++)
        inputs[i] = k->input[i];
    memcpy(vals, x, n * sizeof *vals);
    if (k->seed) {
        inputs[k->ninputs] = k->seed;
        memcpy(vals + n, v, m * sizeof *vals);
    }
    roots[0] = k->value;
    for (uint32_t j = 0; j < k->nwrt; j++)
        roots[1 + j] = k->grad[k->wrt[j]];
    interp_eval(k->g, inputs, vals, k->ninputs + (k->seed ? 1 : 0), roots, 1 + k->nwrt, ref);

    uint32_t nin = c.f->ninputs - c.f->nparams, checked = 0;
    for (uint32_t i = 0, off = 0, goff = 0, poff = 0, gpoff = 0; i < c.f->ninputs; i++) {
        uint32_t size = shape_size(c.p->g->node[c.f->input[i]].shape);
        uint32_t at = i < nin ? off : c.in_size + poff;         /* in x and full */
        uint32_t sat = i < nin ? goff : gsize + gpoff;          /* in sub */
        *(i < nin ? &off : &poff) += size;
        if (!mask[i]) {
            cr_assert_eq(k->grad[i], NODE_NONE, "%s: '%s' is not in --wrt %s", func,
                         c.f->input_name[i], list);
            continue;
        }
        *(i < nin ? &goff : &gpoff) += size;
        for (uint32_t e = 0; e < size; e++, checked++) {
            const char *name = c.f->input_name[i];
            double g = sub[sat + e];
            cr_assert(close_to(g, full[at + e], 1e-13, 1e-300),
                      "%s --wrt %s: d/d%s[%u] %.17g, full gradient %.17g", func, list, name, e, g,
                      full[at + e]);
            cr_assert(close_to(g, ref[m + sat + e], 1e-12, 1e-300),
                      "%s --wrt %s: d/d%s[%u] %.17g, interpreter %.17g", func, list, name, e, g,
                      ref[m + sat + e]);
            double h = 1e-6 * fmax(1.0, fabs(x[at + e])), keep = x[at + e], fhi = 0, flo = 0;
            x[at + e] = keep + h;
            rt_call(&code, x, x + c.in_size, NULL, hi, NULL, NULL);
            x[at + e] = keep - h;
            rt_call(&code, x, x + c.in_size, NULL, lo, NULL, NULL);
            x[at + e] = keep;
            for (uint32_t r = 0; r < m; r++) {
                fhi += (m > 1 ? v[r] : 1.0) * hi[r];
                flo += (m > 1 ? v[r] : 1.0) * lo[r];
            }
            double fd = (fhi - flo) / (2 * h);
            cr_assert(close_to(g, fd, 1e-5, 1e-6), "%s --wrt %s: d/d%s[%u] = %.10g, finite "
                      "differences %.10g", func, list, name, e, g, fd);
        }
    }
    cr_assert_eq(checked, gsize + gpsize);
    free(x); free(v); free(out); free(full); free(sub); free(hi); free(lo);
    free(mask);
    rt_unload(&code);
    kernel_free(k);
    release(&c);
}

Test(wrt, scalar_inputs)
{
    const char *text = "f(w0, x0, w1, x1, w2) = 1/(1+exp(-(w0*x0+w1*x1+w2)))\n";
    check_wrt(text, "f", "w0,w1,w2", 1);
    check_wrt(text, "f", "x1", 2);
    check_wrt(text, "f", "w2,x0", 3);       /* given out of order: declaration order */
    check_wrt("g(x, y, z) = x * y + sin(z)\n", "g", "y", 4);
}

Test(wrt, vector_and_matrix_inputs)
{
    const char *text = "f(W[2,3], x[3], b[2]) = sum(tanh(W @ x + b)^2)\n"
                       "v(W[2,3], x[3], b[2]) = softmax(W @ x + b)\n";
    check_wrt(text, "f", "W", 5);
    check_wrt(text, "f", "x", 6);
    check_wrt(text, "f", "W,b", 7);
    check_wrt(text, "v", "x", 8);            /* a tensor value: the VJP */
    check_wrt(text, "v", "W,b", 9);
}

Test(wrt, networks)
{
    const char *text =
        "network net(x[4]) { dense(5, relu)  dense(3, softmax) }\n"
        "loss(x[4], p[43]) = cross_entropy(net(x, p), 1)\n"
        "lossb(X[6,4], p[43]) = cross_entropy(net(X, p), 2)\n";
    check_wrt(text, "loss", "p", 10);
    check_wrt(text, "loss", "x", 11);
    check_wrt(text, "lossb", "p", 12);
    check_wrt(text, "net", "params", 13);    /* the network itself: grad_params */
    check_wrt(text, "net", "x", 14);
}

/* Nodes of the kernel (other than inputs) with shape s. */
static uint32_t count_shape(const Kernel *k, Shape s)
{
    uint32_t n = 0;
    for (NodeId i = 1; i < k->g->n; i++)
        n += k->g->node[i].op != OP_INPUT && shape_eq(k->g->node[i].shape, s);
    return n;
}

/* W5's loss by the weights only: no adjoint of the sample (W1ᵀ·delta, the
 * one [784] vector the full gradient computes) and less code. */
Test(wrt, mlp_loss_by_the_weights_has_no_input_adjoint)
{
    const char *text =
        "network mlp(x[784]) { dense(128, relu)  dense(10, softmax) }\n"
        "loss(x[784], p[101770]) = cross_entropy(mlp(x, p), 3)\n";
    Diag d;
    Program *p = parse(text, 0, &d);
    cr_assert(p);
    Func *f = program_find(p, "loss");
    Kernel *full = opt_kernel(p, f, 1);
    uint8_t *mask = wrt_mask(f, "p");
    Kernel *k = opt_kernel_wrt(p, f, mask);
    cr_assert_eq(count_shape(full, shape_vec(784)), 1, "the full gradient has d loss/dx");
    cr_assert_eq(count_shape(k, shape_vec(784)), 0, "--wrt p computes nothing of x's shape");
    cr_assert_lt(k->g->n, full->g->n);
    cr_assert_eq(k->nwrt, 1);
    cr_assert_eq(k->grad[0], NODE_NONE);
    Buf cf = {0}, ck = {0};
    EmitOptions o = {0};
    cr_assert_eq(emit_c_source(full, &o, &cf, &d), 0);
    cr_assert_eq(emit_c_source(k, &o, &ck, &d), 0);
    cr_assert_lt(ck.len, cf.len);
    cr_assert(strstr(ck.data, " * grad[101770]: p[101770] at 0 (--wrt"), "%.400s", ck.data);
    buf_free(&cf);
    buf_free(&ck);
    free(mask);
    kernel_free(k);
    kernel_free(full);
    program_free(p);
    diag_free(&d);
}

/* NAME_jacobian with --wrt: the columns of the listed inputs only. */
Test(wrt, jacobian_columns)
{
    const char *text = "sm(x[3], y) = softmax(x * y)\n";
    Diag d;
    Program *p = parse(text, 0, &d);
    cr_assert(p);
    Func *f = p->func[0];
    uint8_t *mask = wrt_mask(f, "y");
    Kernel *full = opt_kernel(p, f, 1), *k = opt_kernel_wrt(p, f, mask);
    cr_assert_eq(k->njac, 1);
    Buf cf = {0}, ck = {0};
    EmitOptions of = {.name = "full"}, ok = {.name = "sub"};
    cr_assert_eq(emit_c_source(full, &of, &cf, &d), 0);
    cr_assert_eq(emit_c_source(k, &ok, &ck, &d), 0);
    buf_puts(&cf, ck.data);
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    gradc_so *so = gradc_so_compile(cf.data, &opt, &err);
    cr_assert_not_null(so, "%s", err ? err : "");
    void (*jf)(const double *, double *) = (void (*)(const double *, double *))gradc_so_symbol(so, "full_jacobian");
    void (*js)(const double *, double *) = (void (*)(const double *, double *))gradc_so_symbol(so, "sub_jacobian");
    cr_assert(jf && js);
    double in[4] = {0.5, -1, 2, 0.75}, J[12], Jy[3];
    jf(in, J);
    js(in, Jy);
    for (int i = 0; i < 3; i++)     /* column 3 of the 3x4 Jacobian, d sm_i / dy */
        cr_assert(close_to(Jy[i], J[i * 4 + 3], 1e-14, 1e-300), "row %d: %.17g vs %.17g", i, Jy[i], J[i * 4 + 3]);
    /* By hand: d sm_i/dy = sm_i (x_i - sum_j sm_j x_j). */
    double e[3], s = 0, mean = 0;
    for (int i = 0; i < 3; i++)
        s += e[i] = exp(in[i] * in[3]);
    for (int i = 0; i < 3; i++)
        mean += e[i] / s * in[i];
    for (int i = 0; i < 3; i++)
        cr_assert(close_to(Jy[i], e[i] / s * (in[i] - mean), 1e-12, 1e-15));
    gradc_so_close(so);
    buf_free(&cf);
    buf_free(&ck);
    free(mask);
    kernel_free(k);
    kernel_free(full);
    program_free(p);
    diag_free(&d);
}

/* Errors of front_wrt, with locations in the list. */
Test(wrt, list_errors)
{
    Diag d;
    Program *p = parse("f(x, yy, W[2,2]) = x * yy + sum(W)\n", 0, &d);
    cr_assert(p);
    diag_free(&d);
    uint8_t wrt[4];
    struct { const char *list, *err; } cases[] = {
        {"y", "<wrt>:1:1: error: 'y' is not an input of f (its inputs: x, yy, W)\n"
              "    1 | y\n      | ^\n"
              "<wrt>:1:1: note: did you mean 'yy'?\n    1 | y\n      | ^\n"},
        {"w", "<wrt>:1:1: error: 'w' is not an input of f (its inputs: x, yy, W)\n"
              "    1 | w\n      | ^\n"
              "<wrt>:1:1: note: did you mean 'W'?\n    1 | w\n      | ^\n"},
        {"q", "<wrt>:1:1: error: 'q' is not an input of f (its inputs: x, yy, W)\n"
              "    1 | q\n      | ^\n"},
        {"x, x", "<wrt>:1:4: error: 'x' is listed twice\n    1 | x, x\n      |    ^\n"},
        {"x,", "<wrt>:1:3: error: expected an input name\n    1 | x,\n      |   ^\n"},
        {"", "<wrt>:1:1: error: expected input names, e.g. x,p\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Source src = {"<wrt>", cases[i].list, strlen(cases[i].list)};
        diag_init(&d);
        cr_expect_eq(front_wrt(p->func[0], &src, wrt, &d), -1, "'%s'", cases[i].list);
        cr_expect_str_eq(d.out.data ? d.out.data : "", cases[i].err);
        diag_free(&d);
    }
    Source ok = {"<wrt>", " W , x", 6};
    diag_init(&d);
    cr_assert_eq(front_wrt(p->func[0], &ok, wrt, &d), 0);
    cr_assert(wrt[0] && !wrt[1] && wrt[2]);
    diag_free(&d);
    program_free(p);
}

/* ---- matrix products of awkward shapes ---- */

/* The generated value and VJP of func against the interpreter, for inputs
 * of any size (check_jacobian's finite differences would be too slow). The
 * VJP of a product is itself products with the other transposes, so one
 * function checks several loop nests. */
static void check_vjp_against_interpreter(const char *text, const char *func, unsigned seed)
{
    Compiled c;
    compile(&c, text, func);
    const Kernel *k = c.k;
    uint32_t n = c.in_size + c.params_size, m = c.out_size, nin = k->ninputs;
    double *x = malloc((n + m) * sizeof *x), *out = malloc(m * sizeof *out);
    double *g = malloc(n * sizeof *g), *ref = malloc((m + n) * sizeof *ref);
    for (uint32_t i = 0; i < n + m; i++)       /* inputs, then the seed v */
        x[i] = 2 * urand(&seed) - 1;
    rt_call(&c.code, x, x + c.in_size, x + n, out, g, g + c.in_size);
    NodeId inputs[16], roots[16];
    cr_assert(nin + 1 < 16 && k->seed);
    roots[0] = k->value;
    for (uint32_t i = 0; i < nin; i++) {
        inputs[i] = k->input[i];
        roots[1 + i] = k->grad[i];
    }
    inputs[nin] = k->seed;
    interp_eval(k->g, inputs, x, nin + 1, roots, nin + 1, ref);
    for (uint32_t i = 0; i < m; i++)
        cr_assert(close_to(out[i], ref[i], 1e-12, 1e-12), "%s: value[%u] %.17g vs interpreter %.17g",
                  func, i, out[i], ref[i]);
    for (uint32_t j = 0; j < n; j++)
        cr_assert(close_to(g[j], ref[m + j], 1e-12, 1e-12), "%s: vjp[%u] %.17g vs interpreter %.17g",
                  func, j, g[j], ref[m + j]);
    free(x); free(out); free(g); free(ref);
    release(&c);
}

/* The emitter blocks products into 4 x 8 tiles of C; sizes that are not
 * multiples of either (1, 3, 5, 17, 63, 65) leave rows, columns or both
 * to narrower tiles. Every transpose combination and both vector forms,
 * each with its VJP (which multiplies by the other operand transposed). */
Test(tensor, products_of_awkward_shapes_match_interpreter)
{
    static const unsigned shapes[][3] = {   /* m, k, n */
        {1, 1, 1}, {3, 5, 17}, {17, 3, 5}, {65, 63, 9}, {8, 3, 65}, {1, 65, 63},
    };
    unsigned seed = 99;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        unsigned m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        char text[1024];
        snprintf(text, sizeof text,
                 "ab(A[%u,%u], B[%u,%u]) = A @ B\n"
                 "atb(A[%u,%u], B[%u,%u]) = transpose(A) @ B\n"
                 "abt(A[%u,%u], B[%u,%u]) = A @ transpose(B)\n"
                 "atbt(A[%u,%u], B[%u,%u]) = transpose(A) @ transpose(B)\n"
                 "ax(A[%u,%u], x[%u]) = A @ x\n"
                 "xa(x[%u], A[%u,%u]) = x @ A\n",
                 m, k, k, n, k, m, k, n, m, k, n, k, k, m, n, k, m, k, k, k, k, n);
        const char *funcs[] = {"ab", "atb", "abt", "atbt", "ax", "xa"};
        for (size_t f = 0; f < sizeof funcs / sizeof funcs[0]; f++)
            check_vjp_against_interpreter(text, funcs[f], seed++);
    }
}

/* A product by a transposed matrix (here also those the gradient makes)
 * reaches the emitter with the transpose made (opt.c lower_products),
 * also when the function is not the first: the graph counts such
 * products as it appends them, and lowering looks only if it has one. */
Test(tensor, products_by_a_transposed_matrix_are_lowered)
{
    static const char *const texts[] = {
        "abt(A[3,4], B[5,4]) = A @ transpose(B)\n",
        "f(x) = 2 * x\natbt(A[4,3], B[5,4]) = transpose(A) @ transpose(B)\n",
    };
    static const char *const funcs[] = {"abt", "atbt"};
    for (size_t t = 0; t < 2; t++) {
        Diag d;
        Program *p = parse(texts[t], 0, &d);
        cr_assert(p, "does not compile:\n%s", d.out.data ? d.out.data : "");
        diag_free(&d);
        Kernel *k = opt_kernel(p, program_find(p, funcs[t]), 1);
        int transposes = 0;
        for (NodeId i = 1; i < k->g->n; i++) {
            const Node *n = &k->g->node[i];
            cr_expect(!(n->op == OP_MATMUL && (n->aux & 2)), "%s: %%%u is still A B^T", funcs[t], i);
            transposes += n->op == OP_TRANSPOSE;
        }
        cr_expect_gt(transposes, 0, "%s: no transpose made", funcs[t]);
        kernel_free(k);
        program_free(p);
    }
}

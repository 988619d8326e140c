/* test_emit.c — the C emitter's stack budget (compiler/emit_c.c): within
 * the budget scalars are `const double` temporaries; beyond it they share
 * reused slots `w[]`; when even the slots exceed it, the entry points take
 * a caller-provided work array (NAME_work, NAME_grad_work, with
 * NAME_WORK_SIZE in the header). Every variant must compute the same
 * numbers as the interpreter. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "support.h"

typedef struct Big {
    Program *p;
    Kernel *k;
    char *text;
} Big;

/* sum over i < nterms of sin(x_{i mod 10} * (i+1)) * cos(y + i) / (1 + x_{(i+3) mod 10}^2):
 * many temporaries, 11 inputs. */
static void make_big(Big *b, int nterms)
{
    Buf t = {0};
    buf_puts(&t, "big(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, y) = 0");
    for (int i = 0; i < nterms; i++)
        buf_printf(&t, " + sin(x%d * %d) * cos(y + %d) / (1 + x%d^2)", i % 10, i + 1, i, (i + 3) % 10);
    buf_puts(&t, "\n");
    b->text = t.data;
    Source src = {"big.grad", b->text, t.len};
    Diag d;
    diag_init(&d);
    b->p = front_parse(&src, 0, &d);
    cr_assert_not_null(b->p, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    b->k = opt_kernel(b->p, b->p->func[0], 1);
}

static void free_big(Big *b)
{
    kernel_free(b->k);
    program_free(b->p);
    free(b->text);
}


/* Compares value and gradient from the loaded code (plain or _work entry
 * points) with the interpreter at a few points. */
static void check_numbers(const Kernel *k, gradc_so *so, const char *sym, uint32_t work)
{
    char name[128];
    uint32_t n = k->ninputs;
    double *w = work ? calloc(work, sizeof *w) : NULL;
    snprintf(name, sizeof name, "%s%s", sym, work ? "_work" : "");
    void *fv = gradc_so_symbol(so, name);
    snprintf(name, sizeof name, "%s_grad%s", sym, work ? "_work" : "");
    void *fg = gradc_so_symbol(so, name);
    cr_assert(fv && fg, "entry points %s and %s_grad%s", sym, sym, work ? "_work" : "");
    NodeId roots[16];
    roots[0] = k->value;
    for (uint32_t i = 0; i < n; i++)
        roots[1 + i] = k->grad[i];
    for (int trial = 0; trial < 3; trial++) {
        double in[16], g[16], want[17];
        for (uint32_t i = 0; i < n; i++)
            in[i] = 0.1 + 0.37 * i - 0.5 * trial;
        double v, vg;
        if (work) {
            v = ((double (*)(const double *, double *))fv)(in, w);
            vg = ((double (*)(const double *, double *, double *))fg)(in, g, w);
        } else {
            v = ((double (*)(const double *))fv)(in);
            vg = ((double (*)(const double *, double *))fg)(in, g);
        }
        interp_eval(k->g, k->input, in, n, roots, n + 1, want);
        cr_expect(fabs(v - want[0]) <= 1e-12 * fabs(want[0]), "value %.17g vs %.17g", v, want[0]);
        cr_expect_eq(v, vg, "value from %s and %s_grad", sym, sym);
        for (uint32_t i = 0; i < n; i++)
            cr_expect(fabs(g[i] - want[1 + i]) <= 1e-12 * fabs(want[1 + i]) + 1e-300,
                      "d/d%s %.17g vs %.17g", k->input_name[i], g[i], want[1 + i]);
    }
    free(w);
}


Test(emit, default_budget_uses_const_temporaries)
{
    Big b;
    make_big(&b, 100);
    /* One body per entry point: the cut into parts is test_split.c's. */
    EmitOptions o = {.name = "big", .max_block = 1 << 20};
    cr_expect_eq(emit_work_size(b.k, &o), 0u);
    char *src = support_emit(b.k, &o, 0), *hdr = support_emit(b.k, &o, 1);
    cr_expect(strstr(src, "const double t"), "temporaries");
    cr_expect(!strstr(src, "w["), "no slots");
    cr_expect(!strstr(src, "_work"), "no work variants");
    cr_expect(!strstr(hdr, "WORK_SIZE"));
    cr_expect(strstr(hdr, "double big(const double *in);\n"), "%s", hdr);
    cr_expect(strstr(hdr, "double big_grad(const double *in, double *grad);\n"), "%s", hdr);
    cr_expect(strstr(hdr, "#define BIG_NUM_INPUTS 11"), "%s", hdr);
    gradc_so *so = support_load(src);
    check_numbers(b.k, so, "big", 0);
    gradc_so_close(so);
    free(src);
    free(hdr);
    free_big(&b);
}

Test(emit, over_budget_scalars_share_slots)
{
    Big b;
    make_big(&b, 200);
    /* 200 terms are over a thousand scalars; reused slots need far fewer
     * (the gradient keeps every term's forward values, so still hundreds). */
    EmitOptions o = {.name = "big", .max_locals = 1024, .max_block = 1 << 20};
    char *src = support_emit(b.k, &o, 0);
    cr_expect(!strstr(src, "const double t"), "no temporaries beyond the budget");
    /* Each entry point declares one slot array within the budget. */
    const char *p = src;
    int arrays = 0;
    while ((p = strstr(p, "double w["))) {
        int n = atoi(p + strlen("double w["));
        cr_expect(n > 0 && n <= 1024, "w[%d] exceeds the budget of 1024", n);
        arrays++;
        p++;
    }
    cr_expect_eq(arrays, 2, "big and big_grad each have their slots:\n%s", src);
    cr_expect(!strstr(src, "_work("), "slots fit: no work variant");
    gradc_so *so = support_load(src);
    check_numbers(b.k, so, "big", 0);
    gradc_so_close(so);
    free(src);
    free_big(&b);
}

Test(emit, tiny_budget_gives_work_variants)
{
    Big b;
    make_big(&b, 100);
    EmitOptions o = {.name = "big", .prefix = "my_", .max_locals = 1};
    uint32_t work = emit_work_size(b.k, &o);
    cr_assert_gt(work, 1u);
    char *src = support_emit(b.k, &o, 0), *hdr = support_emit(b.k, &o, 1);
    char macro[64];
    snprintf(macro, sizeof macro, "#define MY_BIG_WORK_SIZE %u ", work);
    cr_expect(strstr(hdr, macro), "%s in\n%s", macro, hdr);
    cr_expect(strstr(hdr, "double my_big_work(const double *in, double *work);\n"), "%s", hdr);
    cr_expect(strstr(hdr, "double my_big_grad_work(const double *in, double *grad, double *work);\n"),
              "%s", hdr);
    cr_expect(!strstr(src, "double w["), "no arrays on the stack");
    cr_expect(strstr(src, "double *const w = work"), "slots in the work array");
    gradc_so *so = support_load(src);
    check_numbers(b.k, so, "my_big", work);
    cr_expect_null(gradc_so_symbol(so, "my_big"), "only the _work entry points exist");
    gradc_so_close(so);
    free(src);
    free(hdr);
    free_big(&b);
}

Test(emit, budget_applies_per_entry_point_and_runtime_loads_it)
{
    /* The run-time library (rt_load) calls the work variants itself. */
    Big b;
    make_big(&b, 400);
    gradc_options opt = {.no_cache = 1};
    Loaded l;
    char *err = NULL;
    cr_assert_eq(rt_load(b.k, &opt, &l, &err), 0, "%s", err ? err : "");
    uint32_t n = b.k->ninputs;
    double in[16], g[16], want[17];
    NodeId roots[16] = {b.k->value};
    for (uint32_t i = 0; i < n; i++) {
        in[i] = 0.3 - 0.11 * i;
        roots[1 + i] = b.k->grad[i];
    }
    double v = rt_grad(&l, in, g);
    interp_eval(b.k->g, b.k->input, in, n, roots, n + 1, want);
    cr_expect(fabs(v - want[0]) <= 1e-12 * fabs(want[0]));
    for (uint32_t i = 0; i < n; i++)
        cr_expect(fabs(g[i] - want[1 + i]) <= 1e-12 * fabs(want[1 + i]));
    rt_unload(&l);
    free_big(&b);
}

Test(emit, constants_are_exact)
{
    const char *text = "f(x) = x * 0.1 + 1e-300 * x + 123456789.123456789 + pi";
    Source src = {"c.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 0, &d);
    cr_assert_not_null(p);
    Kernel *k = opt_kernel(p, p->func[0], 1);
    char *c = support_emit(k, NULL, 0);
    cr_expect(strstr(c, "0.1"), "%s", c);
    cr_expect(strstr(c, "1e-300"), "%s", c);
    cr_expect(strstr(c, "123456789.12345679"), "%s", c);
    cr_expect(strstr(c, "3.141592653589793"), "%s", c);
    gradc_so *so = support_load(c);
    double (*f)(const double *) = (double (*)(const double *))gradc_so_symbol(so, "f");
    double x = 2;
    cr_expect_eq(f(&x), 2 * 0.1 + 1e-300 * 2 + 123456789.123456789 + 3.14159265358979323846);
    gradc_so_close(so);
    free(c);
    kernel_free(k);
    diag_free(&d);
    program_free(p);
}

Test(emit, only_math_h_and_no_globals)
{
    Big b;
    make_big(&b, 10);
    char *src = support_emit(b.k, &(EmitOptions){.name = "big"}, 0);
    cr_expect_eq(support_count(src, "#include"), 1);
    cr_expect(strstr(src, "#include <math.h>\n"));
    cr_expect(!strstr(src, "malloc"));
    cr_expect(!strstr(src, "static double"), "no writable globals");
    free(src);
    free_big(&b);
}

/* NAME_batch calls NAME by the user's name: parameters called n, out or
 * params must not hide it (a network called n once produced C that did not
 * compile). Values by hand: n(x, y) = x*y - y; the network with weights 1
 * and biases 0 is relu(x0 + x1 + x2). */
Test(emit, batch_parameters_never_hide_the_function)
{
    const char *texts[] = {
        "n(x, y) = x*y - y\n",
        "network n(x[3]) { dense(1, relu, weights = 1, bias = 0) }\nf(x[3]) = n(x)\n",
    };
    for (int t = 0; t < 2; t++) {
        Source src = {"n.grad", texts[t], strlen(texts[t])};
        Diag d;
        diag_init(&d);
        Program *p = front_parse(&src, 0, &d);
        cr_assert_not_null(p, "%s", d.out.data ? d.out.data : "");
        Kernel *k = opt_kernel(p, program_find(p, "n"), 1);
        EmitOptions o = {0};
        char *c = support_emit(k, &o, 0);
        gradc_so *so = support_load(c);
        double y[3];
        if (t == 0) {
            void (*batch)(unsigned long, const double *, double *) =
                (void (*)(unsigned long, const double *, double *))gradc_so_symbol(so, "n_batch");
            cr_assert_not_null(batch);
            const double in[6] = {2, 3, -1, 4, 0.5, 2};
            batch(3, in, y);
            cr_assert(y[0] == 3 && y[1] == -8 && y[2] == -1, "%g %g %g", y[0], y[1], y[2]);
        } else {
            void (*batch)(unsigned long, const double *, const double *, double *) =
                (void (*)(unsigned long, const double *, const double *, double *))
                    gradc_so_symbol(so, "n_batch");
            cr_assert_not_null(batch);
            const double in[6] = {1, 2, 3, -4, 1, 1}, params[4] = {1, 1, 1, 0};
            batch(2, in, params, y);
            cr_assert(y[0] == 6 && y[1] == 0, "%g %g", y[0], y[1]);
        }
        gradc_so_close(so);
        free(c);
        kernel_free(k);
        program_free(p);
        diag_free(&d);
    }
}

/* A tensor constant's table is printed only when the code reads it: the
 * one-hot vector of cross_entropy's gradient contributes one literal (W3b
 * once printed a 1,000-element table for it), a weight vector read in a
 * loop keeps its table, and both compute the right numbers. */
Test(emit, tables_only_for_constants_the_code_reads)
{
    const char *text = "l(x[1000]) = cross_entropy(softmax(x), 3)\n"
                       "w(x[4]) = sum(x * [1, 2, 3, 4])\n";
    Source src = {"t.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 0, &d);
    cr_assert_not_null(p, "%s", d.out.data ? d.out.data : "");
    Kernel *kl = opt_kernel(p, program_find(p, "l"), 1);
    Kernel *kw = opt_kernel(p, program_find(p, "w"), 1);
    char *cl = support_emit(kl, NULL, 0), *cw = support_emit(kw, NULL, 0);
    cr_expect(!strstr(cl, "static const double"), "%s", cl);
    cr_expect(strstr(cl, "grad[3] += (-1.0);"), "%s", cl);
    cr_expect_eq(support_count(cw, "static const double w_k"), 1, "%s", cw);

    static double x[1000], g[1000];
    double m = -INFINITY, s = 0;
    for (int i = 0; i < 1000; i++)
        m = fmax(m, x[i] = sin(0.37 * i) * 4);
    for (int i = 0; i < 1000; i++)
        s += exp(x[i] - m);
    gradc_so *so = support_load(cl);
    double (*lg)(const double *, double *) =
        (double (*)(const double *, double *))gradc_so_symbol(so, "l_grad");
    cr_assert_not_null(lg);
    cr_expect(fabs(lg(x, g) - (m + log(s) - x[3])) < 1e-12);
    for (int i = 0; i < 1000; i++)
        cr_expect(fabs(g[i] - (exp(x[i] - m) / s - (i == 3))) < 1e-15, "d/dx%d %.17g", i, g[i]);
    gradc_so_close(so);

    so = support_load(cw);
    double (*wg)(const double *, double *) =
        (double (*)(const double *, double *))gradc_so_symbol(so, "w_grad");
    cr_assert_not_null(wg);
    const double xw[4] = {1, -1, 0.5, 2};
    double gw[4];
    cr_expect_eq(wg(xw, gw), 1 - 2 + 1.5 + 8);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(gw[i], i + 1);
    gradc_so_close(so);
    free(cl);
    free(cw);
    kernel_free(kl);
    kernel_free(kw);
    diag_free(&d);
    program_free(p);
}

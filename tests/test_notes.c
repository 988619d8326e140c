/* test_notes.c — the computational-graph problems of the lecture notes
 * (../shared/seed), computed through the generated C (cc + dlopen) and the
 * reference interpreter. Expected numbers are worked out by hand below. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct Compiled {
    Program *p;
    Kernel *k;
    Loaded code;
} Compiled;

static void compile(Compiled *c, const char *text, const char *func)
{
    Source src = {"notes.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    memset(c, 0, sizeof *c);
    c->p = front_parse(&src, func == NULL, &d);
    cr_assert_not_null(c->p, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    Func *f = func ? program_find(c->p, func) : c->p->bare;
    cr_assert_not_null(f);
    c->k = opt_kernel(c->p, f, 1);
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    cr_assert_eq(rt_load(c->k, &opt, &c->code, &err), 0, "%s", err ? err : "");
}

static void release(Compiled *c)
{
    rt_unload(&c->code);
    kernel_free(c->k);
    program_free(c->p);
}

/* Value and gradient through the generated code and through the
 * interpreter; both must meet the expectations. */
static void check(const char *text, const char *func, const double *in, double want,
                  const double *want_grad, double rel)
{
    Compiled c;
    compile(&c, text, func);
    uint32_t n = c.k->ninputs;
    double g[8], out[9];
    double v = rt_grad(&c.code, in, g);
    NodeId roots[9] = {c.k->value};
    for (uint32_t i = 0; i < n; i++)
        roots[1 + i] = c.k->grad[i];
    interp_eval(c.k->g, c.k->input, in, n, roots, n + 1, out);
    for (int engine = 0; engine < 2; engine++) {
        const char *name = engine ? "interpreter" : "generated C";
        double val = engine ? out[0] : v;
        const double *grad = engine ? out + 1 : g;
        cr_expect(fabs(val - want) <= rel * fabs(want), "%s (%s): value %.17g, want %.17g",
                  text, name, val, want);
        for (uint32_t i = 0; i < n; i++)
            cr_expect(fabs(grad[i] - want_grad[i]) <= rel * fabs(want_grad[i]),
                      "%s (%s): d/d%s = %.17g, want %.17g", text, name,
                      c.k->input_name[i], grad[i], want_grad[i]);
    }
    release(&c);
}

/* f(x, y, z) = (x + y) z at (-2, 5, -4): q = x + y = 3, f = qz = -12;
 * df/dz = q = 3, df/dq = z = -4, and the add passes -4 to x and y. */
Test(notes, add_multiply_circuit)
{
    check("(x+y)*z", NULL, (double[]){-2, 5, -4}, -12, (double[]){-4, -4, 3}, 0);
    check("f(x, y, z) = (x + y) * z\n", "f", (double[]){-2, 5, -4}, -12,
          (double[]){-4, -4, 3}, 0);
}

/* The sigmoid neuron: w0 x0 + w1 x1 + w2 = -2 + 6 - 3 = 1, so the output is
 * sigma(1) = 1/(1 + e^-1) = 0.7310585786300049, and the local gradient
 * sigma(1)(1 - sigma(1)) = 0.19661193324148185 multiplies each input's
 * partner: dw0 = x0 s' = -s', dx0 = w0 s' = 2s', dw1 = x1 s' = -2s',
 * dx1 = w1 s' = -3s', dw2 = s'. */
Test(notes, sigmoid_neuron)
{
    const double s1 = 0.19661193324148185;
    const double want[5] = {-0.19661193324148185, 0.3932238664829637, -0.39322386648296376,
                            -0.5898357997244456, 0.19661193324148185};
    /* The literal expectations are the hand derivation's, to the digit. */
    cr_assert(fabs(want[1] - 2 * s1) <= 1e-16 && fabs(want[3] + 3 * s1) <= 1e-16);
    double in[5] = {2, -1, -3, -2, -3};
    check("1/(1+exp(-(w0*x0+w1*x1+w2)))", NULL, in, 0.7310585786300049, want, 1e-15);
    check("sigmoid(w0*x0 + w1*x1 + w2)", NULL, in, 0.7310585786300049, want, 1e-15);
    check("neuron(w0, x0, w1, x1, w2) {\n"
          "  z = w0*x0 + w1*x1 + w2\n"
          "  1 / (1 + exp(-z))\n"
          "}\n",
          "neuron", in, 0.7310585786300049, want, 1e-15);
}

/* 2(xy + max(z, w)) at x=3, y=-4, z=2, w=-1: max picks z (2 > -1), so
 * f = 2(-12 + 2) = -20; df/dx = 2y = -8, df/dy = 2x = 6, df/dz = 2 (the
 * max routes its gradient to z), df/dw = 0. */
Test(notes, max_gate_circuit)
{
    check("2*(x*y+max(z,w))", NULL, (double[]){3, -4, 2, -1}, -20, (double[]){-8, 6, 2, 0}, 0);
}

/* Beyond the notes, the classic staged-backprop exercise
 * f(x, y) = (x + sigma(y)) / (sigma(x) + (x + y)^2) at (3, -4): the value by
 * hand, the gradient against central differences of the same formula
 * written in C here (an independent method), to 1e-7. */
Test(notes, staged_backprop_example)
{
    const char *text = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)^2)";
    Compiled c;
    compile(&c, text, NULL);
    double in[2] = {3, -4}, g[2];
    double v = rt_grad(&c.code, in, g);
    double sx = 1 / (1 + exp(-3.0)), sy = 1 / (1 + exp(4.0));
    double want = (3 + sy) / (sx + 1);
    cr_expect(fabs(v - want) <= 1e-15 * fabs(want), "%.17g vs %.17g", v, want);
    for (int i = 0; i < 2; i++) {
        double h = 1e-6, up[2] = {in[0], in[1]}, dn[2] = {in[0], in[1]};
        up[i] += h;
        dn[i] -= h;
        double fu = (up[0] + 1 / (1 + exp(-up[1]))) / (1 / (1 + exp(-up[0])) + pow(up[0] + up[1], 2));
        double fd = (dn[0] + 1 / (1 + exp(-dn[1]))) / (1 / (1 + exp(-dn[0])) + pow(dn[0] + dn[1], 2));
        double fdiff = (fu - fd) / (2 * h);
        cr_expect(fabs(g[i] - fdiff) <= 1e-7, "d%d: %.12g vs %.12g", i, g[i], fdiff);
    }
    release(&c);
}

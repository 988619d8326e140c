/* test_diff.c — reverse-mode differentiation (compiler/diff.c and the rules
 * in compiler/ops.c), checked two independent ways: against central finite
 * differences at random points, and the generated C (compiled with cc and
 * loaded, runtime/) against the reference interpreter to 1e-12 relative.
 * Also the conventions at non-differentiable points, NaN and infinity
 * propagation, and second derivatives by differentiating the gradient IR. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* Inputs are x, y, z in order of appearance. Domain: POS draws from
 * [0.3, 1.5] (logs, roots, real powers), ANY from [-1.5, 1.5]. */
enum { ANY, POS };

static const struct Formula {
    const char *text;
    int domain;
} formulas[] = {
    /* every primitive */
    {"x + y", ANY}, {"x - y", ANY}, {"x * y", ANY}, {"x / y", POS}, {"-x", ANY},
    {"x^2", ANY}, {"x^3", ANY}, {"x^y", POS}, {"2^x", ANY}, {"x^-1", POS},
    {"pow(x, y)", POS}, {"pow(x, 2.5)", POS}, {"exp(x)", ANY}, {"log(x)", POS},
    {"log1p(x)", POS}, {"expm1(x)", ANY}, {"sqrt(x)", POS}, {"sin(x)", ANY},
    {"cos(x)", ANY}, {"tan(x)", ANY}, {"asin(x/2)", ANY}, {"acos(x/2)", ANY},
    {"atan(x)", ANY}, {"atan2(y, x)", ANY}, {"sinh(x)", ANY}, {"cosh(x)", ANY},
    {"tanh(x)", ANY}, {"hypot(x, y)", ANY}, {"erf(x)", ANY}, {"sigmoid(x)", ANY},
    {"relu(x)", ANY}, {"abs(x)", ANY}, {"max(x, y)", ANY}, {"min(x, y)", ANY},
    {"step(x) * y", ANY}, {"pi * x", ANY},
    /* nested */
    {"sin(x*y) + cos(x/y)", POS},
    {"exp(sin(x)) * log(y^2 + 1)", ANY},
    {"sqrt(x^2 + y^2 + z^2)", ANY},
    {"sigmoid(x*y + z)", ANY},
    {"tanh(tanh(tanh(x)))", ANY},
    {"1/(1 + exp(-(x*y + z)))", ANY},
    {"log(exp(x) + exp(y))", ANY},
    {"atan2(sin(x), cos(y))", ANY},
    {"x^y^z", POS},
    {"hypot(sin(x), cos(y)) * erf(z)", ANY},
    {"expm1(log1p(x*x))", ANY},
    {"(x - y)/(x + y + 10)", ANY},
    {"asin(x/2) + acos(y/2)", ANY},
    {"log(x) * log(y)", POS},
    {"sigmoid(-x) * sigmoid(x)", ANY},
    {"cosh(x)^2 - sinh(x)^2", ANY},
    {"exp(-x^2/2) / sqrt(2*pi)", ANY},
    {"log1p(exp(x*y - z))", ANY},
    {"atan(y/x) * hypot(x, y)", POS},
    /* shared subexpressions and non-smooth pieces */
    {"(x*y)^2 + sin(x*y) + exp(x*y)", ANY},
    {"max(x*y, z) + min(x, y*z)", ANY},
    {"abs(x - y) * relu(z)", ANY},
    {"2*(x*y + max(z, x))", ANY},
    {"--x * -y", ANY},
    {"y^-1 * x", POS},
    {"x*x*x*x*x", ANY},
    {"(x + y)*z", ANY},
    {"a = x*y\nb = sin(a) + a^2\nb*z + a", ANY},
    {"x / (1 + abs(x))", ANY},
    {"sqrt(x) * sqrt(x) * y", POS},
    {"exp(x) * exp(-x) * y", ANY},
    {"min(max(x, -0.5), 0.5) * y", ANY},
    /* negated contributions (d_sub, d_neg, d_div, d_cos) through chains */
    {"x - (y - (z - x*y))", ANY},
    {"-(x - -(y*z)) / (3 - x)", ANY},
    {"(x - y) - y / (z + 3) * -x", ANY},
    {"cos(x - y) - cos(-z) / (2 - cos(x))", ANY},
    {"-(-(x*2) - y*-3) - -(z/y)", POS},
    {"x / (y - x*z - 4) - (z - -x)", ANY},
};
enum { NFORMULAS = sizeof formulas / sizeof formulas[0] };

typedef struct Compiled {
    Program *p;
    Kernel *k;
    Loaded code;
    uint32_t n;
} Compiled;

static void compile(Compiled *c, const char *text)
{
    Source src = {"<expr>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    memset(c, 0, sizeof *c);
    c->p = front_parse(&src, 1, &d);
    cr_assert_not_null(c->p, "%s: %s", text, d.out.data ? d.out.data : "");
    diag_free(&d);
    c->k = opt_kernel(c->p, c->p->bare, 1);
    c->n = c->k->ninputs;
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    int rc = rt_load(c->k, &opt, &c->code, &err);
    cr_assert_eq(rc, 0, "%s does not load: %s", text, err ? err : "");
}

static void release(Compiled *c)
{
    rt_unload(&c->code);
    kernel_free(c->k);
    program_free(c->p);
}

/* Value and gradient by the interpreter, on the same kernel. */
static double interp_grad(const Compiled *c, const double *in, double *grad)
{
    NodeId roots[8];
    double out[8];
    roots[0] = c->k->value;
    for (uint32_t i = 0; i < c->n; i++)
        roots[1 + i] = c->k->grad[i];
    interp_eval(c->k->g, c->k->input, in, c->n, roots, c->n + 1, out);
    memcpy(grad, out + 1, c->n * sizeof *grad);
    return out[0];
}

/* The formula's value by the interpreter on the program graph (no
 * gradient involved): what the finite differences are taken of. */
static double value_at(const Compiled *c, const double *in)
{
    double v;
    interp_eval(c->p->g, c->p->bare->input, in, c->n, &c->p->bare->result, 1, &v);
    return v;
}

static int close_rel(double a, double b, double rel)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return 1;
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

static double uniform(unsigned *seed, double lo, double hi)
{
    *seed = *seed * 1103515245u + 12345u;
    return lo + (hi - lo) * ((*seed >> 8) & 0xffffff) / (double)0x1000000;
}

Test(diff, at_least_fifty_formulas)
{
    cr_expect_geq(NFORMULAS, 50);
}

/* For each formula at 5 random points: the compiled gradient against
 * central differences, and compiled value and gradient against the
 * interpreter. */
static void check_formula(int i)
{
    const struct Formula *f = &formulas[i];
    Compiled c;
    compile(&c, f->text);
    unsigned seed = 12345u + 977u * (unsigned)i;
    for (int trial = 0; trial < 5; trial++) {
        double in[8], g[8], gi[8];
        for (uint32_t k = 0; k < c.n; k++)
            in[k] = f->domain == POS ? uniform(&seed, 0.3, 1.5) : uniform(&seed, -1.5, 1.5);
        double v = rt_grad(&c.code, in, g);
        double vi = interp_grad(&c, in, gi);
        cr_expect(close_rel(v, vi, 1e-12), "%s: value %.17g (C) vs %.17g (interp)", f->text, v, vi);
        cr_expect(close_rel(v, rt_value(&c.code, in), 0), "%s: f and f_grad disagree", f->text);
        for (uint32_t k = 0; k < c.n; k++) {
            cr_expect(close_rel(g[k], gi[k], 1e-12), "%s: d/d%s %.17g (C) vs %.17g (interp)",
                      f->text, c.k->input_name[k], g[k], gi[k]);
            double h = 1e-6 * fmax(1.0, fabs(in[k]));
            double save = in[k];
            in[k] = save + h;
            double up = value_at(&c, in);
            in[k] = save - h;
            double down = value_at(&c, in);
            in[k] = save;
            double fd = (up - down) / (2 * h);
            cr_expect(fabs(fd - g[k]) <= 1e-6 * (1 + fabs(g[k])),
                      "%s at trial %d: d/d%s = %.12g, finite differences %.12g", f->text,
                      trial, c.k->input_name[k], g[k], fd);
        }
    }
    release(&c);
}

/* Split in groups so that criterion runs them in parallel. */
#define GROUP(n)                                                        \
    Test(diff, formulas_group_##n, .timeout = 600)                      \
    {                                                                   \
        for (int i = n; i < NFORMULAS; i += 4)                          \
            check_formula(i);                                           \
    }
GROUP(0)
GROUP(1)
GROUP(2)
GROUP(3)

/* A random formula of subtractions, negations, divisions, cosines and
 * products by constants: the rules' negated contributions everywhere. */
static void sign_chain(Buf *b, unsigned *seed, int depth)
{
    static const char *var[] = {"x", "y", "z"};
    *seed = *seed * 1103515245u + 12345u;
    unsigned r = (*seed >> 16) % 8;
    if (depth == 0) {
        buf_puts(b, r < 6 ? var[r % 3] : r == 6 ? "0.5" : "-2");
        return;
    }
    static const char *form[][3] = {
        {"(", " - ", ")"}, {"-(", " + ", ")"}, {"(", " / (2 + cos(", ")))"},
        {"(cos(", ") - ", ")"}, {"(", " * -0.75 - ", ")"}, {"(", " - -(", "))"},
        {"-(", " * ", " * 2)"}, {"(", " - ", " / -4)"},
    };
    buf_puts(b, form[r][0]);
    sign_chain(b, seed, depth - 1);
    buf_puts(b, form[r][1]);
    sign_chain(b, seed, depth - 1);
    buf_puts(b, form[r][2]);
}

Test(diff, sign_chains_leave_no_unused_negations)
{
    /* diff.c adds a negated contribution as a subtraction (a + -c is
     * a - c) without first making the -c that nothing would use; a rule
     * given a negated adjoint passes the sign on where that is exact.
     * At random 10^6 nodes such nodes were 20 % of those diff made; here
     * 11-13 %, of them 10 % negations, before; now at most 4 %, the
     * products by a constant whose sign moves into the constant. */
    for (unsigned s = 1; s <= 4; s++) {
        unsigned seed = s;
        Buf text = {0};
        sign_chain(&text, &seed, 9);
        Source src = {"<chain>", text.data, text.len};
        Diag d;
        diag_init(&d);
        Program *p = front_parse(&src, 1, &d);
        cr_assert_not_null(p, "%s", d.out.data ? d.out.data : "");
        Graph *g = p->g;
        Func *f = p->bare;
        uint32_t before = g->n, unused = 0, negs = 0;
        NodeId roots[4] = {f->result};
        diff_reverse(g, f->result, NODE_NONE, f->input, f->ninputs, roots + 1);
        uint8_t *mark = malloc(g->n);
        ir_mark_reachable(g, roots, f->ninputs + 1, mark);
        for (NodeId i = before; i < g->n; i++) {
            unused += !mark[i];
            negs += !mark[i] && g->node[i].op == OP_NEG;
        }
        uint32_t made = g->n - before;
        cr_expect(unused * 20 <= made && negs * 100 <= made,
                  "seed %u: %u of the %u nodes diff made are unused (%u negations)", s,
                  unused, made, negs);
        /* The gradient against central differences, by the interpreter. */
        double in[3] = {0.3, -0.7, 1.1}, gr[4];
        interp_eval(g, f->input, in, f->ninputs, roots, f->ninputs + 1, gr);
        for (uint32_t k = 0; k < f->ninputs; k++) {
            double h = 1e-6, save = in[k], up, down;
            in[k] = save + h;
            interp_eval(g, f->input, in, f->ninputs, roots, 1, &up);
            in[k] = save - h;
            interp_eval(g, f->input, in, f->ninputs, roots, 1, &down);
            in[k] = save;
            double fd = (up - down) / (2 * h);
            cr_expect(fabs(fd - gr[1 + k]) <= 1e-5 * (1 + fabs(fd)),
                      "seed %u: d/d%s = %.12g, finite differences %.12g", s,
                      f->input_name[k], gr[1 + k], fd);
        }
        free(mark);
        diag_free(&d);
        program_free(p);
        buf_free(&text);
    }
}

/* ---- conventions at non-differentiable points ---- */

static void grad_at(const char *text, const double *in, double *value, double *grad)
{
    Compiled c;
    compile(&c, text);
    double gi[8];
    *value = rt_grad(&c.code, in, grad);
    double vi = interp_grad(&c, in, gi);
    cr_expect(close_rel(*value, vi, 0), "%s: C %.17g, interp %.17g", text, *value, vi);
    for (uint32_t k = 0; k < c.n; k++)
        cr_expect(close_rel(grad[k], gi[k], 0), "%s: d%u C %.17g, interp %.17g", text, k, grad[k], gi[k]);
    release(&c);
}

Test(diff, conventions_at_kinks)
{
    double v, g[2];
    grad_at("relu(x)", (double[]){0}, &v, g);
    cr_expect(v == 0 && g[0] == 0, "relu'(0) = 0, got %g", g[0]);
    grad_at("relu(x)", (double[]){2}, &v, g);
    cr_expect(g[0] == 1);
    grad_at("abs(x)", (double[]){0}, &v, g);
    cr_expect(v == 0 && g[0] == 0, "abs'(0) = 0, got %g", g[0]);
    grad_at("abs(x)", (double[]){-3}, &v, g);
    cr_expect(v == 3 && g[0] == -1);
    grad_at("max(x, y)", (double[]){2, 2}, &v, g);
    cr_expect(v == 2 && g[0] == 1 && g[1] == 0, "max tie goes to the first: %g %g", g[0], g[1]);
    grad_at("max(y, x)", (double[]){2, 2}, &v, g);   /* inputs y, x */
    cr_expect(g[0] == 1 && g[1] == 0, "first argument y: %g %g", g[0], g[1]);
    grad_at("min(x, y)", (double[]){2, 2}, &v, g);
    cr_expect(v == 2 && g[0] == 1 && g[1] == 0, "min tie goes to the first: %g %g", g[0], g[1]);
    grad_at("min(x, y)", (double[]){3, 2}, &v, g);
    cr_expect(v == 2 && g[0] == 0 && g[1] == 1);
    grad_at("step(x)", (double[]){0}, &v, g);
    cr_expect(v == 0 && g[0] == 0);
    grad_at("step(x)", (double[]){1}, &v, g);
    cr_expect(v == 1 && g[0] == 0, "step' = 0 everywhere");
}

Test(diff, nan_and_infinity_propagate)
{
    double v, g[2];
    grad_at("log(x)", (double[]){-1}, &v, g);
    cr_expect(isnan(v));
    grad_at("log(x)", (double[]){0}, &v, g);
    cr_expect(isinf(v) && v < 0 && isinf(g[0]) && g[0] > 0);
    grad_at("relu(x)", (double[]){NAN}, &v, g);
    cr_expect(isnan(v), "relu(NaN) is NaN");
    grad_at("max(x, y)", (double[]){NAN, 1}, &v, g);
    cr_expect(isnan(v), "max(NaN, 1) is NaN");
    grad_at("max(x, y)", (double[]){1, NAN}, &v, g);
    cr_expect(isnan(v), "max(1, NaN) is NaN");
    grad_at("min(x, y)", (double[]){NAN, 1}, &v, g);
    cr_expect(isnan(v), "min(NaN, 1) is NaN");
    grad_at("x * y", (double[]){INFINITY, 2}, &v, g);
    cr_expect(isinf(v) && g[0] == 2 && isinf(g[1]));
    grad_at("sigmoid(x)", (double[]){-1000}, &v, g);
    cr_expect(v == 0 && g[0] == 0, "stable sigmoid: no inf/inf");
    grad_at("sigmoid(x)", (double[]){1000}, &v, g);
    cr_expect(v == 1 && g[0] == 0);
}

Test(diff, signed_zeros_survive)
{
    /* -x at x = 0 is -0; x*1 simplified to x keeps -0 as -0. */
    double v, g[1];
    grad_at("-x", (double[]){0.0}, &v, g);
    cr_expect(v == 0 && signbit(v));
    grad_at("x*1 - 0", (double[]){-0.0}, &v, g);
    cr_expect(v == 0 && signbit(v));
}

/* ---- second derivatives: differentiate the gradient IR again ---- */

Test(diff, second_derivatives)
{
    const char *text = "x^3 * y + sin(x*y)";
    Source src = {"<expr>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 1, &d);
    cr_assert_not_null(p);
    Graph *g = p->g;
    NodeId *in = p->bare->input, grad[2], hx[2], hy[2];
    diff_reverse(g, p->bare->result, NODE_NONE, in, 2, grad);
    diff_reverse(g, grad[0], NODE_NONE, in, 2, hx);
    diff_reverse(g, grad[1], NODE_NONE, in, 2, hy);
    double x = 0.7, y = -1.3, vals[2] = {x, y}, out[4];
    NodeId roots[4] = {hx[0], hx[1], hy[0], hy[1]};
    interp_eval(g, in, vals, 2, roots, 4, out);
    /* By hand: fx = 3x^2 y + y cos(xy), fy = x^3 + x cos(xy);
     * fxx = 6xy - y^2 sin(xy), fxy = 3x^2 + cos(xy) - xy sin(xy),
     * fyy = -x^2 sin(xy). */
    double s = sin(x * y), c = cos(x * y);
    double fxx = 6 * x * y - y * y * s, fxy = 3 * x * x + c - x * y * s, fyy = -x * x * s;
    cr_expect(close_rel(out[0], fxx, 1e-14), "fxx %.17g vs %.17g", out[0], fxx);
    cr_expect(close_rel(out[1], fxy, 1e-14), "fxy %.17g vs %.17g", out[1], fxy);
    cr_expect(close_rel(out[2], fxy, 1e-14), "fyx %.17g vs %.17g", out[2], fxy);
    cr_expect(close_rel(out[3], fyy, 1e-14), "fyy %.17g vs %.17g", out[3], fyy);
    diag_free(&d);
    program_free(p);
}

Test(diff, gradient_reuses_forward_values)
{
    /* d/dx exp(x) is the exp node itself; d/dx sigmoid(x) = s(1-s) uses s:
     * the kernel has one exp. */
    const char *text = "exp(x) + sigmoid(x)";
    Source src = {"<expr>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 1, &d);
    Kernel *k = opt_kernel(p, p->bare, 1);
    int exps = 0, sigmoids = 0;
    for (NodeId i = 1; i < k->g->n; i++) {
        exps += k->g->node[i].op == OP_EXP;
        sigmoids += k->g->node[i].op == OP_SIGMOID;
    }
    cr_expect_eq(exps, 1);
    cr_expect_eq(sigmoids, 1);
    kernel_free(k);
    diag_free(&d);
    program_free(p);
}

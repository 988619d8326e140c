/* test_split.c — big straight-line bodies cut into parts
 * (compiler/emit_split.c): the parts are bounded static functions passing
 * values through a scratch array, and the results are the same to the
 * last bit as those of one body (same operations, same order per value);
 * both agree with the interpreter and with finite differences. Also the
 * scratch's size in the header and `gradc emit --report`. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "support.h"

typedef struct Formula {
    Program *p;
    Kernel *k;
    char *text;
} Formula;

static void compile(Formula *f, char *text)
{
    f->text = text;
    Source src = {"split.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    f->p = front_parse(&src, 0, &d);
    cr_assert_not_null(f->p, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    f->k = opt_kernel(f->p, f->p->func[0], 1);
}

static void release(Formula *f)
{
    kernel_free(f->k);
    program_free(f->p);
    free(f->text);
}

/* Terms over 8 inputs that share subexpressions across the whole sum
 * (x_j^2 and sin(y) reappear), so that values cross the cuts both ways:
 * forward values read by later terms and by the reverse sweep. */
static void make_mixed(Formula *f, int nterms)
{
    Buf t = {0};
    buf_puts(&t, "mixed(x0, x1, x2, x3, x4, x5, x6, y) = sin(y)");
    for (int i = 0; i < nterms; i++)
        buf_printf(&t, " + exp(-x%d^2 * %g) * cos(y * %d + x%d) / (1 + x%d^2 + sin(y))", i % 7,
                   0.1 * (i % 5 + 1), i % 3 + 1, (i + 2) % 7, (i + 4) % 7);
    buf_puts(&t, "\n");
    compile(f, t.data);
}

/* The Gulf research and development function (Moré, Garbow and Hillstrom,
 * problem 11): 99 terms (exp(-|y_i - b|^c / a) - t_i)^2 with t_i = i/100
 * and y_i = 25 + (-50 log t_i)^(2/3). */
static void make_gulf(Formula *f)
{
    Buf t = {0};
    buf_puts(&t, "gulf(a, b, c) = 0");
    for (int i = 1; i <= 99; i++) {
        double ti = i / 100.0, yi = 25 + pow(-50 * log(ti), 2.0 / 3.0);
        buf_printf(&t, " + (exp(-abs(%.17g - b)^c / a) - %.17g)^2", yi, ti);
    }
    buf_puts(&t, "\n");
    compile(f, t.data);
}

/* A sum written out term by term over x0..x{n-1} (and y when the terms
 * name it): term i is `term` with I replaced by i, J by i + 1 and K by
 * 2i mod n (input numbers), C by i + 1 (a constant). */
static void make_terms(Formula *f, const char *name, int n, int y, const char *term)
{
    Buf t = {0};
    buf_printf(&t, "%s(x0", name);
    for (int i = 1; i < n; i++)
        buf_printf(&t, ", x%d", i);
    buf_printf(&t, "%s) = ", y ? ", y" : "");
    for (int i = 0; i + 1 < n; i++) {
        buf_puts(&t, i ? " + (" : "(");
        for (const char *c = term; *c; c++) {
            int v = *c == 'I' ? i : *c == 'J' || *c == 'C' ? i + 1 : *c == 'K' ? 2 * i % n : -1;
            if (v < 0)
                buf_printf(&t, "%c", *c);
            else
                buf_printf(&t, "%d", v);
        }
        buf_puts(&t, ")");
    }
    buf_puts(&t, "\n");
    compile(f, t.data);
}

/* The chained Rosenbrock function written out term by term (W4s of the
 * benchmarks): terms of one shape on inputs shifted by one. */
static void make_rosen(Formula *f, int n)
{
    make_terms(f, "rosen", n, 0, "100*(xJ - xI^2)^2 + (1 - xI)^2");
}

typedef double (*GradFn)(const double *, double *);
typedef double (*GradWorkFn)(const double *, double *, double *);
typedef double (*ValueFn)(const double *);

/* The value and gradient entry points of emitted code, loaded. */
typedef struct Code {
    gradc_so *so;
    ValueFn value;
    GradFn grad;
    GradWorkFn grad_work;
    double *work;
} Code;

static void load_entry(Code *l, const Kernel *k, const EmitOptions *o)
{
    char *src = support_emit(k, o, 0), name[128];
    uint32_t work = emit_work_size(k, o);
    l->so = support_load(src);
    snprintf(name, sizeof name, "%s%s", o->prefix, work ? "f_work" : "f");
    l->value = work ? NULL : (ValueFn)gradc_so_symbol(l->so, name);
    snprintf(name, sizeof name, "%s%s", o->prefix, work ? "f_grad_work" : "f_grad");
    void *g = gradc_so_symbol(l->so, name);
    cr_assert_not_null(g, "%s", name);
    l->grad = work ? NULL : (GradFn)g;
    l->grad_work = work ? (GradWorkFn)g : NULL;
    l->work = work ? calloc(work, sizeof *l->work) : NULL;
    free(src);
}

static double call_grad(const Code *l, const double *in, double *g)
{
    return l->grad ? l->grad(in, g) : l->grad_work(in, g, l->work);
}

static void unload(Code *l)
{
    gradc_so_close(l->so);
    free(l->work);
}

/* Cut and uncut code give the same bits, value and gradient, at many
 * points; returns how many points were compared. */
static int compare_bits(const Kernel *k, const Code *one, const Code *cut,
                        double (*point)(int trial, uint32_t i))
{
    uint32_t n = k->ninputs;
    int trials = 200;
    double *in = malloc(3 * n * sizeof *in), *g1 = in + n, *g2 = g1 + n;
    for (int trial = 0; trial < trials; trial++) {
        for (uint32_t i = 0; i < n; i++)
            in[i] = point(trial, i);
        double v1 = call_grad(one, in, g1), v2 = call_grad(cut, in, g2);
        cr_assert(!memcmp(&v1, &v2, sizeof v1), "value at trial %d: %.17g vs %.17g", trial, v1, v2);
        cr_assert(!memcmp(g1, g2, n * sizeof *g1), "gradient at trial %d", trial);
        if (one->value && cut->value) {
            double w1 = one->value(in), w2 = cut->value(in);
            cr_assert(!memcmp(&w1, &w2, sizeof w1), "value-only entry at trial %d", trial);
            cr_assert(!memcmp(&w1, &v1, sizeof w1), "value entry and grad entry agree");
        }
    }
    free(in);
    return trials;
}

/* Against the interpreter (1e-12) and central differences (1e-6). */
static void check_math(const Kernel *k, const Code *l, double (*point)(int, uint32_t))
{
    uint32_t n = k->ninputs;
    NodeId *roots = malloc((n + 1) * sizeof *roots);
    roots[0] = k->value;
    for (uint32_t i = 0; i < n; i++)
        roots[1 + i] = k->grad[i];
    double *in = malloc((6 * n + 1) * sizeof *in), *g = in + n, *want = g + n;
    double *up = want + n + 1, *dn = up + n, *gg = dn + n;
    for (int trial = 0; trial < 5; trial++) {
        for (uint32_t i = 0; i < n; i++)
            in[i] = point(trial, i);
        double v = call_grad(l, in, g);
        interp_eval(k->g, k->input, in, n, roots, n + 1, want);
        cr_expect(fabs(v - want[0]) <= 1e-12 * fabs(want[0]), "value %.17g vs %.17g", v, want[0]);
        for (uint32_t i = 0; i < n; i++) {
            cr_expect(fabs(g[i] - want[1 + i]) <= 1e-12 * fabs(want[1 + i]) + 1e-300,
                      "d/d%s %.17g vs interpreter %.17g", k->input_name[i], g[i], want[1 + i]);
            double h = 1e-6 * (fabs(in[i]) + 1);
            memcpy(up, in, n * sizeof *up);
            memcpy(dn, in, n * sizeof *dn);
            up[i] += h;
            dn[i] -= h;
            double fd = (call_grad(l, up, gg) - call_grad(l, dn, gg)) / (up[i] - dn[i]);
            cr_expect(fabs(g[i] - fd) <= 1e-6 * (fabs(g[i]) + fabs(v) * 1e-3 + 1e-8),
                      "d/d%s %.17g vs finite difference %.17g", k->input_name[i], g[i], fd);
        }
    }
    free(roots);
    free(in);
}

static double mixed_point(int trial, uint32_t i)
{
    return sin(1.3 * trial + 0.7 * i) * (1 + trial % 4);
}

static double gulf_point(int trial, uint32_t i)
{
    static const double start[3] = {5, 2.5, 0.15};     /* the problem's x0 */
    return start[i] * (1 + 0.1 * sin(trial * 0.9 + i));
}

Test(split, parts_are_bit_identical_to_one_body)
{
    Formula f;
    make_mixed(&f, 80);
    EmitOptions one = {.name = "f", .prefix = "one_", .max_block = 1 << 20};
    EmitOptions cut = {.name = "f", .prefix = "cut_", .max_block = 37};
    char *src1 = support_emit(f.k, &one, 0), *src2 = support_emit(f.k, &cut, 0);
    cr_expect_eq(support_count(src1, "GRADC_NOINLINE static void"), 0, "one body per entry point");
    int parts = support_count(src2, "GRADC_NOINLINE static void");
    cr_expect_gt(parts, 20, "cut into parts of at most 37 statements (%d parts)", parts);
    /* No part is longer than 37 statements: count lines between braces. */
    for (const char *s = strstr(src2, "GRADC_NOINLINE static void"); s;
         s = strstr(s + 1, "GRADC_NOINLINE static void")) {
        const char *open = strstr(s, "\n{\n"), *close = strstr(s, "\n}\n");
        int lines = 0;
        for (const char *c = open + 3; c < close; c++)
            lines += *c == '\n';
        int voids = 0, loads = 0;     /* and input loads, in_N = in[N] */
        for (const char *v = strstr(open, "(void)"); v && v < close; v = strstr(v + 1, "(void)"))
            voids++;
        for (const char *v = strstr(open, " = in["); v && v < close; v = strstr(v + 1, " = in["))
            loads++;
        cr_expect_leq(lines - voids - loads, 37 + 20, "statements and early stores of one part");
    }
    free(src1);
    free(src2);
    Code l1, l2;
    load_entry(&l1, f.k, &one);
    load_entry(&l2, f.k, &cut);
    compare_bits(f.k, &l1, &l2, mixed_point);
    check_math(f.k, &l2, mixed_point);
    unload(&l1);
    unload(&l2);
    release(&f);
}

/* A part without calls loads each input once, into `const double in_N`,
 * where it first needs it, and reads the local after that (inputs 0 to
 * ninputs - 1 checked). */
static void expect_inputs_loaded_once(const char *open, const char *close, int part,
                                      int ninputs)
{
    for (int x = 0; x < ninputs; x++) {
        char load[64], ref[16], local[16];
        snprintf(load, sizeof load, "const double in_%d = in[%d];", x, x);
        snprintf(ref, sizeof ref, "in[%d]", x);
        snprintf(local, sizeof local, "in_%d", x);
        int refs = 0, loads = 0, locals = 0;
        for (const char *c = strstr(open, ref); c && c < close; c = strstr(c + 1, ref))
            refs++;
        for (const char *c = strstr(open, load); c && c < close; c = strstr(c + 1, load))
            loads++;
        for (const char *c = strstr(open, local); c && c < close; c = strstr(c + 1, local))
            locals += c[strlen(local)] < '0' || c[strlen(local)] > '9';    /* not in_70 */
        cr_expect_leq(refs, 1, "input %d read once in part %d", x, part);
        cr_expect_eq(loads, refs, "input %d read by its load line in part %d", x, part);
        if (loads)
            cr_expect_gt(locals, 1, "the local in_%d declared and used", x);
    }
}

/* Inputs: in parts that call exp, sin, ... (which clobber every SSE
 * register) read from in[] where used; in parts without calls loaded
 * once into locals. The parts are compiled at -Og with fewer of gcc's
 * passes, between push_options and pop_options (the results are still
 * those of one body: parts_are_bit_identical_to_one_body). */
Test(split, parts_read_inputs_by_calls)
{
    Formula f;
    make_mixed(&f, 80);         /* every term calls exp, cos, sin */
    EmitOptions cut = {.name = "f", .max_block = 37};
    char *src = support_emit(f.k, &cut, 0);
    int parts = 0, calling = 0, reading = 0;
    for (const char *s = strstr(src, "GRADC_NOINLINE static void"); s;
         s = strstr(s + 1, "GRADC_NOINLINE static void"), parts++) {
        const char *open = strstr(s, "\n{\n"), *close = strstr(s, "\n}\n");
        int calls = 0;
        for (const char *const *fn = (const char *const[]){"exp(", "sin(", "cos(", 0}; *fn; fn++) {
            const char *c = strstr(open, *fn);
            calls |= c && c < close;
        }
        const char *local = strstr(open, "const double in_"), *ref = strstr(open, "in[");
        if (calls) {
            cr_expect(!local || local > close, "no input locals in part %d (calls)", parts);
            calling++;
            reading += ref && ref < close;
        } else {
            expect_inputs_loaded_once(open, close, parts, 8);
        }
    }
    cr_expect_gt(parts, 20);
    cr_expect_gt(calling, 10);
    cr_expect_gt(reading, 10, "parts that call read in[] where used");
    cr_expect_eq(support_count(src, "#pragma GCC optimize(\"Og\", \"no-tree-fre\""), 2,
                 "value and gradient parts at -Og");
    cr_expect_eq(support_count(src, "#pragma GCC push_options"), 2, "value and gradient parts");
    cr_expect_eq(support_count(src, "#pragma GCC pop_options"), 2);
    free(src);
    release(&f);

    make_rosen(&f, 40);         /* no calls */
    EmitOptions nofold = {.name = "f", .max_block = 37, .no_fold = 1};
    src = support_emit(f.k, &nofold, 0);
    parts = 0;
    for (const char *s = strstr(src, "GRADC_NOINLINE static void"); s;
         s = strstr(s + 1, "GRADC_NOINLINE static void"), parts++) {
        const char *open = strstr(s, "\n{\n"), *close = strstr(s, "\n}\n");
        expect_inputs_loaded_once(open, close, parts, 40);
        const char *local = strstr(open, "const double in_");
        cr_expect(local && local < close, "part %d loads its inputs into locals", parts);
    }
    cr_expect_gt(parts, 10);
    free(src);
    release(&f);
}

Test(split, gulf_function)
{
    Formula f;
    make_gulf(&f);
    EmitOptions one = {.name = "f", .prefix = "one_", .max_block = 1 << 20};
    EmitOptions cut = {.name = "f", .prefix = "cut_", .max_block = 50};
    Code l1, l2;
    load_entry(&l1, f.k, &one);
    load_entry(&l2, f.k, &cut);
    compare_bits(f.k, &l1, &l2, gulf_point);
    check_math(f.k, &l2, gulf_point);
    /* At the solution (50, 25, 1.5) every term is 0: the value and the
     * gradient vanish (up to rounding). */
    double sol[3] = {50, 25, 1.5}, g[3];
    double v = call_grad(&l2, sol, g);
    cr_expect(fabs(v) < 1e-20, "f(solution) = %g", v);
    for (int i = 0; i < 3; i++)
        cr_expect(fabs(g[i]) < 1e-9, "gradient %d at the solution: %g", i, g[i]);
    unload(&l1);
    unload(&l2);
    release(&f);
}

/* The scratch is declared with the size the header states, and with a
 * budget smaller than it, moves into the work array (the _work entry
 * points), still bit-identical. */
Test(split, scratch_size_in_header_and_work)
{
    Formula f;
    make_mixed(&f, 60);
    EmitOptions cut = {.name = "f", .prefix = "s_", .max_block = 40};
    char *src = support_emit(f.k, &cut, 0), *hdr = support_emit(f.k, &cut, 1);
    const char *m = strstr(hdr, "#define S_F_SCRATCH_SIZE ");
    cr_assert_not_null(m, "%s", hdr);
    int size = atoi(m + strlen("#define S_F_SCRATCH_SIZE "));
    int most = 0;
    for (const char *s = strstr(src, "double w["); s; s = strstr(s + 1, "double w[")) {
        int n = atoi(s + strlen("double w["));
        most = n > most ? n : most;
    }
    cr_expect_eq(size, most, "header %d, largest declaration %d", size, most);
    cr_expect(!strstr(hdr, "WORK_SIZE"), "the scratch fits the default stack budget");
    free(src);
    free(hdr);

    EmitOptions small = {.name = "f", .prefix = "t_", .max_block = 40, .max_locals = 2};
    uint32_t work = emit_work_size(f.k, &small);
    cr_expect_geq(work, (uint32_t)size, "the scratch is part of the work array");
    src = support_emit(f.k, &small, 0);
    cr_expect(strstr(src, "double *const w = work + "), "scratch in work");
    cr_expect(!strstr(src, "double w["), "no scratch on the stack");
    free(src);
    EmitOptions one = {.name = "f", .prefix = "one_", .max_block = 1 << 20};
    Code l1, l2;
    load_entry(&l1, f.k, &one);
    load_entry(&l2, f.k, &small);
    compare_bits(f.k, &l1, &l2, mixed_point);
    unload(&l1);
    unload(&l2);
    release(&f);
}

/* A gradient entry is stored inside the part that computes it, so the
 * reverse sweep of a term runs in the term's part or the next one: on
 * the Rosenbrock sum, whose terms have upstream adjoint 1, few values
 * cross the cuts and the scratch stays small however long the sum. */
Test(split, terms_keep_their_backward_part_close)
{
    Formula f;
    make_rosen(&f, 400);
    EmitOptions cut = {.name = "f", .prefix = "r_", .max_block = 100};
    char *hdr = support_emit(f.k, &cut, 1);
    const char *m = strstr(hdr, "#define R_F_SCRATCH_SIZE ");
    cr_assert_not_null(m, "%s", hdr);
    cr_expect_leq(atoi(m + strlen("#define R_F_SCRATCH_SIZE ")), 8, "%s", hdr);
    free(hdr);
    release(&f);
}

/* --report: one line per part, the sizes, and operations counted from the
 * formula (x*y + sin(x): three operations for the value; the gradient
 * adds cos(x) and cos(x) + y). */
Test(split, report)
{
    Formula f;
    compile(&f, strdup("g(x, y) = x*y + sin(x)\n"));
    EmitOptions o = {0};
    Buf r = {0};
    Diag d;
    diag_init(&d);
    cr_assert_eq(emit_report(f.k, &o, &r, &d), 0);
    cr_expect(strstr(r.data, "g: 3 statements, about 3 arithmetic operations per call\n"), "%s", r.data);
    cr_expect(strstr(r.data, "g_grad: 5 statements, about 5 arithmetic operations per call\n"), "%s", r.data);
    cr_expect(strstr(r.data, "g: work array 0 doubles (none: plain entry points), scratch 0 doubles\n"),
              "%s", r.data);
    buf_free(&r);
    release(&f);

    make_mixed(&f, 40);
    EmitOptions cut = {.name = "f", .max_block = 30};
    cr_assert_eq(emit_report(f.k, &cut, &r, &d), 0);
    char *src = support_emit(f.k, &cut, 0);
    cr_expect_eq(support_count(r.data, "  f__"), support_count(src, "GRADC_NOINLINE static void"),
                 "one report line per part:\n%s", r.data);
    cr_expect(strstr(r.data, "parts (max-block 30), scratch w["), "%s", r.data);
    free(src);
    buf_free(&r);
    diag_free(&d);
    release(&f);
}

/* A vector-valued function: its VJP (seed v) is cut into parts too, which
 * then read the seed; bit-identical to one body, and equal to the
 * Jacobian's rows combined by v (to rounding). */
Test(split, vjp_reads_the_seed_in_its_parts)
{
    Buf t = {0};
    buf_puts(&t, "vec(x0, x1, x2, x3, x4, x5, x6, x7) = [");
    for (int i = 0; i < 40; i++)
        buf_printf(&t, "%ssin(x%d) * x%d + exp(x%d * %g)", i ? ", " : "", i % 8, (i + 3) % 8,
                   (i + 5) % 8, 0.1 * (i % 4 + 1));
    buf_puts(&t, "]\n");
    Formula f;
    compile(&f, t.data);
    EmitOptions one = {.name = "f", .prefix = "one_", .max_block = 1 << 20};
    EmitOptions cut = {.name = "f", .prefix = "cut_", .max_block = 20};
    char *s1 = support_emit(f.k, &one, 0), *s2 = support_emit(f.k, &cut, 0);
    cr_expect(strstr(s2, "GRADC_NOINLINE static void cut_f__g0(const double *restrict in, "
                         "const double *restrict v, double *restrict grad, double *restrict w)"),
              "%s", s2);
    gradc_so *so1 = support_load(s1), *so2 = support_load(s2);
    typedef void (*Vjp)(const double *, const double *, double *);
    typedef void (*Jac)(const double *, double *);
    Vjp v1 = (Vjp)gradc_so_symbol(so1, "one_f_vjp"), v2 = (Vjp)gradc_so_symbol(so2, "cut_f_vjp");
    Jac jac = (Jac)gradc_so_symbol(so1, "one_f_jacobian");
    cr_assert(v1 && v2 && jac);
    for (int trial = 0; trial < 100; trial++) {
        double in[8], v[40], g1[8], g2[8], J[40 * 8];
        for (int i = 0; i < 8; i++)
            in[i] = mixed_point(trial, (uint32_t)i);
        for (int i = 0; i < 40; i++)
            v[i] = cos(0.3 * i + trial);
        v1(in, v, g1);
        v2(in, v, g2);
        cr_assert(!memcmp(g1, g2, sizeof g1), "VJP at trial %d", trial);
        jac(in, J);
        for (int j = 0; j < 8; j++) {
            double want = 0, scale = 0;
            for (int i = 0; i < 40; i++)
                want += v[i] * J[i * 8 + j], scale += fabs(v[i] * J[i * 8 + j]);
            cr_expect(fabs(g2[j] - want) <= 1e-13 * scale + 1e-300, "v^T J, column %d", j);
        }
    }
    gradc_so_close(so1);
    gradc_so_close(so2);
    free(s1);
    free(s2);
    release(&f);
}

/* ---- folded parts (emit_split.c: parts that repeat with shifted inputs
 * become one function called in a loop) ---- */

static double rosen_point(int trial, uint32_t i)
{
    return (i % 2 ? 1.0 : -1.2) * (1 + 0.4 * sin(1.7 * trial + 0.3 * i)) + 0.01 * trial;
}

/* The loop of folded parts in entry point `entry` of src: the call in it
 * (NULL: none); *after is the line after the loop. */
static const char *fold_loop(const char *src, const char *entry, const char **after)
{
    const char *body = strstr(src, entry), *loop = body ? strstr(body, "    for (long i = 0; i < ") : NULL;
    const char *end = body ? strstr(body, "\n}\n") : NULL;
    if (!loop || loop > end)
        return NULL;
    const char *call = strchr(loop, '\n') + 1;
    *after = strchr(call, '\n') + 1;
    return call;
}

/* f's code as one body, loaded. */
static void load_one(Code *l, const Formula *f)
{
    EmitOptions one = {.name = "f", .prefix = "one_", .max_block = 1 << 20};
    load_entry(l, f->k, &one);
}

/* Emits o's code for f, loads it, and checks it against one body, bit for
 * bit; returns the source. */
static char *emit_and_compare(const Formula *f, const Code *one, const EmitOptions *o,
                              double (*point)(int, uint32_t))
{
    Code l;
    load_entry(&l, f->k, o);
    compare_bits(f->k, one, &l, point);
    unload(&l);
    return support_emit(f->k, o, 0);
}

/* The Rosenbrock sum folds: value and gradient are each a head part, one
 * part called in a loop, and a tail part (the remainder); the same bits
 * as the same parts unfolded and as one body, and right by the
 * interpreter and finite differences. */
Test(split, folded_parts_are_bit_identical)
{
    Formula f;
    make_rosen(&f, 200);
    EmitOptions cut = {.name = "f", .prefix = "cut_", .max_block = 100, .no_fold = 1};
    EmitOptions fold = {.name = "f", .prefix = "fold_", .max_block = 100};
    Code one;
    load_one(&one, &f);
    char *s1 = emit_and_compare(&f, &one, &cut, rosen_point);
    char *s2 = emit_and_compare(&f, &one, &fold, rosen_point);
    int parts = support_count(s1, "GRADC_NOINLINE static void");
    int fns = support_count(s2, "GRADC_NOINLINE static void");
    cr_expect_geq(parts, 1600 / 100 + 3000 / 100, "unfolded: %d parts", parts);
    cr_expect_eq(fns, 6, "folded: head, loop and tail, for value and gradient:\n%s", s2);
    cr_expect(!strstr(s1, "for (long i"), "--no-fold: no loop");
    const char *after, *call;
    call = fold_loop(s2, "double fold_f(const double *restrict in)", &after);
    cr_assert_not_null(call, "%s", s2);
    cr_expect(!strncmp(call, "        fold_f__v1(in + ", 24), "%.60s", call);
    cr_expect(!strncmp(after, "    fold_f__v2(in, w);\n", 23), "a tail part: %.60s", after);
    call = fold_loop(s2, "double fold_f_grad(const double *restrict in, double *restrict grad)", &after);
    cr_assert_not_null(call, "%s", s2);
    cr_expect(strstr(call, "(in + ") && strstr(call, "grad + ") < strchr(call, '\n'), "%.80s", call);
    cr_expect(!strncmp(after, "    fold_f__g2(in, grad, w);\n", 29), "a tail part: %.60s", after);
    Code l;
    load_entry(&l, f.k, &fold);
    check_math(f.k, &l, rosen_point);
    unload(&l);
    free(s1);
    free(s2);

    /* The scratch in the work array: still folded, still the same bits. */
    EmitOptions work = {.name = "f", .prefix = "work_", .max_block = 100, .max_locals = 2};
    s2 = emit_and_compare(&f, &one, &work, rosen_point);
    cr_expect(strstr(s2, "double *const w = work + ") && strstr(s2, "for (long i"), "%s", s2);
    free(s2);
    unload(&one);
    release(&f);
}

static double spread_point(int trial, uint32_t i)
{
    return 0.8 * sin(1.3 * trial + 0.7 * i) + 0.1 * (trial % 3);
}

/* Terms of one shape that are not the same up to a shift are not folded:
 * a different constant in every term, and inputs that do not all move by
 * the same offset (x_i and x_{2i mod n}). The parts stay functions of
 * their own, with the same bits as one body. */
Test(split, no_fold_when_terms_differ)
{
    static const char *const terms[] = {
        "C*(xJ - xI^2)^2 + (1 - xI)^2",
        "exp(xI) * xK + xJ",
    };
    for (int t = 0; t < 2; t++) {
        Formula f;
        make_terms(&f, "d", 60, 0, terms[t]);
        EmitOptions cut = {.name = "f", .prefix = "cut_", .max_block = 40};
        Code one;
        load_one(&one, &f);
        char *src = emit_and_compare(&f, &one, &cut, spread_point);
        cr_expect_gt(support_count(src, "GRADC_NOINLINE static void"), 10, "%s", terms[t]);
        cr_expect(!strstr(src, "for (long i"), "%s folded:\n%s", terms[t], src);
        free(src);
        unload(&one);
        release(&f);
    }
}

/* A value computed before the folded parts and read by all of them
 * (sin(y), read by every term) stays in its slot through the loop: the
 * value folds, with the same bits as one body. (Its gradient does not:
 * every term's part of d/dy waits for the end, where reverse mode adds
 * them up.) */
Test(split, folded_parts_share_a_value_computed_before)
{
    Formula f;
    make_terms(&f, "s", 60, 1, "(xI - sin(y))^2");
    EmitOptions cut = {.name = "f", .prefix = "cut_", .max_block = 40};
    Code one;
    load_one(&one, &f);
    char *src = emit_and_compare(&f, &one, &cut, spread_point);
    unload(&one);
    const char *after;
    cr_expect_not_null(fold_loop(src, "double cut_f(const double *restrict in)", &after), "%s", src);
    Code l;
    load_entry(&l, f.k, &cut);
    check_math(f.k, &l, spread_point);
    unload(&l);
    free(src);
    release(&f);
}

/* --report names the function called in the loop and how often, and
 * lists each printed function once. */
Test(split, report_of_folded_parts)
{
    Formula f;
    make_rosen(&f, 300);
    EmitOptions o = {.name = "f", .max_block = 100};
    Buf r = {0};
    Diag d;
    diag_init(&d);
    cr_assert_eq(emit_report(f.k, &o, &r, &d), 0);
    char *src = support_emit(f.k, &o, 0);
    cr_expect_eq(support_count(r.data, "  f__"), support_count(src, "GRADC_NOINLINE static void"),
                 "one report line per function:\n%s", r.data);
    cr_expect(strstr(r.data, "  parts 1 to 24 are one function called in a loop (in + 12 a call): "
                             "3 functions\n"), "%s", r.data);
    cr_expect(strstr(r.data, "  f__v1: 96 statements, 95 temporaries, reads 1 and writes 1 scratch "
                             "values, called 24 times\n"), "%s", r.data);
    cr_expect(strstr(r.data, ", called "), "%s", r.data);
    free(src);
    buf_free(&r);
    diag_free(&d);
    release(&f);
}

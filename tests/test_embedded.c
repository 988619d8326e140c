/* test_embedded.c — the emitted code's embedded profile (compiler/emit_c.c,
 * compiler/emit_float.c, cli/emit.c): single precision that compiles
 * strictly and agrees with double; --prefix on every external symbol and
 * macro; no malloc and no writable static data; a work-size macro that is
 * exactly what the code uses; a header with include guards, extern "C"
 * for C++ and each function's arguments documented. */
#include "support.h"
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt.h"

/* Every warning an error, and no float silently computed in double. */
#define STRICT "-std=c99 -Wall -Wextra -Werror -pedantic -Wdouble-promotion -O2"

typedef struct Case {
    const char *text, *func;
    int freeze;
} Case;

/* Scalar formulas over many primitives, vectors, a tensor value, a
 * network with parameters, and one frozen into constants. */
static const Case cases[] = {
    {"f(w0, x0, w1, x1, w2) = 1/(1+exp(-(w0*x0+w1*x1+w2)))\n", "f", 0},
    {"g(x, y) = log(1 + exp(x)) * atan2(y, x) + hypot(x, y) - sqrt(abs(x*y)) + erf(x/3)"
     " + tanh(y)*cosh(x/4) + x^3 + pow(abs(y) + 1, 0.5) + max(x, y)*min(x, 2) + relu(x - y)"
     " + log1p(x*x) + expm1(y/5) + sin(x)*cos(y) + asin(x/9) + acos(y/9) + sinh(y/3)\n", "g", 0},
    {"rosen(x[12]) = sum(i = 0 .. 10, 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n", "rosen", 0},
    {"lse(x[6]) = logsumexp(x) - x[2] + dot(x, x) / 10\n", "lse", 0},
    {"sm(x[5]) = softmax(x)\n", "sm", 0},
    {"mv(W[3,4], x[4], b[3]) = tanh(W @ x + b)\n", "mv", 0},
    {"network net(x[3]) {\n  dense(4, tanh)\n  dense(2, sigmoid)\n}\n"
     "h(x[3], p[26]) = sum(net(x, p))\n", "net", 0},
    {"network fr(x[2]) {\n  dense(3, relu, weights = [[1, -2], [0.5, 0.25], [0, 3]], bias = [0.1, 0, -1])\n"
     "  dense(1, sigmoid)\n}\n", "fr", 1},
};

typedef struct Emitted {
    Program *p;
    Kernel *k;
    EmitOptions o;
    uint32_t in_size, params_size, out_size, work;
} Emitted;

/* Parses c and builds its kernel with a gradient. */
static void build(const Case *c, int max_locals, Emitted *e)
{
    memset(e, 0, sizeof *e);
    Source src = {"case.grad", c->text, strlen(c->text)};
    Diag d;
    diag_init(&d);
    e->p = front_parse(&src, 0, &d);
    cr_assert_not_null(e->p, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    Func *f = NULL;
    for (uint32_t i = 0; i < e->p->nfunc; i++)
        if (!strcmp(e->p->func[i]->name, c->func))
            f = e->p->func[i];
    cr_assert_not_null(f, "%s", c->func);
    e->p->freeze = c->freeze;
    e->k = opt_kernel(e->p, f, 1);
    e->o = (EmitOptions){.runtime_entry = 1, .max_locals = max_locals,
                         .net = c->freeze ? NULL : f->net};
    for (uint32_t i = 0; i < e->k->ninputs; i++) {
        uint32_t size = shape_size(e->k->g->node[e->k->input[i]].shape);
        if (i < e->k->ninputs - e->k->nparams)
            e->in_size += size;
        else
            e->params_size += size;
    }
    e->out_size = shape_size(e->k->g->node[e->k->value].shape);
    e->work = emit_work_size(e->k, &e->o);
}

static void unbuild(Emitted *e)
{
    kernel_free(e->k);
    program_free(e->p);
}

/* The C (header: 1) of e, in double or (single: 1) float. */
static char *text(const Emitted *e, int header, int single)
{
    Buf out = {0}, f = {0};
    Diag d;
    diag_init(&d);
    int rc = header ? emit_c_header(e->k, &e->o, &out, &d) : emit_c_source(e->k, &e->o, &out, &d);
    cr_assert_eq(rc, 0, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    if (!single)
        return out.data;
    emit_float(out.data, out.len, &f);
    buf_free(&out);
    return f.data;
}

static gradc_so *compile(const char *src, const char *cflags)
{
    gradc_options opt = {.no_cache = 1, .cflags = cflags};
    char *err = NULL;
    gradc_so *so = gradc_so_compile(src, &opt, &err);
    cr_assert_not_null(so, "%s\n%s", err ? err : "", src);
    return so;
}

typedef void (*EntryD)(const double *, const double *, const double *, double *, double *,
                       double *, double *);
typedef void (*EntryF)(const float *, const float *, const float *, float *, float *, float *,
                       float *);

static double input_at(uint32_t i)
{
    return 0.3 + 0.41 * sin(1.7 * i + 0.2);
}

/* Value and gradient (or VJP) of both precisions at one point, compared
 * with float's tolerance: rounding errors of a few ulps of float per step;
 * also with functions split into parts (--max-block). */
Test(embedded, float_compiles_strictly_and_agrees_with_double)
{
    /* Each case whole, then (odd c2) the long scalar formula and the
     * network cut into parts of 3 statements. */
    for (size_t c2 = 0; c2 < 2 * sizeof cases / sizeof cases[0]; c2++) {
        size_t c = c2 / 2;
        if (c2 % 2 && c != 1 && c != 6)
            continue;
        Emitted e;
        build(&cases[c], 0, &e);
        e.o.max_block = c2 % 2 ? 3 : 0;
        char *cd = text(&e, 0, 0), *cf = text(&e, 0, 1);
        cr_expect(!strstr(cf, "double"), "case %zu: double left in\n%s", c, cf);
        gradc_so *sd = compile(cd, "-O2"), *sf = compile(cf, STRICT);
        char sym[64];
        snprintf(sym, sizeof sym, "%s_rt", e.k->name);
        EntryD fd = (EntryD)gradc_so_symbol(sd, sym);
        EntryF ff = (EntryF)gradc_so_symbol(sf, sym);
        cr_assert(fd && ff, "case %zu: no _rt entry", c);
        uint32_t ni = e.in_size, np = e.params_size, no = e.out_size;
        double *in = calloc(ni + np + no + ni + np + no + 1, sizeof *in);
        double *prm = in + ni, *v = prm + np, *g = v + no, *gp = g + ni, *out = gp + np;
        float *fin = calloc(ni + np + no + ni + np + no + 1, sizeof *fin);
        float *fprm = fin + ni, *fv = fprm + np, *fg = fv + no, *fgp = fg + ni, *fout = fgp + np;
        for (uint32_t i = 0; i < ni + np + no; i++)
            fin[i] = (float)(in[i] = input_at(i));
        double *wd = calloc(e.work + 1, sizeof *wd);
        float *wf = calloc(e.work + 1, sizeof *wf);
        fd(in, prm, v, out, g, gp, wd);
        ff(fin, fprm, fv, fout, fg, fgp, wf);
        /* Compared on the values the float code actually received. */
        for (uint32_t i = 0; i < ni + np + no; i++)
            in[i] = fin[i];
        fd(in, prm, v, out, g, gp, wd);
        uint32_t ngrad = ni + (e.k->nparams ? np : 0);
        for (uint32_t i = 0; i < no + ngrad; i++) {
            double want = i < no ? out[i] : g[i - no];
            double got = i < no ? fout[i] : fg[i - no];
            cr_expect(fabs(got - want) <= 2e-5 * (fabs(want) + 1),
                      "case %zu (%s) element %u: float %.9g, double %.17g", c, cases[c].func, i,
                      got, want);
        }
        free(in);
        free(fin);
        free(wd);
        free(wf);
        gradc_so_close(sd);
        gradc_so_close(sf);
        free(cd);
        free(cf);
        unbuild(&e);
    }
}

/* Writes text to dir/name. */
static void put(const char *dir, const char *name, const char *s)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(s, f);
    fclose(f);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/gradc-test-embedded-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static void rmdir_all(char *d)
{
    support_shell(NULL, "rm -rf '%s'", d);
    free(d);
}

/* The model used by the command-line tests: a network with random
 * initial parameters, a loss, and a bare-looking scalar function. */
static const char model[] =
    "network net(x[2]) {\n  dense(3, tanh)\n  dense(1, sigmoid)\n}\n"
    "loss(x[2], y, p[13]) = (net(x, p)[0] - y)^2\n"
    "circ(x, y, z, w) = 2*(x*y + max(z, w))\n";

Test(embedded, every_symbol_and_macro_carries_the_prefix)
{
    char *dir = tmpdir(), *s;
    put(dir, "m.grad", model);
    const char *opts[] = {"", "--float", "--max-block 3 --max-locals 2"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(support_shell(NULL, "cd %s && %s emit m.grad --prefix zq_ %s -o m.c --header m.h", dir,
                           GRADC_BIN, opts[i]), 0);
        cr_assert_eq(support_shell(NULL, "cd %s && cc " STRICT " -c m.c -o m.o", dir), 0);
        /* Every function and external symbol the object defines (the parts of
         * a split function are static, but carry the name too). */
        cr_assert_eq(support_shell(&s, "cd %s && nm m.o | awk '$2 ~ /^([A-TV-Z]|t)$/ {print $3}'", dir), 0);
        cr_expect(strlen(s) > 0);
        for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
            cr_expect(!strncmp(line, "zq_", 3), "symbol without the prefix: %s", line);
        free(s);
        cr_assert_eq(support_shell(&s, "cd %s && sed -n 's/^#\\(define\\|ifndef\\) *\\([A-Za-z_0-9]*\\).*/\\2/p' m.h",
                           dir), 0);
        cr_expect(strstr(s, "ZQ_NET_IN_SIZE\n") && strstr(s, "ZQ_CIRC_H_GRADC\n"), "%s", s);
        for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
            cr_expect(!strncmp(line, "ZQ_", 3), "macro without the prefix: %s", line);
        free(s);
    }
    rmdir_all(dir);
}

/* No malloc, no writable data: nothing in .data or .bss, not even local
 * statics, in double or float, with work arrays or without. */
Test(embedded, no_malloc_and_no_mutable_static_state)
{
    char *dir = tmpdir(), *s;
    put(dir, "m.grad", model);
    const char *opts[] = {"", "--float", "--max-locals 2", "--float --max-locals 2", "--freeze",
                          "--max-block 3", "--float --max-block 3 --max-locals 2"};
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(support_shell(NULL, "cd %s && %s emit m.grad %s -o m.c", dir, GRADC_BIN, opts[i]), 0);
        char *c = NULL;
        char p[512];
        snprintf(p, sizeof p, "%s/m.c", dir);
        c = slurp(p);
        cr_expect(!strstr(c, "malloc") && !strstr(c, "calloc") && !strstr(c, "free("), "%s", opts[i]);
        /* static: const tables, or the parts of a split function. */
        for (const char *at = c; (at = strstr(at, "static")); at += 6) {
            size_t line = strcspn(at, "\n");
            const char *paren = memchr(at, '(', line), *eq = memchr(at, '=', line);
            cr_expect(!strncmp(at, "static const ", 13) || (paren && (!eq || paren < eq)),
                      "%s: %.60s", opts[i], at);
        }
        free(c);
        cr_assert_eq(support_shell(NULL, "cd %s && cc " STRICT " -c m.c -o m.o", dir), 0);
        /* .data.rel.ro holds the const name tables: read-only once loaded. */
        cr_assert_eq(support_shell(&s, "cd %s && size -A m.o | awk '$1 ~ /^\\.(data|bss|tdata|tbss)/ && "
                               "$1 !~ /^\\.data\\.rel\\.ro/ && $2 > 0'", dir), 0);
        cr_expect_str_eq(s, "", "writable data with %s", opts[i]);
        free(s);
    }
    rmdir_all(dir);
}

/* NAME_WORK_SIZE, read from the header, is what the _work entry points
 * use: they write work[SIZE - 1] and nothing after it. */
Test(embedded, work_size_macro_matches_the_code_exactly)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Emitted e;
        build(&cases[c], 2, &e);
        if (!e.work) {
            unbuild(&e);
            continue;
        }
        char *h = text(&e, 1, 0), *src = text(&e, 0, 0);
        const char *m = strstr(h, "_WORK_SIZE ");
        cr_assert_not_null(m, "case %zu: no work-size macro\n%s", c, h);
        unsigned long size = strtoul(m + strlen("_WORK_SIZE "), NULL, 10);
        cr_expect_eq(size, e.work, "case %zu", c);
        gradc_so *so = compile(src, "-O2");
        char sym[64];
        snprintf(sym, sizeof sym, "%s_rt", e.k->name);
        EntryD f = (EntryD)gradc_so_symbol(so, sym);
        cr_assert_not_null(f, "%s", sym);
        const double sentinel = -12345.678;
        double *w = malloc((size + 64) * sizeof *w);
        for (unsigned long i = 0; i < size + 64; i++)
            w[i] = sentinel;
        uint32_t n = e.in_size + e.params_size + e.out_size;
        double *in = calloc(2 * n + 1, sizeof *in), *out = calloc(e.out_size, sizeof *out);
        for (uint32_t i = 0; i < n; i++)
            in[i] = input_at(i);
        double *prm = in + e.in_size, *v = prm + e.params_size, *g = in + n, *gp = g + e.in_size;
        f(in, prm, v, out, NULL, NULL, w);
        f(in, prm, v, out, g, gp, w);
        snprintf(sym, sizeof sym, "%s_jacobian_work", e.k->name);
        void *jac = gradc_so_symbol(so, sym);
        if (jac) {
            double *J = calloc((size_t)e.out_size * e.in_size, sizeof *J);
            if (e.k->nparams)
                ((void (*)(const double *, const double *, double *, double *))jac)(in, prm, J, w);
            else
                ((void (*)(const double *, double *, double *))jac)(in, J, w);
            free(J);
        }
        cr_expect(w[size - 1] != sentinel, "case %zu: work[%lu] never used", c, size - 1);
        for (unsigned long i = size; i < size + 64; i++)
            cr_expect(w[i] == sentinel, "case %zu: work[%lu] written beyond %lu", c, i, size);
        free(w);
        free(in);
        free(out);
        gradc_so_close(so);
        free(h);
        free(src);
        unbuild(&e);
    }
}

/* The header: guarded (included twice), C++-safe (a C++ program calls the
 * C functions through it and links), every function's arrays documented. */
Test(embedded, header_is_guarded_documented_and_cxx_safe)
{
    char *dir = tmpdir(), *s;
    put(dir, "m.grad", model);
    cr_assert_eq(support_shell(NULL, "cd %s && %s emit m.grad -o m.c --header m.h", dir, GRADC_BIN), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/m.h", dir);
    char *h = slurp(p);
    cr_expect(strstr(h, "#ifndef LOSS_H_GRADC\n#define LOSS_H_GRADC\n"));
    cr_expect(strstr(h, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"));
    /* Each prototype comes right after a comment that sizes its arrays. */
    cr_expect(strstr(h, " * in[LOSS_IN_SIZE]: the inputs, laid out as above. */\n"
                        "double loss(const double *in);\n"), "%s", h);
    cr_expect(strstr(h, "/* Returns the value; grad[LOSS_IN_SIZE] = its gradient by the inputs."));
    cr_expect(strstr(h, "J[NET_OUT_SIZE * NET_IN_SIZE]"));
    cr_expect(strstr(h, "/* Fills params[NET_NUM_PARAMS] with the network's initial parameters"));
    cr_expect(strstr(h, "in[n * CIRC_IN_SIZE], out[n * CIRC_OUT_SIZE]"));
    for (const char *at = h; (at = strstr(at, ");\n")); at += 3) {
        const char *line = at;
        while (line > h && line[-1] != '\n')
            line--;
        cr_expect(line >= h + 3 && !strncmp(line - 3, "*/\n", 3),
                  "prototype without a comment above: %.80s", line);
    }
    free(h);
    /* C: included twice in one file. */
    put(dir, "twice.c", "#include \"m.h\"\n#include \"m.h\"\nint main(void) { return CIRC_IN_SIZE != 4; }\n");
    cr_expect_eq(support_shell(NULL, "cd %s && cc " STRICT " twice.c -o twice && ./twice", dir), 0);
    if (support_shell(NULL, "g++ --version >/dev/null 2>&1") != 0) {
        rmdir_all(dir);
        cr_skip_test("g++ is not installed: the header's extern \"C\" is not compiled as C++");
    }
    /* circ(3, -4, 2, -1) = 2 * (-12 + 2) = -20; gradient 2y, 2x, 2, 0. */
    put(dir, "use.cpp",
        "#include \"m.h\"\n#include \"m.h\"\n#include <cstdio>\n"
        "int main() {\n"
        "    double in[CIRC_IN_SIZE] = {3, -4, 2, -1}, g[CIRC_IN_SIZE];\n"
        "    double v = circ_grad(in, g);\n"
        "    double p[NET_NUM_PARAMS];\n"
        "    net_init_params(p, 1);\n"
        "    std::printf(\"%s %g\\n\", circ_input_names[0], v);\n"
        "    return !(v == -20 && g[0] == -8 && g[1] == 6 && g[2] == 2 && g[3] == 0);\n"
        "}\n");
    cr_expect_eq(support_shell(NULL, "cd %s && cc -std=c99 -O2 -c m.c -o m.o && "
                             "g++ -std=c++11 -Wall -Wextra -Werror -pedantic use.cpp m.o -lm -o use",
                       dir), 0);
    cr_expect_eq(support_shell(&s, "cd %s && ./use", dir), 0);
    cr_expect_str_eq(s, "x -20\n");
    free(s);
    rmdir_all(dir);
}

/* gradc emit --float end to end: the note in both files, float
 * prototypes, and code that compiles under the strict flags. */
Test(embedded, emit_float_from_the_command_line)
{
    char *dir = tmpdir(), *s;
    put(dir, "m.grad", model);
    cr_assert_eq(support_shell(NULL, "cd %s && %s emit m.grad --float -o m.c --header m.h", dir, GRADC_BIN), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/m.h", dir);
    char *h = slurp(p);
    cr_expect(strstr(h, "Single precision (gradc emit --float): every real number is a float.\n"));
    cr_expect(strstr(h, "float circ_grad(const float *in, float *grad);\n"), "%s", h);
    cr_expect(strstr(h, "#define CIRC_IN_SIZE 4   /* floats in `in` */\n"));
    cr_expect(!strstr(h, "double"));
    free(h);
    put(dir, "main.c",
        "#include \"m.h\"\nint main(void) {\n"
        "    float in[CIRC_IN_SIZE] = {3, -4, 2, -1}, g[CIRC_IN_SIZE];\n"
        "    float v = circ_grad(in, g);\n"
        "    return !(v == -20 && g[0] == -8 && g[1] == 6 && g[2] == 2 && g[3] == 0);\n}\n");
    cr_expect_eq(support_shell(&s, "cd %s && cc " STRICT " main.c m.c -lm -o main 2>&1 && ./main", dir), 0, "%s", s);
    free(s);
    rmdir_all(dir);
}

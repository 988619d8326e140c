/* test_valid_c.c — the generated code is always valid C: random
 * well-formed programs (scalar formulas, vector and matrix functions,
 * networks and their losses) whose inputs are named after C keywords,
 * <math.h> functions and the generated code's own temporaries go through
 * `gradc emit` (with --prefix, and with --header), and every file compiles
 * with -std=c99 -Wall -Wextra -Werror -pedantic. The programs come from a
 * fixed-seed generator, so a failure is reproducible: the test prints the
 * source. */
#include <criterion/criterion.h>

#include "support.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PROGRAMS = 60 };

/* Names a user may give inputs: C keywords, <math.h> functions and
 * macros, the generated code's parameters and temporaries. */
static const char *const names[] = {
    "double", "int", "return", "if", "else", "for", "while", "static", "const",
    "restrict", "inline", "sizeof", "signed", "long", "char", "void", "_Bool",
    "exp", "log", "sqrt", "y0", "y1", "yn", "j0", "j1", "jn", "gamma", "fabs",
    "fmax", "pow", "erf", "NAN", "INFINITY", "HUGE_VAL", "M_PI", "errno",
    "in", "out", "grad", "v", "work", "params", "t0", "t1", "t2", "s0", "a0",
    "d", "i", "j", "k", "n", "ai", "acc", "tmp", "main", "printf", "malloc",
    "size_t", "f", "f_grad", "f_value", "x", "w",
};
#define NNAMES (sizeof names / sizeof names[0])

static const char *const unary[] = {
    "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "atan", "sinh",
    "cosh", "tanh", "erf", "sigmoid", "relu", "abs", "step",
};
static const char *const binary[] = {"max", "min", "hypot", "atan2", "pow"};
static const char *const acts[] = {"linear", "relu", "sigmoid", "tanh", "softmax", "step"};

static uint64_t state;

static uint32_t rnd(uint32_t n)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(state >> 33) % n;
}

typedef struct Text {
    char *p;
    size_t n, cap;
} Text;

static void add(Text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->n + (size_t)k + 1 > t->cap) {
        t->cap = (t->n + (size_t)k + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    t->n += (size_t)k;
}

/* A scalar expression over the inputs in[0..n). */
static void scalar(Text *t, const char *const *in, int n, int depth)
{
    static const char *const consts[] = {"0", "1", "2.5", "1e-3", "3", "0.5"};
    if (depth == 0 || rnd(4) == 0) {
        if (rnd(5) == 0)
            add(t, "%s", consts[rnd(6)]);
        else
            add(t, "%s", in[rnd((uint32_t)n)]);
        return;
    }
    switch (rnd(6)) {
    case 0: case 1:
        add(t, "(");
        scalar(t, in, n, depth - 1);
        add(t, " %c ", "+-*/"[rnd(4)]);
        scalar(t, in, n, depth - 1);
        add(t, ")");
        break;
    case 2:
        add(t, "-");
        scalar(t, in, n, depth - 1);
        break;
    case 3:
        add(t, "(");
        scalar(t, in, n, depth - 1);
        add(t, ")^%s", rnd(2) ? "2" : in[rnd((uint32_t)n)]);
        break;
    case 4:
        add(t, "%s(", unary[rnd(sizeof unary / sizeof *unary)]);
        scalar(t, in, n, depth - 1);
        add(t, ")");
        break;
    default:
        add(t, "%s(", binary[rnd(sizeof binary / sizeof *binary)]);
        scalar(t, in, n, depth - 1);
        add(t, ", ");
        scalar(t, in, n, depth - 1);
        add(t, ")");
    }
}

/* A vector expression of length m: v and u are [m], W is [m,m], s scalar. */
static void vector(Text *t, const char *v, const char *u, const char *W, const char *s, int depth)
{
    if (depth == 0 || rnd(4) == 0) {
        add(t, "%s", rnd(2) ? v : u);
        return;
    }
    switch (rnd(7)) {
    case 0:
        add(t, "(%s @ ", W);
        vector(t, v, u, W, s, depth - 1);
        add(t, ")");
        break;
    case 1:
        add(t, "(");
        vector(t, v, u, W, s, depth - 1);
        add(t, " %c ", "+-*"[rnd(3)]);
        vector(t, v, u, W, s, depth - 1);
        add(t, ")");
        break;
    case 2:
        add(t, "(");
        vector(t, v, u, W, s, depth - 1);
        add(t, " * %s)", s);
        break;
    case 3:
        add(t, "softmax(");
        vector(t, v, u, W, s, depth - 1);
        add(t, ")");
        break;
    case 4:
        add(t, "%s(", unary[rnd(sizeof unary / sizeof *unary)]);
        vector(t, v, u, W, s, depth - 1);
        add(t, ")");
        break;
    case 5:
        add(t, "(transpose(%s) @ ", W);
        vector(t, v, u, W, s, depth - 1);
        add(t, ")");
        break;
    default:
        add(t, "max(");
        vector(t, v, u, W, s, depth - 1);
        add(t, ", 0)");
    }
}

/* k distinct names from the pool. */
static void pick(const char **out, int k)
{
    for (int i = 0; i < k; i++) {
        int again;
        do {
            out[i] = names[rnd(NNAMES)];
            again = 0;
            for (int j = 0; j < i; j++)
                again |= !strcmp(out[i], out[j]);
        } while (again);
    }
}

/* Program number i: a scalar, vector or network source. */
static void program(Text *t, int i)
{
    const char *in[6];
    state = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    int kind = i % 3;
    if (kind == 0) {
        int n = 1 + (int)rnd(5);
        pick(in, n);
        add(t, "g(");
        for (int k = 0; k < n; k++)
            add(t, "%s%s", k ? ", " : "", in[k]);
        add(t, ") = ");
        scalar(t, in, n, 4);
        add(t, "\n");
    } else if (kind == 1) {
        int m = 1 + (int)rnd(4);
        pick(in, 4);
        add(t, "g(%s[%d], %s[%d], %s[%d,%d], %s) = ", in[0], m, in[1], m, in[2], m, m, in[3]);
        if (rnd(2)) {
            add(t, "sum(");
            vector(t, in[0], in[1], in[2], in[3], 3);
            add(t, ")\n");
        } else {
            vector(t, in[0], in[1], in[2], in[3], 3);
            add(t, "\n");
        }
    } else {
        int width = 2 + (int)rnd(3), layers = 1 + (int)rnd(3), from = width, count = 0;
        do                      /* params names the network's parameters */
            pick(in, 2);
        while (!strcmp(in[0], "params"));
        add(t, "network net(%s[%d]) {\n", in[0], width);
        for (int l = 0; l < layers; l++) {
            int units = 1 + (int)rnd(4);
            add(t, "  dense(%d, %s)\n", units, acts[rnd(sizeof acts / sizeof *acts)]);
            count += from * units + units;
            from = units;
        }
        add(t, "  dense(1, %s)\n}\n", rnd(2) ? "sigmoid" : "linear");
        count += from + 1;
        /* A loss by the parameters, and the network with its own. */
        add(t, "g(%s[%d], %s[%d]) = (sum(net(%s, %s)) - 1)^2\n", in[0], width, in[1], count,
            in[0], in[1]);
    }
}

static int shell(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

#define CFLAGS "-std=c99 -Wall -Wextra -Werror -pedantic"

Test(valid_c, random_programs_compile_with_strict_flags)
{
    char dir[] = "/tmp/gradc-validc-XXXXXX";
    cr_assert(mkdtemp(dir));
    Text all = {0};             /* a file including every header */
    for (int i = 0; i < PROGRAMS; i++) {
        Text t = {0};
        program(&t, i);
        char src[4200], cmd[9000];
        snprintf(src, sizeof src, "%s/p%d.grad", dir, i);
        FILE *f = fopen(src, "w");
        cr_assert(f);
        fputs(t.p, f);
        fclose(f);
        /* Every other one without a prefix: the plain C names must be valid. */
        const char *net = i % 3 == 2 ? ":g" : "";
        if (i % 2)
            snprintf(cmd, sizeof cmd, "cd '%s' && '%s' emit p%d.grad%s --prefix p%d_ -o p%d.c "
                     "--header p%d.h 2>p%d.err", dir, GRADC_BIN, i, net, i, i, i, i);
        else
            snprintf(cmd, sizeof cmd, "cd '%s' && '%s' emit p%d.grad%s -o p%d.c 2>p%d.err",
                     dir, GRADC_BIN, i, net, i, i);
        int rc = system(cmd);
        char err[4300];
        snprintf(err, sizeof err, "%s/p%d.err", dir, i);
        char *msg = slurp(err);
        cr_expect_eq(rc, 0, "program %d:\n%s\ngradc emit failed:\n%s", i, t.p, msg);
        free(msg);
        if (i % 2)
            add(&all, "#include \"p%d.h\"\n", i);
        free(t.p);
    }
    add(&all, "int main(void) { return 0; }\n");
    char path[4200];
    snprintf(path, sizeof path, "%s/all.c", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(all.p, f);
    fclose(f);
    free(all.p);
    /* One compiler run for all of them: seconds, not minutes. */
    int rc = shell("cd '%s' && cc " CFLAGS " -c p*.c all.c > cc.log 2>&1", dir);
    if (rc != 0) {
        snprintf(path, sizeof path, "%s/cc.log", dir);
        char *log = slurp(path);
        cr_expect_eq(rc, 0, "the generated C does not compile cleanly (sources in %s):\n%.4000s", dir, log);
        free(log);
        return;
    }
    cr_expect_eq(shell("rm -rf '%s'", dir), 0);
}

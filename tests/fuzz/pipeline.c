/* pipeline.c — the fuzzers' pipelines (pipeline.h). Each stage runs exactly
 * as the driver runs it, minus the C compiler: front_parse, opt_kernel,
 * emit_c_source/emit_c_header, and the interpreter on fixed inputs; the
 * checks of a problem file run on the interpreter and are compared and
 * formatted as `gradc check` does; --at text goes through at_parse. */
#include "pipeline.h"

#include "gradc.h"
#include "check.h"
#include "cli.h"
#include <math.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_INTERP = 1 << 20 };  /* doubles per interpreter call, at most */

static int fail(char *why, size_t nwhy, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, nwhy, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *digits(const char *p, long *v)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    *v = 0;
    while (isdigit((unsigned char)*p)) {
        if (*v < 1000000000)
            *v = *v * 10 + (*p - '0');
        p++;
    }
    return p;
}

/* One line of the diagnostics is well formed: "NAME:LINE:COL: error: " or
 * note with 1 <= LINE <= lines + 1 and COL >= 1, an excerpt line
 * ("%5d | ..." or "      | ^~~"), or the "too many errors" note. */
static int line_ok(const char *s, size_t n, const char *name, long lines, int *is_error)
{
    size_t nl = strlen(name);
    long line, col;
    *is_error = 0;
    if (n >= nl + 1 && !memcmp(s, name, nl) && s[nl] == ':') {
        const char *p = digits(s + nl + 1, &line);
        if (!p || *p != ':' || !(p = digits(p + 1, &col)) || *p != ':' || p[1] != ' ')
            return 0;
        p += 2;
        if (line < 1 || line > lines + 1 || col < 1)
            return 0;
        if (!strncmp(p, "error: ", 7))
            return *is_error = 1;
        return !strncmp(p, "note: ", 6);
    }
    if (!strncmp(s, "gradc: note: too many errors; stopping here", 43) && n == 43)
        return 1;
    if (n >= 8 && !strncmp(s, "      | ", 8))
        return 1;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i == n || !isdigit((unsigned char)s[i]))
        return 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    return n - i >= 2 && s[i] == ' ' && s[i + 1] == '|';
}

/* The Diag agrees with itself: every line well formed, an error line for
 * each counted error (up to the cap). */
int fuzz_diag_ok(const Diag *d, const Source *src, char *why, size_t nwhy)
{
    long lines = 1;
    for (size_t i = 0; i < src->len; i++)
        lines += src->text[i] == '\n';
    const char *s = d->out.data ? d->out.data : "";
    size_t len = d->out.len;
    if (len && s[len - 1] != '\n')
        return fail(why, nwhy, "diagnostics do not end with a newline");
    int errors = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(s + at, '\n', len - at);
        size_t n = (size_t)(nl - (s + at));
        int is_error;
        if (!line_ok(s + at, n, src->name, lines, &is_error))
            return fail(why, nwhy, "malformed diagnostic line: %.*s", (int)(n > 200 ? 200 : n), s + at);
        errors += is_error;
        at += n + 1;
    }
    int want = d->nerrors < d->max_errors ? d->nerrors : d->max_errors;
    if (errors != want)
        return fail(why, nwhy, "%d error lines for %d errors", errors, d->nerrors);
    return 0;
}

/* Value, gradient (or VJP with a seed of ones) on made-up inputs. */
static void interpret(const Kernel *k)
{
    uint32_t n = k->ninputs + (k->seed ? 1 : 0), insize = 0, outsize;
    NodeId *inputs = xmalloc((n + 1) * sizeof *inputs);
    NodeId *roots = xmalloc((k->ninputs + 1) * sizeof *roots);
    for (uint32_t i = 0; i < k->ninputs; i++)
        inputs[i] = k->input[i];
    if (k->seed)
        inputs[k->ninputs] = k->seed;
    for (uint32_t i = 0; i < n; i++)
        insize += shape_size(k->g->node[inputs[i]].shape);
    roots[0] = k->value;
    outsize = shape_size(k->g->node[k->value].shape);
    for (uint32_t i = 0; i < k->ninputs; i++) {
        roots[1 + i] = k->grad[i];
        outsize += shape_size(k->g->node[k->grad[i]].shape);
    }
    if (insize <= MAX_INTERP && outsize <= MAX_INTERP) {
        double *in = xmalloc((insize + 1) * sizeof *in);
        double *out = xmalloc((outsize + 1) * sizeof *out);
        for (uint32_t i = 0; i < insize; i++)
            in[i] = ((double)(i * 7 % 11) - 5.0) * 0.37;
        interp_eval(k->g, inputs, in, n, roots, k->ninputs + 1, out);
        free(in);
        free(out);
    }
    free(inputs);
    free(roots);
}

/* Kernel, C, header, interpreter for one function. Emission may refuse
 * (a name that is not a C name): then its message must be well formed. */
static int compile_func(Program *p, const Func *f, char *why, size_t nwhy)
{
    Kernel *k = opt_kernel(p, f, 1);
    EmitOptions o = {.net = f->net, .runtime_entry = 1};
    Buf c = {0}, h = {0}, ir = {0};
    Diag d;
    diag_init(&d);
    int rc = emit_c_source(k, &o, &c, &d);
    if (rc == 0)
        rc = emit_c_header(k, &o, &h, &d);
    if ((rc != 0) != (d.nerrors > 0))
        rc = fail(why, nwhy, "emit returned %d with %d errors", rc, d.nerrors);
    else
        rc = 0;
    emit_work_size(k, &o);
    kernel_dump(k, &ir);
    interpret(k);
    diag_free(&d);
    buf_free(&c);
    buf_free(&h);
    buf_free(&ir);
    kernel_free(k);
    return rc;
}

static int run_mode(const char *text, size_t size, int bare, char *why, size_t nwhy)
{
    Source src = {bare ? "<expr>" : "fuzz.grad", text, size};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, bare, &d);
    int rc = fuzz_diag_ok(&d, &src, why, nwhy);
    if (rc == 0 && !p != (d.nerrors > 0))
        rc = fail(why, nwhy, "front_parse returned %s with %d errors",
                  p ? "a program" : "NULL", d.nerrors);
    if (rc == 0 && !p && !d.out.len)
        rc = fail(why, nwhy, "front_parse failed without a message");
    if (rc == 0 && p) {
        for (uint32_t i = 0; rc == 0 && i < p->nfunc; i++)
            rc = compile_func(p, p->func[i], why, nwhy);
        if (rc == 0 && p->bare)
            rc = compile_func(p, p->bare, why, nwhy);
        const CheckList *L = check_list(p);
        for (uint32_t i = 0; rc == 0 && i < L->n; i++)
            if (L->check[i]->lhs)
                rc = compile_func(p, L->check[i]->lhs, why, nwhy);
    }
    program_free(p);
    diag_free(&d);
    return rc;
}

int fuzz_pipeline(const char *data, size_t size, char *why, size_t nwhy)
{
    /* Sources end in a NUL past their length (the lexer's sentinel), as
     * the driver's input.c makes them. */
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    int rc = run_mode(text, size, 1, why, nwhy);
    if (rc == 0)
        rc = run_mode(text, size, 0, why, nwhy);
    free(text);
    return rc;
}

/* ---- problem files: the checks, run on the interpreter ---- */

/* The left side of check c on the interpreter, as `gradc check` computes
 * it from the generated C: the value, the gradient by the arguments end
 * to end, or the Jacobian (one vector-Jacobian product per row). Returns
 * 0, or -1 when the sizes are beyond what the fuzzer interprets. */
static int check_actual(Program *p, const Check *c, Value *a)
{
    Kernel *k = opt_kernel(p, c->lhs, 1);
    const Graph *g = k->g;
    uint32_t m = shape_size(g->node[k->value].shape), nin = 0, n = k->ninputs;
    for (uint32_t i = 0; i < k->ninputs; i++)
        nin += shape_size(g->node[k->input[i]].shape);
    if (nin != c->nin || m > 256 || nin > MAX_INTERP || (uint64_t)m * nin > MAX_INTERP) {
        kernel_free(k);
        return -1;
    }
    NodeId *inputs = xmalloc((n + 1) * sizeof *inputs), *roots = xmalloc((n + 1) * sizeof *roots);
    memcpy(inputs, k->input, n * sizeof *inputs);
    if (k->seed)
        inputs[n] = k->seed;
    roots[0] = k->value;
    for (uint32_t i = 0; i < n; i++)
        roots[1 + i] = k->grad[i];
    double *in = xmalloc((nin + m + 1) * sizeof *in);
    double *out = xmalloc((m + nin + 1) * sizeof *out);
    if (c->nin)
        memcpy(in, c->in, c->nin * sizeof *in);
    memset(a, 0, sizeof *a);
    uint32_t rows = c->kind == CHECK_JACOBIAN ? m : 1;
    a->n = c->kind == CHECK_VALUE ? m : rows * nin;
    a->v = xmalloc(((size_t)a->n + 1) * sizeof *a->v);
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t j = 0; j < m; j++)        /* the seed: ones, or e_r */
            in[nin + j] = c->kind != CHECK_JACOBIAN || j == r;
        interp_eval(g, inputs, in, n + (k->seed != 0), roots, 1 + n, out);
        if (c->kind == CHECK_VALUE)
            memcpy(a->v, out, m * sizeof *out);
        else
            memcpy(a->v + (size_t)r * nin, out + m, nin * sizeof *out);
    }
    Shape s = g->node[k->value].shape;
    if (c->kind == CHECK_VALUE) {
        a->rank = s.rank;
        a->dim[0] = s.dim[0];
        a->dim[1] = s.dim[1];
    } else if (c->kind == CHECK_GRAD) {
        a->rank = 1;
        a->dim[0] = nin;
    } else {
        a->rank = 2;
        a->dim[0] = m;
        a->dim[1] = nin;
    }
    free(inputs);
    free(roots);
    free(in);
    free(out);
    kernel_free(k);
    return 0;
}

/* A report line as `gradc check` builds one: comparison, formatting of
 * both values, the index of the first difference. */
static int check_one(Program *p, const Check *c, char *why, size_t nwhy)
{
    Value a;
    if (!c->lhs || check_actual(p, c, &a) != 0)
        return 0;
    Compare cmp = check_compare(&a, &c->expected, c->tol, c->negate);
    Buf b = {0};
    buf_printf(&b, "%s %s%s: ", cmp.pass ? "PASS" : "FAIL", c->name ? c->name : "", c->text);
    value_format(&a, &b, 16);
    value_format(&c->expected, &b, 16);
    value_json(&a, &b);
    value_json(&c->expected, &b);
    value_shape(&a, &b);
    value_shape(&c->expected, &b);
    int rc = 0;
    if (cmp.first >= 0) {
        if ((uint64_t)cmp.first >= c->expected.n || (uint64_t)cmp.first >= a.n)
            rc = fail(why, nwhy, "first difference %lld past %u/%u elements",
                      (long long)cmp.first, c->expected.n, a.n);
        else
            value_index(&c->expected, (uint64_t)cmp.first, &b);
    }
    if (rc == 0 && !cmp.shape_ok && cmp.pass)
        rc = fail(why, nwhy, "values of different shapes passed");
    /* A value equals itself (NaN matches NaN, inf matches inf). */
    Compare self = check_compare(&c->expected, &c->expected, c->tol, 0);
    if (rc == 0 && !self.pass)
        rc = fail(why, nwhy, "an expected value differs from itself");
    buf_free(&b);
    free(a.v);
    return rc;
}

int fuzz_check_pipeline(const char *data, size_t size, char *why, size_t nwhy)
{
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    Source src = {"problem.grad", text, size};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 0, &d);
    int rc = fuzz_diag_ok(&d, &src, why, nwhy);
    if (rc == 0 && !p != (d.nerrors > 0))
        rc = fail(why, nwhy, "front_parse returned %s with %d errors",
                  p ? "a program" : "NULL", d.nerrors);
    if (rc == 0 && p) {
        const CheckList *L = check_list(p);
        for (uint32_t i = 0; rc == 0 && i < L->n; i++)
            rc = check_one(p, L->check[i], why, nwhy);
    }
    program_free(p);
    diag_free(&d);
    free(text);
    return rc;
}

/* ---- --at values ---- */

/* The numbers of an assignment printed back as --at text: "NAME=[[..]]". */
static void at_print(const Assign *a, Buf *b)
{
    char num[32];
    buf_put(b, a->name, a->len);
    buf_puts(b, "=");
    uint32_t n = shape_size(a->shape), cols = a->shape.rank == 2 ? a->shape.dim[1] : n;
    for (uint32_t i = 0; i < n; i++) {
        if (a->shape.rank == 2 && i % cols == 0)
            buf_puts(b, i ? "],[" : "[[");
        else if (a->shape.rank == 1 && i == 0)
            buf_puts(b, "[");
        else if (i > 0)
            buf_puts(b, ",");
        num_format(a->data[i], num);
        buf_puts(b, num);
    }
    buf_puts(b, a->shape.rank == 2 ? "]]" : a->shape.rank == 1 ? "]" : "");
}

static int same_bits(double x, double y)
{
    return (isnan(x) && isnan(y)) || memcmp(&x, &y, sizeof x) == 0;
}

int fuzz_at_pipeline(const char *data, size_t size, char *why, size_t nwhy)
{
    /* Exactly size bytes, no NUL after them: at_parse must stay inside. */
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    Source src = {"<at>", text, size};
    Diag d;
    diag_init(&d);
    Assign as[8];
    int n = 0, rc = 0;
    at_parse(&src, as, 8, &n, &d);
    /* The messages are about "<at>", one line of text (a newline in it is
     * just a character the excerpt prints). */
    rc = d.nerrors == 0 && n == 0 ? fail(why, nwhy, "no value and no error") : 0;
    if (rc == 0 && d.nerrors == 0 && d.out.len)
        rc = fail(why, nwhy, "a message without an error: %.200s", d.out.data);
    if (rc == 0 && d.nerrors > 0 && (!d.out.data || strncmp(d.out.data, "<at>:1:", 7)))
        rc = fail(why, nwhy, "an error not at <at>:1:COL: %.200s", d.out.data ? d.out.data : "");
    /* Each value read back from its printed form is the same, bit for bit. */
    for (int i = 0; rc == 0 && i < n; i++) {
        Buf b = {0};
        at_print(&as[i], &b);
        Source again = {"<at>", b.data, b.len};
        Diag d2;
        diag_init(&d2);
        Assign back[1];
        int m = 0;
        at_parse(&again, back, 1, &m, &d2);
        if (m != 1 || d2.nerrors)
            rc = fail(why, nwhy, "'%.200s' does not read back: %.200s", b.data, d2.out.data ? d2.out.data : "");
        else if (back[0].len != as[i].len || !shape_eq(back[0].shape, as[i].shape))
            rc = fail(why, nwhy, "'%.200s' reads back as another name or shape", b.data);
        for (uint32_t j = 0; rc == 0 && j < shape_size(as[i].shape); j++)
            if (!same_bits(back[0].data[j], as[i].data[j]))
                rc = fail(why, nwhy, "'%.200s' element %u reads back differently", b.data, j);
        if (m == 1)
            free(back[0].data);
        diag_free(&d2);
        buf_free(&b);
    }
    for (int i = 0; i < n; i++)
        free(as[i].data);
    diag_free(&d);
    free(text);
    return rc;
}

/* pipeline.c — the fuzzer's pipeline (pipeline.h). Each stage runs exactly
 * as the driver runs it, minus the C compiler: front_parse, opt_kernel,
 * emit_c_source/emit_c_header, and the interpreter on fixed inputs. */
#include "pipeline.h"

#include "gradc.h"
#include "check.h"

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
static int diag_ok(const Diag *d, const Source *src, char *why, size_t nwhy)
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
    int rc = diag_ok(&d, &src, why, nwhy);
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

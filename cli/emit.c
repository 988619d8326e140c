/* emit.c — `gradc emit`: write the C source (and optionally a header) for
 * one function of a file, every function of it, or a bare expression. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char emit_help[] =
    "usage: gradc emit FILE[:FUNC] | -e EXPR [options]\n"
    "\n"
    "  -e EXPR           a bare expression (the argument after -e, even if it\n"
    "                    starts with '-'); its free variables are its inputs\n"
    "  --func NAME       only this function of FILE (default: all of them)\n"
    "  --name N          the C name of a bare expression (default f)\n"
    "  --prefix P        prepended to every external symbol\n"
    "  -o OUT.c          output file (default: standard output)\n"
    "  --header OUT.h    also write a header for callers\n"
    "  --emit c|ir       C source (default) or the optimised IR as text\n"
    "  --max-locals N    stack budget in doubles per function (default 4096)\n"
    "  --max-block N     statements per generated function: a longer straight-\n"
    "                    line body is cut into static functions of at most N\n"
    "                    (default 500; docs/emitted-api.md); parts that repeat\n"
    "                    with shifted inputs become one function in a loop\n"
    "  --no-fold         keep every part its own function (no loop)\n"
    "  --max-code-size MB refuse to write more C than this (default 128;\n"
    "                    0: no limit; docs/robustness.md)\n"
    "  --report          describe each entry point on standard error: parts,\n"
    "                    scratch, stack and work sizes, operation count\n"
    "  --no-rewrite      no stability rewrites (docs/language.md)\n"
    "  --freeze          networks' initial parameters become constants in the\n"
    "                    code (no params argument; zero weights skipped)\n"
    "  --float           single precision: float instead of double everywhere\n"
    "                    (types, literals, expf, logf, ...; docs/emitted-api.md)\n"
    "  --blas            matrix products call cblas_dgemm/cblas_dgemv (the code\n"
    "                    then includes <cblas.h>; link with -lopenblas)\n"
    "  --wrt NAMES       the gradient only with respect to these inputs\n"
    "                    (comma-separated; one function); the others stay\n"
    "                    inputs but get no gradient entry\n";

typedef struct EmitArgs {
    const char *file, *expr, *func, *name, *prefix, *out, *header, *what, *wrt, *entry;
    unsigned entries;
    int max_locals, max_block;
    long max_mb;                /* --max-code-size; -1: the default */
    int report;
    int no_rewrite;
    int no_fold;
    int freeze;
    int blas;
    int single;                 /* --float */
} EmitArgs;

static int parse_args(int argc, char **argv, EmitArgs *a)
{
    memset(a, 0, sizeof *a);
    a->max_mb = -1;
    a->what = "c";
    int opts = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = NULL;
        if (opts && (!strcmp(s, "--help") || !strcmp(s, "-h"))) {
            fputs(emit_help, stdout);
            exit(0);
        }
        if (opts && !strcmp(s, "--")) { opts = 0; continue; }
        if (opts && !strcmp(s, "--no-rewrite")) { a->no_rewrite = 1; continue; }
        if (opts && !strcmp(s, "--freeze")) { a->freeze = 1; continue; }
        if (opts && !strcmp(s, "--blas")) { a->blas = 1; continue; }
        if (opts && !strcmp(s, "--float")) { a->single = 1; continue; }
        if (opts && !strcmp(s, "--report")) { a->report = 1; continue; }
        if (opts && !strcmp(s, "--no-fold")) { a->no_fold = 1; continue; }
        if (opts && !strcmp(s, "--dense-hessian")) { a->entries |= ENTRY_HESS_DENSE; continue; }
        if (opts && !strcmp(s, "-e")) slot = &a->expr;
        else if (opts && !strcmp(s, "--func")) slot = &a->func;
        else if (opts && !strcmp(s, "--name")) slot = &a->name;
        else if (opts && !strcmp(s, "--prefix")) slot = &a->prefix;
        else if (opts && (!strcmp(s, "-o") || !strcmp(s, "--output"))) slot = &a->out;
        else if (opts && !strcmp(s, "--header")) slot = &a->header;
        else if (opts && !strcmp(s, "--emit")) slot = &a->what;
        else if (opts && !strcmp(s, "--wrt")) slot = &a->wrt;
        else if (opts && !strcmp(s, "--entry")) slot = &a->entry;
        else if (opts && !strcmp(s, "--max-code-size")) {
            char *end;
            long v = next ? strtol(next, &end, 10) : -1;
            if (!next || *end || v < 0 || v > 1 << 20)
                return cli_usage_error("emit", "--max-code-size needs a number of MB (0: no limit)");
            a->max_mb = v;
            i++;
            continue;
        } else if (opts && (!strcmp(s, "--max-locals") || !strcmp(s, "--max-block"))) {
            char *end;
            long v = next ? strtol(next, &end, 10) : 0;
            if (!next || *end || v <= 0 || v > 1 << 24)
                return cli_usage_error("emit", "%s needs a positive number", s);
            *(s[6] == 'l' ? &a->max_locals : &a->max_block) = (int)v;
            i++;
            continue;
        } else if (opts && s[0] == '-' && s[1])
            return cli_usage_error("emit", "unknown option '%s'", s);
        else if (!a->file) { a->file = s; continue; }
        else return cli_usage_error("emit", "unexpected argument '%s'", s);
        if (!next)
            return cli_usage_error("emit", "%s needs a value", s);
        *slot = next;
        i++;
    }
    if (!a->file == !a->expr)
        return cli_usage_error("emit", a->file ? "give a FILE or -e EXPR, not both"
                                               : "give a FILE or -e EXPR");
    if (strcmp(a->what, "c") && strcmp(a->what, "ir"))
        return cli_usage_error("emit", "--emit must be 'c' or 'ir', not '%s'", a->what);
    unsigned entries = ENTRY_VALUE | ENTRY_GRAD;
    const char *bad = NULL;
    size_t badlen = 0;
    if (a->entry && kernel_parse_entries(a->entry, &entries, &bad, &badlen) != 0)
        return cli_usage_error("emit", bad ? "unknown entry point '%.*s' in --entry (value, grad, jvp, hvp, hess)"
                                           : "--entry needs a list such as value,grad,hess%.*s",
                               (int)badlen, bad ? bad : "");
    if ((a->entries & ENTRY_HESS_DENSE) && !(entries & ENTRY_HESS))
        return cli_usage_error("emit", "--dense-hessian needs the hess entry point (--entry ...,hess)");
    a->entries |= entries;
    if (a->name && !a->expr)
        return cli_usage_error("emit", "--name renames a bare expression (-e); functions in files keep their names");
    return 0;
}

static int write_output(const char *path, const Buf *b, Diag *d)
{
    if (!path) {
        fwrite(b->data, 1, b->len, stdout);
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        diag_plain(d, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- one file, several functions: their C names must not collide ---- */

typedef struct Name {
    char text[300];
    uint32_t func;
} Name;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const Name *)a)->text, ((const Name *)b)->text);
}

/* Every external symbol and header macro a function gets (emit_c.c). */
static uint32_t names_of(const char *sym, uint32_t func, Name *out)
{
    static const char *const sym_sfx[] = {
        "", "_grad", "_vjp", "_jacobian", "_batch", "_work", "_grad_work", "_vjp_work",
        "_jacobian_work", "_batch_work", "_input_names", "_init_params", "_rt",
        "_jvp", "_hvp", "_hess", "_jvp_work", "_hvp_work", "_hess_work", "_hess_colptr",
        "_hess_rowind", "_rt2", NULL};
    static const char *const macro_sfx[] = {
        "_NUM_INPUTS", "_IN_SIZE", "_OUT_SIZE", "_NUM_PARAMS", "_WORK_SIZE", "_GRAD_SIZE",
        "_SCRATCH_SIZE",
        "_H_GRADC", "_HESS_N", "_HESS_NNZ", NULL};
    uint32_t n = 0;
    for (int i = 0; sym_sfx[i]; i++, n++) {
        snprintf(out[n].text, sizeof out[n].text, "%s%s", sym, sym_sfx[i]);
        out[n].func = func;
    }
    for (int i = 0; macro_sfx[i]; i++, n++) {
        size_t k = 0;
        for (; sym[k] && k < 200; k++)
            out[n].text[k] = (char)toupper((unsigned char)sym[k]);
        snprintf(out[n].text + k, sizeof out[n].text - k, "%s", macro_sfx[i]);
        out[n].func = func;
    }
    return n;
}

/* 'f_grad' next to 'f' (whose gradient is f_grad), or 'f' next to 'F'
 * (both get F_NUM_INPUTS), would make C that does not compile: an error
 * that says which two and what to do instead. */
static int check_names(const Program *p, const EmitArgs *a, Diag *d)
{
    Name *all = xmalloc(p->nfunc * 40 * sizeof *all);   /* >= names_of() */
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->nfunc; i++) {
        char sym[256];
        snprintf(sym, sizeof sym, "%s%s", a->prefix ? a->prefix : "", p->func[i]->name);
        n += names_of(sym, i, all + n);
    }
    qsort(all, n, sizeof *all, name_cmp);
    int rc = 0;
    for (uint32_t i = 1; i < n && rc == 0; i++)
        if (!strcmp(all[i].text, all[i - 1].text) && all[i].func != all[i - 1].func) {
            uint32_t x = all[i - 1].func, y = all[i].func;
            const Func *f = p->func[x < y ? x : y], *g = p->func[x < y ? y : x];
            diag_error(d, &p->src, g->loc,
                       "functions '%s' and '%s' would both define the C name '%s'; emit them "
                       "one at a time (FILE:FUNC) with different --prefix, or rename one",
                       f->name, g->name, all[i].text);
            rc = -1;
        }
    /* The parts of a cut body are static functions F__v0, F__g0, … (emitted-api.md):
     * no other function's name may start with F__. */
    for (uint32_t i = 0; i < p->nfunc && rc == 0; i++) {
        Name key;
        snprintf(key.text, sizeof key.text, "%s%s__", a->prefix ? a->prefix : "", p->func[i]->name);
        uint32_t lo = 0, hi = n, len = (uint32_t)strlen(key.text);
        while (lo < hi) {                       /* the first name >= key */
            uint32_t mid = lo + (hi - lo) / 2;
            if (name_cmp(&all[mid], &key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < n && !strncmp(all[lo].text, key.text, len) && all[lo].func != i) {
            diag_error(d, &p->src, p->func[all[lo].func]->loc,
                       "the C name '%s' could clash with the parts of '%s' (static functions "
                       "named %s…); emit them one at a time (FILE:FUNC), or rename one",
                       all[lo].text, p->func[i]->name, key.text);
            rc = -1;
        }
    }
    free(all);
    return rc;
}

/* Appends the C (or IR, or header) of one function. */
static int emit_one(Program *p, Func *f, const EmitArgs *a, Buf *c, Buf *h, Diag *d)
{
    p->no_rewrite = a->no_rewrite;
    p->freeze = a->freeze;
    p->blas = a->blas;
    uint8_t *wrt = NULL;
    if (a->wrt && cli_wrt(f, a->wrt, a->freeze, &wrt, d) != 0)
        return -1;
    const char *why = opt_entries_error(p, f, wrt, a->entries);
    if (why) {
        diag_plain(d, "%s: %s", f->name, why);
        free(wrt);
        return -1;
    }
    Kernel *k = opt_kernel_entries(p, f, wrt, a->entries);
    free(wrt);
    EmitOptions o = {.name = a->name, .prefix = a->prefix, .max_locals = a->max_locals,
                     .max_block = a->max_block, .no_fold = a->no_fold,
                     .net = a->freeze ? NULL : f->net, .blas = a->blas, .single = a->single,
                     .max_bytes = a->max_mb < 0 ? EMIT_DEFAULT_MAX_BYTES : (size_t)a->max_mb << 20};
    int rc = 0;
    Buf sc = {0}, sh = {0};     /* --float: double-precision text to convert */
    if (!strcmp(a->what, "ir"))
        kernel_dump(k, c);
    else
        rc = emit_c_source(k, &o, a->single ? &sc : c, d);
    if (rc == 0 && a->report) {
        Buf r = {0};
        rc = emit_report(k, &o, &r, d);
        if (r.len)
            fwrite(r.data, 1, r.len, stderr);
        buf_free(&r);
    }
    if (rc == 0 && a->header)
        rc = emit_c_header(k, &o, a->single ? &sh : h, d);
    if (rc == 0 && a->single) {
        emit_float(sc.data ? sc.data : "", sc.len, c);
        emit_float(sh.data ? sh.data : "", sh.len, h);
    }
    buf_free(&sc);
    buf_free(&sh);
    kernel_free(k);
    return rc;
}

int cmd_emit(int argc, char **argv)
{
    EmitArgs a;
    if (parse_args(argc, argv, &a))
        return 1;
    Diag d;
    diag_init(&d);
    Input in;
    Program *p = NULL;
    Buf c = {0}, h = {0};
    int rc = 1;
    if (a.expr)
        input_from_text(&in, a.expr);
    else if (input_from_spec(&in, a.file, &d) != 0)
        goto out;
    else if (in.bare && input_from_file(&in, a.file, &d) != 0)
        goto out;               /* not FILE:FUNC, so a plain file */
    if (a.func)
        in.func = a.func;
    if (in.bare || in.func) {
        Func *f = input_compile(&in, &p, &d);
        if (!f)
            goto out;
        if (emit_one(p, f, &a, &c, &h, &d) != 0)
            goto out;
    } else {
        p = front_parse(&in.src, 0, &d);
        if (!p)
            goto out;
        if (p->nfunc == 0) {
            diag_error(&d, &in.src, loc_point(1, 1), "no function is defined in this file");
            goto out;
        }
        if (a.wrt && p->nfunc > 1) {
            diag_plain(&d, "--wrt names inputs of one function, but %s defines %u; choose "
                       "one with %s:NAME or --func NAME", in.src.name, p->nfunc, in.src.name);
            goto out;
        }
        if (!strcmp(a.what, "c") && check_names(p, &a, &d) != 0)
            goto out;
        for (uint32_t i = 0; i < p->nfunc; i++)
            if (emit_one(p, p->func[i], &a, &c, &h, &d) != 0)
                goto out;
    }
    if (write_output(a.out, &c, &d) == 0 && (!a.header || write_output(a.header, &h, &d) == 0))
        rc = 0;
out:
    if (rc)
        report(&d);
    diag_free(&d);
    buf_free(&c);
    buf_free(&h);
    program_free(p);
    input_free(&in);
    return rc;
}

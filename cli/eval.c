/* eval.c — `gradc eval`: compile a formula, run the generated code on the
 * values given with --at, print the value and gradient as text or JSON. */
#include "cli.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char eval_help[] =
    "usage: gradc eval EXPR|FILE:FUNC [options]\n"
    "\n"
    "The argument right after 'eval' is the expression, even when it starts\n"
    "with '-'. Its free variables are its inputs, in order of appearance.\n"
    "\n"
    "  --at NAME=VALUE,...   input values (repeatable): numbers, nan, inf, or\n"
    "                        lists such as x=[2,1,0.1] and W=[[1,2],[3,4]]\n"
    "  --grad                also print every partial derivative\n"
    "  --jacobian            print d value / d input as matrices (rows: outputs)\n"
    "  --wrt NAMES           derivatives only by these inputs (comma-separated)\n"
    "  --hessian             also print the second derivatives, a block per pair\n"
    "                        of inputs (a scalar value only)\n"
    "  --tangent NAME=V,...  also print J v, the derivative along the direction v\n"
    "                        (inputs not named move by 0)\n"
    "  --no-rewrite          compute the formula as written, without the\n"
    "                        stability rewrites (docs/language.md)\n"
    "  --json                print {\"value\": v, \"grad\": {...}}\n"
    "  --engine jit|interp   generated C (default) or the reference interpreter\n"
    "  --func NAME           the function to evaluate in a file\n"
    "  --cache PATH          the cache of compiled code to use (docs/cache.md)\n"
    "  --no-cache            neither read nor write the cache\n"
    "  --explain-cache       say on stderr whether the cache hit, and why not\n";

typedef struct EvalArgs {
    const char *spec;
    Source at[32];
    int nat;
    int grad, json, interp, jacobian, no_rewrite, hessian;
    Source tangent;             /* --tangent text; .text NULL when absent */
    const char *func, *wrt;
    CacheOpts cache;
} EvalArgs;

static int parse_args(int argc, char **argv, EvalArgs *a)
{
    memset(a, 0, sizeof *a);
    int i = 1, opts = 1;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(eval_help, stdout);
        exit(0);
    }
    /* With "--", the options come before it and the expression after it
     * (gradc eval --at x=3 -- '-x^2'); without, the argument right after
     * 'eval' is the expression, even when it starts with '-'. */
    int dd = 0;
    for (int k = 1; k + 1 < argc && !dd; k++)
        if (!strcmp(argv[k], "--"))
            dd = k;
    if (dd && dd + 2 < argc)
        return cli_usage_error("eval", "unexpected argument '%s' after the expression (options go before '--')",
                               argv[dd + 2]);
    if (dd) {
        a->spec = argv[dd + 1];
        argc = dd;
    } else if (argc > 1) {
        a->spec = argv[i++];
    }
    for (; i < argc; i++) {
        const char *s = argv[i];
        int r = opts ? cli_cache_option(&a->cache, "eval", argc, argv, &i) : 0;
        if (r < 0)
            return 1;
        if (r > 0)
            continue;
        if (opts && !strcmp(s, "--")) {
            opts = 0;
        } else if (opts && (!strcmp(s, "--at") || !strncmp(s, "--at=", 5))) {
            const char *v = s[4] == '=' ? s + 5 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return cli_usage_error("eval", "--at needs NAME=VALUE,...");
            if (a->nat == 32)
                return cli_usage_error("eval", "too many --at options");
            a->at[a->nat++] = (Source){"<at>", v, strlen(v)};
        } else if (opts && !strcmp(s, "--grad")) {
            a->grad = 1;
        } else if (opts && !strcmp(s, "--no-rewrite")) {
            a->no_rewrite = 1;
        } else if (opts && !strcmp(s, "--jacobian")) {
            a->jacobian = 1;
        } else if (opts && !strcmp(s, "--hessian")) {
            a->hessian = 1;
        } else if (opts && !strcmp(s, "--tangent")) {
            if (i + 1 >= argc)
                return cli_usage_error("eval", "--tangent needs NAME=VALUE,..., e.g. --tangent x=1,y=0");
            a->tangent = (Source){"<tangent>", argv[i + 1], strlen(argv[i + 1])};
            i++;
        } else if (opts && !strcmp(s, "--json")) {
            a->json = 1;
        } else if (opts && !strcmp(s, "--engine")) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "jit") && strcmp(v, "interp"))
                return cli_usage_error("eval", "--engine must be 'jit' or 'interp', not '%s'", v);
            a->interp = !strcmp(v, "interp");
        } else if (opts && !strcmp(s, "--wrt")) {
            if (i + 1 >= argc)
                return cli_usage_error("eval", "--wrt needs input names, e.g. --wrt x,p");
            a->wrt = argv[++i];
        } else if (opts && !strcmp(s, "--func")) {
            if (i + 1 >= argc)
                return cli_usage_error("eval", "--func needs a function name");
            a->func = argv[++i];
        } else if (opts && s[0] == '-' && s[1]) {
            return cli_usage_error("eval", "unknown option '%s'", s);
        } else if (!a->spec) {
            a->spec = s;
        } else {
            return cli_usage_error("eval", "unexpected argument '%s' (quote the expression as one argument)", s);
        }
    }
    if (!a->spec)
        return cli_usage_error("eval", "missing the expression to evaluate");
    return 0;
}

static Assign *find_assign(Assign *as, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strlen(name) == as[i].len && !strncmp(as[i].name, name, as[i].len))
            return &as[i];
    return NULL;
}

/* Fills in (and params, for networks) from the assignments; reports
 * missing, unknown and misshapen values. */
static int bind_inputs(const Func *f, const Graph *g, const Source *src, Assign *as,
                       int n, double *in, double *params, Diag *d)
{
    char s1[48], s2[48];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (as[i].len == as[j].len && !strncmp(as[i].name, as[j].name, as[i].len) &&
                !as[i].used) {
                diag_error(d, as[i].src, as[i].loc, "'%.*s' is given twice",
                           (int)as[i].len, as[i].name);
                as[i].used = 1;     /* one message is enough */
            }
    uint32_t nin = f->ninputs - f->nparams;
    for (uint32_t k = 0; k < f->ninputs; k++) {
        Shape want = g->node[f->input[k]].shape;
        double *dst = k < nin ? in : params;
        Assign *a = find_assign(as, n, f->input_name[k]);
        if (a && !shape_eq(a->shape, want)) {
            diag_error(d, a->src, a->vloc, "'%s' has shape %s here, but the input is %s",
                       f->input_name[k], shape_str(a->shape, s1), shape_str(want, s2));
            a->used = 1;
        } else if (a) {
            memcpy(dst, a->data, shape_size(want) * sizeof *dst);
            a->used = 1;
        } else if (k >= nin && f->net) {
            net_init_params(f->net, 0, dst);     /* the declared initial values */
        } else {
            diag_error(d, src, f->input_loc[k], "no value for input '%s' (give one with --at %s=VALUE)",
                       f->input_name[k], f->input_name[k]);
        }
        if (k < nin)
            in += shape_size(want);
        else
            params += shape_size(want);
    }
    for (int i = 0; i < n; i++) {
        if (as[i].used)
            continue;
        Buf names = {0};
        for (uint32_t k = 0; k < f->ninputs; k++)
            buf_printf(&names, "%s%s", k ? ", " : "", f->input_name[k]);
        diag_error(d, as[i].src, as[i].loc, "'%.*s' is not an input of %s (its inputs: %s)",
                   (int)as[i].len, as[i].name, f->name, names.data ? names.data : "none");
        buf_free(&names);
    }
    return d->nerrors ? -1 : 0;
}

static void number_json(double v, char out[32])
{
    if (isnan(v))
        strcpy(out, "\"NaN\"");
    else if (isinf(v))
        strcpy(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        num_format(v, out);
}

/* A value as JSON (also used for text): a number, or nested lists. */
static void print_array(const double *v, Shape s, int text)
{
    char num[32];
    if (s.rank == 0) {
        if (text && (isnan(v[0]) || isinf(v[0])))
            printf("%s", isnan(v[0]) ? "NaN" : v[0] > 0 ? "Infinity" : "-Infinity");
        else if (text)
            num_format(v[0], num), printf("%s", num);
        else
            number_json(v[0], num), printf("%s", num);
        return;
    }
    uint32_t rows = s.rank == 1 ? 1 : s.dim[0], cols = s.rank == 1 ? s.dim[0] : s.dim[1];
    if (s.rank == 2)
        printf("[");
    for (uint32_t r = 0; r < rows; r++) {
        printf("%s[", r ? ", " : "");
        for (uint32_t c = 0; c < cols; c++) {
            printf("%s", c ? ", " : "");
            print_array(v + r * cols + c, SHAPE_SCALAR, text);
        }
        printf("]");
    }
    if (s.rank == 2)
        printf("]");
}

/* What eval computed: the value, and per input the gradient (scalar
 * values) or the Jacobian (rows: value elements; columns: input elements). */
typedef struct Result {
    Shape vshape;
    double *value;
    double **deriv;             /* per input, NULL when not asked for */
    Shape *dshape;
    double *jv;                 /* --tangent: J v, of the value's shape */
    double *H;                  /* --hessian: dense n x n by the variables */
    uint32_t n;
    uint32_t *off;              /* per input: its first variable, or
                                   UINT32_MAX when it is not one */
} Result;

/* The Hessian block of inputs a and b: a number for two scalars, else a
 * matrix with a row per element of a. */
static void print_block(const Func *f, const Graph *g, const Result *r, uint32_t a,
                        uint32_t b, int text)
{
    Shape sa = g->node[f->input[a]].shape, sb = g->node[f->input[b]].shape;
    uint32_t na = shape_size(sa), nb = shape_size(sb);
    double *blk = xmalloc((size_t)na * nb * sizeof *blk);
    for (uint32_t i = 0; i < na; i++)
        for (uint32_t j = 0; j < nb; j++)
            blk[i * nb + j] = r->H[(size_t)(r->off[a] + i) * r->n + r->off[b] + j];
    print_array(blk, sa.rank == 0 && sb.rank == 0 ? SHAPE_SCALAR : shape_mat(na, nb), text);
    free(blk);
}

/* "jvp" and "hessian" after the first derivatives. */
static void print_second(const Func *f, const Graph *g, const Result *r, int json, int width)
{
    uint32_t nin = f->ninputs - f->nparams;
    if (r->jv) {
        printf(json ? ", \"jvp\": " : "%-*s %s", width, "jvp",
               r->jv[0] < 0 && r->vshape.rank == 0 ? "" : " ");
        print_array(r->jv, r->vshape, !json);
        if (!json)
            printf("\n");
    }
    if (!r->H)
        return;
    if (json)
        printf(", \"hessian\": {");
    for (uint32_t a = 0, na = 0; a < nin; a++) {
        if (r->off[a] == UINT32_MAX)
            continue;
        if (json)
            printf("%s\"%s\": {", na++ ? ", " : "", f->input_name[a]);
        for (uint32_t b = 0, nb = 0; b < nin; b++) {
            if (r->off[b] == UINT32_MAX)
                continue;
            if (json) {
                printf("%s\"%s\": ", nb++ ? ", " : "", f->input_name[b]);
            } else {
                char label[512];
                snprintf(label, sizeof label, "d2/d%s d%s", f->input_name[a], f->input_name[b]);
                printf("%s  ", label);
            }
            print_block(f, g, r, a, b, !json);
            if (!json)
                printf("\n");
        }
        if (json)
            printf("}");
    }
    if (json)
        printf("}");
}

static void print_result(const Func *f, const Graph *g, const Result *r, int json, const char *key)
{
    if (json) {
        printf("{\"value\": ");
        print_array(r->value, r->vshape, 0);
        if (key) {
            printf(", \"%s\": {", key);
            for (uint32_t k = 0, n = 0; k < f->ninputs - f->nparams; k++) {
                if (!r->deriv[k])
                    continue;           /* not in --wrt */
                printf("%s\"%s\": ", n++ ? ", " : "", f->input_name[k]);
                print_array(r->deriv[k], r->dshape[k], 0);
            }
            printf("}");
        }
        print_second(f, g, r, 1, 0);
        printf("}\n");
        return;
    }
    int width = 5;
    for (uint32_t k = 0; key && k < f->ninputs - f->nparams; k++)
        if (r->deriv[k] && (int)strlen(f->input_name[k]) + 3 > width)
            width = (int)strlen(f->input_name[k]) + 3;
    printf("%-*s %s", width, "value", r->value[0] < 0 && r->vshape.rank == 0 ? "" : " ");
    print_array(r->value, r->vshape, 1);
    printf("\n");
    for (uint32_t k = 0; key && k < f->ninputs - f->nparams; k++) {
        if (!r->deriv[k])
            continue;
        char label[256];
        snprintf(label, sizeof label, "d/d%s", f->input_name[k]);
        printf("%-*s %s", width, label, r->deriv[k][0] < 0 && r->dshape[k].rank == 0 ? "" : " ");
        print_array(r->deriv[k], r->dshape[k], 1);
        printf("\n");
    }
    print_second(f, g, r, 0, width);
}

/* The interpreter with the kernel's signature: value, and the gradient or
 * the VJP with seed v. */
static void interp_call(const Kernel *k, const double *in, const double *params,
                        const double *v, double *out, double *grad, double *gradp)
{
    uint32_t n = k->ninputs, nin = k->ninputs - k->nparams, insize = 0, psize = 0;
    uint32_t ngrad = 0, gsize = 0, gpsize = 0;
    NodeId *inputs = xmalloc((n + 1) * sizeof *inputs);
    NodeId *roots = xmalloc((n + 1) * sizeof *roots);
    for (uint32_t i = 0; i < n; i++) {
        inputs[i] = k->input[i];
        *(i < nin ? &insize : &psize) += shape_size(k->g->node[k->input[i]].shape);
    }
    /* The gradient roots: the inputs of --wrt (all by default), their
     * entries one after another as the generated code writes them. */
    for (uint32_t j = 0; k->grad && j < k->nwrt; j++) {
        uint32_t i = k->wrt[j];
        roots[1 + ngrad++] = k->grad[i];
        *(i < nin ? &gsize : &gpsize) += shape_size(k->g->node[k->input[i]].shape);
    }
    uint32_t vsize = shape_size(k->g->node[k->value].shape);
    double *vals = xmalloc((insize + psize + vsize + 1) * sizeof *vals);
    memcpy(vals, in, insize * sizeof *vals);
    if (psize)
        memcpy(vals + insize, params, psize * sizeof *vals);
    if (k->seed)
        memcpy(vals + insize + psize, v, vsize * sizeof *vals);
    if (k->seed)
        inputs[n] = k->seed;
    roots[0] = k->value;
    double *res = xmalloc((vsize + insize + psize + 1) * sizeof *res);
    interp_eval(k->g, inputs, vals, n + (k->seed ? 1 : 0), roots, grad ? ngrad + 1 : 1, res);
    memcpy(out, res, vsize * sizeof *out);
    if (grad) {
        memcpy(grad, res + vsize, gsize * sizeof *grad);
        if (gradp)
            memcpy(gradp, res + vsize + gsize, gpsize * sizeof *gradp);
    }
    free(inputs);
    free(roots);
    free(vals);
    free(res);
}

typedef struct Runner {
    const Kernel *k;
    Loaded code;
    int interp;
    uint32_t in_size, params_size, out_size;
} Runner;

static void call(const Runner *r, const double *in, const double *params, const double *v,
                 double *out, double *grad, double *gradp)
{
    if (r->interp)
        interp_call(r->k, in, params, v, out, grad, gradp);
    else
        rt_call(&r->code, in, params, v, out, grad, gradp);
}

static int load(Runner *r, const EvalArgs *a, Diag *d)
{
    if (r->interp)
        return 0;
    char *err = NULL;
    gradc_options opt = cli_cache_runtime_options(&a->cache);
    Buf why = {0};
    int rc = rt_load_explained(r->k, &opt, &r->code, a->cache.explain ? &why : NULL, &err);
    for (char *line = why.data; line && *line; line = strchr(line, '\n') + 1)
        fprintf(stderr, "gradc: %.*s\n", (int)strcspn(line, "\n"), line);
    buf_free(&why);
    if (rc != 0) {
        buf_puts(&d->out, err);
        d->nerrors++;
        free(err);
        return -1;
    }
    return 0;
}

/* cli_wrt for eval, which prints derivatives by the named inputs only, not
 * by a network's parameters: at least one of those must be listed. */
static int wrt_inputs(const Func *f, const char *text, uint8_t **wrt, Diag *d)
{
    if (cli_wrt(f, text, 0, wrt, d) != 0)
        return -1;
    for (uint32_t i = 0; i < f->ninputs - f->nparams; i++)
        if ((*wrt)[i])
            return 0;
    diag_plain(d, "--wrt %s: gradc eval prints derivatives by the inputs of %s, not by "
               "its parameters (gradc emit --wrt gives those)", text, f->name);
    free(*wrt);
    *wrt = NULL;
    return -1;
}

/* Value and derivatives: one call for the gradient of a scalar, one VJP
 * per value element for a Jacobian. */
static void evaluate(const Runner *r, const Func *f, const Graph *g, const double *in,
                     const double *params, int want, Result *res)
{
    uint32_t nin = f->ninputs - f->nparams;
    res->vshape = r->k->g->node[r->k->value].shape;
    res->value = xmalloc(r->out_size * sizeof *res->value);
    res->deriv = xmalloc((nin + 1) * sizeof *res->deriv);
    res->dshape = xmalloc((nin + 1) * sizeof *res->dshape);
    double *grad = xmalloc((r->in_size + 1) * sizeof *grad);
    double *gradp = xmalloc((r->params_size + 1) * sizeof *gradp);
    double *v = xmalloc(r->out_size * sizeof *v);
    memset(v, 0, r->out_size * sizeof *v);
    call(r, in, params, v, res->value, NULL, NULL);
    uint32_t rows = res->vshape.rank == 0 ? 1 : r->out_size;
    for (uint32_t k = 0; k < nin; k++) {
        Shape s = g->node[f->input[k]].shape;
        res->dshape[k] = want != 2 || res->vshape.rank == 0 ? s
                       : shape_mat(rows, shape_size(s));
        res->deriv[k] = NULL;           /* inputs not in --wrt have none */
        if (r->k->grad[k] != NODE_NONE)
            res->deriv[k] = xmalloc(rows * shape_size(s) * sizeof **res->deriv);
    }
    for (uint32_t row = 0; want && row < rows; row++) {
        if (res->vshape.rank)
            v[row] = 1.0;
        call(r, in, params, v, res->value, grad, gradp);
        if (res->vshape.rank)
            v[row] = 0.0;
        for (uint32_t k = 0, off = 0; k < nin; k++) {
            uint32_t size = shape_size(g->node[f->input[k]].shape);
            if (!res->deriv[k])
                continue;
            memcpy(res->deriv[k] + row * size, grad + off, size * sizeof *grad);
            off += size;
        }
    }
    if (want != 2 && res->vshape.rank == 0)
        for (uint32_t k = 0; k < nin; k++)
            res->dshape[k] = g->node[f->input[k]].shape;
    free(grad);
    free(gradp);
    free(v);
}

/* The interpreter for f_jvp and f_hess: J v into jv, the variables'
 * gradient into grad and the Hessian's entries into H (when not null). */
static void interp_second(const Kernel *k, const double *in, const double *params,
                          const double *v, double *jv, double *grad, double *H)
{
    uint32_t n = k->ninputs, nin = n - k->nparams, insize = 0, psize = 0, nvar = 0;
    for (uint32_t i = 0; i < n; i++)
        *(i < nin ? &insize : &psize) += shape_size(k->g->node[k->input[i]].shape);
    NodeId *inputs = xmalloc((2 * n + 1) * sizeof *inputs);
    double *vals = xmalloc((2 * insize + psize + 1) * sizeof *vals);
    memcpy(vals, in, insize * sizeof *vals);
    memcpy(vals + insize, params, psize * sizeof *vals);
    uint32_t ninp = 0, nval = insize + psize;
    for (uint32_t i = 0; i < n; i++)
        inputs[ninp++] = k->input[i];
    for (uint32_t i = 0, off = 0; i < nin; i++) {
        uint32_t size = shape_size(k->g->node[k->input[i]].shape);
        if (k->tangent && k->tangent[i]) {
            inputs[ninp++] = k->tangent[i];
            memcpy(vals + nval, v + off, size * sizeof *vals);
            nval += size;
        }
        off += size;
    }
    for (uint32_t j = 0; j < k->nwrt; j++)
        nvar += k->wrt[j] < nin;
    NodeId *roots = xmalloc((1 + nvar + k->hess.nnz) * sizeof *roots);
    uint32_t nroots = 0;
    if (jv) {
        roots[0] = k->jvp;
        interp_eval(k->g, inputs, vals, ninp, roots, 1, jv);
    }
    if (H) {
        for (uint32_t j = 0; j < nvar; j++)
            roots[nroots++] = k->grad[k->wrt[j]];
        for (uint32_t q = 0; q < k->hess.nnz; q++)
            roots[nroots++] = k->hval[q];
        double *res = xmalloc((k->hess.n + k->hess.nnz + 1) * sizeof *res);
        interp_eval(k->g, inputs, vals, ninp, roots, nroots, res);
        memcpy(grad, res, k->hess.n * sizeof *grad);
        memcpy(H, res + k->hess.n, k->hess.nnz * sizeof *H);
        free(res);
    }
    free(inputs);
    free(vals);
    free(roots);
}

/* J v and the dense Hessian by the variables, into res. */
static void evaluate_second(const Runner *r, const Func *f, const double *in,
                            const double *params, const double *v, Result *res)
{
    const Kernel *k = r->k;
    const HessPattern *h = &k->hess;
    int want_h = (k->entries & ENTRY_HESS) != 0;
    if (k->entries & ENTRY_JVP)
        res->jv = xmalloc(r->out_size * sizeof *res->jv);
    double *hs = want_h ? xmalloc((h->nnz + 1) * sizeof *hs) : NULL;
    double *grad = want_h ? xmalloc((h->n + 1) * sizeof *grad) : NULL;
    if (r->interp)
        interp_second(k, in, params, v, res->jv, grad, hs);
    else
        rt_call2(&r->code, in, params, v, res->jv, NULL, grad, hs);
    if (want_h) {
        uint32_t nin = f->ninputs - f->nparams, at = 0;
        res->n = h->n;
        res->H = xcalloc((size_t)h->n * h->n + 1, sizeof *res->H);
        for (uint32_t j = 0; j < h->n; j++)
            for (uint32_t q = h->colptr[j]; q < h->colptr[j + 1]; q++) {
                uint32_t i = h->rowind[q];
                res->H[(size_t)i * h->n + j] = res->H[(size_t)j * h->n + i] = hs[q];
            }
        res->off = xmalloc((nin + 1) * sizeof *res->off);
        for (uint32_t i = 0; i < nin; i++)
            res->off[i] = UINT32_MAX;
        for (uint32_t j = 0; j < k->nwrt; j++)
            if (k->wrt[j] < nin) {
                res->off[k->wrt[j]] = at;
                at += shape_size(k->g->node[k->input[k->wrt[j]]].shape);
            }
    }
    free(hs);
    free(grad);
}

/* The --tangent direction in `in`'s layout: inputs not named move by 0. */
static int bind_tangent(const Func *f, const Graph *g, Assign *as, int n, double *v, Diag *d)
{
    char s1[48], s2[48];
    uint32_t nin = f->ninputs - f->nparams;
    for (uint32_t k = 0; k < nin; k++) {
        Shape want = g->node[f->input[k]].shape;
        Assign *a = find_assign(as, n, f->input_name[k]);
        if (a && !shape_eq(a->shape, want))
            diag_error(d, a->src, a->vloc, "'%s' has shape %s here, but the input is %s",
                       f->input_name[k], shape_str(a->shape, s1), shape_str(want, s2));
        else if (a)
            memcpy(v, a->data, shape_size(want) * sizeof *v);
        else
            memset(v, 0, shape_size(want) * sizeof *v);
        if (a)
            a->used = 1;
        v += shape_size(want);
    }
    for (int i = 0; i < n; i++)
        if (!as[i].used)
            diag_error(d, as[i].src, as[i].loc, "'%.*s' is not an input of %s that a direction can move",
                       (int)as[i].len, as[i].name, f->name);
    return d->nerrors ? -1 : 0;
}

static void result_free(Result *r, uint32_t n)
{
    free(r->jv);
    free(r->H);
    free(r->off);
    for (uint32_t k = 0; k < n; k++)
        free(r->deriv[k]);
    free(r->deriv);
    free(r->dshape);
    free(r->value);
}

int cmd_eval(int argc, char **argv)
{
    EvalArgs a;
    if (parse_args(argc, argv, &a))
        return 1;
    Diag d;
    diag_init(&d);
    Input input;
    Program *p = NULL;
    int rc = 1;
    Assign as[256];
    int nas = 0;
    BareShape shapes[256];
    for (int i = 0; i < a.nat; i++)
        at_parse(&a.at[i], as, 256, &nas, &d);
    for (int i = 0; i < nas; i++)
        shapes[i] = (BareShape){as[i].name, as[i].len, as[i].shape};
    if (input_from_spec_func(&input, a.spec, a.func, &d) != 0)
        goto out;
    input.shapes = shapes;
    input.nshapes = (uint32_t)nas;
    Func *f = input_compile(&input, &p, &d);
    if (!f || d.nerrors)
        goto out;
    p->no_rewrite = a.no_rewrite;
    uint8_t *wrt = NULL;
    if (a.wrt && wrt_inputs(f, a.wrt, &wrt, &d) != 0)
        goto out;
    unsigned entries = ENTRY_VALUE | ENTRY_GRAD | (a.tangent.text ? ENTRY_JVP : 0) |
                       (a.hessian ? ENTRY_HESS : 0);
    const char *why = opt_entries_error(p, f, wrt, entries);
    if (why) {
        diag_plain(&d, "%s: %s", f->name, why);
        free(wrt);
        goto out;
    }
    Kernel *k = opt_kernel_entries(p, f, wrt, entries);
    free(wrt);
    Runner r = {.k = k, .interp = a.interp};
    for (uint32_t i = 0; i < f->ninputs; i++)
        *(i < f->ninputs - f->nparams ? &r.in_size : &r.params_size) +=
            shape_size(p->g->node[f->input[i]].shape);
    r.out_size = shape_size(k->g->node[k->value].shape);
    double *in = xmalloc((r.in_size + 1) * sizeof *in);
    double *params = xmalloc((r.params_size + 1) * sizeof *params);
    double *v = xcalloc(r.in_size + 1, sizeof *v);
    Assign ts[256];
    int nts = 0;
    if (a.tangent.text)
        at_parse(&a.tangent, ts, 256, &nts, &d);
    if (bind_inputs(f, p->g, &input.src, as, nas, in, params, &d) == 0 &&
        bind_tangent(f, p->g, ts, nts, v, &d) == 0 && load(&r, &a, &d) == 0) {
        int want = a.jacobian ? 2 : a.grad ? 1 : 0;
        if (want == 1 && r.out_size > 1 && !a.jacobian)
            want = 2;           /* the gradient of a vector is its Jacobian */
        Result res = {0};
        evaluate(&r, f, p->g, in, params, want, &res);
        if (entries & (ENTRY_JVP | ENTRY_HESS))
            evaluate_second(&r, f, in, params, v, &res);
        print_result(f, p->g, &res, a.json, !want ? NULL : want == 2 ? "jacobian" : "grad");
        result_free(&res, f->ninputs - f->nparams);
        if (!r.interp)
            rt_unload(&r.code);
        rc = 0;
    }
    for (int i = 0; i < nts; i++)
        free(ts[i].data);
    free(in);
    free(params);
    free(v);
    kernel_free(k);
out:
    if (rc)
        report(&d);
    for (int i = 0; i < nas; i++)
        free(as[i].data);
    diag_free(&d);
    program_free(p);
    input_free(&input);
    return rc;
}

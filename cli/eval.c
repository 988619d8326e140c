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
    "  --at NAME=VALUE,...   input values (repeatable); nan and inf allowed\n"
    "  --grad                also print every partial derivative\n"
    "  --json                print {\"value\": v, \"grad\": {...}}\n"
    "  --engine jit|interp   generated C (default) or the reference interpreter\n"
    "  --func NAME           the function to evaluate in a file\n"
    "  --cache PATH          the cache of compiled code to use (docs/cache.md)\n"
    "  --no-cache            neither read nor write the cache\n"
    "  --explain-cache       say on stderr whether the cache hit, and why not\n";

/* One NAME=VALUE assignment taken from --at text. */
typedef struct Assign {
    const char *name;
    size_t len;
    double value;
    int used;
    Loc loc;
    const Source *src;
} Assign;

typedef struct EvalArgs {
    const char *spec;
    Source at[32];
    int nat;
    int grad, json, interp;
    const char *func;
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
    if (argc > 1 && strcmp(argv[1], "--") != 0)
        a->spec = argv[i++];
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
        } else if (opts && !strcmp(s, "--json")) {
            a->json = 1;
        } else if (opts && !strcmp(s, "--engine")) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "jit") && strcmp(v, "interp"))
                return cli_usage_error("eval", "--engine must be 'jit' or 'interp', not '%s'", v);
            a->interp = !strcmp(v, "interp");
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

static Loc at_loc(const Source *s, const char *b, const char *e)
{
    Loc l = {1, (int)(b - s->text) + 1, 1, (int)(e - s->text) + 1};
    return l;
}

/* Splits "x=1,y=-2" into assignments, reporting each malformed part. */
static int parse_at(const Source *s, Assign *out, int max, int *n, Diag *d)
{
    const char *p = s->text, *end = s->text + s->len;
    while (p <= end) {
        const char *stop = memchr(p, ',', (size_t)(end - p));
        if (!stop)
            stop = end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *nb = p, *ne = eq ? eq : stop;
        while (nb < ne && isspace((unsigned char)*nb)) nb++;
        while (ne > nb && isspace((unsigned char)ne[-1])) ne--;
        int ident = ne > nb && (isalpha((unsigned char)*nb) || *nb == '_');
        for (const char *q = nb; q < ne && ident; q++)
            ident = isalnum((unsigned char)*q) || *q == '_';
        if (!eq || !ident) {
            diag_error(d, s, at_loc(s, p, stop > p ? stop : p + 1),
                       "expected NAME=VALUE, e.g. --at x=1.5,y=-2");
        } else {
            const char *vb = eq + 1, *ve = stop;
            while (vb < ve && isspace((unsigned char)*vb)) vb++;
            while (ve > vb && isspace((unsigned char)ve[-1])) ve--;
            double v;
            if (!num_parse(vb, (size_t)(ve - vb), &v))
                diag_error(d, s, at_loc(s, vb, ve > vb ? ve : vb + 1),
                           "'%.*s' is not a number", (int)(ve - vb), vb);
            else if (*n == max)
                diag_error(d, s, at_loc(s, nb, ne), "too many values");
            else
                out[(*n)++] = (Assign){nb, (size_t)(ne - nb), v, 0, at_loc(s, nb, ne), s};
        }
        p = stop + 1;
    }
    return 0;
}

static Assign *find_assign(Assign *as, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strlen(name) == as[i].len && !strncmp(as[i].name, name, as[i].len))
            return &as[i];
    return NULL;
}

/* Matches values to the function's inputs; reports missing and unknown. */
static int bind_inputs(const Func *f, const Source *src, Assign *as, int n,
                       double *in, Diag *d)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (as[i].len == as[j].len && !strncmp(as[i].name, as[j].name, as[i].len))
                diag_error(d, as[i].src, as[i].loc, "'%.*s' is given twice",
                           (int)as[i].len, as[i].name);
    for (uint32_t k = 0; k < f->ninputs; k++) {
        Assign *a = find_assign(as, n, f->input_name[k]);
        if (a) {
            in[k] = a->value;
            a->used = 1;
            continue;
        }
        diag_error(d, src, f->input_loc[k], "no value for input '%s' (give one with --at %s=VALUE)",
                   f->input_name[k], f->input_name[k]);
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

static void number_text(double v, char out[34])
{
    char num[32];
    if (isnan(v))
        strcpy(num, "NaN");
    else if (isinf(v))
        strcpy(num, v > 0 ? "Infinity" : "-Infinity");
    else
        num_format(v, num);
    snprintf(out, 34, "%s%s", num[0] == '-' ? "" : " ", num);
}

static void print_result(const Func *f, double value, const double *grad, int json)
{
    char num[34];
    if (json) {
        number_json(value, num);
        printf("{\"value\": %s", num);
        if (grad) {
            printf(", \"grad\": {");
            for (uint32_t k = 0; k < f->ninputs; k++) {
                number_json(grad[k], num);
                printf("%s\"%s\": %s", k ? ", " : "", f->input_name[k], num);
            }
            printf("}");
        }
        printf("}\n");
        return;
    }
    int width = 5;
    for (uint32_t k = 0; grad && k < f->ninputs; k++)
        if ((int)strlen(f->input_name[k]) + 3 > width)
            width = (int)strlen(f->input_name[k]) + 3;
    number_text(value, num);
    printf("%-*s %s\n", width, "value", num);
    for (uint32_t k = 0; grad && k < f->ninputs; k++) {
        char label[256];
        snprintf(label, sizeof label, "d/d%s", f->input_name[k]);
        number_text(grad[k], num);
        printf("%-*s %s\n", width, label, num);
    }
}

static int run(const Kernel *k, const double *in, const EvalArgs *a,
               double *value, double *grad, Diag *d)
{
    if (a->interp) {
        uint32_t n = k->ninputs + 1;
        NodeId *roots = xmalloc(n * sizeof *roots);
        double *out = xmalloc(n * sizeof *out);
        roots[0] = k->value;
        for (uint32_t i = 0; i < k->ninputs; i++)
            roots[1 + i] = k->grad[i];
        interp_eval(k->g, k->input, in, k->ninputs, roots, n, out);
        *value = out[0];
        memcpy(grad, out + 1, k->ninputs * sizeof *grad);
        free(roots);
        free(out);
        return 0;
    }
    Loaded code;
    char *err = NULL;
    gradc_options opt = cli_cache_runtime_options(&a->cache);
    Buf why = {0};
    int rc = rt_load_explained(k, &opt, &code, a->cache.explain ? &why : NULL, &err);
    for (char *line = why.data; line && *line; line = strchr(line, '\n') + 1)
        fprintf(stderr, "gradc: %.*s\n", (int)strcspn(line, "\n"), line);
    buf_free(&why);
    if (rc != 0) {
        buf_puts(&d->out, err);
        d->nerrors++;
        free(err);
        return -1;
    }
    *value = rt_grad(&code, in, grad);
    rt_unload(&code);
    return 0;
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
    if (input_from_spec(&input, a.spec, &d) != 0)
        goto out;
    if (a.func && input.bare) {
        diag_plain(&d, "--func needs a file: '%s' is not one", a.spec);
        goto out;
    }
    if (a.func)
        input.func = a.func;
    Func *f = input_compile(&input, &p, &d);
    Assign as[256];
    int nas = 0;
    for (int i = 0; i < a.nat; i++)
        parse_at(&a.at[i], as, 256, &nas, &d);
    if (!f || d.nerrors)
        goto out;
    double *in = xmalloc((f->ninputs + 1) * sizeof *in);
    double *grad = xmalloc((f->ninputs + 1) * sizeof *grad);
    if (bind_inputs(f, &input.src, as, nas, in, &d) == 0) {
        Kernel *k = opt_kernel(p, f, 1);
        double value;
        if (run(k, in, &a, &value, grad, &d) == 0) {
            print_result(f, value, a.grad ? grad : NULL, a.json);
            rc = 0;
        }
        kernel_free(k);
    }
    free(in);
    free(grad);
out:
    if (rc)
        report(&d);
    diag_free(&d);
    program_free(p);
    input_free(&input);
    return rc;
}

/* trace.c — one function's forward and backward pass, node by node, the
 * way the notes work a circuit: each operation is a gate with one or two
 * inputs, named f1..fN in the order the formula was written; backwards,
 * each gate multiplies its local gradient by the upstream gradient.
 *
 * The nodes are those of the front end's graph, before any rewrite, and
 * every number comes out of generated C: the adjoints, local gradients
 * and products are IR (diff.c and the ops' own rules), and one kernel
 * carries all of them out as extra gradient entries (see carry_out). */
#include "trace.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TRACE_MAX_OPS = 5000 };

/* ---- --at ---- */

static Loc at_loc(const Source *s, const char *b, const char *e)
{
    Loc l = {1, (int)(b - s->text) + 1, 1, (int)(e - s->text) + 1};
    return l;
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        ++*b;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        --*e;
}

/* One "NAME=VALUE" part of an --at text. */
static void bind_one(const Func *f, const Source *s, const char *p, const char *stop,
                     double *in, uint8_t *given, Diag *d)
{
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    const char *nb = p, *ne = eq ? eq : stop;
    trim(&nb, &ne);
    if (!eq || nb == ne) {
        diag_error(d, s, at_loc(s, p, stop > p ? stop : p + 1),
                   "expected NAME=VALUE, e.g. --at x=1.5,y=-2");
        return;
    }
    const char *vb = eq + 1, *ve = stop;
    trim(&vb, &ve);
    double v;
    if (!num_parse(vb, (size_t)(ve - vb), &v)) {
        diag_error(d, s, at_loc(s, vb, ve > vb ? ve : vb + 1), "'%.*s' is not a number",
                   (int)(ve - vb), vb);
        return;
    }
    for (uint32_t i = 0; i < f->ninputs; i++) {
        if (strlen(f->input_name[i]) != (size_t)(ne - nb) ||
            strncmp(f->input_name[i], nb, (size_t)(ne - nb)))
            continue;
        if (given[i])
            diag_error(d, s, at_loc(s, nb, ne), "'%.*s' is given twice", (int)(ne - nb), nb);
        in[i] = v;
        given[i] = 1;
        return;
    }
    diag_error(d, s, at_loc(s, nb, ne), "'%.*s' is not an input of %s", (int)(ne - nb), nb,
               f->name);
}

int trace_bind(const Func *f, const Source *src, const Source *at, int nat,
               double *in, Diag *d)
{
    uint8_t *given = xmalloc(f->ninputs + 1);
    memset(given, 0, f->ninputs + 1);
    for (int k = 0; k < nat; k++) {
        const Source *s = &at[k];
        const char *p = s->text, *end = s->text + s->len;
        while (p <= end) {
            const char *stop = memchr(p, ',', (size_t)(end - p));
            if (!stop)
                stop = end;
            bind_one(f, s, p, stop, in, given, d);
            p = stop + 1;
        }
    }
    for (uint32_t i = 0; i < f->ninputs; i++)
        if (!given[i])
            diag_error(d, src, f->input_loc[i], "no value for input '%s' (give one with --at %s=VALUE)",
                       f->input_name[i], f->input_name[i]);
    free(given);
    return d->nerrors ? -1 : 0;
}

/* ---- the trace ---- */

static void written_order(Trace *t);

void trace_num(double v, int digits, char out[48])
{
    if (isnan(v) || isinf(v)) {
        num_format(v, out);
        return;
    }
    if (digits >= 17) {
        num_format(v, out);
        return;
    }
    if (v != 0 && fabs(v) < 0.5 * pow(10, -digits)) {
        snprintf(out, 48, "%.*g", digits > 0 ? digits : 1, v);
        return;
    }
    snprintf(out, 48, "%.*f", digits, v);
    if (strchr(out, '.')) {
        size_t n = strlen(out);
        while (out[n - 1] == '0')
            out[--n] = 0;
        if (out[n - 1] == '.')
            out[--n] = 0;
    }
    if (!strcmp(out, "-0"))
        strcpy(out, "0");
}

static const char *infix(int op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_POW: return "^";
    default: return NULL;
    }
}

static void operand(const Trace *t, uint32_t i, int values, int digits, int paren, Buf *out)
{
    const TraceNode *a = &t->node[i];
    if (!values || a->kind == TRACE_CONST) {
        buf_puts(out, a->label);
        return;
    }
    char num[48];
    trace_num(a->value, digits, num);
    buf_printf(out, paren && num[0] == '-' ? "(%s)" : "%s", num);
}

void trace_expr(const Trace *t, const TraceNode *n, int values, int digits, Buf *out)
{
    const char *sym = infix(n->op);
    if (sym && n->nargs == 2) {
        operand(t, n->arg[0], values, digits, 1, out);
        buf_printf(out, " %s ", sym);
        operand(t, n->arg[1], values, digits, 1, out);
    } else if (n->op == OP_NEG) {
        buf_puts(out, values ? "-(" : "-");
        operand(t, n->arg[0], values, digits, 0, out);
        buf_puts(out, values ? ")" : "");
    } else {
        buf_printf(out, "%s(", op_info[n->op].name);
        for (int k = 0; k < n->nargs; k++) {
            if (k)
                buf_puts(out, ", ");
            operand(t, n->arg[k], values, digits, 0, out);
        }
        buf_puts(out, ")");
    }
}

/* A label as an operand: negative constants in parentheses. */
static const char *lab(const Trace *t, uint32_t i, char buf[48])
{
    const char *s = t->node[i].label;
    if (s[0] != '-')
        return s;
    snprintf(buf, 48, "(%s)", s);
    return buf;
}

void trace_local_rule(const Trace *t, const TraceNode *n, int k, Buf *out)
{
    char ba[48], bb[48];
    const char *a = lab(t, n->arg[0], ba);
    const char *b = n->nargs > 1 ? lab(t, n->arg[1], bb) : "";
    const char *y = n->label;
    switch (n->op) {
    case OP_ADD: buf_puts(out, "1"); break;
    case OP_SUB: buf_puts(out, k ? "-1" : "1"); break;
    case OP_MUL: buf_puts(out, k ? a : b); break;
    case OP_DIV:
        if (k)
            buf_printf(out, "-%s/%s^2", a, b);
        else
            buf_printf(out, "1/%s", b);
        break;
    case OP_NEG: buf_puts(out, "-1"); break;
    case OP_POW:
        if (k)
            buf_printf(out, "%s*log(%s)", y, a);
        else if (t->node[n->arg[1]].kind == TRACE_CONST) {
            char e[48];
            trace_num(t->node[n->arg[1]].value - 1, 17, e);
            if (!strcmp(e, "1"))
                buf_printf(out, "%s*%s", b, a);
            else
                buf_printf(out, "%s*%s^%s%s%s", b, a, e[0] == '-' ? "(" : "", e, e[0] == '-' ? ")" : "");
        } else
            buf_printf(out, "%s*%s^(%s-1)", b, a, b);
        break;
    case OP_EXP: buf_printf(out, "exp(%s)", a); break;
    case OP_EXPM1: buf_printf(out, "exp(%s)", a); break;
    case OP_LOG: buf_printf(out, "1/%s", a); break;
    case OP_LOG1P: buf_printf(out, "1/(1+%s)", a); break;
    case OP_SQRT: buf_printf(out, "1/(2*sqrt(%s))", a); break;
    case OP_SIN: buf_printf(out, "cos(%s)", a); break;
    case OP_COS: buf_printf(out, "-sin(%s)", a); break;
    case OP_TAN: buf_printf(out, "1+tan(%s)^2", a); break;
    case OP_ASIN: buf_printf(out, "1/sqrt(1-%s^2)", a); break;
    case OP_ACOS: buf_printf(out, "-1/sqrt(1-%s^2)", a); break;
    case OP_ATAN: buf_printf(out, "1/(1+%s^2)", a); break;
    case OP_ATAN2: buf_printf(out, k ? "-%s/(%s^2+%s^2)" : "%s/(%s^2+%s^2)", k ? a : b, a, b); break;
    case OP_SINH: buf_printf(out, "cosh(%s)", a); break;
    case OP_COSH: buf_printf(out, "sinh(%s)", a); break;
    case OP_TANH: buf_printf(out, "1-%s^2", y); break;
    case OP_HYPOT: buf_printf(out, "%s/%s", k ? b : a, y); break;
    case OP_ERF: buf_printf(out, "2/sqrt(pi)*exp(-%s^2)", a); break;
    case OP_SIGMOID: buf_printf(out, "%s*(1-%s)", y, y); break;
    case OP_SOFTPLUS: buf_printf(out, "sigmoid(%s)", a); break;
    case OP_RELU: buf_printf(out, "[%s > 0]", a); break;
    case OP_ABS: buf_printf(out, "sign(%s)", a); break;
    case OP_MAX: buf_printf(out, k ? "[%s < %s]" : "[%s >= %s]", a, b); break;
    case OP_MIN: buf_printf(out, k ? "[%s > %s]" : "[%s <= %s]", a, b); break;
    case OP_STEP: case OP_GE: case OP_SIGN: buf_puts(out, "0"); break;
    default: buf_puts(out, "local"); break;
    }
}

/* Everything wanted (nodes of g) is brought out of one kernel: with a
 * fresh input t_j per wanted node w_j, the kernel's function is
 *     result + t_1 * w_1 + ... + t_m * w_m
 * and its gradient by t_j is w_j's value, computed by the generated C.
 * The t_j are called with 0, so the value stays the result's. */
static int carry_out(Program *p, const Func *f, const double *in, const NodeId *w,
                     uint32_t m, double *out, Diag *d)
{
    Graph *g = p->g;
    Func s = {0};
    s.name = f->name;
    s.ninputs = f->ninputs + m;
    s.input = xmalloc((s.ninputs + 1) * sizeof *s.input);
    s.input_name = xmalloc((s.ninputs + 1) * sizeof *s.input_name);
    NodeId sum = f->result;
    for (uint32_t i = 0; i < f->ninputs; i++) {
        s.input[i] = f->input[i];
        s.input_name[i] = f->input_name[i];
    }
    for (uint32_t j = 0; j < m; j++) {
        NodeId tj = ir_input(g, SHAPE_SCALAR);
        s.input[f->ninputs + j] = tj;
        s.input_name[f->ninputs + j] = "t";
        sum = ir_add(g, sum, ir_mul(g, tj, w[j]));
    }
    s.result = sum;
    Kernel *k = opt_kernel(p, &s, 1);
    Loaded code;
    char *err = NULL;
    int rc = rt_load(k, NULL, &code, &err);
    kernel_free(k);
    if (rc == 0) {
        double *x = xmalloc((s.ninputs + 1) * sizeof *x);
        double *grad = xmalloc((s.ninputs + 1) * sizeof *grad);
        memcpy(x, in, f->ninputs * sizeof *x);
        memset(x + f->ninputs, 0, m * sizeof *x);
        rt_grad(&code, x, grad);
        memcpy(out, grad + f->ninputs, m * sizeof *out);
        rt_unload(&code);
        free(x);
        free(grad);
    } else {
        buf_puts(&d->out, err ? err : "gradc: error: cannot compile the trace\n");
        d->nerrors++;
    }
    free(err);
    free(s.input);
    free(s.input_name);
    return rc;
}

/* Slot k of the wanted list, or the value itself when it is known. */
typedef struct Want {
    NodeId *node;
    double **dest;
    uint32_t n, cap;
} Want;

/* The reference interpreter must agree with the generated C; a
 * disagreement is a bug in one of them, worth a warning, never silence. */
static void cross_check(Program *p, const Func *f, const double *in, const Want *w,
                        const double *vals)
{
    double *ref = xmalloc((w->n + 1) * sizeof *ref);
    interp_eval(p->g, f->input, in, f->ninputs, w->node, w->n, ref);
    for (uint32_t j = 0; j < w->n; j++) {
        double a = vals[j], b = ref[j];
        if ((isnan(a) && isnan(b)) || a == b || fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b)))
            continue;
        fprintf(stderr, "gradc: warning: the generated C gives %.17g where the reference "
                "interpreter gives %.17g (node %%%u)\n", a, b, w->node[j]);
        break;
    }
    free(ref);
}

static void want(Program *p, const Func *f, const double *in, Want *w, NodeId id, double *dest)
{
    const Node *n = &p->g->node[id];
    if (n->op == OP_CONST) {
        *dest = n->num;
        return;
    }
    if (n->op == OP_INPUT)
        for (uint32_t i = 0; i < f->ninputs; i++)
            if (f->input[i] == id) {
                *dest = in[i];
                return;
            }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->node = xrealloc(w->node, w->cap * sizeof *w->node);
        w->dest = xrealloc(w->dest, w->cap * sizeof *w->dest);
    }
    w->node[w->n] = id;
    w->dest[w->n++] = dest;
}

/* The reachable nodes, in index order (operands first), labelled. */
static int collect(Program *p, const Func *f, Trace *t, uint32_t *index, Diag *d)
{
    Graph *g = p->g;
    uint8_t *mark = xmalloc(g->n);
    ir_mark_reachable(g, &f->result, 1, mark);
    uint32_t count = 0, ops = 0;
    for (NodeId i = 1; i < g->n; i++)
        count += mark[i];
    t->node = xmalloc((count + 1) * sizeof *t->node);
    memset(t->node, 0, (count + 1) * sizeof *t->node);
    for (NodeId i = 1; i < g->n; i++) {
        if (!mark[i])
            continue;
        const Node *n = &g->node[i];
        TraceNode *x = &t->node[t->n];
        if (n->shape.rank != 0) {
            diag_plain(d, "explain and graph work on scalar formulas; '%s' has a value of %u elements "
                       "(use 'gradc eval --jacobian' for vectors)", f->name, shape_size(n->shape));
            break;
        }
        index[i] = t->n++;
        x->id = i;
        if (n->op == OP_CONST) {
            x->kind = TRACE_CONST;
            num_format(n->num, x->label);
        } else if (n->op == OP_INPUT) {
            x->kind = TRACE_INPUT;
            for (uint32_t k = 0; k < f->ninputs; k++)
                if (f->input[k] == i) {
                    snprintf(x->label, sizeof x->label, "%s", f->input_name[k]);
                    t->input_node[k] = t->n - 1;
                }
        } else {
            x->kind = TRACE_OP;
            x->op = n->op;
            x->nargs = op_info[n->op].arity;
            snprintf(x->label, sizeof x->label, "f%u", ++ops);
            for (int k = 0; k < x->nargs; k++) {
                x->arg[k] = index[n->arg[k]];
                t->node[x->arg[k]].uses++;
            }
        }
    }
    free(mark);
    if (!d->nerrors && ops > TRACE_MAX_OPS)
        diag_plain(d, "'%s' has %u operations; explain and graph are meant for formulas of at most %d",
                   f->name, ops, TRACE_MAX_OPS);
    return d->nerrors ? -1 : 0;
}

int trace_build(Program *p, const Func *f, const double *in, Trace *t, Diag *d)
{
    Graph *g = p->g;
    memset(t, 0, sizeof *t);
    t->f = f;
    t->in = xmalloc((f->ninputs + 1) * sizeof *t->in);
    memcpy(t->in, in, f->ninputs * sizeof *t->in);
    t->input_node = xmalloc((f->ninputs + 1) * sizeof *t->input_node);
    memset(t->input_node, 0xff, (f->ninputs + 1) * sizeof *t->input_node);
    uint32_t *index = xmalloc(g->n * sizeof *index);
    if (collect(p, f, t, index, d) != 0) {
        free(index);
        return -1;
    }
    free(index);
    NodeId *ids = xmalloc((t->n + 1) * sizeof *ids), *adj = xmalloc((t->n + 1) * sizeof *adj);
    for (uint32_t i = 0; i < t->n; i++)
        ids[i] = t->node[i].id;
    diff_reverse(g, f->result, NODE_NONE, ids, t->n, adj);
    Want w = {0};
    NodeId one = ir_const(g, 1.0);
    for (uint32_t i = 0; i < t->n; i++) {
        TraceNode *x = &t->node[i];
        want(p, f, in, &w, x->id, &x->value);
        want(p, f, in, &w, adj[i], &x->adj);
        if (x->kind != TRACE_OP)
            continue;
        /* The op's own rule with upstream 1 is its local gradient. */
        Vjp lv = {.want = {1, 1}}, pv = {.want = {1, 1}};
        op_info[x->op].vjp(g, x->id, one, &lv);
        op_info[x->op].vjp(g, x->id, adj[i], &pv);
        for (int k = 0; k < x->nargs; k++) {
            NodeId loc = vjp_value(g, &lv, k), prod = vjp_value(g, &pv, k);
            want(p, f, in, &w, loc ? loc : ir_const(g, 0.0), &x->local[k]);
            want(p, f, in, &w, prod ? prod : ir_const(g, 0.0), &x->product[k]);
        }
    }
    double *vals = xmalloc((w.n + 1) * sizeof *vals);
    int rc = w.n ? carry_out(p, f, in, w.node, w.n, vals, d) : 0;
    if (rc == 0)
        cross_check(p, f, in, &w, vals);
    for (uint32_t j = 0; rc == 0 && j < w.n; j++)
        *w.dest[j] = vals[j];
    written_order(t);
    free(vals);
    free(w.node);
    free(w.dest);
    free(ids);
    free(adj);
    return rc;
}

/* Where an operand first appears in the formula: operations and constants
 * are made as the parser meets them, an input at its first use (ties go
 * to the input order). */
static uint64_t written_at(const Trace *t, uint32_t i, const uint32_t *first_use)
{
    const TraceNode *x = &t->node[i];
    return x->kind == TRACE_INPUT ? ((uint64_t)first_use[i] << 32) | x->id
                                  : ((uint64_t)x->id << 32);
}

/* The graph orders commutative operands canonically (hash-consing needs
 * that); shown as written instead: w0 * x0, f3 + w2, 1 + f6. */
static void written_order(Trace *t)
{
    uint32_t *first_use = xmalloc((t->n + 1) * sizeof *first_use);
    for (uint32_t i = 0; i < t->n; i++)
        first_use[i] = UINT32_MAX;
    for (uint32_t i = 0; i < t->n; i++)
        for (int k = 0; k < t->node[i].nargs; k++)
            if (first_use[t->node[i].arg[k]] == UINT32_MAX)
                first_use[t->node[i].arg[k]] = t->node[i].id;
    for (uint32_t i = 0; i < t->n; i++) {
        TraceNode *x = &t->node[i];
        if (x->kind != TRACE_OP || x->nargs != 2 || !(op_info[x->op].flags & OPF_COMM))
            continue;
        if (written_at(t, x->arg[0], first_use) <= written_at(t, x->arg[1], first_use))
            continue;
        uint32_t a = x->arg[0];
        double l = x->local[0], p = x->product[0];
        x->arg[0] = x->arg[1], x->local[0] = x->local[1], x->product[0] = x->product[1];
        x->arg[1] = a, x->local[1] = l, x->product[1] = p;
    }
    free(first_use);
}

void trace_free(Trace *t)
{
    free(t->node);
    free(t->in);
    free(t->input_node);
    memset(t, 0, sizeof *t);
}

/* ---- arguments shared by explain and graph ---- */

int trace_args(const char *cmd, const char *help, int argc, char **argv, TraceArgs *a)
{
    memset(a, 0, sizeof *a);
    a->digits = 4;
    int i = 1, opts = 1;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(help, stdout);
        exit(0);
    }
    if (argc > 1 && strcmp(argv[1], "--") != 0)
        a->spec = argv[i++];
    for (; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (opts && !strcmp(s, "--")) {
            opts = 0;
        } else if (opts && (!strcmp(s, "--at") || !strncmp(s, "--at=", 5))) {
            const char *v = s[4] == '=' ? s + 5 : (i++, next);
            if (!v)
                return cli_usage_error(cmd, "--at needs NAME=VALUE,...");
            if (a->nat == 32)
                return cli_usage_error(cmd, "too many --at options");
            a->at[a->nat++] = (Source){"<at>", v, strlen(v)};
        } else if (opts && !strcmp(s, "--json")) {
            a->json = 1;
        } else if (opts && !strcmp(s, "--func")) {
            if (!next)
                return cli_usage_error(cmd, "--func needs a function name");
            a->func = argv[++i];
        } else if (opts && (!strcmp(s, "-o") || !strcmp(s, "--output"))) {
            if (!next)
                return cli_usage_error(cmd, "%s needs a file name", s);
            a->out = argv[++i];
        } else if (opts && !strcmp(s, "--digits")) {
            char *end;
            long v = next ? strtol(next, &end, 10) : -1;
            if (!next || *end || v < 0 || v > 17)
                return cli_usage_error(cmd, "--digits needs a number from 0 to 17");
            a->digits = (int)v;
            i++;
        } else if (opts && s[0] == '-' && s[1]) {
            return cli_usage_error(cmd, "unknown option '%s'", s);
        } else if (!a->spec) {
            a->spec = s;
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s' (quote the expression as one argument)", s);
        }
    }
    if (!a->spec)
        return cli_usage_error(cmd, "missing the expression (or FILE:FUNC)");
    return 0;
}

int trace_run(const TraceArgs *a, Input *input, Program **p, Trace *t, Diag *d)
{
    memset(t, 0, sizeof *t);
    *p = NULL;
    if (input_from_spec_func(input, a->spec, a->func, d) != 0)
        return -1;
    Func *f = input_compile(input, p, d);
    if (!f || d->nerrors)
        return -1;
    (*p)->no_rewrite = 1;       /* the computation as written */
    double *in = xmalloc((f->ninputs + 1) * sizeof *in);
    int rc = trace_bind(f, &input->src, a->at, a->nat, in, d);
    if (rc == 0)
        rc = trace_build(*p, f, in, t, d);
    free(in);
    return rc;
}

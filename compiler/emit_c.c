/* emit_c.c — C99 from a kernel: straight-line code, one `const double`
 * temporary per node, operands referred to as atoms (a temporary, in[i] or
 * a literal). Only <math.h> is included; there are no globals but a const
 * table of input names, and every external symbol starts with the prefix
 * and the function's name, so several generated files link together.
 *
 * Stack budget: a function whose temporaries exceed max_locals keeps its
 * values in an array of slots reused after each value's last use; if even
 * that exceeds the budget, the caller provides the array (NAME_work and
 * NAME_grad_work, with NAME_WORK_SIZE in the header). */
#include "gradc.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum Mode { TEMPS, LOCAL_SLOTS, WORK_SLOTS } Mode;

typedef struct Plan {
    Mode mode;
    uint32_t nslots;
    uint32_t *slot;             /* per node: temporary number or slot */
    uint8_t *mark;              /* per node: needed by this function */
} Plan;

/* C keywords and names the generated code itself uses (math.h functions). */
static const char *const reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "_Bool", "_Complex",
    "_Imaginary", "main", "exp", "log", "log1p", "expm1", "sqrt", "sin",
    "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
    "hypot", "erf", "pow", "fabs", "fmax", "fmin", "in", "grad", "work",
    "NAN", "INFINITY", "HUGE_VAL", NULL,
};

int emit_valid_c_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    for (int i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return 0;
    return strlen(s) < 200;
}

/* A double as C source that reads back exactly. */
static void literal(double v, char out[48])
{
    if (isnan(v)) {
        strcpy(out, "NAN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "(-INFINITY)" : "INFINITY");
        return;
    }
    char num[32];
    num_format(v, num);
    int plain = !strpbrk(num, ".e");
    if (signbit(v))
        snprintf(out, 48, "(%s%s)", num, plain ? ".0" : "");
    else
        snprintf(out, 48, "%s%s", num, plain ? ".0" : "");
}

static void atom(const Graph *g, const Plan *p, NodeId id, char out[48])
{
    const Node *n = &g->node[id];
    if (n->op == OP_CONST)
        literal(n->num, out);
    else if (n->op == OP_INPUT)
        snprintf(out, 48, "in[%d]", n->aux);
    else if (p->mode == TEMPS)
        snprintf(out, 48, "t%u", p->slot[id]);
    else
        snprintf(out, 48, "w[%u]", p->slot[id]);
}

/* The node's C expression: its op's template with operand atoms. */
static void expression(const Graph *g, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = &g->node[id];
    char a[2][48];
    for (int k = 0; k < op_info[n->op].arity; k++)
        atom(g, p, n->arg[k], a[k]);
    const char *t = op_info[n->op].c;
    /* pow(x, 2) and pow(x, -1) as x*x and 1/x: exact, and much faster. */
    if (n->op == OP_POW && ir_is_const(g, n->arg[1], 2.0))
        t = "$0 * $0";
    else if (n->op == OP_POW && ir_is_const(g, n->arg[1], -1.0))
        t = "1.0 / $0";
    for (; *t; t++) {
        if (t[0] == '$' && (t[1] == '0' || t[1] == '1')) {
            buf_puts(out, a[t[1] - '0']);
            t++;
        } else {
            buf_put(out, t, 1);
        }
    }
}

static int is_leaf(const Node *n)
{
    return n->op == OP_CONST || n->op == OP_INPUT;
}

/* Slots reused after each value's last use (linear scan). */
static uint32_t assign_slots(const Graph *g, Plan *p, const NodeId *roots,
                             uint32_t nroots)
{
    uint32_t *last = xmalloc(g->n * sizeof *last);
    uint32_t *free_slots = xmalloc(g->n * sizeof *free_slots);
    uint32_t nfree = 0, nslots = 0;
    memset(last, 0, g->n * sizeof *last);
    for (NodeId i = 1; i < g->n; i++)
        if (p->mark[i])
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                last[g->node[i].arg[k]] = i;
    for (uint32_t r = 0; r < nroots; r++)
        last[roots[r]] = UINT32_MAX;
    for (NodeId i = 1; i < g->n; i++) {
        const Node *n = &g->node[i];
        if (!p->mark[i] || is_leaf(n))
            continue;
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId a = n->arg[k];
            if (last[a] == i && !is_leaf(&g->node[a])) {
                free_slots[nfree++] = p->slot[a];
                last[a] = 0;    /* released once, even for x*x */
            }
        }
        p->slot[i] = nfree ? free_slots[--nfree] : nslots++;
    }
    free(last);
    free(free_slots);
    return nslots;
}

static void plan(const Kernel *k, const EmitOptions *o, const NodeId *roots,
                 uint32_t nroots, Plan *p)
{
    const Graph *g = k->g;
    int budget = o && o->max_locals > 0 ? o->max_locals : EMIT_DEFAULT_MAX_LOCALS;
    p->mark = xmalloc(g->n);
    p->slot = xmalloc(g->n * sizeof *p->slot);
    ir_mark_reachable(g, roots, nroots, p->mark);
    uint32_t temps = 0;
    for (NodeId i = 1; i < g->n; i++)
        if (p->mark[i] && !is_leaf(&g->node[i]))
            p->slot[i] = temps++;
    p->mode = TEMPS;
    p->nslots = temps;
    if (temps <= (uint32_t)budget)
        return;
    p->nslots = assign_slots(g, p, roots, nroots);
    p->mode = p->nslots <= (uint32_t)budget ? LOCAL_SLOTS : WORK_SLOTS;
}

static void plan_free(Plan *p)
{
    free(p->mark);
    free(p->slot);
}

static void body(const Kernel *k, const Plan *p, Buf *out)
{
    const Graph *g = k->g;
    if (p->mode == LOCAL_SLOTS)
        buf_printf(out, "    double w[%u];\n", p->nslots ? p->nslots : 1);
    for (NodeId i = 1; i < g->n; i++) {
        if (!p->mark[i] || is_leaf(&g->node[i]))
            continue;
        if (p->mode == TEMPS)
            buf_printf(out, "    const double t%u = ", p->slot[i]);
        else
            buf_printf(out, "    w[%u] = ", p->slot[i]);
        expression(g, p, i, out);
        buf_puts(out, ";\n");
    }
}

static int uses_inputs(const Kernel *k, const Plan *p)
{
    for (uint32_t i = 0; i < k->ninputs; i++)
        if (p->mark[k->input[i]])
            return 1;
    return 0;
}

static void symbol(const Kernel *k, const EmitOptions *o, char *out, size_t n)
{
    const char *name = o && o->name ? o->name : k->name;
    snprintf(out, n, "%s%s", o && o->prefix ? o->prefix : "", name);
}

static void macro_name(const char *sym, const char *suffix, char *out, size_t n)
{
    size_t i = 0;
    for (; sym[i] && i + 1 < n; i++)
        out[i] = (char)toupper((unsigned char)sym[i]);
    out[i] = 0;
    strncat(out, suffix, n - strlen(out) - 1);
}

static void value_function(const Kernel *k, const EmitOptions *o,
                           const char *sym, Mode want, Buf *out)
{
    Plan p;
    plan(k, o, &k->value, 1, &p);
    if (want == WORK_SLOTS && p.mode != TEMPS)
        p.mode = WORK_SLOTS;
    char a[48];
    if (p.mode == WORK_SLOTS)
        buf_printf(out, "double %s_work(const double *restrict in, double *restrict w)\n{\n", sym);
    else
        buf_printf(out, "double %s(const double *restrict in)\n{\n", sym);
    if (!uses_inputs(k, &p))
        buf_puts(out, "    (void)in;\n");
    if (want == WORK_SLOTS && p.mode == TEMPS)
        buf_puts(out, "    (void)w;\n");
    body(k, &p, out);
    atom(k->g, &p, k->value, a);
    buf_printf(out, "    return %s;\n}\n", a);
    plan_free(&p);
}

static void grad_function(const Kernel *k, const EmitOptions *o,
                          const char *sym, const Plan *p, Buf *out)
{
    char a[48];
    if (p->mode == WORK_SLOTS)
        buf_printf(out, "double %s_grad_work(const double *restrict in, double *restrict grad, double *restrict w)\n{\n", sym);
    else
        buf_printf(out, "double %s_grad(const double *restrict in, double *restrict grad)\n{\n", sym);
    if (!uses_inputs(k, p))
        buf_puts(out, "    (void)in;\n");
    if (k->ninputs == 0)
        buf_puts(out, "    (void)grad;\n");
    body(k, p, out);
    for (uint32_t i = 0; i < k->ninputs; i++) {
        atom(k->g, p, k->grad[i], a);
        buf_printf(out, "    grad[%u] = %s;\n", i, a);
    }
    atom(k->g, p, k->value, a);
    buf_printf(out, "    return %s;\n}\n", a);
    (void)o;
}

static NodeId *grad_roots(const Kernel *k, uint32_t *n)
{
    NodeId *roots = xmalloc((k->ninputs + 1) * sizeof *roots);
    roots[0] = k->value;
    for (uint32_t i = 0; i < k->ninputs; i++)
        roots[1 + i] = k->grad[i];
    *n = k->ninputs + 1;
    return roots;
}

static int check_names(const Kernel *k, const EmitOptions *o, Diag *d)
{
    char sym[256];
    symbol(k, o, sym, sizeof sym);
    if (emit_valid_c_name(sym))
        return 0;
    diag_plain(d, "'%s' cannot be the name of a C function (it is not an identifier, or it is a C keyword or a name the generated code uses); choose another with --name or --prefix", sym);
    return -1;
}

uint32_t emit_work_size(const Kernel *k, const EmitOptions *o)
{
    uint32_t n;
    NodeId *roots = grad_roots(k, &n);
    Plan p;
    plan(k, o, roots, k->grad ? n : 1, &p);
    uint32_t size = p.mode == WORK_SLOTS ? p.nslots : 0;
    plan_free(&p);
    free(roots);
    return size;
}

static void prototypes(const Kernel *k, const char *sym, uint32_t work, Buf *out)
{
    if (work) {
        buf_printf(out, "double %s_work(const double *in, double *work);\n", sym);
        if (k->grad)
            buf_printf(out, "double %s_grad_work(const double *in, double *grad, double *work);\n", sym);
    } else {
        buf_printf(out, "double %s(const double *in);\n", sym);
        if (k->grad)
            buf_printf(out, "double %s_grad(const double *in, double *grad);\n", sym);
    }
}

static void input_comment(const Kernel *k, Buf *out)
{
    buf_printf(out, " * Inputs (%u):", k->ninputs);
    for (uint32_t i = 0; i < k->ninputs; i++)
        buf_printf(out, "%s in[%u] = %s", i ? "," : "", i, k->input_name[i]);
    buf_puts(out, "\n");
}

int emit_c_source(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    if (check_names(k, o, d))
        return -1;
    char sym[256];
    symbol(k, o, sym, sizeof sym);
    uint32_t work = emit_work_size(k, o);
    buf_printf(out, "/* Generated by gradc " GRADC_VERSION "; do not edit.\n");
    input_comment(k, out);
    buf_puts(out, " */\n#include <math.h>\n\n");
    prototypes(k, sym, work, out);
    buf_printf(out, "extern const char *const %s_input_names[%u];\n\n", sym, k->ninputs + 1);
    buf_printf(out, "const char *const %s_input_names[%u] = {", sym, k->ninputs + 1);
    for (uint32_t i = 0; i < k->ninputs; i++)
        buf_printf(out, "\"%s\", ", k->input_name[i]);
    buf_puts(out, "0};\n\n");
    value_function(k, o, sym, work ? WORK_SLOTS : TEMPS, out);
    if (k->grad) {
        uint32_t n;
        NodeId *roots = grad_roots(k, &n);
        Plan p;
        plan(k, o, roots, n, &p);
        buf_puts(out, "\n");
        grad_function(k, o, sym, &p, out);
        plan_free(&p);
        free(roots);
    }
    return 0;
}

int emit_c_header(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    if (check_names(k, o, d))
        return -1;
    char sym[256], guard[300], count[300], wsize[300];
    symbol(k, o, sym, sizeof sym);
    macro_name(sym, "_H_GRADC", guard, sizeof guard);
    macro_name(sym, "_NUM_INPUTS", count, sizeof count);
    macro_name(sym, "_WORK_SIZE", wsize, sizeof wsize);
    uint32_t work = emit_work_size(k, o);
    buf_printf(out, "/* Generated by gradc " GRADC_VERSION "; do not edit.\n");
    input_comment(k, out);
    buf_printf(out, " * %s%s(in) returns the value;", sym, work ? "_work" : "");
    if (k->grad)
        buf_printf(out, " %s_grad%s(in, grad) also sets grad[i] = d/d in[i].", sym, work ? "_work" : "");
    buf_puts(out, "\n */\n");
    buf_printf(out, "#ifndef %s\n#define %s\n\n", guard, guard);
    buf_printf(out, "#define %s %u\n", count, k->ninputs);
    if (work)
        buf_printf(out, "/* Scratch doubles the caller provides as `work`. */\n#define %s %u\n", wsize, work);
    buf_printf(out, "\n/* Input names in order, then a null pointer. */\n");
    buf_printf(out, "extern const char *const %s_input_names[%s + 1];\n\n", sym, count);
    prototypes(k, sym, work, out);
    buf_printf(out, "\n#endif\n");
    return 0;
}

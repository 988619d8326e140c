/* front.c — the semantic actions behind the grammar: names, scopes,
 * function definitions and calls, turning each construct straight into IR.
 * Errors are reported here with the construct's source location (before
 * hash-consing merges nodes) and yield NODE_NONE, which poisons what uses
 * it, so one mistake gives one message. */
#include "front.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int yyparse(Parser *P);         /* grammar/parser.y, with LAC */
int fast_parse(Parser *P);      /* the same grammar without LAC */

struct Sym {
    const char *name;
    uint32_t hash, len;
    NodeId var;                 /* bound variable, if var_scope >= 0 */
    Loc var_loc;
    int var_scope;
    Func *func;                 /* user function of this name */
    Loc called;                 /* its first call while still unknown */
    /* What a call of this name is, looked up at its first call (calls are
     * a fifth of a big formula's nodes; the lookups compare strings). */
    int looked_up;
    int tensor;                 /* index in tensor_fns, or -1 */
    int op;                     /* a built-in operation (op_lookup_call), or -1 */
};

struct Undo {
    Sym *sym;
    NodeId var;
    Loc loc;
    int scope;
};

/* ---- names ---- */

static uint32_t str_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void symtab_grow(Parser *P)
{
    uint32_t cap = P->symcap ? P->symcap * 2 : 256;
    Sym **t = xmalloc(cap * sizeof *t);
    memset(t, 0, cap * sizeof *t);
    for (uint32_t i = 0; i < P->symcap; i++) {
        Sym *s = P->symtab[i];
        if (!s)
            continue;
        uint32_t h = s->hash & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = s;
    }
    free(P->symtab);
    P->symtab = t;
    P->symcap = cap;
}

static Sym *sym_get(Parser *P, const char *s, size_t n)
{
    if (2 * (P->nsym + 1) > P->symcap)
        symtab_grow(P);
    uint32_t hash = str_hash(s, n), h = hash & (P->symcap - 1);
    for (Sym *y; (y = P->symtab[h]); h = (h + 1) & (P->symcap - 1))
        if (y->hash == hash && y->len == n && memcmp(y->name, s, n) == 0)
            return y;
    Sym *y = arena_alloc(P->prog->arena, sizeof *y);
    y->name = arena_strndup(P->prog->arena, s, n);
    y->hash = hash;
    y->len = (uint32_t)n;
    y->var_scope = -1;
    P->symtab[h] = y;
    P->nsym++;
    return y;
}

const char *front_intern(Parser *P, const char *s, size_t n)
{
    P->last_sym = sym_get(P, s, n);
    return P->last_sym->name;
}

/* The lexer has just interned most names an action looks up (a variable
 * is reduced right after its token), so the last one is tried first: its
 * name is the same pointer. */
static Sym *sym(Parser *P, const char *name)
{
    if (P->last_sym && P->last_sym->name == name)
        return P->last_sym;
    return sym_get(P, name, strlen(name));
}

void front_error(Parser *P, Loc loc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) >= (int)sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);         /* cut, visibly */
    va_end(ap);
    diag_error(P->diag, P->src, loc, "%s", msg);
}

/* Levenshtein distance, capped: only used on the error path. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    int d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static void consider(const char **best, int *bestd, const char *name, const char *cand)
{
    int d = edit_distance(name, cand);
    int limit = strlen(name) <= 3 ? 1 : 2;
    if (strlen(name) >= 3 && strncmp(cand, name, strlen(name)) == 0)
        d = 1;                  /* a prefix: 'sigm' means 'sigmoid' */
    if (d <= limit && d < *bestd) {
        *best = cand;
        *bestd = d;
    }
}

static const char *suggest_function(Parser *P, const char *name)
{
    const char *best = NULL;
    int bestd = 99;
    for (int i = 0; i < OP_COUNT; i++)
        if (op_info[i].flags & OPF_CALL)
            consider(&best, &bestd, name, op_info[i].name);
    for (uint32_t i = 0; i < P->prog->nfunc; i++)
        consider(&best, &bestd, name, P->prog->func[i]->name);
    return best;
}

static int visible(const Parser *P, const Sym *y)
{
    return y->var_scope == 0 || (y->var_scope > 0 && y->var_scope == P->scope);
}

static const char *suggest_variable(Parser *P, const char *name)
{
    const char *best = NULL;
    int bestd = 99;
    for (uint32_t i = 0; i < P->symcap; i++) {
        Sym *y = P->symtab[i];
        if (y && y->var_scope >= 0 && visible(P, y))
            consider(&best, &bestd, name, y->name);
    }
    return best;
}

/* ---- bindings ---- */

static void bind(Parser *P, Sym *y, NodeId v, Loc loc)
{
    if (P->scope > 0) {
        if (P->nundo == P->capundo) {
            P->capundo = P->capundo ? 2 * P->capundo : 64;
            P->undo = xrealloc(P->undo, P->capundo * sizeof *P->undo);
        }
        P->undo[P->nundo++] = (Undo){y, y->var, y->var_loc, y->var_scope};
    }
    y->var = v;
    y->var_loc = loc;
    y->var_scope = P->scope;
}

static void unwind_scope(Parser *P)
{
    while (P->nundo > 0) {
        Undo *u = &P->undo[--P->nundo];
        u->sym->var = u->var;
        u->sym->var_loc = u->loc;
        u->sym->var_scope = u->scope;
    }
    P->scope = 0;
}

/* ---- expressions ---- */

NodeId front_number(Parser *P, double v, Loc loc)
{
    (void)loc;
    return ir_const(P->prog->g, v);
}

static NodeId bare_input(Parser *P, Sym *y, Loc loc)
{
    Func *f = P->prog->bare;
    uint32_t n = f->ninputs;
    f->input = xrealloc(f->input, (n + 1) * sizeof *f->input);
    f->input_name = xrealloc(f->input_name, (n + 1) * sizeof *f->input_name);
    f->input_loc = xrealloc(f->input_loc, (n + 1) * sizeof *f->input_loc);
    Shape shape = SHAPE_SCALAR;
    for (uint32_t i = 0; i < P->nbare_shapes; i++)
        if (strlen(y->name) == P->bare_shapes[i].len &&
            !strncmp(y->name, P->bare_shapes[i].name, P->bare_shapes[i].len))
            shape = P->bare_shapes[i].shape;
    f->input[n] = ir_input(P->prog->g, shape);
    f->input_name[n] = y->name;
    f->input_loc[n] = loc;
    f->ninputs = n + 1;
    bind(P, y, f->input[n], loc);
    return f->input[n];
}

NodeId front_var(Parser *P, const char *name, Loc loc)
{
    Sym *y = sym(P, name);
    if (visible(P, y)) {
        /* Globals seen from a function body must not capture the inputs
         * of the top-level expression. */
        if (P->scope > 0 && y->var_scope == 0 &&
            P->prog->g->node[y->var].op != OP_CONST) {
            front_error(P, loc, "'%s' is not a constant; pass it to the function as a parameter", name);
            return NODE_NONE;
        }
        return y->var;
    }
    if (strcmp(name, "pi") == 0)
        return ir_const(P->prog->g, 3.14159265358979323846);
    if (P->bare_mode && P->scope == 0)
        return bare_input(P, y, loc);
    front_error(P, loc, "undefined variable '%s'", name);
    /* Suggestions scan every name: only while messages are still shown,
     * so thousands of undefined names stay linear. */
    const char *s = P->diag->nerrors <= P->diag->max_errors ? suggest_variable(P, name) : NULL;
    if (s)
        diag_note(P->diag, P->src, loc, "did you mean '%s'?", s);
    return NODE_NONE;
}

NodeId front_unary(Parser *P, Op op, NodeId a, Loc loc)
{
    (void)loc;
    return ir_op(P->prog->g, op, a, NODE_NONE);
}

static Shape shape_of(Parser *P, NodeId id)
{
    return P->prog->g->node[id].shape;
}

static const char *op_symbol(Op op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_POW: return "^";
    default: return op_info[op].name;
    }
}

/* Elementwise operands must have equal shapes, or one must be a scalar. */
static int check_broadcast(Parser *P, Op op, NodeId a, NodeId b, Loc loc)
{
    Shape s;
    if (ir_broadcast(shape_of(P, a), shape_of(P, b), &s))
        return 1;
    char sa[48], sb[48];
    front_error(P, loc, "shape mismatch in '%s': %s and %s (shapes must be equal, or one a scalar)",
                op_symbol(op), shape_str(shape_of(P, a), sa), shape_str(shape_of(P, b), sb));
    return 0;
}

NodeId front_binary(Parser *P, Op op, NodeId a, NodeId b, Loc loc)
{
    if (a == NODE_NONE || b == NODE_NONE || !check_broadcast(P, op, a, b, loc))
        return NODE_NONE;
    return ir_op(P->prog->g, op, a, b);
}

NodeId front_matmul(Parser *P, NodeId a, NodeId b, Loc loc)
{
    if (a == NODE_NONE || b == NODE_NONE)
        return NODE_NONE;
    Graph *g = P->prog->g;
    Shape sa = shape_of(P, a), sb = shape_of(P, b), r;
    if (sa.rank == 1 && sb.rank == 1 && sa.dim[0] == sb.dim[0])
        return ir_sum(g, ir_mul(g, a, b));              /* dot product */
    if (sa.rank == 1 && sb.rank == 2 && ir_matmul_shape(sb, sa, 1, &r))
        return ir_matmul(g, b, a, 1);                   /* x @ W = W^T x */
    if (ir_matmul_shape(sa, sb, 0, &r))
        return ir_matmul(g, a, b, 0);
    char s1[48], s2[48];
    front_error(P, loc, "shape mismatch in '@': %s and %s (inner dimensions must agree)",
                shape_str(sa, s1), shape_str(sb, s2));
    return NODE_NONE;
}

/* Equal-shaped elements stacked along a new first dimension. Constant
 * elements give a constant; others are placed with PAD and added, which
 * is quadratic but only meant for literals written by hand. */
NodeId front_stack(Parser *P, const NodeId *elems, uint32_t n)
{
    Graph *g = P->prog->g;
    Shape es = shape_of(P, elems[0]);
    Shape s = es.rank == 0 ? shape_vec(n) : shape_mat(n, es.dim[0]);
    uint32_t esize = shape_size(es);
    int constant = 1;
    for (uint32_t i = 0; i < n; i++)
        constant &= ir_is_constant(g, elems[i]);
    if (constant) {
        double *v = xmalloc(n * esize * sizeof *v);
        for (uint32_t i = 0; i < n; i++) {
            const Node *e = &g->node[elems[i]];
            if (e->op == OP_CONST)
                v[i] = e->num;
            else
                memcpy(v + i * esize, ir_tconst_data(g, elems[i]), esize * sizeof *v);
        }
        NodeId r = ir_tconst(g, s, v);
        free(v);
        return r;
    }
    NodeId r = NODE_NONE;
    for (uint32_t i = 0; i < n; i++) {
        NodeId p = ir_pad(g, elems[i], i, 1, s);
        r = r == NODE_NONE ? p : ir_add(g, r, p);
    }
    return r;
}

NodeId front_literal(Parser *P, int n, Loc loc)
{
    P->nargs -= (uint32_t)n;
    const NodeId *e = P->args + P->nargs;
    const Loc *el = P->argloc + P->nargs;
    for (int i = 0; i < n; i++)
        if (e[i] == NODE_NONE)
            return NODE_NONE;
    Shape s0 = shape_of(P, e[0]);
    char a[48], b[48];
    if (s0.rank >= 2) {
        front_error(P, loc, "literals have at most two dimensions");
        return NODE_NONE;
    }
    for (int i = 1; i < n; i++)
        if (!shape_eq(shape_of(P, e[i]), s0)) {
            front_error(P, el[i], "element %d of the literal has shape %s, but element 0 has %s",
                        i, shape_str(shape_of(P, e[i]), a), shape_str(s0, b));
            return NODE_NONE;
        }
    /* front_stack places elements that are not constants one by one, each
     * in a tensor of the literal's size: n times that size in all. */
    double size = (double)n * shape_size(s0), placed = size;
    for (int i = 0; i < n && placed == size; i++)
        if (!ir_is_constant(P->prog->g, e[i]))
            placed = size * n;
    if (size > GRADC_MAX_ELEMS) {
        front_error(P, loc, "this literal has more than %u elements", GRADC_MAX_ELEMS);
        return NODE_NONE;
    }
    if (placed > GRADC_MAX_PLACED) {
        front_error(P, loc, "this literal is too large to build from elements that are not constants "
                    "(elements times its size must be at most %u)", GRADC_MAX_PLACED);
        return NODE_NONE;
    }
    return front_stack(P, e, (uint32_t)n);
}

/* Inside a range sum, an index k*i + c: returns 1 with scale k and offset
 * c when ix is that affine form of the range's index (iteratively, so a
 * long i + 1 + 1 + ... cannot overflow the stack). */
static int affine_index(Parser *P, NodeId ix, int64_t *scale, int64_t *offset)
{
    const Graph *g = P->prog->g;
    if (P->nrange == 0)
        return 0;
    NodeId ivar = P->range[0].ivar;
    int64_t s = 1, o = 0;
    for (int steps = 0; ix != ivar; steps++) {
        const Node *n = &g->node[ix];
        const Node *a = &g->node[n->arg[0]], *b = &g->node[n->arg[1]];
        /* (the size test first: casting 1e300 or NaN to int64_t is undefined) */
        int ca = op_info[n->op].arity == 2 && a->op == OP_CONST && fabs(a->num) <= 1e9 &&
                 a->num == (double)(int64_t)a->num;
        int cb = op_info[n->op].arity == 2 && b->op == OP_CONST && fabs(b->num) <= 1e9 &&
                 b->num == (double)(int64_t)b->num;
        if (steps > 1000000 || (fabs(a->num) > 1e9 && ca) || (fabs(b->num) > 1e9 && cb))
            return 0;
        if (n->op == OP_ADD && (ca || cb)) {
            o += s * (int64_t)(ca ? a->num : b->num);
            ix = ca ? n->arg[1] : n->arg[0];
        } else if (n->op == OP_SUB && cb) {
            o -= s * (int64_t)b->num;
            ix = n->arg[0];
        } else if (n->op == OP_SUB && ca) {
            o += s * (int64_t)a->num;
            s = -s;
            ix = n->arg[1];
        } else if (n->op == OP_MUL && (ca || cb)) {
            s *= (int64_t)(ca ? a->num : b->num);
            ix = ca ? n->arg[1] : n->arg[0];
        } else if (n->op == OP_NEG) {
            s = -s;
            ix = n->arg[0];
        } else {
            return 0;
        }
        if (llabs(s) > 1000000000 || llabs(o) > 1000000000)
            return 0;
    }
    *scale = s;
    *offset = o;
    return 1;
}

static void add_slice(struct RangeVar *r, NodeId id)
{
    if (r->nslice == r->capslice) {
        r->capslice = r->capslice ? 2 * r->capslice : 16;
        r->slice = xrealloc(r->slice, r->capslice * sizeof *r->slice);
    }
    r->slice[r->nslice++] = id;
}

/* A constant integer index, or inside a range sum k*i + c, which becomes a
 * strided slice: term j of the sum reads element k*(lo + j) + c. */
static NodeId subscript1(Parser *P, NodeId a, NodeId ix, Loc loc)
{
    Graph *g = P->prog->g;
    Shape s = shape_of(P, a);
    char sh[48];
    if (s.rank == 0) {
        front_error(P, loc, "a scalar cannot be indexed");
        return NODE_NONE;
    }
    const Node *n = &g->node[ix];
    if (n->op == OP_CONST) {
        double v = n->num;
        if (v >= 0 && v < s.dim[0] && v != (double)(int64_t)v) {
            front_error(P, loc, "index %g is not a whole number", v);
            return NODE_NONE;
        }
        if (!(v >= 0 && v < s.dim[0])) {       /* NaN too */
            front_error(P, loc, "index %g is out of range for shape %s (indices start at 0)",
                        v, shape_str(s, sh));
            return NODE_NONE;
        }
        return ir_index(g, a, (uint32_t)v);
    }
    int64_t k, c;
    if (affine_index(P, ix, &k, &c)) {
        struct RangeVar *r = &P->range[0];
        int64_t first = k * r->lo + c, last = k * (r->lo + (int64_t)r->count - 1) + c;
        if (k < 1 || first < 0 || last >= s.dim[0]) {
            if (k < 1)
                front_error(P, loc, "a range index must increase with the index: k*i + c with k >= 1");
            else
                front_error(P, loc, "the index runs from %lld to %lld, out of range for shape %s",
                            (long long)first, (long long)last, shape_str(s, sh));
            return NODE_NONE;
        }
        NodeId sl = ir_slice(g, a, (uint32_t)first, r->count, (uint32_t)k);
        if (sl == a)            /* the whole of a: mark it through a view */
            sl = ir_node(g, OP_SLICE, a, 0, 0, 1, s);
        add_slice(r, sl);
        return sl;
    }
    front_error(P, loc, P->nrange ? "an index must be a constant integer, or i, i + c or k*i + c for the range's index i"
                                  : "indices must be constant integers");
    return NODE_NONE;
}

NodeId front_subscript(Parser *P, NodeId a, Loc aloc, int n, Loc loc)
{
    (void)aloc;
    P->nargs -= (uint32_t)n;
    const NodeId *ix = P->args + P->nargs;
    const Loc *il = P->argloc + P->nargs;
    if (a == NODE_NONE)
        return NODE_NONE;
    if (shape_of(P, a).rank == 0) {
        front_error(P, loc, "a scalar cannot be indexed");
        return NODE_NONE;
    }
    if (n > shape_of(P, a).rank) {
        char sh[48];
        front_error(P, loc, "%d indices for a value of shape %s", n, shape_str(shape_of(P, a), sh));
        return NODE_NONE;
    }
    int64_t k1, c1, k2, c2;
    Shape sa = shape_of(P, a);
    int a1 = n == 2 && affine_index(P, ix[0], &k1, &c1);
    int a2 = n == 2 && affine_index(P, ix[1], &k2, &c2);
    if (sa.rank == 2 && (a1 || a2) && ix[0] != NODE_NONE && ix[1] != NODE_NONE) {
        /* W[i, j] in a range sum: element (k1 i + c1, k2 i + c2) of term i,
         * a strided slice of W read as one flat vector. */
        const Node *n0 = &P->prog->g->node[ix[0]], *n1 = &P->prog->g->node[ix[1]];
        if ((!a1 && (n0->op != OP_CONST || !(fabs(n0->num) <= 1e9) ||
                     n0->num != (double)(int64_t)n0->num)) ||
            (!a2 && (n1->op != OP_CONST || !(fabs(n1->num) <= 1e9) ||
                     n1->num != (double)(int64_t)n1->num))) {
            front_error(P, loc, "an index must be a constant integer, or i, i + c or k*i + c for the range's index i");
            return NODE_NONE;
        }
        if (!a1) k1 = 0, c1 = (int64_t)n0->num;
        if (!a2) k2 = 0, c2 = (int64_t)n1->num;
        struct RangeVar *rv = &P->range[0];
        int64_t hi = rv->lo + (int64_t)rv->count - 1;
        int64_t r0 = k1 * rv->lo + c1, r1 = k1 * hi + c1, q0 = k2 * rv->lo + c2, q1 = k2 * hi + c2;
        if (r0 < 0 || r1 < 0 || r0 >= sa.dim[0] || r1 >= sa.dim[0] || q0 < 0 || q1 < 0 ||
            q0 >= sa.dim[1] || q1 >= sa.dim[1] || k1 * (int64_t)sa.dim[1] + k2 < 1) {
            char sh[48];
            front_error(P, loc, "the indices leave the shape %s, or do not increase with the range's index",
                        shape_str(sa, sh));
            return NODE_NONE;
        }
        Graph *g = P->prog->g;
        NodeId flat = ir_view(g, a, 0, shape_vec(sa.dim[0] * sa.dim[1]));
        NodeId sl = ir_node(g, OP_SLICE, flat, 0, (int32_t)(r0 * sa.dim[1] + q0),
                            (double)(k1 * sa.dim[1] + k2), shape_vec(rv->count));
        add_slice(rv, sl);
        return sl;
    }
    NodeId r = a;
    for (int k = 0; k < n && r != NODE_NONE; k++) {
        if (ix[k] == NODE_NONE)
            return NODE_NONE;
        if (k == 1 && shape_of(P, r).rank == 2) {
            /* W[i, j] after a row slice: index the columns of each row. */
            NodeId t = subscript1(P, ir_transpose(P->prog->g, r), ix[k], il[k]);
            r = t == NODE_NONE || shape_of(P, t).rank < 2 ? t : ir_transpose(P->prog->g, t);
        } else {
            r = subscript1(P, r, ix[k], il[k]);
        }
    }
    return r;
}

static int const_int(Parser *P, NodeId v, Loc loc, const char *what, int64_t *out)
{
    const Node *n = &P->prog->g->node[v];
    if (v == NODE_NONE)
        return 0;
    if (n->op != OP_CONST || !(fabs(n->num) <= 1e9) || n->num != (double)(int64_t)n->num) {
        front_error(P, loc, "%s must be a constant integer", what);
        return 0;
    }
    *out = (int64_t)n->num;
    return 1;
}

void front_range_begin(Parser *P, const char *name, Loc loc, NodeId lo, Loc loloc,
                       NodeId hi, Loc hiloc)
{
    if (P->nrange >= 2) {
        /* Inside a nested sum, already reported: only counted, so that
         * front_range_end pairs up; range[] holds two. */
        P->nrange++;
        return;
    }
    int64_t a = 0, b = -1;
    int ok = const_int(P, lo, loloc, "the start of a range", &a) &
             const_int(P, hi, hiloc, "the end of a range", &b);
    if (ok && b < a) {
        front_error(P, hiloc, "the range %lld .. %lld is empty", (long long)a, (long long)b);
        ok = 0;
    }
    if (ok && b - a >= GRADC_MAX_RANGE) {
        front_error(P, hiloc, "the range %lld .. %lld has more than %u terms", (long long)a,
                    (long long)b, GRADC_MAX_RANGE);
        ok = 0;
    }
    Sym *y = sym(P, name);
    if (P->nrange == 1) {
        /* One index at a time: vectorising the body needs every term to
         * be a scalar function of one index. */
        front_error(P, loc, "range sums cannot be nested; write the inner one with vector operations (sum, dot, @)");
        ok = 0;
    }
    struct RangeVar *r = &P->range[P->nrange++];
    *r = (struct RangeVar){.sym = y, .var = y->var, .loc = loc, .scope = y->var_scope,
                           .count = ok ? (uint32_t)(b - a + 1) : 0, .lo = a,
                           .first = P->prog->g->n};
    NodeId var = NODE_NONE;
    if (ok)
        var = ir_node(P->prog->g, OP_IVAR, 0, 0, (int32_t)P->nivar++, 0,
                      shape_vec(r->count));
    r->ivar = var;
    y->var = var;               /* NODE_NONE poisons the body after an error */
    y->var_loc = loc;
    y->var_scope = P->scope;
}

/* Checks that the body is a sum of scalar terms, elementwise in the index:
 * what depends on it is the index itself, slices taken with it, and
 * elementwise operations on those (with scalars); nothing else. */
static int range_body_ok(Parser *P, struct RangeVar *r, NodeId body, Loc loc)
{
    Graph *g = P->prog->g;
    uint32_t span = body >= r->first ? body - r->first + 1 : 0;
    uint8_t *dep = xmalloc(span + 1);
    memset(dep, 0, span + 1);
    for (uint32_t k = 0; k < r->nslice; k++)
        if (r->slice[k] >= r->first && r->slice[k] <= body)
            dep[r->slice[k] - r->first] = 2;
    int ok = 1;
    for (NodeId i = r->first; i <= body && ok; i++) {
        const Node *n = &g->node[i];
        int d = i == r->ivar || dep[i - r->first] == 2, any = d;
        for (int k = 0; k < op_info[n->op].arity && !d; k++)
            any |= n->arg[k] >= r->first && dep[n->arg[k] - r->first];
        if (!any)
            continue;
        dep[i - r->first] |= 1;
        if (d)
            continue;
        char sh[48];
        if (!(op_info[n->op].flags & OPF_ELEM) ||
            !shape_eq(n->shape, shape_vec(r->count))) {
            front_error(P, loc, "each term of a range sum must be a scalar computed elementwise from "
                        "x[i + c] (here a '%s' of shape %s depends on the index)",
                        op_info[n->op].name, shape_str(n->shape, sh));
            ok = 0;
        }
        for (int k = 0; k < op_info[n->op].arity && ok; k++) {
            NodeId a = n->arg[k];
            if (g->node[a].shape.rank > 0 && !(a >= r->first && dep[a - r->first])) {
                front_error(P, loc, "a vector in a range sum must be indexed by the range's index "
                            "(a value of shape %s is used whole)", shape_str(g->node[a].shape, sh));
                ok = 0;
            }
        }
    }
    int depends = ok && span > 0 && dep[span - 1];
    if (depends && !shape_eq(g->node[body].shape, shape_vec(r->count))) {
        char sh[48];
        front_error(P, loc, "each term of a range sum must be a scalar (here each term has shape %s)",
                    shape_str(g->node[body].shape.rank == 2 ? shape_vec(g->node[body].shape.dim[1])
                                                             : SHAPE_SCALAR, sh));
        ok = 0;
    }
    free(dep);
    return ok ? 1 + depends : 0;
}

NodeId front_range_end(Parser *P, const char *fn, Loc fnloc, NodeId body, Loc bodyloc)
{
    if (P->nrange > 2) {        /* one only counted by front_range_begin */
        P->nrange--;
        return NODE_NONE;
    }
    struct RangeVar *r = &P->range[--P->nrange];
    Sym *y = r->sym;
    y->var = r->var;
    y->var_loc = r->loc;
    y->var_scope = r->scope;
    NodeId result = NODE_NONE;
    Graph *g = P->prog->g;
    if (strcmp(fn, "sum") != 0) {
        front_error(P, fnloc, "'%s(i = a .. b, ...)' is not a range reduction; only 'sum' is", fn);
    } else if (body != NODE_NONE && r->count > 0) {
        int how = range_body_ok(P, r, body, bodyloc);
        if (how == 1) {         /* every term is the same */
            result = ir_mul(g, ir_const(g, (double)r->count), body);
        } else if (how == 2) {
            /* The index as a value is the vector lo, lo + 1, ..., hi. */
            double *v = xmalloc(r->count * sizeof *v);
            for (uint32_t k = 0; k < r->count; k++)
                v[k] = (double)(r->lo + k);
            NodeId values = ir_tconst(g, shape_vec(r->count), v);
            free(v);
            result = ir_sum(g, ir_substitute(g, body, r->first, &r->ivar, &values, 1));
        }
    }
    free(r->slice);
    return result;
}

Shape front_dims(Parser *P, double m, Loc mloc, double n, Loc nloc)
{
    int bad_m = !(m >= 1 && m <= 1e15 && m == (double)(int64_t)m);
    int bad_n = n != -1 && !(n >= 1 && n <= 1e15 && n == (double)(int64_t)n);
    if (bad_m || bad_n) {
        front_error(P, bad_m ? mloc : nloc, "a dimension must be a positive integer");
        return SHAPE_SCALAR;
    }
    if ((n == -1 ? m : m * n) > GRADC_MAX_ELEMS) {
        Loc all = mloc;
        if (n != -1) {
            all.last_line = nloc.last_line;
            all.last_column = nloc.last_column;
        }
        char sh[64];
        snprintf(sh, sizeof sh, n == -1 ? "[%.0f]" : "[%.0f,%.0f]", m, n);
        front_error(P, all, "the shape %s has more than %u elements", sh, GRADC_MAX_ELEMS);
        return SHAPE_SCALAR;
    }
    if (n == -1)
        return shape_vec((uint32_t)m);
    return shape_mat((uint32_t)m, (uint32_t)n);
}

void front_push_arg(Parser *P, NodeId a, Loc loc)
{
    if (P->nargs == P->capargs) {
        P->capargs = P->capargs ? 2 * P->capargs : 32;
        P->args = xrealloc(P->args, P->capargs * sizeof *P->args);
        P->argloc = xrealloc(P->argloc, P->capargs * sizeof *P->argloc);
    }
    P->args[P->nargs] = a;
    P->argloc[P->nargs++] = loc;
}

/* Calls are inlined, so a few lines can ask for exponentially many nodes
 * (g_k(x) = g_{k-1}(x+1) + g_{k-1}(2*x)); past this size calls fail, with
 * one error where the limit was crossed, instead of exhausting memory. */
enum { MAX_NODES = 1 << 22 };

static NodeId call_user(Parser *P, Func *f, const NodeId *args)
{
    if (P->prog->g->n > MAX_NODES)
        return NODE_NONE;
    for (uint32_t i = 0; i < f->ninputs; i++)
        if (args[i] == NODE_NONE)
            return NODE_NONE;
    return ir_substitute(P->prog->g, f->result, f->first, f->input, args,
                         f->ninputs);
}

static const char *plural(int n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* A call with one more leading dimension on its arguments than the
 * parameters declare maps the function over the rows: a batch. */
static NodeId call_batched(Parser *P, Func *f, const NodeId *args, uint32_t rows)
{
    Graph *g = P->prog->g;
    NodeId *row = xmalloc(f->ninputs * sizeof *row);
    NodeId *out = xmalloc(rows * sizeof *out);
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t i = 0; i < f->ninputs; i++) {
            Shape want = g->node[f->input[i]].shape;
            row[i] = shape_eq(shape_of(P, args[i]), want) ? args[i] : ir_index(g, args[i], r);
        }
        out[r] = call_user(P, f, row);
        if (out[r] == NODE_NONE) {
            free(row);
            free(out);
            return NODE_NONE;
        }
    }
    NodeId res = front_stack(P, out, rows);
    free(row);
    free(out);
    return res;
}

static NodeId call_function(Parser *P, Func *f, const NodeId *args, int nargs,
                            const Loc *argloc, Loc loc)
{
    Graph *g = P->prog->g;
    NodeId full[64];
    if (f->ninputs > 64) {
        front_error(P, loc, "'%s' has too many parameters to be called from a formula", f->name);
        return NODE_NONE;
    }
    /* A network called without its parameters uses their initial values. */
    int implicit = f->nparams > 0 && (uint32_t)nargs + f->nparams == f->ninputs;
    if ((uint32_t)nargs != f->ninputs && !implicit) {
        front_error(P, loc, "function '%s' takes %u %s, but %d %s given", f->name,
                    f->ninputs, plural((int)f->ninputs, "argument", "arguments"), nargs,
                    plural(nargs, "was", "were"));
        return NODE_NONE;
    }
    uint32_t rows = 0;
    for (int i = 0; i < nargs; i++) {
        if (args[i] == NODE_NONE)
            return NODE_NONE;
        Shape want = g->node[f->input[i]].shape, got = shape_of(P, args[i]);
        full[i] = args[i];
        if (shape_eq(want, got))
            continue;
        int batch = got.rank == want.rank + 1 && want.rank <= 1 &&
                    (want.rank == 0 || got.dim[1] == want.dim[0]) &&
                    (rows == 0 || rows == got.dim[0]);
        if (!batch) {
            char a[48], b[48];
            front_error(P, argloc[i], "argument %d of '%s' has shape %s, but parameter '%s' is %s",
                        i + 1, f->name, shape_str(got, a), f->input_name[i], shape_str(want, b));
            return NODE_NONE;
        }
        rows = got.dim[0];
    }
    if (implicit && f->net && f->net->nparams > GRADC_MAX_TABLE) {
        /* the initial values would become one table of the generated C */
        front_error(P, loc, "'%s' has %u parameters, too many to embed their initial values "
                    "(at most %u); pass a parameter vector: %s(x, p)", f->name, f->net->nparams,
                    GRADC_MAX_TABLE, f->name);
        return NODE_NONE;
    }
    if (implicit)
        full[nargs] = front_net_init(P, f);
    if (f->ninputs && full[f->ninputs - 1] == NODE_NONE)   /* f() has none */
        return NODE_NONE;
    int net_batch = rows && f->net && shape_eq(g->node[full[1]].shape, g->node[f->input[1]].shape);
    if (rows) {
        /* Elements of the widest value per row; rows of a function are
         * stacked one by one (front_stack), so rows times that again. */
        double per_row = shape_size(g->node[f->result].shape);
        for (uint32_t k = 0; net_batch && k < f->net->nlayers; k++)
            per_row = fmax(per_row, fmax(f->net->layer[k].units, f->net->layer[k].in));
        uint32_t max = net_batch ? GRADC_MAX_ELEMS : GRADC_MAX_PLACED;
        if ((double)rows * per_row * (net_batch ? 1 : rows) > max) {
            front_error(P, loc, "calling '%s' on %u rows at once is too large (more than %u elements)",
                        f->name, rows, max);
            return NODE_NONE;
        }
    }
    if (net_batch)
        return net_call_batch(P, f->net, full[0], full[1]);
    uint32_t before = g->n;
    NodeId r = rows ? call_batched(P, f, full, rows) : call_user(P, f, full);
    if (before <= MAX_NODES && g->n > MAX_NODES) {
        front_error(P, loc, "calling '%s' here makes the formula too large (more than %u nodes once calls are inlined)",
                    f->name, (unsigned)MAX_NODES);
        return NODE_NONE;
    }
    return r;
}

static int expect_rank(Parser *P, const char *fn, NodeId a, Loc loc, int lo, int hi)
{
    int r = shape_of(P, a).rank;
    if (r >= lo && r <= hi)
        return 1;
    char sh[48];
    static const char *const what[] = {"a scalar", "a vector", "a matrix"};
    if (lo == hi)
        front_error(P, loc, "'%s' needs %s, not a value of shape %s", fn, what[lo],
                    shape_str(shape_of(P, a), sh));
    else
        front_error(P, loc, "'%s' needs a %s, not a value of shape %s", fn,
                    lo == 1 ? "vector or matrix" : "scalar or vector", shape_str(shape_of(P, a), sh));
    return 0;
}

static const struct { const char *name; int arity; } tensor_fns[] = {
    {"sum", 1}, {"dot", 2}, {"transpose", 1}, {"softmax", 1},
    {"log_softmax", 1}, {"logsumexp", 1}, {"mse", 2}, {"cross_entropy", 2},
};

/* fn's index in tensor_fns, or -1. */
static int tensor_index(const char *fn)
{
    for (int i = 0; i < (int)(sizeof tensor_fns / sizeof tensor_fns[0]); i++)
        if (strcmp(tensor_fns[i].name, fn) == 0)
            return i;
    return -1;
}

/* The built-in function on tensors tensor_fns[i]. */
static NodeId tensor_builtin(Parser *P, int i, int n, const NodeId *a, const Loc *al, Loc loc)
{
    const char *fn = tensor_fns[i].name;
    Graph *g = P->prog->g;
    if (n != tensor_fns[i].arity) {
        front_error(P, loc, "function '%s' takes %d %s, but %d %s given", fn, tensor_fns[i].arity,
                    plural(tensor_fns[i].arity, "argument", "arguments"), n, plural(n, "was", "were"));
        return NODE_NONE;
    }
    for (int k = 0; k < n; k++)
        if (a[k] == NODE_NONE)
            return NODE_NONE;
    char s1[48], s2[48];
    if (!strcmp(fn, "sum"))
        return ir_sum(g, a[0]);
    if (!strcmp(fn, "transpose"))
        return expect_rank(P, fn, a[0], al[0], 2, 2) ? ir_transpose(g, a[0]) : NODE_NONE;
    if (!strcmp(fn, "dot")) {
        if (!expect_rank(P, fn, a[0], al[0], 1, 1) || !expect_rank(P, fn, a[1], al[1], 1, 1))
            return NODE_NONE;
        if (!shape_eq(shape_of(P, a[0]), shape_of(P, a[1]))) {
            front_error(P, loc, "shape mismatch in 'dot': %s and %s",
                        shape_str(shape_of(P, a[0]), s1), shape_str(shape_of(P, a[1]), s2));
            return NODE_NONE;
        }
        return ir_sum(g, ir_mul(g, a[0], a[1]));
    }
    NodeId x = a[0];
    if (!strcmp(fn, "softmax") || !strcmp(fn, "log_softmax") || !strcmp(fn, "logsumexp")) {
        /* A matrix is a batch: each row separately. */
        if (shape_of(P, x).rank == 0)   /* one class: a vector of one */
            x = ir_bcast(g, x, shape_vec(1));
        if (!strcmp(fn, "softmax"))
            return ir_softmax(g, x);
        if (!strcmp(fn, "logsumexp"))
            return ir_logsumexp(g, x);
        return ir_log_softmax(g, x);
    }
    if (!strcmp(fn, "mse")) {
        if (!check_broadcast(P, OP_SUB, a[0], a[1], loc))
            return NODE_NONE;
        NodeId d = ir_sub(g, a[0], a[1]);
        double count = shape_size(shape_of(P, d));
        return ir_div(g, ir_sum(g, ir_mul(g, d, d)), ir_const(g, count));
    }
    /* cross_entropy(p, label): -log p[label] for a class index (0-based),
     * -sum(label * log p) for target probabilities of p's shape (a matrix
     * of them for a batch of rows). */
    if (!expect_rank(P, fn, a[0], al[0], 1, 2))
        return NODE_NONE;
    const Node *lab = &g->node[a[1]];
    if (lab->shape.rank == 0) {
        /* One class k for the vector, or for every row of a batch. */
        Shape ps = shape_of(P, a[0]);
        uint32_t classes = ps.rank == 2 ? ps.dim[1] : ps.dim[0];
        double k = lab->num;
        if (lab->op != OP_CONST || !(k >= 0 && k < classes) || k != (double)(int64_t)k) {
            front_error(P, al[1], "the label must be a constant class index from 0 to %u",
                        classes - 1);
            return NODE_NONE;
        }
        const Node *pn = &g->node[a[0]];
        NodeId logp = pn->op == OP_SOFTMAX ? ir_log_softmax(g, pn->arg[0])    /* stable */
                                           : ir_op(g, OP_LOG, a[0], 0);
        if (ps.rank == 2)
            logp = ir_transpose(g, logp);       /* row k of the transpose: column k */
        return ir_neg(g, ir_sum(g, ir_index(g, logp, (uint32_t)k)));
    }
    if (!shape_eq(lab->shape, shape_of(P, a[0]))) {
        front_error(P, loc, "shape mismatch in 'cross_entropy': %s and %s",
                    shape_str(shape_of(P, a[0]), s1), shape_str(lab->shape, s2));
        return NODE_NONE;
    }
    return ir_neg(g, ir_sum(g, ir_mul(g, a[1], ir_op(g, OP_LOG, a[0], 0))));
}

NodeId front_call(Parser *P, const char *name, Loc loc, int nargs)
{
    P->nargs -= (uint32_t)nargs;
    const NodeId *args = P->args + P->nargs;
    const Loc *argloc = P->argloc + P->nargs;
    Sym *y = sym(P, name);
    if (!y->looked_up) {
        y->tensor = tensor_index(name);
        y->op = op_lookup_call(name);
        y->looked_up = 1;
    }
    if (y->tensor >= 0)
        return tensor_builtin(P, y->tensor, nargs, args, argloc, loc);
    int op = y->op;
    Func *f = y->func;
    if (op < 0 && f)
        return call_function(P, f, args, nargs, argloc, loc);
    if (op < 0 && P->cur && !strcmp(P->cur->name, name)) {
        front_error(P, loc, "'%s' calls itself, but a function can only call functions "
                    "defined before it (there is no recursion)", name);
        return NODE_NONE;
    }
    if (op < 0) {
        if (!y->called.first_line)      /* for the note at a later definition */
            y->called = loc;
        front_error(P, loc, "unknown function '%s'", name);
        const char *s = P->diag->nerrors <= P->diag->max_errors ? suggest_function(P, name) : NULL;
        if (s)
            diag_note(P->diag, P->src, loc, "did you mean '%s'?", s);
        return NODE_NONE;
    }
    int want = op_info[op].arity;
    if (nargs != want) {
        front_error(P, loc, "function '%s' takes %d %s, but %d %s given", name,
                    want, plural(want, "argument", "arguments"), nargs,
                    plural(nargs, "was", "were"));
        return NODE_NONE;
    }
    for (int i = 0; i < nargs; i++)
        if (args[i] == NODE_NONE)
            return NODE_NONE;
    if (want == 2 && !check_broadcast(P, (Op)op, args[0], args[1], loc))
        return NODE_NONE;
    return ir_op(P->prog->g, (Op)op, args[0], want == 2 ? args[1] : NODE_NONE);
}

/* ---- statements ---- */

void front_let(Parser *P, const char *name, Loc loc, NodeId value)
{
    Sym *y = sym(P, name);
    if (y->var_scope >= 0 && y->var_scope == P->scope) {
        front_error(P, loc, "duplicate definition of '%s'", name);
        diag_note(P->diag, P->src, y->var_loc, "'%s' was defined here", name);
        return;
    }
    if (strcmp(name, "pi") == 0) {
        front_error(P, loc, "'pi' is a constant and cannot be redefined");
        return;
    }
    bind(P, y, value, loc);
}

void front_expr_stmt(Parser *P, NodeId value, Loc loc)
{
    if (!P->bare_mode && value == NODE_NONE)
        return;                 /* its error is reported: one per mistake */
    if (!P->bare_mode) {
        front_error(P, loc, "an expression on its own has no name; define a function, e.g. 'f(x) = ...'");
        return;
    }
    if (P->bare_result_loc.first_line) {
        front_error(P, loc, "more than one result expression");
        diag_note(P->diag, P->src, P->bare_result_loc, "the first one is here");
        return;
    }
    P->bare_result = value;
    P->bare_result_loc = loc;
}

void front_func_begin(Parser *P, const char *name, Loc loc)
{
    Sym *y = sym(P, name);
    Func *f = arena_alloc(P->prog->arena, sizeof *f);
    f->name = y->name;
    f->loc = loc;
    f->first = P->prog->g->n;
    if (op_lookup_call(name) >= 0)
        front_error(P, loc, "'%s' is a built-in function and cannot be redefined", name);
    else if (y->func) {
        front_error(P, loc, "duplicate definition of function '%s'", name);
        diag_note(P->diag, P->src, y->func->loc, "'%s' was defined here", name);
    } else if (y->called.first_line) {
        diag_note(P->diag, P->src, loc, "'%s' is defined here, after its use at line %d: a "
                  "function can only call functions defined before it", name, y->called.first_line);
    }
    P->cur = f;
    P->scope = 1;
    P->nparams = 0;
    P->block_result = NODE_NONE;
    memset(&P->block_result_loc, 0, sizeof P->block_result_loc);
}

void front_param(Parser *P, const char *name, Loc loc, Shape shape)
{
    Sym *y = sym(P, name);
    if (y->var_scope == P->scope) {
        front_error(P, loc, "duplicate parameter '%s'", name);
        return;
    }
    if (P->nparams == P->capparams) {
        P->capparams = P->capparams ? 2 * P->capparams : 16;
        P->params = xrealloc(P->params, P->capparams * sizeof *P->params);
        P->param_name = xrealloc(P->param_name, P->capparams * sizeof *P->param_name);
        P->param_loc = xrealloc(P->param_loc, P->capparams * sizeof *P->param_loc);
    }
    NodeId in = ir_input(P->prog->g, shape);
    P->params[P->nparams] = in;
    P->param_name[P->nparams] = y->name;
    P->param_loc[P->nparams++] = loc;
    bind(P, y, in, loc);
}

void front_register_func(Parser *P, Func *f)
{
    Program *p = P->prog;
    p->func = xrealloc(p->func, (p->nfunc + 1) * sizeof *p->func);
    p->func[p->nfunc++] = f;
    Sym *y = sym(P, f->name);
    if (!y->func)
        y->func = f;
}

/* Copies the collected parameters into f and closes its scope. */
void front_finish_func(Parser *P, Func *f, NodeId result)
{
    Arena *a = P->prog->arena;
    f->ninputs = P->nparams;
    f->input = arena_alloc(a, (P->nparams + 1) * sizeof *f->input);
    f->input_name = arena_alloc(a, (P->nparams + 1) * sizeof *f->input_name);
    f->input_loc = arena_alloc(a, (P->nparams + 1) * sizeof *f->input_loc);
    memcpy(f->input, P->params, P->nparams * sizeof *f->input);
    memcpy(f->input_name, P->param_name, P->nparams * sizeof *f->input_name);
    memcpy(f->input_loc, P->param_loc, P->nparams * sizeof *f->input_loc);
    f->result = result;
    unwind_scope(P);
    P->cur = NULL;
}

void front_func_end(Parser *P, NodeId result, Loc loc)
{
    (void)loc;
    Func *f = P->cur;
    front_finish_func(P, f, result);
    front_register_func(P, f);
}

void front_block_expr(Parser *P, NodeId value, Loc loc)
{
    if (P->block_result_loc.first_line) {
        front_error(P, P->block_result_loc, "this expression is not the last line of the body, so it has no effect");
        diag_note(P->diag, P->src, loc, "the result of a body is its last line");
    }
    P->block_result = value;
    P->block_result_loc = loc;
}

void front_block_end(Parser *P, Loc close)
{
    if (!P->block_result_loc.first_line)
        front_error(P, close, "the body of '%s' ends without a result expression", P->cur->name);
    front_func_end(P, P->block_result, close);
}

/* Range sums broken off by a syntax error: restore the names they bound. */
static void abandon_ranges(Parser *P)
{
    if (P->nrange > 2)          /* the deeper ones were only counted */
        P->nrange = 2;
    while (P->nrange > 0) {
        struct RangeVar *r = &P->range[--P->nrange];
        Sym *y = r->sym;
        y->var = r->var;
        y->var_loc = r->loc;
        y->var_scope = r->scope;
        free(r->slice);
        r->slice = NULL;
    }
}

void front_recover(Parser *P)
{
    front_net_abandon(P);
    abandon_ranges(P);
    if (P->cur) {               /* a definition broken off by a syntax error */
        unwind_scope(P);
        P->cur = NULL;
    }
    P->nargs = 0;
}

NodeId front_params_of(Parser *P, const char *name, Loc loc)
{
    Func *f = sym(P, name)->func;
    if (!f || !f->net) {
        front_error(P, loc, "'%s' is not a network", name);
        return NODE_NONE;
    }
    return ir_const(P->prog->g, (double)shape_size(P->prog->g->node[f->input[f->ninputs - 1]].shape));
}

/* ---- driver ---- */

Func *program_find(const Program *p, const char *name)
{
    for (uint32_t i = 0; i < p->nfunc; i++)
        if (strcmp(p->func[i]->name, name) == 0)
            return p->func[i];
    return NULL;
}

/* A name of --wrt that is not an input: say which are, and the closest. */
static void wrt_unknown(const Func *f, const Source *list, Loc loc, const char *name,
                        size_t len, Diag *d)
{
    Buf names = {0};
    char want[64];
    snprintf(want, sizeof want, "%.*s", len < 63 ? (int)len : 63, name);
    const char *best = NULL;
    int bestd = 99;
    for (uint32_t i = 0; i < f->ninputs; i++) {
        const char *cand = f->input_name[i];
        size_t longer = strlen(cand) > strlen(want) ? strlen(cand) : strlen(want);
        buf_printf(&names, "%s%s", i ? ", " : "", cand);
        /* Input names are often one letter: 'q' is not a slip for 'x'. */
        if ((size_t)edit_distance(want, cand) < longer || !strcasecmp(want, cand))
            consider(&best, &bestd, want, cand);
    }
    diag_error(d, list, loc, "'%.*s' is not an input of %s (its inputs: %s)", (int)len, name,
               f->name, names.data ? names.data : "none");
    if (best)
        diag_note(d, list, loc, "did you mean '%s'?", best);
    buf_free(&names);
}

int front_wrt(const Func *f, const Source *list, uint8_t *wrt, Diag *d)
{
    const char *s = list->text, *end = s + list->len;
    int errors = d->nerrors;
    memset(wrt, 0, f->ninputs);
    for (const char *p = s; p <= end;) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        q = q ? q : end;
        const char *b = p, *e = q;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        Loc loc = {1, (int)(b - s) + 1, 1, (int)(e - s) + 1 + (b == e)};
        uint32_t i = 0;
        while (i < f->ninputs && !(strlen(f->input_name[i]) == (size_t)(e - b) &&
                                   !strncmp(f->input_name[i], b, (size_t)(e - b))))
            i++;
        if (b == e)
            diag_error(d, list, loc, list->len ? "expected an input name" :
                       "expected input names, e.g. x,p");
        else if (i == f->ninputs)
            wrt_unknown(f, list, loc, b, (size_t)(e - b), d);
        else if (wrt[i])
            diag_error(d, list, loc, "'%s' is listed twice", f->input_name[i]);
        else
            wrt[i] = 1;
        p = q + 1;
    }
    return d->nerrors > errors ? -1 : 0;
}

void program_free(Program *p)
{
    if (!p)
        return;
    if (p->bare) {
        free(p->bare->input);
        free(p->bare->input_name);
        free(p->bare->input_loc);
    }
    free(p->func);
    ir_free(p->g);
    arena_free(p->arena);
    free(p);
}

static void parser_free(Parser *P)
{
    front_net_abandon(P);
    abandon_ranges(P);
    free(P->symtab);
    free(P->undo);
    free(P->params);
    free(P->param_name);
    free(P->param_loc);
    free(P->args);
    free(P->argloc);
}

Program *front_parse(const Source *src, int bare_mode, Diag *d)
{
    return front_parse_shaped(src, bare_mode, NULL, 0, d);
}

/* One parse of src with `parse` into a new Program; NULL after errors.
 * With `probe`, *failed tells whether it stopped at a syntax error. */
static Program *parse_program(const Source *src, int bare_mode, const BareShape *shapes,
                              uint32_t nshapes, Diag *d, int (*parse)(Parser *),
                              int probe, int *failed)
{
    Program *p = xmalloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->arena = arena_new();
    p->g = ir_new();
    p->src = *src;
    Parser P;
    memset(&P, 0, sizeof P);
    P.src = &p->src;
    P.diag = d;
    P.prog = p;
    P.bare_mode = bare_mode;
    P.bare_shapes = shapes;
    P.nbare_shapes = nshapes;
    P.probe = probe;
    /* Arguments are addressed as args + nargs, also for f(): never NULL. */
    P.capargs = 32;
    P.args = xmalloc(P.capargs * sizeof *P.args);
    P.argloc = xmalloc(P.capargs * sizeof *P.argloc);
    P.capparams = 16;           /* copied with memcpy, also for f() */
    P.params = xmalloc(P.capparams * sizeof *P.params);
    P.param_name = xmalloc(P.capparams * sizeof *P.param_name);
    P.param_loc = xmalloc(P.capparams * sizeof *P.param_loc);
    if (bare_mode) {
        p->bare = arena_alloc(p->arena, sizeof *p->bare);
        p->bare->name = "f";
        p->bare->first = 1;
    }
    lex_init(&P.lx, src->text, src->len);
    int errors_before = d->nerrors;
    int rc = parse(&P);
    *failed = probe && (rc != 0 || P.probe_failed);
    if (*failed) {
        parser_free(&P);
        program_free(p);
        return NULL;
    }
    if (rc != 0 && d->nerrors == errors_before)
        diag_error(d, &p->src, loc_point(P.lx.line, 1), "the input is too deeply nested");
    if (bare_mode && d->nerrors == errors_before && !P.bare_result_loc.first_line)
        diag_error(d, &p->src, loc_point(P.lx.line, 1), "there is no expression to evaluate");
    if (bare_mode) {
        p->bare->result = P.bare_result;
        p->bare->loc = P.bare_result_loc;
    }
    parser_free(&P);
    if (d->nerrors > errors_before) {
        program_free(p);
        return NULL;
    }
    return p;
}

/* Bison's LAC (parse.lac full in grammar/parser.y) checks every lookahead
 * token before acting on it, a fifth of the parse, only so that a syntax
 * error lists exactly the tokens that could stand there. Without a syntax
 * error it changes nothing: both parsers make the same moves, so the same
 * actions run in the same order with the same lexer calls between them.
 * So the text is parsed without LAC first; at a syntax error that parse
 * stops, its program and its messages are dropped (it may have reduced
 * rules LAC would have refused, and reported what follows from them), and
 * the text is parsed again with LAC. */
Program *front_parse_shaped(const Source *src, int bare_mode, const BareShape *shapes,
                            uint32_t nshapes, Diag *d)
{
    size_t out_len = d->out.len;
    int nerrors = d->nerrors, failed;
    Program *p = parse_program(src, bare_mode, shapes, nshapes, d, fast_parse, 1, &failed);
    if (!failed)
        return p;
    d->out.len = out_len;
    if (d->out.data)
        d->out.data[out_len] = 0;
    d->nerrors = nerrors;
    return parse_program(src, bare_mode, shapes, nshapes, d, yyparse, 0, &failed);
}

/* check.c — the `check` statements of problem files: parser actions that
 * record each check (its left side as a function of fresh inputs, its
 * expected value, its tolerance), and the comparison of an actual value
 * with the expected one. Running the checks belongs to the driver. */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A literal value as written: a number, or a list of literals. */
struct Lit {
    Loc loc;
    double num;
    uint32_t n;                 /* items of a list */
    Lit **item;                 /* NULL for a number */
};

static CheckList *list(Parser *P)
{
    Program *p = P->prog;
    if (!p->checks) {
        p->checks = arena_alloc(p->arena, sizeof *p->checks);
        p->checks->tol = CHECK_DEFAULT_TOL;
    }
    return p->checks;
}

/* Arrays live in the program's arena too, so program_free frees them. */
static void *grow(Parser *P, void *old, uint32_t *cap, size_t size)
{
    uint32_t n = *cap ? 2 * *cap : 16;
    void *p = arena_alloc(P->prog->arena, n * size);
    if (old)
        memcpy(p, old, *cap * size);
    *cap = n;
    return p;
}

const CheckList *check_list(const Program *p)
{
    static const CheckList empty = {.tol = CHECK_DEFAULT_TOL};
    return p->checks ? p->checks : &empty;
}

/* ---- left sides ---- */

static void set_lhs(Parser *P, CheckKind kind, Func *f, double *in, uint32_t nin)
{
    CheckList *L = list(P);
    L->kind = kind;
    L->lhs = f;
    L->in = in;
    L->nin = nin;
}

static Func *new_func(Parser *P, uint32_t ninputs, Loc loc)
{
    Arena *a = P->prog->arena;
    Func *f = arena_alloc(a, sizeof *f);
    f->name = "check";
    f->loc = loc;
    f->ninputs = ninputs;
    f->input = arena_alloc(a, (ninputs + 1) * sizeof *f->input);
    f->input_name = arena_alloc(a, (ninputs + 1) * sizeof *f->input_name);
    f->input_loc = arena_alloc(a, (ninputs + 1) * sizeof *f->input_loc);
    f->first = 1;
    return f;
}

void check_lhs_expr(Parser *P, NodeId value, Loc loc)
{
    Func *f = new_func(P, 0, loc);
    f->result = value;
    set_lhs(P, CHECK_VALUE, value ? f : NULL, NULL, 0);
}

static int constant_args(Parser *P, const NodeId *args, const Loc *argloc, int n)
{
    Graph *g = P->prog->g;
    for (int i = 0; i < n; i++) {
        if (args[i] == NODE_NONE)
            return 0;
        if (!ir_is_constant(g, args[i])) {
            front_error(P, argloc[i], "the arguments of a checked call must be constants");
            return 0;
        }
    }
    return 1;
}

/* The call NAME(args) becomes NAME(a1, ..., an) with fresh inputs ai of
 * the arguments' shapes: the call itself (a network over a batch, say)
 * runs as generated C, with the argument values passed at run time. */
void check_lhs_call(Parser *P, CheckKind kind, const char *name, Loc loc, int nargs)
{
    Graph *g = P->prog->g;
    P->nargs -= (uint32_t)nargs;
    NodeId *args = xmalloc(((size_t)nargs + 1) * sizeof *args);
    Loc *argloc = xmalloc(((size_t)nargs + 1) * sizeof *argloc);
    memcpy(args, P->args + P->nargs, (size_t)nargs * sizeof *args);
    memcpy(argloc, P->argloc + P->nargs, (size_t)nargs * sizeof *argloc);
    set_lhs(P, kind, NULL, NULL, 0);
    if (!constant_args(P, args, argloc, nargs))
        goto out;
    Func *f = new_func(P, (uint32_t)nargs, loc);
    uint32_t nin = 0;
    for (int i = 0; i < nargs; i++)
        nin += shape_size(g->node[args[i]].shape);
    double *in = arena_alloc(P->prog->arena, (nin + 1) * sizeof *in);
    nin = 0;
    for (int i = 0; i < nargs; i++) {
        const Node *a = &g->node[args[i]];
        uint32_t size = shape_size(a->shape);
        if (a->op == OP_CONST)
            in[nin] = a->num;
        else
            memcpy(in + nin, ir_tconst_data(g, args[i]), size * sizeof *in);
        nin += size;
        f->input[i] = ir_input(g, a->shape);
        f->input_name[i] = "arg";
        f->input_loc[i] = argloc[i];
    }
    for (int i = 0; i < nargs; i++)
        front_push_arg(P, f->input[i], argloc[i]);
    f->result = front_call(P, name, loc, nargs);
    if (f->result == NODE_NONE)
        goto out;
    Shape s = g->node[f->result].shape;
    char sh[48];
    if (kind == CHECK_GRAD && shape_size(s) != 1) {
        front_error(P, loc, "'grad' needs a scalar result, but '%s' gives %s; use 'jacobian'",
                    name, shape_str(s, sh));
        goto out;
    }
    if (kind == CHECK_JACOBIAN && s.rank > 1) {
        front_error(P, loc, "'jacobian' needs a scalar or vector result, but '%s' gives %s",
                    name, shape_str(s, sh));
        goto out;
    }
    set_lhs(P, kind, f, in, nin);
out:
    free(args);
    free(argloc);
}

/* ---- expected values ---- */

static void push_lit(Parser *P, Lit *l)
{
    CheckList *L = list(P);
    if (L->nlits == L->caplits)
        L->lits = grow(P, L->lits, &L->caplits, sizeof *L->lits);
    L->lits[L->nlits++] = l;
}

void check_lit_num(Parser *P, double v, Loc loc)
{
    Lit *l = arena_alloc(P->prog->arena, sizeof *l);
    l->loc = loc;
    l->num = v;
    push_lit(P, l);
}

void check_lit_word(Parser *P, const char *word, int neg, Loc loc)
{
    double v = 0;
    if (!strcmp(word, "nan"))
        v = NAN;
    else if (!strcmp(word, "inf"))
        v = neg ? -INFINITY : INFINITY;
    else
        front_error(P, loc, "expected a number, 'nan' or 'inf' in the expected value, not '%s'", word);
    check_lit_num(P, v, loc);
}

void check_lit_list(Parser *P, int n, Loc loc)
{
    CheckList *L = list(P);
    Lit *l = arena_alloc(P->prog->arena, sizeof *l);
    l->loc = loc;
    l->n = (uint32_t)n;
    l->item = arena_alloc(P->prog->arena, ((size_t)n + 1) * sizeof *l->item);
    L->nlits -= (uint32_t)n;
    memcpy(l->item, L->lits + L->nlits, (size_t)n * sizeof *l->item);
    push_lit(P, l);
}

/* The shape is read along the first items; every other item must agree.
 * Depth is bounded by VALUE_MAX_RANK, so the recursion is too. */
static int lit_fill(Parser *P, const Lit *l, const Value *v, int depth, double **out)
{
    if (depth == v->rank) {
        if (l->item) {
            front_error(P, l->loc, "a list where a number was expected (the first item at this depth is a number)");
            return 0;
        }
        *(*out)++ = l->num;
        return 1;
    }
    if (!l->item) {
        front_error(P, l->loc, "a number where a list of %u was expected", v->dim[depth]);
        return 0;
    }
    if (l->n != v->dim[depth]) {
        front_error(P, l->loc, "this list has %u %s, but the first list at this depth has %u",
                    l->n, l->n == 1 ? "item" : "items", v->dim[depth]);
        return 0;
    }
    for (uint32_t i = 0; i < l->n; i++)
        if (!lit_fill(P, l->item[i], v, depth + 1, out))
            return 0;
    return 1;
}

static int lit_value(Parser *P, const Lit *l, Value *v)
{
    memset(v, 0, sizeof *v);
    v->n = 1;
    for (const Lit *x = l; x->item; x = x->item[0]) {
        if (x->n == 0) {
            front_error(P, x->loc, "an empty list cannot be an expected value");
            return 0;
        }
        if (v->rank == VALUE_MAX_RANK) {
            front_error(P, x->loc, "expected values have at most %d dimensions", VALUE_MAX_RANK);
            return 0;
        }
        if ((uint64_t)v->n * x->n > GRADC_MAX_ELEMS) {
            /* before lit_fill has seen the items: the first ones alone
             * can claim 256^4 = 2^32 elements in 2 KB of text */
            front_error(P, x->loc, "an expected value has more than %u elements", GRADC_MAX_ELEMS);
            return 0;
        }
        v->dim[v->rank++] = x->n;
        v->n *= x->n;
    }
    v->v = arena_alloc(P->prog->arena, v->n * sizeof *v->v);
    double *out = v->v;
    return lit_fill(P, l, v, 0, &out);
}

/* ---- statements ---- */

double check_tol_value(Parser *P, double v, Loc loc)
{
    if (!(v >= 0) || isinf(v)) {
        front_error(P, loc, "a tolerance must be a finite number >= 0");
        return CHECK_DEFAULT_TOL;
    }
    return v;
}

void check_tolerance(Parser *P, double tol, Loc loc)
{
    list(P)->tol = check_tol_value(P, tol, loc);
}

/* Byte offset of a 1-based line and column. */
static size_t offset_of(const Source *s, int line, int col)
{
    size_t i = 0;
    for (int l = 1; l < line && i < s->len; i++)
        if (s->text[i] == '\n')
            l++;
    i += (size_t)(col > 0 ? col - 1 : 0);
    return i < s->len ? i : s->len;
}

/* The statement as written, with runs of blanks (and newlines inside
 * brackets) collapsed to one space and comments dropped. */
static const char *statement_text(Parser *P, Loc from, Loc all)
{
    const Source *s = P->src;
    size_t b = offset_of(s, from.first_line, from.first_column);
    size_t e = offset_of(s, all.last_line, all.last_column);
    Buf t = {0};
    buf_puts(&t, "");
    int space = 0;
    for (size_t i = b; i < e; i++) {
        char c = s->text[i];
        if (c == '#') {
            while (i < e && s->text[i] != '\n')
                i++;
            space = 1;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\\') {
            space = 1;
            continue;
        }
        if (space && t.len)
            buf_puts(&t, " ");
        space = 0;
        buf_put(&t, &c, 1);
    }
    const char *r = arena_strdup(P->prog->arena, t.data);
    buf_free(&t);
    return r;
}

void check_end(Parser *P, const char *name, int negate, double within, Loc lhs, Loc all)
{
    CheckList *L = list(P);
    Lit *lit = L->nlits ? L->lits[--L->nlits] : NULL;
    L->nlits = 0;
    Func *f = L->lhs;
    L->lhs = NULL;
    Check *c = arena_alloc(P->prog->arena, sizeof *c);
    if (!f || !lit || !lit_value(P, lit, &c->expected))
        return;                 /* errors were reported */
    c->loc = all;
    c->name = name;
    c->text = statement_text(P, lhs, all);
    c->kind = L->kind;
    c->negate = negate;
    c->tol = within >= 0 ? within : L->tol;
    c->lhs = f;
    c->in = L->in;
    c->nin = L->nin;
    if (L->n == L->cap)
        L->check = grow(P, L->check, &L->cap, sizeof *L->check);
    L->check[L->n++] = c;
}

/* ---- comparing ---- */

int check_close(double a, double e, double tol)
{
    if (isnan(e) || isnan(a))
        return isnan(e) && isnan(a);
    if (isinf(e) || isinf(a))
        return a == e;
    return fabs(a - e) <= tol + tol * fabs(e);
}

/* The dimensions that are not 1. */
static int squeeze(const Value *v, uint32_t *dim)
{
    int r = 0;
    for (int i = 0; i < v->rank; i++)
        if (v->dim[i] != 1)
            dim[r++] = v->dim[i];
    return r;
}

Compare check_compare(const Value *actual, const Value *expected, double tol, int negate)
{
    Compare c = {0, 0, -1};
    uint32_t da[VALUE_MAX_RANK], de[VALUE_MAX_RANK];
    int ra = squeeze(actual, da), re = squeeze(expected, de);
    c.shape_ok = ra == re && !memcmp(da, de, (size_t)ra * sizeof *da);
    if (!c.shape_ok)
        return c;               /* fails for == and != alike */
    for (uint32_t i = 0; i < expected->n; i++)
        if (!check_close(actual->v[i], expected->v[i], tol)) {
            c.first = i;
            break;
        }
    c.pass = negate ? c.first >= 0 : c.first < 0;
    return c;
}

static void put_num(Buf *out, double x)
{
    char s[32];
    num_format(x, s);
    buf_puts(out, s);
}

static void format_rec(const Value *v, Buf *out, int depth, uint32_t *pos,
                       uint32_t max, int *cut)
{
    if (depth == v->rank) {
        if (*pos >= max)
            *cut = 1;
        else
            put_num(out, v->v[*pos]);
        ++*pos;
        return;
    }
    buf_puts(out, "[");
    for (uint32_t i = 0; i < v->dim[depth]; i++) {
        if (*cut)
            break;
        if (i)
            buf_puts(out, ", ");
        format_rec(v, out, depth + 1, pos, max, cut);
        if (*cut)
            buf_puts(out, "...");
    }
    buf_puts(out, "]");
}

void value_format(const Value *v, Buf *out, uint32_t max_elems)
{
    uint32_t pos = 0;
    int cut = 0;
    format_rec(v, out, 0, &pos, max_elems ? max_elems : UINT32_MAX, &cut);
}

static void json_rec(const Value *v, Buf *out, int depth, uint32_t *pos)
{
    if (depth == v->rank) {
        double x = v->v[(*pos)++];
        if (isnan(x))
            buf_puts(out, "\"NaN\"");
        else if (isinf(x))
            buf_puts(out, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else
            put_num(out, x);
        return;
    }
    buf_puts(out, "[");
    for (uint32_t i = 0; i < v->dim[depth]; i++) {
        if (i)
            buf_puts(out, ", ");
        json_rec(v, out, depth + 1, pos);
    }
    buf_puts(out, "]");
}

void value_json(const Value *v, Buf *out)
{
    uint32_t pos = 0;
    json_rec(v, out, 0, &pos);
}

void value_index(const Value *v, uint64_t i, Buf *out)
{
    uint32_t dim[VALUE_MAX_RANK], idx[VALUE_MAX_RANK];
    int r = squeeze(v, dim);
    for (int k = r - 1; k >= 0; k--) {
        idx[k] = (uint32_t)(i % dim[k]);
        i /= dim[k];
    }
    buf_puts(out, "[");
    for (int k = 0; k < r; k++)
        buf_printf(out, "%s%u", k ? ", " : "", idx[k]);
    buf_puts(out, "]");
}

void value_shape(const Value *v, Buf *out)
{
    if (v->rank == 0) {
        buf_puts(out, "scalar");
        return;
    }
    buf_puts(out, "[");
    for (int k = 0; k < v->rank; k++)
        buf_printf(out, "%s%u", k ? ", " : "", v->dim[k]);
    buf_puts(out, "]");
}

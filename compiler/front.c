/* front.c — the semantic actions behind the grammar: names, scopes,
 * function definitions and calls, turning each construct straight into IR.
 * Errors are reported here with the construct's source location (before
 * hash-consing merges nodes) and yield NODE_NONE, which poisons what uses
 * it, so one mistake gives one message. */
#include "front.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int yyparse(Parser *P);

struct Sym {
    const char *name;
    uint32_t hash;
    NodeId var;                 /* bound variable, if var_scope >= 0 */
    Loc var_loc;
    int var_scope;
    Func *func;                 /* user function of this name */
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
        if (y->hash == hash && strncmp(y->name, s, n) == 0 && !y->name[n])
            return y;
    Sym *y = arena_alloc(P->prog->arena, sizeof *y);
    y->name = arena_strndup(P->prog->arena, s, n);
    y->hash = hash;
    y->var_scope = -1;
    P->symtab[h] = y;
    P->nsym++;
    return y;
}

const char *front_intern(Parser *P, const char *s, size_t n)
{
    return sym_get(P, s, n)->name;
}

static Sym *sym(Parser *P, const char *name)
{
    return sym_get(P, name, strlen(name));
}

void front_error(Parser *P, Loc loc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
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
    f->input[n] = ir_input(P->prog->g);
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
    const char *s = suggest_variable(P, name);
    if (s)
        diag_note(P->diag, P->src, loc, "did you mean '%s'?", s);
    return NODE_NONE;
}

NodeId front_unary(Parser *P, Op op, NodeId a, Loc loc)
{
    (void)loc;
    return ir_op(P->prog->g, op, a, NODE_NONE);
}

NodeId front_binary(Parser *P, Op op, NodeId a, NodeId b, Loc loc)
{
    (void)loc;
    return ir_op(P->prog->g, op, a, b);
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

static NodeId call_user(Parser *P, Func *f, const NodeId *args)
{
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

NodeId front_call(Parser *P, const char *name, Loc loc, int nargs)
{
    P->nargs -= (uint32_t)nargs;
    const NodeId *args = P->args + P->nargs;
    int op = op_lookup_call(name);
    Func *f = sym(P, name)->func;
    int want = op >= 0 ? op_info[op].arity : f ? (int)f->ninputs : -1;
    if (want < 0) {
        front_error(P, loc, "unknown function '%s'", name);
        const char *s = suggest_function(P, name);
        if (s)
            diag_note(P->diag, P->src, loc, "did you mean '%s'?", s);
        return NODE_NONE;
    }
    if (nargs != want) {
        front_error(P, loc, "function '%s' takes %d %s, but %d %s given", name,
                    want, plural(want, "argument", "arguments"), nargs,
                    plural(nargs, "was", "were"));
        return NODE_NONE;
    }
    if (op >= 0)
        return ir_op(P->prog->g, (Op)op, args[0], want == 2 ? args[1] : NODE_NONE);
    return call_user(P, f, args);
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
    }
    P->cur = f;
    P->scope = 1;
    P->nparams = 0;
    P->block_result = NODE_NONE;
    memset(&P->block_result_loc, 0, sizeof P->block_result_loc);
}

void front_param(Parser *P, const char *name, Loc loc)
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
    NodeId in = ir_input(P->prog->g);
    P->params[P->nparams] = in;
    P->param_name[P->nparams] = y->name;
    P->param_loc[P->nparams++] = loc;
    bind(P, y, in, loc);
}

static void register_func(Parser *P, Func *f)
{
    Program *p = P->prog;
    p->func = xrealloc(p->func, (p->nfunc + 1) * sizeof *p->func);
    p->func[p->nfunc++] = f;
    Sym *y = sym(P, f->name);
    if (!y->func)
        y->func = f;
}

void front_func_end(Parser *P, NodeId result, Loc loc)
{
    (void)loc;
    Func *f = P->cur;
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
    register_func(P, f);
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

void front_recover(Parser *P)
{
    if (P->cur) {               /* a definition broken off by a syntax error */
        unwind_scope(P);
        P->cur = NULL;
    }
    P->nargs = 0;
}

/* ---- driver ---- */

Func *program_find(const Program *p, const char *name)
{
    for (uint32_t i = 0; i < p->nfunc; i++)
        if (strcmp(p->func[i]->name, name) == 0)
            return p->func[i];
    return NULL;
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
    if (bare_mode) {
        p->bare = arena_alloc(p->arena, sizeof *p->bare);
        p->bare->name = "f";
        p->bare->first = 1;
    }
    lex_init(&P.lx, src->text, src->len);
    int errors_before = d->nerrors;
    int rc = yyparse(&P);
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

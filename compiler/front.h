/* front.h — what the lexer (grammar/lexer.re), the parser (grammar/parser.y)
 * and the semantic actions (front.c) share. The parser builds IR directly
 * through the front_* actions: no syntax tree, so no recursion anywhere
 * that a deeply nested formula could overflow. */
#ifndef GRADC_FRONT_H
#define GRADC_FRONT_H

#include "gradc.h"

typedef struct Lexer {
    const char *text, *cur, *lim, *tok;
    const char *line_start;
    int line;
    int depth;                  /* ( and [ nesting: newlines inside are spaces */
    Loc open, brace;            /* the outermost open ( or [, the open {: for
                                   "not closed" notes (line 0: none) */
    char open_ch;               /* '(' or '[' */
    int bad_line;               /* last line with a stray character */
    int at_stmt_start;
    int done;
    int in_check;               /* inside a `check` statement (check.h) */
    const char *check_mark;     /* end of `check`, its "name" or `grad` */
} Lexer;

/* The value of a token or of a grammar symbol (bison's YYSTYPE, one type
 * for both parsers made from grammar/parser.y). */
typedef union ParseValue {
    double num;
    const char *name;
    NodeId node;
    int count;
} ParseValue;

typedef struct Sym Sym;
struct NetBuild;
typedef struct Undo Undo;

typedef struct Parser {
    Lexer lx;
    const Source *src;
    Diag *diag;
    Program *prog;
    int bare_mode;
    const BareShape *bare_shapes;
    uint32_t nbare_shapes;
    /* names */
    Sym **symtab;
    uint32_t symcap, nsym;
    Sym *last_sym;              /* the last name interned (front.c, sym) */
    int scope;                  /* 0 global, >0 inside a function body */
    Undo *undo;                 /* local bindings to unwind at function end */
    uint32_t nundo, capundo;
    /* the function being defined */
    Func *cur;
    NodeId *params;
    const char **param_name;
    Loc *param_loc;
    uint32_t nparams, capparams;
    NodeId block_result;
    Loc block_result_loc;
    /* call arguments, a stack shared by nested calls */
    NodeId *args;
    Loc *argloc;
    uint32_t nargs, capargs;
    /* index variables of range sums being parsed (innermost last) */
    struct RangeVar {
        void *sym;              /* the index's name and its outer binding */
        NodeId var;
        Loc loc;
        int scope;
        uint32_t count;         /* terms */
        int64_t lo;             /* first index */
        NodeId ivar;            /* the symbolic index, an IVAR node */
        uint32_t first;         /* first node created for the body */
        NodeId *slice;          /* slices taken at the index: x[k*i + c] */
        uint32_t nslice, capslice;
    } range[2];                 /* [1] only while reporting a nested one */
    int nrange;
    uint32_t nivar;
    /* the network being declared (net.c) */
    struct NetBuild *net;
    /* the first parse, without LAC, stops at a syntax error (front.c) */
    int probe, probe_failed;
    /* the bare expression */
    NodeId bare_result;
    Loc bare_result_loc;
} Parser;

/* grammar/lexer.re */
void lex_init(Lexer *lx, const char *text, size_t len);
/* The next token's kind (a token of grammar/parser.y), value and place. */
int lex_next(ParseValue *lval, Loc *lloc, Parser *P);

/* front.c: actions called from the grammar */
NodeId front_number(Parser *P, double v, Loc loc);
NodeId front_var(Parser *P, const char *name, Loc loc);
NodeId front_unary(Parser *P, Op op, NodeId a, Loc loc);
NodeId front_binary(Parser *P, Op op, NodeId a, NodeId b, Loc loc);
void front_push_arg(Parser *P, NodeId a, Loc loc);
NodeId front_call(Parser *P, const char *name, Loc loc, int nargs);
void front_let(Parser *P, const char *name, Loc loc, NodeId value);
void front_expr_stmt(Parser *P, NodeId value, Loc loc);
void front_func_begin(Parser *P, const char *name, Loc loc);
void front_param(Parser *P, const char *name, Loc loc, Shape shape);
Shape front_dims(Parser *P, double m, Loc mloc, double n, Loc nloc);
NodeId front_matmul(Parser *P, NodeId a, NodeId b, Loc loc);
NodeId front_literal(Parser *P, int n, Loc loc);
NodeId front_subscript(Parser *P, NodeId a, Loc aloc, int n, Loc loc);
NodeId front_params_of(Parser *P, const char *net, Loc loc);
void front_range_begin(Parser *P, const char *name, Loc loc, NodeId lo, Loc loloc,
                       NodeId hi, Loc hiloc);
NodeId front_range_end(Parser *P, const char *fn, Loc fnloc, NodeId body, Loc bodyloc);
/* net.c: network declarations */
void front_net_begin(Parser *P, const char *name, Loc loc);
void front_layer_opt(Parser *P, const char *name, Loc loc, NodeId value, Loc vloc);
void front_dense(Parser *P, const char *kind, Loc kloc, double units, Loc uloc,
                 const char *act, Loc aloc, int nopts);
void front_net_end(Parser *P, Loc loc);
NodeId front_net_init(Parser *P, Func *f);
void front_net_abandon(Parser *P);
NodeId net_call_batch(Parser *P, const Network *net, NodeId X, NodeId theta);
/* shared with net.c */
void front_register_func(Parser *P, Func *f);
void front_finish_func(Parser *P, Func *f, NodeId result);
NodeId front_stack(Parser *P, const NodeId *elems, uint32_t n);
void front_func_end(Parser *P, NodeId result, Loc loc);
void front_block_expr(Parser *P, NodeId value, Loc loc);
void front_block_end(Parser *P, Loc close);
void front_recover(Parser *P);
const char *front_intern(Parser *P, const char *s, size_t n);
void front_error(Parser *P, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

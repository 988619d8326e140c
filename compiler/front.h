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
    int at_stmt_start;
    int done;
} Lexer;

typedef struct Sym Sym;
typedef struct Undo Undo;

typedef struct Parser {
    Lexer lx;
    const Source *src;
    Diag *diag;
    Program *prog;
    int bare_mode;
    /* names */
    Sym **symtab;
    uint32_t symcap, nsym;
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
    /* the bare expression */
    NodeId bare_result;
    Loc bare_result_loc;
} Parser;

/* grammar/lexer.re */
void lex_init(Lexer *lx, const char *text, size_t len);

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
void front_param(Parser *P, const char *name, Loc loc);
void front_func_end(Parser *P, NodeId result, Loc loc);
void front_block_expr(Parser *P, NodeId value, Loc loc);
void front_block_end(Parser *P, Loc close);
void front_recover(Parser *P);
const char *front_intern(Parser *P, const char *s, size_t n);
void front_error(Parser *P, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

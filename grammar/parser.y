/* parser.y — the grammar of gradc sources. Actions are one-line calls into
 * front.c, which builds IR directly; precedence, from loosest:
 *   + -   (left)      * / @ (left)    unary - +      ^ (right)      [ ]
 * so -x^2 is -(x^2), 2^3^2 is 2^9, and x*-y, y^-1 and --x are valid. */
%define api.pure full
%define api.location.type {Loc}
%define api.value.type {ParseValue}
%define parse.error custom
%define parse.lac full
%locations
%param {Parser *P}

%code requires {
#include "front.h"
}

%code {
#include <string.h>
#include "check.h"
static void yyerror(const Loc *loc, Parser *P, const char *msg);
/* The build makes two parsers of this grammar (CMakeLists.txt): this one,
 * and one without LAC whose names start with fast_ (so yylex is fast_lex
 * there). Both read tokens from the one lexer. */
static int yylex(ParseValue *lval, Loc *lloc, Parser *P)
{
    return lex_next(lval, lloc, P);
}
/* Deep nesting is legal; the parser stack lives on the heap. */
#define YYMAXDEPTH 50000000
}

%token END 0 "end of input"
%token <num> NUMBER "number"
%token <name> IDENT "name"
%token <name> DEFNAME "function name"
%token SEP "end of line"
%token EQEQ "=="
%token NOTEQ "!="
%token DOTDOT ".."
%token NETWORK "network"
%token PARAMS "params"
%token CHECK "check"
%token TOLERANCE "tolerance"
%token GRAD "grad"
%token JACOBIAN "jacobian"
%token WITHIN "within"
%token <name> STRING "string"
%token <name> CALLNAME "a call compared with == or !="

%type <node> expr
%type <count> args arglist layeropts
%type <count> cmp litlist
%type <num> within
%type <name> checkname

/* Precedence, loosest first. Operators, subscripts and operands are all
 * rules of expr, ordered by these precedences, instead of a chain of
 * nonterminals (expr, term, unary, power, postfix, primary): a number or
 * a name becomes an expr in one reduction, not three or more, and the
 * parser's moves are most of its work on a big formula. The language is
 * the same: -x^2 is -(x^2), -x[0] is -(x[0]), x^y[0] is x^(y[0]), 2^-x
 * and x*-y parse, and ^ groups to the right. */
%left '+' '-'
%left '*' '/' '@'
%precedence UNARY
%right '^'
%precedence '['

%%

program
    : items
    ;

items
    : %empty
    | items item
    ;

item
    : SEP
    | stmt SEP
    | error SEP                 { yyerrok; front_recover(P); }
    ;

stmt
    : funcdef
    | check
    | TOLERANCE NUMBER          { check_tolerance(P, $2, @2); }
    | netdef
    | IDENT '=' expr            { front_let(P, $1, @1, $3); }
    | expr                      { front_expr_stmt(P, $1, @1); }
    ;

/* Problem files (compiler/check.h, docs/check.md). The expected value is
 * a literal, not an expression, so '[' and '-' after '==' are unambiguous. */
check
    : CHECK checkname checklhs cmp lit within
                                { check_end(P, $2, $4, $6, @3, @$); }
    ;

checkname
    : %empty                    { $$ = NULL; }
    | STRING
    ;

checklhs
    : expr                      { check_lhs_expr(P, $1, @1); }
    | CALLNAME '(' args ')'     { check_lhs_call(P, CHECK_VALUE, $1, @1, $3); }
    | GRAD CALLNAME '(' args ')'
                                { check_lhs_call(P, CHECK_GRAD, $2, @2, $4); }
    | JACOBIAN CALLNAME '(' args ')'
                                { check_lhs_call(P, CHECK_JACOBIAN, $2, @2, $4); }
    ;

cmp
    : EQEQ                      { $$ = 0; }
    | NOTEQ                     { $$ = 1; }
    ;

lit
    : NUMBER                    { check_lit_num(P, $1, @1); }
    | '-' NUMBER                { check_lit_num(P, -$2, @$); }
    | IDENT                     { check_lit_word(P, $1, 0, @1); }
    | '-' IDENT                 { check_lit_word(P, $2, 1, @$); }
    | '[' litlist ']'           { check_lit_list(P, $2, @$); }
    ;

litlist
    : lit                       { $$ = 1; }
    | litlist ',' lit           { $$ = $1 + 1; }
    ;

within
    : %empty                    { $$ = -1; }
    | WITHIN NUMBER             { $$ = check_tol_value(P, $2, @2); }
    | WITHIN '-' NUMBER         { $$ = check_tol_value(P, -$3, @2); }
    ;

funcdef
    : DEFNAME '('               { front_func_begin(P, $1, @1); }
      params ')' body
    ;

params
    : %empty
    | paramlist
    ;

paramlist
    : param
    | paramlist ',' param
    ;

param
    : IDENT                     { front_param(P, $1, @1, SHAPE_SCALAR); }
    | IDENT '[' NUMBER ']'      { front_param(P, $1, @1, front_dims(P, $3, @3, -1, @3)); }
    | IDENT '[' NUMBER ',' NUMBER ']'
                                { front_param(P, $1, @1, front_dims(P, $3, @3, $5, @5)); }
    ;

netdef
    : NETWORK IDENT '('         { front_net_begin(P, $2, @2); }
      params ')' '{' layers '}' { front_net_end(P, @9); }
    ;

layers
    : %empty
    | layers SEP
    | layers layer
    ;

layer
    : IDENT '(' NUMBER ',' IDENT layeropts ')'
                                { front_dense(P, $1, @1, $3, @3, $5, @5, $6); }
    ;

layeropts
    : %empty                    { $$ = 0; }
    | layeropts ',' IDENT '=' expr
                                { front_layer_opt(P, $3, @3, $5, @5); $$ = $1 + 1; }
    ;

body
    : '=' expr                  { front_func_end(P, $2, @2); }
    | '{' block '}'             { front_block_end(P, @3); }
    | '{' block bstmt '}'       { front_block_end(P, @4); }
    ;

block
    : %empty
    | block SEP
    | block bstmt SEP
    | block error SEP           { yyerrok; }
    ;

bstmt
    : IDENT '=' expr            { front_let(P, $1, @1, $3); }
    | expr                      { front_block_expr(P, $1, @1); }
    ;

expr
    : expr '+' expr             { $$ = front_binary(P, OP_ADD, $1, $3, @2); }
    | expr '-' expr             { $$ = front_binary(P, OP_SUB, $1, $3, @2); }
    | expr '*' expr             { $$ = front_binary(P, OP_MUL, $1, $3, @2); }
    | expr '/' expr             { $$ = front_binary(P, OP_DIV, $1, $3, @2); }
    | expr '@' expr             { $$ = front_matmul(P, $1, $3, @2); }
    | '-' expr %prec UNARY      { $$ = front_unary(P, OP_NEG, $2, @1); }
    | '+' expr %prec UNARY      { $$ = $2; }
    | expr '^' expr             { $$ = front_binary(P, OP_POW, $1, $3, @2); }
    | expr '[' arglist ']'      { $$ = front_subscript(P, $1, @1, $3, @2); }
    | NUMBER                    { $$ = front_number(P, $1, @1); }
    | IDENT                     { $$ = front_var(P, $1, @1); }
    | IDENT '(' args ')'        { $$ = front_call(P, $1, @1, $3); }
    | '(' expr ')'              { $$ = $2; }
    | '[' arglist ']'           { $$ = front_literal(P, $2, @1); }
    | PARAMS '(' IDENT ')'      { $$ = front_params_of(P, $3, @3); }
    | IDENT '(' IDENT '=' expr DOTDOT expr ','
                                { front_range_begin(P, $3, @3, $5, @5, $7, @7); }
      expr ')'                  { $$ = front_range_end(P, $1, @1, $10, @10); }
    ;

args
    : %empty                    { $$ = 0; }
    | arglist
    ;

arglist
    : expr                      { front_push_arg(P, $1, @1); $$ = 1; }
    | arglist ',' expr          { front_push_arg(P, $3, @3); $$ = $1 + 1; }
    ;

%%

/* Only for bison's own failures, such as an exhausted stack. */
static void yyerror(const Loc *loc, Parser *P, const char *msg)
{
    front_error(P, *loc, "%s (the input is nested too deeply)", msg);
}

/* "unexpected ')'; expected an expression": operators are left out of the
 * expected list when something more telling is there. */
static int yyreport_syntax_error(const yypcontext_t *ctx, Parser *P)
{
    /* The parser without LAC only finds out whether the text has a syntax
     * error (front.c, front_parse_shaped): it stops at the first one, and
     * the text is parsed again with LAC for the exact message. Returning 2
     * takes bison's exit for an exhausted memory, its only way out of here. */
    if (P->probe) {
        P->probe_failed = 1;
        return 2;
    }
    yysymbol_kind_t expected[16];
    int n = yypcontext_expected_tokens(ctx, expected, 16);
    yysymbol_kind_t got = yypcontext_token(ctx);
    /* A stray character already has its error; what the parser makes of
     * the rest of that line would only repeat it (the parse has failed). */
    if (P->lx.bad_line && P->lx.bad_line == yypcontext_location(ctx)->first_line)
        return 0;
    Buf msg = {0};
    buf_printf(&msg, "unexpected %s", yysymbol_name(got));
    if (got == YYSYMBOL_IDENT || got == YYSYMBOL_NUMBER) {
        const char *tok = P->lx.tok;
        buf_printf(&msg, " '%.*s'", (int)(P->lx.cur - tok), tok);
    }
    int expr_ok = 0, kept = 0, number_ok = 0, paren_ok = 0, list_ok = 0;
    const char *names[16];
    for (int i = 0; i < n; i++) {
        const char *name = yysymbol_name(expected[i]);
        paren_ok |= !strcmp(name, "'('");
        list_ok |= !strcmp(name, "'['");
        number_ok |= expected[i] == YYSYMBOL_NUMBER;
        if (expected[i] == YYSYMBOL_NUMBER || expected[i] == YYSYMBOL_IDENT)
            expr_ok = 1;
        else if (expected[i] != YYSYMBOL_YYerror && !strstr("'+' '-' '*' '/' '^' '@' '['", name))
            names[kept++] = name;
    }
    if (expr_ok && number_ok && !paren_ok)     /* a check's value, a size */
        buf_puts(&msg, list_ok ? "; expected a number or a list" : "; expected a number");
    else if (expr_ok)
        buf_puts(&msg, "; expected an expression");
    else if (kept > 0) {
        buf_puts(&msg, "; expected ");
        for (int i = 0; i < kept && i < 4; i++)
            buf_printf(&msg, "%s%s", i == 0 ? "" : i + 1 == kept ? " or " : ", ",
                       names[i]);
    }
    front_error(P, *yypcontext_location(ctx), "%s", msg.data);
    buf_free(&msg);
    /* At the end of the text, say which bracket was left open. */
    const Lexer *lx = &P->lx;
    if ((got == YYSYMBOL_YYEOF || got == YYSYMBOL_SEP) && lx->depth > 0 && lx->open.first_line)
        diag_note(P->diag, P->src, lx->open, "this '%c' is not closed", lx->open_ch);
    else if (got == YYSYMBOL_YYEOF && lx->brace.first_line)
        diag_note(P->diag, P->src, lx->brace, "this '{' is not closed");
    return 0;
}

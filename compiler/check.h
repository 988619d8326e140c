/* check.h — problem files: the `check` statements of a source, their
 * expected values, and how an actual value is compared with one.
 *
 *   check f(-2, 5, -4) == -12
 *   check "AND gate" and_gate([[0,0],[0,1],[1,0],[1,1]]) == [0, 0, 0, 1]
 *   check jacobian softmax([2, 1, 0.1]) == [[...], ...] within 1e-3
 *
 * The grammar calls the check_* actions (check.c); the left side becomes a
 * function of fresh inputs (the call's arguments), so that the driver
 * (cli/check.c) runs it as generated C instead of the constant folder. */
#ifndef GRADC_CHECK_H
#define GRADC_CHECK_H

#include "front.h"

enum { VALUE_MAX_RANK = 4 };

/* A number or nested lists of numbers: row-major elements and a shape. */
typedef struct Value {
    int rank;
    uint32_t dim[VALUE_MAX_RANK];
    uint32_t n;                 /* number of elements */
    double *v;
} Value;

typedef enum CheckKind { CHECK_VALUE, CHECK_GRAD, CHECK_JACOBIAN } CheckKind;

/* |actual - expected| <= tol + tol * |expected|, elementwise. */
#define CHECK_DEFAULT_TOL 1e-4

typedef struct Check {
    Loc loc;                    /* from 'check' to the end of the statement */
    const char *name;           /* check "AND gate" ...; NULL when unnamed */
    const char *text;           /* the statement after 'check', blanks collapsed */
    CheckKind kind;
    int negate;                 /* '!=': passes when the values differ */
    double tol;
    /* The left side as a function of fresh inputs, one per argument of the
     * call (none when the left side is not a single call); in holds their
     * values, flat and in order (nin doubles). For CHECK_GRAD the result has
     * one element, for CHECK_JACOBIAN it is a scalar or a vector. */
    Func *lhs;
    double *in;
    uint32_t nin;
    Value expected;
} Check;

typedef struct Lit Lit;

/* The checks of one program (Program.checks), and the parser's state
 * while it reads one. */
typedef struct CheckList {
    Check **check;
    uint32_t n, cap;
    double tol;                 /* the file's `tolerance`, for what follows */
    /* being parsed */
    Lit **lits;
    uint32_t nlits, caplits;
    Func *lhs;
    CheckKind kind;
    double *in;
    uint32_t nin;
} CheckList;

/* ---- actions called from grammar/parser.y ---- */
void check_lhs_expr(Parser *P, NodeId value, Loc loc);
void check_lhs_call(Parser *P, CheckKind kind, const char *name, Loc loc, int nargs);
void check_lit_num(Parser *P, double v, Loc loc);
void check_lit_word(Parser *P, const char *word, int neg, Loc loc); /* nan, inf */
void check_lit_list(Parser *P, int n, Loc loc);
void check_end(Parser *P, const char *name, int negate, double within,
               Loc lhs, Loc all);
void check_tolerance(Parser *P, double tol, Loc loc);
/* A tolerance or `within` value: finite and >= 0. */
double check_tol_value(Parser *P, double v, Loc loc);
/* The program's checks (an empty list when it has none). */
const CheckList *check_list(const Program *p);

/* ---- comparing ---- */
typedef struct Compare {
    int pass;
    int shape_ok;               /* shapes agree after dropping 1s */
    int64_t first;              /* flat index of the first element that is
                                   not within tolerance; -1 when none */
} Compare;

/* Shapes compare after dropping dimensions of size 1. */
Compare check_compare(const Value *actual, const Value *expected, double tol,
                      int negate);
int check_close(double actual, double expected, double tol);
/* "[[1, 2], [3, 4]]"; at most max_elems numbers, then "...". */
void value_format(const Value *v, Buf *out, uint32_t max_elems);
/* JSON: nested arrays, NaN and infinities as strings. */
void value_json(const Value *v, Buf *out);
/* The index of flat element i in v's shape without its 1s: "[1, 0]". */
void value_index(const Value *v, uint64_t i, Buf *out);
void value_shape(const Value *v, Buf *out);      /* "[3, 3]", "scalar" */

#endif

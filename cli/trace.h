/* trace.h — the forward and backward pass of one function at one point,
 * node by node, for `gradc explain` and `gradc graph` (trace.c). */
#ifndef GRADC_TRACE_H
#define GRADC_TRACE_H

#include "cli.h"

enum { TRACE_INPUT, TRACE_CONST, TRACE_OP };

typedef struct TraceNode {
    NodeId id;                  /* in the front end's graph */
    int kind;                   /* TRACE_* */
    char label[40];             /* "f3", the input's name, or the constant */
    int op;                     /* Op, for TRACE_OP */
    int nargs;
    uint32_t arg[2];            /* operands, as indices into Trace.node */
    double value;
    double adj;                 /* d result / d this node */
    double local[2];            /* d this / d operand k */
    double product[2];          /* local[k] * adj: operand k's share */
    int uses;                   /* edges into other nodes */
} TraceNode;

typedef struct Trace {
    TraceNode *node;            /* operands before users; the result last */
    uint32_t n;
    const Func *f;
    double *in;                 /* the point, one value per input of f */
    uint32_t *input_node;       /* node index of input i, or UINT32_MAX */
} Trace;

/* Parses --at NAME=VALUE,... texts into values for f's inputs. */
int trace_bind(const Func *f, const Source *src, const Source *at, int nat,
               double *in, Diag *d);
/* Computes every node's value, adjoint, local gradients and products, all
 * through one compiled kernel of generated C. 0, or -1 with a message. */
int trace_build(Program *p, const Func *f, const double *in, Trace *t, Diag *d);
void trace_free(Trace *t);
/* A number as the notes write it: rounded to `digits` decimals, trailing
 * zeros dropped ("-1", "0.3679"); tiny numbers in exponent form. */
void trace_num(double v, int digits, char out[48]);
/* "w0 * x0" (names) or "2 * (-1)" (values) for an operation node. */
void trace_expr(const Trace *t, const TraceNode *n, int values, int digits, Buf *out);

/* The local gradient d n / d operand k as a formula of the labels, the
 * way the notes write it: "x0", "-1/f7^2", "exp(f5)", "[z >= w]". */
void trace_local_rule(const Trace *t, const TraceNode *n, int k, Buf *out);

/* Shared argument parsing of explain and graph. */
typedef struct TraceArgs {
    const char *spec, *func, *out;
    Source at[32];
    int nat;
    int json, digits;
} TraceArgs;
int trace_args(const char *cmd, const char *help, int argc, char **argv, TraceArgs *a);
/* Parses the spec, binds --at and builds the trace; 0 or -1 (reported). */
int trace_run(const TraceArgs *a, Input *input, Program **p, Trace *t, Diag *d);

#endif

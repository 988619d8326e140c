/* gradc.h — the compiler core's data structures and every exported function,
 * grouped by the file that defines them, in pipeline order:
 *
 *   text --lexer.re/parser.y/front.c--> IR (ir.c, ops.c)
 *        --diff.c--> gradient IR --opt.c--> extracted IR --emit_c.c--> C text
 *
 * The core knows nothing of SQLite, dlopen or the command line. */
#ifndef GRADC_H
#define GRADC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>

#define GRADC_VERSION "0.1.0"

/* ---- arena.c: one allocator per compilation, released at once ---- */
typedef struct Arena Arena;
Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);        /* zeroed, 16-byte aligned */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);

/* Growable byte buffer, used for emitted text and captured diagnostics. */
typedef struct Buf {
    char *data;
    size_t len, cap;
} Buf;
void buf_put(Buf *b, const char *s, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_printf(Buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_free(Buf *b);
void *xmalloc(size_t n);                         /* aborts cleanly on OOM */
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* ---- num.c: numbers in text, independent of the C locale ---- */
int num_parse(const char *s, size_t n, double *out);   /* 1 on success */
/* Shortest text that reads back as exactly v ("-12", "0.7310585786300049"). */
void num_format(double v, char out[32]);

/* ---- diag.c: error messages with file:line:col and a caret line ---- */
typedef struct Loc {            /* bison's YYLTYPE; lines and columns 1-based */
    int first_line, first_column;
    int last_line, last_column; /* last_column is exclusive */
} Loc;

typedef struct Source {
    const char *name;           /* file name, or "<expr>" for command-line text */
    const char *text;
    size_t len;
} Source;

typedef struct Diag {
    Buf out;                    /* rendered messages */
    int nerrors;
    int max_errors;             /* stop reporting (not counting) past this */
} Diag;

void diag_init(Diag *d);
void diag_free(Diag *d);
void diag_error(Diag *d, const Source *src, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_note(Diag *d, const Source *src, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A message with no location: "gradc: error: ...". */
void diag_plain(Diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
Loc loc_point(int line, int col);

/* ---- ops.c: per-operation properties, folding, C spelling, derivative ---- */
typedef enum Op {
#define OP(id, name, arity, flags, eval, vjp, c) OP_##id,
#include "ops.h"
#undef OP
    OP_COUNT
} Op;

enum { OPF_CALL = 1, OPF_COMM = 2 };

typedef uint32_t NodeId;        /* index into Graph.node; 0 means none/error */
#define NODE_NONE ((NodeId)0)

typedef struct Shape {
    uint8_t rank;               /* 0 scalar, 1 vector, 2 matrix */
    uint32_t dim[2];
} Shape;

typedef struct Node {
    uint16_t op;
    Shape shape;
    NodeId arg[3];
    double num;                 /* OP_CONST: the value */
    int32_t aux;                /* OP_INPUT: the input slot */
    uint64_t sh;                /* structural hash: same for equal trees in
                                   any graph; orders commutative operands */
} Node;

typedef struct Graph Graph;
typedef struct OpInfo {
    const char *name;
    int arity;
    int flags;
    double (*eval)(const double *a);                 /* folding and interp */
    const char *c;              /* C template: $0 $1 are operand atoms */
    /* Reverse-mode rule: out[i] = adjoint contribution for operand i
     * (NODE_NONE for none), given the node n and its adjoint adj. */
    void (*vjp)(Graph *g, NodeId n, NodeId adj, NodeId out[3]);
} OpInfo;

extern const OpInfo op_info[OP_COUNT];
int op_lookup_call(const char *name);           /* OP_* or -1 */

/* ---- ir.c: the hash-consed graph ---- */
struct Graph {
    Node *node;                 /* node[0] is the none/error node */
    uint32_t n, cap;
    uint32_t *table;            /* open-addressing hash table of NodeIds */
    uint32_t tcap;
    uint32_t ninputs;           /* input slots handed out so far */
};

Graph *ir_new(void);
void ir_free(Graph *g);
NodeId ir_const(Graph *g, double v);
NodeId ir_input(Graph *g);                      /* a fresh input slot */
/* The one constructor: folds constants, applies the IEEE-exact
 * simplifications, orders commutative operands and shares equal nodes. */
NodeId ir_op(Graph *g, Op op, NodeId a, NodeId b);
NodeId ir_add(Graph *g, NodeId a, NodeId b);
NodeId ir_sub(Graph *g, NodeId a, NodeId b);
NodeId ir_mul(Graph *g, NodeId a, NodeId b);
NodeId ir_div(Graph *g, NodeId a, NodeId b);
NodeId ir_neg(Graph *g, NodeId a);
int ir_is_const(const Graph *g, NodeId id, double v);
/* Copy of the subgraph reachable from root with from[i] replaced by to[i];
 * nodes below `first` are known not to depend on `from` and are kept. */
NodeId ir_substitute(Graph *g, NodeId root, uint32_t first,
                     const NodeId *from, const NodeId *to, uint32_t n);
/* Marks (1) every node reachable from the roots; mark has g->n entries. */
void ir_mark_reachable(const Graph *g, const NodeId *roots, uint32_t nroots,
                       uint8_t *mark);
void ir_dump(const Graph *g, const NodeId *roots, uint32_t nroots, Buf *out);

/* ---- front.c + grammar/: source text to IR ---- */
typedef struct Func {
    const char *name;
    Loc loc;
    uint32_t ninputs;
    const char **input_name;
    Loc *input_loc;
    NodeId *input;
    NodeId result;
    uint32_t first;             /* first node created for this function */
} Func;

typedef struct Program {
    Arena *arena;
    Graph *g;
    Source src;
    Func **func;
    uint32_t nfunc;
    Func *bare;                 /* the bare expression, when there is one */
} Program;

/* Parses a whole source. In bare mode, free variables of top-level
 * expressions become the inputs of Program.bare, in order of appearance.
 * Returns NULL after reporting errors into d. */
Program *front_parse(const Source *src, int bare_mode, Diag *d);
void program_free(Program *p);
Func *program_find(const Program *p, const char *name);

/* ---- diff.c: reverse mode as an IR -> IR transform ---- */
/* grad[i] = d root / d inputs[i], as new nodes of g (constant 0 if none). */
void diff_reverse(Graph *g, NodeId root, const NodeId *inputs, uint32_t n,
                  NodeId *grad);

/* ---- interp.c: the reference interpreter ---- */
/* in[i] is the value of inputs[i]; out[k] receives the value of roots[k]. */
void interp_eval(const Graph *g, const NodeId *inputs, const double *in,
                 uint32_t ninputs, const NodeId *roots, uint32_t nroots,
                 double *out);

/* ---- opt.c: dead-code elimination into a compact, canonical graph ---- */
/* A function ready for emission: inputs in order, a value and (optionally)
 * its gradient, all nodes of one compact graph. */
typedef struct Kernel {
    Graph *g;
    const char *name;
    uint32_t ninputs;
    const char **input_name;
    NodeId *input;              /* input[i] has aux == i */
    NodeId value;
    NodeId *grad;               /* NULL when no gradient was asked for */
} Kernel;

/* Builds the kernel of f: differentiates when want_grad, then copies only
 * the reachable nodes into a fresh graph (so numbering is canonical). */
Kernel *opt_kernel(Program *p, const Func *f, int want_grad);
void kernel_free(Kernel *k);
void kernel_dump(const Kernel *k, Buf *out);     /* canonical IR text */

/* ---- emit_c.c: C99 text ---- */
typedef struct EmitOptions {
    const char *name;           /* function name (default: the Func's) */
    const char *prefix;         /* prepended to every external symbol */
    const char *header_name;    /* for the include guard and comments */
    int max_locals;             /* stack budget in doubles (0: default) */
} EmitOptions;

#define EMIT_DEFAULT_MAX_LOCALS 4096  /* 32 KiB of doubles per call */

/* Returns 0, or -1 with a message in d when a name is not a valid C name. */
int emit_c_source(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d);
int emit_c_header(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d);
/* How the emitted grad function must be called: 0 plain, else the size of
 * the work array of NAME_grad_work (also in the header as a macro). */
uint32_t emit_work_size(const Kernel *k, const EmitOptions *o);
int emit_valid_c_name(const char *s);

#endif

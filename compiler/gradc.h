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
#include <string.h>
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
void buf_grow(Buf *b, size_t n);                 /* room for n more bytes + NUL */
/* Inline: a big kernel's C is written in tens of millions of small
 * pieces, and a literal's strlen is then known at compile time. */
static inline void buf_put(Buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        buf_grow(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}
static inline void buf_puts(Buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}
void buf_printf(Buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_free(Buf *b);
void *xmalloc(size_t n);                         /* aborts cleanly on OOM */
void *xrealloc(void *p, size_t n);
/* Zeroed: a big block comes from fresh pages, so nothing is cleared twice. */
void *xcalloc(size_t count, size_t size);
char *xstrdup(const char *s);
/* The same for large arrays read in random order (huge pages where the
 * system offers them); freed with free. old: the bytes to keep. */
void *xmalloc_big(size_t n);
void *xrealloc_big(void *p, size_t old, size_t n);

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

/* OPF_ODD0, OPF_ODD1: the reverse-mode rule's contribution to operand
 * 0 (1) is adj, ir_mul(adj, x) with x free of adj, or the negation of
 * one of these; given -adj it is then the negation of the one given
 * adj, node for node (diff.c passes a negated adjoint through the rule
 * without making it). */
enum { OPF_CALL = 1, OPF_COMM = 2, OPF_ELEM = 4, OPF_ODD0 = 8, OPF_ODD1 = 16,
       OPF_ODD = OPF_ODD0 | OPF_ODD1 };

typedef uint32_t NodeId;        /* index into Graph.node; 0 means none/error */
#define NODE_NONE ((NodeId)0)

/* Packed, so that a Node holds it in 9 bytes instead of 12: with the rank
 * at the Node's byte 3 the dimensions still fall on a 4-byte boundary, and
 * a Node is 48 bytes instead of 56 (big graphs are memory-bound: W6 at
 * 10^6 nodes, performance.md item 40). Nothing takes a dimension's
 * address. */
typedef struct __attribute__((packed)) Shape {
    uint8_t rank;               /* 0 scalar, 1 vector, 2 matrix */
    uint32_t dim[2];            /* unused dimensions are 0 */
} Shape;

#define SHAPE_SCALAR ((Shape){0, {0, 0}})
/* Size limits (docs/testing.md), errors with a location in the front end,
 * so that a few lines of source cannot ask for gigabytes: elements of a
 * declared tensor, weights of a layer or parameters of a network; terms
 * of a range sum; elements of a tensor constant the folder will build. */
#define GRADC_MAX_ELEMS (1u << 24)
#define GRADC_MAX_RANGE (1u << 20)
#define GRADC_MAX_FOLD (1u << 16)
/* Element copies made to build a literal of non-constant elements (each
 * is placed in a tensor of the literal's size, front_stack). */
#define GRADC_MAX_PLACED (1u << 20)
/* Initial values of a network called without its parameters, which the
 * generated C holds as one table. */
#define GRADC_MAX_TABLE (1u << 18)
Shape shape_vec(uint32_t n);
Shape shape_mat(uint32_t m, uint32_t n);
uint32_t shape_size(Shape s);   /* number of elements; 1 for a scalar */
int shape_eq(Shape a, Shape b);
const char *shape_str(Shape s, char buf[48]);   /* "scalar", "[3]", "[3,4]" */

typedef struct Node {
    uint16_t op;
    uint8_t indexed;            /* ir.c: in the graph's hash table */
    Shape shape;
    NodeId arg[2];
    /* ir.c: the node's first two users, while it has at most two (see
     * intern); all ones once it has more. Not part of its identity. */
    NodeId use[2];
    int32_t aux;                /* OP_INPUT: the input slot; other ops:
                                   an integer attribute (see ops.h) */
    double num;                 /* OP_CONST: the value; SLICE/PAD: stride */
    uint64_t sh;                /* structural hash: same for equal trees in
                                   any graph; orders commutative operands */
} Node;
_Static_assert(sizeof(Node) == 48, "Node: see Shape");

typedef struct Graph Graph;
/* A reverse-mode rule's result: for each operand k that want[k] asks
 * for, the contribution c[k] to its adjoint (NODE_NONE for none), which
 * is -c[k] when neg[k] is set. The caller makes the negation only when
 * it must: adding it to an adjoint is a subtraction (ir_add_negated),
 * and a negation node made for that would be left unused. */
typedef struct Vjp {
    uint8_t want[2], neg[2];
    NodeId c[2];
} Vjp;
typedef struct OpInfo {
    const char *name;
    int arity;
    int flags;
    double (*eval)(const double *a);                 /* folding and interp */
    const char *c;              /* C template: $0 $1 are operand atoms */
    /* Reverse-mode rule: the adjoint contributions for the operands
     * v->want asks for, given the node n and its adjoint adj. */
    void (*vjp)(Graph *g, NodeId n, NodeId adj, Vjp *v);
} OpInfo;

extern const OpInfo op_info[OP_COUNT];
int op_lookup_call(const char *name);           /* OP_* or -1 */
NodeId vjp_value(Graph *g, const Vjp *v, int k);   /* c[k] or -c[k], made */

/* ---- ir.c: the hash-consed graph ---- */
struct Graph {
    Node *node;                 /* node[0] is the none/error node */
    uint32_t n, cap;
    uint64_t *table;            /* open-addressing hash table: NodeId in the
                                   low half, the node's hash in the high */
    uint32_t tcap;
    uint32_t ntable;            /* nodes in the table (ir.c's intern) */
    uint32_t nindexed;          /* nodes below this are in the table; the
                                   rest came from ir_append */
    uint32_t ninputs;           /* input slots handed out so far */
    /* Products with a transposed right operand ever appended (opt.c
     * lowers them): without one, no sweep looks for them. */
    uint32_t nmatmul_bt;
    double *pool;               /* elements of tensor constants (TCONST) */
    uint32_t npool, cappool;
};

Graph *ir_new(void);
void ir_free(Graph *g);
NodeId ir_const(Graph *g, double v);
NodeId ir_input(Graph *g, Shape s);             /* a fresh input slot */
NodeId ir_tconst(Graph *g, Shape s, const double *v);
const double *ir_tconst_data(const Graph *g, NodeId id);
int ir_is_constant(const Graph *g, NodeId id);  /* CONST or TCONST */
/* Result shape of an elementwise op: equal shapes, or a scalar broadcast
 * against a tensor. Returns 0 when the shapes do not fit. */
int ir_broadcast(Shape a, Shape b, Shape *out);
/* The one constructor: folds constants, applies the IEEE-exact
 * simplifications, orders commutative operands and shares equal nodes. */
NodeId ir_op(Graph *g, Op op, NodeId a, NodeId b);
NodeId ir_add(Graph *g, NodeId a, NodeId b);
NodeId ir_sub(Graph *g, NodeId a, NodeId b);
NodeId ir_mul(Graph *g, NodeId a, NodeId b);
NodeId ir_div(Graph *g, NodeId a, NodeId b);
NodeId ir_neg(Graph *g, NodeId a);
/* ir_add(a, ir_neg(y)), or ir_add(ir_neg(y), a) when y_first: the same
 * node, but -y is not made where the sum simplifies to a - y. */
NodeId ir_add_negated(Graph *g, NodeId a, NodeId y, int y_first);
/* Whether ir_neg(y) is the node neg y (found or made): it is then the
 * only node whose negation is y. */
int ir_neg_stays(const Graph *g, NodeId y);
/* Tensor constructors; the caller (front.c) has checked the shapes. */
NodeId ir_node(Graph *g, Op op, NodeId a, NodeId b, int32_t aux, double num,
               Shape shape);
/* Appends a copy of node n (of another graph) with operands a and b,
 * without ir_node's folding and lookup: for copying a graph that was
 * built by ir_node under a one-to-one renaming, whose nodes are already
 * folded and stay distinct (opt.c). They are entered in the hash table,
 * which checks that, when something is next looked up. */
NodeId ir_append(Graph *g, const Node *n, NodeId a, NodeId b);
/* The same when the renaming keeps every input's slot, so that n's
 * structural hash and operand order hold in g as they are: nothing of
 * a and b is read (in a big graph, two cache misses saved per node). */
NodeId ir_append_same(Graph *g, const Node *n, NodeId a, NodeId b);
void ir_reserve(Graph *g, uint32_t n);          /* room for n nodes */
void ir_trim(Graph *g);                         /* no room beyond its nodes */
NodeId ir_sum(Graph *g, NodeId a);
NodeId ir_bcast(Graph *g, NodeId a, Shape s);
NodeId ir_matmul(Graph *g, NodeId a, NodeId b, int transpose);
NodeId ir_outer(Graph *g, NodeId a, NodeId b);
NodeId ir_transpose(Graph *g, NodeId a);
NodeId ir_index(Graph *g, NodeId a, uint32_t i);
NodeId ir_slice(Graph *g, NodeId a, uint32_t start, uint32_t count, uint32_t stride);
NodeId ir_pad(Graph *g, NodeId a, uint32_t start, uint32_t stride, Shape target);
NodeId ir_view(Graph *g, NodeId a, uint32_t offset, Shape s); /* flat block */
NodeId ir_softmax(Graph *g, NodeId a);
NodeId ir_logsumexp(Graph *g, NodeId a);   /* of a matrix: one per row */
NodeId ir_log_softmax(Graph *g, NodeId x);  /* x - logsumexp(x), by rows */
NodeId ir_ones(Graph *g, uint32_t n);
/* The matrix whose row i is v[i] repeated cols times (outer(v, ones)). */
NodeId ir_rows(Graph *g, NodeId v, uint32_t cols);
/* Shape of matmul(a, b) with transpose flags; 0 when they do not fit. */
int ir_matmul_shape(Shape a, Shape b, int transpose, Shape *out);
int ir_is_const(const Graph *g, NodeId id, double v);
/* Copy of the subgraph reachable from root with from[i] replaced by to[i];
 * nodes below `first` are known not to depend on `from` and are kept. */
NodeId ir_substitute(Graph *g, NodeId root, uint32_t first,
                     const NodeId *from, const NodeId *to, uint32_t n);
/* Marks (1) every node reachable from the roots; mark has g->n entries. */
void ir_mark_reachable(const Graph *g, const NodeId *roots, uint32_t nroots,
                       uint8_t *mark);
void ir_dump(const Graph *g, const NodeId *roots, uint32_t nroots, Buf *out);
void ir_print_node(const Graph *g, NodeId id, Buf *out);

/* ---- kernels.c: values of tensor operations ---- */
/* out (shape_size of the node) = the node's value given operand values. */
void kern_eval(const Graph *g, const Node *n, const double *const *args, double *out);

/* ---- net.c: network declarations ---- */
typedef enum InitKind { INIT_SCALAR, INIT_LITERAL, INIT_RANDOM } InitKind;

typedef struct Layer {
    uint32_t in, units;
    int act;                    /* OP_RELU, OP_SIGMOID, OP_TANH, OP_STEP,
                                   OP_SOFTMAX, or -1 for linear */
    InitKind wkind, bkind;      /* how the initial values are given */
    double wval, bval;          /* INIT_SCALAR */
    const double *wlit, *blit;  /* INIT_LITERAL, row-major */
} Layer;

/* Parameters, layer by layer: weights [units, in] row-major, then biases. */
typedef struct Network {
    uint32_t nlayers;
    Layer *layer;
    uint32_t nparams;
    NodeId init;                /* TCONST of the initial values (seed 0) */
} Network;

/* Initial parameter values: given ones copied, omitted weights drawn
 * uniformly from +-sqrt(6/fan_in) (relu, step: He) or +-sqrt(6/(fan_in +
 * fan_out)) (others: Glorot) with splitmix64 seeded by seed. */
void net_init_params(const Network *n, uint64_t seed, double *params);
double net_uniform(uint64_t *state);            /* [0, 1), 53 bits */
double net_init_limit(const Layer *l);

/* ---- front.c + grammar/: source text to IR ---- */
typedef struct Func {
    const char *name;
    Loc loc;
    uint32_t ninputs;
    const char **input_name;
    Loc *input_loc;
    NodeId *input;
    uint32_t nparams;           /* trailing inputs that are network parameters */
    Network *net;               /* the declaration, for networks */
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
    int no_rewrite;             /* opt_kernel skips the stability rewrites */
    int freeze;                 /* opt_kernel makes network parameters
                                   constants (their initial values) */
    int blas;                   /* products stay transposed for BLAS */
    struct CheckList *checks;   /* `check` statements (check.h), or NULL */
} Program;

/* Parses a whole source. In bare mode, free variables of top-level
 * expressions become the inputs of Program.bare, in order of appearance.
 * Returns NULL after reporting errors into d. */
Program *front_parse(const Source *src, int bare_mode, Diag *d);
/* The same, giving bare-mode inputs shapes by name (others are scalars). */
typedef struct BareShape {
    const char *name;
    size_t len;
    Shape shape;
} BareShape;
Program *front_parse_shaped(const Source *src, int bare_mode, const BareShape *shapes,
                            uint32_t nshapes, Diag *d);
void program_free(Program *p);
Func *program_find(const Program *p, const char *name);
/* Reads a --wrt list "x,p" (input names of f, comma-separated) into wrt[]
 * (f->ninputs entries, 1 = listed). Every name must be an input of f, once;
 * the list must not be empty. Errors carry locations in list (its name is
 * "<wrt>" on the command line). Returns 0, or -1 after reporting. */
int front_wrt(const Func *f, const Source *list, uint8_t *wrt, Diag *d);

/* ---- diff.c: reverse mode as an IR -> IR transform ---- */
/* grad[i] = d root / d inputs[i], as new nodes of g (constant 0 if none).
 * Only nodes that depend on one of inputs[] receive adjoints. */
/* With seed != NODE_NONE (a node of root's shape), computes the
 * vector-Jacobian product seed^T (d root / d inputs) instead. */
void diff_reverse(Graph *g, NodeId root, NodeId seed, const NodeId *inputs,
                  uint32_t n, NodeId *grad);

/* ---- fwd.c: forward mode as an IR -> IR transform ---- */
/* out[r] = the directional derivative of roots[r] when inputs[k] moves
 * along tangent[k] (a node of its shape; NODE_NONE: not at all), as new
 * nodes of g; a root that does not move gets zeros of its shape. Applied
 * to gradient nodes it gives Hessian-vector products. */
void diff_forward(Graph *g, const NodeId *roots, uint32_t nroots, const NodeId *inputs,
                  const NodeId *tangent, uint32_t n, NodeId *out);

/* ---- hessian.c: Hessian sparsity and compressed second derivatives ---- */
/* Variables: the elements of the inputs, one after another. At most this
 * many (the pattern is found with an n x n bit matrix). */
#define GRADC_MAX_HESS 8192u
/* A band of the Hessian (hess_entries_by_slices): the entries (col0 + t +
 * diag, col0 + t) for positions t < len, each the sum, in piece order, of
 * the pieces' elements t - at[p] that exist (0 <= t - at[p] < loop). A
 * piece is a vector of loop elements, or a scalar standing for loop equal
 * ones; the smallest at is 0. A range sum of elementwise terms gives one
 * band per diagonal, which f_hess writes in a loop instead of entry by
 * entry. Positions t < loop are the pattern's entries q0 + qstride * t;
 * qstride 0: they are not evenly spaced (hess_find gives each). */
#define HESS_BAND_PIECES 8
typedef struct HessBand {
    uint32_t col0, diag, len, loop;
    uint32_t q0, qstride;
    uint32_t npiece;
    NodeId v[HESS_BAND_PIECES];
    uint32_t at[HESS_BAND_PIECES];
} HessBand;

typedef struct HessPattern {
    uint32_t n;                 /* variables */
    uint32_t nnz;               /* entries of the lower triangle, diagonal included */
    uint32_t *colptr;           /* n + 1: column j's entries are colptr[j] .. colptr[j+1] */
    uint32_t *rowind;           /* nnz: their rows (>= j), ascending */
    uint32_t *color, ncolors;   /* per column (hess_entries): its sweep */
    HessBand *band;             /* hess_entries_by_slices: entries that are */
    uint32_t nband;             /* also given by bands (their nodes in g) */
} HessPattern;
/* The structural nonzeros of d2 root / d inputs^2 (root a scalar). */
void hess_pattern(const Graph *g, NodeId root, const NodeId *inputs, uint32_t ninputs,
                  HessPattern *p);
/* val[q] = the q-th entry of p, as nodes of g, from grad[k] = d root /
 * d inputs[k]: one forward-over-reverse sweep per colour of columns. */
void hess_entries(Graph *g, HessPattern *p, const NodeId *inputs, const NodeId *grad,
                  uint32_t ninputs, NodeId *val);
/* The same by one sweep per slice of the variables, when value reads
 * them through slices whose elements interact only index by index (range
 * sums of elementwise terms); returns 0, building nothing, otherwise.
 * Entries that line up in bands (HessBand) are also given as bands. */
int hess_entries_by_slices(Graph *g, NodeId value, HessPattern *p, const NodeId *inputs,
                           uint32_t ninputs, NodeId *val);
void hess_pattern_free(HessPattern *p);
/* q of the entry (i, j), i >= j, of p; UINT32_MAX when not in p. */
uint32_t hess_find(const HessPattern *p, uint32_t i, uint32_t j);

/* ---- rewrite.c: stability rewrites (1/(1+exp(-z)) -> sigmoid(z), ...) ---- */
NodeId rewrite_stable(Graph *g, NodeId root);

/* ---- interp.c: the reference interpreter ---- */
/* Values are flat arrays: in holds the inputs one after the other (each
 * shape_size of its node), out receives the roots likewise. */
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
    NodeId *input;              /* input[i] has aux == i; shapes on the nodes */
    uint32_t nparams;           /* the last nparams inputs are passed as the
                                   separate `params` array (networks) */
    NodeId value;
    /* With a gradient: for a scalar value, grad[i] = d value / d input i;
     * for a tensor value, grad[i] = seed^T d value / d input i, where seed
     * is an extra input (aux == ninputs) of the value's shape. Only the
     * inputs in wrt[] have an entry; grad[i] is NODE_NONE for the others. */
    NodeId *grad;               /* NULL when no gradient was asked for */
    NodeId seed;
    /* The inputs the gradient is taken with respect to, in declaration
     * order: all of them, unless a subset was asked for (--wrt). */
    uint32_t nwrt;
    uint32_t *wrt;              /* input indices; NULL without a gradient */
    int wrt_all;                /* 1: every input (the default contract) */
    /* For a small tensor value (KERNEL_JAC_MAX elements at most): the
     * Jacobian, jac[i * njac + c] = d value[i] / d input wrt[c] for the
     * first njac inputs of wrt[] (those that are not parameters), one
     * reverse sweep per row with a constant seed, all sharing one forward
     * pass. NULL otherwise. */
    NodeId *jac;
    uint32_t njac;
    /* The entry points to emit (ENTRY_*). The forward-mode and second
     * order ones are taken along the inputs of wrt[] that are not
     * parameters, the "variables" (their elements in grad's layout). */
    unsigned entries;
    NodeId *tangent;            /* per input: its direction (an input of the
                                   kernel, read from v in `in`'s layout), or
                                   NODE_NONE; NULL without JVP/HVP */
    NodeId jvp;                 /* J v: the value's tangent */
    NodeId *hvp;                /* per variable input: its block of H v */
    HessPattern hess;           /* with ENTRY_HESS: the lower triangle's */
    NodeId *hval;               /* pattern, and per entry its node */
} Kernel;

/* Entry points (Kernel.entries): f, f_grad (f_vjp and f_jacobian for
 * tensor values), f_jvp, f_hvp, f_hess; ENTRY_HESS_DENSE writes the
 * Hessian as a dense n x n array instead of the pattern's entries. */
enum {
    ENTRY_VALUE = 1, ENTRY_GRAD = 2, ENTRY_JVP = 4, ENTRY_HVP = 8, ENTRY_HESS = 16,
    ENTRY_HESS_DENSE = 32
};
/* "value,grad,hess" into ENTRY_* bits; -1 on an unknown name (in *bad). */
int kernel_parse_entries(const char *list, unsigned *entries, const char **bad, size_t *badlen);

#define KERNEL_JAC_MAX 16

/* Builds the kernel of f: differentiates when want_grad, then copies only
 * the reachable nodes into a fresh graph (so numbering is canonical). */
Kernel *opt_kernel(Program *p, const Func *f, int want_grad);
/* The same with the gradient taken only with respect to the inputs i of f
 * with wrt[i] != 0 (NULL: all): only their adjoints are computed, the
 * other inputs stay inputs of every entry point. */
Kernel *opt_kernel_wrt(Program *p, const Func *f, const uint8_t *wrt);
/* The same with the entry points to build (ENTRY_*); the second-order
 * ones need a scalar value and at most GRADC_MAX_HESS variables (the
 * caller checks, opt_second_order_error). */
Kernel *opt_kernel_entries(Program *p, const Func *f, const uint8_t *wrt, unsigned entries);
/* Why f cannot have the entries asked for (a message), or NULL. */
const char *opt_entries_error(const Program *p, const Func *f, const uint8_t *wrt,
                              unsigned entries);
void kernel_free(Kernel *k);
void kernel_dump(const Kernel *k, Buf *out);     /* canonical IR text */

/* ---- emit_c.c: C99 text ---- */
typedef struct EmitOptions {
    const char *name;           /* function name (default: the Func's) */
    const char *prefix;         /* prepended to every external symbol */
    const char *header_name;    /* for the include guard and comments */
    int max_locals;             /* stack budget in doubles (0: default) */
    int single;                 /* --float: the text is made single precision
                                   afterwards (emit_float.c); the report
                                   counts floats of 4 bytes */
    int max_block;              /* statements per function before a
                                   straight-line body is cut into parts
                                   (emit_split.c; 0: default) */
    int no_fold;                /* never fold isomorphic parts into one
                                   function called in a loop (--no-fold) */
    const Network *net;         /* emit NAME_init_params for this network */
    int runtime_entry;          /* also emit NAME_rt, the run-time library's
                                   uniform entry point (runtime/rt.h) */
    int blas;                   /* matrix products call cblas_dgemm/dgemv:
                                   the one exception to "only <math.h>" */
    size_t max_bytes;           /* emit_c_source fails past this many bytes
                                   of C (0: no limit; docs/robustness.md) */
} EmitOptions;

#define EMIT_DEFAULT_MAX_LOCALS 4096  /* 32 KiB of doubles per call */
#define EMIT_DEFAULT_MAX_BLOCK 500    /* statements per generated function */
/* What gradc emit and the JIT accept by default: a C file beyond this
 * takes a C compiler minutes and gigabytes (--max-code-size). */
#define EMIT_DEFAULT_MAX_BYTES ((size_t)128 << 20)

/* Returns 0, or -1 with a message in d when a name is not a valid C name. */
int emit_c_source(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d);
int emit_c_header(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d);
/* How the emitted grad function must be called: 0 plain, else the size of
 * the work array of NAME_grad_work (also in the header as a macro). */
uint32_t emit_work_size(const Kernel *k, const EmitOptions *o);
/* What each entry point of the emitted C holds: statements, parts,
 * scratch, stack and work sizes, an operation count (gradc emit --report). */
int emit_report(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d);
int emit_valid_c_name(const char *s);

/* ---- emit_float.c: single precision (gradc emit --float) ---- */
/* Appends the n bytes of emitted C (or header) at c, NUL-terminated, to
 * out with every double made a float: types, literals, math functions. */
void emit_float(const char *c, size_t n, Buf *out);

#endif

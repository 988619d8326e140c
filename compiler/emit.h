/* emit.h — the C emitter's internal data: where each value of a kernel
 * lives in the generated function (the Plan) and the emitter's state.
 * emit_plan.c decides the plan, emit_product.c prints matrix products,
 * emit_c.c prints everything else and owns the entry points. */
#ifndef GRADC_EMIT_H
#define GRADC_EMIT_H

#include "gradc.h"

typedef enum Store {
    S_NONE,                     /* not needed by this function */
    S_LITERAL,                  /* scalar constant, printed inline */
    S_INPUT,                    /* in/params/v + offset */
    S_TCONST,                   /* static const array SYM_kN */
    S_TEMP,                     /* const double tN */
    S_SLOT,                     /* w[N]: scalar in a reused slot */
    S_ARRAY,                    /* double tN[size] on the stack */
    S_WORK,                     /* double *const tN = work + offset */
    S_ALIAS,                    /* const double *const tN = base + offset */
    S_FUSED,                    /* element i in the loop of its group: eN */
    S_LOCAL,                    /* element i, a local of the one loop that
                                   computes and reads it: eN */
    S_PINPUT,                   /* a scalar input read into a local of the
                                   part printed now: in_N (emit_split.c) */
} Store;

enum { MAX_ZERO = 64, MAXP = 64 };

/* Where one node's value lives. One record per node, not an array per
 * field: printing an operand reads where it is and its number together,
 * one cache miss in a big kernel instead of two. */
typedef struct Where {
    uint32_t num;               /* temp number, slot, or work offset */
    uint8_t store;              /* a Store */
    uint8_t acc;                /* S_TEMP: 1 declared non-const, 2 updated in place */
    uint8_t early;              /* gradient entries are stored with it:
                                   Plan.early[id] lists them */
} Where;

typedef struct Plan {
    Where *where;               /* per node */
    uint32_t nslots;            /* scalar slots */
    uint32_t work;              /* doubles of work array needed */
    int slots_in_work;          /* scalar slots live in the work array */
    int slots;                  /* scalars are in slots (decided first) */
    /* Emitted nodes with a tensor value, and softmaxes: a big scalar
     * kernel has neither, and the passes for them are skipped. */
    uint32_t tensors, softmaxes;
    /* Loop fusion: elementwise nodes computed inside the loop of the node
     * that uses them (their group's head), never stored as arrays. */
    NodeId *first, *next;       /* per head: its members, in index order */
    /* Scalar gradient entries stored as soon as they are computed: per
     * node, 1 + the first input whose gradient it is (0: none); per input,
     * 1 + the next input with the same gradient node. NULL: none. Read
     * through plan_early: only the entries of nodes whose Where.early is
     * set are written. */
    uint32_t *early, *early_next;
    /* A softmax and a logsumexp of the same operand share one pass of
     * exp(x - max): pair[i] is the other one (0: none), and the later of
     * the two is computed with the earlier (its storage is its own).
     * NULL when the plan has no softmax. The other per-node arrays of
     * tensors (first, next, run, outside, roots, out_at, wfirst, wlast)
     * are NULL when it has no tensor (tensors == 0). */
    NodeId *pair;
    /* Loop runs (loop_run): run[i] is the first node of the run that
     * computes node i (0: none); outside[i]: a node outside that run
     * reads node i; roots[i]: how often i is a root still stored after
     * the body. Outputs written inside the loops (plan_loop_writes): a
     * list per run's first node, and ranges zeroed before the body. */
    NodeId *run;
    uint8_t *outside;
    uint32_t *roots;
    struct LoopWrite *writes;
    uint32_t nwrites, *wfirst, *wlast;
    const char *dst;            /* the output array they write */
    uint32_t *out_at;           /* 1 + where in dst an array is computed
                                   in place (plan_in_place); 0: its own */
    uint32_t zero[MAX_ZERO][2];
    uint32_t nzero;
    /* Parts (emit_split.c): a big straight-line body printed as nparts
     * static functions, part k computing the nodes order[part_at[k]] up
     * to order[part_at[k + 1] - 1]. Values read outside their part live
     * in the slots w, the scratch array. nparts 0: one body. */
    uint32_t nparts;
    uint32_t *part_at;          /* inside the order allocation */
    NodeId *order;
    const char *part_tag;       /* "v" or "g": names NAME__v0, NAME__g0 */
    NodeId *band_run;           /* f_hess: per band of k->hess, the first
                                   node of the run whose loop writes it; 0:
                                   a loop of its own after the body */
    /* A fold (emit_split.c): parts fold_part .. fold_part + fold_count - 1
     * are the same statements on in and grad shifted by fold_in and
     * fold_grad per part; only the first is printed, and called
     * fold_count times in a loop. fold_count 0: no fold. */
    uint32_t fold_part, fold_count, fold_in, fold_grad;
    uint8_t whole;              /* never cut into parts: the entry point
                                   reads its roots after the body (f_jvp,
                                   f_hvp, f_hess) */
} Plan;

/* What an entry point computes (entry_roots) and its plan. */
typedef struct EntryPlan {
    NodeId *roots, *pieces;
    uint32_t *npieces, nroots;
    Plan p;
    uint8_t *early;             /* per input: its gradient is written as it
                                   is computed (E_GRAD; entry_writes) */
    int value_done;             /* the tensor value is written into out as
                                   it is computed (E_VALUE) */
} EntryPlan;

/* In the loop of a run: dst[at + i] = element i of v (or +=). */
typedef struct LoopWrite {
    NodeId v;
    uint32_t at;
    int add;
    NodeId carry;               /* nonzero: dst[at + i] = carry + v, then
                                   carry = this node's element i; after
                                   the loop dst[at + size] = carry */
    uint32_t next;              /* 1 + the run's next write; 0: none */
    const char *dst;            /* the output array (Plan.dst when planned) */
} LoopWrite;

/* The literals printed so far, by node: an open-addressing table of
 * (node << 32 | 1 + offset in Emitter.lits), 0 for an empty slot. A
 * kernel has few literal nodes (11,600 of 2.2 million at 10^6 nodes) far
 * apart: a per-node array had a page fault for nearly every one. */
typedef struct Literals {
    uint64_t *slot;
    uint32_t bits, n;           /* 2^bits slots, n used */
} Literals;

typedef struct Emitter {
    const Kernel *k;
    const EmitOptions *o;
    char sym[256];
    Buf *out;
    uint32_t *input_off;        /* per input: offset in its array */
    struct Literals *lit;       /* per literal node: its offset in lits */
    uint8_t *table_used;        /* per tensor constant: its table is read */
    Buf *lits;                  /* literals of scalar constants, NUL-separated */
    struct EntryPlan *plans;    /* per Entry: see entry_plan */
    uint32_t *grad_off;         /* per input with a gradient: its offset in
                                   grad (or grad_params) */
    uint32_t in_size, params_size, out_size;
    uint32_t grad_size, grad_params_size;   /* = in_size, params_size
                                   unless the gradient is for a subset */
    uint32_t nwrt_in;           /* inputs with a gradient that are not
                                   parameters (the first of k->wrt) */
    uint32_t *slot_off;         /* per input slot past the named inputs (the
                                   seed, the tangents): its offset in v */
} Emitter;

typedef enum Entry { E_VALUE, E_GRAD, E_JVP, E_HVP, E_HESS, E_COUNT } Entry;

static inline const Node *node(const Emitter *e, NodeId id)
{
    return &e->k->g->node[id];
}

/* 1 + the first input whose gradient entry is stored with node id (0:
 * none). Every statement asks, but only the few nodes whose plan entry
 * says so read p->early: the per-node array is neither zeroed nor read
 * elsewhere, so its pages stay untouched (2.2 million nodes: 9 MB). */
static inline uint32_t plan_early(const Plan *p, NodeId id)
{
    return p->where[id].early ? p->early[id] : 0;
}

static inline int is_scalar(const Emitter *e, NodeId id)
{
    return node(e, id)->shape.rank == 0;
}

static inline uint32_t size_of(const Emitter *e, NodeId id)
{
    return shape_size(node(e, id)->shape);
}

/* The array an input lives in: in, params (networks) or v (the seed). */
static inline const char *input_array(const Emitter *e, NodeId id)
{
    int32_t slot = node(e, id)->aux;
    if ((uint32_t)slot >= e->k->ninputs)
        return "v";
    return (uint32_t)slot >= e->k->ninputs - e->k->nparams ? "params" : "in";
}

static inline uint32_t row_size(Shape s)
{
    return s.rank == 2 ? s.dim[1] : 1;
}

/* emit_c.c */
void emit_literal(double v, char out[48]);
/* The C template of node n's operation ($0, $1: operands), as printed. */
const char *emit_template(const Emitter *e, const Node *n);
void emit_statement(const Emitter *e, const Plan *p, NodeId i, Buf *out);
void emit_base(const Emitter *e, const Plan *p, NodeId id, char out[320]);
void emit_scalar(const Emitter *e, const Plan *p, NodeId id, char out[320]);

/* emit_plan.c */
void plan_make(const Emitter *e, const NodeId *roots, uint32_t nroots, Plan *p);
/* The work array laid out again once entry points write some results
 * directly (emit_c.c entry_writes): p->work is then what the code uses. */
void plan_rework(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots);
void plan_free(Plan *p);
uint32_t plan_loop_size(const Emitter *e, const Plan *p, NodeId i);
int plan_emitted(const Plan *p, NodeId i);
NodeId plan_run_end(const Emitter *e, const Plan *p, NodeId first);
uint8_t *plan_early_stores(const Emitter *e, Plan *p, const NodeId *vec, const uint32_t *npieces);
NodeId plan_piece_value(const Emitter *e, NodeId piece);
uint32_t plan_one_hot(const Emitter *e, NodeId id);
uint32_t plan_unview_pieces(const Emitter *e, NodeId root, NodeId *pieces, uint32_t max);
int plan_outer_piece(const Emitter *e, NodeId piece);
int plan_block_of(const Emitter *e, NodeId piece, uint32_t *at, uint32_t *len);
int plan_blocks_tile(const Emitter *e, NodeId root, const NodeId *pieces, uint32_t n);
int plan_loop_writes(const Emitter *e, Plan *p, NodeId root, const NodeId *pieces_in,
                     uint32_t n, uint32_t off);
int plan_in_place(const Emitter *e, Plan *p, NodeId root, const NodeId *pieces,
                  uint32_t n, uint32_t off);
void plan_localise_written(Plan *p);

/* emit_split.c */
uint32_t split_max_block(const Emitter *e);
/* temps: the plan's temporaries (S_TEMP nodes), as plan_make numbered them. */
int split_plan(const Emitter *e, Plan *p, uint32_t temps, uint32_t nroots, uint32_t budget);
void split_parts(const Emitter *e, Plan *p, Entry entry, Buf *out);
void split_calls(const Emitter *e, const Plan *p, Buf *out);
void split_report(const Emitter *e, const Plan *p, const char *fname, Buf *out);

/* emit_product.c */
void product_matmul(const Emitter *e, const Plan *p, NodeId id, Buf *out);
void product_transpose(const char *A, uint32_t r, uint32_t c, const char *T, Buf *out);

#endif

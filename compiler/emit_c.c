/* emit_c.c — C99 from a kernel. Scalars become `const double` temporaries;
 * tensors become arrays filled by loop nests (or, for views of a block of
 * another tensor, pointers into it); tensor constants become static const
 * arrays. Only <math.h> is included; there are no writable globals, and
 * every external symbol starts with the prefix and the function's name, so
 * several generated files link together.
 *
 * Entry points (docs/emitted-api.md): for a scalar value NAME and
 * NAME_grad; for a tensor value NAME (writing out), NAME_vjp and
 * NAME_jacobian; NAME_batch always; NAME_init_params for networks, whose
 * parameters come in a separate `params` array.
 *
 * Stack budget: when a function's temporaries exceed max_locals doubles,
 * tensors move to a caller-provided work array and scalars into reused
 * slots; such entry points end in _work and take `work` last, with
 * NAME_WORK_SIZE in the header. */
#include "gradc.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
} Store;

enum { MAX_ZERO = 64, MAXP = 64 };

typedef struct Plan {
    Store *store;
    uint32_t *num;              /* temp number, slot, or work offset */
    uint8_t *acc;               /* S_TEMP: 1 declared non-const, 2 updated in place */
    uint32_t nslots;            /* scalar slots */
    uint32_t work;              /* doubles of work array needed */
    int slots_in_work;          /* scalar slots live in the work array */
    int slots;                  /* scalars are in slots (decided first) */
    /* Loop fusion: elementwise nodes computed inside the loop of the node
     * that uses them (their group's head), never stored as arrays. */
    NodeId *first, *next;       /* per head: its members, in index order */
    /* Scalar gradient entries stored as soon as they are computed: per
     * node, 1 + the first input whose gradient it is (0: none); per input,
     * 1 + the next input with the same gradient node. NULL: none. */
    uint32_t *early, *early_next;
    /* A softmax and a logsumexp of the same operand share one pass of
     * exp(x - max): pair[i] is the other one (0: none), and the later of
     * the two is computed with the earlier (its storage is its own). */
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
} Plan;

/* What an entry point computes (entry_roots) and its plan. */
typedef struct EntryPlan {
    NodeId *roots, *pieces;
    uint32_t *npieces, nroots;
    Plan p;
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
} LoopWrite;

typedef struct Emitter {
    const Kernel *k;
    const EmitOptions *o;
    char sym[256];
    Buf *out;
    uint32_t *input_off;        /* per input: offset in its array */
    uint32_t *lit_at;           /* per node: 1 + its literal's offset in lits */
    Buf *lits;                  /* literals of scalar constants, NUL-separated */
    struct EntryPlan *plans;    /* per Entry: see entry_plan */
    uint32_t *grad_off;         /* per input with a gradient: its offset in
                                   grad (or grad_params) */
    uint32_t in_size, params_size, out_size;
    uint32_t grad_size, grad_params_size;   /* = in_size, params_size
                                   unless the gradient is for a subset */
    uint32_t nwrt_in;           /* inputs with a gradient that are not
                                   parameters (the first of k->wrt) */
} Emitter;

/* C keywords and names the generated code itself uses (math.h functions). */
static const char *const reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "_Bool", "_Complex",
    "_Imaginary", "main", "exp", "log", "log1p", "expm1", "sqrt", "sin",
    "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
    "hypot", "erf", "pow", "fabs", "fmax", "fmin", "in", "grad", "work",
    "params", "out", "NAN", "INFINITY", "HUGE_VAL", "isinf", "gradc_s",
    "gradc_v", "gradc_i", NULL,
};

/* Everything <math.h> may declare (C99, and glibc's extras), since the
 * generated file includes it: a function named floor or isnan would not
 * compile. Also matched with a trailing f or l (floorf, isinfl). */
static const char *const math_h[] = {
    "acos", "asin", "atan", "atan2", "cos", "sin", "tan", "acosh", "asinh", "atanh",
    "cosh", "sinh", "tanh", "exp", "exp2", "expm1", "frexp", "ilogb", "ldexp", "log",
    "log10", "log1p", "log2", "logb", "modf", "scalbn", "scalbln", "cbrt", "fabs",
    "hypot", "pow", "sqrt", "erf", "erfc", "lgamma", "tgamma", "ceil", "floor",
    "nearbyint", "rint", "lrint", "llrint", "round", "lround", "llround", "trunc",
    "fmod", "remainder", "remquo", "copysign", "nan", "nextafter", "nexttoward",
    "fdim", "fmax", "fmin", "fma", "fpclassify", "isfinite", "isinf", "isnan",
    "isnormal", "signbit", "isgreater", "isgreaterequal", "isless", "islessequal",
    "islessgreater", "isunordered", "float_t", "double_t", "math_errhandling",
    "j0", "j1", "jn", "y0", "y1", "yn", "gamma", "drem", "finite", "significand",
    "exp10", "pow10", "sincos", "scalb", "signgam", "matherr", "lgamma_r", "gamma_r",
    "issignaling", "iszero", "issubnormal", "iscanonical", "iseqsig", "nextup",
    "nextdown", "roundeven", "fromfp", "ufromfp", "canonicalize", "fmaxmag", "fminmag",
    "totalorder", "totalordermag", "getpayload", "setpayload", NULL,
};

static int in_math_h(const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; math_h[i]; i++) {
        size_t m = strlen(math_h[i]);
        if (!strncmp(s, math_h[i], m) && (n == m || (n == m + 1 && (s[m] == 'f' || s[m] == 'l'))))
            return 1;
    }
    /* Macros: HUGE_VAL*, FP_*, M_* constants, MATH_*. */
    return !strncmp(s, "HUGE_VAL", 8) || !strncmp(s, "FP_", 3) || !strncmp(s, "M_", 2) ||
           !strncmp(s, "MATH_", 5);
}

int emit_valid_c_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    for (int i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return 0;
    /* _X and __x are the C implementation's. */
    if (s[0] == '_' && (s[1] == '_' || isupper((unsigned char)s[1])))
        return 0;
    return !in_math_h(s) && strlen(s) < 200;
}

/* A double as C source that reads back exactly. */
static void literal(double v, char out[48])
{
    if (isnan(v)) {
        strcpy(out, "NAN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "(-INFINITY)" : "INFINITY");
        return;
    }
    char num[32];
    num_format(v, num);
    int plain = !strpbrk(num, ".e");
    snprintf(out, 48, signbit(v) ? "(%s%s)" : "%s%s", num, plain ? ".0" : "");
}

static const Node *node(const Emitter *e, NodeId id)
{
    return &e->k->g->node[id];
}

static int is_scalar(const Emitter *e, NodeId id)
{
    return node(e, id)->shape.rank == 0;
}

static uint32_t size_of(const Emitter *e, NodeId id)
{
    return shape_size(node(e, id)->shape);
}

/* The array an input lives in: in, params (networks) or v (the seed). */
static const char *input_array(const Emitter *e, NodeId id)
{
    int32_t slot = node(e, id)->aux;
    if ((uint32_t)slot >= e->k->ninputs)
        return "v";
    return (uint32_t)slot >= e->k->ninputs - e->k->nparams ? "params" : "in";
}

/* ---- operand text: a big kernel prints millions of operands, so these
 * are written by hand instead of through snprintf ---- */

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_uint(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* The literal of a scalar constant, formatted once per node: a formula's
 * few distinct constants are used over and over. */
static const char *literal_of(const Emitter *e, NodeId id)
{
    uint32_t *at = &e->lit_at[id];
    if (!*at) {
        char num[48];
        literal(node(e, id)->num, num);
        *at = (uint32_t)e->lits->len + 1;
        buf_put(e->lits, num, strlen(num) + 1);         /* with its NUL */
    }
    return e->lits->data + *at - 1;
}

/* Scalar value of a node, or element `ix` of a tensor node. */
static void elem(const Emitter *e, const Plan *p, NodeId id, const char *ix, char out[320])
{
    char *q = out;
    assert(strlen(ix) < 32);    /* the symbol is < 200 characters */
    /* The node itself is read only where needed: in a big kernel it is
     * usually far away in memory (a cache miss), its plan entry is not. */
    switch (p->store[id]) {
    case S_LITERAL:
        q = put_str(q, literal_of(e, id));
        break;
    case S_INPUT: {
        const Node *n = node(e, id);
        uint32_t off = (uint32_t)n->aux < e->k->ninputs ? e->input_off[n->aux] : 0;
        q = put_uint(put_str(put_str(q, input_array(e, id)), "["), off);
        if (n->shape.rank > 0)
            q = put_str(put_str(q, " + "), ix);
        q = put_str(q, "]");
        break;
    }
    case S_TCONST:
        q = put_uint(put_str(put_str(q, e->sym), "_k"), id);
        q = put_str(put_str(put_str(q, "["), ix), "]");
        break;
    case S_TEMP:
        q = put_uint(put_str(q, "t"), p->num[id]);
        break;
    case S_FUSED:
    case S_LOCAL:
        q = put_uint(put_str(q, "e"), id);
        break;
    case S_SLOT:
        q = put_str(put_uint(put_str(q, "w["), p->num[id]), "]");
        break;
    default:
        q = put_uint(put_str(q, "a"), id);
        q = put_str(put_str(put_str(q, "["), is_scalar(e, id) ? "0" : ix), "]");
        break;
    }
    *q = 0;
}

/* A pointer expression to the first element of a tensor node. */
static void base(const Emitter *e, const Plan *p, NodeId id, char out[320])
{
    const Node *n = node(e, id);
    uint32_t off = (uint32_t)n->aux < e->k->ninputs ? e->input_off[n->aux] : 0;
    if (p->store[id] == S_INPUT && off == 0)
        snprintf(out, 320, "%s", input_array(e, id));
    else if (p->store[id] == S_INPUT)
        snprintf(out, 320, "(%s + %u)", input_array(e, id), off);
    else if (p->store[id] == S_TCONST)
        snprintf(out, 320, "%s_k%u", e->sym, id);
    else
        snprintf(out, 320, "a%u", id);
}

/* ---- planning: where each value lives ---- */

static int is_alias(const Emitter *e, NodeId id)
{
    const Node *n = node(e, id);
    if (n->shape.rank == 0)
        return 0;
    return n->op == OP_VIEW || n->op == OP_INDEX ||
           (n->op == OP_SLICE && (uint32_t)n->num == 1);
}

/* Scalars reuse slots after their last use (linear scan). */
static uint32_t assign_slots(const Emitter *e, Plan *p, const uint8_t *mark,
                             const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    uint32_t *last = xmalloc(g->n * sizeof *last);
    uint32_t *free_slots = xmalloc(g->n * sizeof *free_slots);
    uint32_t nfree = 0, nslots = 0;
    memset(last, 0, g->n * sizeof *last);
    for (NodeId i = 1; i < g->n; i++)
        if (mark[i])
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                last[g->node[i].arg[k]] = i;
    for (uint32_t r = 0; r < nroots; r++)
        last[roots[r]] = UINT32_MAX;
    for (NodeId i = 1; i < g->n; i++) {
        if (p->store[i] != S_SLOT)
            continue;
        const Node *n = &g->node[i];
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId a = n->arg[k];
            if (last[a] == i && p->store[a] == S_SLOT) {
                free_slots[nfree++] = p->num[a];
                last[a] = 0;    /* released once, even for x*x */
            }
        }
        p->num[i] = nfree ? free_slots[--nfree] : nslots++;
    }
    free(last);
    free(free_slots);
    return nslots;
}

/* A scalar sum whose operand is a sum used nowhere else takes over that
 * operand's variable: `t3 = t3 + t9`. Besides saving names, this keeps
 * gcc from substituting the whole single-use chain of a long sum into its
 * last use (its TER pass), which would move every term's computation to
 * the end of the function and keep all their inputs live until then. */
static void chain_sums(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    p->acc = xmalloc(g->n);
    memset(p->acc, 0, g->n);
    NodeId temps = 1;
    while (temps < g->n && p->store[temps] != S_TEMP)
        temps++;
    if (temps == g->n)          /* all scalars in slots: no sums to chain */
        return;
    uint32_t *uses = xmalloc(g->n * sizeof *uses);
    memset(uses, 0, g->n * sizeof *uses);
    for (NodeId i = 1; i < g->n; i++)
        if (p->store[i] != S_NONE)
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                uses[g->node[i].arg[k]]++;
    for (uint32_t r = 0; r < nroots; r++)
        uses[roots[r]]++;
    for (NodeId i = 1; i < g->n; i++) {
        const Node *n = &g->node[i];
        if (p->store[i] != S_TEMP || (n->op != OP_ADD && n->op != OP_SUB))
            continue;
        /* Prefer extending a chain to starting one. */
        for (int k = 0; k < 4 && (n->op == OP_ADD || k % 2 == 0); k++) {
            NodeId a = n->arg[k % 2];
            Op op = (Op)g->node[a].op;
            if (p->store[a] == S_TEMP && uses[a] == 1 && (op == OP_ADD || op == OP_SUB)
                && (k >= 2 || p->acc[a])) {
                p->num[i] = p->num[a];
                if (!p->acc[a])
                    p->acc[a] = 1;
                p->acc[i] = 2;
                break;
            }
        }
    }
    free(uses);
}

/* Groups elementwise tensor nodes into the loops of their users: a node
 * joins when all its users are elementwise nodes of its shape (or sums of
 * it) in one group. Deciding users before operands (a reverse sweep) makes
 * whole expression trees one loop: sum(100*(y - x^2)^2 + (1 - x)^2) is a
 * single pass with no arrays. Returns the doubles of arrays saved. */
static uint32_t fuse(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    NodeId *head = xmalloc(g->n * sizeof *head);   /* the group its users offer */
    NodeId *grp = xmalloc(g->n * sizeof *grp);
    uint8_t *bad = xmalloc(g->n);                  /* users disagree, or a root */
    memset(head, 0, g->n * sizeof *head);
    memset(grp, 0, g->n * sizeof *grp);
    memset(bad, 0, g->n);
    p->first = xmalloc(g->n * sizeof *p->first);
    p->next = xmalloc(g->n * sizeof *p->next);
    memset(p->first, 0, g->n * sizeof *p->first);
    memset(p->next, 0, g->n * sizeof *p->next);
    for (uint32_t r = 0; r < nroots; r++)
        bad[roots[r]] = 1;
    uint32_t saved = 0;
    for (NodeId i = g->n - 1; i > 0; i--) {
        const Node *n = &g->node[i];
        if (p->store[i] == S_NONE)
            continue;
        int elementwise = (op_info[n->op].flags & OPF_ELEM) && p->store[i] == S_ARRAY;
        NodeId h = 0;
        if (elementwise && !bad[i] && head[i]) {
            p->store[i] = S_FUSED;
            grp[i] = h = head[i];
            saved += shape_size(n->shape);
        } else if (elementwise || (n->op == OP_SUM && p->store[i] == S_TEMP)) {
            h = i;
        }
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId a = n->arg[k];
            int fits = h && (n->op == OP_SUM || shape_eq(g->node[a].shape, n->shape));
            if (!fits || (head[a] && head[a] != h))
                bad[a] = 1;
            else
                head[a] = h;
        }
    }
    NodeId *tail = head;                /* reused: the last member of each head */
    memset(tail, 0, g->n * sizeof *tail);
    for (NodeId i = 1; i < g->n; i++) {
        if (p->store[i] != S_FUSED)
            continue;
        NodeId h = grp[i];
        if (!p->first[h])
            p->first[h] = i;
        else
            p->next[tail[h]] = i;
        tail[h] = i;
    }
    free(head);
    free(grp);
    free(bad);
    return saved;
}

/* Blocks of the work array for tensors, reused once a tensor is dead: a
 * value is dead after the last node that reads it (a fused reader reads at
 * its group's head; a view extends the life of what it views). A block is
 * taken before the operands' blocks are given back, so no loop ever writes
 * over what it is still reading. */
static void assign_work(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    uint32_t *pos = xmalloc(g->n * sizeof *pos), *last = xmalloc(g->n * sizeof *last);
    NodeId *release = xmalloc(g->n * sizeof *release), *rnext = xmalloc(g->n * sizeof *rnext);
    memset(last, 0, g->n * sizeof *last);
    memset(release, 0, g->n * sizeof *release);
    for (NodeId i = 0; i < g->n; i++)
        pos[i] = i;
    for (NodeId h = 1; h < g->n; h++)
        for (NodeId m = p->first[h]; m; m = p->next[m])
            pos[m] = h;
    for (NodeId i = 1; i < g->n; i++)
        if (p->store[i] != S_NONE)
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                if (last[g->node[i].arg[k]] < pos[i])
                    last[g->node[i].arg[k]] = pos[i];
    for (uint32_t r = 0; r < nroots; r++)
        last[roots[r]] = UINT32_MAX;
    for (NodeId i = g->n - 1; i > 0; i--)
        if (p->store[i] == S_ALIAS && last[g->node[i].arg[0]] < last[i])
            last[g->node[i].arg[0]] = last[i];
    for (NodeId i = 1; i < g->n; i++)
        if (p->store[i] == S_WORK && last[i] != UINT32_MAX) {
            NodeId at = last[i] > i ? last[i] : i;
            rnext[i] = release[at];
            release[at] = i;
        }
    uint32_t *foff = xmalloc(g->n * sizeof *foff), *fsize = xmalloc(g->n * sizeof *fsize), nfree = 0;
    p->work = 0;
    for (NodeId i = 1; i < g->n; i++) {
        if (p->store[i] == S_WORK) {
            uint32_t need = shape_size(g->node[i].shape), best = nfree;
            for (uint32_t f = 0; f < nfree && f < 4096; f++)
                if (fsize[f] >= need && (best == nfree || fsize[f] < fsize[best]))
                    best = f;
            if (best < nfree) {
                p->num[i] = foff[best];
                foff[best] += need;
                fsize[best] -= need;
                if (fsize[best] == 0) {
                    foff[best] = foff[nfree - 1];
                    fsize[best] = fsize[--nfree];
                }
            } else {
                p->num[i] = p->work;
                p->work += need;
            }
        }
        for (NodeId b = release[i]; b; b = rnext[b]) {
            foff[nfree] = p->num[b];
            fsize[nfree++] = shape_size(g->node[b].shape);
        }
    }
    free(pos);
    free(last);
    free(release);
    free(rnext);
    free(foff);
    free(fsize);
}

/* Pairs each emitted softmax with an emitted logsumexp of the same
 * operand: logsumexp is then m + log(s) with the softmax's own maximum m
 * and sum s, the same numbers its own loop would add up. The later node
 * must own its storage (a temporary or an array, not a reused slot or
 * work block), since it is computed at the earlier one's place. */
static void pair_softmax(const Emitter *e, Plan *p)
{
    const Graph *g = e->k->g;
    p->pair = xmalloc(g->n * sizeof *p->pair);
    memset(p->pair, 0, g->n * sizeof *p->pair);
    NodeId *sm = xmalloc(g->n * sizeof *sm);     /* per operand: its softmax */
    memset(sm, 0, g->n * sizeof *sm);
    for (NodeId i = 1; i < g->n; i++)
        if (g->node[i].op == OP_SOFTMAX && p->store[i] != S_NONE)
            sm[g->node[i].arg[0]] = i;
    for (NodeId i = 1; i < g->n; i++) {
        NodeId j = g->node[i].op == OP_LOGSUMEXP && p->store[i] != S_NONE ? sm[g->node[i].arg[0]] : 0;
        Store later = j ? p->store[i > j ? i : j] : S_NONE;
        if (later == S_TEMP || later == S_ARRAY) {
            p->pair[i] = j;
            p->pair[j] = i;
        }
    }
    free(sm);
}

static uint32_t loop_size(const Emitter *e, const Plan *p, NodeId i);
static int emitted(const Plan *p, NodeId i);
static NodeId run_end(const Emitter *e, const Plan *p, NodeId first);

/* Arrays that only the loop run computing them reads, at element i,
 * become locals of that loop: in W4, x[i+1] - x[i]^2 feeds the value's
 * term and the gradient's, two loops that loop_run joins into one, and
 * need not be stored. Returns the doubles saved. */
static uint32_t localise(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    NodeId *run = p->run = xmalloc(g->n * sizeof *run);
    uint8_t *outside = p->outside = xmalloc(g->n);
    p->roots = xmalloc(g->n * sizeof *p->roots);
    memset(run, 0, g->n * sizeof *run);
    memset(outside, 0, g->n);
    memset(p->roots, 0, g->n * sizeof *p->roots);
    for (NodeId i = 1, next; i < g->n; i = next) {
        next = i + 1;
        if (!emitted(p, i) || !loop_size(e, p, i))
            continue;
        next = run_end(e, p, i);
        for (NodeId m = i; m < next; m++)
            run[m] = i;
    }
    for (NodeId h = 1; h < g->n; h++)           /* a fused member runs with its head */
        for (NodeId m = p->first[h]; m; m = p->next[m])
            run[m] = run[h];
    for (uint32_t r = 0; r < nroots; r++)
        p->roots[roots[r]]++;
    for (NodeId u = 1; u < g->n; u++)
        if (p->store[u] != S_NONE)
            for (int k = 0; k < op_info[g->node[u].op].arity; k++)
                if (!run[u] || run[u] != run[g->node[u].arg[k]])
                    outside[g->node[u].arg[k]] = 1;
    uint32_t saved = 0;
    for (NodeId i = 1; i < g->n; i++)
        if (p->store[i] == S_ARRAY && run[i] && !outside[i] && !p->roots[i]) {
            p->store[i] = S_LOCAL;
            saved += shape_size(g->node[i].shape);
        }
    return saved;
}

static void plan(const Emitter *e, const NodeId *roots, uint32_t nroots, Plan *p)
{
    const Graph *g = e->k->g;
    uint32_t budget = e->o && e->o->max_locals > 0 ? (uint32_t)e->o->max_locals
                                                   : EMIT_DEFAULT_MAX_LOCALS;
    uint8_t *mark = xmalloc(g->n);
    p->early = p->early_next = NULL;
    p->writes = NULL;
    p->nwrites = p->nzero = 0;
    p->out_at = xmalloc(g->n * sizeof *p->out_at);
    memset(p->out_at, 0, g->n * sizeof *p->out_at);
    p->wfirst = xmalloc(g->n * sizeof *p->wfirst);
    p->wlast = xmalloc(g->n * sizeof *p->wlast);
    memset(p->wfirst, 0, g->n * sizeof *p->wfirst);
    memset(p->wlast, 0, g->n * sizeof *p->wlast);
    p->store = xmalloc(g->n * sizeof *p->store);
    p->num = xmalloc(g->n * sizeof *p->num);
    memset(p->num, 0, g->n * sizeof *p->num);
    ir_mark_reachable(g, roots, nroots, mark);
    uint32_t scalars = 0, tensors = 0;
    for (NodeId i = 1; i < g->n; i++) {
        const Node *n = &g->node[i];
        Store s = S_NONE;
        if (!mark[i])
            s = S_NONE;
        else if (n->op == OP_CONST)
            s = S_LITERAL;
        else if (n->op == OP_INPUT)
            s = S_INPUT;
        else if (n->op == OP_TCONST)
            s = S_TCONST;
        else if (is_alias(e, i))
            s = S_ALIAS;
        else if (n->shape.rank == 0)
            s = S_TEMP, p->num[i] = scalars++;
        else
            s = S_ARRAY, tensors += shape_size(n->shape);
        p->store[i] = s;
    }
    p->slots = scalars > budget;
    tensors -= fuse(e, p, roots, nroots);
    tensors -= localise(e, p, roots, nroots);
    p->work = 0;
    p->nslots = 0;
    p->slots_in_work = 0;
    if (tensors + scalars > budget) {
        /* Tensors go to the work array, scalars to slots if still too many. */
        uint32_t nwork = 0;
        for (NodeId i = 1; i < g->n; i++)
            if (p->store[i] == S_ARRAY)
                p->store[i] = S_WORK, nwork++;
        if (nwork)      /* a big scalar kernel has none: skip the sweeps */
            assign_work(e, p, roots, nroots);
        if (scalars > budget) {
            for (NodeId i = 1; i < g->n; i++)
                if (p->store[i] == S_TEMP)
                    p->store[i] = S_SLOT;
            p->nslots = assign_slots(e, p, mark, roots, nroots);
            if (p->nslots > budget) {
                p->slots_in_work = 1;
                p->work += p->nslots;
            }
        }
    }
    free(mark);
    chain_sums(e, p, roots, nroots);
    pair_softmax(e, p);
}

static void plan_free(Plan *p)
{
    free(p->first);
    free(p->next);
    free(p->store);
    free(p->num);
    free(p->acc);
    free(p->early);
    free(p->early_next);
    free(p->pair);
    free(p->run);
    free(p->outside);
    free(p->roots);
    free(p->writes);
    free(p->wfirst);
    free(p->out_at);
    free(p->wlast);
}

/* ---- statements ---- */

/* Writes the node's C template with the given operand texts. */
static void expand(const char *t, char a[2][320], Buf *out)
{
    const char *run = t;        /* text not yet written */
    for (;; t++) {
        int operand = t[0] == '$' && (t[1] == '0' || t[1] == '1');
        if (!operand && *t)
            continue;
        buf_put(out, run, (size_t)(t - run));
        if (!*t)
            return;
        buf_puts(out, a[t[1] - '0']);
        run = ++t + 1;
    }
}

static const char *template_of(const Emitter *e, const Node *n)
{
    /* pow(x, 2) and pow(x, -1) as x*x and 1/x: exact, and much faster. */
    if (n->op == OP_POW && ir_is_const(e->k->g, n->arg[1], 2.0))
        return "$0 * $0";
    if (n->op == OP_POW && ir_is_const(e->k->g, n->arg[1], -1.0))
        return "1.0 / $0";
    return op_info[n->op].c;
}

static void elementwise(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = node(e, id);
    char a[2][320], dst[320];
    int arity = op_info[n->op].arity;
    if (n->shape.rank == 0) {
        for (int k = 0; k < arity; k++)
            elem(e, p, n->arg[k], "0", a[k]);
        elem(e, p, id, "0", dst);
        buf_puts(out, p->store[id] != S_TEMP || p->acc[id] == 2 ? "    "
                      : p->acc[id] ? "    double " : "    const double ");
        buf_puts(out, dst);
        buf_puts(out, " = ");
        expand(template_of(e, n), a, out);
        buf_puts(out, ";\n");
        return;
    }
    for (int k = 0; k < arity; k++)
        elem(e, p, n->arg[k], "i", a[k]);
    elem(e, p, id, "i", dst);
    buf_printf(out, p->store[id] == S_LOCAL ? "        const double %s = " : "        %s = ", dst);
    expand(template_of(e, n), a, out);
    buf_puts(out, ";\n");
}

/* The declaration of a tensor node's storage, or of a scalar result of a
 * structured op (assigned by the loop that follows). */
static void declare(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    char d[320];
    switch (p->store[id]) {
    case S_ARRAY:
        if (p->out_at[id])
            buf_printf(out, "    double *const a%u = %s + %u;\n", id, p->dst, p->out_at[id] - 1);
        else
            buf_printf(out, "    double a%u[%u];\n", id, size_of(e, id));
        break;
    case S_WORK:
        buf_printf(out, "    double *const a%u = work + %u;\n", id, p->num[id]);
        break;
    case S_TEMP:
        elem(e, p, id, "0", d);
        buf_printf(out, "    double %s;\n", d);
        break;
    default:
        break;
    }
}

/* --blas: the product as one BLAS call (row-major, transposes native). */
static int blas_product(const Emitter *e, const Node *n, const char *A, const char *B,
                        const char *T, Buf *out)
{
    Shape sa = node(e, n->arg[0])->shape, sb = node(e, n->arg[1])->shape;
    int ta = n->aux & 1, tb = n->aux & 2;
    uint64_t flops = (uint64_t)shape_size(sa) * (sb.rank == 2 ? (tb ? sb.dim[0] : sb.dim[1]) : 1);
    if (!e->o || !e->o->blas || flops < 4096)   /* small: a call costs more */
        return 0;
    const char *opa = ta ? "CblasTrans" : "CblasNoTrans", *opb = tb ? "CblasTrans" : "CblasNoTrans";
    if (sb.rank == 1) {
        buf_printf(out, "    cblas_dgemv(CblasRowMajor, %s, %u, %u, 1.0, %s, %u, %s, 1, 0.0, %s, 1);\n",
                   opa, sa.dim[0], sa.dim[1], A, sa.dim[1], B, T);
        return 1;
    }
    uint32_t m = ta ? sa.dim[1] : sa.dim[0], k = ta ? sa.dim[0] : sa.dim[1];
    uint32_t nc = tb ? sb.dim[0] : sb.dim[1];
    buf_printf(out, "    cblas_dgemm(CblasRowMajor, %s, %s, %u, %u, %u, 1.0, %s, %u, %s, %u, 0.0, %s, %u);\n",
               opa, opb, m, nc, k, A, sa.dim[1], B, sb.dim[1], T, nc);
    return 1;
}

/* A product's register tile: MR rows of C by NR columns, kept in local
 * accumulators while p runs over the whole inner dimension. Per step the
 * tile reads NR contiguous elements of a row of B and MR elements of A:
 * MR * NR multiply-adds for MR + NR loads, where an axpy over rows of C in
 * memory needs a load and a store of C for every one. gcc's SLP pass turns
 * the NR accumulators of a row into vector registers; the emitted code
 * picks NR = 12 (12 ymm registers) when compiled with AVX, else NR = 8
 * (16 xmm registers with SSE2). */
enum { TILE_MR = 4 };

/* One loop nest of mr x nr tiles covering rows [i0, i1) and columns
 * [j0, j1) of T = op(A) B (both ranges whole multiples of the tile). Each
 * T[i][j] is 0.0 plus its terms in the order p = 0, 1, ..., k-1: the
 * interpreter's order, so blocking changes no result. */
static void tile_nest(const char *A, int ta, uint32_t lda, const char *B, uint32_t ldb,
                      const char *T, uint32_t ldc, uint32_t k, uint32_t i0, uint32_t i1,
                      uint32_t mr, uint32_t j0, uint32_t j1, uint32_t nr, Buf *out)
{
    if (i0 >= i1 || j0 >= j1)
        return;
    buf_printf(out, "    for (long j0 = %u; j0 < %u; j0 += %u)\n"
                    "        for (long i0 = %u; i0 < %u; i0 += %u) {\n",
               j0, j1, nr, i0, i1, mr);
    for (uint32_t r = 0; r < mr; r++) {
        buf_puts(out, "            double");
        for (uint32_t q = 0; q < nr; q++)
            buf_printf(out, " c%u_%u = 0.0%s", r, q, q + 1 < nr ? "," : ";\n");
    }
    buf_printf(out, "            for (long p = 0; p < %u; p++) {\n"
                    "                const double *restrict b = %s + p * %u + j0;\n", k, B, ldb);
    for (uint32_t r = 0; r < mr; r++) {
        if (ta)
            buf_printf(out, "                const double u%u = %s[p * %u + i0 + %u];\n", r, A, lda, r);
        else
            buf_printf(out, "                const double u%u = %s[(i0 + %u) * %u + p];\n", r, A, r, lda);
    }
    for (uint32_t r = 0; r < mr; r++) {
        buf_puts(out, "               ");
        for (uint32_t q = 0; q < nr; q++)
            buf_printf(out, " c%u_%u += u%u * b[%u];", r, q, r, q);
        buf_puts(out, "\n");
    }
    buf_puts(out, "            }\n");
    for (uint32_t r = 0; r < mr; r++) {
        buf_puts(out, "           ");
        for (uint32_t q = 0; q < nr; q++)
            buf_printf(out, " %s[(i0 + %u) * %u + j0 + %u] = c%u_%u;", T, r, ldc, q, r, q);
        buf_puts(out, "\n");
    }
    buf_puts(out, "        }\n");
}

/* T[m x n] = op(A) B with B row-major (ldb) and A or A^T (lda): whole
 * tiles, then the columns and rows left over as narrower or shorter tiles. */
static void tiled_product(const char *A, int ta, uint32_t lda, const char *B, uint32_t ldb,
                          const char *T, uint32_t m, uint32_t n, uint32_t k, uint32_t nr, Buf *out)
{
    uint32_t mt = m - m % TILE_MR, nt = n - n % nr;
    tile_nest(A, ta, lda, B, ldb, T, n, k, 0, mt, TILE_MR, 0, nt, nr, out);
    tile_nest(A, ta, lda, B, ldb, T, n, k, 0, mt, TILE_MR, nt, n, n - nt, out);
    tile_nest(A, ta, lda, B, ldb, T, n, k, mt, m, m - mt, 0, nt, nr, out);
    tile_nest(A, ta, lda, B, ldb, T, n, k, mt, m, m - mt, nt, n, n - nt, out);
}

static void matmul(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = node(e, id);
    Shape sa = node(e, n->arg[0])->shape, sb = node(e, n->arg[1])->shape;
    int ta = n->aux & 1, tb = n->aux & 2;
    uint32_t m = ta ? sa.dim[1] : sa.dim[0], k = ta ? sa.dim[0] : sa.dim[1];
    char A[320], B[320], T[320];
    base(e, p, n->arg[0], A);
    base(e, p, n->arg[1], B);
    base(e, p, id, T);
    if (blas_product(e, n, A, B, T, out))
        return;
    const char *aik = ta ? "%s[p * %u + i]" : "%s[i * %u + p]";
    char aik_s[400];
    snprintf(aik_s, sizeof aik_s, aik, A, sa.dim[1]);
    if (sb.rank == 1 && !ta && p->store[n->arg[0]] == S_TCONST && m * k <= 16384) {
        /* A constant matrix (--freeze): unrolled, skipping zero weights. */
        const double *c = ir_tconst_data(e->k->g, n->arg[0]);
        for (uint32_t i = 0; i < m; i++) {
            buf_printf(out, "    %s[%u] = ", T, i);
            int terms = 0;
            for (uint32_t q = 0; q < k; q++) {
                if (c[i * k + q] == 0.0)
                    continue;
                char lit[48];
                literal(c[i * k + q], lit);
                const char *sep = terms++ ? " + " : "";
                if (c[i * k + q] == 1.0)        /* exact: 1*x is x, -1*x is -x */
                    buf_printf(out, "%s%s[%u]", sep, B, q);
                else if (c[i * k + q] == -1.0)
                    buf_printf(out, "%s-%s[%u]", sep, B, q);
                else
                    buf_printf(out, "%s%s * %s[%u]", sep, lit, B, q);
            }
            buf_puts(out, terms ? ";\n" : "0.0;\n");
        }
        return;
    }
    if (sb.rank == 1 && !ta) {          /* dot products over contiguous rows */
        /* Four rows at a time: one sum alone waits on the adder's latency
         * at every step; four independent ones keep it busy and load x[p]
         * once per four rows. Each row still sums in the order p = 0, 1, ... */
        uint32_t m4 = m - m % 4;
        if (m4 > 0)
            buf_printf(out, "    for (long i = 0; i < %u; i += 4) {\n"
                            "        const double *restrict r0 = %s + i * %u, *restrict r1 = r0 + %u;\n"
                            "        const double *restrict r2 = r1 + %u, *restrict r3 = r2 + %u;\n"
                            "        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;\n"
                            "        for (long p = 0; p < %u; p++) {\n"
                            "            const double xp = %s[p];\n"
                            "            s0 += r0[p] * xp;\n            s1 += r1[p] * xp;\n"
                            "            s2 += r2[p] * xp;\n            s3 += r3[p] * xp;\n"
                            "        }\n"
                            "        %s[i] = s0;\n        %s[i + 1] = s1;\n"
                            "        %s[i + 2] = s2;\n        %s[i + 3] = s3;\n    }\n",
                       m4, A, sa.dim[1], sa.dim[1], sa.dim[1], sa.dim[1], k, B, T, T, T, T);
        if (m4 < m)
            buf_printf(out, "    for (long i = %u; i < %u; i++) {\n"
                            "        double s = 0.0;\n"
                            "        for (long p = 0; p < %u; p++)\n"
                            "            s += %s * %s[p];\n"
                            "        %s[i] = s;\n    }\n", m4, m, k, aik_s, B, T);
        return;
    }
    if (sb.rank == 1) {                 /* A^T x as axpy over rows of A */
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = 0.0;\n"
                        "    for (long p = 0; p < %u; p++) {\n"
                        "        const double xp = %s[p];\n"
                        "        for (long i = 0; i < %u; i++)\n"
                        "            %s[i] += %s[p * %u + i] * xp;\n    }\n",
                   m, T, k, B, m, T, A, sa.dim[1]);
        return;
    }
    uint32_t nc = tb ? sb.dim[0] : sb.dim[1];
    if (tb) {                           /* C = op(A) B^T: dot products */
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n"
                        "        for (long j = 0; j < %u; j++) {\n"
                        "            double s = 0.0;\n"
                        "            for (long p = 0; p < %u; p++)\n"
                        "                s += %s * %s[j * %u + p];\n"
                        "            %s[i * %u + j] = s;\n        }\n",
                   m, nc, k, aik_s, B, sb.dim[1], T, nc);
        return;
    }
    /* Wider tiles where the vector registers are: 4 x 12 accumulators are
     * 12 ymm registers with AVX, but would spill 24 xmm ones with SSE2. */
    buf_puts(out, "#if defined(__AVX__)\n");
    tiled_product(A, ta, sa.dim[1], B, sb.dim[1], T, m, nc, k, 12, out);
    buf_puts(out, "#else\n");
    tiled_product(A, ta, sa.dim[1], B, sb.dim[1], T, m, nc, k, 8, out);
    buf_puts(out, "#endif\n");
}

static uint32_t row_size(Shape s)
{
    return s.rank == 2 ? s.dim[1] : 1;
}

/* A softmax (sm) and/or a logsumexp (lse) of one operand, row by row for
 * a matrix (row r of x at x + r * len). The logsumexp of all -inf or of
 * +inf is m itself, as in kernels.c. */
static void softmax_lse(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    int is_sm = node(e, id)->op == OP_SOFTMAX;
    NodeId sm = is_sm ? id : p->pair[id], lse = is_sm ? p->pair[id] : id;
    NodeId arg = node(e, sm ? sm : lse)->arg[0];
    Shape s0 = node(e, arg)->shape;
    uint32_t len = s0.rank == 2 ? s0.dim[1] : shape_size(s0);
    uint32_t rows = s0.rank == 2 ? s0.dim[0] : 1;
    char A[320], T[320], x[400], t[400], res[400];
    base(e, p, arg, A);
    snprintf(x, sizeof x, "(%s + r * %u)", A, len);
    if (sm) {
        base(e, p, sm, T);
        snprintf(t, sizeof t, "(%s + r * %u)", T, len);
    }
    if (lse && rows > 1) {
        base(e, p, lse, T);
        snprintf(res, sizeof res, "%s[r]", T);
    } else if (lse) {
        elem(e, p, lse, "0", res);
    }
    if (p->pair[id])                    /* the partner is computed here too */
        declare(e, p, p->pair[id], out);
    /* The maximum, or NaN when an element is NaN (kernels.c): the NaN test
     * apart, so that the maximum is a branch-free chain (maxsd). */
    buf_printf(out, "    for (long r = 0; r < %u; r++) {\n        double m = -INFINITY, s = 0.0;\n"
                    "        int has_nan = 0;\n"
                    "        for (long i = 0; i < %u; i++) {\n"
                    "            m = %s[i] > m ? %s[i] : m;\n"
                    "            has_nan |= %s[i] != %s[i];\n        }\n"
                    "        if (has_nan)\n            m = NAN;\n",
               rows, len, x, x, x, x);
    if (sm)
        buf_printf(out, "        for (long i = 0; i < %u; i++) {\n"
                        "            %s[i] = exp(%s[i] - m);\n            s += %s[i];\n        }\n"
                        "        const double q = 1.0 / s;   /* as kernels.c */\n"
                        "        for (long i = 0; i < %u; i++)\n            %s[i] *= q;\n",
                   len, t, x, t, len, t);
    if (sm && lse)
        buf_printf(out, "        %s = isinf(m) ? m : m + log(s);\n", res);
    else if (lse)
        buf_printf(out, "        if (isinf(m)) {\n            %s = m;\n        } else {\n"
                        "            for (long i = 0; i < %u; i++)\n"
                        "                s += exp(%s[i] - m);\n"
                        "            %s = m + log(s);\n        }\n",
                   res, len, x, res);
    buf_puts(out, "    }\n");
}

/* T = A^T for A[r x c], four columns of A at a time: each row of A gives
 * four contiguous reads and each of four rows of T a sequential write.
 * Element by element, one of the two sides strides by a whole row, which
 * for W5's 128 x 784 weights cost 4.5x as much (290 against 60 us). */
static void transpose(const char *A, uint32_t r, uint32_t c, const char *T, Buf *out)
{
    uint32_t c4 = c - c % 4;
    if (c4 > 0) {
        buf_printf(out, "    for (long j = 0; j < %u; j += 4)\n"
                        "        for (long i = 0; i < %u; i++) {\n", c4, r);
        for (int q = 0; q < 4; q++)
            buf_printf(out, "            %s[(j + %d) * %u + i] = %s[i * %u + j + %d];\n",
                       T, q, r, A, c, q);
        buf_puts(out, "        }\n");
    }
    if (c4 < c)
        buf_printf(out, "    for (long j = %u; j < %u; j++)\n        for (long i = 0; i < %u; i++)\n"
                        "            %s[j * %u + i] = %s[i * %u + j];\n",
                   c4, c, r, T, r, A, c);
}

static void structured(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = node(e, id);
    char A[320], B[320], T[320], a0[320], d[320];
    Shape s0 = node(e, n->arg[0])->shape;
    uint32_t size = size_of(e, id), start = (uint32_t)n->aux, stride = (uint32_t)n->num;
    base(e, p, n->arg[0], A);
    elem(e, p, n->arg[0], "i", a0);
    if (p->store[id] == S_ALIAS) {
        uint32_t off = n->op == OP_VIEW ? start : start * row_size(s0);
        if (off)
            buf_printf(out, "    const double *const a%u = %s + %u;\n", id, A, off);
        else
            buf_printf(out, "    const double *const a%u = %s;\n", id, A);
        return;
    }
    declare(e, p, id, out);
    base(e, p, id, T);
    elem(e, p, id, "0", d);
    switch ((Op)n->op) {
    case OP_BCAST:
        elem(e, p, n->arg[0], "0", a0);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = %s;\n", size, T, a0);
        break;
    case OP_SUM:
        buf_printf(out, "    %s = 0.0;\n    for (long i = 0; i < %u; i++)\n        %s += %s;\n",
                   d, shape_size(s0), d, a0);
        break;
    case OP_MATMUL:
        matmul(e, p, id, out);
        break;
    case OP_OUTER:
        base(e, p, n->arg[1], B);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        for (long j = 0; j < %u; j++)\n"
                        "            %s[i * %u + j] = %s[i] * %s[j];\n",
                   n->shape.dim[0], n->shape.dim[1], T, n->shape.dim[1], A, B);
        break;
    case OP_TRANSPOSE:
        transpose(A, s0.dim[0], s0.dim[1], T, out);
        break;
    case OP_INDEX:                      /* scalar element */
        buf_printf(out, "    %s = %s[%u];\n", d, A, start);
        break;
    case OP_SLICE:
        buf_printf(out, "    for (long k = 0; k < %u; k++)\n        for (long i = 0; i < %u; i++)\n"
                        "            %s[k * %u + i] = %s[(%u + k * %u) * %u + i];\n",
                   n->shape.dim[0], row_size(s0), T, row_size(s0), A, start, stride, row_size(s0));
        break;
    case OP_PAD: {
        uint32_t r = row_size(n->shape), count = s0.rank == n->shape.rank ? s0.dim[0] : 1;
        if (s0.rank == 0)
            elem(e, p, n->arg[0], "0", a0);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = 0.0;\n", size, T);
        if (s0.rank == 0)
            buf_printf(out, "    %s[%u] = %s;\n", T, start, a0);
        else
            buf_printf(out, "    for (long k = 0; k < %u; k++)\n        for (long i = 0; i < %u; i++)\n"
                            "            %s[(%u + k * %u) * %u + i] = %s[k * %u + i];\n",
                       count, r, T, start, stride, r, A, r);
        break;
    }
    case OP_UNVIEW:
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = 0.0;\n", size, T);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = %s[i];\n",
                   shape_size(s0), T, start, A);
        break;
    case OP_SOFTMAX:
    case OP_LOGSUMEXP:
        softmax_lse(e, p, id, out);
        break;
    default:
        buf_printf(out, "    /* unsupported op %s */\n", op_info[n->op].name);
        break;
    }
}

/* The body of the loop for a head and the elementwise nodes fused into
 * it: members as scalar locals eN, then the head's element (or a sum's
 * accumulation). */
static void fused_loop(const Emitter *e, const Plan *p, NodeId head, Buf *out)
{
    const Node *h = node(e, head);
    int sum = h->op == OP_SUM;
    char a[2][320], d[320];
    elem(e, p, head, "0", d);
    for (NodeId m = p->first[head]; m; m = p->next[m]) {
        const Node *n = node(e, m);
        for (int k = 0; k < op_info[n->op].arity; k++)
            elem(e, p, n->arg[k], "i", a[k]);
        buf_printf(out, "        const double e%u = ", m);
        expand(template_of(e, n), a, out);
        buf_puts(out, ";\n");
    }
    if (sum) {
        elem(e, p, h->arg[0], "i", a[0]);
        buf_printf(out, "        %s += %s;\n", d, a[0]);
        return;
    }
    for (int k = 0; k < op_info[h->op].arity; k++)
        elem(e, p, h->arg[k], "i", a[k]);
    elem(e, p, head, "i", d);
    buf_printf(out, p->store[head] == S_LOCAL ? "        const double %s = " : "        %s = ", d);
    expand(template_of(e, h), a, out);
    buf_puts(out, ";\n");
}

/* The trip count of node i's loop when it is an elementwise or fused loop
 * that reads and writes element i only, else 0. */
static uint32_t loop_size(const Emitter *e, const Plan *p, NodeId i)
{
    const Node *n = node(e, i);
    if (p->first[i])
        return n->op == OP_SUM ? size_of(e, n->arg[0]) : size_of(e, i);
    if ((op_info[n->op].flags & OPF_ELEM) && n->shape.rank > 0)
        return size_of(e, i);
    return 0;
}

static int emitted(const Plan *p, NodeId i)
{
    Store s = p->store[i];
    return !(s == S_NONE || s == S_LITERAL || s == S_INPUT || s == S_TCONST || s == S_FUSED);
}

/* Consecutive loops of one trip count become one loop (declarations
 * first): each reads only element i of what the earlier ones wrote, so one
 * pass computes them all, with values in registers instead of re-read
 * arrays. A sum ends the run: later loops may read its total. Returns
 * the node after the run. */
/* A scalar between two loops of a run that reads nothing the run computes
 * is computed before the run instead of splitting it (W3's Jacobian: the
 * s[k] of each row). Not with reused slots: a slot may still hold a value
 * that the loop reads. */
static int hoistable(const Emitter *e, const Plan *p, NodeId i, NodeId first)
{
    const Node *n = node(e, i);
    if (n->shape.rank != 0 || p->slots || n->op == OP_LOGSUMEXP || n->op == OP_SUM)
        return 0;
    for (int k = 0; k < op_info[n->op].arity; k++)
        if (n->arg[k] >= first && node(e, n->arg[k])->shape.rank)
            return 0;
    return 1;
}

/* The end of the run of loops that starts at node first (see loop_run). */
static NodeId run_end(const Emitter *e, const Plan *p, NodeId first)
{
    const Graph *g = e->k->g;
    uint32_t size = loop_size(e, p, first);
    NodeId end = first;
    for (NodeId i = first; i < g->n; i++) {
        if (!emitted(p, i) || (!loop_size(e, p, i) && hoistable(e, p, i, first)))
            continue;
        if (loop_size(e, p, i) != size)
            break;
        end = i + 1;
        if (g->node[i].op == OP_SUM)
            break;
    }
    return end;
}

static NodeId loop_run(const Emitter *e, const Plan *p, NodeId first, Buf *out)
{
    const Graph *g = e->k->g;
    uint32_t size = loop_size(e, p, first);
    NodeId end = run_end(e, p, first);
    for (NodeId i = first; i < end; i++) {
        if (!emitted(p, i))
            continue;
        if (!loop_size(e, p, i)) {             /* hoisted */
            if (op_info[g->node[i].op].flags & OPF_ELEM)
                elementwise(e, p, i, out);
            else
                structured(e, p, i, out);
            continue;
        }
        char d[320];
        if (p->first[i] || p->store[i] == S_ARRAY || p->store[i] == S_WORK)
            declare(e, p, i, out);
        if (g->node[i].op == OP_SUM) {
            elem(e, p, i, "0", d);
            buf_printf(out, "    %s = 0.0;\n", d);
        }
    }
    for (uint32_t w = p->wfirst[first]; w; w = p->writes[w - 1].next)
        if (p->writes[w - 1].carry)
            buf_printf(out, "    double carry%u = 0.0;\n", w);
    buf_printf(out, "    for (long i = 0; i < %u; i++) {\n", size);
    for (NodeId i = first; i < end; i++) {
        if (!emitted(p, i) || !loop_size(e, p, i))
            continue;
        if (p->first[i])
            fused_loop(e, p, i, out);
        else
            elementwise(e, p, i, out);
    }
    for (uint32_t w = p->wfirst[first]; w; w = p->writes[w - 1].next) {
        const LoopWrite *lw = &p->writes[w - 1];
        char v[320], c[320];
        elem(e, p, lw->v, "i", v);
        if (lw->carry) {
            elem(e, p, lw->carry, "i", c);
            buf_printf(out, "        %s[%u + i] = carry%u + %s;\n        carry%u = %s;\n",
                       p->dst, lw->at, w, v, w, c);
        } else {
            buf_printf(out, "        %s[%u + i] %s %s;\n", p->dst, lw->at, lw->add ? "+=" : "=", v);
        }
    }
    buf_puts(out, "    }\n");
    for (uint32_t w = p->wfirst[first]; w; w = p->writes[w - 1].next)
        if (p->writes[w - 1].carry)
            buf_printf(out, "    %s[%u] = carry%u;\n", p->dst, p->writes[w - 1].at + size, w);
    return end;
}

static void body(const Emitter *e, const Plan *p, Buf *out)
{
    const Graph *g = e->k->g;
    if (p->nslots && !p->slots_in_work)
        buf_printf(out, "    double w[%u];\n", p->nslots);
    else if (p->nslots)
        buf_printf(out, "    double *const w = work + %u;\n", p->work - p->nslots);
    for (uint32_t z = 0; z < p->nzero; z++)
        buf_printf(out, "    for (long i = %u; i < %u; i++)\n        %s[i] = 0.0;\n",
                   p->zero[z][0], p->zero[z][1], p->dst);
    for (NodeId i = 1, next; i < g->n; i = next) {
        next = i + 1;
        if (!emitted(p, i))
            continue;
        if (p->pair[i] && p->pair[i] < i)
            ;                   /* the later of a pair: computed already */
        else if (loop_size(e, p, i))
            next = loop_run(e, p, i, out);
        else if (op_info[g->node[i].op].flags & OPF_ELEM)
            elementwise(e, p, i, out);  /* a scalar */
        else
            structured(e, p, i, out);
        for (NodeId m = i; m < next; m++)
            for (uint32_t j = p->early ? p->early[m] : 0; j; j = p->early_next[j - 1]) {
                char v[320];
                elem(e, p, m, "0", v);
                buf_printf(out, "    grad[%u] = %s;\n", e->grad_off[j - 1], v);
            }
    }
}

/* Marks the scalar gradient entries that body() can store right after
 * computing them. Storing them at the end instead lets gcc (its TER pass)
 * sink each entry's last operation to the store, keeping its operands live
 * across the whole function. Returns per input: stored early. */
static uint8_t *plan_early_stores(const Emitter *e, Plan *p, const uint32_t *npieces)
{
    const Kernel *k = e->k;
    uint32_t nin = k->ninputs - k->nparams;
    uint8_t *done = xmalloc(k->ninputs + 1);
    memset(done, 0, k->ninputs + 1);
    p->early = xmalloc(k->g->n * sizeof *p->early);
    p->early_next = xmalloc((k->ninputs + 1) * sizeof *p->early_next);
    memset(p->early, 0, k->g->n * sizeof *p->early);
    for (uint32_t i = nin; i-- > 0;) {
        NodeId r = k->grad[i];
        if (r == NODE_NONE)
            continue;
        Store s = p->store[r];
        if (npieces[i] || !is_scalar(e, r) || (s != S_TEMP && s != S_SLOT))
            continue;
        p->early_next[i] = p->early[r];
        p->early[r] = i + 1;
        done[i] = 1;
    }
    return done;
}

/* Writes root into dst[off..] (a scalar, or a tensor element by element). */
static void store_result(const Emitter *e, const Plan *p, NodeId root,
                         const char *dst, uint32_t off, Buf *out)
{
    char v[320];
    if (is_scalar(e, root)) {
        elem(e, p, root, "0", v);
        buf_printf(out, "    %s[%u] = %s;\n", dst, off, v);
        return;
    }
    elem(e, p, root, "i", v);
    buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = %s;\n",
               size_of(e, root), dst, off, v);
}

/* A piece that is a whole tensor term (unview_pieces), not a block. */
static int whole_piece(const Emitter *e, NodeId piece)
{
    Op op = (Op)node(e, piece)->op;
    return op != OP_UNVIEW && op != OP_PAD && op != OP_TCONST;
}

/* What a piece writes: a block's operand, or the whole term itself. */
static NodeId piece_value(const Emitter *e, NodeId piece)
{
    return whole_piece(e, piece) || node(e, piece)->op == OP_TCONST ? piece : node(e, piece)->arg[0];
}

/* The one element that is not +0 of a constant tensor, or UINT32_MAX. */
static uint32_t one_hot(const Emitter *e, NodeId id)
{
    if (node(e, id)->op != OP_TCONST)
        return UINT32_MAX;
    const double *v = ir_tconst_data(e->k->g, id);
    uint32_t at = UINT32_MAX;
    for (uint32_t i = 0; i < size_of(e, id); i++)
        if (v[i] != 0.0 || signbit(v[i])) {
            if (at != UINT32_MAX)
                return UINT32_MAX;
            at = i;
        }
    return at;
}

/* A gradient that is a sum of UNVIEWs (a network's parameter adjoint: one
 * block per weight matrix and bias) is written block by block into the
 * output instead of adding full-length vectors. Besides blocks, one term
 * may be a whole tensor, written first, and one-hot constants add their
 * element (W3b: softmax(x) - e_3 is the softmax, then 1 subtracted from
 * element 3). Returns the number of blocks, or 0 when root has another
 * form. */
static uint32_t unview_pieces(const Emitter *e, NodeId root, NodeId *pieces, uint32_t max)
{
    NodeId stack[64];
    uint32_t sp = 0, n = 0, whole = 0, blocks = 0;
    stack[sp++] = root;
    while (sp > 0) {
        NodeId id = stack[--sp];
        const Node *nd = node(e, id);
        if ((nd->op == OP_UNVIEW || nd->op == OP_PAD || one_hot(e, id) != UINT32_MAX) && n < max) {
            pieces[n++] = id;
            blocks++;
        } else if (nd->op == OP_ADD && sp + 2 <= 64 &&
                 shape_eq(node(e, nd->arg[0])->shape, node(e, root)->shape) &&
                 shape_eq(node(e, nd->arg[1])->shape, node(e, root)->shape)) {
            stack[sp++] = nd->arg[0];
            stack[sp++] = nd->arg[1];
        } else if (id != root && nd->op != OP_TCONST && !whole++ && n < max) {
            pieces[n++] = id;
        } else
            return 0;
    }
    if (whole && (n != 2 || !blocks))
        return 0;               /* a + b of whole tensors is one loop */
    if (whole && !whole_piece(e, pieces[0])) {
        NodeId t = pieces[0];   /* two terms: a + b is b + a */
        pieces[0] = pieces[1], pieces[1] = t;
    }
    return n;
}

/* A block that is an outer product a b^T is written straight from a and
 * b (a network's weight gradient), never stored on its own. */
static int outer_piece(const Emitter *e, NodeId piece)
{
    const Node *u = node(e, piece);
    return u->op == OP_UNVIEW && node(e, u->arg[0])->op == OP_OUTER;
}

/* Contiguous blocks (views, unit-stride slices) and where they start. */
static int block_of(const Emitter *e, NodeId piece, uint32_t *at, uint32_t *len)
{
    const Node *u = node(e, piece);
    if (whole_piece(e, piece)) {
        *at = 0, *len = size_of(e, piece);
        return 1;
    }
    if (u->op == OP_TCONST)
        return 0;
    Shape s0 = node(e, u->arg[0])->shape;
    uint32_t r = row_size(u->shape);
    if (u->op == OP_UNVIEW || ((uint32_t)u->num == 1 && s0.rank == u->shape.rank)) {
        *at = (uint32_t)u->aux * (u->op == OP_PAD ? r : 1);
        *len = shape_size(s0);
        return 1;
    }
    return 0;
}

/* The blocks tile the whole output without overlap: assign, don't add. */
static int blocks_tile(const Emitter *e, NodeId root, const NodeId *pieces, uint32_t n)
{
    uint32_t total = size_of(e, root), covered = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t at, len;
        if (!block_of(e, pieces[k], &at, &len))
            return 0;
        for (uint32_t q = 0; q < k; q++) {
            uint32_t at2, len2;
            block_of(e, pieces[q], &at2, &len2);
            if (at < at2 + len2 && at2 < at + len)
                return 0;
        }
        covered += len;
    }
    return covered == total;
}

static void add_write(Plan *p, NodeId v, uint32_t at, int add)
{
    NodeId r = p->run[v];
    p->writes = xrealloc(p->writes, (p->nwrites + 1) * sizeof *p->writes);
    p->writes[p->nwrites++] = (LoopWrite){v, at, add, 0, 0};
    if (p->wlast[r])
        p->writes[p->wlast[r] - 1].next = p->nwrites;
    else
        p->wfirst[r] = p->nwrites;
    p->wlast[r] = p->nwrites;
}

/* Writes an output (a root, or its blocks as store_pieces would) into
 * dst[off..] inside the loop that computes it, instead of storing it in an
 * array and copying after the body: W4's gradient of x, two overlapping
 * slices, is written by the main loop. Each element must receive its
 * terms in store_pieces' order: block k's element j comes at iteration
 * j - start_k, so the starts must not increase (two blocks may be
 * swapped: a + b is b + a). Returns 1 when arranged. */
static int plan_loop_writes(const Emitter *e, Plan *p, NodeId root, const NodeId *pieces_in,
                            uint32_t n, uint32_t off)
{
    NodeId pieces[MAXP], vals[MAXP];
    uint32_t at[MAXP], len[MAXP], size = size_of(e, root);
    if (n == 0) {
        vals[0] = root, at[0] = 0, len[0] = size, n = 1;
    } else {
        memcpy(pieces, pieces_in, n * sizeof *pieces);
        for (uint32_t k = 0; k < n; k++)
            if (outer_piece(e, pieces[k]) || !block_of(e, pieces[k], &at[k], &len[k]))
                return 0;
        if (n == 2 && at[1] > at[0]) {
            NodeId t = pieces[0];
            pieces[0] = pieces[1], pieces[1] = t;
            block_of(e, pieces[0], &at[0], &len[0]);
            block_of(e, pieces[1], &at[1], &len[1]);
        }
        for (uint32_t k = 0; k < n; k++)
            vals[k] = piece_value(e, pieces[k]);
    }
    int tile = n == 1 ? len[0] == size : blocks_tile(e, root, pieces, n);
    NodeId run = p->run[vals[0]];
    for (uint32_t k = 0; k < n; k++) {
        Store st = p->store[vals[k]];
        if (!run || p->run[vals[k]] != run || loop_size(e, p, run) != len[k] ||
            !(st == S_ARRAY || st == S_WORK) || (!tile && k > 0 && at[k] > at[k - 1]))
            return 0;
    }
    if (!tile && p->nzero + 2 > MAX_ZERO)
        return 0;
    if (n == 2 && !tile && at[0] == at[1] + 1 && len[0] == len[1]) {
        /* Block 0 one element after block 1 (W4: x[i+1] and x[i]): element
         * j is block 0's j-1 plus block 1's j, so block 0's value is
         * carried to the next iteration in a register instead of being
         * stored and re-read; the first element is 0.0 + block 1's, as
         * after zeroing. */
        if (at[1] > 0)
            p->zero[p->nzero][0] = off, p->zero[p->nzero++][1] = off + at[1];
        if (at[0] + len[0] < size)
            p->zero[p->nzero][0] = off + at[0] + len[0], p->zero[p->nzero++][1] = off + size;
        add_write(p, vals[1], off + at[1], 1);
        p->writes[p->nwrites - 1].carry = vals[0];
        p->roots[vals[0]]--;
        p->roots[vals[1]]--;
        return 1;
    }
    if (!tile && at[0] > 0)
        p->zero[p->nzero][0] = off, p->zero[p->nzero++][1] = off + at[0];
    if (!tile && at[0] + len[0] < size)
        p->zero[p->nzero][0] = off + at[0] + len[0], p->zero[p->nzero++][1] = off + size;
    for (uint32_t k = 0; k < n; k++) {
        add_write(p, vals[k], off + at[k], !tile && k > 0);
        p->roots[vals[k]]--;
    }
    return 1;
}

/* An output array that is its own output, or the first block that
 * store_pieces assigns, is computed in place in dst (a softmax straight
 * into grad): no copy. Only when nothing else stores it, and never for
 * grad_params (it may be null). Returns 1 when the root needs no store. */
static int plan_in_place(const Emitter *e, Plan *p, NodeId root, const NodeId *pieces,
                         uint32_t n, uint32_t off)
{
    uint32_t at = 0, len = size_of(e, root);
    NodeId v = root;
    if (n > 0) {
        if (blocks_tile(e, root, pieces, n) || outer_piece(e, pieces[0]) ||
            !block_of(e, pieces[0], &at, &len))
            return 0;
        v = piece_value(e, pieces[0]);
    }
    if (p->store[v] != S_ARRAY || p->roots[v] != 1 || p->out_at[v] || size_of(e, v) != len)
        return 0;
    p->out_at[v] = 1 + off + at;
    return n == 0;
}

/* Values that are now only written inside their loop need no array. */
static void localise_written(Plan *p)
{
    for (uint32_t w = 0; w < 2 * p->nwrites; w++) {
        NodeId v = w % 2 ? p->writes[w / 2].carry : p->writes[w / 2].v;
        if (v && !p->roots[v] && !p->outside[v] && (p->store[v] == S_ARRAY || p->store[v] == S_WORK))
            p->store[v] = S_LOCAL;
    }
}

static void store_pieces(const Emitter *e, const Plan *p, NodeId root, const NodeId *pieces,
                         uint32_t n, const char *dst, uint32_t off, Buf *out)
{
    char v[320];
    int tile = blocks_tile(e, root, pieces, n);
    const char *op = tile ? "=" : "+=";
    /* When the blocks overlap, the first one (if contiguous) is still
     * assigned, and only the rest of the output is zeroed first: one pass
     * over the output fewer. */
    uint32_t at0 = 0, len0 = 0, size = size_of(e, root);
    int first = !tile && n > 0 && !outer_piece(e, pieces[0]) && block_of(e, pieces[0], &at0, &len0);
    if (first) {
        if (at0 > 0)
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = 0.0;\n",
                       at0, dst, off);
        if (at0 + len0 < size)
            buf_printf(out, "    for (long i = %u; i < %u; i++)\n        %s[%u + i] = 0.0;\n",
                       at0 + len0, size, dst, off);
    } else if (!tile) {
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = 0.0;\n",
                   size, dst, off);
    }
    for (uint32_t k = 0; k < n; k++) {
        const Node *u = node(e, pieces[k]);
        op = tile || (first && k == 0) ? "=" : "+=";
        Shape s0 = node(e, piece_value(e, pieces[k]))->shape;
        uint32_t r = row_size(u->shape), stride = (uint32_t)u->num, at, len;
        if (outer_piece(e, pieces[k])) {
            const Node *o = node(e, u->arg[0]);
            char a[320], b[320];
            elem(e, p, o->arg[0], "i", a);
            elem(e, p, o->arg[1], "j", b);
            buf_printf(out, "    for (long i = 0; i < %u; i++) {\n        const double ai = %s;\n"
                            "        double *restrict d = %s + %u + i * %u;\n"
                            "        for (long j = 0; j < %u; j++)\n            d[j] %s ai * %s;\n    }\n",
                       o->shape.dim[0], a, dst, off + (uint32_t)u->aux, o->shape.dim[1],
                       o->shape.dim[1], op, b);
            continue;
        }
        if (u->op == OP_TCONST) {      /* one-hot: its one element */
            char ix[16];
            at = one_hot(e, pieces[k]);
            snprintf(ix, sizeof ix, "%u", at);
            elem(e, p, pieces[k], ix, v);
            buf_printf(out, "    %s[%u] %s %s;\n", dst, off + at, op, v);
            continue;
        }
        if (block_of(e, pieces[k], &at, &len)) {
            if (k == 0 && p->out_at && p->out_at[piece_value(e, pieces[k])])
                continue;               /* computed in place */
            elem(e, p, piece_value(e, pieces[k]), "i", v);
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] %s %s;\n",
                       len, dst, off + at, op, v);
            continue;
        }
        uint32_t count = s0.rank == u->shape.rank ? s0.dim[0] : 1;
        char ix[64];
        snprintf(ix, sizeof ix, "k * %u + i", r);
        elem(e, p, u->arg[0], ix, v);
        buf_printf(out, "    for (long k = 0; k < %u; k++)\n        for (long i = 0; i < %u; i++)\n"
                        "            %s[%u + (%u + k * %u) * %u + i] += %s;\n",
                   count, r, dst, off, (uint32_t)u->aux, stride, r, v);
    }
}

/* ---- entry points ---- */

typedef enum Entry { E_VALUE, E_GRAD } Entry;

/* "const double *restrict in, const double *restrict params" etc. */
static void params_text(const Emitter *e, Entry entry, int work, int proto, Buf *b)
{
    const char *r = proto ? "" : "restrict ";
    int tensor = !is_scalar(e, e->k->value);
    buf_printf(b, "const double *%sin", r);
    if (e->k->nparams)
        buf_printf(b, ", const double *%sparams", r);
    if (entry == E_VALUE && tensor)
        buf_printf(b, ", double *%sout", r);
    if (entry == E_GRAD) {
        if (tensor)
            buf_printf(b, ", const double *%sv", r);
        buf_printf(b, ", double *%sgrad", r);
        if (e->k->nparams)
            buf_printf(b, ", double *%sgrad_params", r);
    }
    if (work)
        buf_printf(b, ", double *%swork", r);
}

static void signature(const Emitter *e, Entry entry, int work, int proto, Buf *out)
{
    int tensor = !is_scalar(e, e->k->value);
    const char *suffix = entry == E_VALUE ? "" : tensor ? "_vjp" : "_grad";
    buf_printf(out, "%s %s%s%s(", tensor ? "void" : "double", e->sym, suffix, work ? "_work" : "");
    params_text(e, entry, work, proto, out);
    buf_puts(out, proto ? ");\n" : ")\n");
}

static int uses(const Plan *p, const Emitter *e, int params)
{
    for (uint32_t i = 0; i < e->k->ninputs; i++) {
        int is_param = i >= e->k->ninputs - e->k->nparams;
        if (is_param == params && p->store[e->k->input[i]] != S_NONE)
            return 1;
    }
    return 0;
}

/* What an entry point computes: the value (not for a VJP), and per input
 * its gradient, or the blocks of a gradient written block by block. */
static uint32_t entry_roots(const Emitter *e, Entry entry, NodeId **rootsp,
                            NodeId **piecesp, uint32_t **npiecesp)
{
    const Kernel *k = e->k;
    NodeId *roots = xmalloc((k->ninputs + 1) * (2 * MAXP + 1) * sizeof *roots);
    NodeId *pieces = xmalloc((k->ninputs + 1) * MAXP * sizeof *pieces);
    uint32_t *npieces = xmalloc((k->ninputs + 1) * sizeof *npieces);
    uint32_t nroots = 0;
    if (entry == E_VALUE || is_scalar(e, k->value))     /* a VJP does not return the value */
        roots[nroots++] = k->value;
    for (uint32_t i = 0; entry == E_GRAD && i < k->ninputs; i++) {
        npieces[i] = 0;
        if (k->grad[i] == NODE_NONE)            /* not in --wrt */
            continue;
        npieces[i] = unview_pieces(e, k->grad[i], pieces + i * MAXP, MAXP);
        for (uint32_t j = 0; j < npieces[i]; j++) {
            NodeId piece = pieces[i * MAXP + j], v = piece_value(e, piece);
            if (outer_piece(e, piece)) {        /* written from its factors */
                roots[nroots++] = node(e, v)->arg[0];
                roots[nroots++] = node(e, v)->arg[1];
            } else {
                roots[nroots++] = v;
            }
        }
        if (npieces[i] == 0)
            roots[nroots++] = k->grad[i];
    }
    *rootsp = roots;
    *piecesp = pieces;
    *npiecesp = npieces;
    return nroots;
}

/* An entry point's roots and plan, made once per emission: the work size
 * needs them before the code is printed (planning a big kernel takes as
 * long as printing it). */
static EntryPlan *entry_plan(const Emitter *e, Entry entry)
{
    EntryPlan *ep = &e->plans[entry];
    if (!ep->roots) {
        ep->nroots = entry_roots(e, entry, &ep->roots, &ep->pieces, &ep->npieces);
        plan(e, ep->roots, ep->nroots, &ep->p);
    }
    return ep;
}

static void entry_function(const Emitter *e, Entry entry, int work, Buf *out)
{
    const Kernel *k = e->k;
    int tensor = !is_scalar(e, k->value);
    EntryPlan *ep = entry_plan(e, entry);
    Plan *p = &ep->p;
    NodeId *pieces = ep->pieces;
    uint32_t *npieces = ep->npieces;
    signature(e, entry, work, 0, out);
    buf_puts(out, "{\n");
    if (!uses(p, e, 0))
        buf_puts(out, "    (void)in;\n");
    if (k->nparams && !uses(p, e, 1))
        buf_puts(out, "    (void)params;\n");
    if (work && !p->work)
        buf_puts(out, "    (void)work;\n");
    if (entry == E_GRAD && tensor && (!k->seed || p->store[k->seed] == S_NONE))
        buf_puts(out, "    (void)v;\n");
    uint8_t *early = entry == E_GRAD ? plan_early_stores(e, p, npieces) : NULL;
    int value_done = 0;
    if (entry == E_VALUE && tensor) {
        p->dst = "out";
        value_done = plan_loop_writes(e, p, k->value, NULL, 0, 0) ||
                     plan_in_place(e, p, k->value, NULL, 0, 0);
        localise_written(p);
    }
    if (entry == E_GRAD) {
        p->dst = "grad";
        for (uint32_t i = 0; i < k->ninputs - k->nparams; i++) {
            NodeId *pc = pieces + i * MAXP;
            if (!early[i] && k->grad[i] != NODE_NONE && !is_scalar(e, k->grad[i]) &&
                (plan_loop_writes(e, p, k->grad[i], pc, npieces[i], e->grad_off[i]) ||
                 plan_in_place(e, p, k->grad[i], pc, npieces[i], e->grad_off[i])))
                early[i] = 1;
        }
        localise_written(p);
    }
    body(e, p, out);
    char v[320];
    if (entry == E_VALUE && tensor && !value_done)
        store_result(e, p, k->value, "out", 0, out);
    if (entry == E_GRAD) {
        uint32_t nin = k->ninputs - k->nparams;
        if (e->nwrt_in == 0)
            buf_puts(out, "    (void)grad;\n");
        if (k->nparams && k->nwrt == e->nwrt_in)
            buf_puts(out, "    (void)grad_params;\n");
        for (uint32_t i = 0; i < k->ninputs; i++) {
            int is_param = i >= nin;
            const char *dst = is_param ? "grad_params" : "grad";
            if (early[i] || k->grad[i] == NODE_NONE)
                continue;
            if (is_param)
                buf_puts(out, "    if (grad_params) {\n");
            if (npieces[i])
                store_pieces(e, p, k->grad[i], pieces + i * MAXP, npieces[i], dst,
                             e->grad_off[i], out);
            else
                store_result(e, p, k->grad[i], dst, e->grad_off[i], out);
            if (is_param)
                buf_puts(out, "    }\n");
        }
    }
    if (!tensor) {
        elem(e, p, k->value, "0", v);
        buf_printf(out, "    return %s;\n", v);
    }
    buf_puts(out, "}\n");
    free(early);
}

/* Static const arrays for the tensor constants the kernel uses. */
static void constants(const Emitter *e, Buf *out)
{
    const Graph *g = e->k->g;
    for (NodeId i = 1; i < g->n; i++) {
        if (g->node[i].op != OP_TCONST)
            continue;
        const double *v = ir_tconst_data(g, i);
        uint32_t n = shape_size(g->node[i].shape);
        buf_printf(out, "static const double %s_k%u[%u] = {", e->sym, i, n);
        for (uint32_t j = 0; j < n; j++) {
            char num[48];
            literal(v[j], num);
            buf_printf(out, "%s%s", j == 0 ? "\n    " : j % 8 ? ", " : ",\n    ", num);
        }
        buf_puts(out, "\n};\n");
    }
}

static uint32_t work_size(const Emitter *e)
{
    uint32_t size = 0;
    for (int entry = E_VALUE; entry <= (e->k->grad ? E_GRAD : E_VALUE); entry++) {
        const Plan *p = &entry_plan(e, (Entry)entry)->p;
        if (p->work > size)
            size = p->work;
    }
    if (e->k->jac) {
        Plan p;
        plan(e, e->k->jac, e->out_size * e->k->njac, &p);
        if (p.work > size)
            size = p.work;
        plan_free(&p);
    }
    return size;
}

static void macro_name(const char *sym, const char *suffix, char *out, size_t n)
{
    size_t i = 0;
    for (; sym[i] && i + 1 < n; i++)
        out[i] = (char)toupper((unsigned char)sym[i]);
    out[i] = 0;
    strncat(out, suffix, n - strlen(out) - 1);
}

/* Jacobian rows by reverse sweeps with unit seeds: J[i][j] = d out_i / d in_j. */
static void jacobian_function(const Emitter *e, int work, int proto, Buf *out)
{
    buf_printf(out, "void %s_jacobian%s(const double *%sin%s, double *%sJ%s)%s",
               e->sym, work ? "_work" : "", proto ? "" : "restrict ",
               e->k->nparams ? (proto ? ", const double *params" : ", const double *restrict params") : "",
               proto ? "" : "restrict ", work ? ", double *work" : "", proto ? ";\n" : "\n");
    if (proto)
        return;
    if (e->k->jac) {
        /* All rows at once: one forward pass, a reverse sweep per row. */
        const Kernel *k = e->k;
        uint32_t nj = k->njac, n = e->out_size * nj;
        Plan p;
        plan(e, k->jac, n, &p);
        p.dst = "J";
        uint8_t *done = xmalloc(n);
        for (uint32_t i = 0; i < n; i++)
            done[i] = !is_scalar(e, k->jac[i]) &&
                      (plan_loop_writes(e, &p, k->jac[i], NULL, 0,
                                        (i / nj) * e->grad_size + e->grad_off[k->wrt[i % nj]]) ||
                       plan_in_place(e, &p, k->jac[i], NULL, 0,
                                     (i / nj) * e->grad_size + e->grad_off[k->wrt[i % nj]]));
        localise_written(&p);
        buf_puts(out, "{\n");
        if (!uses(&p, e, 0))
            buf_puts(out, "    (void)in;\n");
        if (k->nparams && !uses(&p, e, 1))
            buf_puts(out, "    (void)params;\n");
        if (work && !p.work)
            buf_puts(out, "    (void)work;\n");
        body(e, &p, out);
        for (uint32_t i = 0; i < n; i++)
            if (!done[i])
                store_result(e, &p, k->jac[i], "J", (i / nj) * e->grad_size + e->grad_off[k->wrt[i % nj]], out);
        buf_puts(out, "}\n");
        free(done);
        plan_free(&p);
        return;
    }
    buf_printf(out, "{\n    double gradc_v[%u];\n    for (long gradc_i = 0; gradc_i < %u; gradc_i++)\n        gradc_v[gradc_i] = 0.0;\n"
                    "    for (long gradc_i = 0; gradc_i < %u; gradc_i++) {\n        gradc_v[gradc_i] = 1.0;\n"
                    "        %s_vjp%s(in, %sgradc_v, J + gradc_i * %u%s%s);\n        gradc_v[gradc_i] = 0.0;\n    }\n}\n",
               e->out_size, e->out_size, e->out_size, e->sym, work ? "_work" : "",
               e->k->nparams ? "params, " : "", e->grad_size, e->k->nparams ? ", 0" : "",
               work ? ", work" : "");
}

/* The definition names its parameters gradc_*: the body calls the value
 * function by the user's name, which a parameter named n, in, out, params
 * or work would hide (a function called n is a fair name). The prototype
 * keeps the short names the documentation uses. */
static void batch_function(const Emitter *e, int work, int proto, Buf *out)
{
    int tensor = !is_scalar(e, e->k->value);
    const char *p = proto ? "" : "gradc_";
    const char *restr = proto ? "" : "restrict ";
    buf_printf(out, "void %s_batch%s(unsigned long %sn, const double *%s%sin", e->sym,
               work ? "_work" : "", p, restr, p);
    if (e->k->nparams)
        buf_printf(out, ", const double *%s%sparams", restr, p);
    buf_printf(out, ", double *%s%sout", restr, p);
    if (work)
        buf_printf(out, ", double *%swork", p);
    buf_printf(out, ")%s", proto ? ";\n" : "\n");
    if (proto)
        return;
    const char *prm = e->k->nparams ? "gradc_params, " : "";
    const char *wrk = work ? ", gradc_work" : "";
    buf_printf(out, "{\n    for (unsigned long gradc_s = 0; gradc_s < gradc_n; gradc_s++)\n");
    if (tensor)
        buf_printf(out, "        %s%s(gradc_in + gradc_s * %u, %sgradc_out + gradc_s * %u%s);\n}\n",
                   e->sym, work ? "_work" : "", e->in_size, prm, e->out_size, wrk);
    else
        buf_printf(out, "        gradc_out[gradc_s] = %s%s(gradc_in + gradc_s * %u%s%s);\n}\n",
                   e->sym, work ? "_work" : "", e->in_size, e->k->nparams ? ", gradc_params" : "",
                   wrk);
}

static void init_function(const Emitter *e, const Network *net, int proto, Buf *out)
{
    buf_printf(out, "void %s_init_params(double *%sparams, unsigned long seed)%s", e->sym,
               proto ? "" : "restrict ", proto ? ";\n" : "\n");
    if (proto)
        return;
    /* The documented scheme (net.c): splitmix64, uniform in +-limit. */
    buf_printf(out, "{\n    unsigned long long state = seed;\n    double *p = params;\n");
    for (uint32_t l = 0; l < net->nlayers; l++) {
        const Layer *L = &net->layer[l];
        uint32_t nw = L->in * L->units;
        char lim[48], val[48];
        buf_printf(out, "    /* layer %u: %u -> %u */\n", l + 1, L->in, L->units);
        if (L->wkind == INIT_RANDOM) {
            literal(net_init_limit(L), lim);
            buf_printf(out, "    for (long i = 0; i < %u; i++) {\n"
                            "        unsigned long long z = (state += 0x9e3779b97f4a7c15ull);\n"
                            "        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n"
                            "        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
                            "        z ^= z >> 31;\n"
                            "        p[i] = (2.0 * ((double)(z >> 11) * 0x1.0p-53) - 1.0) * %s;\n    }\n",
                       nw, lim);
        } else if (L->wkind == INIT_SCALAR) {
            literal(L->wval, val);
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        p[i] = %s;\n", nw, val);
        } else {
            buf_printf(out, "    {\n        static const double w[%u] = {", nw);
            for (uint32_t i = 0; i < nw; i++) {
                literal(L->wlit[i], val);
                buf_printf(out, "%s%s", i ? ", " : "", val);
            }
            buf_printf(out, "};\n        for (long i = 0; i < %u; i++)\n            p[i] = w[i];\n    }\n", nw);
        }
        if (L->bkind == INIT_SCALAR) {
            literal(L->bval, val);
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        p[%u + i] = %s;\n", L->units, nw, val);
        } else {
            buf_printf(out, "    {\n        static const double b[%u] = {", L->units);
            for (uint32_t i = 0; i < L->units; i++) {
                literal(L->blit[i], val);
                buf_printf(out, "%s%s", i ? ", " : "", val);
            }
            buf_printf(out, "};\n        for (long i = 0; i < %u; i++)\n            p[%u + i] = b[i];\n    }\n",
                       L->units, nw);
        }
        buf_printf(out, "    p += %u;\n", nw + L->units);
    }
    buf_puts(out, "    (void)state;\n}\n");
}

/* One signature for every kernel, so the run-time library needs one
 * function pointer: value into out[], gradient (or VJP with seed v) into
 * grad and grad_params when grad is not null. */
static void runtime_entry(const Emitter *e, int work, Buf *out)
{
    int tensor = !is_scalar(e, e->k->value);
    const char *w = work ? "_work" : "", *wa = work ? ", work" : "";
    const char *pa = e->k->nparams ? ", params" : "", *gp = e->k->nparams ? ", grad_params" : "";
    buf_printf(out, "\nvoid %s_rt(const double *in, const double *params, const double *v, "
                    "double *out, double *grad, double *grad_params, double *work);\n", e->sym);
    buf_printf(out, "void %s_rt(const double *in, const double *params, const double *v, "
                    "double *out, double *grad, double *grad_params, double *work)\n{\n"
                    "    (void)params;\n    (void)v;\n    (void)grad_params;\n    (void)work;\n", e->sym);
    if (!tensor) {
        buf_printf(out, "    if (!grad)\n        out[0] = %s%s(in%s%s);\n", e->sym, w, pa, wa);
        if (e->k->grad)
            buf_printf(out, "    else\n        out[0] = %s_grad%s(in%s, grad%s%s);\n", e->sym, w, pa, gp, wa);
    } else {
        buf_printf(out, "    %s%s(in%s, out%s);\n", e->sym, w, pa, wa);
        if (e->k->grad)
            buf_printf(out, "    if (grad)\n        %s_vjp%s(in%s, v, grad%s%s);\n", e->sym, w, pa, gp, wa);
    }
    buf_puts(out, "}\n");
}

static void teardown(Emitter *e)
{
    free(e->input_off);
    free(e->grad_off);
    free(e->lit_at);
    if (e->lits)
        buf_free(e->lits);
    free(e->lits);
    for (int i = 0; e->plans && i < 2; i++) {
        EntryPlan *ep = &e->plans[i];
        if (ep->roots)
            plan_free(&ep->p);
        free(ep->roots);
        free(ep->pieces);
        free(ep->npieces);
    }
    free(e->plans);
}

static int setup(Emitter *e, const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    memset(e, 0, sizeof *e);
    e->k = k;
    e->o = o;
    e->out = out;
    const char *name = o && o->name ? o->name : k->name;
    snprintf(e->sym, sizeof e->sym, "%s%s", o && o->prefix ? o->prefix : "", name);
    if (!emit_valid_c_name(e->sym)) {
        diag_plain(d, "'%s' cannot be the name of a C function (it is not an identifier, or it is a C keyword or a name the generated code uses); choose another with --name or --prefix", e->sym);
        return -1;
    }
    e->input_off = xmalloc((k->ninputs + 1) * sizeof *e->input_off);
    e->lit_at = xmalloc(k->g->n * sizeof *e->lit_at);
    memset(e->lit_at, 0, k->g->n * sizeof *e->lit_at);
    e->lits = xmalloc(sizeof *e->lits);
    memset(e->lits, 0, sizeof *e->lits);
    e->plans = xmalloc(2 * sizeof *e->plans);
    memset(e->plans, 0, 2 * sizeof *e->plans);
    e->grad_off = xmalloc((k->ninputs + 1) * sizeof *e->grad_off);
    uint32_t nin = k->ninputs - k->nparams;
    for (uint32_t i = 0; i < k->ninputs; i++) {
        uint32_t *acc = i < nin ? &e->in_size : &e->params_size;
        e->input_off[i] = *acc;
        *acc += size_of(e, k->input[i]);
    }
    /* The gradient arrays hold the inputs of k->wrt, one after another. */
    for (uint32_t j = 0; k->grad && j < k->nwrt; j++) {
        uint32_t i = k->wrt[j];
        uint32_t *acc = i < nin ? &e->grad_size : &e->grad_params_size;
        e->grad_off[i] = *acc;
        *acc += size_of(e, k->input[i]);
        e->nwrt_in += i < nin;
    }
    e->out_size = size_of(e, k->value);
    return 0;
}

static void input_comment(const Emitter *e, Buf *out)
{
    const Kernel *k = e->k;
    char sh[48];
    buf_printf(out, " * in[%u]:", e->in_size);
    for (uint32_t i = 0; i < k->ninputs - k->nparams; i++) {
        Shape s = node(e, k->input[i])->shape;
        buf_printf(out, "%s %s%s at %u", i ? "," : "", k->input_name[i],
                   s.rank ? shape_str(s, sh) : "", e->input_off[i]);
    }
    if (k->nparams)
        buf_printf(out, "; params[%u]", e->params_size);
    buf_printf(out, "; value %s\n", shape_str(node(e, k->value)->shape, sh));
    if (!k->grad || k->wrt_all)
        return;
    /* --wrt: say which inputs the gradient arrays hold, and where. */
    buf_printf(out, " * grad[%u]:", e->grad_size);
    for (uint32_t j = 0; j < e->nwrt_in; j++) {
        uint32_t i = k->wrt[j];
        Shape s = node(e, k->input[i])->shape;
        buf_printf(out, "%s %s%s at %u", j ? "," : "", k->input_name[i],
                   s.rank ? shape_str(s, sh) : "", e->grad_off[i]);
    }
    if (k->nparams)
        buf_printf(out, "; grad_params[%u]", e->grad_params_size);
    buf_puts(out, " (--wrt: the gradient by these inputs only)\n");
}

uint32_t emit_work_size(const Kernel *k, const EmitOptions *o)
{
    Emitter e;
    Diag d;
    diag_init(&d);
    uint32_t size = setup(&e, k, o, NULL, &d) == 0 ? work_size(&e) : 0;
    teardown(&e);
    diag_free(&d);
    return size;
}

static void prototypes(const Emitter *e, const Network *net, int work, Buf *out)
{
    signature(e, E_VALUE, work, 1, out);
    if (e->k->grad) {
        signature(e, E_GRAD, work, 1, out);
        if (!is_scalar(e, e->k->value))
            jacobian_function(e, work, 1, out);
    }
    batch_function(e, work, 1, out);
    if (net)
        init_function(e, net, 1, out);
}

int emit_c_source(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    Emitter e;
    if (setup(&e, k, o, out, d) != 0) {
        teardown(&e);
        return -1;
    }
    uint32_t work = work_size(&e);
    const Network *net = o ? o->net : NULL;
    buf_printf(out, "/* Generated by gradc " GRADC_VERSION "; do not edit.\n");
    input_comment(&e, out);
    buf_puts(out, " */\n#include <math.h>\n");
    if (o && o->blas)
        buf_puts(out, "#include <cblas.h>   /* --blas: link with -lopenblas (or any CBLAS) */\n");
    buf_puts(out, "\n");
    prototypes(&e, net, work != 0, out);
    uint32_t nin = k->ninputs - k->nparams;
    buf_printf(out, "extern const char *const %s_input_names[%u];\n\n", e.sym, nin + 1);
    buf_printf(out, "const char *const %s_input_names[%u] = {", e.sym, nin + 1);
    for (uint32_t i = 0; i < nin; i++)
        buf_printf(out, "\"%s\", ", k->input_name[i]);
    buf_puts(out, "0};\n\n");
    constants(&e, out);
    entry_function(&e, E_VALUE, work != 0, out);
    if (k->grad) {
        buf_puts(out, "\n");
        entry_function(&e, E_GRAD, work != 0, out);
        if (!is_scalar(&e, k->value)) {
            buf_puts(out, "\n");
            jacobian_function(&e, work != 0, 0, out);
        }
    }
    buf_puts(out, "\n");
    batch_function(&e, work != 0, 0, out);
    if (net) {
        buf_puts(out, "\n");
        init_function(&e, net, 0, out);
    }
    if (o && o->runtime_entry)
        runtime_entry(&e, work != 0, out);
    teardown(&e);
    return 0;
}

int emit_c_header(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    Emitter e;
    if (setup(&e, k, o, out, d) != 0) {
        teardown(&e);
        return -1;
    }
    char guard[300], m[300];
    uint32_t work = work_size(&e);
    const Network *net = o ? o->net : NULL;
    macro_name(e.sym, "_H_GRADC", guard, sizeof guard);
    buf_printf(out, "/* Generated by gradc " GRADC_VERSION "; do not edit.\n");
    input_comment(&e, out);
    buf_puts(out, " * See docs/emitted-api.md for the calling convention.\n */\n");
    buf_printf(out, "#ifndef %s\n#define %s\n\n", guard, guard);
    macro_name(e.sym, "_NUM_INPUTS", m, sizeof m);
    buf_printf(out, "#define %s %u   /* named inputs */\n", m, k->ninputs - k->nparams);
    macro_name(e.sym, "_IN_SIZE", m, sizeof m);
    buf_printf(out, "#define %s %u   /* doubles in `in` */\n", m, e.in_size);
    macro_name(e.sym, "_OUT_SIZE", m, sizeof m);
    buf_printf(out, "#define %s %u   /* doubles in the value */\n", m, e.out_size);
    if (k->nparams) {
        macro_name(e.sym, "_NUM_PARAMS", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles in `params` */\n", m, e.params_size);
    }
    if (k->grad && !k->wrt_all) {
        macro_name(e.sym, "_GRAD_SIZE", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles in `grad` (--wrt) */\n", m, e.grad_size);
    }
    if (work) {
        macro_name(e.sym, "_WORK_SIZE", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles of `work` the caller provides */\n", m, work);
    }
    macro_name(e.sym, "_NUM_INPUTS", m, sizeof m);
    buf_printf(out, "\n/* Input names in order, then a null pointer. */\n");
    buf_printf(out, "extern const char *const %s_input_names[%s + 1];\n\n", e.sym, m);
    prototypes(&e, net, work != 0, out);
    buf_printf(out, "\n#endif\n");
    teardown(&e);
    return 0;
}

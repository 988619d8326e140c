/* opt.c — from a parsed function to a kernel ready for emission: the
 * gradient is added (diff.c), then only what the entry points reach is
 * copied into a fresh graph, in a schedule that keeps few values live:
 * depth-first post-order from the roots, the heavier operand first, each
 * gradient entry right after the value nodes it needs.
 * That is dead-code elimination, and it also makes the numbering (and so
 * the IR text used as a cache key) depend only on the formula's structure,
 * not on spacing, definition order or other functions in the file. */
#include "gradc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* How far ahead sweeps in index order fetch what their nodes' operands
 * will need (entries read at random, each a cache miss in a big graph). */
enum { AHEAD = 32 };

/* A node of the walk's path whose first operand's subtree is being
 * visited; its walk entry is not read again. */
typedef struct Frame {
    NodeId id;
    NodeId second;              /* the operand to visit next, or NODE_NONE */
} Frame;

/* What the walk needs of a src node, 16 bytes instead of a whole Node:
 * the walk's random reads are cache misses in a big graph, and one read
 * of a node's entry brings in both its operands. NODE_NONE (never an
 * operand) marks the absent ones. */
typedef struct Walk {
    NodeId arg[2];              /* the operands (at most 2, ops.h), in visiting order */
    /* The first operand's arg[]: the walk goes down to it next, and
     * then to these, whose entries can so be fetched a level early (a
     * descent is one dependent cache miss per level otherwise). */
    NodeId next[2];
} Walk;

/* A src node's Sethi-Ullman label and form (walk_init), side by side:
 * one random read for both. */
typedef struct Label {
    uint32_t need, form;
} Label;

/* copy_scheduled keeps both in the kernel's node array, and fwd[] over
 * the labels. */
_Static_assert(sizeof(Walk) + sizeof(Label) <= sizeof(Node), "scratch fits in the nodes");
_Static_assert(sizeof(NodeId) <= sizeof(Label), "fwd[] fits over the labels");

/* State of the scheduled copy (copy_scheduled). */
typedef struct Sched {
    const Graph *src;
    Graph *dst;
    NodeId *map;                /* src id -> dst id; 0: not copied yet */
    Walk *w;                    /* per src node */
    /* Visited by the walk (or an input), one bit per src node: small
     * enough to stay in the cache, so an operand that was copied long ago
     * (a forward value used by the gradient) costs no miss to skip. */
    uint64_t *seen;
    int same;                   /* inputs keep their slots (ir_append_same) */
    Frame *stack;
} Sched;

static int seen(const Sched *s, NodeId id)
{
    return (int)(s->seen[id >> 6] >> (id & 63)) & 1;
}

static void see(Sched *s, NodeId id)
{
    s->seen[id >> 6] |= 1ull << (id & 63);
}

static int walk_arity(const Walk *w)
{
    return (w->arg[0] != NODE_NONE) + (w->arg[1] != NODE_NONE);
}

/* A hash of the tree below n (a and b: its operands' forms) that leaves
 * out which input each leaf is: the terms of a sum written out term by
 * term, 100*(x1 - x0^2)^2 + ..., all get the same forms, and the walk
 * then visits their operands in the same order (ties of labels would
 * otherwise be broken by the canonical operand order, a hash that depends
 * on the input): the schedule repeats term after term, which
 * emit_split.c folds into a loop. */
static uint32_t node_form(const Node *n, uint32_t a, uint32_t b)
{
    uint64_t bits;
    memcpy(&bits, &n->num, sizeof bits);
    uint64_t h = (uint64_t)n->op * 0x9e3779b97f4a7c15ull ^ bits;
    h = h * 0xff51afd7ed558ccdull + (n->op == OP_INPUT ? 0 : (uint32_t)n->aux);
    if ((op_info[n->op].flags & OPF_COMM) && b < a) {
        uint32_t t = a;
        a = b, b = t;
    }
    h = (h ^ a) * 0xc4ceb9fe1a85ec53ull;
    h = (h ^ b) * 0xff51afd7ed558ccdull;
    return (uint32_t)(h ^ h >> 32);
}

/* Fills w[] and seen from src. Sethi-Ullman labels: about how many values
 * evaluating each node's subtree keeps live at once (the DAG read as a
 * tree). Operands come before their users, so one forward loop computes
 * them. The walk visits the operand with the larger label first: w[]
 * lists it first. Inputs (map[i] != 0) are already in the kernel. */
static void walk_init(Sched *s, Label *l)
{
    const Graph *g = s->src;
    for (NodeId i = 0; i < g->n; i++) {
        const Node *n = &g->node[i];
        if (i + AHEAD < g->n) {         /* the operands' labels: random reads */
            PREFETCH(&l[n[AHEAD].arg[0]]);
            PREFETCH(&l[n[AHEAD].arg[1]]);
            PREFETCH(&s->w[n[AHEAD].arg[0]]);
            PREFETCH(&s->w[n[AHEAD].arg[1]]);
        }
        int arity = op_info[n->op].arity;
        uint32_t a = arity > 0 ? l[n->arg[0]].need : 0;
        uint32_t b = arity > 1 ? l[n->arg[1]].need : 0;
        l[i].need = arity == 0 ? 0 : a == b ? a + 1 : a > b ? a : b;
        l[i].form = node_form(n, arity > 0 ? l[n->arg[0]].form : 0,
                              arity > 1 ? l[n->arg[1]].form : 0);
        int swap = arity == 2 && (b > a || (b == a && l[n->arg[1]].form < l[n->arg[0]].form));
        NodeId first = arity > 0 ? n->arg[swap] : NODE_NONE;
        s->w[i] = (Walk){{first, arity > 1 ? n->arg[!swap] : NODE_NONE},
                         {arity > 0 ? s->w[first].arg[0] : NODE_NONE,
                          arity > 0 ? s->w[first].arg[1] : NODE_NONE}};
        if (n->op == OP_INPUT && s->map[i])     /* map[] is read only here */
            see(s, i);
    }
}

/* Appends node id of src to dst; its operands are there already. src is
 * hash-consed and folded, and map is one-to-one, so every node is new in
 * dst: appended without a lookup (a cache miss per node in the table of a
 * big graph). */
static void copy_node(Sched *s, NodeId id)
{
    const Node *n = &s->src->node[id];
    if (n->op == OP_TCONST)
        s->map[id] = ir_tconst(s->dst, n->shape, ir_tconst_data(s->src, id));
    else
        s->map[id] = (s->same ? ir_append_same : ir_append)(
            s->dst, n, s->map[n->arg[0]], op_info[n->op].arity > 1 ? s->map[n->arg[1]] : 0);
}

/* Appends to order[] the nodes reachable from root not yet seen, in
 * depth-first post-order, first the operand that needs more live values
 * (so a long sum is added up term by term instead of computing every
 * term first). Iterative: deep graphs cannot overflow the C stack. */
static void postorder(Sched *s, NodeId root, NodeId *order, uint32_t *norder)
{
    if (seen(s, root))
        return;
    see(s, root);
    uint32_t sp = 0, k = *norder;
    NodeId id = root;
    for (;;) {
        /* First visit of id: down to its first operand if not seen. */
        const Walk *n = &s->w[id];
        NodeId a = n->arg[0], b = n->arg[1];
        /* The second operand's entry and those the descent reads next:
         * start the cache misses together. */
        PREFETCH(&s->w[b]);
        PREFETCH(&s->w[n->next[0]]);
        PREFETCH(&s->w[n->next[1]]);
        s->stack[sp++] = (Frame){id, b};
        if (a != NODE_NONE && !seen(s, a)) {
            see(s, a);
            id = a;
            continue;
        }
        /* Up the path, finishing the nodes whose second operand is absent
         * or seen, until one has a second operand to visit. */
        for (;;) {
            Frame *f = &s->stack[sp - 1];
            if (f->second != NODE_NONE && !seen(s, f->second)) {
                id = f->second;
                f->second = NODE_NONE;
                see(s, id);
                break;
            }
            order[k++] = f->id;
            if (--sp == 0) {
                *norder = k;
                return;
            }
        }
    }
}

/* Copies the nodes order[0..n) of src to dst, in that order. */
static void copy_order(Sched *s, const NodeId *order, uint32_t n)
{
    const Node *node = s->src->node;
    for (uint32_t j = 0; j < n; j++) {
        /* Random reads: the node (48 bytes, every other one across two
         * cache lines) well ahead, its operands' map entries once it is
         * in. */
        if (j + 2 * AHEAD < n) {
            PREFETCH(&node[order[j + 2 * AHEAD]]);
            PREFETCH((const char *)&node[order[j + 2 * AHEAD] + 1] - 1);
        }
        if (j + AHEAD < n) {
            const Node *m = &node[order[j + AHEAD]];
            PREFETCH(&s->map[m->arg[0]]);
            PREFETCH(&s->map[m->arg[1]]);
        }
        copy_node(s, order[j]);
    }
}

/* Copies the subgraph of src reachable from roots into dst, in an order
 * that keeps few values live; map[] (src->n entries, 0 = not yet copied:
 * the inputs are already) receives the new ids. The value (roots[0]) is
 * scheduled first; each gradient root is then placed right after the last
 * value node it depends on, so a term's backward part follows its forward
 * part and temporaries die early (in a sum every term's adjoint is 1, so a
 * gradient entry needs only its own terms). Only the graph's structure
 * decides the order, so the kernel's numbering stays canonical. */
static void copy_scheduled(const Graph *src, Graph *dst, const NodeId *roots,
                           uint32_t nroots, NodeId *map, int same)
{
    /* The kernel's node array, reserved once for at most every src node,
     * holds the walk's per-node scratch (w[], then the labels, then fwd[]
     * over them, 24 of its 48 bytes per node) until the copy overwrites
     * it: the pages are touched once, not twice (fresh pages cost about
     * 1 ms per MB at 10^6 nodes). */
    ir_reserve(dst, dst->n + src->n);
    char *room = (char *)(dst->node + dst->n);
    Sched s = {src, dst, map, (Walk *)room, xcalloc(src->n / 64 + 1, sizeof *s.seen), same,
               xmalloc(src->n * sizeof *s.stack)};
    Label *labels = (Label *)(s.w + src->n);
    NodeId *fwd = (NodeId *)labels;
    uint32_t *ready = xmalloc(src->n * sizeof *ready);
    walk_init(&s, labels);
    uint32_t nfwd = 0;
    postorder(&s, roots[0], fwd, &nfwd);

    /* ready[i]: 1 + the position in fwd of the last value node i needs. */
    memset(ready, 0, src->n * sizeof *ready);
    for (uint32_t j = 0; j < nfwd; j++)
        ready[fwd[j]] = j + 1;
    for (NodeId i = 0; i < src->n; i++) {
        const Walk *w = &s.w[i];
        int unseen = !seen(&s, i);
        if (i + AHEAD < src->n) {
            PREFETCH(&ready[w[AHEAD].arg[0]]);
            PREFETCH(&ready[w[AHEAD].arg[1]]);
        }
        for (int k = 0; k < walk_arity(w); k++)
            if (ready[w->arg[k]] > ready[i] && unseen)
                ready[i] = ready[w->arg[k]];
    }

    /* Gradient roots bucketed by readiness (a counting sort, stable). */
    uint32_t *start = xmalloc((nfwd + 2) * sizeof *start);
    NodeId *bucket = xmalloc((nroots + 1) * sizeof *bucket);
    memset(start, 0, (nfwd + 2) * sizeof *start);
    for (uint32_t r = 1; r < nroots; r++)
        start[ready[roots[r]] + 1]++;
    for (uint32_t j = 1; j <= nfwd + 1; j++)
        start[j] += start[j - 1];
    for (uint32_t r = 1; r < nroots; r++)
        bucket[start[ready[roots[r]]]++] = roots[r];
    /* start[j] is now the end of bucket j. */

    /* The kernel's order, in ready[] (no longer needed): the walks depend
     * only on seen, so all of them come first, and the copy then reads
     * the nodes in that order, fetching ahead. */
    NodeId *order = ready;
    uint32_t norder = 0, b = 0;
    for (uint32_t j = 0; j <= nfwd; j++) {
        if (j > 0)
            order[norder++] = fwd[j - 1];
        for (; b < start[j]; b++)
            postorder(&s, bucket[b], order, &norder);
    }
    copy_order(&s, order, norder);
    ir_trim(dst);
    free(s.seen);
    free(s.stack);
    free(ready);
    free(start);
    free(bucket);
}

/* Lowering for emission: a product with a transposed matrix operand,
 * C = op(A) B^T, becomes op(A) (B^T) with B^T materialised once (a cheap
 * copy next to the product), because the emitter's fast loop nest streams
 * contiguous rows of its right operand. Rebuilds what the roots reach. */
static void lower_products(Graph *g, NodeId *roots, uint32_t nroots)
{
    NodeId top = 0;
    for (uint32_t r = 0; r < nroots; r++)
        if (roots[r] > top)
            top = roots[r];
    /* Without such a product nothing changes: skip the sweeps (a big
     * scalar graph would be read whole only to find none). */
    if (g->nmatmul_bt == 0)
        return;
    NodeId first = 1;
    while (first <= top && !(g->node[first].op == OP_MATMUL && (g->node[first].aux & 2)))
        first++;
    if (first > top)
        return;
    uint8_t *mark = xmalloc(g->n);
    ir_mark_reachable(g, roots, nroots, mark);
    NodeId *map = xmalloc(((size_t)top + 1) * sizeof *map);
    for (NodeId i = 0; i <= top; i++) {
        map[i] = i;
        if (!mark[i] || op_info[g->node[i].op].arity == 0)
            continue;
        Node n = g->node[i];
        NodeId a = map[n.arg[0]], b = op_info[n.op].arity > 1 ? map[n.arg[1]] : 0;
        if (n.op == OP_MATMUL && (n.aux & 2) && g->node[b].shape.rank == 2)
            map[i] = ir_matmul(g, a, ir_transpose(g, b), n.aux & 1);
        else if (a != n.arg[0] || b != n.arg[1])
            map[i] = ir_node(g, (Op)n.op, a, b, n.aux, n.num, n.shape);
    }
    for (uint32_t r = 0; r < nroots; r++)
        roots[r] = map[roots[r]];
    free(map);
    free(mark);
}

/* The inputs (of the first ninputs) to differentiate by: those wrt[]
 * marks, or all. Returns their indices; *njac counts those that are not
 * network parameters (which come last). */
static uint32_t *wrt_inputs(uint32_t ninputs, uint32_t nparams, const uint8_t *wrt,
                            uint32_t *n, uint32_t *njac)
{
    uint32_t *idx = xmalloc((ninputs + 1) * sizeof *idx);
    *n = *njac = 0;
    for (uint32_t i = 0; i < ninputs; i++)
        if (!wrt || wrt[i]) {
            idx[(*n)++] = i;
            *njac += i < ninputs - nparams;
        }
    return idx;
}

/* The forward-mode and second-order roots, after the gradient's: J v,
 * H v by blocks, the Hessian's entries, appended to *rootsp after its
 * first nfirst (the value, then the gradient: (*rootsp)[1 + j] is the
 * gradient of variable dx[j]); tan receives the variables' directions. */
static uint32_t second_order(Graph *g, Kernel *k, NodeId value, const NodeId *dx,
                             uint32_t nvar, NodeId *tan, NodeId **rootsp, uint32_t nfirst)
{
    uint32_t n = 0, nnz = 0;
    if (k->entries & ENTRY_HESS) {
        hess_pattern(g, value, dx, nvar, &k->hess);
        nnz = k->hess.nnz;
    }
    *rootsp = xrealloc(*rootsp, ((size_t)nfirst + 1 + nvar + nnz) * sizeof **rootsp);
    NodeId *grad = *rootsp + 1, *roots = *rootsp + nfirst;
    for (uint32_t j = 0; j < nvar; j++)
        tan[j] = k->entries & (ENTRY_JVP | ENTRY_HVP) ? ir_input(g, g->node[dx[j]].shape) : 0;
    if (k->entries & ENTRY_JVP)
        diff_forward(g, &value, 1, dx, tan, nvar, roots + n++);
    if (k->entries & ENTRY_HVP) {
        diff_forward(g, grad, nvar, dx, tan, nvar, roots + n);
        n += nvar;
    }
    if (k->entries & ENTRY_HESS) {
        if (!hess_entries_by_slices(g, value, &k->hess, dx, nvar, roots + n))
            hess_entries(g, &k->hess, dx, grad, nvar, roots + n);
        n += k->hess.nnz;
        if (k->entries & ENTRY_HESS_DENSE)
            k->hess.nband = 0;  /* written entry by entry, twice */
        /* The bands' pieces are roots too (then mapped in place). */
        *rootsp = xrealloc(*rootsp, ((size_t)nfirst + n + k->hess.nband * HESS_BAND_PIECES + 1) *
                                        sizeof **rootsp);
        roots = *rootsp + nfirst;
        for (uint32_t b = 0; b < k->hess.nband; b++)
            for (uint32_t pc = 0; pc < k->hess.band[b].npiece; pc++)
                roots[n++] = k->hess.band[b].v[pc];
    }
    return n;
}

/* Entries of the kernel's second part, per the layout of second_order. */
static void second_order_roots(Kernel *k, const NodeId *map, const NodeId *roots, uint32_t nvar)
{
    uint32_t n = 0;
    if (k->entries & ENTRY_JVP)
        k->jvp = map[roots[n++]];
    if (k->entries & ENTRY_HVP) {
        k->hvp = xcalloc(k->ninputs + 1, sizeof *k->hvp);
        for (uint32_t j = 0; j < nvar; j++)
            k->hvp[k->wrt[j]] = map[roots[n++]];
    }
    if (k->entries & ENTRY_HESS) {
        k->hval = xmalloc(((size_t)k->hess.nnz + 1) * sizeof *k->hval);
        for (uint32_t q = 0; q < k->hess.nnz; q++)
            k->hval[q] = map[roots[n++]];
        for (uint32_t b = 0; b < k->hess.nband; b++)
            for (uint32_t pc = 0; pc < k->hess.band[b].npiece; pc++)
                k->hess.band[b].v[pc] = map[roots[n++]];
    }
}

/* The kernel of f: its value and the entry points asked for, the
 * derivatives with respect to the inputs wrt[] marks (NULL: all). */
static Kernel *build(Program *p, const Func *f, const uint8_t *wrt, unsigned entries)
{
    Graph *g = p->g;
    Kernel *k = xmalloc(sizeof *k);
    memset(k, 0, sizeof *k);
    k->name = f->name;
    k->ninputs = f->ninputs;
    k->input_name = f->input_name;
    k->nparams = f->nparams;
    k->entries = entries;
    int want_grad = (entries & (ENTRY_GRAD | ENTRY_HVP | ENTRY_HESS)) != 0;
    int second = (entries & (ENTRY_JVP | ENTRY_HVP | ENTRY_HESS)) != 0;
    NodeId result = f->result;
    uint32_t ninputs = f->ninputs;
    if (p->freeze && f->net) {
        /* --freeze: the parameters become constants, so folding and the
         * emitter's zero-skipping see them. */
        double *v = xmalloc(f->net->nparams * sizeof *v);
        net_init_params(f->net, 0, v);
        NodeId init = ir_tconst(g, shape_vec(f->net->nparams), v);
        free(v);
        result = ir_substitute(g, result, f->first, &f->input[ninputs - 1], &init, 1);
        ninputs--;
        k->nparams = 0;
        k->ninputs = ninputs;
    }
    /* Only the listed inputs are differentiation roots: diff.c then builds
     * no adjoints for the rest, and extraction drops what they alone need
     * (for a loss by the weights, the adjoint of the data). */
    uint32_t nd = 0, njac = 0;
    if (want_grad || second) {
        k->wrt = wrt_inputs(ninputs, k->nparams, wrt, &nd, &njac);
        k->nwrt = nd;
        k->wrt_all = !wrt;
    }
    NodeId *dx = xmalloc((nd + 1) * sizeof *dx);
    for (uint32_t j = 0; j < nd; j++)
        dx[j] = f->input[k->wrt[j]];
    NodeId value = p->no_rewrite ? result : rewrite_stable(g, result);
    Shape vshape = g->node[value].shape;
    uint32_t m = shape_size(vshape);
    int jac = (entries & ENTRY_GRAD) && vshape.rank > 0 && m <= KERNEL_JAC_MAX;
    uint32_t ngrad = want_grad ? nd : 0, nsecond = 0;
    NodeId *roots = xmalloc((1 + ngrad + (jac ? m * njac : 0)) * sizeof *roots);
    roots[0] = value;
    NodeId seed = NODE_NONE;
    if (want_grad && vshape.rank > 0)
        seed = ir_input(g, vshape);
    if (want_grad)
        diff_reverse(g, roots[0], seed, dx, nd, roots + 1);
    for (uint32_t i = 0; jac && i < m; i++) {
        double e[KERNEL_JAC_MAX] = {0};
        e[i] = 1.0;
        NodeId unit = ir_tconst(g, vshape, e);
        diff_reverse(g, value, unit, dx, njac, roots + 1 + nd + i * njac);
    }
    uint32_t nfirst = 1 + ngrad + (jac ? m * njac : 0);
    NodeId *tan = xcalloc(njac + 1, sizeof *tan);
    if (second)     /* the variables: the first njac of wrt (parameters come last) */
        nsecond = second_order(g, k, value, dx, njac, tan, &roots, nfirst);
    free(dx);
    uint32_t nroots = nfirst + nsecond;
    if (!p->blas)
        lower_products(g, roots, nroots);

    k->g = ir_new();
    NodeId *map = xmalloc(g->n * sizeof *map);
    memset(map, 0, g->n * sizeof *map);
    k->input = xmalloc((ninputs + 1) * sizeof *k->input);
    /* Where every input keeps its slot (a bare formula, a file's first
     * function), every structural hash stays as it is. */
    int same = 1;
    for (uint32_t i = 0; i < ninputs; i++) {
        map[f->input[i]] = k->input[i] = ir_input(k->g, g->node[f->input[i]].shape);
        same &= g->node[f->input[i]].aux == k->g->node[k->input[i]].aux;
    }
    if (seed != NODE_NONE) {
        map[seed] = k->seed = ir_input(k->g, g->node[seed].shape);
        same &= g->node[seed].aux == k->g->node[k->seed].aux;
    }
    if (entries & (ENTRY_JVP | ENTRY_HVP)) {
        k->tangent = xcalloc(ninputs + 1, sizeof *k->tangent);
        for (uint32_t j = 0; j < njac; j++) {
            map[tan[j]] = k->tangent[k->wrt[j]] = ir_input(k->g, g->node[tan[j]].shape);
            same &= g->node[tan[j]].aux == k->g->node[k->tangent[k->wrt[j]]].aux;
        }
    }
    free(tan);
    copy_scheduled(g, k->g, roots, nroots, map, same);
    k->value = map[roots[0]];
    if (want_grad) {
        k->grad = xmalloc((ninputs + 1) * sizeof *k->grad);
        memset(k->grad, 0, (ninputs + 1) * sizeof *k->grad);
        for (uint32_t j = 0; j < nd; j++)
            k->grad[k->wrt[j]] = map[roots[1 + j]];
    }
    if (jac) {
        k->njac = njac;
        k->jac = xmalloc((m * njac + 1) * sizeof *k->jac);
        for (uint32_t i = 0; i < m * njac; i++)
            k->jac[i] = map[roots[1 + nd + i]];
    }
    second_order_roots(k, map, roots + nfirst, njac);
    free(map);
    free(roots);
    return k;
}

Kernel *opt_kernel(Program *p, const Func *f, int want_grad)
{
    return build(p, f, NULL, ENTRY_VALUE | (want_grad ? ENTRY_GRAD : 0));
}

Kernel *opt_kernel_wrt(Program *p, const Func *f, const uint8_t *wrt)
{
    return build(p, f, wrt, ENTRY_VALUE | ENTRY_GRAD);
}

Kernel *opt_kernel_entries(Program *p, const Func *f, const uint8_t *wrt, unsigned entries)
{
    assert(opt_entries_error(p, f, wrt, entries) == NULL);
    return build(p, f, wrt, entries);
}

const char *opt_entries_error(const Program *p, const Func *f, const uint8_t *wrt,
                              unsigned entries)
{
    const Graph *g = p->g;
    if (!(entries & (ENTRY_JVP | ENTRY_HVP | ENTRY_HESS)))
        return NULL;
    if ((entries & (ENTRY_HVP | ENTRY_HESS)) && g->node[f->result].shape.rank > 0)
        return "Hessians and Hessian-vector products need a scalar value";
    uint64_t nvar = 0;
    uint32_t nin = f->ninputs - f->nparams;
    for (uint32_t i = 0; i < nin; i++)
        if (!wrt || wrt[i])
            nvar += shape_size(g->node[f->input[i]].shape);
    if (nvar == 0)
        return "forward-mode and second-order derivatives are taken by inputs that are not "
               "network parameters; list one with --wrt";
    if ((entries & ENTRY_HESS) && nvar > GRADC_MAX_HESS)
        return "the Hessian would have more than 8192 variables (use the Hessian-vector product)";
    return NULL;
}

int kernel_parse_entries(const char *list, unsigned *entries, const char **bad, size_t *badlen)
{
    static const char *const names[] = {"value", "grad", "jvp", "hvp", "hess", NULL};
    *entries = 0;
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ",");
        int i = 0;
        while (names[i] && !(strlen(names[i]) == n && !strncmp(names[i], s, n)))
            i++;
        if (!names[i] || n == 0) {
            *bad = s;
            *badlen = n;
            return -1;
        }
        *entries |= 1u << i;
        s += n + (s[n] == ',');
    }
    return *entries ? 0 : -1;
}

void kernel_free(Kernel *k)
{
    if (!k)
        return;
    ir_free(k->g);
    free(k->input);
    free(k->grad);
    free(k->wrt);
    free(k->jac);
    free(k->tangent);
    free(k->hvp);
    free(k->hval);
    hess_pattern_free(&k->hess);
    free(k);
}

void kernel_dump(const Kernel *k, Buf *out)
{
    char sh[48];
    buf_printf(out, "function %s(", k->name);
    for (uint32_t i = 0; i < k->ninputs; i++) {
        Shape s = k->g->node[k->input[i]].shape;
        buf_printf(out, "%s%s%s", i ? ", " : "", k->input_name[i],
                   s.rank ? shape_str(s, sh) : "");
    }
    buf_printf(out, ")%s\n", k->nparams ? " params" : "");
    for (NodeId i = 1; i < k->g->n; i++) {
        buf_printf(out, "  %%%u = ", i);
        ir_print_node(k->g, i, out);
        buf_puts(out, "\n");
    }
    buf_printf(out, "  value %%%u\n", k->value);
    /* Only the inputs with a gradient entry are listed, so kernels with
     * different --wrt sets have different text (and cache keys). */
    for (uint32_t j = 0; k->grad && j < k->nwrt; j++)
        buf_printf(out, "  %s %s %%%u\n", k->seed ? "vjp" : "grad",
                   k->input_name[k->wrt[j]], k->grad[k->wrt[j]]);
    uint32_t nj = k->njac;
    for (uint32_t i = 0; k->jac && i < shape_size(k->g->node[k->value].shape) * nj; i++)
        buf_printf(out, "  jacobian %u %s %%%u\n", i / nj, k->input_name[k->wrt[i % nj]], k->jac[i]);
    /* The entry points change the emitted code: they are part of the text
     * (and so of the cache key) whenever they differ from the default. */
    if (k->entries != (ENTRY_VALUE | (k->grad ? ENTRY_GRAD : 0)))
        buf_printf(out, "  entries %#x\n", k->entries);
    for (uint32_t i = 0; k->tangent && i < k->ninputs; i++)
        if (k->tangent[i])
            buf_printf(out, "  tangent %s %%%u\n", k->input_name[i], k->tangent[i]);
    if (k->entries & ENTRY_JVP)
        buf_printf(out, "  jvp %%%u\n", k->jvp);
    for (uint32_t i = 0; k->hvp && i < k->ninputs; i++)
        if (k->hvp[i])
            buf_printf(out, "  hvp %s %%%u\n", k->input_name[i], k->hvp[i]);
    for (uint32_t j = 0; k->hval && j < k->hess.n; j++)
        for (uint32_t q = k->hess.colptr[j]; q < k->hess.colptr[j + 1]; q++)
            buf_printf(out, "  hessian %u %u %%%u\n", k->hess.rowind[q], j, k->hval[q]);
    for (uint32_t b = 0; b < k->hess.nband; b++) {
        const HessBand *hb = &k->hess.band[b];
        buf_printf(out, "  band diag=%u col=%u len=%u loop=%u q=%u+%ut", hb->diag, hb->col0,
                   hb->len, hb->loop, hb->q0, hb->qstride);
        for (uint32_t pc = 0; pc < hb->npiece; pc++)
            buf_printf(out, " %%%u@%u", hb->v[pc], hb->at[pc]);
        buf_puts(out, "\n");
    }
}

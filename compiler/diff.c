/* diff.c — reverse-mode differentiation as an IR -> IR transform.
 * One backward sweep over the node array (operands precede users, so the
 * reverse index order is a reverse topological order) accumulates
 *     adj[a] = adj[a] + vjp contribution
 * where each contribution is built as IR by the op's rule in ops.c. The
 * gradient is therefore ordinary IR: it shares forward values through
 * hash-consing, folds, and can be differentiated again. An adjoint that was
 * never contributed to is absent, never a materialised zero. Adjoints flow
 * only into nodes that depend on one of the inputs asked for (activity
 * analysis), so a gradient with respect to some inputs (--wrt) builds no
 * adjoint work for the others. */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

/* What the sweep keeps per node: the adjoint so far (NODE_NONE: none
 * yet) and, in one byte, what else it reads of an operand, so that an
 * operand costs two random reads, not four (its node's shape included). */
enum {
    /* The adjoint is -id (a negated first contribution, see Vjp: its
     * negation is made only if nothing is added to it, since a sum with
     * it simplifies to a subtraction). */
    ADJ_NEG = 1,
    ADJ_ACTIVE = 2,             /* the node depends on an input asked for */
    ADJ_SCALAR = 4,             /* the node is a scalar: no shape to read */
};
typedef struct Adjoints {
    NodeId *id;
    uint8_t *flag;
} Adjoints;

/* Whether contribution c has operand a's shape; for scalars, nearly all,
 * without reading a's node. */
static inline int same_shape(const Graph *g, NodeId c, const Adjoints *A, NodeId a)
{
    const Shape *s = &g->node[c].shape;
    return (s->rank == 0 && (A->flag[a] & ADJ_SCALAR)) || shape_eq(*s, g->node[a].shape);
}

/* A contribution computed at the user's shape, reduced to the operand's:
 * a scalar that was broadcast receives the sum. */
static NodeId unbroadcast(Graph *g, NodeId contrib, NodeId operand)
{
    Shape want = g->node[operand].shape;
    if (want.rank == 0)
        return ir_sum(g, contrib);
    return ir_bcast(g, contrib, want);
}

/* Node i's adjoint, made. */
static NodeId adjoint(Graph *g, const Adjoints *A, NodeId i)
{
    return A->flag[i] & ADJ_NEG ? ir_neg(g, A->id[i]) : A->id[i];
}

/* adj[a] += c, or -= c when cneg: the node that adding the made values
 * would give (ir_add_negated), without making negations. */
static void accumulate(Graph *g, Adjoints *A, NodeId a, NodeId c, int cneg)
{
    NodeId *adj = A->id;
    int neg = A->flag[a] & ADJ_NEG;
    if (adj[a] == NODE_NONE) {
        adj[a] = c;
        A->flag[a] |= cneg ? ADJ_NEG : 0;
        return;
    }
    if (neg && cneg)
        adj[a] = ir_add_negated(g, ir_neg(g, adj[a]), c, 0);
    else if (neg)
        adj[a] = ir_add_negated(g, c, adj[a], 1);
    else if (cneg)
        adj[a] = ir_add_negated(g, adj[a], c, 0);
    else
        adj[a] = ir_add(g, adj[a], c);
    A->flag[a] &= (uint8_t)~ADJ_NEG;
}

/* *c (negated when *neg) negated: -x is x, unmade, and -(-x) is x when
 * -x is the node neg x (ir_neg_stays); otherwise -x is made. */
static void negate(Graph *g, NodeId *c, int *neg)
{
    if (!*neg)
        *neg = 1;
    else if (ir_neg_stays(g, *c))
        *neg = 0;
    else
        *c = ir_neg(g, *c);
}

/* Calls node i's rule for the operands in want (bit k: operand k) with
 * adjoint adj, and stores their contributions in c[] and neg[]; negated
 * when flip: the rule was given x for an adjoint -x. */
static void rule(Graph *g, NodeId i, NodeId adj, unsigned want, int flip, NodeId c[2], int neg[2])
{
    Vjp v = {.want = {want & 1, want >> 1 & 1}};
    op_info[g->node[i].op].vjp(g, i, adj, &v);
    for (int k = 0; k < 2; k++) {
        if (!(want >> k & 1))
            continue;
        c[k] = v.c[k];
        neg[k] = v.neg[k];
        if (flip && c[k] != NODE_NONE)
            negate(g, &c[k], &neg[k]);
    }
}

/* Adds node i's contributions to its active operands' adjoints. An
 * adjoint -x (the node neg x, unmade) goes to an odd rule (OPF_ODD0,
 * OPF_ODD1) as x, and the sign onto what it gives: given -x the rule
 * would have made the negations, node for node. */
static void backprop(Graph *g, Adjoints *A, NodeId i)
{
    Node nd = g->node[i];       /* a copy: the rules append to g->node */
    int arity = op_info[nd.op].arity;
    unsigned want = 0, odd = 0;
    for (int k = 0; k < arity; k++)
        want |= (unsigned)(A->flag[nd.arg[k]] / ADJ_ACTIVE & 1) << k;
    if ((A->flag[i] & ADJ_NEG) && ir_neg_stays(g, A->id[i]))
        odd = want & (unsigned)(op_info[nd.op].flags / OPF_ODD0) & 3;
    NodeId c[2] = {NODE_NONE, NODE_NONE};
    int neg[2] = {0, 0};
    if (want & ~odd)
        rule(g, i, adjoint(g, A, i), want & ~odd, 0, c, neg);
    if (odd)
        rule(g, i, A->id[i], odd, 1, c, neg);
    for (int k = 0; k < arity; k++) {
        NodeId a = nd.arg[k];
        if (c[k] == NODE_NONE || !(want >> k & 1))
            continue;
        if (!same_shape(g, c[k], A, a)) {
            if (neg[k])                                 /* summed or broadcast */
                c[k] = ir_neg(g, c[k]), neg[k] = 0;
            c[k] = unbroadcast(g, c[k], a);
        }
        accumulate(g, A, a, c[k], neg[k]);
    }
}

/* The flags of nodes 0..root: active when the node depends on one of
 * inputs[], the only nodes whose adjoints can reach a requested
 * derivative. Operands precede their users, so one forward loop decides
 * it. */
static uint8_t *activity(const Graph *g, NodeId root, const NodeId *inputs, uint32_t n)
{
    uint8_t *flag = xmalloc((size_t)root + 1);
    memset(flag, 0, (size_t)root + 1);
    for (uint32_t k = 0; k < n; k++)
        if (inputs[k] <= root)
            flag[inputs[k]] = ADJ_ACTIVE;
    flag[0] |= g->node[0].shape.rank == 0 ? ADJ_SCALAR : 0;
    for (NodeId i = 1; i <= root; i++) {
        const Node *nd = &g->node[i];
        int arity = op_info[nd->op].arity;
        uint8_t act = (arity > 0 ? flag[nd->arg[0]] : 0) | (arity > 1 ? flag[nd->arg[1]] : 0);
        flag[i] |= (act & ADJ_ACTIVE) | (nd->shape.rank == 0 ? ADJ_SCALAR : 0);
    }
    return flag;
}

void diff_reverse(Graph *g, NodeId root, NodeId seed, const NodeId *inputs,
                  uint32_t n, NodeId *grad)
{
    Adjoints A = {xmalloc(((size_t)root + 1) * sizeof *A.id), activity(g, root, inputs, n)};
    NodeId *adj = A.id;
    memset(adj, 0, ((size_t)root + 1) * sizeof *adj);
    if (root != NODE_NONE)
        adj[root] = seed != NODE_NONE ? seed : ir_const(g, 1.0);
    enum { AHEAD = 16 };
    for (NodeId i = root; i > 0; i--) {
        /* The operands of a node a few steps on: their nodes (read by the
         * rule) and adjoints are far away in a big graph, each a cache
         * miss; the sweep itself reads in order. */
        if (i > AHEAD && adj[i - AHEAD] != NODE_NONE) {
            const Node *m = &g->node[i - AHEAD];
            __builtin_prefetch(&g->node[m->arg[0]]);
            __builtin_prefetch(&g->node[m->arg[1]]);
            __builtin_prefetch(&adj[m->arg[0]], 1);
            __builtin_prefetch(&adj[m->arg[1]], 1);
            __builtin_prefetch(&A.flag[m->arg[0]], 1);
            __builtin_prefetch(&A.flag[m->arg[1]], 1);
        }
        if (adj[i] == NODE_NONE || !(A.flag[i] & ADJ_ACTIVE))
            continue;
        backprop(g, &A, i);
    }
    for (uint32_t k = 0; k < n; k++) {
        NodeId a = inputs[k] <= root ? adjoint(g, &A, inputs[k]) : NODE_NONE;
        grad[k] = a != NODE_NONE ? a : ir_bcast(g, ir_const(g, 0.0), g->node[inputs[k]].shape);
    }
    free(adj);
    free(A.flag);
}

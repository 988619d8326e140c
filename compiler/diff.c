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

/* Whether nodes x and y have one shape; scalars, nearly all, at once. */
static inline int same_shape(const Graph *g, NodeId x, NodeId y)
{
    const Shape *a = &g->node[x].shape, *b = &g->node[y].shape;
    return (a->rank | b->rank) == 0 || shape_eq(*a, *b);
}

/* A contribution computed at the user's shape, reduced to the operand's:
 * a scalar that was broadcast receives the sum. */
static NodeId unbroadcast(Graph *g, NodeId contrib, NodeId operand)
{
    Shape want = g->node[operand].shape;
    if (same_shape(g, contrib, operand))
        return contrib;
    if (want.rank == 0)
        return ir_sum(g, contrib);
    return ir_bcast(g, contrib, want);
}

/* The adjoints while the sweep builds them: adj[i], or -adj[i] when
 * neg[i] is set (a negated first contribution, see Vjp: its negation is
 * made only if nothing is added to it, since a sum with it simplifies
 * to a subtraction). */
typedef struct Adjoints {
    NodeId *adj;
    uint8_t *neg;
} Adjoints;

/* Node i's adjoint, made. */
static NodeId adjoint(Graph *g, const Adjoints *A, NodeId i)
{
    return A->neg[i] ? ir_neg(g, A->adj[i]) : A->adj[i];
}

/* adj[a] += c, or -= c when cneg: the node that adding the made values
 * would give (ir_add_negated), without making negations. */
static void accumulate(Graph *g, Adjoints *A, NodeId a, NodeId c, int cneg)
{
    NodeId *adj = A->adj;
    if (adj[a] == NODE_NONE) {
        adj[a] = c;
        A->neg[a] = (uint8_t)cneg;
        return;
    }
    if (A->neg[a] && cneg)
        adj[a] = ir_add_negated(g, ir_neg(g, adj[a]), c, 0);
    else if (A->neg[a])
        adj[a] = ir_add_negated(g, c, adj[a], 1);
    else if (cneg)
        adj[a] = ir_add_negated(g, adj[a], c, 0);
    else
        adj[a] = ir_add(g, adj[a], c);
    A->neg[a] = 0;
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
static void backprop(Graph *g, Adjoints *A, const uint8_t *active, NodeId i)
{
    Node nd = g->node[i];       /* a copy: the rules append to g->node */
    int arity = op_info[nd.op].arity;
    unsigned want = 0, odd = 0;
    for (int k = 0; k < arity; k++)
        want |= (unsigned)active[nd.arg[k]] << k;
    if (A->neg[i] && ir_neg_stays(g, A->adj[i]))
        odd = want & (unsigned)(op_info[nd.op].flags / OPF_ODD0) & 3;
    NodeId c[2] = {NODE_NONE, NODE_NONE};
    int neg[2] = {0, 0};
    if (want & ~odd)
        rule(g, i, adjoint(g, A, i), want & ~odd, 0, c, neg);
    if (odd)
        rule(g, i, A->adj[i], odd, 1, c, neg);
    for (int k = 0; k < arity; k++) {
        NodeId a = nd.arg[k];
        if (c[k] == NODE_NONE || !active[a])
            continue;
        if (neg[k] && !same_shape(g, c[k], a))
            c[k] = ir_neg(g, c[k]), neg[k] = 0;      /* summed or broadcast */
        accumulate(g, A, a, unbroadcast(g, c[k], a), neg[k]);
    }
}

/* active[i] = 1 when node i (i <= root) depends on one of inputs[]: the
 * only nodes whose adjoints can reach a requested derivative. Operands
 * precede their users, so one forward loop decides it. */
static uint8_t *activity(const Graph *g, NodeId root, const NodeId *inputs, uint32_t n)
{
    uint8_t *active = xmalloc((size_t)root + 1);
    memset(active, 0, (size_t)root + 1);
    for (uint32_t k = 0; k < n; k++)
        if (inputs[k] <= root)
            active[inputs[k]] = 1;
    for (NodeId i = 1; i <= root; i++) {
        const Node *nd = &g->node[i];
        int arity = op_info[nd->op].arity;
        active[i] |= (arity > 0 && active[nd->arg[0]]) | (arity > 1 && active[nd->arg[1]]);
    }
    return active;
}

void diff_reverse(Graph *g, NodeId root, NodeId seed, const NodeId *inputs,
                  uint32_t n, NodeId *grad)
{
    NodeId *adj = xmalloc(((size_t)root + 1) * sizeof *adj);
    memset(adj, 0, ((size_t)root + 1) * sizeof *adj);
    Adjoints A = {adj, xmalloc((size_t)root + 1)};
    memset(A.neg, 0, (size_t)root + 1);
    uint8_t *active = activity(g, root, inputs, n);
    if (root != NODE_NONE)
        adj[root] = seed != NODE_NONE ? seed : ir_const(g, 1.0);
    enum { AHEAD = 16 };
    for (NodeId i = root; i > 0; i--) {
        /* The operands of a node a few steps on: their nodes (read by the
         * rule and unbroadcast) and adjoints are far away in a big graph,
         * each a cache miss; the sweep itself reads in order. */
        if (i > AHEAD && adj[i - AHEAD] != NODE_NONE) {
            const Node *m = &g->node[i - AHEAD];
            __builtin_prefetch(&g->node[m->arg[0]]);
            __builtin_prefetch(&g->node[m->arg[1]]);
            __builtin_prefetch(&adj[m->arg[0]], 1);
            __builtin_prefetch(&adj[m->arg[1]], 1);
        }
        if (adj[i] == NODE_NONE || !active[i])
            continue;
        backprop(g, &A, active, i);
    }
    for (uint32_t k = 0; k < n; k++) {
        NodeId a = inputs[k] <= root ? adjoint(g, &A, inputs[k]) : NODE_NONE;
        grad[k] = a != NODE_NONE ? a : ir_bcast(g, ir_const(g, 0.0), g->node[inputs[k]].shape);
    }
    free(adj);
    free(A.neg);
    free(active);
}

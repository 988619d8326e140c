/* diff.c — reverse-mode differentiation as an IR -> IR transform.
 * One backward sweep over the node array (operands precede users, so the
 * reverse index order is a reverse topological order) accumulates
 *     adj[a] = adj[a] + vjp contribution
 * where each contribution is built as IR by the op's rule in ops.c. The
 * gradient is therefore ordinary IR: it shares forward values through
 * hash-consing, folds, and can be differentiated again. An adjoint that was
 * never contributed to is absent, never a materialised zero. */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

/* A contribution computed at the user's shape, reduced to the operand's:
 * a scalar that was broadcast receives the sum. */
static NodeId unbroadcast(Graph *g, NodeId contrib, NodeId operand)
{
    Shape want = g->node[operand].shape;
    if (shape_eq(g->node[contrib].shape, want))
        return contrib;
    if (want.rank == 0)
        return ir_sum(g, contrib);
    return ir_bcast(g, contrib, want);
}

void diff_reverse(Graph *g, NodeId root, NodeId seed, const NodeId *inputs,
                  uint32_t n, NodeId *grad)
{
    NodeId *adj = xmalloc(((size_t)root + 1) * sizeof *adj);
    memset(adj, 0, ((size_t)root + 1) * sizeof *adj);
    if (root != NODE_NONE)
        adj[root] = seed != NODE_NONE ? seed : ir_const(g, 1.0);
    for (NodeId i = root; i > 0; i--) {
        if (adj[i] == NODE_NONE)
            continue;
        Node nd = g->node[i];   /* a copy: the rules append to g->node */
        int arity = op_info[nd.op].arity;
        if (arity == 0)
            continue;
        NodeId out[3] = {NODE_NONE, NODE_NONE, NODE_NONE};
        op_info[nd.op].vjp(g, i, adj[i], out);
        for (int k = 0; k < arity; k++) {
            NodeId a = nd.arg[k];
            if (out[k] == NODE_NONE || ir_is_constant(g, a))
                continue;
            NodeId c = unbroadcast(g, out[k], a);
            adj[a] = adj[a] == NODE_NONE ? c : ir_add(g, adj[a], c);
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        NodeId a = inputs[k] <= root ? adj[inputs[k]] : NODE_NONE;
        grad[k] = a != NODE_NONE ? a : ir_bcast(g, ir_const(g, 0.0), g->node[inputs[k]].shape);
    }
    free(adj);
}

/* rewrite.c — stability rewrites: the unstable forms people write by hand
 * become the fused, stable operations, which have their own derivative
 * rules. This is the one deliberate exception to "only IEEE-exact
 * simplifications" (the results differ in the last bits, and are finite
 * where the written form overflows); `--no-rewrite` turns it off.
 *
 *   1 / (1 + exp(-z))        -> sigmoid(z)
 *   log(1 + exp(z))          -> softplus(z)
 *   log(sum(exp(x)))         -> logsumexp(x)
 *   exp(x) / sum(exp(x))     -> softmax(x)
 *   log(softmax(x))          -> x - logsumexp(x)         (log_softmax)
 *   log(softmax(x)[k])       -> (x - logsumexp(x))[k]
 *
 * One pass in index order rebuilds each node from its rewritten operands,
 * then tries the patterns on it, so rewrites compose and the pass is
 * linear. */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

static const Node *nd(const Graph *g, NodeId id)
{
    return &g->node[id];
}

static int is_op(const Graph *g, NodeId id, Op op)
{
    return id != NODE_NONE && g->node[id].op == op;
}

/* 1 + e, in either operand order: returns e or NODE_NONE. */
static NodeId one_plus(const Graph *g, NodeId id)
{
    if (!is_op(g, id, OP_ADD))
        return NODE_NONE;
    const Node *n = nd(g, id);
    if (ir_is_const(g, n->arg[0], 1.0))
        return n->arg[1];
    if (ir_is_const(g, n->arg[1], 1.0))
        return n->arg[0];
    return NODE_NONE;
}

static NodeId log_softmax(Graph *g, NodeId x)
{
    return ir_log_softmax(g, x);
}

/* The stable replacement for node id, or id itself. */
static NodeId rewrite(Graph *g, NodeId id)
{
    Node n = *nd(g, id);
    NodeId a = n.arg[0], b = n.arg[1];
    if (n.op == OP_DIV && ir_is_const(g, a, 1.0) && n.shape.rank == 0) {
        NodeId e = one_plus(g, b);
        if (is_op(g, e, OP_EXP) && is_op(g, nd(g, e)->arg[0], OP_NEG))
            return ir_op(g, OP_SIGMOID, nd(g, nd(g, e)->arg[0])->arg[0], NODE_NONE);
    }
    if (n.op == OP_DIV && is_op(g, a, OP_EXP) && is_op(g, b, OP_SUM) &&
        nd(g, b)->arg[0] == a && nd(g, a)->shape.rank == 1)
        return ir_softmax(g, nd(g, a)->arg[0]);
    if (n.op != OP_LOG)
        return id;
    NodeId e = one_plus(g, a);
    if (is_op(g, e, OP_EXP))
        return ir_op(g, OP_SOFTPLUS, nd(g, e)->arg[0], NODE_NONE);
    if (is_op(g, a, OP_SUM) && is_op(g, nd(g, a)->arg[0], OP_EXP) &&
        nd(g, nd(g, a)->arg[0])->shape.rank == 1)
        return ir_logsumexp(g, nd(g, nd(g, a)->arg[0])->arg[0]);
    if (is_op(g, a, OP_SOFTMAX))
        return log_softmax(g, nd(g, a)->arg[0]);
    if (is_op(g, a, OP_INDEX) && is_op(g, nd(g, a)->arg[0], OP_SOFTMAX)) {
        NodeId x = nd(g, nd(g, a)->arg[0])->arg[0];
        return ir_index(g, log_softmax(g, x), (uint32_t)nd(g, a)->aux);
    }
    return id;
}

NodeId rewrite_stable(Graph *g, NodeId root)
{
    if (root == NODE_NONE)
        return root;
    uint8_t *mark = xmalloc(g->n);
    ir_mark_reachable(g, &root, 1, mark);
    NodeId top = root;
    NodeId *map = xmalloc(((size_t)top + 1) * sizeof *map);
    for (NodeId i = 0; i <= top; i++)
        map[i] = i;
    for (NodeId i = 1; i <= top; i++) {
        if (!mark[i])
            continue;
        Node n = g->node[i];
        int arity = op_info[n.op].arity;
        NodeId id = i;
        if (arity > 0) {
            NodeId a = map[n.arg[0]], b = arity > 1 ? map[n.arg[1]] : NODE_NONE;
            if (a != n.arg[0] || b != n.arg[1])
                id = ir_node(g, (Op)n.op, a, b, n.aux, n.num, n.shape);
        }
        map[i] = rewrite(g, id);
    }
    NodeId r = map[root];
    free(map);
    free(mark);
    return r;
}

/* fwd.c — forward-mode differentiation as an IR -> IR transform.
 * One sweep in index order (operands precede users) builds, for every
 * node that depends on a direction, its tangent: the directional
 * derivative along the given input tangents, as new IR. Applied to the
 * value it gives J·v; applied to gradient nodes (diff.c's output) it
 * gives Hessian-vector products (forward over reverse). A zero tangent
 * is absent (NODE_NONE), never built, so constant unit directions fold
 * away everything they do not touch.
 *
 * Elementwise ops reuse their reverse-mode rules: an elementwise op's
 * Jacobian is diagonal, so vjp(adj = tangent of operand k) gives exactly
 * operand k's contribution to the tangent. Tensor ops that are linear
 * (sums, broadcasts, slices, views) apply themselves to the tangent. */
#include "gradc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* t, brought to shape s (a scalar contribution to a tensor node). */
static NodeId fit(Graph *g, NodeId t, Shape s)
{
    if (t == NODE_NONE || shape_eq(g->node[t].shape, s))
        return t;
    return ir_bcast(g, t, s);
}

static NodeId plus(Graph *g, NodeId a, NodeId b)
{
    if (a == NODE_NONE)
        return b;
    if (b == NODE_NONE)
        return a;
    return ir_add(g, a, b);
}

/* The tangent of an elementwise node from its operands' tangents ta, tb. */
static NodeId elementwise(Graph *g, NodeId n, NodeId ta, NodeId tb)
{
    const Node nd = g->node[n];
    NodeId t = NODE_NONE, tan[2] = {ta, tb};
    for (int k = 0; k < op_info[nd.op].arity; k++) {
        if (tan[k] == NODE_NONE)
            continue;
        Vjp v = {.want = {k == 0, k == 1}};
        op_info[nd.op].vjp(g, n, tan[k], &v);
        if (v.neg[k] && t != NODE_NONE)
            t = ir_add_negated(g, t, v.c[k], 0);
        else
            t = plus(g, t, vjp_value(g, &v, k));
    }
    return fit(g, t, nd.shape);
}

/* d logsumexp(a) = <softmax(a), da>, row by row for a matrix. */
static NodeId logsumexp(Graph *g, NodeId a, NodeId ta)
{
    Shape s = g->node[a].shape;
    NodeId w = ir_mul(g, ir_softmax(g, a), ta);
    if (s.rank == 2)
        return ir_matmul(g, w, ir_ones(g, s.dim[1]), 0);
    return ir_sum(g, w);
}

/* The tangent of node n of a tensor op, given its operands' tangents. */
static NodeId structured(Graph *g, NodeId n, NodeId ta, NodeId tb)
{
    const Node nd = g->node[n];
    NodeId a = nd.arg[0], b = nd.arg[1];
    if (ta == NODE_NONE && tb == NODE_NONE)
        return NODE_NONE;
    switch ((Op)nd.op) {
    case OP_BCAST:
        return ir_bcast(g, ta, nd.shape);
    case OP_SUM:
        return ir_sum(g, ta);
    case OP_MATMUL:
        return plus(g, ta ? ir_matmul(g, ta, b, nd.aux) : NODE_NONE,
                    tb ? ir_matmul(g, a, tb, nd.aux) : NODE_NONE);
    case OP_OUTER:
        return plus(g, ta ? ir_outer(g, ta, b) : NODE_NONE, tb ? ir_outer(g, a, tb) : NODE_NONE);
    case OP_TRANSPOSE:
        return ir_transpose(g, ta);
    case OP_INDEX:
        return ir_index(g, ta, (uint32_t)nd.aux);
    case OP_SLICE:
        return ir_slice(g, ta, (uint32_t)nd.aux, nd.shape.dim[0], (uint32_t)nd.num);
    case OP_PAD:
        return ir_pad(g, ta, (uint32_t)nd.aux, (uint32_t)nd.num, nd.shape);
    case OP_VIEW:
        return ir_view(g, ta, (uint32_t)nd.aux, nd.shape);
    case OP_UNVIEW:
        return ir_node(g, OP_UNVIEW, ta, 0, nd.aux, 0, nd.shape);
    case OP_SOFTMAX: {
        /* The softmax Jacobian diag(s) - s s^T is symmetric: its VJP
         * rule applied to the tangent is the JVP. */
        Vjp v = {.want = {1, 0}};
        op_info[OP_SOFTMAX].vjp(g, n, ta, &v);
        return v.c[0];
    }
    case OP_LOGSUMEXP:
        return logsumexp(g, a, ta);
    default:
        assert(!"forward rule missing for a tensor op");
        return NODE_NONE;
    }
}

void diff_forward(Graph *g, const NodeId *roots, uint32_t nroots, const NodeId *inputs,
                  const NodeId *tangent, uint32_t n, NodeId *out)
{
    NodeId top = 0;
    for (uint32_t r = 0; r < nroots; r++)
        if (roots[r] > top)
            top = roots[r];
    /* Only what the roots reach gets a tangent: the graph also holds
     * other functions and dead intermediates. */
    uint8_t *mark = xcalloc(g->n, 1);
    ir_mark_reachable(g, roots, nroots, mark);
    NodeId *tan = xcalloc((size_t)top + 1, sizeof *tan);
    for (uint32_t k = 0; k < n; k++)
        if (inputs[k] <= top && tangent[k] != NODE_NONE)
            tan[inputs[k]] = fit(g, tangent[k], g->node[inputs[k]].shape);
    for (NodeId i = 1; i <= top; i++) {
        if (!mark[i] || tan[i])
            continue;
        const Node nd = g->node[i];   /* a copy: the rules append to g->node */
        int arity = op_info[nd.op].arity;
        if (arity == 0)
            continue;
        NodeId ta = tan[nd.arg[0]], tb = arity > 1 ? tan[nd.arg[1]] : NODE_NONE;
        if (ta == NODE_NONE && tb == NODE_NONE)
            continue;
        tan[i] = op_info[nd.op].flags & OPF_ELEM ? elementwise(g, i, ta, tb)
                                                 : structured(g, i, ta, tb);
    }
    for (uint32_t r = 0; r < nroots; r++) {
        NodeId t = tan[roots[r]];
        out[r] = t != NODE_NONE ? t : ir_bcast(g, ir_const(g, 0.0), g->node[roots[r]].shape);
    }
    free(tan);
    free(mark);
}

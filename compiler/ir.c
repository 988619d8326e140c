/* ir.c — the IR graph: an append-only array of nodes in which operands
 * always precede their users, so index order is a topological order.
 * Every node is made by ir_op, which folds constants, applies only the
 * simplifications that are exact in IEEE arithmetic, and hash-conses:
 * structurally equal nodes are one node (common subexpressions for free). */
#include "gradc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t node_hash(const Node *n)
{
    uint64_t bits;
    memcpy(&bits, &n->num, sizeof bits);
    uint64_t h = mix(n->op, n->shape.rank);
    h = mix(h, n->shape.dim[0]);
    h = mix(h, n->shape.dim[1]);
    for (int i = 0; i < 3; i++)
        h = mix(h, n->arg[i]);
    h = mix(h, bits);
    h = mix(h, (uint32_t)n->aux);
    return h * 0xff51afd7ed558ccdull;
}

/* Equal means interchangeable: constants compare by bit pattern, so 0.0
 * and -0.0 (and NaN payloads) stay distinct. */
static int node_equal(const Node *a, const Node *b)
{
    return a->op == b->op && a->shape.rank == b->shape.rank &&
           a->shape.dim[0] == b->shape.dim[0] &&
           a->shape.dim[1] == b->shape.dim[1] && a->arg[0] == b->arg[0] &&
           a->arg[1] == b->arg[1] && a->arg[2] == b->arg[2] &&
           memcmp(&a->num, &b->num, sizeof a->num) == 0 && a->aux == b->aux;
}

static void table_grow(Graph *g)
{
    uint32_t cap = g->tcap ? g->tcap * 2 : 1024;
    uint32_t *t = xmalloc(cap * sizeof *t);
    memset(t, 0, cap * sizeof *t);
    for (uint32_t i = 1; i < g->n; i++) {
        uint32_t h = (uint32_t)node_hash(&g->node[i]) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = i;
    }
    free(g->table);
    g->table = t;
    g->tcap = cap;
}

/* A hash of the tree below n, independent of node numbering, so that
 * commutative operands get the same order however the graph was built. */
static uint64_t structural_hash(const Graph *g, const Node *n)
{
    uint64_t bits;
    memcpy(&bits, &n->num, sizeof bits);
    uint64_t h = mix(mix(n->op, bits), (uint32_t)n->aux);
    h = mix(h, n->shape.rank);
    h = mix(h, n->shape.dim[0]);
    h = mix(h, n->shape.dim[1]);
    for (int i = 0; i < op_info[n->op].arity; i++)
        h = mix(h, g->node[n->arg[i]].sh);
    return h * 0xc4ceb9fe1a85ec53ull;
}

/* Returns the existing node equal to *n, or appends it. */
static NodeId intern(Graph *g, const Node *n)
{
    if (2 * (g->n + 1) > g->tcap)
        table_grow(g);
    uint32_t h = (uint32_t)node_hash(n) & (g->tcap - 1);
    for (; g->table[h]; h = (h + 1) & (g->tcap - 1))
        if (node_equal(&g->node[g->table[h]], n))
            return g->table[h];
    if (g->n == g->cap) {
        g->cap *= 2;
        g->node = xrealloc(g->node, g->cap * sizeof *g->node);
    }
    g->node[g->n] = *n;
    g->node[g->n].sh = structural_hash(g, n);
    g->table[h] = g->n;
    return g->n++;
}

Graph *ir_new(void)
{
    Graph *g = xmalloc(sizeof *g);
    memset(g, 0, sizeof *g);
    g->cap = 1024;
    g->node = xmalloc(g->cap * sizeof *g->node);
    memset(&g->node[0], 0, sizeof g->node[0]);
    g->node[0].op = OP_ERROR;
    g->n = 1;
    table_grow(g);
    return g;
}

void ir_free(Graph *g)
{
    if (!g)
        return;
    free(g->node);
    free(g->table);
    free(g);
}

NodeId ir_const(Graph *g, double v)
{
    Node n = {.op = OP_CONST, .num = v};
    return intern(g, &n);
}

NodeId ir_input(Graph *g)
{
    Node n = {.op = OP_INPUT, .aux = (int32_t)g->ninputs++};
    return intern(g, &n);
}

int ir_is_const(const Graph *g, NodeId id, double v)
{
    const Node *n = &g->node[id];
    return n->op == OP_CONST && memcmp(&n->num, &v, sizeof v) == 0;
}

/* The simplifications that give bit-identical results for every input,
 * NaN, infinities and signed zeros included. Deliberately absent:
 * x+0 -> x (wrong for x = -0), x*0 -> 0 (wrong for NaN, inf, -x),
 * x-x -> 0 (wrong for inf). Returns the replacement or NODE_NONE. */
static NodeId simplify(Graph *g, Op op, NodeId a, NodeId b)
{
    const Node *na = &g->node[a];
    switch (op) {
    case OP_ADD:
        if (ir_is_const(g, b, -0.0)) return a;
        if (ir_is_const(g, a, -0.0)) return b;
        break;
    case OP_SUB:
        if (ir_is_const(g, b, 0.0)) return a;
        break;
    case OP_MUL:
        if (ir_is_const(g, b, 1.0)) return a;
        if (ir_is_const(g, a, 1.0)) return b;
        if (ir_is_const(g, b, -1.0)) return ir_op(g, OP_NEG, a, 0);
        if (ir_is_const(g, a, -1.0)) return ir_op(g, OP_NEG, b, 0);
        break;
    case OP_DIV:
        if (ir_is_const(g, b, 1.0)) return a;
        if (ir_is_const(g, b, -1.0)) return ir_op(g, OP_NEG, a, 0);
        break;
    case OP_NEG:
        if (na->op == OP_NEG) return na->arg[0];
        break;
    case OP_POW:
        if (ir_is_const(g, b, 1.0)) return a;
        break;
    default:
        break;
    }
    return NODE_NONE;
}

NodeId ir_op(Graph *g, Op op, NodeId a, NodeId b)
{
    int arity = op_info[op].arity;
    assert(arity >= 1 && arity <= 2);
    if (a == NODE_NONE || (arity == 2 && b == NODE_NONE))
        return NODE_NONE;       /* poison: an error was already reported */
    if (arity == 1)
        b = NODE_NONE;
    const Node *na = &g->node[a], *nb = &g->node[b];
    if (na->op == OP_CONST && (arity == 1 || nb->op == OP_CONST)) {
        double args[2] = {na->num, nb->num};
        return ir_const(g, op_info[op].eval(args));
    }
    NodeId s = simplify(g, op, a, b);
    if (s != NODE_NONE)
        return s;
    uint64_t sha = g->node[a].sh, shb = g->node[b].sh;
    if ((op_info[op].flags & OPF_COMM) && (sha > shb || (sha == shb && a > b))) {
        NodeId t = a;
        a = b;
        b = t;
    }
    Node n = {.op = (uint16_t)op, .arg = {a, b, 0}};
    return intern(g, &n);
}

NodeId ir_add(Graph *g, NodeId a, NodeId b) { return ir_op(g, OP_ADD, a, b); }
NodeId ir_sub(Graph *g, NodeId a, NodeId b) { return ir_op(g, OP_SUB, a, b); }
NodeId ir_mul(Graph *g, NodeId a, NodeId b) { return ir_op(g, OP_MUL, a, b); }
NodeId ir_div(Graph *g, NodeId a, NodeId b) { return ir_op(g, OP_DIV, a, b); }
NodeId ir_neg(Graph *g, NodeId a) { return ir_op(g, OP_NEG, a, 0); }

void ir_mark_reachable(const Graph *g, const NodeId *roots, uint32_t nroots,
                       uint8_t *mark)
{
    NodeId top = 0;
    memset(mark, 0, g->n);
    for (uint32_t i = 0; i < nroots; i++) {
        mark[roots[i]] = 1;
        if (roots[i] > top)
            top = roots[i];
    }
    /* Operands precede users, so one backward sweep finds everything. */
    for (NodeId i = top; i > 0; i--) {
        if (!mark[i])
            continue;
        const Node *n = &g->node[i];
        for (int k = 0; k < op_info[n->op].arity; k++)
            mark[n->arg[k]] = 1;
    }
}

NodeId ir_substitute(Graph *g, NodeId root, uint32_t first,
                     const NodeId *from, const NodeId *to, uint32_t n)
{
    if (root < first)
        return root;
    uint32_t span = root - first + 1;
    NodeId *map = xmalloc(span * sizeof *map);
    uint8_t *live = xmalloc(span);
    memset(live, 0, span);
    live[root - first] = 1;
    for (NodeId i = root; i >= first && i > 0; i--) {
        if (!live[i - first])
            continue;
        const Node *nd = &g->node[i];
        for (int k = 0; k < op_info[nd->op].arity; k++)
            if (nd->arg[k] >= first)
                live[nd->arg[k] - first] = 1;
    }
    for (uint32_t i = 0; i < span; i++)
        map[i] = first + i;
    for (uint32_t k = 0; k < n; k++)
        if (from[k] >= first && from[k] <= root)
            map[from[k] - first] = to[k];
    for (NodeId i = first; i <= root; i++) {
        Node nd = g->node[i];   /* a copy: ir_op may move the array */
        if (!live[i - first] || op_info[nd.op].arity == 0)
            continue;
        NodeId a = nd.arg[0] >= first ? map[nd.arg[0] - first] : nd.arg[0];
        NodeId b = nd.arg[1] >= first ? map[nd.arg[1] - first] : nd.arg[1];
        map[i - first] = ir_op(g, (Op)nd.op, a, b);
    }
    NodeId r = map[root - first];
    free(map);
    free(live);
    return r;
}

void ir_dump(const Graph *g, const NodeId *roots, uint32_t nroots, Buf *out)
{
    uint8_t *mark = xmalloc(g->n);
    ir_mark_reachable(g, roots, nroots, mark);
    for (NodeId i = 1; i < g->n; i++) {
        if (!mark[i])
            continue;
        const Node *n = &g->node[i];
        buf_printf(out, "%%%u = %s", i, op_info[n->op].name);
        if (n->op == OP_CONST) {
            char num[32];
            num_format(n->num, num);
            buf_printf(out, " %s", num);
        } else if (n->op == OP_INPUT) {
            buf_printf(out, " %d", n->aux);
        }
        for (int k = 0; k < op_info[n->op].arity; k++)
            buf_printf(out, " %%%u", n->arg[k]);
        buf_puts(out, "\n");
    }
    free(mark);
}

/* ir.c — the IR graph: an append-only array of nodes in which operands
 * always precede their users, so index order is a topological order.
 * Every node is made by ir_op, which folds constants, applies only the
 * simplifications that are exact in IEEE arithmetic, and hash-conses:
 * structurally equal nodes are one node (common subexpressions for free). */
#include "gradc.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

/* The table's hash of a node: any function of what node_equal compares
 * will do (it never reaches the output). Each word of the node times its
 * own odd constant, then murmur3's fmix64 for full avalanche: the table
 * uses the low bits, and small whole numbers differ only in the high bits
 * of their doubles (without the avalanche every such constant fell into
 * one bucket: quadratic). A tensor constant's aux is where its elements
 * are, not what they are: its num holds their hash. */
static uint64_t node_hash(const Node *n)
{
    uint64_t bits;
    memcpy(&bits, &n->num, sizeof bits);
    uint64_t aux = n->op == OP_TCONST ? 0 : (uint32_t)n->aux;
    uint64_t h = (n->op | (uint64_t)n->shape.rank << 16 | aux << 32) * 0x9e3779b97f4a7c15ull;
    h ^= (n->arg[0] | (uint64_t)n->arg[1] << 32) * 0xbf58476d1ce4e5b9ull;
    h ^= ((uint64_t)n->shape.dim[0] << 32) * 0x94d049bb133111ebull;
    h ^= (bits ^ n->shape.dim[1]) * 0xd6e8feb86659fd93ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Equal means interchangeable: constants compare by bit pattern, so 0.0
 * and -0.0 (and NaN payloads) stay distinct. */
static int node_equal(const Graph *g, const Node *a, const Node *b)
{
    if (a->op == OP_TCONST && b->op == OP_TCONST)
        return shape_eq(a->shape, b->shape) &&
               memcmp(&a->num, &b->num, sizeof a->num) == 0 &&
               memcmp(g->pool + a->aux, g->pool + b->aux,
                      shape_size(a->shape) * sizeof *g->pool) == 0;
    return a->op == b->op && a->shape.rank == b->shape.rank &&
           a->shape.dim[0] == b->shape.dim[0] &&
           a->shape.dim[1] == b->shape.dim[1] && a->arg[0] == b->arg[0] &&
           a->arg[1] == b->arg[1] &&
           memcmp(&a->num, &b->num, sizeof a->num) == 0 && a->aux == b->aux;
}

/* Each slot keeps the node's hash next to its id, so growing never
 * rehashes a node and probing reads a node only when the hashes agree
 * (big graphs: most probes would otherwise be cache misses). */
static void table_grow(Graph *g)
{
    uint32_t cap = g->tcap ? g->tcap * 2 : 1024;
    uint64_t *t = xmalloc_big(cap * sizeof *t);
    memset(t, 0, cap * sizeof *t);
    for (uint32_t s = 0; s < g->tcap; s++) {
        uint64_t e = g->table[s];
        if (!e)
            continue;
        uint32_t h = (uint32_t)(e >> 32) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = e;
    }
    free(g->table);
    g->table = t;
    g->tcap = cap;
}

/* mix as a constant expression (h is expanded three times per level). */
#define MIX0(h) ((h) ^ (0x9e3779b97f4a7c15ull + ((h) << 6) + ((h) >> 2)))

/* structural_hash's value before the operands for a node with num, aux,
 * rank and dimensions 0 (nearly every operation): the five mixes of
 * those zeros, computed by the compiler. */
static const uint64_t sh_zero[OP_COUNT] = {
#define OP(id, nm, ar, fl, ev, vjp, c) [OP_##id] = MIX0(MIX0(MIX0(MIX0(MIX0((uint64_t)OP_##id))))),
#include "ops.h"
#undef OP
};

/* A hash of the tree below n, independent of node numbering, so that
 * commutative operands get the same order however the graph was built.
 * Its value orders operands, so it reaches the output: it is
 * mix(op, num, aux, rank, dim[0], dim[1], operands' hashes) * constant,
 * and sh_zero only saves recomputing the common prefix. */
static uint64_t structural_hash(const Graph *g, const Node *n)
{
    uint64_t bits;
    memcpy(&bits, &n->num, sizeof bits);
    uint64_t aux = n->op == OP_TCONST ? 0 : (uint32_t)n->aux, h;
    if ((bits | aux | n->shape.rank | n->shape.dim[0] | n->shape.dim[1]) == 0) {
        h = sh_zero[n->op];
    } else {
        h = mix(mix(n->op, bits), aux);
        h = mix(h, n->shape.rank);
        h = mix(h, n->shape.dim[0]);
        h = mix(h, n->shape.dim[1]);
    }
    int arity = op_info[n->op].arity;
    if (arity > 0)
        h = mix(h, g->node[n->arg[0]].sh);
    if (arity > 1)
        h = mix(h, g->node[n->arg[1]].sh);
    return h * 0xc4ceb9fe1a85ec53ull;
}

/* The most entries one intern adds: the node, and the users listed by
 * its two operands when their lists overflow (use_add). */
enum { TABLE_ROOM = 1 + 2 * 2 };

/* Whether one more intern could fill the table beyond 3/4. Linear
 * probing stays short at that load since the hashes in the slots spare
 * most node reads; a fuller table is a smaller one, and a big graph's
 * lookups are cache misses in it. It is sized by its entries, not by
 * the graph: most nodes are found through their operands' use lists. */

static int table_full(const Graph *g)
{
    return 4 * ((uint64_t)g->ntable + TABLE_ROOM) > 3 * (uint64_t)g->tcap;
}

/* Inserts node id, whose hash is `hash`, into the table (not there yet). */
static void table_put(Graph *g, uint32_t hash, NodeId id)
{
    uint32_t h = hash & (g->tcap - 1);
    while (g->table[h])
        h = (h + 1) & (g->tcap - 1);
    g->table[h] = (uint64_t)hash << 32 | id;
    g->ntable++;
}

/* Hash-consing without a table lookup for most nodes. A node's use[]
 * lists its users while it has at most two (USE_MANY after), and the
 * table holds every node not listed in some operand's use[]: so when an
 * operand has at most two users, they are the only candidates, and the
 * table is consulted only when every operand has more. In a big formula
 * most nodes have a fresh operand (a subtree just parsed, an adjoint just
 * made), which is in the cache with its users, while a probe of a big
 * table is a cache miss per node. */
#define USE_MANY ((NodeId)0xffffffff)

/* Inserts node id into the table unless it is there. */
static void table_index(Graph *g, NodeId id)
{
    if (g->node[id].indexed)
        return;
    g->node[id].indexed = 1;
    table_put(g, (uint32_t)node_hash(&g->node[id]), id);
}

/* Records user as a user of operand a; returns whether a lists it (so
 * the table need not). A third user turns the list into USE_MANY, and
 * the two listed go into the table, where lookups will now look. */
static inline int use_add(Graph *g, NodeId a, NodeId user)
{
    NodeId *u = g->node[a].use;
    if (u[0] == USE_MANY)
        return 0;
    if (u[0] == NODE_NONE || u[1] == NODE_NONE) {
        u[u[0] != NODE_NONE] = user;
        return 1;
    }
    NodeId u0 = u[0], u1 = u[1];
    u[0] = u[1] = USE_MANY;
    table_index(g, u0);
    table_index(g, u1);
    return 0;
}

/* Puts the nodes ir_append added into the table. They are distinct from
 * each other and from the rest (ir_append's contract), which is checked.
 * Their operands' use lists did not record them: the lists become
 * USE_MANY, which sends lookups to the table. */
static void index_appended(Graph *g)
{
    /* Room for the appended nodes and the users their operands list. */
    uint32_t ntable = g->ntable;
    g->ntable += (g->n - g->nindexed) * TABLE_ROOM;
    while (table_full(g))
        table_grow(g);
    g->ntable = ntable;
    for (NodeId i = g->nindexed; i < g->n; i++) {
        Node *n = &g->node[i];
        n->use[0] = n->use[1] = NODE_NONE;
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId *u = g->node[n->arg[k]].use;
            for (int j = 0; j < 2 && u[0] != USE_MANY; j++)
                if (u[j] != NODE_NONE)
                    table_index(g, u[j]);
            u[0] = u[1] = USE_MANY;
        }
    }
    for (NodeId i = g->nindexed; i < g->n; i++) {
        uint32_t hash = (uint32_t)node_hash(&g->node[i]);
        for (uint32_t h = hash & (g->tcap - 1); g->table[h]; h = (h + 1) & (g->tcap - 1))
            assert((uint32_t)(g->table[h] >> 32) != hash ||
                   !node_equal(g, &g->node[(uint32_t)g->table[h]], &g->node[i]));
        table_put(g, hash, i);
        g->node[i].indexed = 1;
    }
    g->nindexed = g->n;
}

/* Appends *n as it is (its structural hash included), not yet a user of
 * anything and not in the table. */
static NodeId append(Graph *g, const Node *n)
{
    if (g->n == g->cap) {
        g->cap *= 2;
        g->node = xrealloc(g->node, g->cap * sizeof *g->node);
    }
    Node *c = &g->node[g->n];
    *c = *n;
    if (n->op == OP_MATMUL)
        g->nmatmul_bt += (n->aux & 2) != 0;
    c->indexed = 0;
    c->use[0] = c->use[1] = NODE_NONE;
    return g->n++;
}

/* The node equal to *n if there is one, found through an operand's use
 * list; NODE_NONE when there is none, USE_MANY when only the table can
 * tell. The newer operand is tried first: it is the likelier to have
 * few users, and to be in the cache with them. */
static NodeId find_by_use(const Graph *g, const Node *n)
{
    NodeId a = n->arg[0], b = op_info[n->op].arity == 2 ? n->arg[1] : NODE_NONE;
    NodeId try[2] = {a > b ? a : b, a > b ? b : a};
    for (int k = 0; k < 2 && try[k] != NODE_NONE; k++) {
        const NodeId *u = g->node[try[k]].use;
        if (u[0] == USE_MANY)
            continue;
        for (int j = 0; j < 2 && u[j] != NODE_NONE; j++)
            if (node_equal(g, &g->node[u[j]], n))
                return u[j];
        return NODE_NONE;
    }
    return USE_MANY;
}

/* Returns the existing node equal to *n, or appends it. n->sh is its
 * structural hash when sh_set, otherwise computed if it is appended. */
static NodeId intern(Graph *g, const Node *n, int sh_set)
{
    if (g->nindexed < g->n)
        index_appended(g);
    if (table_full(g))
        table_grow(g);
    NodeId found = op_info[n->op].arity ? find_by_use(g, n) : USE_MANY;
    uint32_t hash = 0, h = 0;
    if (found == USE_MANY) {
        hash = (uint32_t)node_hash(n);
        for (h = hash & (g->tcap - 1); g->table[h]; h = (h + 1) & (g->tcap - 1)) {
            uint64_t e = g->table[h];
            if ((uint32_t)(e >> 32) == hash && node_equal(g, &g->node[(uint32_t)e], n))
                return (uint32_t)e;
        }
    } else if (found != NODE_NONE) {
        return found;
    }
    uint64_t sh = sh_set ? n->sh : structural_hash(g, n);
    NodeId id = append(g, n);   /* n is the caller's: append may move g->node */
    g->node[id].sh = sh;
    g->nindexed = g->n;
    int arity = op_info[n->op].arity, listed = 0;
    if (arity > 0)
        listed = use_add(g, n->arg[0], id);
    if (arity > 1 && n->arg[1] != n->arg[0])
        listed |= use_add(g, n->arg[1], id);
    if (!listed) {
        /* The probe above ended at a free slot, unless use_add filled it. */
        if (found == USE_MANY && !g->table[h]) {
            g->table[h] = (uint64_t)hash << 32 | id;
            g->ntable++;
            g->node[id].indexed = 1;
        } else {
            table_index(g, id);
        }
    }
    return id;
}

NodeId ir_append(Graph *g, const Node *n, NodeId a, NodeId b)
{
    Node c = *n;
    c.arg[0] = a;
    c.arg[1] = b;
    /* Commutative operands in ir_op's order (it may differ from the
     * source graph's only where the structural hashes tie). The hashes
     * are computed again: an input's slot may differ between the graphs. */
    if (op_info[c.op].flags & OPF_COMM) {
        uint64_t sha = g->node[a].sh, shb = g->node[b].sh;
        if (sha > shb || (sha == shb && a > b)) {
            c.arg[0] = b;
            c.arg[1] = a;
        }
    }
    c.sh = structural_hash(g, &c);
    return append(g, &c);
}

NodeId ir_append_same(Graph *g, const Node *n, NodeId a, NodeId b)
{
    NodeId id = append(g, n);   /* n is another graph's */
    g->node[id].arg[0] = a;
    g->node[id].arg[1] = b;
    return id;
}

void ir_reserve(Graph *g, uint32_t n)
{
    if (g->cap < n) {
        g->cap = n;
        g->node = xrealloc(g->node, g->cap * sizeof *g->node);
    }
}

void ir_trim(Graph *g)
{
    g->cap = g->n;
    g->node = xrealloc(g->node, g->cap * sizeof *g->node);
}

Graph *ir_new(void)
{
    Graph *g = xmalloc(sizeof *g);
    memset(g, 0, sizeof *g);
    g->cap = 1024;
    g->node = xmalloc(g->cap * sizeof *g->node);
    memset(&g->node[0], 0, sizeof g->node[0]);
    g->node[0].op = OP_ERROR;
    g->n = g->nindexed = 1;
    table_grow(g);
    return g;
}

void ir_free(Graph *g)
{
    if (!g)
        return;
    free(g->pool);
    free(g->node);
    free(g->table);
    free(g);
}

NodeId ir_const(Graph *g, double v)
{
    Node n = {.op = OP_CONST, .num = v};
    return intern(g, &n, 0);
}

NodeId ir_input(Graph *g, Shape s)
{
    Node n = {.op = OP_INPUT, .aux = (int32_t)g->ninputs++, .shape = s};
    return intern(g, &n, 0);
}

/* ---- shapes ---- */

Shape shape_vec(uint32_t n) { return (Shape){1, {n, 0}}; }
Shape shape_mat(uint32_t m, uint32_t n) { return (Shape){2, {m, n}}; }

uint32_t shape_size(Shape s)
{
    return s.rank == 0 ? 1 : s.rank == 1 ? s.dim[0] : s.dim[0] * s.dim[1];
}

int shape_eq(Shape a, Shape b)
{
    return a.rank == b.rank && a.dim[0] == b.dim[0] && a.dim[1] == b.dim[1];
}

const char *shape_str(Shape s, char buf[48])
{
    if (s.rank == 0)
        snprintf(buf, 48, "scalar");
    else if (s.rank == 1)
        snprintf(buf, 48, "[%u]", s.dim[0]);
    else
        snprintf(buf, 48, "[%u,%u]", s.dim[0], s.dim[1]);
    return buf;
}

int ir_broadcast(Shape a, Shape b, Shape *out)
{
    if (shape_eq(a, b) || b.rank == 0)
        *out = a;
    else if (a.rank == 0)
        *out = b;
    else
        return 0;
    return 1;
}

/* ---- tensor constants: elements in g->pool, identity by content ---- */

NodeId ir_tconst(Graph *g, Shape s, const double *v)
{
    if (s.rank == 0)
        return ir_const(g, v[0]);
    uint32_t n = shape_size(s);
    if (g->npool + n > g->cappool) {
        g->cappool = (g->npool + n) * 2 + 64;
        g->pool = xrealloc(g->pool, g->cappool * sizeof *g->pool);
    }
    memcpy(g->pool + g->npool, v, n * sizeof *v);
    uint64_t h = 0x243f6a8885a308d3ull;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        h = mix(h, bits);
    }
    Node node = {.op = OP_TCONST, .shape = s, .aux = (int32_t)g->npool};
    memcpy(&node.num, &h, sizeof h);
    uint32_t before = g->n;
    NodeId id = intern(g, &node, 0);
    if (g->n > before)          /* new: keep the elements appended above */
        g->npool += n;
    return id;
}

const double *ir_tconst_data(const Graph *g, NodeId id)
{
    return g->pool + g->node[id].aux;
}

int ir_is_constant(const Graph *g, NodeId id)
{
    return g->node[id].op == OP_CONST || g->node[id].op == OP_TCONST;
}

/* Evaluates a node whose operands are all constants. */
static NodeId fold(Graph *g, const Node *n)
{
    uint32_t size = shape_size(n->shape);
    double *out = xmalloc(size * sizeof *out);
    double scalar[3];
    const double *args[3] = {0};
    for (int k = 0; k < op_info[n->op].arity; k++) {
        const Node *a = &g->node[n->arg[k]];
        scalar[k] = a->num;
        args[k] = a->op == OP_CONST ? &scalar[k] : g->pool + a->aux;
    }
    kern_eval(g, n, args, out);
    NodeId r = ir_tconst(g, n->shape, out);
    free(out);
    return r;
}

/* A constant tensor with one value everywhere: a uniform TCONST, or a
 * broadcast constant too large to fold (see all_constant). */
static int uniform(const Graph *g, NodeId id, double *value)
{
    const Node *n = &g->node[id];
    if (n->op == OP_BCAST && g->node[n->arg[0]].op == OP_CONST) {
        *value = g->node[n->arg[0]].num;
        return 1;
    }
    if (n->op != OP_TCONST)
        return 0;
    const double *v = ir_tconst_data(g, id);
    for (uint32_t i = 1; i < shape_size(n->shape); i++)
        if (memcmp(&v[i], &v[0], sizeof *v) != 0)
            return 0;
    *value = v[0];
    return 1;
}

/* Whether to fold n: its operands are constants and its value is small.
 * A large result (the gradient 1 broadcast over a big input) stays an
 * operation, so a line of source cannot make a gigabyte constant table. */
static int all_constant(const Graph *g, const Node *n)
{
    for (int k = 0; k < op_info[n->op].arity; k++)
        if (!ir_is_constant(g, n->arg[k]))
            return 0;
    return op_info[n->op].arity > 0 && shape_size(n->shape) <= GRADC_MAX_FOLD;
}

int ir_is_const(const Graph *g, NodeId id, double v)
{
    const Node *n = &g->node[id];
    return n->op == OP_CONST && memcmp(&n->num, &v, sizeof v) == 0;
}

/* x * c1 * c2 as x * (c1 c2): exact when c1 = +-2^k with k >= 0 is applied
 * first (x * c1 is then exact, or overflows as x * c1 c2 does, since
 * |c2| >= 1) and c1 c2 is finite. Returns the node or NODE_NONE. */
static NodeId fold_scale(Graph *g, NodeId inner, NodeId c)
{
    const Node *m = &g->node[inner];
    if (m->op != OP_MUL || g->node[c].op != OP_CONST)
        return NODE_NONE;
    NodeId x = m->arg[0], k = m->arg[1];
    if (g->node[x].op == OP_CONST) {
        NodeId t = x;
        x = k, k = t;
    }
    if (g->node[k].op != OP_CONST)
        return NODE_NONE;
    double c1 = g->node[k].num, c2 = g->node[c].num;
    int e;
    if (frexp(fabs(c1), &e) != 0.5 || e < 1 || !(fabs(c2) >= 1) || !isfinite(c1 * c2))
        return NODE_NONE;
    return ir_op(g, OP_MUL, x, ir_const(g, c1 * c2));
}

/* Whether node n is the scalar constant v, bit for bit (-0.0 is not 0.0). */
static inline int is_num(const Node *n, double v)
{
    return n->op == OP_CONST && memcmp(&n->num, &v, sizeof v) == 0;
}

/* -(x * c) as x * (-c), when one factor of the product m is a constant. */
static NodeId neg_scale(Graph *g, const Node *m)
{
    int k = g->node[m->arg[1]].op == OP_CONST ? 1 :
            g->node[m->arg[0]].op == OP_CONST ? 0 : -1;
    if (k < 0)
        return NODE_NONE;
    NodeId x = m->arg[1 - k];
    double c = -g->node[m->arg[k]].num;
    return ir_op(g, OP_MUL, x, ir_const(g, c));
}

/* The simplifications that give bit-identical results for every input,
 * NaN, infinities and signed zeros included. Deliberately absent:
 * x+0 -> x (wrong for x = -0), x*0 -> 0 (wrong for NaN, inf, -x),
 * x-x -> 0 (wrong for inf), -(a-b) -> b-a and -a + -b -> -(a+b) (wrong
 * for a = b: +0 and -0). The sign moves are exact because rounding is
 * symmetric and a - b is defined as a + (-b): x * -y = -(x*y),
 * -(x*c) = x*(-c), x + -y = x - y, x - -y = x + y. Returns the
 * replacement or NODE_NONE. Every operand is read before the first
 * node is made: making one may move g->node. */
static NodeId simplify(Graph *g, Op op, NodeId a, NodeId b)
{
    const Node *na = &g->node[a], *nb = &g->node[b];
    NodeId a0 = na->arg[0], b0 = nb->arg[0];
    switch (op) {
    case OP_ADD:
        if (is_num(nb, -0.0)) return a;
        if (is_num(na, -0.0)) return b;
        if (nb->op == OP_NEG) return ir_op(g, OP_SUB, a, b0);
        if (na->op == OP_NEG) return ir_op(g, OP_SUB, b, a0);
        break;
    case OP_SUB:
        if (is_num(nb, 0.0)) return a;
        if (nb->op == OP_NEG) return ir_op(g, OP_ADD, a, b0);
        break;
    case OP_MUL: {
        if (is_num(nb, 1.0)) return a;
        if (is_num(na, 1.0)) return b;
        if (is_num(nb, -1.0)) return ir_op(g, OP_NEG, a, 0);
        if (is_num(na, -1.0)) return ir_op(g, OP_NEG, b, 0);
        if (na->op == OP_NEG)
            return ir_op(g, OP_NEG, ir_op(g, OP_MUL, a0, b), 0);
        if (nb->op == OP_NEG)
            return ir_op(g, OP_NEG, ir_op(g, OP_MUL, a, b0), 0);
        NodeId s = fold_scale(g, a, b);
        return s != NODE_NONE ? s : fold_scale(g, b, a);
    }
    case OP_DIV:
        if (is_num(nb, 1.0)) return a;
        if (is_num(nb, -1.0)) return ir_op(g, OP_NEG, a, 0);
        break;
    case OP_NEG:
        if (na->op == OP_NEG) return a0;
        if (na->op == OP_MUL) return neg_scale(g, na);
        break;
    case OP_POW:
        if (is_num(nb, 1.0)) return a;
        break;
    default:
        break;
    }
    return NODE_NONE;
}

/* Excluded: the cases of simplify's OP_NEG, folding, and tensors. */
int ir_neg_stays(const Graph *g, NodeId y)
{
    const Node *n = &g->node[y];
    if (n->shape.rank != 0 || n->op == OP_CONST || n->op == OP_NEG)
        return 0;
    return n->op != OP_MUL ||
           (g->node[n->arg[0]].op != OP_CONST && g->node[n->arg[1]].op != OP_CONST);
}

/* Reverse mode adds negated contributions (d_sub, d_div, ...) to
 * adjoints, where simplify turns a + -y and -y + a into a - y and the
 * node -y is left unused: at random 10^6 nodes, 280,000 of them. This is
 * simplify's OP_ADD applied to a - y without making -y, in the cases
 * where it provably gives a - y: a is no -0.0 constant (a + -0.0 is a)
 * and, with -y first, a is no negation (whose case comes first). */
NodeId ir_add_negated(Graph *g, NodeId a, NodeId y, int y_first)
{
    const Node *na = &g->node[a];
    if (a != NODE_NONE && y != NODE_NONE && na->shape.rank == 0 && !is_num(na, -0.0) &&
        (!y_first || na->op != OP_NEG) && ir_neg_stays(g, y))
        return ir_op(g, OP_SUB, a, y);
    NodeId m = ir_neg(g, y);
    return y_first ? ir_add(g, m, a) : ir_add(g, a, m);
}

/* op(a, b) in canonical operand order, found or made. */
static NodeId make(Graph *g, Op op, NodeId a, NodeId b, Shape shape)
{
    Node n = {.op = (uint16_t)op, .arg = {a, b}, .shape = shape};
    uint64_t sha = g->node[a].sh, shb = g->node[b].sh;
    if ((op_info[op].flags & OPF_COMM) && (sha > shb || (sha == shb && a > b))) {
        n.arg[0] = b;
        n.arg[1] = a;
        uint64_t t = sha;
        sha = shb, shb = t;
    }
    if (shape.rank != 0)
        return intern(g, &n, 0);
    /* structural_hash of a scalar operation, from what is at hand. */
    n.sh = mix(sh_zero[op], sha);
    if (op_info[op].arity > 1)
        n.sh = mix(n.sh, shb);
    n.sh *= 0xc4ceb9fe1a85ec53ull;
    return intern(g, &n, 1);
}

NodeId ir_op(Graph *g, Op op, NodeId a, NodeId b)
{
    int arity = op_info[op].arity;
    assert(arity >= 1 && arity <= 2 && (op_info[op].flags & OPF_ELEM));
    if (a == NODE_NONE || (arity == 2 && b == NODE_NONE))
        return NODE_NONE;       /* poison: an error was already reported */
    if (arity == 1)
        b = NODE_NONE;
    const Node *na = &g->node[a], *nb = &g->node[b];
    if (na->op == OP_CONST && (arity == 1 || nb->op == OP_CONST)) {
        double args[2] = {na->num, nb->num};
        return ir_const(g, op_info[op].eval(args));
    }
    /* Scalar operands (node 0 stands for a missing one): no broadcast, no
     * uniform tensor, nothing to fold (a tensor constant or a broadcast
     * is never a scalar, ir_tconst and ir_bcast see to it), and every
     * simplification gives a scalar. The common case by far. */
    if ((na->shape.rank | nb->shape.rank) == 0) {
        NodeId s = simplify(g, op, a, b);
        return s != NODE_NONE ? s : make(g, op, a, b, SHAPE_SCALAR);
    }
    Shape shape = na->shape;
    if (arity == 2 && !ir_broadcast(na->shape, nb->shape, &shape))
        assert(!"operand shapes checked by the front end");
    /* A constant tensor with one value everywhere is that scalar,
     * broadcast: the scalar form lets the simplifications below apply. */
    double u;
    if (arity == 2 && shape_eq(na->shape, shape) && uniform(g, b, &u))
        b = ir_const(g, u);
    else if (arity == 2 && shape_eq(g->node[b].shape, shape) && uniform(g, a, &u))
        a = ir_const(g, u);
    Node n = {.op = (uint16_t)op, .arg = {a, b}, .shape = shape};
    if (all_constant(g, &n))
        return fold(g, &n);
    NodeId s = simplify(g, op, a, b);
    if (s != NODE_NONE && shape_eq(g->node[s].shape, shape))
        return s;
    return make(g, op, a, b, shape);
}

NodeId ir_node(Graph *g, Op op, NodeId a, NodeId b, int32_t aux, double num,
               Shape shape)
{
    if (op_info[op].flags & OPF_ELEM)
        return ir_op(g, op, a, b);
    int arity = op_info[op].arity;
    if ((arity >= 1 && a == NODE_NONE) || (arity == 2 && b == NODE_NONE))
        return NODE_NONE;
    Node n = {.op = (uint16_t)op, .arg = {arity >= 1 ? a : 0, arity == 2 ? b : 0},
              .num = num, .aux = aux, .shape = shape};
    if (all_constant(g, &n))
        return fold(g, &n);
    return intern(g, &n, 0);
}

NodeId ir_sum(Graph *g, NodeId a)
{
    if (g->node[a].shape.rank == 0)
        return a;
    return ir_node(g, OP_SUM, a, 0, 0, 0, SHAPE_SCALAR);
}

NodeId ir_bcast(Graph *g, NodeId a, Shape s)
{
    if (s.rank == 0)
        return a;
    return ir_node(g, OP_BCAST, a, 0, 0, 0, s);
}

int ir_matmul_shape(Shape a, Shape b, int transpose, Shape *out)
{
    if (a.rank != 2 || b.rank == 0)
        return 0;
    uint32_t m = transpose & 1 ? a.dim[1] : a.dim[0];
    uint32_t k = transpose & 1 ? a.dim[0] : a.dim[1];
    if (b.rank == 1) {
        *out = shape_vec(m);
        return b.dim[0] == k;
    }
    uint32_t kb = transpose & 2 ? b.dim[1] : b.dim[0];
    uint32_t n = transpose & 2 ? b.dim[0] : b.dim[1];
    *out = shape_mat(m, n);
    return kb == k;
}

NodeId ir_matmul(Graph *g, NodeId a, NodeId b, int transpose)
{
    Shape s;
    if (a == NODE_NONE || b == NODE_NONE)
        return NODE_NONE;
    int ok = ir_matmul_shape(g->node[a].shape, g->node[b].shape, transpose, &s);
    assert(ok);
    (void)ok;
    return ir_node(g, OP_MATMUL, a, b, transpose, 0, s);
}

NodeId ir_outer(Graph *g, NodeId a, NodeId b)
{
    Shape s = shape_mat(g->node[a].shape.dim[0], g->node[b].shape.dim[0]);
    return ir_node(g, OP_OUTER, a, b, 0, 0, s);
}

NodeId ir_transpose(Graph *g, NodeId a)
{
    const Node *n = &g->node[a];
    if (n->op == OP_TRANSPOSE)
        return n->arg[0];
    return ir_node(g, OP_TRANSPOSE, a, 0, 0, 0, shape_mat(n->shape.dim[1], n->shape.dim[0]));
}

/* Element i of a vector computed elementwise is the same operation on
 * the operands' elements i (bit for bit): (x - logsumexp(x))[3] needs one
 * subtraction, not the whole vector. */
NodeId ir_index(Graph *g, NodeId a, uint32_t i)
{
    Shape s = g->node[a].shape;
    Node n = g->node[a];
    if (s.rank == 1 && (op_info[n.op].flags & OPF_ELEM)) {
        NodeId x = n.arg[0], y = op_info[n.op].arity > 1 ? n.arg[1] : NODE_NONE;
        if (g->node[x].shape.rank == 1)
            x = ir_index(g, x, i);
        if (y != NODE_NONE && g->node[y].shape.rank == 1)
            y = ir_index(g, y, i);
        return ir_op(g, (Op)n.op, x, y);
    }
    Shape r = s.rank == 2 ? shape_vec(s.dim[1]) : SHAPE_SCALAR;
    return ir_node(g, OP_INDEX, a, 0, (int32_t)i, 0, r);
}

NodeId ir_slice(Graph *g, NodeId a, uint32_t start, uint32_t count, uint32_t stride)
{
    Shape s = g->node[a].shape;
    if (start == 0 && stride == 1 && count == s.dim[0])
        return a;
    s.dim[0] = count;
    return ir_node(g, OP_SLICE, a, 0, (int32_t)start, stride, s);
}

NodeId ir_pad(Graph *g, NodeId a, uint32_t start, uint32_t stride, Shape target)
{
    return ir_node(g, OP_PAD, a, 0, (int32_t)start, stride, target);
}

NodeId ir_view(Graph *g, NodeId a, uint32_t offset, Shape s)
{
    if (offset == 0 && shape_eq(s, g->node[a].shape))
        return a;
    return ir_node(g, OP_VIEW, a, 0, (int32_t)offset, 0, s);
}

NodeId ir_softmax(Graph *g, NodeId a)
{
    return ir_node(g, OP_SOFTMAX, a, 0, 0, 0, g->node[a].shape);
}

NodeId ir_logsumexp(Graph *g, NodeId a)
{
    Shape s = g->node[a].shape;
    return ir_node(g, OP_LOGSUMEXP, a, 0, 0, 0, s.rank == 2 ? shape_vec(s.dim[0]) : SHAPE_SCALAR);
}

NodeId ir_ones(Graph *g, uint32_t n)
{
    return ir_bcast(g, ir_const(g, 1.0), shape_vec(n));
}

NodeId ir_rows(Graph *g, NodeId v, uint32_t cols)
{
    return ir_outer(g, v, ir_ones(g, cols));
}

NodeId ir_log_softmax(Graph *g, NodeId x)
{
    Shape s = g->node[x].shape;
    NodeId lse = ir_logsumexp(g, x);
    return ir_sub(g, x, s.rank == 2 ? ir_rows(g, lse, s.dim[1]) : lse);
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
    /* Operands precede users, so one backward sweep finds everything.
     * The operands' marks are written at random: fetched a few nodes
     * early (the sweep reads the nodes in order). */
    enum { AHEAD = 32 };
    for (NodeId i = top; i > 0; i--) {
        if (i > AHEAD) {
            __builtin_prefetch(&mark[g->node[i - AHEAD].arg[0]], 1);
            __builtin_prefetch(&mark[g->node[i - AHEAD].arg[1]], 1);
        }
        if (!mark[i])
            continue;
        /* Read first: a byte store may alias the node and op_info. */
        const Node *n = &g->node[i];
        int arity = op_info[n->op].arity;
        NodeId a = n->arg[0], b = n->arg[1];
        if (arity > 0)
            mark[a] = 1;
        if (arity > 1)
            mark[b] = 1;
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
        map[i - first] = ir_node(g, (Op)nd.op, a, b, nd.aux, nd.num, nd.shape);
    }
    NodeId r = map[root - first];
    free(map);
    free(live);
    return r;
}

/* One node as text: "mul %3 %5", "const 2", "tconst[3] 2 1 0.1",
 * "slice %2 start=1 stride=1 : [99]". Shared by every IR dump. */
void ir_print_node(const Graph *g, NodeId i, Buf *out)
{
    const Node *n = &g->node[i];
    char num[32], sh[48];
    buf_puts(out, op_info[n->op].name);
    if (n->op == OP_CONST) {
        num_format(n->num, num);
        buf_printf(out, " %s", num);
    } else if (n->op == OP_TCONST) {
        const double *v = ir_tconst_data(g, i);
        for (uint32_t e = 0; e < shape_size(n->shape); e++) {
            num_format(v[e], num);
            buf_printf(out, " %s", num);
        }
    } else if (n->op == OP_INPUT) {
        buf_printf(out, " %d", n->aux);
    }
    for (int k = 0; k < op_info[n->op].arity; k++)
        buf_printf(out, " %%%u", n->arg[k]);
    if (n->op == OP_SLICE || n->op == OP_PAD)
        buf_printf(out, " start=%d stride=%u", n->aux, (uint32_t)n->num);
    else if (n->op == OP_INDEX)
        buf_printf(out, " i=%d", n->aux);
    else if (n->op == OP_VIEW || n->op == OP_UNVIEW)
        buf_printf(out, " offset=%d", n->aux);
    else if (n->op == OP_MATMUL && n->aux)
        buf_printf(out, " transpose=%d", n->aux);
    if (n->shape.rank)
        buf_printf(out, " : %s", shape_str(n->shape, sh));
}

void ir_dump(const Graph *g, const NodeId *roots, uint32_t nroots, Buf *out)
{
    uint8_t *mark = xmalloc(g->n);
    ir_mark_reachable(g, roots, nroots, mark);
    for (NodeId i = 1; i < g->n; i++) {
        if (!mark[i])
            continue;
        buf_printf(out, "%%%u = ", i);
        ir_print_node(g, i, out);
        buf_puts(out, "\n");
    }
    free(mark);
}

/* hessian.c — sparse Hessians: the structural pattern of the second
 * derivatives, detected from the IR, and its entries computed by
 * compressed forward-over-reverse.
 *
 * Pattern: every node element carries its index domain, the set of input
 * elements (variables) it depends on; an op that is nonlinear in its
 * operands records the pairs of variables that interact in it (x*y: D(x)
 * x D(y); exp(u): D(u) x D(u)). The union of those pairs is a superset of
 * the Hessian's nonzeros and, for the usual sums of terms, exactly them:
 * chained Rosenbrock gives the tridiagonal. Kinks (relu, abs, max, min)
 * are piecewise linear and record nothing; step, sign and the comparison
 * have derivative 0, so their results depend on nothing.
 *
 * Entries: columns that share no row of the pattern get one colour; one
 * forward-over-reverse sweep per colour, with the sum of those columns'
 * unit vectors as the (constant) direction, gives all of them at once:
 * H[i][j] is row i of the product of j's colour. Chained Rosenbrock needs
 * 3 sweeps for any n, so the emitted code stays linear in n. Range sums
 * of elementwise terms do better with one sweep per slice of the
 * variables (hess_entries_by_slices, at the end). Only the lower triangle
 * is kept: each pair is one output. */
#include "gradc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Patterns are found for at most this many variables: GRADC_MAX_HESS,
 * or the elements of the slices through which hess_entries_by_slices
 * reads them (two per variable for chained Rosenbrock; 32 MB of bits). */
enum { HESS_MAX_LEAVES = 2 * GRADC_MAX_HESS };

typedef struct Set {            /* a sorted run of pool[off .. off + len) */
    uint32_t off, len;
} Set;

typedef struct Domains {
    const Graph *g;
    uint32_t *pool;
    size_t npool, cap;
    Set **set;                  /* per node: one Set per element (or NULL) */
    uint32_t n;                 /* variables */
    uint32_t words;             /* 64-bit words per column of bits */
    uint64_t *bits;             /* bit i of column j: pair (i, j), i >= j */
    Set last_a, last_b;         /* the last cross product recorded */
} Domains;

static uint32_t push(Domains *d, uint32_t v)
{
    if (d->npool == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        d->pool = xrealloc(d->pool, d->cap * sizeof *d->pool);
    }
    d->pool[d->npool] = v;
    return (uint32_t)d->npool++;
}

/* A ∪ B; one of them itself when the other is empty or equal. */
static Set unite(Domains *d, Set a, Set b)
{
    if (b.len == 0 || (a.off == b.off && a.len == b.len))
        return a;
    if (a.len == 0)
        return b;
    Set s = {(uint32_t)d->npool, 0};
    uint32_t i = 0, j = 0;
    while (i < a.len || j < b.len) {
        /* pool may move while pushing: index it afresh each time */
        uint32_t x = i < a.len ? d->pool[a.off + i] : UINT32_MAX;
        uint32_t y = j < b.len ? d->pool[b.off + j] : UINT32_MAX;
        push(d, x < y ? x : y);
        i += x <= y;
        j += y <= x;
        s.len++;
    }
    return s;
}

/* Records the interactions of every variable of a with every one of b. */
static void cross(Domains *d, Set a, Set b)
{
    if (a.len == 0 || b.len == 0)
        return;
    if (a.off == d->last_a.off && a.len == d->last_a.len && b.off == d->last_b.off &&
        b.len == d->last_b.len)
        return;                 /* a softmax's row: the same pairs again */
    d->last_a = a;
    d->last_b = b;
    for (uint32_t i = 0; i < a.len; i++)
        for (uint32_t j = 0; j < b.len; j++) {
            uint32_t x = d->pool[a.off + i], y = d->pool[b.off + j];
            uint32_t r = x > y ? x : y, c = x > y ? y : x;
            d->bits[(size_t)c * d->words + r / 64] |= 1ull << (r % 64);
        }
}

/* What kind of second derivatives an elementwise op has. */
enum { LINEAR, BILINEAR, QUOTIENT, NONLINEAR, FLAT };

static int kind(Op op)
{
    switch (op) {
    case OP_ADD: case OP_SUB: case OP_NEG:
    case OP_RELU: case OP_ABS: case OP_MAX: case OP_MIN:
        return LINEAR;          /* piecewise: 0 at the kinks by convention */
    case OP_MUL:
        return BILINEAR;
    case OP_DIV:
        return QUOTIENT;
    case OP_STEP: case OP_GE: case OP_SIGN:
        return FLAT;
    default:
        return NONLINEAR;
    }
}

static Set at(const Domains *d, NodeId id, uint32_t e)
{
    return d->g->node[id].shape.rank == 0 ? d->set[id][0] : d->set[id][e];
}

static void elementwise(Domains *d, NodeId id, Set *out)
{
    const Node *n = &d->g->node[id];
    int arity = op_info[n->op].arity, k = kind((Op)n->op);
    for (uint32_t e = 0; e < shape_size(n->shape); e++) {
        Set a = at(d, n->arg[0], e), b = arity > 1 ? at(d, n->arg[1], e) : (Set){0, 0};
        out[e] = k == FLAT ? (Set){0, 0} : unite(d, a, b);
        if (k == BILINEAR)
            cross(d, a, b);
        else if (k == QUOTIENT)
            cross(d, a, b), cross(d, b, b);
        else if (k == NONLINEAR)
            cross(d, out[e], out[e]);
    }
}

static uint32_t rowlen(Shape s)
{
    return s.rank == 2 ? s.dim[1] : 1;
}

static void matmul(Domains *d, const Node *n, Set *out)
{
    Shape sa = d->g->node[n->arg[0]].shape, sb = d->g->node[n->arg[1]].shape;
    const Set *A = d->set[n->arg[0]], *B = d->set[n->arg[1]];
    int ta = n->aux & 1, tb = n->aux & 2;
    uint32_t m = ta ? sa.dim[1] : sa.dim[0], k = ta ? sa.dim[0] : sa.dim[1];
    uint32_t ncol = sb.rank == 1 ? 1 : (tb ? sb.dim[0] : sb.dim[1]);
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < ncol; j++) {
            Set s = {0, 0};
            for (uint32_t p = 0; p < k; p++) {
                Set a = A[ta ? p * sa.dim[1] + i : i * sa.dim[1] + p];
                Set b = B[sb.rank == 1 ? p : tb ? j * sb.dim[1] + p : p * sb.dim[1] + j];
                cross(d, a, b);
                s = unite(d, unite(d, s, a), b);
            }
            out[i * ncol + j] = s;
        }
}

/* The index domains of a tensor op's elements: kernels.c's element
 * mappings, on sets. */
static void structured(Domains *d, NodeId id, Set *out)
{
    const Node *n = &d->g->node[id];
    Shape s0 = d->g->node[n->arg[0]].shape;
    const Set *A = d->set[n->arg[0]];
    uint32_t size = shape_size(n->shape), start = (uint32_t)n->aux, stride = (uint32_t)n->num;
    Set all = {0, 0};
    switch ((Op)n->op) {
    case OP_BCAST:
        for (uint32_t i = 0; i < size; i++)
            out[i] = A[0];
        break;
    case OP_SUM:
        for (uint32_t i = 0; i < shape_size(s0); i++)
            all = unite(d, all, A[i]);
        out[0] = all;
        break;
    case OP_MATMUL:
        matmul(d, n, out);
        break;
    case OP_OUTER: {
        const Set *B = d->set[n->arg[1]];
        uint32_t m = n->shape.dim[0], c = n->shape.dim[1];
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < c; j++) {
                cross(d, A[i], B[j]);
                out[i * c + j] = unite(d, A[i], B[j]);
            }
        break;
    }
    case OP_TRANSPOSE:
        for (uint32_t i = 0; i < s0.dim[0]; i++)
            for (uint32_t j = 0; j < s0.dim[1]; j++)
                out[j * s0.dim[0] + i] = A[i * s0.dim[1] + j];
        break;
    case OP_INDEX:
        memcpy(out, A + start * rowlen(s0), size * sizeof *out);
        break;
    case OP_SLICE: {
        uint32_t r = rowlen(s0);
        for (uint32_t k = 0; k < n->shape.dim[0]; k++)
            memcpy(out + k * r, A + (start + k * stride) * r, r * sizeof *out);
        break;
    }
    case OP_PAD: {
        uint32_t r = rowlen(n->shape), count = s0.rank == n->shape.rank ? s0.dim[0] : 1;
        memset(out, 0, size * sizeof *out);
        for (uint32_t k = 0; k < count; k++)
            memcpy(out + (start + k * stride) * r, A + k * r, r * sizeof *out);
        break;
    }
    case OP_VIEW:
        memcpy(out, A + start, size * sizeof *out);
        break;
    case OP_UNVIEW:
        memset(out, 0, size * sizeof *out);
        memcpy(out + start, A, shape_size(s0) * sizeof *out);
        break;
    case OP_SOFTMAX:
    case OP_LOGSUMEXP: {        /* every element of a row depends on the row */
        uint32_t rows = s0.rank == 2 ? s0.dim[0] : 1, len = shape_size(s0) / rows;
        for (uint32_t r = 0; r < rows; r++) {
            Set u = {0, 0};
            for (uint32_t i = 0; i < len; i++)
                u = unite(d, u, A[r * len + i]);
            cross(d, u, u);
            uint32_t per = n->op == OP_SOFTMAX ? len : 1;
            for (uint32_t i = 0; i < per; i++)
                out[r * per + i] = u;
        }
        break;
    }
    default:
        assert(!"sparsity rule missing for a tensor op");
    }
}

/* The pairs' bits as compressed lower-triangle columns. */
static void to_csc(const Domains *d, HessPattern *p)
{
    p->n = d->n;
    p->colptr = xmalloc(((size_t)d->n + 1) * sizeof *p->colptr);
    size_t nnz = 0;
    for (size_t w = 0; w < (size_t)d->n * d->words; w++)
        nnz += (size_t)__builtin_popcountll(d->bits[w]);
    p->rowind = xmalloc((nnz + 1) * sizeof *p->rowind);
    p->nnz = 0;
    for (uint32_t j = 0; j < d->n; j++) {
        p->colptr[j] = p->nnz;
        for (uint32_t w = 0; w < d->words; w++)
            for (uint64_t b = d->bits[(size_t)j * d->words + w]; b; b &= b - 1)
                p->rowind[p->nnz++] = w * 64 + (uint32_t)__builtin_ctzll(b);
    }
    p->colptr[d->n] = p->nnz;
}

void hess_pattern(const Graph *g, NodeId root, const NodeId *inputs, uint32_t ninputs,
                  HessPattern *p)
{
    Domains d = {.g = g};
    d.set = xcalloc((size_t)root + 1, sizeof *d.set);
    uint8_t *mark = xcalloc(g->n, 1);
    ir_mark_reachable(g, &root, 1, mark);
    for (uint32_t k = 0; k < ninputs; k++) {
        uint32_t size = shape_size(g->node[inputs[k]].shape);
        if (inputs[k] <= root && mark[inputs[k]]) {
            d.set[inputs[k]] = xmalloc(size * sizeof **d.set);
            for (uint32_t e = 0; e < size; e++)
                d.set[inputs[k]][e] = (Set){push(&d, d.n + e), 1};
        }
        d.n += size;
    }
    assert(d.n <= HESS_MAX_LEAVES);
    d.words = (d.n + 63) / 64;
    d.bits = xcalloc((size_t)d.n * d.words + 1, sizeof *d.bits);
    d.last_a.len = d.last_b.len = 0;
    for (NodeId i = 1; i <= root; i++) {
        const Node *n = &g->node[i];
        if (!mark[i] || d.set[i])
            continue;
        d.set[i] = xcalloc(shape_size(n->shape), sizeof **d.set);
        if (op_info[n->op].arity == 0)
            continue;           /* constants, other inputs: no variables */
        if (op_info[n->op].flags & OPF_ELEM)
            elementwise(&d, i, d.set[i]);
        else
            structured(&d, i, d.set[i]);
    }
    to_csc(&d, p);
    for (NodeId i = 0; i <= root; i++)
        free(d.set[i]);
    free(d.set);
    free(d.bits);
    free(d.pool);
    free(mark);
}

void hess_pattern_free(HessPattern *p)
{
    free(p->colptr);
    free(p->rowind);
    free(p->color);
    free(p->band);
    memset(p, 0, sizeof *p);
}

/* Greedy distance-2 colouring of the columns of the symmetric pattern:
 * columns j and k may share a colour when no row has nonzeros in both. */
static void color(HessPattern *p)
{
    uint32_t n = p->n;
    /* The full symmetric adjacency, from the lower triangle. */
    uint32_t *deg = xcalloc((size_t)n + 1, sizeof *deg);
    for (uint32_t j = 0; j < n; j++)
        for (uint32_t q = p->colptr[j]; q < p->colptr[j + 1]; q++) {
            deg[j]++;
            if (p->rowind[q] != j)
                deg[p->rowind[q]]++;
        }
    uint32_t *start = xmalloc(((size_t)n + 1) * sizeof *start);
    start[0] = 0;
    for (uint32_t j = 0; j < n; j++)
        start[j + 1] = start[j] + deg[j];
    uint32_t *adj = xmalloc(((size_t)start[n] + 1) * sizeof *adj);
    memset(deg, 0, n * sizeof *deg);
    for (uint32_t j = 0; j < n; j++)
        for (uint32_t q = p->colptr[j]; q < p->colptr[j + 1]; q++) {
            uint32_t i = p->rowind[q];
            adj[start[j] + deg[j]++] = i;
            if (i != j)
                adj[start[i] + deg[i]++] = j;
        }
    free(p->color);             /* hess_entries_by_slices may have coloured */
    p->color = xmalloc(((size_t)n + 1) * sizeof *p->color);
    uint32_t *stamp = xmalloc(((size_t)n + 1) * sizeof *stamp);
    for (uint32_t c = 0; c <= n; c++)
        stamp[c] = UINT32_MAX;
    p->ncolors = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (start[n] == (size_t)n * n) {        /* dense: one column each */
            p->color[j] = j;
            continue;
        }
        for (uint32_t a = start[j]; a < start[j + 1]; a++)
            for (uint32_t b = start[adj[a]]; b < start[adj[a] + 1]; b++)
                if (adj[b] < j)
                    stamp[p->color[adj[b]]] = j;
        uint32_t c = 0;
        while (stamp[c] == j)
            c++;
        p->color[j] = c;
    }
    for (uint32_t j = 0; j < n; j++)
        if (p->color[j] + 1 > p->ncolors)
            p->ncolors = p->color[j] + 1;
    free(deg);
    free(start);
    free(adj);
    free(stamp);
}

/* Element e of node t, as a scalar node. Sums, negations, paddings and
 * unviews are looked through: a gradient is a sum of padded pieces (one
 * per slice of the input), and reading an entry straight from the piece
 * that holds it keeps the emitter from materialising the padded arrays
 * and their zeros. Other nodes are indexed. */
static NodeId element(Graph *g, NodeId t, uint32_t e)
{
    const Node n = g->node[t];
    Shape s = n.shape, s0 = g->node[n.arg[0]].shape;
    if (s.rank == 0)
        return t;
    switch ((Op)n.op) {
    case OP_ADD:
    case OP_SUB: {
        NodeId a = n.arg[0], b = n.arg[1];
        a = g->node[a].shape.rank ? element(g, a, e) : a;
        b = g->node[b].shape.rank ? element(g, b, e) : b;
        return ir_op(g, (Op)n.op, a, b);
    }
    case OP_NEG:
        return ir_neg(g, element(g, n.arg[0], e));
    case OP_BCAST:
        return n.arg[0];
    case OP_PAD: {
        uint32_t r = rowlen(s), row = e / r, start = (uint32_t)n.aux, stride = (uint32_t)n.num;
        uint32_t count = s0.rank == s.rank ? s0.dim[0] : 1;
        if (row < start || (row - start) % stride || (row - start) / stride >= count)
            return ir_const(g, 0.0);
        uint32_t k = (row - start) / stride;
        return element(g, n.arg[0], s0.rank == s.rank ? k * r + e % r : e % r);
    }
    case OP_UNVIEW: {
        uint32_t off = (uint32_t)n.aux;
        if (e < off || e - off >= shape_size(s0))
            return ir_const(g, 0.0);
        return element(g, n.arg[0], e - off);
    }
    default:
        /* An INDEX node, not ir_index: that would push the index into an
         * elementwise vector and recompute it element by element, which
         * makes straight-line code as long as the vector loops are
         * (slow to compile at n = 1000, and slower to run). */
        if (s.rank == 2)
            t = ir_node(g, OP_INDEX, t, 0, (int32_t)(e / s.dim[1]), 0, shape_vec(s.dim[1])), e %= s.dim[1];
        return ir_node(g, OP_INDEX, t, 0, (int32_t)e, 0, SHAPE_SCALAR);
    }
}

void hess_entries(Graph *g, HessPattern *p, const NodeId *inputs, const NodeId *grad,
                  uint32_t ninputs, NodeId *val)
{
    color(p);
    uint32_t *off = xmalloc(((size_t)ninputs + 1) * sizeof *off);
    uint32_t *owner = xmalloc(((size_t)p->n + 1) * sizeof *owner);
    off[0] = 0;
    for (uint32_t k = 0; k < ninputs; k++) {
        uint32_t size = shape_size(g->node[inputs[k]].shape);
        off[k + 1] = off[k] + size;
        for (uint32_t e = 0; e < size; e++)
            owner[off[k] + e] = k;
    }
    NodeId *tangent = xmalloc(((size_t)ninputs + 1) * sizeof *tangent);
    NodeId *hv = xmalloc(((size_t)ninputs + 1) * sizeof *hv);
    double *unit = xmalloc(((size_t)p->n + 1) * sizeof *unit);
    for (uint32_t c = 0; c < p->ncolors; c++) {
        /* The direction: 1 on the columns of colour c that have entries
         * to read (leaving out the others changes no row of interest). */
        for (uint32_t k = 0; k < ninputs; k++) {
            Shape s = g->node[inputs[k]].shape;
            int any = 0;
            for (uint32_t e = off[k]; e < off[k + 1]; e++) {
                unit[e] = p->color[e] == c && p->colptr[e] < p->colptr[e + 1] ? 1.0 : 0.0;
                any |= unit[e] != 0.0;
            }
            tangent[k] = !any ? NODE_NONE : s.rank == 0 ? ir_const(g, 1.0)
                                                        : ir_tconst(g, s, unit + off[k]);
        }
        diff_forward(g, grad, ninputs, inputs, tangent, ninputs, hv);
        for (uint32_t j = 0; j < p->n; j++) {
            if (p->color[j] != c)
                continue;
            for (uint32_t q = p->colptr[j]; q < p->colptr[j + 1]; q++) {
                uint32_t i = p->rowind[q], k = owner[i];
                val[q] = element(g, hv[k], i - off[k]);
            }
        }
    }
    free(off);
    free(owner);
    free(tangent);
    free(hv);
    free(unit);
}

/* ---- per-slice sweeps for sums of elementwise terms ----
 * In a range sum every term reads the variables through slices (x[i],
 * x[i+1]) and computes elementwise, so element k of one slice interacts
 * only with element k of another. Then one sweep whose direction moves a
 * whole slice by 1 (a constant that folds everywhere) gives, for every
 * other slice Q, the vector of d2f / dP[k] dQ[k] for all k at once, and
 * each Hessian entry is a short sum of those. Two sweeps for chained
 * Rosenbrock, and no 0/1 direction vectors. */

typedef struct Leaf {
    NodeId id;                  /* the slice, index, or the input itself */
    uint32_t len, first, stride;   /* element k is variable first + k * stride */
} Leaf;

/* The leaves through which value reads the variables; 0 when some
 * variable is a matrix, or is read another way than slices, single
 * elements, or as a whole. */
static uint32_t leaves(const Graph *g, NodeId value, const NodeId *inputs, uint32_t ninputs,
                       Leaf *out, uint32_t max)
{
    uint8_t *mark = xcalloc(g->n, 1);
    ir_mark_reachable(g, &value, 1, mark);
    uint32_t *var = xcalloc(g->n, sizeof *var), n = 0, off = 0, ok = 1;
    for (uint32_t k = 0; k < ninputs; k++) {
        var[inputs[k]] = off + 1;
        ok &= g->node[inputs[k]].shape.rank < 2;
        off += shape_size(g->node[inputs[k]].shape);
    }
    uint8_t *whole = xcalloc(g->n, 1);
    for (NodeId i = 1; ok && i <= value; i++) {
        const Node *nd = &g->node[i];
        if (!mark[i])
            continue;
        for (int a = 0; a < op_info[nd->op].arity; a++) {
            NodeId x = nd->arg[a];
            if (!var[x])
                continue;
            if (nd->op == OP_SLICE && n < max)
                out[n++] = (Leaf){i, nd->shape.dim[0], var[x] - 1 + (uint32_t)nd->aux, (uint32_t)nd->num};
            else if (nd->op == OP_INDEX && n < max)
                out[n++] = (Leaf){i, 1, var[x] - 1 + (uint32_t)nd->aux, 1};
            else
                whole[x] = 1;
            if (nd->op == OP_SLICE || nd->op == OP_INDEX)
                whole[x] |= 2;
        }
    }
    /* An input read whole and through slices too: its adjoint would hold
     * the slices' part again (the leaves are not independent). */
    for (uint32_t k = 0; ok && k < ninputs; k++)
        ok &= whole[inputs[k]] != 3;
    for (uint32_t k = 0; ok && k < ninputs; k++)
        if ((whole[inputs[k]] == 1 || inputs[k] == value) && n < max)
            out[n++] = (Leaf){inputs[k], shape_size(g->node[inputs[k]].shape), var[inputs[k]] - 1, 1};
    free(mark);
    free(var);
    free(whole);
    return ok && n < max ? n : 0;
}

uint32_t hess_find(const HessPattern *p, uint32_t i, uint32_t j)
{
    uint32_t lo = p->colptr[j], hi = p->colptr[j + 1];
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->rowind[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->colptr[j + 1] && p->rowind[lo] == i ? lo : UINT32_MAX;
}

/* ---- bands: the entries of one diagonal as loops ----
 * With slices of stride 1 and one length L, the pair of slices P (from
 * variable a) and Q (from b <= a) gives the entries (b + k + (a - b),
 * b + k): L consecutive entries of the diagonal a - b. The pairs of one
 * diagonal together make a band (HessBand), whose entries are usually
 * spaced evenly in the pattern (banded patterns, one column after
 * another; else the emitted loop looks their places up) and no other
 * pair adds to them. */

typedef struct Contrib {
    NodeId v;                   /* the pair's vector, or the scalar it repeats */
    uint32_t col, diag, len;    /* element k: entry (col + k + diag, col + k) */
} Contrib;

/* h itself, or the one scalar every element of h is. */
static NodeId piece(Graph *g, NodeId h)
{
    const Node *n = &g->node[h];
    if (n->op == OP_BCAST && g->node[n->arg[0]].shape.rank == 0)
        return n->arg[0];
    if (n->op == OP_TCONST) {
        const double *v = ir_tconst_data(g, h);
        for (uint32_t i = 1; i < shape_size(n->shape); i++)
            if (memcmp(&v[i], &v[0], sizeof *v))
                return h;
        return ir_const(g, v[0]);
    }
    return h;
}

/* The band of the contributions of diagonal c[u].diag and length
 * c[u].len not yet used; 0 when it cannot be one. */
static int band_of(const HessPattern *p, const Contrib *c, uint32_t nc, uint32_t u,
                   uint8_t *used, HessBand *b)
{
    int ok = 1, affine = 1;
    memset(b, 0, sizeof *b);
    b->diag = c[u].diag;
    b->loop = c[u].len;
    b->col0 = UINT32_MAX;
    /* Pieces within REACH columns of the band's: each step between them
     * is a register carried along, so far apart ones (the diagonals of
     * two inputs) make bands of their own. */
    enum { REACH = 8 };
    uint32_t lo = c[u].col, hi = c[u].col;
    for (int grew = 1; grew;) {
        grew = 0;
        for (uint32_t w = u; w < nc; w++) {
            if (used[w] || c[w].diag != b->diag || c[w].len != b->loop ||
                c[w].col + REACH < lo || c[w].col > hi + REACH)
                continue;
            used[w] = 1;
            grew = 1;
            lo = c[w].col < lo ? c[w].col : lo;
            hi = c[w].col > hi ? c[w].col : hi;
        }
    }
    for (uint32_t w = u; w < nc; w++) {
        if (used[w] != 1)
            continue;
        used[w] = 2;            /* in index order: the entries' order of terms */
        if (b->npiece == HESS_BAND_PIECES) {
            ok = 0;
            continue;
        }
        b->v[b->npiece] = c[w].v;
        b->at[b->npiece++] = c[w].col;
        b->col0 = c[w].col < b->col0 ? c[w].col : b->col0;
    }
    for (uint32_t k = 0; k < b->npiece; k++) {
        b->at[k] -= b->col0;
        b->len = b->at[k] + b->loop > b->len ? b->at[k] + b->loop : b->len;
    }
    for (uint32_t t = 0; t < b->len && ok; t++) {
        uint32_t q = hess_find(p, b->col0 + t + b->diag, b->col0 + t), covered = 0;
        for (uint32_t k = 0; k < b->npiece; k++)
            covered |= t >= b->at[k] && t - b->at[k] < b->loop;
        if (t == 0)
            b->q0 = q;
        else if (t == 1)
            b->qstride = q - b->q0;
        affine &= t >= b->loop || q == b->q0 + b->qstride * t;
        ok = q != UINT32_MAX && covered;
    }
    if (!affine)
        b->qstride = 0;
    return ok;
}

/* p->band from the contributions; other[q]: entry q has terms of other
 * pairs, and no band may hold it. */
static void bands(HessPattern *p, const Contrib *c, uint32_t nc, const uint8_t *other)
{
    uint32_t *owner = xcalloc((size_t)p->nnz + 1, sizeof *owner);
    uint8_t *used = xcalloc((size_t)nc + 1, 1), *ok = xcalloc((size_t)nc + 1, 1);
    HessBand *band = xcalloc((size_t)nc + 1, sizeof *band);
    uint32_t nb = 0;
    for (uint32_t u = 0; u < nc; u++) {
        if (used[u])
            continue;
        ok[nb] = (uint8_t)band_of(p, c, nc, u, used, &band[nb]);
        for (uint32_t t = 0; ok[nb] && t < band[nb].len; t++) {
            uint32_t q = hess_find(p, band[nb].col0 + t + band[nb].diag, band[nb].col0 + t);
            owner[q] = owner[q] || other[q] ? UINT32_MAX : nb + 1;
        }
        nb++;
    }
    p->band = xcalloc((size_t)nb + 1, sizeof *p->band);
    p->nband = 0;
    for (uint32_t b = 0; b < nb; b++) {
        for (uint32_t t = 0; ok[b] && t < band[b].len; t++)
            ok[b] = owner[hess_find(p, band[b].col0 + t + band[b].diag, band[b].col0 + t)] == b + 1;
        if (ok[b])
            p->band[p->nband++] = band[b];
    }
    free(owner);
    free(used);
    free(ok);
    free(band);
}

int hess_entries_by_slices(Graph *g, NodeId value, HessPattern *p, const NodeId *inputs,
                           uint32_t ninputs, NodeId *val)
{
    enum { MAXLEAF = 64 };
    Leaf leaf[MAXLEAF];
    uint32_t nl = leaves(g, value, inputs, ninputs, leaf, MAXLEAF), total = 0;
    for (uint32_t a = 0; a < nl; a++)
        total += leaf[a].len;
    if (nl == 0 || total > HESS_MAX_LEAVES)
        return 0;
    /* The leaves' own pattern: every interaction must pair equal k. */
    NodeId ids[MAXLEAF];
    uint32_t start[MAXLEAF + 1];
    start[0] = 0;
    for (uint32_t a = 0; a < nl; a++) {
        ids[a] = leaf[a].id;
        start[a + 1] = start[a] + leaf[a].len;
    }
    HessPattern lp = {0};
    hess_pattern(g, value, ids, nl, &lp);
    uint8_t pairs[MAXLEAF][MAXLEAF];
    memset(pairs, 0, sizeof pairs);
    int diagonal = 1;
    uint32_t owner = 0;
    for (uint32_t c = 0; c < lp.n && diagonal; c++) {
        while (c >= start[owner + 1])
            owner++;
        for (uint32_t q = lp.colptr[c]; q < lp.colptr[c + 1]; q++) {
            uint32_t r = lp.rowind[q], ro = owner;
            while (r >= start[ro + 1])
                ro++;
            diagonal &= r - start[ro] == c - start[owner];
            pairs[ro][owner] = pairs[owner][ro] = 1;
        }
    }
    /* Worth it with fewer sweeps than colours (scalar variables are
     * leaves of one element each: colouring groups them), or as many when
     * every leaf is a vector: then the entries come in bands, loops. */
    uint32_t sweeps = 0, vectors = 1;
    for (uint32_t a = 0; a < nl; a++) {
        int any = 0;
        for (uint32_t b = 0; b < nl; b++)
            any |= pairs[a][b];
        sweeps += any;
        vectors &= !any || leaf[a].len > 1;
    }
    if (diagonal)
        color(p);
    if (!diagonal || sweeps > p->ncolors || (sweeps == p->ncolors && !vectors)) {
        hess_pattern_free(&lp);
        return 0;
    }
    NodeId adj[MAXLEAF], tan[MAXLEAF], h[MAXLEAF];
    diff_reverse(g, value, NODE_NONE, ids, nl, adj);
    for (uint32_t q = 0; q < p->nnz; q++)
        val[q] = NODE_NONE;
    Contrib *contrib = xmalloc(MAXLEAF * MAXLEAF * sizeof *contrib);
    uint8_t *other = xcalloc((size_t)p->nnz + 1, 1);
    uint32_t ncontrib = 0;
    p->ncolors = 0;
    for (uint32_t a = 0; a < nl; a++) {
        int any = 0;
        for (uint32_t b = 0; b < nl; b++) {
            tan[b] = NODE_NONE;
            any |= pairs[a][b];
        }
        if (!any)
            continue;
        p->ncolors++;
        tan[a] = ir_bcast(g, ir_const(g, 1.0), g->node[ids[a]].shape);
        diff_forward(g, adj, nl, ids, tan, nl, h);
        for (uint32_t b = 0; b < nl; b++) {
            if (!pairs[a][b])
                continue;
            uint32_t len = leaf[a].len < leaf[b].len ? leaf[a].len : leaf[b].len, all = 1;
            for (uint32_t k = 0; k < len; k++)
                all &= hess_find(&lp, start[a] + k > start[b] + k ? start[a] + k : start[b] + k,
                                 start[a] + k > start[b] + k ? start[b] + k : start[a] + k) != UINT32_MAX;
            /* A band's part: stride 1, one length, every element. */
            int banded = all && leaf[a].stride == 1 && leaf[b].stride == 1 && len > 1 &&
                         leaf[a].len == leaf[b].len && leaf[a].first >= leaf[b].first;
            if (banded)
                contrib[ncontrib++] = (Contrib){piece(g, h[b]), leaf[b].first,
                                                leaf[a].first - leaf[b].first, len};
            for (uint32_t k = 0; k < len; k++) {
                if (hess_find(&lp, start[a] + k > start[b] + k ? start[a] + k : start[b] + k,
                         start[a] + k > start[b] + k ? start[b] + k : start[a] + k) == UINT32_MAX)
                    continue;   /* these elements do not interact */
                uint32_t i = leaf[a].first + k * leaf[a].stride, j = leaf[b].first + k * leaf[b].stride;
                if (i < j)
                    continue;   /* the mirror image: (b, a) gives it */
                uint32_t q = hess_find(p, i, j);
                assert(q != UINT32_MAX);
                other[q] |= !banded;
                NodeId e = element(g, h[b], k);
                val[q] = val[q] == NODE_NONE ? e : ir_add(g, val[q], e);
            }
        }
    }
    for (uint32_t q = 0; q < p->nnz; q++)
        if (val[q] == NODE_NONE)
            val[q] = ir_const(g, 0.0);
    bands(p, contrib, ncontrib, other);
    free(contrib);
    free(other);
    hess_pattern_free(&lp);
    return 1;
}

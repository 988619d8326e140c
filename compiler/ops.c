/* ops.c — one row per IR operation: how it evaluates (constant folding and
 * the reference interpreter), how it is spelled in C, and its reverse-mode
 * rule. The C templates and eval functions must agree bit for bit, since
 * tests compare generated code with the interpreter.
 *
 * Conventions at non-differentiable points (documented in docs/language.md):
 * relu'(0) = 0; max/min give the whole gradient to the first argument on a
 * tie; abs'(0) = 0; step' = 0 everywhere. */
#include "gradc.h"

#include <math.h>
#include <string.h>

/* ---- evaluation ---- */
static double ev_none(const double *a) { (void)a; return NAN; }
static double ev_add(const double *a) { return a[0] + a[1]; }
static double ev_sub(const double *a) { return a[0] - a[1]; }
static double ev_mul(const double *a) { return a[0] * a[1]; }
static double ev_div(const double *a) { return a[0] / a[1]; }
static double ev_neg(const double *a) { return -a[0]; }
/* pow(x, 2) is emitted as x*x; both are correctly rounded, so they agree. */
static double ev_pow(const double *a) { return a[1] == 2.0 ? a[0] * a[0] : pow(a[0], a[1]); }
static double ev_exp(const double *a) { return exp(a[0]); }
static double ev_log(const double *a) { return log(a[0]); }
static double ev_log1p(const double *a) { return log1p(a[0]); }
static double ev_expm1(const double *a) { return expm1(a[0]); }
static double ev_sqrt(const double *a) { return sqrt(a[0]); }
static double ev_sin(const double *a) { return sin(a[0]); }
static double ev_cos(const double *a) { return cos(a[0]); }
static double ev_tan(const double *a) { return tan(a[0]); }
static double ev_asin(const double *a) { return asin(a[0]); }
static double ev_acos(const double *a) { return acos(a[0]); }
static double ev_atan(const double *a) { return atan(a[0]); }
static double ev_atan2(const double *a) { return atan2(a[0], a[1]); }
static double ev_sinh(const double *a) { return sinh(a[0]); }
static double ev_cosh(const double *a) { return cosh(a[0]); }
static double ev_tanh(const double *a) { return tanh(a[0]); }
static double ev_hypot(const double *a) { return hypot(a[0], a[1]); }
static double ev_erf(const double *a) { return erf(a[0]); }
/* Stable: never exponentiates a large positive number. */
static double ev_sigmoid(const double *a)
{
    return a[0] >= 0.0 ? 1.0 / (1.0 + exp(-a[0])) : exp(a[0]) / (1.0 + exp(a[0]));
}
/* log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)). */
static double ev_softplus(const double *a)
{
    return (a[0] < 0.0 ? 0.0 : a[0]) + log1p(exp(-fabs(a[0])));
}
/* NaN propagates through relu, max and min (comparisons with NaN are false). */
static double ev_relu(const double *a) { return a[0] < 0.0 ? 0.0 : a[0]; }
static double ev_abs(const double *a) { return fabs(a[0]); }
static double ev_max(const double *a) { return (a[0] != a[0] || a[0] >= a[1]) ? a[0] : a[1]; }
static double ev_min(const double *a) { return (a[0] != a[0] || a[0] <= a[1]) ? a[0] : a[1]; }
static double ev_step(const double *a) { return a[0] > 0.0 ? 1.0 : 0.0; }
static double ev_ge(const double *a) { return a[0] >= a[1] ? 1.0 : 0.0; }
static double ev_sign(const double *a) { return (double)((a[0] > 0.0) - (a[0] < 0.0)); }

/* ---- reverse-mode rules: v->c[i] = contribution to operand i's adjoint ----
 * A binary rule builds only the contributions v->want asks for (the
 * other operand is often a constant). A contribution -x is returned as x
 * with v->neg set, unmade: see Vjp. */
#define A(k) (g->node[n].arg[k])
#define C(v) ir_const(g, (v))

/* Sets operand k's contribution to -x. */
static void negated(Vjp *v, int k, NodeId x)
{
    v->c[k] = x;
    v->neg[k] = 1;
}

NodeId vjp_value(Graph *g, const Vjp *v, int k)
{
    return v->neg[k] ? ir_neg(g, v->c[k]) : v->c[k];
}

static void d_none(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    (void)g; (void)n; (void)adj; (void)v;
}
static void d_add(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    (void)g; (void)n;
    v->c[0] = adj;
    v->c[1] = adj;
}
static void d_sub(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    (void)g; (void)n;
    v->c[0] = adj;
    negated(v, 1, adj);
}
static void d_mul(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId a = A(0), b = A(1);
    if (v->want[0])
        v->c[0] = ir_mul(g, adj, b);
    if (v->want[1])
        v->c[1] = ir_mul(g, adj, a);
}
/* d(a/b)/db = -a/b^2 = -(a/b)/b: reuses the forward value. */
static void d_div(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId b = A(1);
    if (v->want[0])
        v->c[0] = ir_div(g, adj, b);
    if (v->want[1])
        negated(v, 1, ir_mul(g, adj, ir_div(g, n, b)));
}
static void d_neg(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    (void)g; (void)n;
    negated(v, 0, adj);
}
/* d(a^b)/da = b*a^(b-1); d(a^b)/db = a^b*log(a), only when b varies. */
static void d_pow(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId a = A(0), b = A(1);
    NodeId bm1 = v->want[0] ? ir_sub(g, b, C(1.0)) : NODE_NONE;
    if (v->want[0])
        v->c[0] = ir_mul(g, adj, ir_mul(g, b, ir_op(g, OP_POW, a, bm1)));
    if (v->want[1] && g->node[b].op != OP_CONST)
        v->c[1] = ir_mul(g, adj, ir_mul(g, n, ir_op(g, OP_LOG, a, 0)));
}
static void d_exp(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, n);
}
static void d_log(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_div(g, adj, A(0));
}
static void d_log1p(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_div(g, adj, ir_add(g, C(1.0), A(0)));
}
static void d_expm1(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_add(g, n, C(1.0)));
}
static void d_sqrt(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_div(g, adj, ir_mul(g, C(2.0), n));
}
static void d_sin(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_op(g, OP_COS, A(0), 0));
}
static void d_cos(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    negated(v, 0, ir_mul(g, adj, ir_op(g, OP_SIN, A(0), 0)));
}
static void d_tan(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_add(g, C(1.0), ir_mul(g, n, n)));
}
static NodeId one_minus_sq(Graph *g, NodeId x)
{
    return ir_sub(g, C(1.0), ir_mul(g, x, x));
}
static void d_asin(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_div(g, adj, ir_op(g, OP_SQRT, one_minus_sq(g, A(0)), 0));
}
static void d_acos(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    negated(v, 0, ir_div(g, adj, ir_op(g, OP_SQRT, one_minus_sq(g, A(0)), 0)));
}
static void d_atan(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId x = A(0);
    v->c[0] = ir_div(g, adj, ir_add(g, C(1.0), ir_mul(g, x, x)));
}
/* atan2(y, x): dy = x/(x^2+y^2), dx = -y/(x^2+y^2). */
static void d_atan2(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId y = A(0), x = A(1);
    NodeId r = ir_add(g, ir_mul(g, x, x), ir_mul(g, y, y));
    NodeId s = ir_div(g, adj, r);
    if (v->want[0])
        v->c[0] = ir_mul(g, s, x);
    if (v->want[1])
        negated(v, 1, ir_mul(g, s, y));
}
static void d_sinh(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_op(g, OP_COSH, A(0), 0));
}
static void d_cosh(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_op(g, OP_SINH, A(0), 0));
}
static void d_tanh(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, one_minus_sq(g, n));
}
static void d_hypot(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId s = ir_div(g, adj, n);
    if (v->want[0])
        v->c[0] = ir_mul(g, s, A(0));
    if (v->want[1])
        v->c[1] = ir_mul(g, s, A(1));
}
static void d_erf(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId x = A(0);
    NodeId e = ir_op(g, OP_EXP, ir_neg(g, ir_mul(g, x, x)), 0);
    v->c[0] = ir_mul(g, adj, ir_mul(g, C(1.1283791670955126), e)); /* 2/sqrt(pi) */
}
static void d_sigmoid(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_mul(g, n, ir_sub(g, C(1.0), n)));
}
static void d_softplus(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_op(g, OP_SIGMOID, A(0), 0));
}
static void d_relu(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_op(g, OP_STEP, A(0), 0));
}
static void d_abs(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_mul(g, adj, ir_op(g, OP_SIGN, A(0), 0));
}
/* Ties go to the first argument: max(a, b) picks a when a >= b. */
static void d_max(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId first = ir_op(g, OP_GE, A(0), A(1));
    if (v->want[0])
        v->c[0] = ir_mul(g, adj, first);
    if (v->want[1])
        v->c[1] = ir_mul(g, adj, ir_sub(g, C(1.0), first));
}
static void d_min(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId first = ir_op(g, OP_GE, A(1), A(0));
    if (v->want[0])
        v->c[0] = ir_mul(g, adj, first);
    if (v->want[1])
        v->c[1] = ir_mul(g, adj, ir_sub(g, C(1.0), first));
}

/* ---- tensor operations ---- */
#define SHAPE(id) (g->node[id].shape)

static void d_bcast(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    (void)n;
    v->c[0] = ir_sum(g, adj);
}
static void d_sum(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_bcast(g, adj, SHAPE(A(0)));
}
/* C = op(A) op(B): d op(A) = adj op(B)^T, d op(B) = op(A)^T adj, then
 * transposed back where A or B entered transposed. Vectors (B of rank 1)
 * give the outer product and the transposed matrix-vector product. */
static void d_matmul(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    NodeId a = A(0), b = A(1);
    int t = g->node[n].aux, ta = t & 1, tb = t & 2;
    if (SHAPE(b).rank == 1) {
        if (v->want[0])
            v->c[0] = ta ? ir_outer(g, b, adj) : ir_outer(g, adj, b);
        if (v->want[1])
            v->c[1] = ir_matmul(g, a, adj, ta ? 0 : 1);
        return;
    }
    if (v->want[0])
        v->c[0] = ta ? ir_matmul(g, b, adj, (tb ? 1 : 0) | 2) : ir_matmul(g, adj, b, tb ? 0 : 2);
    if (v->want[1])
        v->c[1] = tb ? ir_matmul(g, adj, a, 1 | (ta ? 2 : 0)) : ir_matmul(g, a, adj, ta ? 0 : 1);
}
static void d_outer(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    if (v->want[0])
        v->c[0] = ir_matmul(g, adj, A(1), 0);
    if (v->want[1])
        v->c[1] = ir_matmul(g, adj, A(0), 1);
}
static void d_transpose(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    (void)n;
    v->c[0] = ir_transpose(g, adj);
}
static void d_index(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_pad(g, adj, (uint32_t)g->node[n].aux, 1, SHAPE(A(0)));
}
static void d_slice(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    const Node *nd = &g->node[n];
    v->c[0] = ir_pad(g, adj, (uint32_t)nd->aux, (uint32_t)nd->num, SHAPE(nd->arg[0]));
}
static void d_pad(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    const Node *nd = &g->node[n];
    Shape s = SHAPE(nd->arg[0]);
    if (s.rank < nd->shape.rank)
        v->c[0] = ir_index(g, adj, (uint32_t)nd->aux);
    else
        v->c[0] = ir_slice(g, adj, (uint32_t)nd->aux, s.dim[0], (uint32_t)nd->num);
}
/* The k of a constant vector e_k (1 at k, +0 elsewhere), or UINT32_MAX. */
static uint32_t unit_position(const Graph *g, NodeId id)
{
    const Node *nd = &g->node[id];
    if (nd->op != OP_TCONST || nd->shape.rank != 1)
        return UINT32_MAX;
    const double *v = ir_tconst_data(g, id);
    uint32_t k = UINT32_MAX;
    for (uint32_t i = 0; i < nd->shape.dim[0]; i++) {
        if (v[i] == 1.0 && k == UINT32_MAX)
            k = i;
        else if (!(v[i] == 0.0 && !signbit(v[i])))
            return UINT32_MAX;
    }
    return k;
}

/* The softmax VJP s * (g - <s, g>), without forming the Jacobian. */
static void d_softmax(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    Shape s = SHAPE(n);
    if (s.rank == 2) {          /* row by row: <s, g> of each row */
        NodeId dots = ir_matmul(g, ir_mul(g, n, adj), ir_ones(g, s.dim[1]), 0);
        v->c[0] = ir_mul(g, n, ir_sub(g, adj, ir_rows(g, dots, s.dim[1])));
        return;
    }
    /* A unit seed e_k (a Jacobian row) makes <s, e_k> = s[k] exactly: a
     * softmax is all finite and non-negative (each 0*s_j is +0) or all
     * NaN, and then both are NaN. */
    uint32_t k = unit_position(g, adj);
    NodeId dot = k != UINT32_MAX ? ir_index(g, n, k) : ir_sum(g, ir_mul(g, n, adj));
    v->c[0] = ir_mul(g, n, ir_sub(g, adj, dot));
}
static void d_logsumexp(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    Shape s = SHAPE(A(0));
    NodeId a = s.rank == 2 ? ir_rows(g, adj, s.dim[1]) : adj;
    v->c[0] = ir_mul(g, a, ir_softmax(g, A(0)));
}
static void d_view(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_node(g, OP_UNVIEW, adj, 0, g->node[n].aux, 0, SHAPE(A(0)));
}
static void d_unview(Graph *g, NodeId n, NodeId adj, Vjp *v)
{
    v->c[0] = ir_view(g, adj, (uint32_t)g->node[n].aux, SHAPE(A(0)));
}
#undef SHAPE

#undef A
#undef C

/* At most two operands: ir.c, diff.c and opt.c read arg[0] and arg[1]. */
#define OP(id, nm, ar, fl, ev, vjp, c) _Static_assert(ar <= 2, #id ": more than two operands");
#include "ops.h"
#undef OP

/* ---- the table, built from the rows of ops.h ---- */
const OpInfo op_info[OP_COUNT] = {
#define OP(id, nm, ar, fl, ev, vjp, c) [OP_##id] = {nm, ar, fl, ev, c, vjp},
#include "ops.h"
#undef OP
};

int op_lookup_call(const char *name)
{
    for (int i = 0; i < OP_COUNT; i++)
        if ((op_info[i].flags & OPF_CALL) && strcmp(op_info[i].name, name) == 0)
            return i;
    return -1;
}

/* kernels.c — the values of operations on whole tensors, used by constant
 * folding and the reference interpreter. The emitted C (emit_c.c) must
 * compute the same thing; the generated-vs-interpreter tests hold the two
 * together. Softmax and logsumexp subtract the maximum first, so large
 * inputs do not overflow. */
#include "gradc.h"

#include <math.h>
#include <string.h>

static void elementwise(const Graph *g, const Node *n, const double *const *a, double *out)
{
    uint32_t size = shape_size(n->shape);
    int arity = op_info[n->op].arity;
    int s0 = g->node[n->arg[0]].shape.rank == 0;
    int s1 = arity < 2 || g->node[n->arg[1]].shape.rank == 0;
    double (*ev)(const double *) = op_info[n->op].eval;
    for (uint32_t i = 0; i < size; i++) {
        double x[2] = {a[0][s0 ? 0 : i], arity > 1 ? a[1][s1 ? 0 : i] : 0};
        out[i] = ev(x);
    }
}

static void matmul(const Graph *g, const Node *n, const double *A, const double *B, double *out)
{
    Shape sa = g->node[n->arg[0]].shape, sb = g->node[n->arg[1]].shape;
    int ta = n->aux & 1, tb = n->aux & 2;
    uint32_t m = ta ? sa.dim[1] : sa.dim[0], k = ta ? sa.dim[0] : sa.dim[1];
    uint32_t ncol = sb.rank == 1 ? 1 : (tb ? sb.dim[0] : sb.dim[1]);
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < ncol; j++) {
            double s = 0;
            for (uint32_t p = 0; p < k; p++) {
                double av = ta ? A[p * sa.dim[1] + i] : A[i * sa.dim[1] + p];
                double bv = sb.rank == 1 ? B[p] : tb ? B[j * sb.dim[1] + p] : B[p * sb.dim[1] + j];
                s += av * bv;
            }
            out[i * ncol + j] = s;
        }
}

/* Row size and count of the dimension-0 rows that SLICE/PAD/INDEX move. */
static uint32_t row_size(Shape s)
{
    return s.rank == 2 ? s.dim[1] : 1;
}

/* exp(x - max) times 1/sum: one more rounding than dividing (below the
 * error of exp and of the sum), but a multiplication per element instead
 * of a division (W3b: 7.1 -> 8.7 us with divisions; emit_c.c agrees). The
 * sum is 1 or more, so 1/s neither overflows nor underflows. */
static void softmax(const double *x, uint32_t n, double *out)
{
    double m = -INFINITY, s = 0;
    for (uint32_t i = 0; i < n; i++)
        if (x[i] > m || x[i] != x[i])
            m = x[i];
    for (uint32_t i = 0; i < n; i++)
        s += out[i] = exp(x[i] - m);
    double q = 1.0 / s;
    for (uint32_t i = 0; i < n; i++)
        out[i] *= q;
}

static double logsumexp(const double *x, uint32_t n)
{
    double m = -INFINITY, s = 0;
    for (uint32_t i = 0; i < n; i++)
        if (x[i] > m || x[i] != x[i])
            m = x[i];
    if (isinf(m))
        return m;
    for (uint32_t i = 0; i < n; i++)
        s += exp(x[i] - m);
    return m + log(s);
}

void kern_eval(const Graph *g, const Node *n, const double *const *a, double *out)
{
    Shape s0 = g->node[n->arg[0]].shape;
    uint32_t size = shape_size(n->shape);
    uint32_t stride = (uint32_t)n->num, start = (uint32_t)n->aux;
    if (op_info[n->op].flags & OPF_ELEM) {
        elementwise(g, n, a, out);
        return;
    }
    switch ((Op)n->op) {
    case OP_BCAST:
        for (uint32_t i = 0; i < size; i++)
            out[i] = a[0][0];
        break;
    case OP_SUM: {
        double s = 0;
        for (uint32_t i = 0; i < shape_size(s0); i++)
            s += a[0][i];
        out[0] = s;
        break;
    }
    case OP_MATMUL:
        matmul(g, n, a[0], a[1], out);
        break;
    case OP_OUTER: {
        uint32_t m = n->shape.dim[0], c = n->shape.dim[1];
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < c; j++)
                out[i * c + j] = a[0][i] * a[1][j];
        break;
    }
    case OP_TRANSPOSE:
        for (uint32_t i = 0; i < s0.dim[0]; i++)
            for (uint32_t j = 0; j < s0.dim[1]; j++)
                out[j * s0.dim[0] + i] = a[0][i * s0.dim[1] + j];
        break;
    case OP_INDEX:
        memcpy(out, a[0] + start * row_size(s0), size * sizeof *out);
        break;
    case OP_SLICE: {
        uint32_t r = row_size(s0);
        for (uint32_t k = 0; k < n->shape.dim[0]; k++)
            memcpy(out + k * r, a[0] + (start + k * stride) * r, r * sizeof *out);
        break;
    }
    case OP_PAD: {
        uint32_t r = row_size(n->shape);
        uint32_t count = s0.rank == n->shape.rank ? s0.dim[0] : 1;
        memset(out, 0, size * sizeof *out);
        for (uint32_t k = 0; k < count; k++)
            memcpy(out + (start + k * stride) * r, a[0] + k * r, r * sizeof *out);
        break;
    }
    case OP_VIEW:
        memcpy(out, a[0] + start, size * sizeof *out);
        break;
    case OP_UNVIEW:
        memset(out, 0, size * sizeof *out);
        memcpy(out + start, a[0], shape_size(s0) * sizeof *out);
        break;
    case OP_SOFTMAX:            /* of a matrix: row by row */
        for (uint32_t r = 0; r < (s0.rank == 2 ? s0.dim[0] : 1); r++)
            softmax(a[0] + r * row_size(s0), s0.rank == 2 ? s0.dim[1] : s0.dim[0],
                    out + r * row_size(s0));
        break;
    case OP_LOGSUMEXP:
        for (uint32_t r = 0; r < (s0.rank == 2 ? s0.dim[0] : 1); r++)
            out[r] = logsumexp(a[0] + r * row_size(s0), s0.rank == 2 ? s0.dim[1] : shape_size(s0));
        break;
    default:
        memset(out, 0, size * sizeof *out);
        break;
    }
}

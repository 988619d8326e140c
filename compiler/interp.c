/* interp.c — the reference interpreter: evaluates IR nodes in index order
 * with the functions constant folding uses (ops.c for scalars, kernels.c
 * for tensors). Tests compare the generated C against it. */
#include "gradc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void interp_eval(const Graph *g, const NodeId *inputs, const double *in,
                 uint32_t ninputs, const NodeId *roots, uint32_t nroots,
                 double *out)
{
    uint8_t *mark = xmalloc(g->n);
    double **val = xmalloc(g->n * sizeof *val);
    memset(val, 0, g->n * sizeof *val);
    ir_mark_reachable(g, roots, nroots, mark);
    for (uint32_t k = 0; k < ninputs; k++) {
        uint32_t size = shape_size(g->node[inputs[k]].shape);
        if (!val[inputs[k]]) {
            val[inputs[k]] = xmalloc(size * sizeof **val);
            memcpy(val[inputs[k]], in, size * sizeof *in);
        }
        in += size;
    }
    for (NodeId i = 1; i < g->n; i++) {
        const Node *n = &g->node[i];
        if (!mark[i] || val[i])
            continue;
        uint32_t size = shape_size(n->shape);
        val[i] = xmalloc(size * sizeof **val);
        if (n->op == OP_CONST) {
            val[i][0] = n->num;
        } else if (n->op == OP_TCONST) {
            memcpy(val[i], ir_tconst_data(g, i), size * sizeof **val);
        } else if (n->op == OP_INPUT) {
            for (uint32_t e = 0; e < size; e++)
                val[i][e] = NAN;    /* an input nobody gave a value */
        } else {
            const double *args[2] = {val[n->arg[0]], val[n->arg[1]]};
            kern_eval(g, n, args, val[i]);
        }
    }
    for (uint32_t k = 0; k < nroots; k++) {
        uint32_t size = shape_size(g->node[roots[k]].shape);
        memcpy(out, val[roots[k]], size * sizeof *out);
        out += size;
    }
    for (NodeId i = 0; i < g->n; i++)
        free(val[i]);
    free(val);
    free(mark);
}

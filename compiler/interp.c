/* interp.c — the reference interpreter: evaluates IR nodes in index order
 * with the same eval functions that constant folding uses. Tests compare
 * the generated C against it. */
#include "gradc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void interp_eval(const Graph *g, const NodeId *inputs, const double *in,
                 uint32_t ninputs, const NodeId *roots, uint32_t nroots,
                 double *out)
{
    uint8_t *mark = xmalloc(g->n);
    double *val = xmalloc(g->n * sizeof *val);
    ir_mark_reachable(g, roots, nroots, mark);
    for (NodeId i = 0; i < g->n; i++)
        val[i] = NAN;
    for (uint32_t k = 0; k < ninputs; k++)
        val[inputs[k]] = in[k];
    for (NodeId i = 1; i < g->n; i++) {
        if (!mark[i])
            continue;
        const Node *n = &g->node[i];
        if (n->op == OP_CONST) {
            val[i] = n->num;
        } else if (n->op != OP_INPUT) {
            double a[2] = {val[n->arg[0]], val[n->arg[1]]};
            val[i] = op_info[n->op].eval(a);
        }
    }
    for (uint32_t k = 0; k < nroots; k++)
        out[k] = val[roots[k]];
    free(val);
    free(mark);
}

/* opt.c — from a parsed function to a kernel ready for emission: the
 * gradient is added (diff.c), then only what the entry points reach is
 * copied into a fresh graph, in depth-first post-order from the roots.
 * That is dead-code elimination, and it also makes the numbering (and so
 * the IR text used as a cache key) depend only on the formula's structure,
 * not on spacing, definition order or other functions in the file. */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Frame {
    NodeId id;
    int next;                   /* next operand to visit */
} Frame;

/* Copies the subgraph of src reachable from roots into dst; map[] (src->n
 * entries, 0 = not yet copied) receives the new ids. Iterative, so deep
 * graphs cannot overflow the C stack. */
static void copy_postorder(const Graph *src, Graph *dst, const NodeId *roots,
                           uint32_t nroots, NodeId *map)
{
    Frame *stack = xmalloc(src->n * sizeof *stack);
    for (uint32_t r = 0; r < nroots; r++) {
        if (map[roots[r]])
            continue;
        uint32_t sp = 0;
        stack[sp++] = (Frame){roots[r], 0};
        while (sp > 0) {
            Frame *f = &stack[sp - 1];
            const Node *n = &src->node[f->id];
            if (f->next < op_info[n->op].arity) {
                NodeId a = n->arg[f->next++];
                if (!map[a])
                    stack[sp++] = (Frame){a, 0};
                continue;
            }
            if (n->op == OP_CONST)
                map[f->id] = ir_const(dst, n->num);
            else if (n->op == OP_TCONST)
                map[f->id] = ir_tconst(dst, n->shape, ir_tconst_data(src, f->id));
            else if (!map[f->id])
                map[f->id] = ir_node(dst, (Op)n->op, map[n->arg[0]],
                                     op_info[n->op].arity > 1 ? map[n->arg[1]] : 0,
                                     n->aux, n->num, n->shape);
            sp--;
        }
    }
    free(stack);
}

Kernel *opt_kernel(Program *p, const Func *f, int want_grad)
{
    Graph *g = p->g;
    Kernel *k = xmalloc(sizeof *k);
    memset(k, 0, sizeof *k);
    k->name = f->name;
    k->ninputs = f->ninputs;
    k->input_name = f->input_name;
    k->nparams = f->nparams;
    uint32_t nroots = 1 + (want_grad ? f->ninputs : 0);
    NodeId *roots = xmalloc(nroots * sizeof *roots);
    roots[0] = f->result;
    NodeId seed = NODE_NONE;
    if (want_grad && g->node[f->result].shape.rank > 0)
        seed = ir_input(g, g->node[f->result].shape);
    if (want_grad)
        diff_reverse(g, f->result, seed, f->input, f->ninputs, roots + 1);

    k->g = ir_new();
    NodeId *map = xmalloc(g->n * sizeof *map);
    memset(map, 0, g->n * sizeof *map);
    k->input = xmalloc((f->ninputs + 1) * sizeof *k->input);
    for (uint32_t i = 0; i < f->ninputs; i++)
        map[f->input[i]] = k->input[i] = ir_input(k->g, g->node[f->input[i]].shape);
    if (seed != NODE_NONE)
        map[seed] = k->seed = ir_input(k->g, g->node[seed].shape);
    copy_postorder(g, k->g, roots, nroots, map);
    k->value = map[roots[0]];
    if (want_grad) {
        k->grad = xmalloc((f->ninputs + 1) * sizeof *k->grad);
        for (uint32_t i = 0; i < f->ninputs; i++)
            k->grad[i] = map[roots[1 + i]];
    }
    free(map);
    free(roots);
    return k;
}

void kernel_free(Kernel *k)
{
    if (!k)
        return;
    ir_free(k->g);
    free(k->input);
    free(k->grad);
    free(k);
}

void kernel_dump(const Kernel *k, Buf *out)
{
    char sh[48];
    buf_printf(out, "function %s(", k->name);
    for (uint32_t i = 0; i < k->ninputs; i++) {
        Shape s = k->g->node[k->input[i]].shape;
        buf_printf(out, "%s%s%s", i ? ", " : "", k->input_name[i],
                   s.rank ? shape_str(s, sh) : "");
    }
    buf_printf(out, ")%s\n", k->nparams ? " params" : "");
    for (NodeId i = 1; i < k->g->n; i++) {
        buf_printf(out, "  %%%u = ", i);
        ir_print_node(k->g, i, out);
        buf_puts(out, "\n");
    }
    buf_printf(out, "  value %%%u\n", k->value);
    if (k->grad)
        for (uint32_t i = 0; i < k->ninputs; i++)
            buf_printf(out, "  %s %s %%%u\n", k->seed ? "vjp" : "grad",
                       k->input_name[i], k->grad[i]);
}

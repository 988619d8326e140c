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
            else if (!map[f->id])
                map[f->id] = ir_op(dst, (Op)n->op, map[n->arg[0]],
                                   op_info[n->op].arity > 1 ? map[n->arg[1]] : 0);
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
    uint32_t nroots = 1 + (want_grad ? f->ninputs : 0);
    NodeId *roots = xmalloc(nroots * sizeof *roots);
    roots[0] = f->result;
    if (want_grad)
        diff_reverse(g, f->result, f->input, f->ninputs, roots + 1);

    k->g = ir_new();
    NodeId *map = xmalloc(g->n * sizeof *map);
    memset(map, 0, g->n * sizeof *map);
    k->input = xmalloc((f->ninputs + 1) * sizeof *k->input);
    for (uint32_t i = 0; i < f->ninputs; i++)
        map[f->input[i]] = k->input[i] = ir_input(k->g);
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
    buf_printf(out, "function %s(", k->name);
    for (uint32_t i = 0; i < k->ninputs; i++)
        buf_printf(out, "%s%s", i ? ", " : "", k->input_name[i]);
    buf_puts(out, ")\n");
    for (NodeId i = 1; i < k->g->n; i++) {
        const Node *n = &k->g->node[i];
        buf_printf(out, "  %%%u = %s", i, op_info[n->op].name);
        if (n->op == OP_CONST) {
            char num[32];
            num_format(n->num, num);
            buf_printf(out, " %s", num);
        } else if (n->op == OP_INPUT) {
            buf_printf(out, " %d", n->aux);
        }
        for (int a = 0; a < op_info[n->op].arity; a++)
            buf_printf(out, " %%%u", n->arg[a]);
        buf_puts(out, "\n");
    }
    buf_printf(out, "  value %%%u\n", k->value);
    if (k->grad)
        for (uint32_t i = 0; i < k->ninputs; i++)
            buf_printf(out, "  grad %s %%%u\n", k->input_name[i], k->grad[i]);
}

/* emit_split.c — cuts a big straight-line body into parts: a sequence of
 * static functions of at most max_block statements each, called one after
 * another by the entry point. C compilers' register allocation and
 * scheduling grow faster than linearly with the size of one function
 * (gcc -O2 took 36 s and 630 MB on one 16,000-statement function), so
 * bounded parts keep compile time linear in the formula.
 *
 * Every statement stays as it was, in the same order: a value used only
 * inside its part is a `const double tN` there; a value read by a later
 * part (or returned) goes through the slots `w`, the scratch array, whose
 * slots are reused once their value is dead, so the array is as big as
 * the most values that cross a cut at once. Storing a double and loading
 * it back is exact, so the results are bit-for-bit those of one body.
 * The order is the kernel's schedule (opt.c), which already puts each
 * gradient entry right after the last value it needs: the backward part
 * of a term of a sum is in the same part as its forward part, or the
 * next one. */
#include "emit.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many statements ahead the sweeps over the order fetch the plan
 * entries of operands: in a big kernel those are far apart in memory,
 * each a cache miss, and the order itself is read in sequence. Sweeps
 * that do little per statement look further ahead than the printing. */
enum { AHEAD = 32, PRINT_AHEAD = 8 };

/* Always inline: gcc takes a function that only prefetches for one
 * without effects and drops its calls. */
static inline __attribute__((always_inline)) void
prefetch_operands(const Emitter *e, const Plan *p, uint32_t at)
{
    if (at < p->part_at[p->nparts]) {
        const Node *a = &e->k->g->node[p->order[at]];
        __builtin_prefetch(&p->where[a->arg[0]]);
        __builtin_prefetch(&p->where[a->arg[1]]);
    }
}

uint32_t split_max_block(const Emitter *e)
{
    return e->o && e->o->max_block > 0 ? (uint32_t)e->o->max_block : EMIT_DEFAULT_MAX_BLOCK;
}

/* Only bodies of scalar statements are cut: tensors are loops already,
 * each one statement of bounded size, and pointers into arrays would
 * have to be passed along. */
static uint32_t scalar_statements(const Emitter *e, const Plan *p)
{
    const Graph *g = e->k->g;
    uint32_t count = 0;
    for (NodeId i = 1; i < g->n; i++) {
        Store s = p->where[i].store;
        if (s == S_TEMP)
            count++;
        else if (s != S_NONE && s != S_LITERAL && s != S_INPUT && s != S_TCONST)
            return 0;
    }
    return count;
}

/* Slots for the values that cross a cut, reused after their last use (a
 * linear scan in statement order, as assign_slots does). */
static uint32_t scratch_slots(const Emitter *e, Plan *p, uint32_t count)
{
    const Graph *g = e->k->g;
    const NodeId *order = p->order;
    uint32_t *last = xcalloc(g->n, sizeof *last);
    uint32_t *free_slots = xmalloc(g->n * sizeof *free_slots);
    uint32_t nfree = 0, nslots = 0;
    /* Both sweeps read the entries of operands, far apart in a big
     * kernel: each is fetched a few statements ahead. */
    for (uint32_t at = 0; at < count; at++) {
        if (at + AHEAD < count) {
            const Node *a = &g->node[order[at + AHEAD]];
            __builtin_prefetch(&last[a->arg[0]], 1);
            __builtin_prefetch(&last[a->arg[1]], 1);
        }
        for (int k = 0; k < op_info[g->node[order[at]].op].arity; k++)
            last[g->node[order[at]].arg[k]] = at + 1;
    }
    last[e->k->value] = UINT32_MAX;             /* returned at the end */
    for (uint32_t at = 0; at < count; at++) {
        NodeId i = order[at];
        const Node *n = &g->node[i];
        if (at + AHEAD < count) {
            const Node *a = &g->node[order[at + AHEAD]];
            __builtin_prefetch(&last[a->arg[0]]);
            __builtin_prefetch(&last[a->arg[1]]);
            __builtin_prefetch(&p->where[a->arg[0]]);
            __builtin_prefetch(&p->where[a->arg[1]]);
        }
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId a = n->arg[k];
            if (last[a] == at + 1 && p->where[a].store == S_SLOT) {
                free_slots[nfree++] = p->where[a].num;
                last[a] = 0;    /* released once, even for x*x */
            }
        }
        if (p->where[i].store == S_SLOT)
            p->where[i].num = nfree ? free_slots[--nfree] : nslots++;
    }
    free(last);
    free(free_slots);
    return nslots;
}

/* The statement order of a cut body: the kernel's schedule, except that a
 * statement is pulled forward to just after its last operand when it is
 * the last use of one of them. Computing it then frees that operand and
 * adds at most its own value, so no more values are live than before;
 * and a term's backward statements, which read the term's forward values,
 * follow the term instead of waiting for the end of the forward sweep
 * (the Gulf function: each term's contributions to the three gradient
 * entries are computed with the term, not 99 terms later). Every
 * statement is still the same operation on the same operands. */
/* Bodies of more statements keep the kernel's schedule: pull_order's
 * walk reads the nodes, their plan entries and use counts in an order
 * unrelated to memory, and once those arrays outgrow the caches (about
 * 80 bytes a statement) it costs more than the rest of the emission, and
 * every later pass then reads the nodes in that order too. Random
 * formulas (W6): 10^5 nodes, 200,000 statements, emit 146 -> 210 ms;
 * 10^6 nodes, 1.3 -> 3.5 s. */
enum { SPLIT_PULL_MAX = 1u << 16 };

static void pull_order(const Emitter *e, const Plan *p, NodeId *order)
{
    const Graph *g = e->k->g;
    uint32_t *left = xcalloc(g->n, sizeof *left);       /* uses not yet computed */
    uint32_t *ufirst = xcalloc(g->n + 1, sizeof *ufirst);
    uint8_t *done = xcalloc(g->n, 1);
    for (NodeId i = 1; i < g->n; i++)
        if (p->where[i].store == S_TEMP)
            for (int k = 0; k < op_info[g->node[i].op].arity; k++) {
                left[g->node[i].arg[k]]++;
                ufirst[g->node[i].arg[k] + 1]++;
            }
    left[e->k->value]++;                        /* returned at the end */
    for (NodeId i = 1; i <= g->n - 1; i++)
        ufirst[i + 1] += ufirst[i];
    NodeId *users = xmalloc((ufirst[g->n] + 1) * sizeof *users);
    uint32_t *fill = xmalloc(g->n * sizeof *fill);
    memcpy(fill, ufirst, g->n * sizeof *fill);
    for (NodeId i = 1; i < g->n; i++)
        if (p->where[i].store == S_TEMP)
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                if (k == 0 || g->node[i].arg[1] != g->node[i].arg[0])
                    users[fill[g->node[i].arg[k]]++] = i;
    NodeId *stack = xmalloc(g->n * sizeof *stack);
    uint32_t n = 0, sp = 0;
    for (NodeId i = 1; i < g->n; i++) {
        if (p->where[i].store != S_TEMP || done[i])
            continue;
        stack[sp++] = i;
        while (sp) {
            NodeId u = stack[--sp];
            const Node *nu = &g->node[u];
            int ready = !done[u], frees = u == i;
            for (int k = 0; k < op_info[nu->op].arity && ready; k++) {
                NodeId a = nu->arg[k];
                if (p->where[a].store != S_TEMP)
                    continue;
                ready = done[a];
                frees |= left[a] == 1u + (op_info[nu->op].arity == 2 && nu->arg[0] == nu->arg[1]);
            }
            if (!ready || !frees)
                continue;
            done[u] = 1;
            order[n++] = u;
            /* Candidates: u's users, and the last user of an operand that
             * u leaves with one use (its emission would free it). Each
             * is pushed at most once per edge. */
            for (int k = 0; k < op_info[nu->op].arity; k++) {
                NodeId a = nu->arg[k];
                if (--left[a] == 1 && p->where[a].store == S_TEMP &&
                    (k == 0 || a != nu->arg[0]))
                    for (uint32_t j = ufirst[a]; j < fill[a]; j++)
                        if (!done[users[j]])
                            stack[sp++] = users[j];
            }
            for (uint32_t j = fill[u]; j-- > ufirst[u];)
                if (!done[users[j]])
                    stack[sp++] = users[j];
        }
    }
    free(left);
    free(ufirst);
    free(done);
    free(users);
    free(fill);
    free(stack);
}

/* Cuts the body into parts when it is all scalar statements and more
 * than max_block of them: equal parts in pull_order; values read in
 * another part (and the returned value) move to scratch slots. Gradient
 * entries are stored right after they are computed (plan_early_stores),
 * inside their part, so they need no slot. Returns 1 when cut. */
int split_plan(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots, uint32_t budget)
{
    const Graph *g = e->k->g;
    (void)roots, (void)nroots;
    p->nparts = 0;
    p->part_at = p->order = NULL;
    p->part_tag = "v";
    if (p->whole)
        return 0;
    uint32_t count = scalar_statements(e, p), max = split_max_block(e);
    if (count <= max)
        return 0;
    uint32_t nparts = (count + max - 1) / max, per = (count + nparts - 1) / nparts;
    /* One block: part_at, then order (plan_free frees part_at). */
    p->part_at = xmalloc((nparts + 1 + count) * sizeof *p->part_at);
    p->order = p->part_at + nparts + 1;
    if (count <= SPLIT_PULL_MAX) {
        pull_order(e, p, p->order);
    } else {
        uint32_t at = 0;
        for (NodeId i = 1; i < g->n; i++)
            if (p->where[i].store == S_TEMP)
                p->order[at++] = i;
    }
    uint32_t *part = xmalloc(g->n * sizeof *part);
    for (uint32_t at = 0; at < count; at++) {
        NodeId i = p->order[at];
        if (at + AHEAD < count) {
            const Node *a = &g->node[p->order[at + AHEAD]];
            __builtin_prefetch(&p->where[a->arg[0]]);
            __builtin_prefetch(&p->where[a->arg[1]]);
            __builtin_prefetch(&part[a->arg[0]]);
            __builtin_prefetch(&part[a->arg[1]]);
        }
        part[i] = at / per;
        if (at % per == 0)
            p->part_at[at / per] = at;
        const Node *n = &g->node[i];
        for (int a = 0; a < op_info[n->op].arity; a++) {
            NodeId x = n->arg[a];
            Store s = p->where[x].store;
            if ((s == S_TEMP || s == S_SLOT) && part[x] != part[i])
                p->where[x].store = S_SLOT;
        }
    }
    assert((count - 1) / per + 1 == nparts);
    p->nparts = nparts;
    p->part_at[nparts] = count;
    if (p->where[e->k->value].store == S_TEMP)
        p->where[e->k->value].store = S_SLOT;
    free(part);
    p->nslots = scratch_slots(e, p, count);
    if (p->nslots > budget) {
        p->slots_in_work = 1;
        p->work += p->nslots;
    }
    return 1;
}

static void part_name(const Emitter *e, const Plan *p, uint32_t k, char out[300])
{
    snprintf(out, 300, "%s__%s%u", e->sym, p->part_tag, k);
}

/* What part k reads and writes: inputs, params, scratch, grad, the seed v. */
static void part_uses(const Emitter *e, const Plan *p, uint32_t k, int use[5])
{
    const Graph *g = e->k->g;
    uint32_t nin = e->k->ninputs - e->k->nparams;
    memset(use, 0, 5 * sizeof *use);
    for (uint32_t at = p->part_at[k]; at < p->part_at[k + 1]; at++) {
        NodeId i = p->order[at];
        const Node *n = &g->node[i];
        prefetch_operands(e, p, at + AHEAD);
        use[2] |= p->where[i].store == S_SLOT;
        use[3] |= p->early && p->early[i];
        for (int a = 0; a < op_info[n->op].arity; a++) {
            NodeId x = n->arg[a];
            if (p->where[x].store == S_INPUT)
                use[(uint32_t)g->node[x].aux >= e->k->ninputs ? 4
                    : (uint32_t)g->node[x].aux >= nin] = 1;
            use[2] |= p->where[x].store == S_SLOT;
        }
    }
}

/* The static functions of the parts, defined before the entry point
 * that calls them. */
void split_parts(const Emitter *e, const Plan *p, Entry entry, Buf *out)
{
    static const char *const arg[5] = {"in", "params", "w", "grad", "v"};
    int seed = entry == E_GRAD && !is_scalar(e, e->k->value);     /* a VJP */
    /* gcc inlines a static function called once into its caller, which
     * would make one big function again. */
    buf_puts(out, "#ifndef GRADC_NOINLINE\n#ifdef __GNUC__\n"
                  "#define GRADC_NOINLINE __attribute__((noinline))\n#else\n"
                  "#define GRADC_NOINLINE\n#endif\n#endif\n\n");
    for (uint32_t k = 0; k < p->nparts; k++) {
        char name[300];
        int use[5];
        part_name(e, p, k, name);
        part_uses(e, p, k, use);
        buf_printf(out, "GRADC_NOINLINE static void %s(const double *restrict in", name);
        if (e->k->nparams)
            buf_puts(out, ", const double *restrict params");
        if (seed)
            buf_puts(out, ", const double *restrict v");
        if (entry == E_GRAD)
            buf_puts(out, ", double *restrict grad");
        buf_puts(out, ", double *restrict w)\n{\n");
        for (int a = 0; a < 5; a++)
            if (!use[a] && (a != 1 || e->k->nparams) && (a != 3 || entry == E_GRAD) &&
                (a != 4 || seed))
                buf_printf(out, "    (void)%s;\n", arg[a]);
        for (uint32_t at = p->part_at[k]; at < p->part_at[k + 1]; at++) {
            prefetch_operands(e, p, at + PRINT_AHEAD);
            emit_statement(e, p, p->order[at], out);
        }
        buf_puts(out, "}\n\n");
    }
}

/* The entry point's body: the parts in order (the scratch w is declared
 * by the caller, body()). */
void split_calls(const Emitter *e, const Plan *p, Buf *out)
{
    int grad = p->part_tag[0] == 'g', seed = grad && !is_scalar(e, e->k->value);
    for (uint32_t k = 0; k < p->nparts; k++) {
        char name[300];
        part_name(e, p, k, name);
        buf_printf(out, "    %s(in%s%s%s, w);\n", name, e->k->nparams ? ", params" : "",
                   seed ? ", v" : "", grad ? ", grad" : "");
    }
}

/* ---- gradc emit --report ---- */

/* Arithmetic operations of one node per call (a loop's trip count, a
 * matrix product's multiply-adds): an estimate of the work, not a cost
 * model. */
static uint64_t node_ops(const Emitter *e, NodeId i)
{
    const Node *n = node(e, i);
    uint64_t size = size_of(e, i);
    switch ((Op)n->op) {
    case OP_MATMUL: {
        Shape a = node(e, n->arg[0])->shape;
        return size * (a.rank == 2 ? a.dim[1] : shape_size(a));
    }
    case OP_SUM:
    case OP_LOGSUMEXP:
        return size_of(e, n->arg[0]) * (n->op == OP_SUM ? 1 : 3);
    case OP_SOFTMAX:
        return 4 * size;
    case OP_VIEW: case OP_INDEX: case OP_SLICE: case OP_PAD: case OP_UNVIEW:
    case OP_BCAST: case OP_TRANSPOSE:
        return 0;               /* copies and views: no arithmetic */
    default:
        return size;
    }
}

/* Whether part k computes node x (a short scan: parts are small). */
static int in_part(const Plan *p, uint32_t k, NodeId x)
{
    for (uint32_t at = p->part_at[k]; at < p->part_at[k + 1]; at++)
        if (p->order[at] == x)
            return 1;
    return 0;
}

/* One entry point's lines of the report. */
void split_report(const Emitter *e, const Plan *p, const char *fname, Buf *out)
{
    const Graph *g = e->k->g;
    uint64_t ops = 0, stack = 0;
    uint32_t stmts = 0, temps = 0;
    for (NodeId i = 1; i < g->n; i++) {
        Store s = p->where[i].store;
        if (s == S_NONE || s == S_LITERAL || s == S_INPUT || s == S_TCONST || s == S_ALIAS)
            continue;
        ops += node_ops(e, i);
        stmts += plan_emitted(p, i);
        temps += s == S_TEMP;
        if (s == S_ARRAY && !p->out_at[i])
            stack += size_of(e, i);
    }
    if (!p->slots_in_work)
        stack += p->nslots;
    int single = e->o && e->o->single;          /* --float */
    unsigned real = single ? 4 : 8;
    buf_printf(out, "%s: %u statements, about %llu arithmetic operations per call\n", fname,
               stmts, (unsigned long long)ops);
    if (!p->nparts) {
        buf_printf(out, "  one function (max-block %u): %u scalar temporaries, "
                        "%llu bytes of stack arrays%s\n",
                   split_max_block(e), temps, (unsigned long long)stack * real,
                   p->nslots && !p->slots_in_work ? " (slots w)" : "");
    } else {
        buf_printf(out, "  %u parts (max-block %u), scratch w[%u] = %u bytes %s\n",
                   p->nparts, split_max_block(e), p->nslots,
                   p->nslots * real, p->slots_in_work ? "in work" : "on the entry point's stack");
    }
    buf_printf(out, "  work array: %u %s (%u bytes)\n", p->work, single ? "floats" : "doubles",
               p->work * real);
    for (uint32_t k = 0; k < p->nparts; k++) {
        uint32_t n = 0, t = 0, rd = 0, wr = 0;
        for (uint32_t at = p->part_at[k]; at < p->part_at[k + 1]; at++) {
            NodeId i = p->order[at];
            n++;
            t += p->where[i].store == S_TEMP;
            wr += p->where[i].store == S_SLOT;
            const Node *nd = &g->node[i];
            for (int a = 0; a < op_info[nd->op].arity; a++)
                rd += p->where[nd->arg[a]].store == S_SLOT && !in_part(p, k, nd->arg[a]);
        }
        char name[300];
        part_name(e, p, k, name);
        buf_printf(out, "  %s: %u statements, %u temporaries, reads %u and writes %u scratch "
                        "values\n", name, n, t, rd, wr);
    }
}

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
 * next one. Where the body repeats itself (a sum written out term by
 * term), parts that are the same statements on shifted inputs become one
 * function called in a loop (fold_find, below). */
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
 * have to be passed along. A plan without tensors (a big formula) has
 * only its temps temporaries (classify): no pass over the nodes. */
static uint32_t scalar_statements(const Emitter *e, const Plan *p, uint32_t temps)
{
    const Graph *g = e->k->g;
    uint32_t count = 0;
    if (!p->tensors)
        return temps;
    for (NodeId i = 1; i < g->n; i++) {
        Store s = p->where[i].store;
        if (s == S_TEMP)
            count++;
        else if (s != S_NONE && s != S_LITERAL && s != S_INPUT && s != S_TCONST)
            return 0;
    }
    return count;
}

/* The values that cross a cut (read in a later part, or returned) move
 * to slots, reused after their last use (a linear scan in statement
 * order, as assign_slots does). The operands of each statement are
 * fetched once as statement positions (pos: per node, UINT32_MAX for no
 * statement), and the sweeps then work on arrays of the statements'
 * size, fetched a few statements ahead: in a big kernel the nodes (48
 * bytes each) and their plan entries are far apart in memory, and each
 * sweep over them was a cache miss per operand. Few fresh pages: each
 * statement's last reader goes into pos once the positions are fetched,
 * its slot straight into its plan entry, and a slot to release is posted
 * in place of the operand at its last reader (a big kernel's every array
 * is fresh memory, a page fault every 4 KB). pos is used up. Returns the
 * number of slots. */
enum { POSTED = 1u << 31 };     /* arg: a slot to release, not a position */

static uint32_t cross_slots(const Emitter *e, Plan *p, uint32_t *pos, uint32_t count)
{
    const Graph *g = e->k->g;
    const NodeId *order = p->order;
    uint32_t (*arg)[2] = xmalloc(count * sizeof *arg);  /* count: none */
    for (uint32_t at = 0; at < count; at++) {
        if (at + AHEAD < count) {
            const Node *a = &g->node[order[at + AHEAD]];
            __builtin_prefetch(&pos[a->arg[0]]);
            __builtin_prefetch(&pos[a->arg[1]]);
        }
        const Node *n = &g->node[order[at]];
        int arity = op_info[n->op].arity;
        assert(arity <= 2);
        for (int j = 0; j < 2; j++) {
            uint32_t a = j < arity ? pos[n->arg[j]] : UINT32_MAX;
            arg[at][j] = a == UINT32_MAX ? count : a;
        }
    }
    /* Per statement: 1 + the position of its last reader (0: none,
     * UINT32_MAX: returned). Entry count takes the writes for operands
     * that are no statement. A graph has fewer than 2^31 nodes. */
    uint32_t returned = pos[e->k->value], *last = pos;
    assert(count < POSTED);
    memset(last, 0, (count + 1) * sizeof *last);
    for (uint32_t at = 0; at < count; at++) {
        if (at + AHEAD < count) {
            __builtin_prefetch(&last[arg[at + AHEAD][0]], 1);
            __builtin_prefetch(&last[arg[at + AHEAD][1]], 1);
        }
        last[arg[at][0]] = last[arg[at][1]] = at + 1;
    }
    if (returned != UINT32_MAX)
        last[returned] = UINT32_MAX;
    /* Operands come before their users, and parts are runs of positions:
     * a value crosses a cut when its last reader is past the end of its
     * part. Its slot is released at that reader, before the reader takes
     * one, in operand order (once, even for x*x). */
    uint32_t *free_slots = xmalloc(count * sizeof *free_slots), nfree = 0, nslots = 0;
    for (uint32_t k = 0; k < p->nparts; k++) {
        uint32_t start = p->part_at[k], end = p->part_at[k + 1];
        for (uint32_t at = start; at < end; at++) {
            uint32_t ahead = at + AHEAD < count ? last[at + AHEAD] - 1 : count;
            if (ahead >= end && ahead < count)     /* crosses (at least past this part) */
                __builtin_prefetch(&arg[ahead], 1);
            for (int j = 0; j < 2; j++)
                if (arg[at][j] & POSTED)
                    free_slots[nfree++] = arg[at][j] & ~POSTED;
            if (last[at] && last[at] - 1 >= end) {
                uint32_t slot = nfree ? free_slots[--nfree] : nslots++;
                p->where[order[at]].store = S_SLOT;
                p->where[order[at]].num = slot;
                if (last[at] != UINT32_MAX) {
                    uint32_t *r = arg[last[at] - 1];
                    assert(r[0] == at || r[1] == at);
                    r[r[0] != at] = POSTED | slot;
                }
            }
        }
    }
    free(arg);
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

/* ---- folding: parts that repeat become one function called in a loop ----
 *
 * A formula written out term by term (the chained Rosenbrock function,
 * any sum of terms of one shape over shifted inputs) makes a body that
 * repeats itself: the same statements every p statements, on inputs and
 * gradient entries shifted by a constant. Cut at a multiple of p, the
 * parts then differ only in those offsets, and one function called in a
 * loop with in + i*d and grad + i*d replaces them: the processor runs one
 * part's code again and again from its instruction cache instead of the
 * whole formula's, and the C compiler compiles one part instead of all.
 * Values carried from one part to the next (the running sum, an adjoint
 * waiting for the next term) are in the same slots for every call.
 * Each statement is still the same operation on the same values in the
 * same order, so the results are the same bits; and nothing is folded
 * unless same_part proves every part the first one up to the shift. */

typedef struct Fold {
    const Emitter *e;
    const Plan *p;
    const NodeId *order;
    uint32_t count, max;
    const uint32_t *pos;        /* per node: where in order; UINT32_MAX: no
                                   statement (split_plan's) */
    uint32_t *last;             /* per statement: its last reader (count: returned) */
    uint64_t *gset;             /* bit per node: gfirst is set */
    uint32_t *gfirst, *gnext;   /* the gradient entries stored with a statement,
                                   as plan_early_stores will list them */
    /* The candidate: n parts of len statements from at, part i reading
     * in + i*din and writing grad + i*dgrad. */
    uint32_t at, len, n, din, dgrad;
    /* Roles: the statements before the first part that it reads, and
     * what later parts read in their place (bound, per part). */
    NodeId *role, *bound;
    uint32_t nroles;
    uint32_t *role_of;          /* per node: 1 + its role; 0: none. Made
                                   once a period is found */
    uint32_t *carry;            /* per role: where in the previous part its
                                   value is; UINT32_MAX: the same value for
                                   every part (computed before them) */
    uint32_t *read_until;       /* per role: its last reader in the first part */
    uint32_t *sig;              /* per statement: signature() */
    uint32_t *cross;            /* see liveness(); NULL: not computed yet */
} Fold;

/* 1 + the first input whose gradient entry is stored with node id (0:
 * none). gfirst is per node but has an entry for each gradient only: it
 * is not zeroed, gset says which are set (a zeroed per-node array is a
 * pass of 9 MB at 10^6 nodes, for the 64 entries of a random formula). */
static uint32_t grad_first(const Fold *f, NodeId id)
{
    return f->gset[id / 64] >> (id % 64) & 1 ? f->gfirst[id] : 0;
}

static uint32_t in_offset(const Emitter *e, NodeId i)
{
    return e->input_off[node(e, i)->aux];
}

/* An input read from in[] (the array whose pointer a fold shifts). */
static int is_in(const Fold *f, NodeId i)
{
    const Emitter *e = f->e;
    return f->p->where[i].store == S_INPUT &&
           (uint32_t)node(e, i)->aux < e->k->ninputs - e->k->nparams;
}

/* What a statement is up to the shift: its operation and constants, and
 * per operand the literal, "an input", or the operation of the statement
 * that computes it (not where: a value computed once before a sum and
 * read by every term is ever farther back). Equal signatures p apart
 * over a stretch suggest a period p; same_part is the proof. */
static uint32_t signature(const Fold *f, uint32_t at)
{
    const Graph *g = f->e->k->g;
    const Node *n = &g->node[f->order[at]];
    uint64_t bits, code[2] = {0, 0};
    memcpy(&bits, &n->num, sizeof bits);
    for (int k = 0; k < op_info[n->op].arity && k < 2; k++) {
        NodeId a = n->arg[k];
        if (f->pos[a] != UINT32_MAX)
            code[k] = 3ull << 32 | (g->node[a].op * 0x9e3779b9u ^ (uint32_t)g->node[a].aux);
        else
            code[k] = is_in(f, a) ? 2ull << 32 : 1ull << 32 | a;
    }
    if ((op_info[n->op].flags & OPF_COMM) && code[1] < code[0]) {
        uint64_t t = code[0];
        code[0] = code[1], code[1] = t;
    }
    uint32_t stores = 0;
    for (uint32_t j = grad_first(f, f->order[at]); j; j = f->gnext[j - 1])
        stores++;
    uint64_t h = (n->op * 0x9e3779b97f4a7c15ull ^ bits) * 0xff51afd7ed558ccdull;
    h = (h ^ (uint32_t)n->aux ^ (uint64_t)stores << 40) * 0xc4ceb9fe1a85ec53ull;
    h = (h ^ code[0]) * 0xff51afd7ed558ccdull;
    h = (h ^ code[1]) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ h >> 32);
}

/* The smallest period p in [from, max] of the signatures from c: equal
 * p apart over 2p and at least 64 statements. 0: none. */
static uint32_t find_period(const uint32_t *sig, uint32_t count, uint32_t c, uint32_t from,
                            uint32_t max)
{
    for (uint32_t p = from; p <= max; p++) {
        uint32_t w = 2 * p > 64 ? 2 * p : 64, j = 0;
        if ((uint64_t)c + w + p > count)
            return 0;
        while (j < w && sig[c + j] == sig[c + j + p])
            j++;
        if (j == w)
            return p;
    }
    return 0;
}

/* Whether operand u0 of the first part and uk of part k are the same up
 * to the shift; a role is bound at its first use in part k (bind) and
 * must be the same value at every other. */
static int same_operand(Fold *f, NodeId u0, NodeId uk, uint32_t k, int bind)
{
    const Emitter *e = f->e;
    Store s = f->p->where[u0].store;
    if (s == S_INPUT && is_in(f, u0))
        return is_in(f, uk) && shape_eq(node(e, uk)->shape, node(e, u0)->shape) &&
               in_offset(e, uk) == in_offset(e, u0) + k * f->din;
    if (f->pos[u0] == UINT32_MAX)       /* a literal, params or v: not shifted */
        return uk == u0;
    if (f->pos[uk] == UINT32_MAX)
        return 0;
    if (f->pos[u0] >= f->at)            /* computed in the part */
        return f->pos[uk] == f->pos[u0] + k * f->len;
    if (f->pos[uk] >= f->at + k * f->len)
        return 0;
    NodeId *b = &f->bound[f->role_of[u0] - 1];
    if (*b == NODE_NONE && bind)
        *b = uk;
    return *b == NODE_NONE || *b == uk;
}

/* The gradient entries stored with s0 and with sk, shifted by k*dgrad. */
static int same_stores(const Fold *f, NodeId s0, NodeId sk, uint32_t k)
{
    uint32_t a = grad_first(f, s0), b = grad_first(f, sk);
    for (; a || b; a = f->gnext[a - 1], b = f->gnext[b - 1])
        if (!a || !b || f->e->grad_off[b - 1] != f->e->grad_off[a - 1] + k * f->dgrad)
            return 0;
    return 1;
}

/* Whether statement sk of part k is statement s0 of the first part up to
 * the shift: the same operation and constants, operands that correspond
 * (either order for a commutative operation: a + b is b + a, bit for
 * bit), the same gradient entries shifted. */
static int same_statement(Fold *f, NodeId s0, NodeId sk, uint32_t k)
{
    const Node *a = node(f->e, s0), *b = node(f->e, sk);
    int arity = op_info[a->op].arity;
    if (a->op != b->op || a->aux != b->aux || memcmp(&a->num, &b->num, sizeof a->num) ||
        !shape_eq(a->shape, b->shape) || arity > 2 || s0 == f->e->k->value ||
        sk == f->e->k->value || !same_stores(f, s0, sk, k))
        return 0;
    int orders = arity == 2 && (op_info[a->op].flags & OPF_COMM) ? 2 : 1;
    for (int swap = 0; swap < orders; swap++) {
        int ok = 1;
        for (int j = 0; j < arity && ok; j++)
            ok = same_operand(f, a->arg[j], b->arg[j ^ swap], k, 0);
        if (ok) {
            for (int j = 0; j < arity && ok; j++)
                ok = same_operand(f, a->arg[j], b->arg[j ^ swap], k, 1);
            return ok;
        }
    }
    return 0;
}

/* Whether part k (k >= 1) is the first part up to the shift, and reads
 * each role where the fold keeps it: a value of the same role of part
 * k - 1 (carried), or the same value as the first part (invariant). Part
 * 1 decides which roles are carried. And every value of part k - 1 is
 * dead after part k, so the slots can be reused by part k + 1. */
static int same_part(Fold *f, uint32_t k)
{
    uint32_t base = f->at + k * f->len;
    for (uint32_t r = 0; r < f->nroles; r++)
        f->bound[r] = NODE_NONE;
    for (uint32_t j = 0; j < f->len; j++)
        if (!same_statement(f, f->order[f->at + j], f->order[base + j], k))
            return 0;
    for (uint32_t r = 0; r < f->nroles; r++) {
        NodeId b = f->bound[r];
        if (k == 1 && b != f->role[r] && f->pos[b] < f->at)
            return 0;                   /* another value from before the parts */
        if (k == 1)
            f->carry[r] = b == f->role[r] ? UINT32_MAX : f->pos[b] - f->at;
        if (f->carry[r] == UINT32_MAX ? b != f->role[r]
                                      : f->pos[b] != base - f->len + f->carry[r])
            return 0;
    }
    for (uint32_t j = 0; j < f->len; j++)
        if (f->last[f->order[base - f->len + j]] >= base + f->len)
            return 0;
    return 1;
}

/* A carried role's value shares its slot with the value that replaces
 * it: the first part must read it no later than it writes that slot, it
 * must be dead after the first part (the head writes it there), and no
 * two roles may share a slot. */
static int slots_shareable(const Fold *f)
{
    uint8_t *used = xcalloc(f->len, 1);
    int ok = 1;
    for (uint32_t r = 0; r < f->nroles && ok; r++) {
        uint32_t c = f->carry[r];
        if (c == UINT32_MAX)
            continue;
        ok = c < f->len && !used[c] && f->read_until[r] <= f->at + c &&
             f->last[f->role[r]] < f->at + f->len;
        if (c < f->len)
            used[c] = 1;
    }
    free(used);
    return ok;
}

/* The roles of the first part: the statements before it that it reads. */
static void find_roles(Fold *f)
{
    const Graph *g = f->e->k->g;
    if (!f->role_of)
        f->role_of = xcalloc(g->n, sizeof *f->role_of);
    for (uint32_t r = 0; r < f->nroles; r++)
        f->role_of[f->role[r]] = 0;
    f->nroles = 0;
    for (uint32_t at = f->at; at < f->at + f->len; at++) {
        const Node *n = &g->node[f->order[at]];
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId a = n->arg[k];
            if (f->pos[a] == UINT32_MAX || f->pos[a] >= f->at)
                continue;
            if (!f->role_of[a]) {
                f->role[f->nroles] = a;
                f->read_until[f->nroles] = 0;
                f->role_of[a] = ++f->nroles;
            }
            f->read_until[f->role_of[a] - 1] = at;
        }
    }
}

/* The shifts of part 1 against the first part: dgrad from the first
 * statement that stores gradient entries, din tried for each input of
 * the first statement that reads one (a commutative operation's operands
 * may come in either order). Then the parts from 2 on, as long as they
 * are the same. Returns how many parts fold (0: none). */
static uint32_t fold_parts(Fold *f, uint32_t n)
{
    const Emitter *e = f->e;
    const Graph *g = e->k->g;
    find_roles(f);
    f->dgrad = 0;
    for (uint32_t j = 0; j < f->len; j++) {
        NodeId s0 = f->order[f->at + j], s1 = f->order[f->at + f->len + j];
        uint32_t g0 = grad_first(f, s0), g1 = grad_first(f, s1);
        if (g0) {
            if (!g1 || e->grad_off[g1 - 1] < e->grad_off[g0 - 1])
                return 0;
            f->dgrad = e->grad_off[g1 - 1] - e->grad_off[g0 - 1];
            break;
        }
    }
    uint32_t cand[2] = {0, 0}, ncand = 1;
    for (uint32_t j = 0; j < f->len; j++) {
        const Node *a = &g->node[f->order[f->at + j]], *b = &g->node[f->order[f->at + f->len + j]];
        int k0 = 0;
        while (k0 < op_info[a->op].arity && !is_in(f, a->arg[k0]))
            k0++;
        if (k0 == op_info[a->op].arity)
            continue;
        ncand = 0;
        for (int k = 0; k < op_info[b->op].arity && k < 2; k++)
            if (is_in(f, b->arg[k]) && in_offset(e, b->arg[k]) >= in_offset(e, a->arg[k0]))
                cand[ncand++] = in_offset(e, b->arg[k]) - in_offset(e, a->arg[k0]);
        break;
    }
    uint32_t c = 0;
    for (; c < ncand; c++) {
        f->din = cand[c];
        if (same_part(f, 1) && slots_shareable(f))
            break;
    }
    if (c == ncand)
        return 0;
    uint32_t k = 2;
    while (k < n && same_part(f, k))
        k++;
    /* What the code after the loop reads of the last part must be in a
     * slot: a value the first part also passes on. */
    for (; k >= 2; k--) {
        uint32_t base = f->at + (k - 1) * f->len, j = 0;
        while (j < f->len && (f->last[f->order[base + j]] < f->at + k * f->len ||
                              f->last[f->order[f->at + j]] >= f->at + f->len))
            j++;
        if (j == f->len)
            break;
    }
    return k >= 2 ? k : 0;
}

/* The rest of what a fold needs once a period is found, too slow to
 * compute for every big body (a random formula of 10^6 nodes has no
 * period): all signatures, each statement's last reader, and cross[c],
 * how many values computed before statement c are read at or after it. */
static void liveness(Fold *f)
{
    const Graph *g = f->e->k->g;
    f->last = xcalloc(g->n, sizeof *f->last);
    for (uint32_t at = 0; at < f->count; at++) {
        const Node *n = &g->node[f->order[at]];
        for (int a = 0; a < op_info[n->op].arity; a++)
            f->last[n->arg[a]] = at;
        f->sig[at] = signature(f, at);
    }
    f->last[f->e->k->value] = f->count;
    f->cross = xcalloc(f->count + 2, sizeof *f->cross);
    for (uint32_t at = 0; at < f->count; at++) {
        NodeId i = f->order[at];
        if (f->last[i] > at) {
            f->cross[at + 1]++;
            f->cross[f->last[i] + 1]--;
        }
    }
    for (uint32_t c = 1; c <= f->count; c++)
        f->cross[c] += f->cross[c - 1];
}

/* Tries period p around statement c; see fold_near. */
static int fold_period(Fold *f, uint32_t c, uint32_t p)
{
    const uint32_t *sig = f->sig;
    uint32_t lo = c, hi = c + p;
    while (lo > 0 && sig[lo - 1] == sig[lo - 1 + p])
        lo--;
    while (hi < f->count && sig[hi] == sig[hi - p])
        hi++;
    uint32_t best = lo;
    for (uint32_t a = lo + 1; a < lo + p; a++)
        if (f->cross[a] < f->cross[best])
            best = a;
    for (f->at = best; f->at < best + 3 * p; f->at += p) {
        if (f->at + 2 * p > hi)
            return 0;
        uint32_t q = f->max / p;
        if ((hi - f->at) / (q * p) < 2)
            q = (hi - f->at) / p / 2;
        if (!q)
            return 0;
        f->len = q * p;
        f->n = fold_parts(f, (hi - f->at) / f->len);
        if (f->n >= 2)
            return 1;
    }
    return 0;
}

/* Looks for a fold around statement c: a period of the signatures, the
 * stretch where they repeat, the cut in a period that the fewest values
 * cross, then as many parts of a multiple of the period (at most max
 * statements) as prove the same. The stretch can begin with a period
 * that only looks the same (the first term of a sum, added last, reads
 * other inputs): the cut is tried a period and two later too. And the
 * signatures can repeat at a fraction of the true period: the next few
 * periods are tried when one fails. */
static int fold_near(Fold *f, uint32_t c)
{
    uint32_t *sig = f->sig, end = c + 3 * f->max + 64 < f->count ? c + 3 * f->max + 64 : f->count;
    for (uint32_t at = c; at < end && !f->cross; at++)
        sig[at] = signature(f, at);
    for (uint32_t p = 0, tries = 0; tries < 4; tries++) {
        p = find_period(sig, f->count, c, p + 1, f->max);
        if (!p)
            return 0;
        if (!f->cross)
            liveness(f);
        if (fold_period(f, c, p))
            return 1;
    }
    return 0;
}

/* Finds a fold of the body in order (one, the first found near the
 * middle, then a quarter and three quarters in). Only plain scalar entry
 * points: parameters and a seed are read at fixed offsets, and the loop
 * shifts in and grad only. */
static int fold_find(Fold *f, const Emitter *e, const Plan *p, const NodeId *order,
                     const uint32_t *pos, uint32_t count, uint32_t nroots)
{
    const Kernel *k = e->k;
    const Graph *g = k->g;
    memset(f, 0, sizeof *f);
    if ((e->o && e->o->no_fold) || k->nparams || !is_scalar(e, k->value))
        return 0;
    *f = (Fold){.e = e, .p = p, .order = order, .count = count, .max = split_max_block(e)};
    f->pos = pos;
    f->gset = xcalloc(g->n / 64 + 1, sizeof *f->gset);
    f->gfirst = xmalloc(g->n * sizeof *f->gfirst);
    f->gnext = xcalloc(k->ninputs + 1, sizeof *f->gnext);
    f->role = xmalloc(2 * f->max * sizeof *f->role);
    f->bound = xmalloc(2 * f->max * sizeof *f->bound);
    f->carry = xmalloc(2 * f->max * sizeof *f->carry);
    f->read_until = xmalloc(2 * f->max * sizeof *f->read_until);
    f->sig = xmalloc(count * sizeof *f->sig);
    /* As plan_early_stores will: the grad entry point (more roots than
     * the value) stores each scalar entry with its statement. */
    for (uint32_t i = k->ninputs; nroots > 1 && i-- > 0;) {
        NodeId r = k->grad[i];
        if (r != NODE_NONE && f->pos[r] != UINT32_MAX) {
            f->gnext[i] = grad_first(f, r);
            f->gfirst[r] = i + 1;
            f->gset[r / 64] |= 1ull << (r % 64);
        }
    }
    return fold_near(f, count / 2) || fold_near(f, count / 4) || fold_near(f, count / 4 * 3);
}

static void fold_free(Fold *f)
{
    free(f->last);
    free(f->gset);
    free(f->gfirst);
    free(f->gnext);
    free(f->role);
    free(f->bound);
    free(f->carry);
    free(f->read_until);
    free(f->role_of);
    free(f->sig);
    free(f->cross);
}

/* Cuts order[from, to) into equal parts of at most max statements,
 * appending their starts to part_at; returns how many. */
static uint32_t cut_even(uint32_t from, uint32_t to, uint32_t max, uint32_t *part_at)
{
    if (to <= from)
        return 0;
    uint32_t n = (to - from + max - 1) / max, per = (to - from + n - 1) / n;
    for (uint32_t k = 0; k < n; k++)
        part_at[k] = from + k * per;
    return n;
}

/* The fold's slots, past the others: one per value a part passes on to
 * the next, which the next reads in place of the value before it (the
 * head writes the first part's there), and the code after the loop
 * finds the last part's. */
static void fold_slots(const Fold *f, Plan *p)
{
    uint32_t *slot = xmalloc(f->len * sizeof *slot);
    for (uint32_t j = 0; j < f->len; j++) {
        slot[j] = UINT32_MAX;
        if (f->last[f->order[f->at + j]] < f->at + f->len)
            continue;
        slot[j] = p->nslots++;
        for (uint32_t k = 0; k < f->n; k++) {
            NodeId i = f->order[f->at + k * f->len + j];
            assert(p->where[i].store == S_SLOT || k + 1 == f->n);
            if (p->where[i].store == S_SLOT)
                p->where[i].num = slot[j];
        }
    }
    for (uint32_t r = 0; r < f->nroles; r++)
        if (f->carry[r] != UINT32_MAX) {
            assert(p->where[f->role[r]].store == S_SLOT && slot[f->carry[r]] != UINT32_MAX);
            p->where[f->role[r]].num = slot[f->carry[r]];
        }
    free(slot);
}

/* Cuts the body into parts when it is all scalar statements and more
 * than max_block of them: equal parts in pull_order, or where the body
 * repeats itself, a head, parts that fold into one function, and a tail;
 * values read in another part (and the returned value) move to scratch
 * slots. Gradient entries are stored right after they are computed
 * (plan_early_stores), inside their part, so they need no slot. Returns
 * 1 when cut. */
int split_plan(const Emitter *e, Plan *p, uint32_t temps, uint32_t nroots, uint32_t budget)
{
    const Graph *g = e->k->g;
    p->nparts = p->fold_count = 0;
    p->part_at = p->order = NULL;
    p->part_tag = "v";
    if (p->whole)
        return 0;
    uint32_t count = scalar_statements(e, p, temps), max = split_max_block(e);
    if (count <= max)
        return 0;
    /* Room after the order for the part starts, at most one a statement
     * plus the ends of head, fold and tail: the block shrinks in place once
     * their number is known (growing it after pos is allocated would copy
     * it into fresh pages). */
    NodeId *order = xmalloc((2 * (size_t)count + 4) * sizeof *order);
    uint32_t *pos = xmalloc(g->n * sizeof *pos);        /* per node: where in order */
    if (count <= SPLIT_PULL_MAX) {
        pull_order(e, p, order);
        memset(pos, 0xff, g->n * sizeof *pos);
        for (uint32_t at = 0; at < count; at++)
            pos[order[at]] = at;
    } else {
        uint32_t at = 0;
        pos[0] = UINT32_MAX;
        for (NodeId i = 1; i < g->n; i++) {
            pos[i] = p->where[i].store == S_TEMP ? at : UINT32_MAX;
            if (p->where[i].store == S_TEMP)
                order[at++] = i;
        }
    }
    Fold f;
    int fold = fold_find(&f, e, p, order, pos, count, nroots);
    uint32_t from = fold ? f.at : 0, to = fold ? f.at + f.n * f.len : 0;
    /* At most: the head's parts, the fold's, the tail's. */
    uint32_t most = (from + max - 1) / max + (fold ? f.n : 0) + (count - to + max - 1) / max;
    assert(most <= count + 3);
    p->order = xrealloc(order, (count + most + 1) * sizeof *order);
    p->part_at = p->order + count;
    uint32_t nparts = cut_even(0, from, max, p->part_at);
    if (fold) {
        p->fold_part = nparts;
        p->fold_count = f.n;
        p->fold_in = f.din;
        p->fold_grad = f.dgrad;
        for (uint32_t k = 0; k < f.n; k++)
            p->part_at[nparts++] = f.at + k * f.len;
    }
    nparts += cut_even(to, count, max, p->part_at + nparts);
    assert(nparts <= most);
    p->nparts = nparts;
    p->part_at[nparts] = count;
    p->nslots = cross_slots(e, p, pos, count);
    free(pos);
    if (fold) {
        f.order = p->order;
        fold_slots(&f, p);
    }
    fold_free(&f);
    if (p->nslots > budget) {
        p->slots_in_work = 1;
        p->work += p->nslots;
    }
    return 1;
}

/* Whether part k is printed: all but the folded parts after the first. */
static int part_printed(const Plan *p, uint32_t k)
{
    return !p->fold_count || k <= p->fold_part || k >= p->fold_part + p->fold_count;
}

/* The name of the function that computes part k: numbered in the order
 * the functions are printed, a folded part's is the first one's. */
static void part_name(const Emitter *e, const Plan *p, uint32_t k, char out[300])
{
    uint32_t fn = k;
    if (p->fold_count && k > p->fold_part)
        fn = k < p->fold_part + p->fold_count ? p->fold_part : k - (p->fold_count - 1);
    snprintf(out, 300, "%s__%s%u", e->sym, p->part_tag, fn);
}

/* The gradient entries the folded parts store (plan_early_stores, decided
 * after the cut) are those fold_find foresaw: the first part's, shifted. */
static void check_fold_stores(const Emitter *e, const Plan *p)
{
    uint32_t at = p->part_at[p->fold_part], len = p->part_at[p->fold_part + 1] - at;
    for (uint32_t k = 1; k < p->fold_count; k++)
        for (uint32_t j = 0; j < len; j++) {
            uint32_t a = plan_early(p, p->order[at + j]);
            uint32_t b = plan_early(p, p->order[at + k * len + j]);
            for (; a || b; a = p->early_next[a - 1], b = p->early_next[b - 1])
                if (!a || !b || e->grad_off[b - 1] != e->grad_off[a - 1] + k * p->fold_grad)
                    abort();    /* fold_find and plan_early_stores disagree */
        }
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
        use[3] |= p->where[i].early;
        for (int a = 0; a < op_info[n->op].arity; a++) {
            NodeId x = n->arg[a];
            if (p->where[x].store == S_INPUT)
                use[(uint32_t)g->node[x].aux >= e->k->ninputs ? 4
                    : (uint32_t)g->node[x].aux >= nin] = 1;
            use[2] |= p->where[x].store == S_SLOT;
        }
    }
}

/* gcc -O2 spends most of its time on a part in passes that look for
 * what gradc's straight-line code does not have: redundant loads and
 * expressions (FRE, PRE, GCSE, code hoisting: every value is computed
 * once), dead stores, branches to thread, loops, plus points-to analysis
 * and the second scheduling pass. The parts are compiled at -Og (the
 * -O1 passes that make sense for debugging; gcc's own floor, -O0 for
 * the parts, costs more, for it keeps every value on the stack) with
 * those passes off, and with some -O1 passes off that find nothing here
 * either (CCP, copy propagation, forward propagation, DCE, if
 * conversion, conditional dead call elimination, register copy
 * propagation). A random formula of 10^4 nodes: 16.5 -> 6.5 s of CPU
 * with the -O2 list (item 27 of docs/performance.md), 14 % fewer cc1
 * instructions again with -Og and inputs read where used (item 32); the
 * code runs as fast (W4s n = 1,000 gradient within a few per cent, the
 * random formula's 0.97x). Only gcc reads the pragma;
 * -DGRADC_LEAN_PARTS=0 compiles the parts with every pass of the
 * command line. */
static const char *const lean_passes[] = {
    "Og", "no-tree-fre", "no-tree-pre", "no-tree-pta", "no-tree-dse", "no-dse",
    "no-schedule-insns2", "no-gcse", "no-tree-slp-vectorize", "no-tree-vrp",
    "no-tree-dominator-opts", "no-code-hoisting", "no-tree-sink", "no-ipa-modref",
    "no-expensive-optimizations", "no-peephole2", "no-caller-saves",
    "no-cse-follow-jumps", "no-crossjumping", "no-ree", "no-lra-remat",
    "no-rerun-cse-after-loop", "no-tree-tail-merge", "no-store-merging",
    "no-hoist-adjacent-loads", "no-thread-jumps",
    "no-isolate-erroneous-paths-dereference", "no-strict-aliasing",
    "no-tree-builtin-call-dce", "no-cprop-registers", "no-dce", "no-tree-ccp",
    "no-forward-propagate", "no-guess-branch-probability", "no-tree-dce",
    "no-ipa-ra", "no-if-conversion", "no-compare-elim",
    "no-ipa-pure-const", "no-tree-copy-prop", "no-tree-bit-ccp", "no-ipa-cp",
    "no-if-conversion2",
};

static void lean_parts_begin(Buf *out)
{
    buf_puts(out, "#ifndef GRADC_LEAN_PARTS\n#if defined(__GNUC__) && __GNUC__ >= 11 && "
                  "!defined(__clang__) && !defined(__INTEL_COMPILER)\n"
                  "#define GRADC_LEAN_PARTS 1\n#else\n#define GRADC_LEAN_PARTS 0\n"
                  "#endif\n#endif\n#if GRADC_LEAN_PARTS\n#pragma GCC push_options\n"
                  "#pragma GCC optimize(");
    for (size_t i = 0; i < sizeof lean_passes / sizeof *lean_passes; i++)
        buf_printf(out, "%s\"%s\"", i ? ", " : "", lean_passes[i]);
    buf_puts(out, ")\n#endif\n\n");
}

/* Reads the scalar inputs of statement i that its part has not read yet
 * into locals, `const double in_N = in[N];`, printed as in_N from then on
 * (S_PINPUT; read[] lists them for the end of the part). Each input is
 * loaded once per part, where it is first needed, so the part has no
 * repeated loads for gcc to merge (lean_passes turns off the passes
 * that would), and its live range is the one gcc's merging would give;
 * only in parts without calls (split_parts). */
static uint32_t input_locals(const Emitter *e, Plan *p, NodeId i, NodeId *read, uint32_t n,
                             Buf *out)
{
    const Node *nd = node(e, i);
    for (int a = 0; a < op_info[nd->op].arity; a++) {
        NodeId x = nd->arg[a];
        if (p->where[x].store != S_INPUT || !is_scalar(e, x))
            continue;
        char v[320], l[320];
        emit_scalar(e, p, x, v);
        p->where[x].store = S_PINPUT;
        emit_scalar(e, p, x, l);
        buf_printf(out, "    const double %s = %s;\n", l, v);
        read[n++] = x;
    }
    return n;
}

/* Whether part k calls the C library (exp, log, sin, ...: a template with
 * a name before a parenthesis). A call clobbers every SSE register, so a
 * value live across it is spilled and reloaded. */
static int part_calls(const Emitter *e, const Plan *p, uint32_t k)
{
    for (uint32_t at = p->part_at[k]; at < p->part_at[k + 1]; at++) {
        const char *c = emit_template(e, node(e, p->order[at]));
        for (const char *q = strchr(c, '('); q; q = strchr(q + 1, '('))
            if (q > c && q[-1] >= 'a' && q[-1] <= 'z')
                return 1;
    }
    return 0;
}

/* The static functions of the parts, defined before the entry point
 * that calls them. */
void split_parts(const Emitter *e, Plan *p, Entry entry, Buf *out)
{
    uint32_t longest = 0;
    for (uint32_t k = 0; k < p->nparts; k++)
        if (p->part_at[k + 1] - p->part_at[k] > longest)
            longest = p->part_at[k + 1] - p->part_at[k];
    NodeId *read = xmalloc((2 * longest + 1) * sizeof *read);   /* two operands each */
    static const char *const arg[5] = {"in", "params", "w", "grad", "v"};
    int seed = entry == E_GRAD && !is_scalar(e, e->k->value);     /* a VJP */
    /* gcc inlines a static function called once into its caller, which
     * would make one big function again. */
    buf_puts(out, "#ifndef GRADC_NOINLINE\n#ifdef __GNUC__\n"
                  "#define GRADC_NOINLINE __attribute__((noinline))\n#else\n"
                  "#define GRADC_NOINLINE\n#endif\n#endif\n");
    lean_parts_begin(out);
    if (p->fold_count)
        check_fold_stores(e, p);
    for (uint32_t k = 0; k < p->nparts; k++) {
        char name[300];
        int use[5];
        if (!part_printed(p, k))
            continue;
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
        /* In a part that calls the C library, inputs are read from in[]
         * where used: a local in_N would live across the calls and be
         * spilled (random formula of 3,000 nodes: 7 % more cc1
         * instructions, and the code no faster). Without calls, the
         * locals keep the inputs in registers (W4s n = 1,000: 4 % faster). */
        int locals = !part_calls(e, p, k);
        uint32_t nread = 0;
        for (uint32_t at = p->part_at[k]; at < p->part_at[k + 1]; at++) {
            prefetch_operands(e, p, at + PRINT_AHEAD);
            if (locals)
                nread = input_locals(e, p, p->order[at], read, nread, out);
            emit_statement(e, p, p->order[at], out);
        }
        while (nread)
            p->where[read[--nread]].store = S_INPUT;
        buf_puts(out, "}\n\n");
    }
    buf_puts(out, "#if GRADC_LEAN_PARTS\n#pragma GCC pop_options\n#endif\n\n");
    free(read);
}

/* The entry point's body: the parts in order (the scratch w is declared
 * by the caller, body()). */
void split_calls(const Emitter *e, const Plan *p, Buf *out)
{
    int grad = p->part_tag[0] == 'g', seed = grad && !is_scalar(e, e->k->value);
    for (uint32_t k = 0; k < p->nparts; k++) {
        char name[300], in[64] = "in", g[64] = "grad";
        if (!part_printed(p, k))
            continue;
        part_name(e, p, k, name);
        if (p->fold_count && k == p->fold_part) {
            /* The folded parts: part i reads in + i*fold_in, writes grad + i*fold_grad. */
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n    ", p->fold_count);
            if (p->fold_in)
                snprintf(in, sizeof in, "in + %u * i", p->fold_in);
            if (p->fold_grad)
                snprintf(g, sizeof g, "grad + %u * i", p->fold_grad);
        }
        buf_printf(out, "    %s(%s%s%s%s%s, w);\n", name, in, e->k->nparams ? ", params" : "",
                   seed ? ", v" : "", grad ? ", " : "", grad ? g : "");
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
        if (p->fold_count) {
            char g[64] = "";
            if (p->part_tag[0] == 'g')
                snprintf(g, sizeof g, ", grad + %u", p->fold_grad);
            buf_printf(out, "  parts %u to %u are one function called in a loop (in + %u%s a "
                            "call): %u functions\n", p->fold_part,
                       p->fold_part + p->fold_count - 1, p->fold_in, g,
                       p->nparts - p->fold_count + 1);
        }
    }
    buf_printf(out, "  work array: %u %s (%u bytes)\n", p->work, single ? "floats" : "doubles",
               p->work * real);
    for (uint32_t k = 0; k < p->nparts; k++) {
        uint32_t n = 0, t = 0, rd = 0, wr = 0;
        if (!part_printed(p, k))
            continue;
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
                        "values", name, n, t, rd, wr);
        if (p->fold_count && k == p->fold_part)
            buf_printf(out, ", called %u times", p->fold_count);
        buf_puts(out, "\n");
    }
}

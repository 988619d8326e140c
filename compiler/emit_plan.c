/* emit_plan.c — where each value of a kernel lives in the generated
 * function: literal, input, temporary, reused slot, stack array, work
 * array, alias, or an element computed inside a loop (fusion, loop runs,
 * loop locals); and where outputs are written (as soon as computed,
 * inside the loop that computes them, in place). emit_c.c prints what
 * this decides. */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_alias(const Emitter *e, NodeId id)
{
    const Node *n = node(e, id);
    if (n->shape.rank == 0)
        return 0;
    return n->op == OP_VIEW || n->op == OP_INDEX ||
           (n->op == OP_SLICE && (uint32_t)n->num == 1);
}

/* What chain_sums needs, gathered by classify's sweep over the nodes so
 * that chain_sums reads none: per node one byte, its uses saturated at 2
 * (only "one" matters there; any use: the roots reach the node, which is
 * all the mark of classify and assign_slots is) and, once chain_sums
 * starts, whether it is a scalar temporary sum; and the sums that were temporaries when
 * classified, with their operands (NODE_NONE for a difference's second),
 * from the last node to the first. Its random reads then hit this byte
 * array (2 MB at 10^6 nodes), which a big kernel's caches hold, instead
 * of a uint32 count and the operand's node (48 bytes), each a cache
 * miss. */
typedef struct Chain {
    uint8_t *u;
    NodeId (*cand)[3];          /* node, operands */
    uint32_t ncand;
} Chain;

enum { CHAIN_USES = 3, CHAIN_SUM = 4 };

/* Scalars reuse slots after their last use (linear scan). A slot is
 * released when its node's last user is reached, before that user takes
 * one; the user's operands release in operand order, so the slot taken
 * is the last operand's. Only sequential reads: a node that takes a slot
 * posts it, with which operand of its last user it is, at that user's
 * entries, which the scan reaches later (in a big kernel, reading the
 * operands' entries instead was a cache miss per node). */
static uint32_t assign_slots(const Emitter *e, Plan *p, const uint8_t *uses,
                             const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    /* last[a] = 2 * its last user + which operand it is there; 0: none,
     * UINT32_MAX: a root, never released. (A graph has fewer than 2^31
     * nodes: that many would take over 100 GB.) */
    uint32_t *last = xcalloc(g->n, sizeof *last);
    uint32_t *posted = xmalloc(2 * (size_t)g->n * sizeof *posted);
    uint8_t *dies = xcalloc(g->n, 1);                /* bit k: operand k posted */
    uint32_t *free_slots = xmalloc(g->n * sizeof *free_slots);
    uint32_t nfree = 0, nslots = 0;
    for (NodeId i = 1; i < g->n; i++)
        if (uses[i] & CHAIN_USES)       /* reached from the roots */
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                last[g->node[i].arg[k]] = 2 * i + (uint32_t)k;
    for (uint32_t r = 0; r < nroots; r++)
        last[roots[r]] = UINT32_MAX;
    for (NodeId i = 1; i < g->n; i++) {
        if (p->where[i].store != S_SLOT)
            continue;
        for (int k = 0; k < 2; k++)
            if (dies[i] >> k & 1)
                free_slots[nfree++] = posted[2 * i + (uint32_t)k];
        uint32_t slot = nfree ? free_slots[--nfree] : nslots++;
        p->where[i].num = slot;
        if (last[i] != 0 && last[i] != UINT32_MAX) {
            posted[last[i]] = slot;
            dies[last[i] / 2] |= (uint8_t)(1u << (last[i] & 1));
        }
    }
    free(last);
    free(posted);
    free(dies);
    free(free_slots);
    return nslots;
}

/* One more use of node a. */
static void chain_use(Chain *c, NodeId a)
{
    c->u[a] += (c->u[a] & CHAIN_USES) < 2;
}

/* A scalar sum whose operand is a sum used nowhere else takes over that
 * operand's variable: `t3 = t3 + t9`. Besides saving names, this keeps
 * gcc from substituting the whole single-use chain of a long sum into its
 * last use (its TER pass), which would move every term's computation to
 * the end of the function and keep all their inputs live until then. */
static void chain_sums(Plan *p, Chain *c)
{
    enum { AHEAD = 32 };
    for (uint32_t j = 0; j < c->ncand; j++)     /* still temporaries (not slots) */
        if (p->where[c->cand[j][0]].store == S_TEMP)
            c->u[c->cand[j][0]] |= CHAIN_SUM;
    for (uint32_t j = c->ncand; j-- > 0;) {
        if (j >= AHEAD)
            for (int k = 1; k < 3; k++) {
                __builtin_prefetch(&c->u[c->cand[j - AHEAD][k]]);
                __builtin_prefetch(&p->where[c->cand[j - AHEAD][k]]);
            }
        NodeId i = c->cand[j][0];
        if (!(c->u[i] & CHAIN_SUM))
            continue;
        /* Prefer extending a chain to starting one; a difference only
         * extends its first operand's chain. */
        for (int k = 0; k < (c->cand[j][2] != NODE_NONE ? 4 : 1); k++) {
            NodeId a = c->cand[j][1 + k % 2];
            if (c->u[a] == (CHAIN_SUM | 1) && (k >= 2 || p->where[a].acc)) {
                p->where[i].num = p->where[a].num;
                if (!p->where[a].acc)
                    p->where[a].acc = 1;
                p->where[i].acc = 2;
                break;
            }
        }
    }
    free(c->u);
    free(c->cand);
}

/* Groups elementwise tensor nodes into the loops of their users: a node
 * joins when all its users are elementwise nodes of its shape (or sums of
 * it) in one group. Deciding users before operands (a reverse sweep) makes
 * whole expression trees one loop: sum(100*(y - x^2)^2 + (1 - x)^2) is a
 * single pass with no arrays. Returns the doubles of arrays saved. */
static uint32_t fuse(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    if (!p->tensors)            /* only scalars: no elementwise tensor, no sum */
        return 0;
    p->first = xcalloc(g->n, sizeof *p->first);
    p->next = xcalloc(g->n, sizeof *p->next);
    NodeId *head = xcalloc(g->n, sizeof *head);    /* the group its users offer */
    NodeId *grp = xcalloc(g->n, sizeof *grp);
    uint8_t *bad = xcalloc(g->n, 1);               /* users disagree, or a root */
    for (uint32_t r = 0; r < nroots; r++)
        bad[roots[r]] = 1;
    uint32_t saved = 0;
    for (NodeId i = g->n - 1; i > 0; i--) {
        const Node *n = &g->node[i];
        if (p->where[i].store == S_NONE)
            continue;
        int elementwise = (op_info[n->op].flags & OPF_ELEM) && p->where[i].store == S_ARRAY;
        NodeId h = 0;
        if (elementwise && !bad[i] && head[i]) {
            p->where[i].store = S_FUSED;
            grp[i] = h = head[i];
            saved += shape_size(n->shape);
        } else if (elementwise || (n->op == OP_SUM && p->where[i].store == S_TEMP)) {
            h = i;
        }
        for (int k = 0; k < op_info[n->op].arity; k++) {
            NodeId a = n->arg[k];
            int fits = h && (n->op == OP_SUM || shape_eq(g->node[a].shape, n->shape));
            if (!fits || (head[a] && head[a] != h))
                bad[a] = 1;
            else
                head[a] = h;
        }
    }
    NodeId *tail = head;                /* reused: the last member of each head */
    memset(tail, 0, g->n * sizeof *tail);
    for (NodeId i = 1; i < g->n; i++) {
        if (p->where[i].store != S_FUSED)
            continue;
        NodeId h = grp[i];
        if (!p->first[h])
            p->first[h] = i;
        else
            p->next[tail[h]] = i;
        tail[h] = i;
    }
    free(head);
    free(grp);
    free(bad);
    return saved;
}

/* Blocks of the work array for tensors, reused once a tensor is dead: a
 * value is dead after the last node that reads it (a fused reader reads at
 * its group's head; a view extends the life of what it views). A block is
 * taken before the operands' blocks are given back, so no loop ever writes
 * over what it is still reading. */
static void assign_work(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    uint32_t *pos = xmalloc(g->n * sizeof *pos), *last = xcalloc(g->n, sizeof *last);
    NodeId *release = xcalloc(g->n, sizeof *release), *rnext = xmalloc(g->n * sizeof *rnext);
    for (NodeId i = 0; i < g->n; i++)
        pos[i] = i;
    for (NodeId h = 1; h < g->n; h++)
        for (NodeId m = p->first[h]; m; m = p->next[m])
            pos[m] = h;
    for (NodeId i = 1; i < g->n; i++)
        if (p->where[i].store != S_NONE)
            for (int k = 0; k < op_info[g->node[i].op].arity; k++)
                if (last[g->node[i].arg[k]] < pos[i])
                    last[g->node[i].arg[k]] = pos[i];
    for (uint32_t r = 0; r < nroots; r++)
        last[roots[r]] = UINT32_MAX;
    for (NodeId i = g->n - 1; i > 0; i--)
        if (p->where[i].store == S_ALIAS && last[g->node[i].arg[0]] < last[i])
            last[g->node[i].arg[0]] = last[i];
    for (NodeId i = 1; i < g->n; i++)
        if (p->where[i].store == S_WORK && last[i] != UINT32_MAX) {
            NodeId at = last[i] > i ? last[i] : i;
            rnext[i] = release[at];
            release[at] = i;
        }
    uint32_t *foff = xmalloc(g->n * sizeof *foff), *fsize = xmalloc(g->n * sizeof *fsize), nfree = 0;
    p->work = 0;
    for (NodeId i = 1; i < g->n; i++) {
        if (p->where[i].store == S_WORK) {
            uint32_t need = shape_size(g->node[i].shape), best = nfree;
            for (uint32_t f = 0; f < nfree && f < 4096; f++)
                if (fsize[f] >= need && (best == nfree || fsize[f] < fsize[best]))
                    best = f;
            if (best < nfree) {
                p->where[i].num = foff[best];
                foff[best] += need;
                fsize[best] -= need;
                if (fsize[best] == 0) {
                    foff[best] = foff[nfree - 1];
                    fsize[best] = fsize[--nfree];
                }
            } else {
                p->where[i].num = p->work;
                p->work += need;
            }
        }
        for (NodeId b = release[i]; b; b = rnext[b]) {
            foff[nfree] = p->where[b].num;
            fsize[nfree++] = shape_size(g->node[b].shape);
        }
    }
    free(pos);
    free(last);
    free(release);
    free(rnext);
    free(foff);
    free(fsize);
}

/* Pairs each emitted softmax with an emitted logsumexp of the same
 * operand: logsumexp is then m + log(s) with the softmax's own maximum m
 * and sum s, the same numbers its own loop would add up. The later node
 * must own its storage (a temporary or an array, not a reused slot or
 * work block), since it is computed at the earlier one's place. */
static void pair_softmax(const Emitter *e, Plan *p)
{
    const Graph *g = e->k->g;
    if (!p->softmaxes)
        return;
    p->pair = xcalloc(g->n, sizeof *p->pair);
    NodeId *sm = xcalloc(g->n, sizeof *sm);      /* per operand: its softmax */
    for (NodeId i = 1; i < g->n; i++)
        if (g->node[i].op == OP_SOFTMAX && p->where[i].store != S_NONE)
            sm[g->node[i].arg[0]] = i;
    for (NodeId i = 1; i < g->n; i++) {
        NodeId j = g->node[i].op == OP_LOGSUMEXP && p->where[i].store != S_NONE ? sm[g->node[i].arg[0]] : 0;
        Store later = j ? p->where[i > j ? i : j].store : S_NONE;
        if (later == S_TEMP || later == S_ARRAY) {
            p->pair[i] = j;
            p->pair[j] = i;
        }
    }
    free(sm);
}

/* Arrays that only the loop run computing them reads, at element i,
 * become locals of that loop: in W4, x[i+1] - x[i]^2 feeds the value's
 * term and the gradient's, two loops that loop_run joins into one, and
 * need not be stored. Returns the doubles saved. */
static uint32_t localise(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    const Graph *g = e->k->g;
    /* Only scalars: no loop runs, so nothing is read inside one, and no
     * output is written inside one or in place (the readers of run,
     * outside and roots all start from a tensor). */
    if (!p->tensors)
        return 0;
    NodeId *run = p->run = xcalloc(g->n, sizeof *run);
    uint8_t *outside = p->outside = xcalloc(g->n, 1);
    p->roots = xcalloc(g->n, sizeof *p->roots);
    for (uint32_t r = 0; r < nroots; r++)
        p->roots[roots[r]]++;
    for (NodeId i = 1, next; i < g->n; i = next) {
        next = i + 1;
        if (!plan_emitted(p, i) || !plan_loop_size(e, p, i))
            continue;
        next = plan_run_end(e, p, i);
        for (NodeId m = i; m < next; m++)
            run[m] = i;
    }
    for (NodeId h = 1; h < g->n; h++)           /* a fused member runs with its head */
        for (NodeId m = p->first[h]; m; m = p->next[m])
            run[m] = run[h];
    for (NodeId u = 1; u < g->n; u++)
        if (p->where[u].store != S_NONE)
            for (int k = 0; k < op_info[g->node[u].op].arity; k++)
                if (!run[u] || run[u] != run[g->node[u].arg[k]])
                    outside[g->node[u].arg[k]] = 1;
    uint32_t saved = 0;
    for (NodeId i = 1; i < g->n; i++)
        if (p->where[i].store == S_ARRAY && run[i] && !outside[i] && !p->roots[i]) {
            p->where[i].store = S_LOCAL;
            saved += shape_size(g->node[i].shape);
        }
    return saved;
}

/* What the roots reach (a use in c->u, what ir_mark_reachable marks) and
 * where each of those values lives, decided in the same backward sweep over the nodes
 * (operands precede users), which also gathers what chain_sums needs: a
 * big kernel's nodes are read once, not once to mark, once to classify
 * and once to count uses (124 MB each at 10^6 nodes). Counts the plan's
 * tensors and softmaxes; returns the doubles of its arrays. */
static uint32_t classify(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots,
                         Chain *c)
{
    const Graph *g = e->k->g;
    enum { AHEAD = 32 };
    NodeId top = 0;
    uint32_t tensors = 0;
    c->u = xcalloc(g->n, 1);
    c->cand = xmalloc(g->n * sizeof *c->cand);
    c->ncand = 0;
    for (uint32_t r = 0; r < nroots; r++) {
        chain_use(c, roots[r]);
        if (roots[r] > top)
            top = roots[r];
    }
    for (NodeId i = top; i > 0; i--) {
        if (i > AHEAD) {        /* the operands' entries are written at random */
            const Node *m = &g->node[i - AHEAD];
            __builtin_prefetch(&c->u[m->arg[0]], 1);
            __builtin_prefetch(&c->u[m->arg[1]], 1);
        }
        if (!(c->u[i] & CHAIN_USES))
            continue;
        const Node *n = &g->node[i];
        for (int k = 0; k < op_info[n->op].arity; k++) {
            chain_use(c, n->arg[k]);
        }
        Store s;
        if (n->op == OP_CONST)
            s = S_LITERAL;
        else if (n->op == OP_INPUT)
            s = S_INPUT;
        else if (n->op == OP_TCONST)
            s = S_TCONST;
        else if (is_alias(e, i))
            s = S_ALIAS;
        else if (n->shape.rank == 0)
            s = S_TEMP;
        else
            s = S_ARRAY, tensors += shape_size(n->shape);
        p->where[i].store = s;
        if (s == S_TEMP && (n->op == OP_ADD || n->op == OP_SUB)) {
            c->cand[c->ncand][0] = i;
            c->cand[c->ncand][1] = n->arg[0];
            c->cand[c->ncand++][2] = n->op == OP_ADD ? n->arg[1] : NODE_NONE;
        }
        p->tensors += n->shape.rank > 0;
        p->softmaxes += n->op == OP_SOFTMAX;
    }
    return tensors;
}

void plan_make(const Emitter *e, const NodeId *roots, uint32_t nroots, Plan *p)
{
    const Graph *g = e->k->g;
    uint32_t budget = e->o && e->o->max_locals > 0 ? (uint32_t)e->o->max_locals
                                                   : EMIT_DEFAULT_MAX_LOCALS;
    p->early = p->early_next = NULL;
    p->writes = NULL;
    p->band_run = NULL;
    p->nwrites = p->nzero = 0;
    /* A kernel of scalars only (a big formula) needs none of the per-node
     * arrays for tensors: they stay NULL (each one a full pass of fresh
     * pages over the nodes: 2.2 million nodes, 9 MB an array). */
    p->first = p->next = p->pair = p->run = NULL;
    p->outside = NULL;
    p->roots = p->out_at = p->wfirst = p->wlast = NULL;
    p->where = xcalloc(g->n, sizeof *p->where);
    p->tensors = p->softmaxes = 0;
    Chain chain;
    uint32_t scalars = 0, tensors = classify(e, p, roots, nroots, &chain);
    for (NodeId i = 1; i < g->n; i++)           /* temporaries in node order */
        if (p->where[i].store == S_TEMP)
            p->where[i].num = scalars++;
    p->slots = scalars > budget;
    if (p->tensors) {
        p->out_at = xcalloc(g->n, sizeof *p->out_at);
        p->wfirst = xcalloc(g->n, sizeof *p->wfirst);
        p->wlast = xcalloc(g->n, sizeof *p->wlast);
    }
    tensors -= fuse(e, p, roots, nroots);
    tensors -= localise(e, p, roots, nroots);
    p->work = 0;
    p->nslots = 0;
    p->slots_in_work = 0;
    int split = split_plan(e, p, scalars, nroots, budget);  /* decides its own slots */
    p->slots |= split;
    if (!split && tensors + scalars > budget) {
        /* Tensors go to the work array, scalars to slots if still too many. */
        uint32_t nwork = 0;
        for (NodeId i = 1; i < g->n; i++)
            if (p->where[i].store == S_ARRAY)
                p->where[i].store = S_WORK, nwork++;
        if (nwork)      /* a big scalar kernel has none: skip the sweeps */
            assign_work(e, p, roots, nroots);
        if (scalars > budget) {
            for (NodeId i = 1; i < g->n; i++)
                if (p->where[i].store == S_TEMP)
                    p->where[i].store = S_SLOT;
            p->nslots = assign_slots(e, p, chain.u, roots, nroots);
            if (p->nslots > budget) {
                p->slots_in_work = 1;
                p->work += p->nslots;
            }
        }
    }
    chain_sums(p, &chain);
    pair_softmax(e, p);
}

/* The work array again, after some tensors stopped needing a block
 * (written straight into out or grad, or computed inside their loops):
 * blocks for the tensors still in it, then the slots. */
void plan_rework(const Emitter *e, Plan *p, const NodeId *roots, uint32_t nroots)
{
    int any = 0;                /* only tensors go to S_WORK (plan_make) */
    for (NodeId i = 1; p->tensors && i < e->k->g->n && !any; i++)
        any = p->where[i].store == S_WORK;
    p->work = 0;
    if (any)
        assign_work(e, p, roots, nroots);
    if (p->slots_in_work)
        p->work += p->nslots;
}

void plan_free(Plan *p)
{
    free(p->first);
    free(p->next);
    free(p->where);
    free(p->early);
    free(p->early_next);
    free(p->pair);
    free(p->run);
    free(p->outside);
    free(p->roots);
    free(p->writes);
    free(p->wfirst);
    free(p->out_at);
    free(p->wlast);
    free(p->order);             /* part_at is in its block */
    free(p->band_run);
}

/* The trip count of node i's loop when it is an elementwise or fused loop
 * that reads and writes element i only, else 0. */
uint32_t plan_loop_size(const Emitter *e, const Plan *p, NodeId i)
{
    const Node *n = node(e, i);
    if (p->first && p->first[i])
        return n->op == OP_SUM ? size_of(e, n->arg[0]) : size_of(e, i);
    if ((op_info[n->op].flags & OPF_ELEM) && n->shape.rank > 0)
        return size_of(e, i);
    return 0;
}

int plan_emitted(const Plan *p, NodeId i)
{
    Store s = p->where[i].store;
    return !(s == S_NONE || s == S_LITERAL || s == S_INPUT || s == S_TCONST || s == S_FUSED);
}

/* Consecutive loops of one trip count become one loop (declarations
 * first): each reads only element i of what the earlier ones wrote, so one
 * pass computes them all, with values in registers instead of re-read
 * arrays. A sum ends the run: later loops may read its total. Returns
 * the node after the run. */
/* A scalar between two loops of a run that reads nothing the run computes
 * is computed before the run instead of splitting it (W3's Jacobian: the
 * s[k] of each row); so is an alias of an array made before the run. Not with reused slots: a slot may still hold a value
 * that the loop reads. */
static int hoistable(const Emitter *e, const Plan *p, NodeId i, NodeId first)
{
    const Node *n = node(e, i);
    /* An alias is a pointer into an array made before the run (f_hvp's
     * slices of the direction v): declaring it early changes nothing. */
    int alias = p->where[i].store == S_ALIAS;
    if ((n->shape.rank != 0 && !alias) || (p->slots && !alias) || n->op == OP_LOGSUMEXP ||
        n->op == OP_SUM)
        return 0;
    for (int k = 0; k < op_info[n->op].arity; k++)
        if (n->arg[k] >= first && node(e, n->arg[k])->shape.rank)
            return 0;
    return 1;
}

/* The end of the run of loops that starts at node first (see loop_run). */
NodeId plan_run_end(const Emitter *e, const Plan *p, NodeId first)
{
    const Graph *g = e->k->g;
    uint32_t size = plan_loop_size(e, p, first);
    NodeId end = first;
    for (NodeId i = first; i < g->n; i++) {
        if (!plan_emitted(p, i) || (!plan_loop_size(e, p, i) && hoistable(e, p, i, first)))
            continue;
        if (plan_loop_size(e, p, i) != size)
            break;
        end = i + 1;
        if (g->node[i].op == OP_SUM)
            break;
    }
    return end;
}

/* Marks the scalar gradient entries (vec[i]: input i's, of k->grad or
 * k->hvp) that body() can store right after computing them. Storing them at the end instead lets gcc (its TER pass)
 * sink each entry's last operation to the store, keeping its operands live
 * across the whole function. Returns per input: stored early. */
uint8_t *plan_early_stores(const Emitter *e, Plan *p, const NodeId *vec, const uint32_t *npieces)
{
    const Kernel *k = e->k;
    uint32_t nin = k->ninputs - k->nparams;
    uint8_t *done = xmalloc(k->ninputs + 1);
    memset(done, 0, k->ninputs + 1);
    /* Only the entries plan_early reads are written: no zeroing of a
     * per-node array (a pass of fresh pages in a big kernel). */
    p->early = xmalloc(k->g->n * sizeof *p->early);
    p->early_next = xmalloc((k->ninputs + 1) * sizeof *p->early_next);
    for (uint32_t i = nin; i-- > 0;) {
        NodeId r = vec[i];
        if (r == NODE_NONE)
            continue;
        Store s = p->where[r].store;
        if (npieces[i] || !is_scalar(e, r) || (s != S_TEMP && s != S_SLOT))
            continue;
        p->early_next[i] = plan_early(p, r);
        p->early[r] = i + 1;
        p->where[r].early = 1;
        done[i] = 1;
    }
    return done;
}

/* A piece that is a whole tensor term (unview_pieces), not a block. */
static int whole_piece(const Emitter *e, NodeId piece)
{
    Op op = (Op)node(e, piece)->op;
    return op != OP_UNVIEW && op != OP_PAD && op != OP_TCONST;
}

/* What a piece writes: a block's operand, or the whole term itself. */
NodeId plan_piece_value(const Emitter *e, NodeId piece)
{
    return whole_piece(e, piece) || node(e, piece)->op == OP_TCONST ? piece : node(e, piece)->arg[0];
}

/* The one element that is not +0 of a constant tensor, or UINT32_MAX. */
uint32_t plan_one_hot(const Emitter *e, NodeId id)
{
    if (node(e, id)->op != OP_TCONST)
        return UINT32_MAX;
    const double *v = ir_tconst_data(e->k->g, id);
    uint32_t at = UINT32_MAX;
    for (uint32_t i = 0; i < size_of(e, id); i++)
        if (v[i] != 0.0 || signbit(v[i])) {
            if (at != UINT32_MAX)
                return UINT32_MAX;
            at = i;
        }
    return at;
}

/* A gradient that is a sum of UNVIEWs (a network's parameter adjoint: one
 * block per weight matrix and bias) is written block by block into the
 * output instead of adding full-length vectors. Besides blocks, one term
 * may be a whole tensor, written first, and one-hot constants add their
 * element (W3b: softmax(x) - e_3 is the softmax, then 1 subtracted from
 * element 3). Returns the number of blocks, or 0 when root has another
 * form. */
uint32_t plan_unview_pieces(const Emitter *e, NodeId root, NodeId *pieces, uint32_t max)
{
    NodeId stack[64];
    uint32_t sp = 0, n = 0, whole = 0, blocks = 0;
    stack[sp++] = root;
    while (sp > 0) {
        NodeId id = stack[--sp];
        const Node *nd = node(e, id);
        if ((nd->op == OP_UNVIEW || nd->op == OP_PAD || plan_one_hot(e, id) != UINT32_MAX) && n < max) {
            pieces[n++] = id;
            blocks++;
        } else if (nd->op == OP_ADD && sp + 2 <= 64 &&
                 shape_eq(node(e, nd->arg[0])->shape, node(e, root)->shape) &&
                 shape_eq(node(e, nd->arg[1])->shape, node(e, root)->shape)) {
            stack[sp++] = nd->arg[0];
            stack[sp++] = nd->arg[1];
        } else if (id != root && nd->op != OP_TCONST && !whole++ && n < max) {
            pieces[n++] = id;
        } else
            return 0;
    }
    if (whole && (n != 2 || !blocks))
        return 0;               /* a + b of whole tensors is one loop */
    if (whole && !whole_piece(e, pieces[0])) {
        NodeId t = pieces[0];   /* two terms: a + b is b + a */
        pieces[0] = pieces[1], pieces[1] = t;
    }
    return n;
}

/* A block that is an outer product a b^T is written straight from a and
 * b (a network's weight gradient), never stored on its own. */
int plan_outer_piece(const Emitter *e, NodeId piece)
{
    const Node *u = node(e, piece);
    return u->op == OP_UNVIEW && node(e, u->arg[0])->op == OP_OUTER;
}

/* Contiguous blocks (views, unit-stride slices) and where they start. */
int plan_block_of(const Emitter *e, NodeId piece, uint32_t *at, uint32_t *len)
{
    const Node *u = node(e, piece);
    if (whole_piece(e, piece)) {
        *at = 0, *len = size_of(e, piece);
        return 1;
    }
    if (u->op == OP_TCONST)
        return 0;
    Shape s0 = node(e, u->arg[0])->shape;
    uint32_t r = row_size(u->shape);
    if (u->op == OP_UNVIEW || ((uint32_t)u->num == 1 && s0.rank == u->shape.rank)) {
        *at = (uint32_t)u->aux * (u->op == OP_PAD ? r : 1);
        *len = shape_size(s0);
        return 1;
    }
    return 0;
}

/* The blocks tile the whole output without overlap: assign, don't add. */
int plan_blocks_tile(const Emitter *e, NodeId root, const NodeId *pieces, uint32_t n)
{
    uint32_t total = size_of(e, root), covered = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t at, len;
        if (!plan_block_of(e, pieces[k], &at, &len))
            return 0;
        for (uint32_t q = 0; q < k; q++) {
            uint32_t at2, len2;
            plan_block_of(e, pieces[q], &at2, &len2);
            if (at < at2 + len2 && at2 < at + len)
                return 0;
        }
        covered += len;
    }
    return covered == total;
}

static void add_write(Plan *p, NodeId v, uint32_t at, int add)
{
    NodeId r = p->run[v];
    p->writes = xrealloc(p->writes, (p->nwrites + 1) * sizeof *p->writes);
    p->writes[p->nwrites++] = (LoopWrite){v, at, add, 0, 0, p->dst};
    if (p->wlast[r])
        p->writes[p->wlast[r] - 1].next = p->nwrites;
    else
        p->wfirst[r] = p->nwrites;
    p->wlast[r] = p->nwrites;
}

/* Writes an output (a root, or its blocks as store_pieces would) into
 * dst[off..] inside the loop that computes it, instead of storing it in an
 * array and copying after the body: W4's gradient of x, two overlapping
 * slices, is written by the main loop. Each element must receive its
 * terms in store_pieces' order: block k's element j comes at iteration
 * j - start_k, so the starts must not increase (two blocks may be
 * swapped: a + b is b + a). Returns 1 when arranged. */
int plan_loop_writes(const Emitter *e, Plan *p, NodeId root, const NodeId *pieces_in,
                     uint32_t n, uint32_t off)
{
    NodeId pieces[MAXP], vals[MAXP];
    uint32_t at[MAXP], len[MAXP], size = size_of(e, root);
    if (n == 0) {
        vals[0] = root, at[0] = 0, len[0] = size, n = 1;
    } else {
        memcpy(pieces, pieces_in, n * sizeof *pieces);
        for (uint32_t k = 0; k < n; k++)
            if (plan_outer_piece(e, pieces[k]) || !plan_block_of(e, pieces[k], &at[k], &len[k]))
                return 0;
        if (n == 2 && at[1] > at[0]) {
            NodeId t = pieces[0];
            pieces[0] = pieces[1], pieces[1] = t;
            plan_block_of(e, pieces[0], &at[0], &len[0]);
            plan_block_of(e, pieces[1], &at[1], &len[1]);
        }
        for (uint32_t k = 0; k < n; k++)
            vals[k] = plan_piece_value(e, pieces[k]);
    }
    int tile = n == 1 ? len[0] == size : plan_blocks_tile(e, root, pieces, n);
    NodeId run = p->run[vals[0]];
    for (uint32_t k = 0; k < n; k++) {
        Store st = p->where[vals[k]].store;
        if (!run || p->run[vals[k]] != run || plan_loop_size(e, p, run) != len[k] ||
            !(st == S_ARRAY || st == S_WORK) || (!tile && k > 0 && at[k] > at[k - 1]))
            return 0;
    }
    if (!tile && p->nzero + 2 > MAX_ZERO)
        return 0;
    if (n == 2 && !tile && at[0] == at[1] + 1 && len[0] == len[1]) {
        /* Block 0 one element after block 1 (W4: x[i+1] and x[i]): element
         * j is block 0's j-1 plus block 1's j, so block 0's value is
         * carried to the next iteration in a register instead of being
         * stored and re-read; the first element is 0.0 + block 1's, as
         * after zeroing. */
        if (at[1] > 0)
            p->zero[p->nzero][0] = off, p->zero[p->nzero++][1] = off + at[1];
        if (at[0] + len[0] < size)
            p->zero[p->nzero][0] = off + at[0] + len[0], p->zero[p->nzero++][1] = off + size;
        add_write(p, vals[1], off + at[1], 1);
        p->writes[p->nwrites - 1].carry = vals[0];
        p->roots[vals[0]]--;
        p->roots[vals[1]]--;
        return 1;
    }
    if (!tile && at[0] > 0)
        p->zero[p->nzero][0] = off, p->zero[p->nzero++][1] = off + at[0];
    if (!tile && at[0] + len[0] < size)
        p->zero[p->nzero][0] = off + at[0] + len[0], p->zero[p->nzero++][1] = off + size;
    for (uint32_t k = 0; k < n; k++) {
        add_write(p, vals[k], off + at[k], !tile && k > 0);
        p->roots[vals[k]]--;
    }
    return 1;
}

/* An output array that is its own output, or the first block that
 * store_pieces assigns, is computed in place in dst (a softmax straight
 * into grad): no copy. Only when nothing else stores it, and never for
 * grad_params (it may be null). Returns 1 when the root needs no store. */
int plan_in_place(const Emitter *e, Plan *p, NodeId root, const NodeId *pieces,
                  uint32_t n, uint32_t off)
{
    uint32_t at = 0, len = size_of(e, root);
    NodeId v = root;
    if (n > 0) {
        if (plan_blocks_tile(e, root, pieces, n) || plan_outer_piece(e, pieces[0]) ||
            !plan_block_of(e, pieces[0], &at, &len))
            return 0;
        v = plan_piece_value(e, pieces[0]);
    }
    if (p->where[v].store != S_ARRAY || p->roots[v] != 1 || p->out_at[v] || size_of(e, v) != len)
        return 0;
    p->out_at[v] = 1 + off + at;
    return n == 0;
}

/* Values that are now only written inside their loop need no array. */
void plan_localise_written(Plan *p)
{
    for (uint32_t w = 0; w < 2 * p->nwrites; w++) {
        NodeId v = w % 2 ? p->writes[w / 2].carry : p->writes[w / 2].v;
        if (v && !p->roots[v] && !p->outside[v] && (p->where[v].store == S_ARRAY || p->where[v].store == S_WORK))
            p->where[v].store = S_LOCAL;
    }
}

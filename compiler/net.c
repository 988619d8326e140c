/* net.c — network declarations. A network is sugar: each dense layer
 * becomes W @ h + b and its activation, with W and b views into one
 * parameter vector (layer by layer: weights row-major, then biases), the
 * network's last input. Initial values are kept so that formulas can call
 * a network without passing parameters, and so the emitter can write an
 * initialisation function. */
#include "front.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Opt {
    const char *name;
    Loc loc;
    NodeId value;
    Loc vloc;
} Opt;

struct NetBuild {
    Func *func;
    NodeId h;                   /* the current activations */
    Layer *layer;
    NodeId *w, *b;              /* per-layer placeholder inputs */
    uint32_t nlayers, cap;
    Opt opt[8];
    int nopt;
    int failed;
};

double net_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

double net_init_limit(const Layer *l)
{
    if (l->act == OP_RELU || l->act == OP_STEP)
        return sqrt(6.0 / l->in);
    return sqrt(6.0 / (l->in + l->units));
}

void net_init_params(const Network *n, uint64_t seed, double *p)
{
    uint64_t state = seed;
    for (uint32_t k = 0; k < n->nlayers; k++) {
        const Layer *l = &n->layer[k];
        uint32_t nw = l->in * l->units;
        double limit = net_init_limit(l);
        for (uint32_t i = 0; i < nw; i++)
            p[i] = l->wkind == INIT_SCALAR ? l->wval : l->wkind == INIT_LITERAL
                       ? l->wlit[i] : (2.0 * net_uniform(&state) - 1.0) * limit;
        for (uint32_t i = 0; i < l->units; i++)
            p[nw + i] = l->bkind == INIT_SCALAR ? l->bval : l->blit[i];
        p += nw + l->units;
    }
}

void front_net_begin(Parser *P, const char *name, Loc loc)
{
    front_func_begin(P, name, loc);
    struct NetBuild *nb = xmalloc(sizeof *nb);
    memset(nb, 0, sizeof *nb);
    nb->func = P->cur;
    P->net = nb;
}

void front_layer_opt(Parser *P, const char *name, Loc loc, NodeId value, Loc vloc)
{
    struct NetBuild *nb = P->net;
    if (!nb || nb->nopt == 8) {
        front_error(P, loc, "too many layer options");
        return;
    }
    nb->opt[nb->nopt++] = (Opt){name, loc, value, vloc};
}

static int activation(const char *name)
{
    static const struct { const char *name; int op; } acts[] = {
        {"linear", -1}, {"relu", OP_RELU}, {"sigmoid", OP_SIGMOID},
        {"tanh", OP_TANH}, {"softmax", OP_SOFTMAX}, {"step", OP_STEP},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (!strcmp(acts[i].name, name))
            return acts[i].op;
    return -2;
}

/* weights = / bias = : a constant scalar (broadcast) or a literal of the
 * exact shape; returns 0 after reporting an error. */
static int init_value(Parser *P, const Opt *o, Shape want, InitKind *kind,
                      double *val, const double **lit)
{
    Graph *g = P->prog->g;
    if (o->value == NODE_NONE)
        return 0;
    const Node *n = &g->node[o->value];
    char a[48], b[48];
    if (n->op == OP_CONST) {
        *kind = INIT_SCALAR;
        *val = n->num;
        return 1;
    }
    if (n->op == OP_TCONST && shape_eq(n->shape, want)) {
        uint32_t size = shape_size(want);
        double *copy = arena_alloc(P->prog->arena, size * sizeof *copy);
        memcpy(copy, ir_tconst_data(g, o->value), size * sizeof *copy);
        *kind = INIT_LITERAL;
        *lit = copy;
        return 1;
    }
    if (n->op == OP_TCONST)
        front_error(P, o->vloc, "'%s' has shape %s, but this layer needs %s (or a scalar)",
                    o->name, shape_str(n->shape, a), shape_str(want, b));
    else
        front_error(P, o->vloc, "'%s' must be a constant", o->name);
    return 0;
}

static int layer_input(Parser *P, struct NetBuild *nb, Loc loc)
{
    Graph *g = P->prog->g;
    if (nb->nlayers > 0 || nb->h != NODE_NONE)
        return 1;
    if (P->nparams != 1 || g->node[P->params[0]].shape.rank != 1) {
        front_error(P, nb->func->loc, "a network takes exactly one vector input, e.g. 'network %s(x[4])'",
                    nb->func->name);
        return 0;
    }
    nb->h = P->params[0];
    (void)loc;
    return 1;
}

static void push_layer(struct NetBuild *nb, Layer l, NodeId w, NodeId b)
{
    if (nb->nlayers == nb->cap) {
        nb->cap = nb->cap ? 2 * nb->cap : 8;
        nb->layer = xrealloc(nb->layer, nb->cap * sizeof *nb->layer);
        nb->w = xrealloc(nb->w, nb->cap * sizeof *nb->w);
        nb->b = xrealloc(nb->b, nb->cap * sizeof *nb->b);
    }
    nb->layer[nb->nlayers] = l;
    nb->w[nb->nlayers] = w;
    nb->b[nb->nlayers++] = b;
}

void front_dense(Parser *P, const char *kind, Loc kloc, double units, Loc uloc,
                 const char *act, Loc aloc, int nopts)
{
    struct NetBuild *nb = P->net;
    Graph *g = P->prog->g;
    int nopt = nb->nopt;
    nb->nopt = 0;
    (void)nopts;
    if (strcmp(kind, "dense") != 0) {
        front_error(P, kloc, "unknown layer '%s' (layers: dense)", kind);
        nb->failed = 1;
        return;
    }
    Layer l = {.act = activation(act), .wkind = INIT_RANDOM, .bkind = INIT_SCALAR};
    if (l.act == -2) {
        front_error(P, aloc, "unknown activation '%s' (linear, relu, sigmoid, tanh, softmax, step)", act);
        nb->failed = 1;
    }
    if (!(units >= 1 && units <= 1e6 && units == (double)(int64_t)units)) {
        front_error(P, uloc, "the number of units must be a positive integer");
        nb->failed = 1;
    }
    if (nb->failed || !layer_input(P, nb, kloc)) {
        nb->failed = 1;
        return;
    }
    l.units = (uint32_t)units;
    l.in = g->node[nb->h].shape.dim[0];
    if ((uint64_t)l.units * l.in > GRADC_MAX_ELEMS) {
        front_error(P, uloc, "a layer of %u units on %u inputs has more than %u weights",
                    l.units, l.in, GRADC_MAX_ELEMS);
        nb->failed = 1;
        return;
    }
    for (int i = 0; i < nopt; i++) {
        Opt *o = &nb->opt[i];
        if (!strcmp(o->name, "weights"))
            nb->failed |= !init_value(P, o, shape_mat(l.units, l.in), &l.wkind, &l.wval, &l.wlit);
        else if (!strcmp(o->name, "bias"))
            nb->failed |= !init_value(P, o, shape_vec(l.units), &l.bkind, &l.bval, &l.blit);
        else {
            front_error(P, o->loc, "unknown layer option '%s' (weights, bias)", o->name);
            nb->failed = 1;
        }
    }
    if (nb->failed)
        return;
    NodeId w = ir_input(g, shape_mat(l.units, l.in));
    NodeId b = ir_input(g, shape_vec(l.units));
    NodeId z = ir_add(g, ir_matmul(g, w, nb->h, 0), b);
    if (l.act == OP_SOFTMAX)
        z = ir_softmax(g, z);
    else if (l.act >= 0)
        z = ir_op(g, (Op)l.act, z, NODE_NONE);
    nb->h = z;
    push_layer(nb, l, w, b);
}

void front_net_end(Parser *P, Loc loc)
{
    struct NetBuild *nb = P->net;
    Graph *g = P->prog->g;
    Func *f = nb->func;
    P->net = NULL;
    if (!nb->failed && nb->nlayers == 0)
        front_error(P, loc, "network '%s' has no layers", f->name);
    uint64_t sum = 0;           /* each layer is within the limit, so no overflow */
    for (uint32_t k = 0; k < nb->nlayers; k++)
        sum += (uint64_t)nb->layer[k].units * (nb->layer[k].in + 1);
    if (!nb->failed && sum > GRADC_MAX_ELEMS) {
        front_error(P, f->loc, "network '%s' has more than %u parameters", f->name, GRADC_MAX_ELEMS);
        nb->failed = 1;
    }
    NodeId result = NODE_NONE;
    Network *net = arena_alloc(P->prog->arena, sizeof *net);
    if (!nb->failed && nb->nlayers > 0) {
        net->nlayers = nb->nlayers;
        net->layer = arena_alloc(P->prog->arena, nb->nlayers * sizeof *net->layer);
        memcpy(net->layer, nb->layer, nb->nlayers * sizeof *net->layer);
        uint32_t total = 0;
        for (uint32_t k = 0; k < nb->nlayers; k++)
            total += nb->layer[k].units * (nb->layer[k].in + 1);
        net->nparams = total;
        NodeId theta = ir_input(g, shape_vec(total));
        NodeId *from = xmalloc(2 * nb->nlayers * sizeof *from);
        NodeId *to = xmalloc(2 * nb->nlayers * sizeof *to);
        uint32_t off = 0;
        for (uint32_t k = 0; k < nb->nlayers; k++) {
            const Layer *l = &nb->layer[k];
            from[2 * k] = nb->w[k];
            to[2 * k] = ir_view(g, theta, off, shape_mat(l->units, l->in));
            off += l->units * l->in;
            from[2 * k + 1] = nb->b[k];
            to[2 * k + 1] = ir_view(g, theta, off, shape_vec(l->units));
            off += l->units;
        }
        result = ir_substitute(g, nb->h, f->first, from, to, 2 * nb->nlayers);
        free(from);
        free(to);
        /* An input called params: one error at it; the vector then gets
         * a name no source can spell, and the program is not used. */
        const char *pname = "params";
        for (uint32_t i = 0; i < P->nparams; i++)
            if (!strcmp(P->param_name[i], "params")) {
                front_error(P, P->param_loc[i], "a network's input cannot be called 'params': "
                            "that is the name of its parameter vector");
                pname = "params'";
            }
        front_param(P, pname, loc, SHAPE_SCALAR);       /* replaced below */
        P->params[P->nparams - 1] = theta;
        f->nparams = 1;
        f->net = net;
    }
    front_finish_func(P, f, result);
    front_register_func(P, f);
    free(nb->layer);
    free(nb->w);
    free(nb->b);
    free(nb);
}

/* A network applied to a batch X (one sample per row) as matrix products:
 * H W^T plus the bias in every row, activations elementwise, softmax by
 * rows. One GEMM per layer instead of one matrix-vector product per sample. */
NodeId net_call_batch(Parser *P, const Network *net, NodeId X, NodeId theta)
{
    Graph *g = P->prog->g;
    uint32_t rows = g->node[X].shape.dim[0], off = 0;
    NodeId h = X;
    for (uint32_t k = 0; k < net->nlayers; k++) {
        const Layer *l = &net->layer[k];
        NodeId w = ir_view(g, theta, off, shape_mat(l->units, l->in));
        off += l->units * l->in;
        NodeId b = ir_view(g, theta, off, shape_vec(l->units));
        off += l->units;
        NodeId z = ir_add(g, ir_matmul(g, h, w, 2), ir_outer(g, ir_ones(g, rows), b));
        if (l->act == OP_SOFTMAX)
            z = ir_softmax(g, z);
        else if (l->act >= 0)
            z = ir_op(g, (Op)l->act, z, NODE_NONE);
        h = z;
    }
    return h;
}

/* A declaration broken off by a syntax error. */
void front_net_abandon(Parser *P)
{
    struct NetBuild *nb = P->net;
    if (!nb)
        return;
    free(nb->layer);
    free(nb->w);
    free(nb->b);
    free(nb);
    P->net = NULL;
}

NodeId front_net_init(Parser *P, Func *f)
{
    Network *n = f->net;
    if (!n)
        return NODE_NONE;
    if (n->init == NODE_NONE) {
        double *v = xmalloc(n->nparams * sizeof *v);
        net_init_params(n, 0, v);
        n->init = ir_tconst(P->prog->g, shape_vec(n->nparams), v);
        free(v);
    }
    return n->init;
}

/* test_ir.c — the hash-consed IR (compiler/ir.c) and the kernel extraction
 * of compiler/opt.c: equal subtrees are one node, commutative operands are
 * put in one order, constants fold, only IEEE-exact simplifications are
 * made, unused definitions disappear, and the kernel text depends on the
 * formula's structure only. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradc.h"

static int is_const(const Graph *g, NodeId id, double v)
{
    return g->node[id].op == OP_CONST && memcmp(&g->node[id].num, &v, sizeof v) == 0;
}

static Program *parse(const char *text, int bare)
{
    Source src = {"t.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, bare, &d);
    cr_assert_not_null(p, "does not compile:\n%s\n%s", text, d.out.data ? d.out.data : "");
    diag_free(&d);
    return p;
}

/* kernel_dump text of function `name` (NULL: the bare expression). */
static char *kernel_text(const char *text, const char *name, int grad)
{
    Program *p = parse(text, name == NULL);
    Func *f = name ? program_find(p, name) : p->bare;
    cr_assert_not_null(f);
    Kernel *k = opt_kernel(p, f, grad);
    Buf b = {0};
    kernel_dump(k, &b);
    kernel_free(k);
    program_free(p);
    return b.data;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
        n++;
    return n;
}

/* ---- hash-consing ---- */

Test(ir, hash_consing_shares_equal_subtrees)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR), y = ir_input(g, SHAPE_SCALAR);
    NodeId a = ir_op(g, OP_SIN, ir_mul(g, x, y), 0);
    uint32_t n = g->n;
    NodeId b = ir_op(g, OP_SIN, ir_mul(g, x, y), 0);
    cr_expect_eq(a, b);
    cr_expect_eq(g->n, n, "no node was added");
    cr_expect_eq(ir_const(g, 2.5), ir_const(g, 2.5));
    cr_expect_neq(ir_input(g, SHAPE_SCALAR), ir_input(g, SHAPE_SCALAR), "inputs are distinct");
    ir_free(g);
}

Test(ir, shared_subexpressions_are_computed_once)
{
    /* exp(x*y) three times and x*y four times: one node each. */
    char *k = kernel_text("exp(x*y) + exp(x*y)*x*y + sin(exp(x*y))", NULL, 0);
    cr_expect_eq(count(k, " = exp "), 1, "%s", k);
    cr_expect_eq(count(k, " = mul %1 %2\n") + count(k, " = mul %2 %1\n"), 1, "%s", k);
    free(k);
}

Test(ir, commutative_operands_have_one_order)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR), y = ir_input(g, SHAPE_SCALAR);
    cr_expect_eq(ir_mul(g, x, y), ir_mul(g, y, x));
    cr_expect_eq(ir_add(g, x, y), ir_add(g, y, x));
    cr_expect_eq(ir_op(g, OP_HYPOT, x, y), ir_op(g, OP_HYPOT, x, y));
    /* Not commutative: */
    cr_expect_neq(ir_sub(g, x, y), ir_sub(g, y, x));
    cr_expect_neq(ir_div(g, x, y), ir_div(g, y, x));
    cr_expect_neq(ir_op(g, OP_MAX, x, y), ir_op(g, OP_MAX, y, x), "max: ties go to the first");
    cr_expect_neq(ir_op(g, OP_POW, x, y), ir_op(g, OP_POW, y, x));
    /* Deeper: sin(x)*cos(y) built in either order. */
    NodeId s = ir_op(g, OP_SIN, x, 0), c = ir_op(g, OP_COS, y, 0);
    cr_expect_eq(ir_mul(g, s, c), ir_mul(g, c, s));
    ir_free(g);
}

/* The structural hash as ir.c defines it, written out in full: its value
 * orders commutative operands and so reaches the emitted C, which must
 * not change when its computation is made faster. */
static uint64_t mix(uint64_t h, uint64_t v)
{
    return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
}

static uint64_t sh_of(const Graph *g, NodeId id)
{
    const Node *n = &g->node[id];
    uint64_t bits;
    memcpy(&bits, &n->num, sizeof bits);
    uint64_t h = mix(mix(n->op, bits), n->op == OP_TCONST ? 0 : (uint32_t)n->aux);
    h = mix(mix(mix(h, n->shape.rank), n->shape.dim[0]), n->shape.dim[1]);
    for (int i = 0; i < op_info[n->op].arity; i++)
        h = mix(h, g->node[n->arg[i]].sh);
    return h * 0xc4ceb9fe1a85ec53ull;
}

Test(ir, structural_hashes_keep_their_values)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR), v = ir_input(g, shape_vec(3));
    double e[3] = {1, 2, 3};
    NodeId ids[] = {x, v, ir_const(g, 2.5), ir_const(g, 0.0), ir_op(g, OP_SIN, x, 0),
                    ir_mul(g, x, ir_const(g, 3)), ir_div(g, ir_const(g, 3), x),
                    ir_mul(g, v, x), ir_sum(g, v), ir_tconst(g, shape_vec(3), e),
                    ir_slice(g, v, 1, 2, 1), ir_bcast(g, x, shape_vec(3))};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        cr_expect_eq(g->node[ids[i]].sh, sh_of(g, ids[i]), "node %zu", i);
    cr_expect_eq(g->node[x].sh, 0x912a26dc4fa4f0ccull, "%#llx",
                 (unsigned long long)g->node[x].sh);
    ir_free(g);
}

/* ---- constant folding ---- */

Test(ir, constant_folding)
{
    Graph *g = ir_new();
    NodeId two = ir_const(g, 2), three = ir_const(g, 3);
    cr_expect(is_const(g, ir_add(g, two, three), 5));
    cr_expect(is_const(g, ir_mul(g, two, three), 6));
    cr_expect(is_const(g, ir_sub(g, two, three), -1));
    cr_expect(is_const(g, ir_div(g, three, two), 1.5));
    cr_expect(is_const(g, ir_neg(g, two), -2));
    cr_expect(is_const(g, ir_op(g, OP_POW, two, ir_const(g, 10)), 1024));
    cr_expect(is_const(g, ir_op(g, OP_MAX, two, three), 3));
    cr_expect(is_const(g, ir_op(g, OP_EXP, ir_const(g, 0), 0), 1));
    cr_expect(is_const(g, ir_op(g, OP_SQRT, ir_const(g, 16), 0), 4));
    /* Folding keeps IEEE results: 1/0 is inf, 0/0 NaN, and they stay
     * constants of their own. */
    NodeId inf = ir_div(g, ir_const(g, 1), ir_const(g, 0));
    cr_expect(g->node[inf].op == OP_CONST && isinf(g->node[inf].num) && g->node[inf].num > 0);
    NodeId nan = ir_div(g, ir_const(g, 0), ir_const(g, 0));
    cr_expect(g->node[nan].op == OP_CONST && isnan(g->node[nan].num));
    ir_free(g);
}

Test(ir, folding_in_formulas)
{
    /* 2*3 + x: the constant part folds to 6; pi*2 to one constant. */
    char *k = kernel_text("2*3 + x*(pi*2)", NULL, 0);
    cr_expect(strstr(k, "const 6\n"), "%s", k);
    cr_expect(strstr(k, "const 6.283185307179586\n"), "%s", k);
    cr_expect_eq(count(k, " = const "), 2, "%s", k);
    free(k);
    k = kernel_text("2^3^2 + 0*0", NULL, 0);
    cr_expect_str_eq(k, "function f()\n  %1 = const 512\n  value %1\n");
    free(k);
}

Test(ir, zero_and_negative_zero_are_different_constants)
{
    Graph *g = ir_new();
    NodeId z = ir_const(g, 0.0), nz = ir_const(g, -0.0);
    cr_expect_neq(z, nz);
    cr_expect(signbit(g->node[nz].num));
    cr_expect(is_const(g, ir_neg(g, z), -0.0), "-(0) folds to -0, not 0");
    ir_free(g);
}

/* ---- simplification: exactly the IEEE-exact rules ---- */

Test(ir, exact_simplifications_are_made)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR);
    NodeId one = ir_const(g, 1), m1 = ir_const(g, -1);
    cr_expect_eq(ir_mul(g, x, one), x, "x*1 = x");
    cr_expect_eq(ir_mul(g, one, x), x, "1*x = x");
    cr_expect_eq(ir_div(g, x, one), x, "x/1 = x");
    cr_expect_eq(ir_sub(g, x, ir_const(g, 0.0)), x, "x-0 = x (also for x = -0)");
    cr_expect_eq(ir_add(g, x, ir_const(g, -0.0)), x, "x+(-0) = x (also for x = -0)");
    cr_expect_eq(ir_op(g, OP_POW, x, one), x, "x^1 = x");
    NodeId nx = ir_neg(g, x);
    cr_expect_eq(ir_mul(g, x, m1), nx, "x*-1 = -x");
    cr_expect_eq(ir_div(g, x, m1), nx, "x/-1 = -x");
    cr_expect_eq(ir_neg(g, nx), x, "--x = x");
    ir_free(g);
}

Test(ir, inexact_simplifications_are_not_made)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR);
    NodeId zero = ir_const(g, 0.0);
    /* x+0 is -0+0 = +0 for x = -0, not x. */
    NodeId a = ir_add(g, x, zero);
    cr_expect_eq(g->node[a].op, OP_ADD);
    /* x*0 is NaN for x = inf or NaN, and -0 for negative x. */
    NodeId m = ir_mul(g, x, zero);
    cr_expect_eq(g->node[m].op, OP_MUL);
    /* x-x is NaN for x = inf. */
    NodeId s = ir_sub(g, x, x);
    cr_expect_eq(g->node[s].op, OP_SUB);
    /* x/x is NaN for 0, inf, NaN. */
    NodeId d = ir_div(g, x, x);
    cr_expect_eq(g->node[d].op, OP_DIV);
    /* 0-x is +0 for x = 0, while -x is -0. */
    NodeId n = ir_sub(g, zero, x);
    cr_expect_eq(g->node[n].op, OP_SUB);
    ir_free(g);
}

Test(ir, kept_rules_agree_with_ieee_at_special_values)
{
    /* The reasons above, checked on this machine's arithmetic (volatile:
     * no compile-time shortcuts). */
    volatile double nz = -0.0, inf = INFINITY, zero = 0.0;
    cr_expect(!signbit(nz + zero), "-0 + 0 is +0: x+0 -> x would be wrong");
    cr_expect(signbit(nz - zero), "-0 - 0 is -0: x-0 -> x is right");
    cr_expect(signbit(nz + -zero), "-0 + -0 is -0: x+(-0) -> x is right");
    cr_expect(isnan(inf * zero), "inf*0 is NaN: x*0 -> 0 would be wrong");
    cr_expect(isnan(inf - inf), "inf-inf is NaN: x-x -> 0 would be wrong");
}

/* Sign and scale moves (W4's gradient: 100*(2*a) is a*200, x * -y is
 * -(x*y), x + -y is x - y): made, refused where inexact, and bit for bit
 * the written form's value at special inputs (the interpreter on the
 * simplified graph against C on the written form). */
Test(ir, sign_and_scale_moves_are_exact)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR), y = ir_input(g, SHAPE_SCALAR);
#define K(v) ir_const(g, v)
    NodeId f[] = {
        ir_mul(g, ir_mul(g, x, K(2)), K(100)),          /* (x*2)*100 -> x*200 */
        ir_mul(g, ir_mul(g, x, K(-4)), K(-1.5)),        /* -> x*6 */
        ir_mul(g, x, ir_neg(g, y)),                     /* -> -(x*y) */
        ir_mul(g, ir_neg(g, x), y),
        ir_add(g, x, ir_neg(g, y)),                     /* -> x - y */
        ir_add(g, ir_neg(g, x), y),                     /* -> y - x */
        ir_sub(g, x, ir_neg(g, y)),                     /* -> x + y */
        ir_neg(g, ir_mul(g, x, K(3))),                  /* -> x*-3 */
        ir_add(g, ir_neg(g, x), ir_neg(g, y)),          /* -> -x - y, never -(x+y) */
        ir_mul(g, ir_mul(g, x, K(100)), K(2)),          /* kept: x*100 may round below normal */
        ir_mul(g, ir_mul(g, x, K(4)), K(0.5)),          /* kept: x*4 may overflow, x*2 not */
        ir_mul(g, ir_mul(g, x, K(0.5)), K(4)),          /* kept: x*0.5 may round */
        ir_mul(g, ir_mul(g, x, K(2)), K(-1e308)),       /* kept: 2 * -1e308 overflows */
        ir_neg(g, ir_sub(g, x, y)),                     /* kept: -(x-x) is -0, x-x is +0 */
    };
#undef K
    const Node *n = g->node;
#define BY(id, c) (n[id].op == OP_MUL && (is_const(g, n[id].arg[0], c) || is_const(g, n[id].arg[1], c)))
#define NESTED(id) (n[id].op == OP_MUL && (n[n[id].arg[0]].op == OP_MUL || n[n[id].arg[1]].op == OP_MUL))
    cr_expect(BY(f[0], 200), "(x*2)*100 is x*200");
    cr_expect(BY(f[1], 6), "(x*-4)*-1.5 is x*6");
    cr_expect(n[f[2]].op == OP_NEG && n[f[3]].op == OP_NEG && n[f[2]].arg[0] == n[f[3]].arg[0]);
    cr_expect(n[f[4]].op == OP_SUB && n[f[4]].arg[0] == x && n[f[4]].arg[1] == y);
    cr_expect(n[f[5]].op == OP_SUB && n[f[5]].arg[0] == y && n[f[5]].arg[1] == x);
    cr_expect(n[f[6]].op == OP_ADD);
    cr_expect(BY(f[7], -3), "-(x*3) is x*-3");
    cr_expect(n[f[8]].op == OP_SUB);
    for (int k = 9; k < 13; k++)
        cr_expect(NESTED(f[k]), "form %d is kept", k);
#undef BY
#undef NESTED
    cr_expect(n[f[13]].op == OP_NEG);
    const double sp[] = {0.0, -0.0, 1.0, -1.0, 3.3, 1e-310, -4.9e-324, 2.2250738585072014e-308,
                         1e-300, 1e308, -1e308, 8.98846567431158e307, INFINITY, -INFINITY, NAN};
    enum { NS = sizeof sp / sizeof sp[0], NF = sizeof f / sizeof f[0] };
    NodeId in[2] = {x, y};
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++) {
            volatile double a = sp[i], b = sp[j];
            double want[NF] = {(a * 2) * 100, (a * -4) * -1.5, a * -b, -a * b, a + -b, -a + b,
                               a - -b, -(a * 3), -a + -b, (a * 100) * 2, (a * 4) * 0.5,
                               (a * 0.5) * 4, (a * 2) * -1e308, -(a - b)};
            double args[2] = {a, b}, got[NF];
            interp_eval(g, in, args, 2, f, NF, got);
            for (int k = 0; k < NF; k++)
                cr_assert((isnan(got[k]) && isnan(want[k])) || !memcmp(&got[k], &want[k], sizeof got[k]),
                          "form %d at (%g, %g): %.17g, written form %.17g", k, a, b, got[k], want[k]);
        }
    ir_free(g);
}

/* ---- dead-code elimination and canonical kernels ---- */

Test(ir, unused_definitions_are_dropped)
{
    const char *src =
        "helper(x) = exp(x) * 1000\n"
        "f(x, y) {\n"
        "  unused = sinh(x) + tanh(y)\n"
        "  kept = x * y\n"
        "  kept + log(y)\n"
        "}\n";
    char *k = kernel_text(src, "f", 1);
    cr_expect(!strstr(k, "sinh"), "%s", k);
    cr_expect(!strstr(k, "tanh"), "%s", k);
    cr_expect(!strstr(k, "exp"), "%s", k);
    cr_expect(!strstr(k, "1000"), "%s", k);
    cr_expect(strstr(k, "log"), "%s", k);
    free(k);
    /* The program graph still has them: DCE happens in the kernel. */
    Program *p = parse(src, 0);
    int sinh_nodes = 0;
    for (NodeId i = 1; i < p->g->n; i++)
        sinh_nodes += p->g->node[i].op == OP_SINH;
    cr_expect_eq(sinh_nodes, 1);
    program_free(p);
}

Test(ir, unused_input_gets_zero_gradient)
{
    char *k = kernel_text("f(x, y) = x * 2\n", "f", 1);
    cr_expect_str_eq(k,
                     "function f(x, y)\n"
                     "  %1 = input 0\n"
                     "  %2 = input 1\n"
                     "  %3 = const 0\n"
                     "  %4 = const 2\n"
                     "  %5 = mul %4 %1\n"
                     "  value %5\n"
                     "  grad x %4\n"
                     "  grad y %3\n");
    free(k);
}

/* opt.c copies the kernel without looking nodes up (ir_append); the
 * kernel graph must still find its own nodes when something is built in
 * it afterwards, and never hold two equal nodes. */
Test(ir, kernel_graph_still_shares_after_the_copy)
{
    Program *p = parse("sin(x * y) + x * y / 3\n", 1);
    Kernel *k = opt_kernel(p, p->bare, 1);
    Graph *g = k->g;
    NodeId x = k->input[0], y = k->input[1];
    uint32_t n = g->n;
    NodeId xy = ir_mul(g, x, y);
    cr_expect_eq(ir_mul(g, y, x), xy);
    cr_expect_eq(ir_const(g, 3.0), ir_const(g, 3.0));
    cr_expect_eq(ir_add(g, ir_op(g, OP_SIN, xy, 0), ir_div(g, xy, ir_const(g, 3.0))), k->value);
    cr_expect_eq(g->n, n, "the kernel had every one of these nodes already");
    NodeId fresh = ir_mul(g, xy, xy);
    cr_expect_eq(g->n, n + 1);
    cr_expect_eq(ir_mul(g, xy, xy), fresh);
    kernel_free(k);
    program_free(p);
}

/* The scheduled copy reserves the kernel's node array for every src node
 * (its scratch lives there) and trims it after: the graph must still grow. */
Test(ir, trimmed_graph_still_grows)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR);
    ir_trim(g);
    cr_expect_eq(g->cap, g->n);
    NodeId v = x;
    for (int i = 0; i < 3000; i++)
        v = ir_op(g, i % 2 ? OP_SIN : OP_COS, v, 0);
    cr_expect_geq(g->cap, g->n);
    cr_expect_eq(g->n, 3002u);
    cr_expect_eq(g->node[v].op, OP_SIN);
    ir_free(g);
}

Test(ir, two_spellings_give_identical_kernels)
{
    const char *a = "f(x, y, z) = (x + y) * z + sin(x*y)\n";
    const char *b =
        "# the same function, written differently\n"
        "g(u) = u * 2\n"
        "f(x, y, z) {\n"
        "  prod = y * x          # operands swapped\n"
        "  s = sin(prod)\n"
        "  z * (y + x) + s\n"
        "}\n";
    char *ka = kernel_text(a, "f", 1), *kb = kernel_text(b, "f", 1);
    cr_expect_str_eq(ka, kb);
    free(ka);
    free(kb);
    ka = kernel_text("f(a, b) = exp(a) * (b +\n 1)\n", "f", 1);
    kb = kernel_text("f(a,b)=(1+b)*exp(a)", "f", 1);
    cr_expect_str_eq(ka, kb);
    free(ka);
    free(kb);
}

Test(ir, kernel_of_the_circuit)
{
    /* (x+y)*z: the gradient reuses z and x+y; nothing else is created.
     * Checked by hand: d/dx = d/dy = z, d/dz = x+y. */
    char *k = kernel_text("f(x, y, z) = (x + y) * z\n", "f", 1);
    cr_expect_eq(count(k, " = add "), 1, "%s", k);
    cr_expect_eq(count(k, " = mul "), 1, "%s", k);
    cr_expect(strstr(k, "  grad x %3\n  grad y %3\n  grad z %4\n"), "%s", k);
    free(k);
}

Test(ir, dump_names_every_node)
{
    Graph *g = ir_new();
    NodeId x = ir_input(g, SHAPE_SCALAR);
    NodeId half = ir_const(g, 0.5);
    NodeId m = ir_mul(g, x, half);
    NodeId r = ir_op(g, OP_MAX, m, ir_const(g, -2));
    Buf b = {0};
    ir_dump(g, &r, 1, &b);
    /* mul is commutative: its operands are printed in the canonical order
     * (here the constant first); max keeps the written order. */
    cr_expect_str_eq(b.data,
                     "%1 = input 0\n"
                     "%2 = const 0.5\n"
                     "%3 = mul %2 %1\n"
                     "%4 = const -2\n"
                     "%5 = max %3 %4\n");
    buf_free(&b);
    ir_free(g);
}

Test(ir, scale_deep_and_long_formulas)
{
    /* 10^5 nodes, three ways: a long sum, a chain sin(sin(...)) and
     * parentheses nested 10^5 deep, each through parse -> diff -> emit.
     * No timing here (docs/performance.md has the numbers); this checks
     * that nothing recurses on the C stack and that the results are right. */
    enum { N = 100000 };
    char *s = malloc(16 * (size_t)N + 64);
    /* Long sum: x*1 + x*2 + ... + x*N, derivative N(N+1)/2. */
    size_t n = 0;
    n += (size_t)sprintf(s + n, "f(x) = x*1");
    for (int i = 2; i <= N; i++)
        n += (size_t)sprintf(s + n, " + x*%d", i);
    strcpy(s + n, "\n");
    Program *p = parse(s, 0);
    Kernel *k = opt_kernel(p, p->func[0], 1);
    double x = 1, out[2];
    NodeId roots[2] = {k->value, k->grad[0]};
    interp_eval(k->g, k->input, &x, 1, roots, 2, out);
    cr_expect_eq(out[1], (double)N * (N + 1) / 2);
    Buf c = {0};
    Diag d;
    diag_init(&d);
    cr_expect_eq(emit_c_source(k, NULL, &c, &d), 0);
    cr_expect(c.len > 0);
    buf_free(&c);
    kernel_free(k);
    program_free(p);

    /* sin(sin(...sin(x)...)), N deep. */
    n = (size_t)sprintf(s, "f(x) = ");
    for (int i = 0; i < N; i++)
        n += (size_t)sprintf(s + n, "sin(");
    n += (size_t)sprintf(s + n, "x");
    for (int i = 0; i < N; i++)
        s[n++] = ')';
    strcpy(s + n, "\n");
    p = parse(s, 0);
    k = opt_kernel(p, p->func[0], 1);
    cr_expect_geq(k->g->n, 2u * N, "value and derivative chains");
    /* Independent check: iterate sin and the chain rule in a loop. */
    double v = 0.5, dv = 1;
    for (int i = 0; i < N; i++) {
        dv *= cos(v);
        v = sin(v);
    }
    x = 0.5;
    roots[0] = k->value;
    roots[1] = k->grad[0];
    interp_eval(k->g, k->input, &x, 1, roots, 2, out);
    cr_expect_eq(out[0], v);
    cr_expect(fabs(out[1] - dv) <= 1e-12 * fabs(dv), "%g vs %g", out[1], dv);
    cr_expect_eq(emit_c_source(k, NULL, &c, &d), 0);
    cr_expect(strstr(c.data, "sin("));
    buf_free(&c);
    kernel_free(k);
    program_free(p);

    /* ((((x)))) N deep, times y: parentheses make no nodes. */
    n = (size_t)sprintf(s, "f(x, y) = ");
    for (int i = 0; i < N; i++)
        s[n++] = '(';
    s[n++] = 'x';
    for (int i = 0; i < N; i++)
        s[n++] = ')';
    strcpy(s + n, " * y\n");
    p = parse(s, 0);
    k = opt_kernel(p, p->func[0], 1);
    cr_expect_eq(k->g->n, 4u, "input, input, mul, plus the none node");
    kernel_free(k);
    program_free(p);
    diag_free(&d);
    free(s);
}

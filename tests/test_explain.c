/* test_explain.c — `gradc explain` and `gradc graph` (cli/trace.c,
 * cli/explain.c, cli/graph.c): the notes' sigmoid neuron worked gate by
 * gate, the max circuit, JSON values against libm, and DOT that Graphviz
 * accepts. The expected numbers are the notes' (corrected): f5 = -1,
 * f6 = e^-1 = 0.3679, f7 = 1.3679, f8 = 1/f7 = 0.7311, df/df7 = -1/f7^2 =
 * -0.5344, df/df4 = e^-1/f7^2 = 0.1966, dw0 = x0 * 0.1966 = -0.1966,
 * dx0 = w0 * 0.1966 = 0.3932. */
#include "support.h"
#include <criterion/criterion.h>

#include "gradc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmpdir(void)
{
    return support_tmpdir("explain");
}


/* Runs `[env] gradc ARGS` through the shell with a private cache. */
static Run gradc_env(const char *env, const char *args)
{
    static char *cache;
    if (!cache)
        cache = tmpdir();
    char *d = tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "GRADC_CACHE='%s/c.sqlite' %s '%s' %s >'%s/out' 2>'%s/err'", cache,
             env, GRADC_BIN, args, d, d);
    int st = system(cmd);
    Run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, NULL, NULL};
    snprintf(cmd, sizeof cmd, "%s/out", d);
    r.out = slurp(cmd);
    snprintf(cmd, sizeof cmd, "%s/err", d);
    r.err = slurp(cmd);
    return r;
}

static Run gradc(const char *args)
{
    return gradc_env("", args);
}

static const char neuron[] =
    "explain '1/(1+exp(-(w0*x0+w1*x1+w2)))' --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3";

static void has_line(const char *out, const char *line)
{
    char *want = malloc(strlen(line) + 3);
    sprintf(want, "\n%s\n", line);
    cr_assert(strstr(out, want), "no line\n%s\nin\n%s", line, out);
    free(want);
}

Test(explain, sigmoid_neuron_forward_as_in_the_notes)
{
    Run r = gradc(neuron);
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* the notes' numbering: two-input gates in the order written */
    has_line(r.out, "  f1 = w0 * x0 = 2 * (-1) = -2");
    has_line(r.out, "  f2 = w1 * x1 = (-3) * (-2) = 6");
    has_line(r.out, "  f3 = f1 + f2 = (-2) + 6 = 4");
    has_line(r.out, "  f4 = f3 + w2 = 4 + (-3) = 1");
    has_line(r.out, "  f5 = -f4 = -(1) = -1");
    has_line(r.out, "  f6 = exp(f5) = exp(-1) = 0.3679");
    has_line(r.out, "  f7 = 1 + f6 = 1 + 0.3679 = 1.3679");
    has_line(r.out, "  f8 = 1 / f7 = 1 / 1.3679 = 0.7311");
    cr_assert_null(strstr(r.out, "f9"), "only eight gates");
}

Test(explain, sigmoid_neuron_backward_as_in_the_notes)
{
    Run r = gradc(neuron);
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* local x upstream = product, right to left */
    has_line(r.out, "      df/df7 = -1/f7^2 x df/df8 = -0.5344 x 1 = -0.5344");
    has_line(r.out, "  f7 = 1 + f6   (df/df7 = -0.5344)");
    has_line(r.out, "      df/df5 = exp(f5) x df/df6 = 0.3679 x -0.5344 = -0.1966");
    has_line(r.out, "      df/df4 = -1 x df/df5 = -1 x -0.1966 = 0.1966");
    has_line(r.out, "  f4 = f3 + w2   (df/df4 = 0.1966)");
    has_line(r.out, "      df/dx0 = w0 x df/df1 = 2 x 0.1966 = 0.3932");
    has_line(r.out, "      df/dw0 = x0 x df/df1 = -1 x 0.1966 = -0.1966");
    /* and the gradient of every input */
    has_line(r.out, "  df/dw0 = -0.1966");
    has_line(r.out, "  df/dx0 = 0.3932");
    has_line(r.out, "  df/dw1 = -0.3932");
    has_line(r.out, "  df/dx1 = -0.5898");
    has_line(r.out, "  df/dw2 = 0.1966");
}

Test(explain, file_function_with_named_intermediates)
{
    char *d = tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/n.grad", d);
    FILE *f = fopen(path, "w");
    fputs("neuron(w0, x0, w1, x1, w2) {\n  z = w0*x0 + w1*x1 + w2\n  1 / (1 + exp(-z))\n}\n", f);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args, "explain '%s:neuron' --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3", path);
    Run r = gradc(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    has_line(r.out, "  f4 = f3 + w2 = 4 + (-3) = 1");
    has_line(r.out, "  f8 = 1 / f7 = 1 / 1.3679 = 0.7311");
    has_line(r.out, "  dneuron/dx0 = 0.3932");
}

Test(explain, max_gate_routes_the_gradient)
{
    Run r = gradc("explain '2*(x*y + max(z,w))' --at x=3,y=-4,z=2,w=-1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    has_line(r.out, "  f2 = max(z, w) = max(2, -1) = 2");
    has_line(r.out, "  f4 = 2 * f3 = 2 * (-10) = -20");
    has_line(r.out, "      df/dz = [z >= w] x df/df2 = 1 x 2 = 2");
    has_line(r.out, "      df/dw = [z < w] x df/df2 = 0 x 2 = 0");
    has_line(r.out, "  df/dx = -8");
    has_line(r.out, "  df/dy = 6");
}

/* x feeds three gates: its gradient is the sum of three shares,
 * 3x^2 + [x >= y] + sin(y)/x^2 = 12 + 1 + 0.2104 at x = 2, y = 1. */
Test(explain, shares_of_a_value_used_twice_add_up)
{
    Run r = gradc("explain 'x^3 + max(x,y) - sin(y)/x' --at x=2,y=1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    has_line(r.out, "      df/dx += 3*x^2 x df/df1 = 12 x 1 = 12");
    has_line(r.out, "      df/dx += [x >= y] x df/df2 = 1 x 1 = 1");
    has_line(r.out, "      df/dx += -f4/x^2 x df/df5 = -0.2104 x -1 = 0.2104");
    has_line(r.out, "      df/dy += cos(y) x df/df4 = 0.5403 x -0.5 = -0.2702");
    has_line(r.out, "  df/dx = 13.2104");
    has_line(r.out, "  df/dy = -0.2702");
}

Test(explain, json_has_full_precision)
{
    Run r = gradc("explain '1/(1+exp(-(w0*x0+w1*x1+w2)))' --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 --json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* independent values from libm */
    double f7 = 1 + exp(-1.0), f8 = 1 / f7, g = exp(-1.0) / (f7 * f7);
    const char *v = strstr(r.out, "\n\"value\": ");
    cr_assert_not_null(v);
    cr_assert(fabs(strtod(v + 10, NULL) - f8) < 1e-15);
    const char *dx0 = strstr(r.out, "\"x0\": ");
    cr_assert_not_null(dx0);
    cr_assert(fabs(strtod(dx0 + 6, NULL) - 2 * g) < 1e-15);
    cr_assert(strstr(r.out, "{\"name\": \"f6\", \"op\": \"exp\", \"inputs\": [\"f5\"]"), "%s", r.out);
}

Test(explain, errors)
{
    Run r = gradc("explain 'x*y' --at x=1");
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "<expr>:1:3: error: no value for input 'y' (give one with --at y=VALUE)"), "%s", r.err);
    r = gradc("explain 'x*y' --at x=1,y=2,z=3");
    cr_assert(strstr(r.err, "<at>:1:9: error: 'z' is not an input of f"), "%s", r.err);
    r = gradc("explain 'softmax([x, 1])' --at x=1");
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "explain and graph work on scalar formulas"), "%s", r.err);
}

/* ---- graph ---- */

Test(graph, dot_is_accepted_by_graphviz)
{
    if (system("command -v dot >/dev/null 2>&1") != 0)
        cr_assert_fail("Graphviz's dot is needed (Debian: apt-get install graphviz)");
    char *d = tmpdir();
    char args[1024];
    snprintf(args, sizeof args, "graph '(x+y)*z' --at x=-2,y=5,z=-4 -o '%s/g.dot'", d);
    Run r = gradc(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "dot -Tsvg '%s/g.dot' -o '%s/g.svg'", d, d);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/g.dot", d);
    char *dot = slurp(cmd);
    /* the wire x -> (+) carries x = -2 forward and df/dx = z = -4 back;
     * the wire z -> (*) carries -4 and df/dz = x + y = 3 */
    cr_assert(strstr(dot, "n0 -> n2 [label=<<font color=\"#1a7f37\">-2</font><br/><font color=\"#cf222e\">-4</font>>];"), "%s", dot);
    cr_assert(strstr(dot, "n3 -> n4 [label=<<font color=\"#1a7f37\">-4</font><br/><font color=\"#cf222e\">3</font>>];"), "%s", dot);
    cr_assert(strstr(dot, "-> out [label=<<font color=\"#1a7f37\">-12</font>"), "%s", dot);
}

Test(graph, renders_svg_with_dot)
{
    if (system("command -v dot >/dev/null 2>&1") != 0)
        cr_assert_fail("Graphviz's dot is needed (Debian: apt-get install graphviz)");
    char *d = tmpdir();
    char args[1024];
    snprintf(args, sizeof args,
             "graph '1/(1+exp(-(w0*x0+w1*x1+w2)))' --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 -o '%s/g.svg'", d);
    Run r = gradc(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    snprintf(args, sizeof args, "%s/g.svg", d);
    char *svg = slurp(args);
    cr_assert(strstr(svg, "<svg"), "%s", svg);
    cr_assert(strstr(svg, "0.7311"), "the output wire's value is drawn");
}

Test(graph, missing_graphviz_says_how_to_install_it)
{
    /* A PATH without dot; the kernel is compiled (and cached) first. */
    Run warm = gradc("graph 'x*y' --at x=1,y=2");
    cr_assert_eq(warm.status, 0, "%s", warm.err);
    char *d = tmpdir();
    char env[1200], args[1024];
    snprintf(env, sizeof env, "CC=/usr/bin/cc PATH='%s'", d);
    snprintf(args, sizeof args, "graph 'x*y' --at x=1,y=2 -o '%s/g.png'", d);
    Run r = gradc_env(env, args);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.err, "needs Graphviz's 'dot', which is not installed"), "%s", r.err);
    cr_assert(strstr(r.err, "apt-get install graphviz"), "%s", r.err);
}

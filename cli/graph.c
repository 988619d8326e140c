/* graph.c — `gradc graph`: the computational graph of a formula at a
 * point as Graphviz DOT, each wire labelled with its forward value (green,
 * above) and its gradient (red, below) like the notes' circuit diagrams;
 * rendered to SVG or PNG by Graphviz's `dot` when it is installed. */
#include "trace.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char graph_help[] =
    "usage: gradc graph EXPR|FILE:FUNC --at NAME=VALUE,... [-o OUT] [options]\n"
    "\n"
    "Writes the computational graph as Graphviz DOT; each wire shows its\n"
    "forward value (green) and its gradient (red). With -o OUT.svg or\n"
    "OUT.png the graph is rendered with Graphviz's 'dot'.\n"
    "\n"
    "  --at NAME=VALUE,...   input values (repeatable)\n"
    "  --func NAME           the function of a file to draw\n"
    "  -o FILE               .dot (default: standard output), .svg or .png\n"
    "  --digits N            decimals shown (default 4)\n";

static const char *gate_symbol(int op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_POW: return "^";
    case OP_NEG: return "-x";
    default: return op_info[op].name;
    }
}

static void wire(Buf *b, const char *from, const char *to, double value, int with_grad,
                 double grad, int digits)
{
    char v[48], g[48];
    trace_num(value, digits, v);
    buf_printf(b, "  %s -> %s [label=<<font color=\"#1a7f37\">%s</font>", from, to, v);
    if (with_grad) {
        trace_num(grad, digits, g);
        buf_printf(b, "<br/><font color=\"#cf222e\">%s</font>", g);
    }
    buf_puts(b, ">];\n");
}

static void dot_text(const Trace *t, int digits, Buf *b)
{
    char v[48];
    buf_printf(b, "digraph \"%s\" {\n", t->f->name);
    buf_puts(b, "  rankdir=LR;\n"
                "  node [fontname=\"Helvetica\", fontsize=11];\n"
                "  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (uint32_t i = 0; i < t->n; i++) {
        const TraceNode *x = &t->node[i];
        if (x->kind == TRACE_INPUT)
            buf_printf(b, "  n%u [label=\"%s\", shape=plaintext];\n", i, x->label);
        else if (x->kind == TRACE_OP)
            buf_printf(b, "  n%u [label=\"%s\\n%s\", shape=circle];\n", i, gate_symbol(x->op), x->label);
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const TraceNode *x = &t->node[i];
        for (int k = 0; x->kind == TRACE_OP && k < x->nargs; k++) {
            const TraceNode *o = &t->node[x->arg[k]];
            char from[16], to[16];
            snprintf(from, sizeof from, "n%u", x->arg[k]);
            if (o->kind == TRACE_CONST) {   /* drawn at each use, as in the notes */
                snprintf(from, sizeof from, "c%u_%d", i, k);
                buf_printf(b, "  %s [label=\"%s\", shape=plaintext, fontcolor=\"#57606a\"];\n",
                           from, o->label);
            }
            snprintf(to, sizeof to, "n%u", i);
            wire(b, from, to, o->value, o->kind != TRACE_CONST, x->product[k], digits);
        }
    }
    const TraceNode *r = &t->node[t->n - 1];
    trace_num(r->value, digits, v);
    buf_printf(b, "  out [label=\"%s\", shape=plaintext];\n", t->f->name);
    char from[16];
    snprintf(from, sizeof from, "n%u", t->n - 1);
    wire(b, from, "out", r->value, 1, 1.0, digits);
    buf_puts(b, "}\n");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int write_file(const char *path, const Buf *b, Diag *d)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        diag_plain(d, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Runs `dot -Tfmt -o out in`; a missing `dot` says how to get it. */
static int render(const char *fmt, const char *dotfile, const char *out, Diag *d)
{
    char tflag[16];
    snprintf(tflag, sizeof tflag, "-T%s", fmt);
    char *argv[] = {"dot", tflag, "-o", (char *)out, (char *)dotfile, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "dot", NULL, NULL, argv, environ);
    int status = 0;
    if (err == 0 && waitpid(pid, &status, 0) < 0)
        err = errno;
    if (err == ENOENT || (err == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127)) {
        diag_plain(d, "rendering %s needs Graphviz's 'dot', which is not installed; "
                   "install it (Debian: apt-get install graphviz) or write DOT with -o FILE.dot", out);
        return -1;
    }
    if (err != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        diag_plain(d, "'dot' failed to render %s", out);
        return -1;
    }
    return 0;
}

static int output(const char *out, const Buf *b, Diag *d)
{
    if (!out) {
        fwrite(b->data, 1, b->len, stdout);
        return 0;
    }
    const char *fmt = ends_with(out, ".svg") ? "svg" : ends_with(out, ".png") ? "png" : NULL;
    if (!fmt)
        return write_file(out, b, d);
    char tmpl[] = "/tmp/gradc-graph-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        diag_plain(d, "cannot create a temporary file: %s", strerror(errno));
        return -1;
    }
    close(fd);
    int rc = write_file(tmpl, b, d);
    if (rc == 0)
        rc = render(fmt, tmpl, out, d);
    unlink(tmpl);
    return rc;
}

int cmd_graph(int argc, char **argv)
{
    TraceArgs a;
    if (trace_args("graph", graph_help, argc, argv, &a))
        return 1;
    if (a.json)
        return cli_usage_error("graph", "graph writes DOT, SVG or PNG; use 'gradc explain --json' for JSON");
    Diag d;
    diag_init(&d);
    Input input;
    Program *p = NULL;
    Trace t;
    int rc = trace_run(&a, &input, &p, &t, &d);
    if (rc == 0) {
        Buf b = {0};
        dot_text(&t, a.digits, &b);
        rc = output(a.out, &b, &d);
        buf_free(&b);
    }
    if (rc)
        report(&d);
    trace_free(&t);
    diag_free(&d);
    program_free(p);
    input_free(&input);
    return rc ? 1 : 0;
}

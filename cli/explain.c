/* explain.c — `gradc explain`: the forward and backward pass of a formula
 * at a point, gate by gate, as the notes work them by hand ("local
 * gradient × upstream gradient"), with the numbers of the generated C. */
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char explain_help[] =
    "usage: gradc explain EXPR|FILE:FUNC --at NAME=VALUE,... [options]\n"
    "\n"
    "Prints the forward pass (each operation f1..fN with its inputs and value)\n"
    "and the backward pass (each gate's local gradient times the upstream\n"
    "gradient), then the gradient of every input. Operations are two-input\n"
    "gates numbered in the order the formula is written; the computation is\n"
    "the one written, before any rewrite. See docs/check.md.\n"
    "\n"
    "  --at NAME=VALUE,...   input values (repeatable)\n"
    "  --func NAME           the function of a file to explain\n"
    "  --digits N            decimals shown (default 4; 17: exact)\n"
    "  --json                print the passes as JSON, full precision\n";

static void num(double v, int digits, char out[48])
{
    trace_num(v, digits, out);
}

static void print_forward(const Trace *t, int digits)
{
    char v[48];
    printf("forward pass\n");
    for (uint32_t i = 0; i < t->n; i++) {
        const TraceNode *x = &t->node[i];
        if (x->kind == TRACE_INPUT) {
            num(x->value, digits, v);
            printf("  %s = %s\n", x->label, v);
        }
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const TraceNode *x = &t->node[i];
        if (x->kind != TRACE_OP)
            continue;
        Buf names = {0}, values = {0};
        trace_expr(t, x, 0, digits, &names);
        trace_expr(t, x, 1, digits, &values);
        num(x->value, digits, v);
        printf("  %s = %s = %s = %s\n", x->label, names.data, values.data, v);
        buf_free(&names);
        buf_free(&values);
    }
    const TraceNode *r = &t->node[t->n - 1];
    num(r->value, digits, v);
    printf("  %s = %s = %s\n", t->f->name, r->label, v);
}

static void print_backward(const Trace *t, int digits)
{
    char a[48], l[48], u[48], p[48];
    const TraceNode *r = &t->node[t->n - 1];
    printf("\nbackward pass: d%s/d(gate input) = local gradient x upstream gradient\n", t->f->name);
    printf("  d%s/d%s = 1\n", t->f->name, r->label);
    for (uint32_t i = t->n; i-- > 0;) {
        const TraceNode *x = &t->node[i];
        if (x->kind != TRACE_OP)
            continue;
        Buf names = {0};
        trace_expr(t, x, 0, digits, &names);
        num(x->adj, digits, u);
        printf("  %s = %s   (d%s/d%s = %s)\n", x->label, names.data, t->f->name, x->label, u);
        buf_free(&names);
        for (int k = 0; k < x->nargs; k++) {
            const TraceNode *o = &t->node[x->arg[k]];
            if (o->kind == TRACE_CONST)
                continue;
            Buf rule = {0};
            trace_local_rule(t, x, k, &rule);
            num(x->local[k], digits, l);
            num(x->product[k], digits, p);
            printf("      d%s/d%s %s %s x d%s/d%s = %s x %s = %s\n", t->f->name, o->label,
                   o->uses > 1 ? "+=" : "=", rule.data, t->f->name, x->label, l, u, p);
            buf_free(&rule);
        }
    }
    printf("\ngradient\n");
    for (uint32_t i = 0; i < t->f->ninputs; i++) {
        uint32_t k = t->input_node[i];
        num(k == UINT32_MAX ? 0.0 : t->node[k].adj, digits, a);
        printf("  d%s/d%s = %s\n", t->f->name, t->f->input_name[i], a);
    }
}

static void json_num(Buf *b, double v)
{
    char s[32];
    if (isnan(v))
        buf_puts(b, "\"NaN\"");
    else if (isinf(v))
        buf_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else {
        num_format(v, s);
        buf_puts(b, s);
    }
}

static void print_json(const Trace *t)
{
    Buf b = {0};
    buf_puts(&b, "{\"forward\": [");
    int first = 1;
    for (uint32_t i = 0; i < t->n; i++) {
        const TraceNode *x = &t->node[i];
        if (x->kind != TRACE_OP)
            continue;
        buf_printf(&b, "%s\n  {\"name\": \"%s\", \"op\": \"%s\", \"inputs\": [", first ? "" : ",",
                   x->label, op_info[x->op].name);
        for (int k = 0; k < x->nargs; k++)
            buf_printf(&b, "%s\"%s\"", k ? ", " : "", t->node[x->arg[k]].label);
        buf_puts(&b, "], \"value\": ");
        json_num(&b, x->value);
        buf_puts(&b, ", \"gradient\": ");
        json_num(&b, x->adj);
        buf_puts(&b, ", \"local\": [");
        for (int k = 0; k < x->nargs; k++) {
            buf_puts(&b, k ? ", " : "");
            json_num(&b, x->local[k]);
        }
        buf_puts(&b, "], \"local_rule\": [");
        for (int k = 0; k < x->nargs; k++) {
            buf_puts(&b, k ? ", \"" : "\"");
            trace_local_rule(t, x, k, &b);
            buf_puts(&b, "\"");
        }
        buf_puts(&b, "], \"product\": [");
        for (int k = 0; k < x->nargs; k++) {
            buf_puts(&b, k ? ", " : "");
            json_num(&b, x->product[k]);
        }
        buf_puts(&b, "]}");
        first = 0;
    }
    buf_puts(&b, "\n],\n\"value\": ");
    json_num(&b, t->node[t->n - 1].value);
    buf_puts(&b, ",\n\"grad\": {");
    for (uint32_t i = 0; i < t->f->ninputs; i++) {
        uint32_t k = t->input_node[i];
        buf_printf(&b, "%s\"%s\": ", i ? ", " : "", t->f->input_name[i]);
        json_num(&b, k == UINT32_MAX ? 0.0 : t->node[k].adj);
    }
    buf_puts(&b, "}}\n");
    fputs(b.data, stdout);
    buf_free(&b);
}

int cmd_explain(int argc, char **argv)
{
    TraceArgs a;
    if (trace_args("explain", explain_help, argc, argv, &a))
        return 1;
    if (a.out)
        return cli_usage_error("explain", "explain prints to standard output; use 'gradc graph -o FILE' for a picture");
    Diag d;
    diag_init(&d);
    Input input;
    Program *p = NULL;
    Trace t;
    int rc = trace_run(&a, &input, &p, &t, &d);
    if (rc == 0) {
        if (a.json)
            print_json(&t);
        else {
            print_forward(&t, a.digits);
            print_backward(&t, a.digits);
        }
    } else {
        report(&d);
    }
    trace_free(&t);
    diag_free(&d);
    program_free(p);
    input_free(&input);
    return rc ? 1 : 0;
}

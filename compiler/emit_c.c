/* emit_c.c — C99 from a kernel. Scalars become `const double` temporaries;
 * tensors become arrays filled by loop nests (or, for views of a block of
 * another tensor, pointers into it); tensor constants become static const
 * arrays. Only <math.h> is included; there are no writable globals, and
 * every external symbol starts with the prefix and the function's name, so
 * several generated files link together.
 *
 * Entry points (docs/emitted-api.md): for a scalar value NAME and
 * NAME_grad; for a tensor value NAME (writing out), NAME_vjp and
 * NAME_jacobian; NAME_batch always; NAME_init_params for networks, whose
 * parameters come in a separate `params` array.
 *
 * Stack budget: when a function's temporaries exceed max_locals doubles,
 * tensors move to a caller-provided work array and scalars into reused
 * slots; such entry points end in _work and take `work` last, with
 * NAME_WORK_SIZE in the header.
 *
 * This file prints; emit_plan.c decides where every value lives (emit.h
 * holds the plan), emit_product.c prints matrix products. */
#include "emit.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* C keywords and names the generated code itself uses (math.h functions). */
static const char *const reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "_Bool", "_Complex",
    "_Imaginary", "main", "exp", "log", "log1p", "expm1", "sqrt", "sin",
    "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
    "hypot", "erf", "pow", "fabs", "fmax", "fmin", "in", "grad", "work",
    "params", "out", "NAN", "INFINITY", "HUGE_VAL", "isinf", "gradc_s",
    "gradc_v", "gradc_i", NULL,
};

/* Everything <math.h> may declare (C99, and glibc's extras), since the
 * generated file includes it: a function named floor or isnan would not
 * compile. Also matched with a trailing f or l (floorf, isinfl). */
static const char *const math_h[] = {
    "acos", "asin", "atan", "atan2", "cos", "sin", "tan", "acosh", "asinh", "atanh",
    "cosh", "sinh", "tanh", "exp", "exp2", "expm1", "frexp", "ilogb", "ldexp", "log",
    "log10", "log1p", "log2", "logb", "modf", "scalbn", "scalbln", "cbrt", "fabs",
    "hypot", "pow", "sqrt", "erf", "erfc", "lgamma", "tgamma", "ceil", "floor",
    "nearbyint", "rint", "lrint", "llrint", "round", "lround", "llround", "trunc",
    "fmod", "remainder", "remquo", "copysign", "nan", "nextafter", "nexttoward",
    "fdim", "fmax", "fmin", "fma", "fpclassify", "isfinite", "isinf", "isnan",
    "isnormal", "signbit", "isgreater", "isgreaterequal", "isless", "islessequal",
    "islessgreater", "isunordered", "float_t", "double_t", "math_errhandling",
    "j0", "j1", "jn", "y0", "y1", "yn", "gamma", "drem", "finite", "significand",
    "exp10", "pow10", "sincos", "scalb", "signgam", "matherr", "lgamma_r", "gamma_r",
    "issignaling", "iszero", "issubnormal", "iscanonical", "iseqsig", "nextup",
    "nextdown", "roundeven", "fromfp", "ufromfp", "canonicalize", "fmaxmag", "fminmag",
    "totalorder", "totalordermag", "getpayload", "setpayload", NULL,
};

static int in_math_h(const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; math_h[i]; i++) {
        size_t m = strlen(math_h[i]);
        if (!strncmp(s, math_h[i], m) && (n == m || (n == m + 1 && (s[m] == 'f' || s[m] == 'l'))))
            return 1;
    }
    /* Macros: HUGE_VAL*, FP_*, M_* constants, MATH_*. */
    return !strncmp(s, "HUGE_VAL", 8) || !strncmp(s, "FP_", 3) || !strncmp(s, "M_", 2) ||
           !strncmp(s, "MATH_", 5);
}

int emit_valid_c_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    for (int i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return 0;
    /* _X and __x are the C implementation's. */
    if (s[0] == '_' && (s[1] == '_' || isupper((unsigned char)s[1])))
        return 0;
    return !in_math_h(s) && strlen(s) < 200;
}

/* A double as C source that reads back exactly. */
void emit_literal(double v, char out[48])
{
    if (isnan(v)) {
        strcpy(out, "NAN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "(-INFINITY)" : "INFINITY");
        return;
    }
    char num[32];
    num_format(v, num);
    int plain = !strpbrk(num, ".e");
    snprintf(out, 48, signbit(v) ? "(%s%s)" : "%s%s", num, plain ? ".0" : "");
}

/* ---- operand text: a big kernel prints millions of operands, so these
 * are written by hand instead of through snprintf ---- */

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The digits of v, two at a time from the end: half the divisions of a
 * digit loop, and no reversal. Their number comes from the bit length
 * (1233 / 4096 is just below log10(2)) and one comparison, not from a
 * loop of divisions: a big kernel prints millions of numbers. */
static inline char *put_uint(char *p, uint32_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    static const uint32_t pow10[10] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                       10000000, 100000000, 1000000000};
    /* t = floor(log10(v)) or one less; v | 1 makes 0 one digit (and
     * changes no other count: 10^t - 1 is odd for t > 0). */
    uint32_t t = (uint32_t)(32 - __builtin_clz(v | 1)) * 1233 >> 12;
    int n = (int)t + ((v | 1) >= pow10[t]);
    char *end = p + n;
    for (; v >= 100; v /= 100) {
        end -= 2;
        memcpy(end, pairs + 2 * (v % 100), 2);
    }
    if (v >= 10)
        memcpy(end - 2, pairs + 2 * v, 2);
    else
        end[-1] = (char)('0' + v);
    return p + n;
}

/* The slot of node id in the literal table: its own, or the empty one
 * where it goes. */
static uint64_t *literal_slot(const Literals *t, NodeId id)
{
    uint32_t mask = (1u << t->bits) - 1, h = (id * 0x9e3779b1u) >> (32 - t->bits);
    while (t->slot[h] && (NodeId)(t->slot[h] >> 32) != id)
        h = (h + 1) & mask;
    return &t->slot[h];
}

/* Twice the slots, kept under half full. */
static void literals_grow(Literals *t)
{
    uint64_t *old = t->slot;
    uint32_t n = 1u << t->bits;
    t->bits++;
    t->slot = xcalloc((size_t)1 << t->bits, sizeof *t->slot);
    for (uint32_t i = 0; i < n; i++)
        if (old[i])
            *literal_slot(t, (NodeId)(old[i] >> 32)) = old[i];
    free(old);
}

/* The literal of a scalar constant, formatted once per node: a formula's
 * few distinct constants are used over and over. */
static const char *literal_of(const Emitter *e, NodeId id)
{
    uint64_t *at = literal_slot(e->lit, id);
    if (!*at) {
        char num[48];
        emit_literal(node(e, id)->num, num);
        *at = (uint64_t)id << 32 | (uint32_t)(e->lits->len + 1);
        buf_put(e->lits, num, strlen(num) + 1);         /* with its NUL */
        if (++e->lit->n > 1u << (e->lit->bits - 1)) {
            uint32_t off = (uint32_t)*at;
            literals_grow(e->lit);
            return e->lits->data + off - 1;
        }
    }
    return e->lits->data + (uint32_t)*at - 1;
}

/* Whether the kernel asks for this entry point. */
static int has(const Emitter *e, int entry)
{
    return (e->k->entries >> entry) & 1;
}

/* Where an input node is in its array (in, params or v). */
static uint32_t input_offset(const Emitter *e, const Node *n)
{
    uint32_t slot = (uint32_t)n->aux;
    if (n->op != OP_INPUT)
        return 0;               /* emit_base asks for any node */
    return slot < e->k->ninputs ? e->input_off[slot] : e->slot_off[slot - e->k->ninputs];
}

/* Scalar value of a node, or element `ix` of a tensor node; returns
 * its length. */
static size_t elem(const Emitter *e, const Plan *p, NodeId id, const char *ix, char out[320])
{
    char *q = out;
    assert(strlen(ix) < 32);    /* the symbol is < 200 characters */
    /* The node itself is read only where needed: in a big kernel it is
     * usually far away in memory (a cache miss), its plan entry is not. */
    switch (p->where[id].store) {
    case S_LITERAL:
        q = put_str(q, literal_of(e, id));
        break;
    case S_INPUT: {
        const Node *n = node(e, id);
        uint32_t off = input_offset(e, n);
        q = put_uint(put_str(put_str(q, input_array(e, id)), "["), off);
        if (n->shape.rank > 0)
            q = put_str(put_str(q, " + "), ix);
        q = put_str(q, "]");
        break;
    }
    case S_TCONST:
        e->table_used[id] = 1;
        q = put_uint(put_str(put_str(q, e->sym), "_k"), id);
        q = put_str(put_str(put_str(q, "["), ix), "]");
        break;
    case S_TEMP:
        q = put_uint(put_str(q, "t"), p->where[id].num);
        break;
    case S_FUSED:
    case S_LOCAL:
        q = put_uint(put_str(q, "e"), id);
        break;
    case S_SLOT:
        q = put_str(put_uint(put_str(q, "w["), p->where[id].num), "]");
        break;
    case S_PINPUT:
        q = put_str(put_str(q, input_array(e, id)), "_");
        q = put_uint(q, input_offset(e, node(e, id)));
        break;
    default:
        q = put_uint(put_str(q, "a"), id);
        q = put_str(put_str(put_str(q, "["), is_scalar(e, id) ? "0" : ix), "]");
        break;
    }
    *q = 0;
    return (size_t)(q - out);
}

/* The text of a scalar operand: tN, w[N], in[N], a literal... */
void emit_scalar(const Emitter *e, const Plan *p, NodeId id, char out[320])
{
    elem(e, p, id, "0", out);
}

/* A pointer expression to the first element of a tensor node. */
void emit_base(const Emitter *e, const Plan *p, NodeId id, char out[320])
{
    const Node *n = node(e, id);
    uint32_t off = input_offset(e, n);
    if (p->where[id].store == S_INPUT && off == 0)
        snprintf(out, 320, "%s", input_array(e, id));
    else if (p->where[id].store == S_INPUT)
        snprintf(out, 320, "(%s + %u)", input_array(e, id), off);
    else if (p->where[id].store == S_TCONST) {
        e->table_used[id] = 1;
        snprintf(out, 320, "%s_k%u", e->sym, id);
    }
    else
        snprintf(out, 320, "a%u", id);
}

/* ---- planning: where each value lives ---- */

/* ---- statements ---- */

/* Writes the node's C template with the given operand texts, of
 * lengths len if the caller knows them (no strlen per operand), else
 * NULL. */
static void expand_n(const char *t, char a[2][320], const size_t *len, Buf *out)
{
    const char *run = t;        /* text not yet written */
    for (;; t++) {
        int operand = t[0] == '$' && (t[1] == '0' || t[1] == '1');
        if (!operand && *t)
            continue;
        buf_put(out, run, (size_t)(t - run));
        if (!*t)
            return;
        const char *v = a[t[1] - '0'];
        buf_put(out, v, len ? len[t[1] - '0'] : strlen(v));
        run = ++t + 1;
    }
}

static void expand(const char *t, char a[2][320], Buf *out)
{
    expand_n(t, a, NULL, out);
}

const char *emit_template(const Emitter *e, const Node *n)
{
    /* pow(x, 2) and pow(x, -1) as x*x and 1/x: exact, and much faster. */
    if (n->op == OP_POW && ir_is_const(e->k->g, n->arg[1], 2.0))
        return "$0 * $0";
    if (n->op == OP_POW && ir_is_const(e->k->g, n->arg[1], -1.0))
        return "1.0 / $0";
    return op_info[n->op].c;
}

/* A scalar operand's text at q, returning its end (a NUL may follow):
 * temporaries and slots, most of a big kernel's operands, written here,
 * the rest by elem. */
static inline char *put_scalar(const Emitter *e, const Plan *p, NodeId id, char *q)
{
    Where w = p->where[id];
    if (w.store == S_TEMP) {
        *q = 't';
        return put_uint(q + 1, w.num);
    }
    if (w.store == S_SLOT) {
        memcpy(q, "w[", 2);
        q = put_uint(q + 2, w.num);
        *q = ']';
        return q + 1;
    }
    return q + elem(e, p, id, "0", q);
}

/* A scalar statement `[const double ]dst = template;`, the line a big
 * kernel has millions of: written straight into the buffer, operands
 * included, with room reserved once for its longest form, instead of
 * piece by piece. */
static void scalar_statement(const Emitter *e, const Plan *p, NodeId id, const Node *n,
                             Buf *out)
{
    const char *t = emit_template(e, n);
    size_t tlen = strlen(t);
    /* The destination and every "$k" of the template become at most 320
     * bytes each (elem's bound), and the rest is copied as it is. */
    size_t room = 80 + tlen + (tlen / 2 + 2) * 320;
    if (out->len + room + 1 > out->cap)
        buf_grow(out, room);
    char *q = out->data + out->len;
    static const char lead[3][24] = {"    ", "    double ", "    const double "};
    static const uint8_t lead_len[3] = {4, 11, 17};
    Where w = p->where[id];
    int l = w.store != S_TEMP || w.acc == 2 ? 0 : w.acc ? 1 : 2;
    memcpy(q, lead[l], 24);
    q = put_scalar(e, p, id, q + lead_len[l]);
    memcpy(q, " = ", 3);
    q += 3;
    for (; *t; t++) {
        if (t[0] == '$' && (t[1] == '0' || t[1] == '1'))
            q = put_scalar(e, p, n->arg[*++t - '0'], q);
        else
            *q++ = *t;
    }
    memcpy(q, ";\n", 3);       /* with the NUL */
    out->len = (size_t)(q + 2 - out->data);
}

static void elementwise(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = node(e, id);
    char a[2][320], dst[320];
    int arity = op_info[n->op].arity;
    if (n->shape.rank == 0) {
        scalar_statement(e, p, id, n, out);
        return;
    }
    for (int k = 0; k < arity; k++)
        elem(e, p, n->arg[k], "i", a[k]);
    elem(e, p, id, "i", dst);
    buf_printf(out, p->where[id].store == S_LOCAL ? "        const double %s = " : "        %s = ", dst);
    expand(emit_template(e, n), a, out);
    buf_puts(out, ";\n");
}

/* The declaration of a tensor node's storage, or of a scalar result of a
 * structured op (assigned by the loop that follows). */
static void declare(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    char d[320];
    switch (p->where[id].store) {
    case S_ARRAY:
        if (p->out_at[id])
            buf_printf(out, "    double *const a%u = %s + %u;\n", id, p->dst, p->out_at[id] - 1);
        else
            buf_printf(out, "    double a%u[%u];\n", id, size_of(e, id));
        break;
    case S_WORK:
        buf_printf(out, "    double *const a%u = work + %u;\n", id, p->where[id].num);
        break;
    case S_TEMP:
        elem(e, p, id, "0", d);
        buf_printf(out, "    double %s;\n", d);
        break;
    default:
        break;
    }
}

/* The softmax or logsumexp paired with node i (pair_softmax), or 0. */
static NodeId pair_of(const Plan *p, NodeId i)
{
    return p->pair ? p->pair[i] : 0;   /* NULL: the plan has no softmax */
}

/* A softmax (sm) and/or a logsumexp (lse) of one operand, row by row for
 * a matrix (row r of x at x + r * len). The logsumexp of all -inf or of
 * +inf is m itself, as in kernels.c. */
static void softmax_lse(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    int is_sm = node(e, id)->op == OP_SOFTMAX;
    NodeId sm = is_sm ? id : pair_of(p, id), lse = is_sm ? pair_of(p, id) : id;
    NodeId arg = node(e, sm ? sm : lse)->arg[0];
    Shape s0 = node(e, arg)->shape;
    uint32_t len = s0.rank == 2 ? s0.dim[1] : shape_size(s0);
    uint32_t rows = s0.rank == 2 ? s0.dim[0] : 1;
    char A[320], T[320], x[400], t[400], res[400];
    emit_base(e, p, arg, A);
    snprintf(x, sizeof x, "(%s + r * %u)", A, len);
    if (sm) {
        emit_base(e, p, sm, T);
        snprintf(t, sizeof t, "(%s + r * %u)", T, len);
    }
    if (lse && rows > 1) {
        emit_base(e, p, lse, T);
        snprintf(res, sizeof res, "%s[r]", T);
    } else if (lse) {
        elem(e, p, lse, "0", res);
    }
    if (pair_of(p, id))                 /* the partner is computed here too */
        declare(e, p, pair_of(p, id), out);
    /* The maximum of the elements that are not NaN, a branch-free chain
     * (maxsd). kernels.c takes NaN as the maximum when an element is NaN;
     * here that only matters when m is infinite: with a finite m a NaN
     * element makes the sum NaN, and with it every result, as there. So
     * the NaN test is made only then (W3b: 5 % of the gradient when it
     * was made for every element). */
    buf_printf(out, "    for (long r = 0; r < %u; r++) {\n        double m = -INFINITY, s = 0.0;\n"
                    "        for (long i = 0; i < %u; i++)\n"
                    "            m = %s[i] > m ? %s[i] : m;\n"
                    "        if (isinf(m))\n"
                    "            for (long i = 0; i < %u; i++)\n"
                    "                if (%s[i] != %s[i])\n                    m = NAN;\n",
               rows, len, x, x, len, x, x);
    if (sm)
        buf_printf(out, "        for (long i = 0; i < %u; i++) {\n"
                        "            %s[i] = exp(%s[i] - m);\n            s += %s[i];\n        }\n"
                        "        const double q = 1.0 / s;   /* as kernels.c */\n"
                        "        for (long i = 0; i < %u; i++)\n            %s[i] *= q;\n",
                   len, t, x, t, len, t);
    if (sm && lse)
        buf_printf(out, "        %s = isinf(m) ? m : m + log(s);\n", res);
    else if (lse)
        buf_printf(out, "        if (isinf(m)) {\n            %s = m;\n        } else {\n"
                        "            for (long i = 0; i < %u; i++)\n"
                        "                s += exp(%s[i] - m);\n"
                        "            %s = m + log(s);\n        }\n",
                   res, len, x, res);
    buf_puts(out, "    }\n");
}

static void structured(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = node(e, id);
    char A[320], B[320], T[320], a0[320], d[320];
    Shape s0 = node(e, n->arg[0])->shape;
    uint32_t size = size_of(e, id), start = (uint32_t)n->aux, stride = (uint32_t)n->num;
    emit_base(e, p, n->arg[0], A);
    elem(e, p, n->arg[0], "i", a0);
    if (p->where[id].store == S_ALIAS) {
        uint32_t off = n->op == OP_VIEW ? start : start * row_size(s0);
        if (off)
            buf_printf(out, "    const double *const a%u = %s + %u;\n", id, A, off);
        else
            buf_printf(out, "    const double *const a%u = %s;\n", id, A);
        return;
    }
    declare(e, p, id, out);
    emit_base(e, p, id, T);
    elem(e, p, id, "0", d);
    switch ((Op)n->op) {
    case OP_BCAST:
        elem(e, p, n->arg[0], "0", a0);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = %s;\n", size, T, a0);
        break;
    case OP_SUM:
        buf_printf(out, "    %s = 0.0;\n    for (long i = 0; i < %u; i++)\n        %s += %s;\n",
                   d, shape_size(s0), d, a0);
        break;
    case OP_MATMUL:
        product_matmul(e, p, id, out);
        break;
    case OP_OUTER:
        emit_base(e, p, n->arg[1], B);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        for (long j = 0; j < %u; j++)\n"
                        "            %s[i * %u + j] = %s[i] * %s[j];\n",
                   n->shape.dim[0], n->shape.dim[1], T, n->shape.dim[1], A, B);
        break;
    case OP_TRANSPOSE:
        product_transpose(A, s0.dim[0], s0.dim[1], T, out);
        break;
    case OP_INDEX:                      /* scalar element */
        buf_printf(out, "    %s = %s[%u];\n", d, A, start);
        break;
    case OP_SLICE:
        buf_printf(out, "    for (long k = 0; k < %u; k++)\n        for (long i = 0; i < %u; i++)\n"
                        "            %s[k * %u + i] = %s[(%u + k * %u) * %u + i];\n",
                   n->shape.dim[0], row_size(s0), T, row_size(s0), A, start, stride, row_size(s0));
        break;
    case OP_PAD: {
        uint32_t r = row_size(n->shape), count = s0.rank == n->shape.rank ? s0.dim[0] : 1;
        if (s0.rank == 0)
            elem(e, p, n->arg[0], "0", a0);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = 0.0;\n", size, T);
        if (s0.rank == 0)
            buf_printf(out, "    %s[%u] = %s;\n", T, start, a0);
        else
            buf_printf(out, "    for (long k = 0; k < %u; k++)\n        for (long i = 0; i < %u; i++)\n"
                            "            %s[(%u + k * %u) * %u + i] = %s[k * %u + i];\n",
                       count, r, T, start, stride, r, A, r);
        break;
    }
    case OP_UNVIEW:
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = 0.0;\n", size, T);
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = %s[i];\n",
                   shape_size(s0), T, start, A);
        break;
    case OP_SOFTMAX:
    case OP_LOGSUMEXP:
        softmax_lse(e, p, id, out);
        break;
    default:
        buf_printf(out, "    /* unsupported op %s */\n", op_info[n->op].name);
        break;
    }
}

/* The body of the loop for a head and the elementwise nodes fused into
 * it: members as scalar locals eN, then the head's element (or a sum's
 * accumulation). */
static void fused_loop(const Emitter *e, const Plan *p, NodeId head, Buf *out)
{
    const Node *h = node(e, head);
    int sum = h->op == OP_SUM;
    char a[2][320], d[320];
    elem(e, p, head, "0", d);
    for (NodeId m = p->first[head]; m; m = p->next[m]) {
        const Node *n = node(e, m);
        for (int k = 0; k < op_info[n->op].arity; k++)
            elem(e, p, n->arg[k], "i", a[k]);
        buf_printf(out, "        const double e%u = ", m);
        expand(emit_template(e, n), a, out);
        buf_puts(out, ";\n");
    }
    if (sum) {
        elem(e, p, h->arg[0], "i", a[0]);
        buf_printf(out, "        %s += %s;\n", d, a[0]);
        return;
    }
    for (int k = 0; k < op_info[h->op].arity; k++)
        elem(e, p, h->arg[k], "i", a[k]);
    elem(e, p, head, "i", d);
    buf_printf(out, p->where[head].store == S_LOCAL ? "        const double %s = " : "        %s = ", d);
    expand(emit_template(e, h), a, out);
    buf_puts(out, ";\n");
}

/* ---- Hessian bands (f_hess): the entries of one diagonal in a loop ----
 * Iteration i writes position i of band b (HessBand): the sum of its
 * pieces' elements i - at, the current one for at = 0 and, for at > 0,
 * one carried in registers h<b>_<piece>_<d> from d = at iterations back
 * (0.0 before the first, where the piece has no element yet). The last
 * positions come from the carries after the loop. */

/* Piece pc's element at this iteration (d = 0) or d iterations back. */
static void band_term(const Emitter *e, const Plan *p, uint32_t b, uint32_t pc, uint32_t d,
                      char out[320])
{
    NodeId v = e->k->hess.band[b].v[pc];
    if (d == 0)
        elem(e, p, v, is_scalar(e, v) ? "0" : "i", out);
    else
        snprintf(out, 320, "h%u_%u_%u", b, pc, d);
}

/* The carried registers, before the loop. */
static void band_carries(const Emitter *e, uint32_t b, Buf *out)
{
    const HessBand *hb = &e->k->hess.band[b];
    for (uint32_t pc = 0; pc < hb->npiece; pc++)
        for (uint32_t d = 1; d <= hb->at[pc]; d++)
            buf_printf(out, "    double h%u_%u_%u = 0.0;\n", b, pc, d);
}

/* Inside the loop: position i's entry, then the registers move on. */
static void band_iteration(const Emitter *e, const Plan *p, uint32_t b, Buf *out)
{
    const HessBand *hb = &e->k->hess.band[b];
    char t[320];
    if (hb->qstride)
        buf_printf(out, "        H[%u + %u * i] = ", hb->q0, hb->qstride);
    else
        buf_printf(out, "        H[%s_hband%u[i]] = ", e->sym, b);
    for (uint32_t pc = 0; pc < hb->npiece; pc++) {
        band_term(e, p, b, pc, hb->at[pc], t);
        buf_printf(out, "%s%s", pc ? " + " : "", t);
    }
    buf_puts(out, ";\n");
    for (uint32_t pc = 0; pc < hb->npiece; pc++) {
        for (uint32_t d = hb->at[pc]; d >= 2; d--)
            buf_printf(out, "        h%u_%u_%u = h%u_%u_%u;\n", b, pc, d, b, pc, d - 1);
        if (hb->at[pc]) {
            band_term(e, p, b, pc, 0, t);
            buf_printf(out, "        h%u_%u_1 = %s;\n", b, pc, t);
        }
    }
}

/* After the loop: positions loop .. len - 1, from the registers. */
static void band_tail(const Emitter *e, uint32_t b, Buf *out)
{
    const HessBand *hb = &e->k->hess.band[b];
    for (uint32_t t = hb->loop; t < hb->len; t++) {
        uint32_t q = hess_find(&e->k->hess, hb->col0 + t + hb->diag, hb->col0 + t), any = 0;
        buf_printf(out, "    H[%u] = ", q);
        for (uint32_t pc = 0; pc < hb->npiece; pc++)
            if (t - hb->at[pc] < hb->loop) /* then d = loop + at - t is in 1 .. at */
                buf_printf(out, "%sh%u_%u_%u", any++ ? " + " : "", b, pc, hb->loop + hb->at[pc] - t);
        buf_puts(out, ";\n");
    }
}

/* A band that no run writes: its own loop after the body, from arrays. */
static void band_loop(const Emitter *e, const Plan *p, uint32_t b, Buf *out)
{
    band_carries(e, b, out);
    buf_printf(out, "    for (long i = 0; i < %u; i++) {\n", e->k->hess.band[b].loop);
    band_iteration(e, p, b, out);
    buf_puts(out, "    }\n");
    band_tail(e, b, out);
}

static NodeId loop_run(const Emitter *e, const Plan *p, NodeId first, Buf *out)
{
    const Graph *g = e->k->g;
    uint32_t size = plan_loop_size(e, p, first);
    NodeId end = plan_run_end(e, p, first);
    for (NodeId i = first; i < end; i++) {
        if (!plan_emitted(p, i))
            continue;
        if (!plan_loop_size(e, p, i)) {             /* hoisted */
            if (op_info[g->node[i].op].flags & OPF_ELEM)
                elementwise(e, p, i, out);
            else
                structured(e, p, i, out);
            continue;
        }
        char d[320];
        if (p->first[i] || p->where[i].store == S_ARRAY || p->where[i].store == S_WORK)
            declare(e, p, i, out);
        if (g->node[i].op == OP_SUM) {
            elem(e, p, i, "0", d);
            buf_printf(out, "    %s = 0.0;\n", d);
        }
    }
    for (uint32_t w = p->wfirst[first]; w; w = p->writes[w - 1].next)
        if (p->writes[w - 1].carry)
            buf_printf(out, "    double carry%u = 0.0;\n", w);
    uint32_t nband = p->band_run ? e->k->hess.nband : 0;
    for (uint32_t b = 0; b < nband; b++)
        if (p->band_run[b] == first)
            band_carries(e, b, out);
    buf_printf(out, "    for (long i = 0; i < %u; i++) {\n", size);
    for (NodeId i = first; i < end; i++) {
        if (!plan_emitted(p, i) || !plan_loop_size(e, p, i))
            continue;
        if (p->first[i])
            fused_loop(e, p, i, out);
        else
            elementwise(e, p, i, out);
    }
    for (uint32_t w = p->wfirst[first]; w; w = p->writes[w - 1].next) {
        const LoopWrite *lw = &p->writes[w - 1];
        char v[320], c[320];
        elem(e, p, lw->v, "i", v);
        if (lw->carry) {
            elem(e, p, lw->carry, "i", c);
            buf_printf(out, "        %s[%u + i] = carry%u + %s;\n        carry%u = %s;\n",
                       lw->dst, lw->at, w, v, w, c);
        } else {
            buf_printf(out, "        %s[%u + i] %s %s;\n", lw->dst, lw->at, lw->add ? "+=" : "=", v);
        }
    }
    for (uint32_t b = 0; b < nband; b++)
        if (p->band_run[b] == first)
            band_iteration(e, p, b, out);
    buf_puts(out, "    }\n");
    for (uint32_t w = p->wfirst[first]; w; w = p->writes[w - 1].next)
        if (p->writes[w - 1].carry)
            buf_printf(out, "    %s[%u] = carry%u;\n", p->writes[w - 1].dst, p->writes[w - 1].at + size, w);
    for (uint32_t b = 0; b < nband; b++)
        if (p->band_run[b] == first)
            band_tail(e, b, out);
    return end;
}

/* The gradient entries stored as soon as node m is computed. */
static void early_stores(const Emitter *e, const Plan *p, NodeId m, Buf *out)
{
    for (uint32_t j = plan_early(p, m); j; j = p->early_next[j - 1]) {
        char v[320];
        elem(e, p, m, "0", v);
        buf_printf(out, "    %s[%u] = %s;\n", p->dst, e->grad_off[j - 1], v);
    }
}

/* One statement with a scalar result and its early stores (the parts of
 * a split body, emit_split.c). */
void emit_statement(const Emitter *e, const Plan *p, NodeId i, Buf *out)
{
    if (op_info[node(e, i)->op].flags & OPF_ELEM)
        elementwise(e, p, i, out);
    else
        structured(e, p, i, out);
    early_stores(e, p, i, out);
}

static void body(const Emitter *e, const Plan *p, Buf *out)
{
    enum { AHEAD = 8 };
    const Graph *g = e->k->g;
    if (p->nslots && !p->slots_in_work)
        buf_printf(out, "    double w[%u];\n", p->nslots);
    else if (p->nslots)
        buf_printf(out, "    double *const w = work + %u;\n", p->work - p->nslots);
    if (p->nparts) {
        split_calls(e, p, out);
        return;
    }
    for (uint32_t z = 0; z < p->nzero; z++)
        buf_printf(out, "    for (long i = %u; i < %u; i++)\n        %s[i] = 0.0;\n",
                   p->zero[z][0], p->zero[z][1], p->dst);
    for (NodeId i = 1, next; i < g->n; i = next) {
        next = i + 1;
        /* The operands' entries of a node a few statements ahead: in a big
         * kernel they are far apart in memory, each a cache miss. */
        if (i + AHEAD < g->n) {
            const Node *n = &g->node[i + AHEAD];
            __builtin_prefetch(&p->where[n->arg[0]]);
            __builtin_prefetch(&p->where[n->arg[1]]);
        }
        if (!plan_emitted(p, i))
            continue;
        if (pair_of(p, i) && pair_of(p, i) < i)
            ;                   /* the later of a pair: computed already */
        else if (plan_loop_size(e, p, i))
            next = loop_run(e, p, i, out);
        else if (op_info[g->node[i].op].flags & OPF_ELEM)
            elementwise(e, p, i, out);  /* a scalar */
        else
            structured(e, p, i, out);
        for (NodeId m = i; m < next; m++)
            early_stores(e, p, m, out);
    }
}

/* Writes root into dst[off..] (a scalar, or a tensor element by element). */
static void store_result(const Emitter *e, const Plan *p, NodeId root,
                         const char *dst, uint32_t off, Buf *out)
{
    char v[320];
    if (is_scalar(e, root)) {
        elem(e, p, root, "0", v);
        buf_printf(out, "    %s[%u] = %s;\n", dst, off, v);
        return;
    }
    elem(e, p, root, "i", v);
    buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = %s;\n",
               size_of(e, root), dst, off, v);
}

static void store_pieces(const Emitter *e, const Plan *p, NodeId root, const NodeId *pieces,
                         uint32_t n, const char *dst, uint32_t off, Buf *out)
{
    char v[320];
    int tile = plan_blocks_tile(e, root, pieces, n);
    const char *op = tile ? "=" : "+=";
    /* When the blocks overlap, the first one (if contiguous) is still
     * assigned, and only the rest of the output is zeroed first: one pass
     * over the output fewer. */
    uint32_t at0 = 0, len0 = 0, size = size_of(e, root);
    int first = !tile && n > 0 && !plan_outer_piece(e, pieces[0]) && plan_block_of(e, pieces[0], &at0, &len0);
    if (first) {
        if (at0 > 0)
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = 0.0;\n",
                       at0, dst, off);
        if (at0 + len0 < size)
            buf_printf(out, "    for (long i = %u; i < %u; i++)\n        %s[%u + i] = 0.0;\n",
                       at0 + len0, size, dst, off);
    } else if (!tile) {
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] = 0.0;\n",
                   size, dst, off);
    }
    for (uint32_t k = 0; k < n; k++) {
        const Node *u = node(e, pieces[k]);
        op = tile || (first && k == 0) ? "=" : "+=";
        Shape s0 = node(e, plan_piece_value(e, pieces[k]))->shape;
        uint32_t r = row_size(u->shape), at, len;
        if (plan_outer_piece(e, pieces[k])) {
            const Node *o = node(e, u->arg[0]);
            char a[320], b[320];
            elem(e, p, o->arg[0], "i", a);
            elem(e, p, o->arg[1], "j", b);
            buf_printf(out, "    for (long i = 0; i < %u; i++) {\n        const double ai = %s;\n"
                            "        double *restrict d = %s + %u + i * %u;\n"
                            "        for (long j = 0; j < %u; j++)\n            d[j] %s ai * %s;\n    }\n",
                       o->shape.dim[0], a, dst, off + (uint32_t)u->aux, o->shape.dim[1],
                       o->shape.dim[1], op, b);
            continue;
        }
        if (u->op == OP_TCONST) {      /* one-hot: its one element, as a literal */
            at = plan_one_hot(e, pieces[k]);
            emit_literal(ir_tconst_data(e->k->g, pieces[k])[at], v);
            buf_printf(out, "    %s[%u] %s %s;\n", dst, off + at, op, v);
            continue;
        }
        if (plan_block_of(e, pieces[k], &at, &len)) {
            if (k == 0 && p->out_at && p->out_at[plan_piece_value(e, pieces[k])])
                continue;               /* computed in place */
            elem(e, p, plan_piece_value(e, pieces[k]), "i", v);
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[%u + i] %s %s;\n",
                       len, dst, off + at, op, v);
            continue;
        }
        /* Only here is num a stride; in other pieces it may be any
         * double, and converting that to an integer is undefined. */
        uint32_t count = s0.rank == u->shape.rank ? s0.dim[0] : 1, stride = (uint32_t)u->num;
        char ix[64];
        snprintf(ix, sizeof ix, "k * %u + i", r);
        elem(e, p, u->arg[0], ix, v);
        buf_printf(out, "    for (long k = 0; k < %u; k++)\n        for (long i = 0; i < %u; i++)\n"
                        "            %s[%u + (%u + k * %u) * %u + i] += %s;\n",
                   count, r, dst, off, (uint32_t)u->aux, stride, r, v);
    }
}

/* ---- entry points ---- */

/* "const double *restrict in, const double *restrict params" etc. */
static void params_text(const Emitter *e, Entry entry, int work, int proto, Buf *b)
{
    const char *r = proto ? "" : "restrict ";
    int tensor = !is_scalar(e, e->k->value);
    buf_printf(b, "const double *%sin", r);
    if (e->k->nparams)
        buf_printf(b, ", const double *%sparams", r);
    if (entry == E_VALUE && tensor)
        buf_printf(b, ", double *%sout", r);
    if (entry == E_GRAD) {
        if (tensor)
            buf_printf(b, ", const double *%sv", r);
        buf_printf(b, ", double *%sgrad", r);
        if (e->k->nparams)
            buf_printf(b, ", double *%sgrad_params", r);
    }
    if (work)
        buf_printf(b, ", double *%swork", r);
}

static void signature(const Emitter *e, Entry entry, int work, int proto, Buf *out)
{
    int tensor = !is_scalar(e, e->k->value);
    const char *suffix = entry == E_VALUE ? "" : tensor ? "_vjp" : "_grad";
    buf_printf(out, "%s %s%s%s(", tensor ? "void" : "double", e->sym, suffix, work ? "_work" : "");
    params_text(e, entry, work, proto, out);
    buf_puts(out, proto ? ");\n" : ")\n");
}

static int uses(const Plan *p, const Emitter *e, int params)
{
    for (uint32_t i = 0; i < e->k->ninputs; i++) {
        int is_param = i >= e->k->ninputs - e->k->nparams;
        if (is_param == params && p->where[e->k->input[i]].store != S_NONE)
            return 1;
    }
    return 0;
}

/* Per entry of the Hessian's pattern: 1 when a band gives it. */
static uint8_t *banded_entries(const HessPattern *h)
{
    uint8_t *banded = xcalloc((size_t)h->nnz + 1, 1);
    for (uint32_t b = 0; b < h->nband; b++)
        for (uint32_t t = 0; t < h->band[b].len; t++)
            banded[hess_find(h, h->band[b].col0 + t + h->band[b].diag, h->band[b].col0 + t)] = 1;
    return banded;
}

/* Per input, the vector an entry point writes for it: the gradient
 * (f_grad, f_hess) or H v (f_hvp); NULL for f and f_jvp. The second-order
 * ones write only the variables' (the inputs that are not parameters). */
static const NodeId *entry_vectors(const Emitter *e, Entry entry, uint32_t *n)
{
    const Kernel *k = e->k;
    *n = entry == E_GRAD ? k->ninputs : k->ninputs - k->nparams;
    if (entry == E_GRAD || entry == E_HESS)
        return k->grad;
    return entry == E_HVP ? k->hvp : NULL;
}

/* What f_hess computes for H: the entries no band gives, one by one,
 * and the bands' pieces. */
static uint32_t hess_roots(const Emitter *e, NodeId *roots)
{
    const HessPattern *h = &e->k->hess;
    uint8_t *banded = banded_entries(h);
    uint32_t n = 0;
    for (uint32_t q = 0; q < h->nnz; q++)
        if (!banded[q])
            roots[n++] = e->k->hval[q];
    for (uint32_t b = 0; b < h->nband; b++)
        for (uint32_t pc = 0; pc < h->band[b].npiece; pc++)
            roots[n++] = h->band[b].v[pc];
    free(banded);
    return n;
}

/* Which bands the loop of a run writes (Plan.band_run): those whose
 * vectors that run computes, whose scalars are at hand before it. Their
 * vectors then need no array of their own. */
static void band_writes(const Emitter *e, Plan *p)
{
    const HessPattern *h = &e->k->hess;
    p->band_run = xcalloc(h->nband + 1, sizeof *p->band_run);
    if (!p->run)                /* only scalars (plan_make): no loop to join */
        return;
    for (uint32_t b = 0; b < h->nband; b++) {
        const HessBand *hb = &h->band[b];
        NodeId run = 0;
        int ok = 1;
        for (uint32_t pc = 0; pc < hb->npiece; pc++) {
            NodeId v = hb->v[pc];
            Store st = p->where[v].store;
            if (is_scalar(e, v) || st == S_INPUT || st == S_ALIAS || st == S_TCONST) {
                ok &= !is_scalar(e, v) || st == S_LITERAL || st == S_INPUT;
                continue;       /* at hand anywhere */
            }
            ok &= p->run[v] && (!run || p->run[v] == run) && (st == S_ARRAY || st == S_WORK);
            run = p->run[v];
        }
        /* Pieces all at hand (slices of the input): the first run of the
         * band's trip count will do. */
        for (NodeId i = 1; ok && !run && i < e->k->g->n; i++)
            if (p->run[i] == i && plan_loop_size(e, p, i) == hb->loop)
                run = i;
        /* An alias is declared where its node comes: before the run or,
         * hoisted, in it; not after. */
        for (uint32_t pc = 0; pc < hb->npiece; pc++)
            ok &= p->where[hb->v[pc]].store != S_ALIAS || hb->v[pc] < run || p->run[hb->v[pc]] == run;
        if (!ok || !run || plan_loop_size(e, p, run) != hb->loop)
            continue;
        p->band_run[b] = run;
        for (uint32_t pc = 0; pc < hb->npiece; pc++) {
            Store st = p->where[hb->v[pc]].store;
            p->roots[hb->v[pc]] -= st == S_ARRAY || st == S_WORK;
        }
    }
    for (uint32_t b = 0; b < h->nband; b++)
        for (uint32_t pc = 0; p->band_run[b] && pc < h->band[b].npiece; pc++) {
            NodeId v = h->band[b].v[pc];
            Store st = p->where[v].store;
            if (!p->roots[v] && !p->outside[v] && (st == S_ARRAY || st == S_WORK))
                p->where[v].store = S_LOCAL;
        }
}

/* What an entry point computes: the value (not for a VJP), and per input
 * its gradient (or H v), or the blocks of one written block by block;
 * f_jvp's J v, f_hess's entries. */
static uint32_t entry_roots(const Emitter *e, Entry entry, NodeId **rootsp,
                            NodeId **piecesp, uint32_t **npiecesp)
{
    const Kernel *k = e->k;
    NodeId *roots = xmalloc(((k->ninputs + 1) * (2 * MAXP + 1) + k->hess.nnz +
                             (size_t)k->hess.nband * HESS_BAND_PIECES) * sizeof *roots);
    NodeId *pieces = xmalloc((k->ninputs + 1) * MAXP * sizeof *pieces);
    uint32_t *npieces = xcalloc(k->ninputs + 1, sizeof *npieces);
    uint32_t nroots = 0, nvec;
    const NodeId *vec = entry_vectors(e, entry, &nvec);
    *rootsp = roots;
    *piecesp = pieces;
    *npiecesp = npieces;
    if (entry == E_VALUE || is_scalar(e, k->value))     /* a VJP does not return the value */
        roots[nroots++] = k->value;
    if (entry == E_JVP)
        roots[nroots++] = k->jvp;
    for (uint32_t i = 0; vec && i < nvec; i++) {
        npieces[i] = 0;
        if (vec[i] == NODE_NONE)                /* not in --wrt */
            continue;
        npieces[i] = plan_unview_pieces(e, vec[i], pieces + i * MAXP, MAXP);
        for (uint32_t j = 0; j < npieces[i]; j++) {
            NodeId piece = pieces[i * MAXP + j], v = plan_piece_value(e, piece);
            if (plan_outer_piece(e, piece)) {        /* written from its factors */
                roots[nroots++] = node(e, v)->arg[0];
                roots[nroots++] = node(e, v)->arg[1];
            } else {
                roots[nroots++] = v;
            }
        }
        if (npieces[i] == 0)
            roots[nroots++] = vec[i];
    }
    if (entry == E_HESS)
        nroots += hess_roots(e, roots + nroots);
    return nroots;
}

/* Which results an entry point writes straight into out or grad as they
 * are computed (inside their loops, or in place) instead of storing them
 * at the end: decided before printing, because it changes the work array. */
static void entry_writes(const Emitter *e, Entry entry, EntryPlan *ep)
{
    const Kernel *k = e->k;
    Plan *p = &ep->p;
    int tensor = !is_scalar(e, k->value);
    uint32_t nvec;
    const NodeId *vec = entry_vectors(e, entry, &nvec);
    p->dst = entry == E_GRAD || entry == E_HESS ? "grad" : "out";
    if (entry == E_VALUE && tensor) {
        ep->value_done = plan_loop_writes(e, p, k->value, NULL, 0, 0) ||
                         plan_in_place(e, p, k->value, NULL, 0, 0);
        plan_localise_written(p);
    }
    if (vec) {
        uint8_t *early = ep->early = plan_early_stores(e, p, vec, ep->npieces);
        for (uint32_t i = 0; i < k->ninputs - k->nparams; i++) {
            NodeId *pc = ep->pieces + i * MAXP;
            if (!early[i] && vec[i] != NODE_NONE && !is_scalar(e, vec[i]) &&
                (plan_loop_writes(e, p, vec[i], pc, ep->npieces[i], e->grad_off[i]) ||
                 plan_in_place(e, p, vec[i], pc, ep->npieces[i], e->grad_off[i])))
                early[i] = 1;
        }
        plan_localise_written(p);
    }
    if (entry == E_HESS)
        band_writes(e, p);
}

/* Stores what an entry point's vectors (entry_vectors) still need after
 * the body, into p->dst (grad_params for parameters). */
static void store_vectors(const Emitter *e, Entry entry, const EntryPlan *ep, Buf *out)
{
    const Kernel *k = e->k;
    const Plan *p = &ep->p;
    uint32_t nvec, nin = k->ninputs - k->nparams;
    const NodeId *vec = entry_vectors(e, entry, &nvec);
    for (uint32_t i = 0; i < nvec; i++) {
        int is_param = i >= nin;
        const char *dst = is_param ? "grad_params" : p->dst;
        if (ep->early[i] || vec[i] == NODE_NONE)
            continue;
        if (is_param)
            buf_puts(out, "    if (grad_params) {\n");
        if (ep->npieces[i])
            store_pieces(e, p, vec[i], ep->pieces + i * MAXP, ep->npieces[i], dst,
                         e->grad_off[i], out);
        else
            store_result(e, p, vec[i], dst, e->grad_off[i], out);
        if (is_param)
            buf_puts(out, "    }\n");
    }
}

/* An entry point's roots and plan, made once per emission: the work size
 * needs them before the code is printed (planning a big kernel takes as
 * long as printing it). */
static EntryPlan *entry_plan(const Emitter *e, Entry entry)
{
    EntryPlan *ep = &e->plans[entry];
    if (!ep->roots) {
        ep->nroots = entry_roots(e, entry, &ep->roots, &ep->pieces, &ep->npieces);
        ep->p.whole = entry >= E_JVP;
        plan_make(e, ep->roots, ep->nroots, &ep->p);
        entry_writes(e, entry, ep);
        /* Tensors now written straight into out or grad, or computed in
         * their loops, need no work block: NAME_WORK_SIZE is exactly
         * what the code uses. */
        plan_rework(e, &ep->p, ep->roots, ep->nroots);
    }
    return ep;
}

static void entry_function(const Emitter *e, Entry entry, int work, Buf *out)
{
    const Kernel *k = e->k;
    int tensor = !is_scalar(e, k->value);
    EntryPlan *ep = entry_plan(e, entry);
    Plan *p = &ep->p;
    if (p->nparts) {
        p->part_tag = entry == E_GRAD ? "g" : "v";
        split_parts(e, p, entry, out);
    }
    signature(e, entry, work, 0, out);
    buf_puts(out, "{\n");
    if (!uses(p, e, 0))
        buf_puts(out, "    (void)in;\n");
    if (k->nparams && !uses(p, e, 1))
        buf_puts(out, "    (void)params;\n");
    if (work && !p->work)
        buf_puts(out, "    (void)work;\n");
    if (entry == E_GRAD && tensor && (!k->seed || p->where[k->seed].store == S_NONE))
        buf_puts(out, "    (void)v;\n");
    int value_done = ep->value_done;
    body(e, p, out);
    char v[320];
    if (entry == E_VALUE && tensor && !value_done)
        store_result(e, p, k->value, "out", 0, out);
    if (entry == E_GRAD) {
        if (e->nwrt_in == 0)
            buf_puts(out, "    (void)grad;\n");
        if (k->nparams && k->nwrt == e->nwrt_in)
            buf_puts(out, "    (void)grad_params;\n");
        store_vectors(e, entry, ep, out);
    }
    if (!tensor) {
        elem(e, p, k->value, "0", v);
        buf_printf(out, "    return %s;\n", v);
    }
    buf_puts(out, "}\n");
}

/* Whether the kernel has tensor constants: their elements, at least one
 * each (dimensions are positive), are all in the graph's pool, so an
 * empty pool means none, without a pass over the nodes (106 MB at 10^6
 * nodes). */
static int has_tables(const Emitter *e)
{
    return e->k->g->npool != 0;
}

/* Static const arrays for the tensor constants the kernel uses, and for
 * the places in H of the bands whose entries are not evenly spaced. */
static void constants(const Emitter *e, Buf *out)
{
    const Graph *g = e->k->g;
    const HessPattern *h = &e->k->hess;
    for (uint32_t b = 0; has(e, E_HESS) && b < h->nband; b++) {
        const HessBand *hb = &h->band[b];
        if (hb->qstride)
            continue;
        buf_printf(out, "static const int %s_hband%u[%u] = {", e->sym, b, hb->loop);
        for (uint32_t t = 0; t < hb->loop; t++)
            buf_printf(out, "%s%u", t == 0 ? "\n    " : t % 16 ? ", " : ",\n    ",
                       hess_find(h, hb->col0 + t + hb->diag, hb->col0 + t));
        buf_puts(out, "\n};\n");
    }
    for (NodeId i = 1; has_tables(e) && i < g->n; i++) {
        if (g->node[i].op != OP_TCONST || !e->table_used[i])
            continue;
        const double *v = ir_tconst_data(g, i);
        uint32_t n = shape_size(g->node[i].shape);
        buf_printf(out, "static const double %s_k%u[%u] = {", e->sym, i, n);
        for (uint32_t j = 0; j < n; j++) {
            char num[48];
            emit_literal(v[j], num);
            buf_printf(out, "%s%s", j == 0 ? "\n    " : j % 8 ? ", " : ",\n    ", num);
        }
        buf_puts(out, "\n};\n");
    }
}

/* The plan of NAME_jacobian's direct form (k->jac): per element of J,
 * whether it is written as it is computed (the array returned). */
static uint8_t *jacobian_plan(const Emitter *e, Plan *p)
{
    const Kernel *k = e->k;
    uint32_t nj = k->njac, n = e->out_size * nj;
    p->whole = 1;               /* jacobian_function prints one body */
    plan_make(e, k->jac, n, p);
    p->dst = "J";
    uint8_t *done = xmalloc(n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t at = (i / nj) * e->grad_size + e->grad_off[k->wrt[i % nj]];
        done[i] = !is_scalar(e, k->jac[i]) && (plan_loop_writes(e, p, k->jac[i], NULL, 0, at) ||
                                               plan_in_place(e, p, k->jac[i], NULL, 0, at));
    }
    plan_localise_written(p);
    plan_rework(e, p, k->jac, n);
    return done;
}

static uint32_t work_size(const Emitter *e)
{
    uint32_t size = 0;
    for (int entry = E_VALUE; entry < E_COUNT; entry++) {
        if (!has(e, entry))
            continue;
        const Plan *p = &entry_plan(e, (Entry)entry)->p;
        if (p->work > size)
            size = p->work;
    }
    if (e->k->jac) {
        Plan p;
        free(jacobian_plan(e, &p));
        if (p.work > size)
            size = p.work;
        plan_free(&p);
    }
    return size;
}

static void macro_name(const char *sym, const char *suffix, char *out, size_t n)
{
    size_t i = 0;
    for (; sym[i] && i + 1 < n; i++)
        out[i] = (char)toupper((unsigned char)sym[i]);
    out[i] = 0;
    strncat(out, suffix, n - strlen(out) - 1);
}

/* Jacobian rows by reverse sweeps with unit seeds: J[i][j] = d out_i / d in_j. */
static void jacobian_function(const Emitter *e, int work, int proto, Buf *out)
{
    buf_printf(out, "void %s_jacobian%s(const double *%sin%s, double *%sJ%s)%s",
               e->sym, work ? "_work" : "", proto ? "" : "restrict ",
               e->k->nparams ? (proto ? ", const double *params" : ", const double *restrict params") : "",
               proto ? "" : "restrict ", work ? ", double *work" : "", proto ? ";\n" : "\n");
    if (proto)
        return;
    if (e->k->jac) {
        /* All rows at once: one forward pass, a reverse sweep per row. */
        const Kernel *k = e->k;
        uint32_t nj = k->njac, n = e->out_size * nj;
        Plan p;
        uint8_t *done = jacobian_plan(e, &p);
        buf_puts(out, "{\n");
        if (!uses(&p, e, 0))
            buf_puts(out, "    (void)in;\n");
        if (k->nparams && !uses(&p, e, 1))
            buf_puts(out, "    (void)params;\n");
        if (work && !p.work)
            buf_puts(out, "    (void)work;\n");
        body(e, &p, out);
        for (uint32_t i = 0; i < n; i++)
            if (!done[i])
                store_result(e, &p, k->jac[i], "J", (i / nj) * e->grad_size + e->grad_off[k->wrt[i % nj]], out);
        buf_puts(out, "}\n");
        free(done);
        plan_free(&p);
        return;
    }
    buf_printf(out, "{\n    double gradc_v[%u];\n    for (long gradc_i = 0; gradc_i < %u; gradc_i++)\n        gradc_v[gradc_i] = 0.0;\n"
                    "    for (long gradc_i = 0; gradc_i < %u; gradc_i++) {\n        gradc_v[gradc_i] = 1.0;\n"
                    "        %s_vjp%s(in, %sgradc_v, J + gradc_i * %u%s%s);\n        gradc_v[gradc_i] = 0.0;\n    }\n}\n",
               e->out_size, e->out_size, e->out_size, e->sym, work ? "_work" : "",
               e->k->nparams ? "params, " : "", e->grad_size, e->k->nparams ? ", 0" : "",
               work ? ", work" : "");
}

/* ---- forward mode and second order: f_jvp, f_hvp, f_hess ---- */

static const char *const second_name[E_COUNT] = {[E_JVP] = "_jvp", [E_HVP] = "_hvp", [E_HESS] = "_hess"};

/* double f_jvp(in, v, out), f_hvp(in, v, out), f_hess(in, grad, H): a
 * scalar function returns its value; a tensor one's f_jvp is void. */
static void second_signature(const Emitter *e, Entry entry, int work, int proto, Buf *out)
{
    const char *r = proto ? "" : "restrict ";
    buf_printf(out, "%s %s%s%s(const double *%sin", is_scalar(e, e->k->value) ? "double" : "void",
               e->sym, second_name[entry], work ? "_work" : "", r);
    if (e->k->nparams)
        buf_printf(out, ", const double *%sparams", r);
    if (entry == E_HESS)
        buf_printf(out, ", double *%sgrad, double *%sH", r, r);
    else
        buf_printf(out, ", const double *%sv, double *%sout", r, r);
    if (work)
        buf_printf(out, ", double *%swork", r);
    buf_puts(out, proto ? ");\n" : ")\n");
}

static int uses_tangent(const Plan *p, const Emitter *e)
{
    for (uint32_t i = 0; e->k->tangent && i < e->k->ninputs; i++)
        if (e->k->tangent[i] && p->where[e->k->tangent[i]].store != S_NONE)
            return 1;
    return 0;
}

/* The Hessian's entries into H: the pattern's, in its order, or both
 * halves of a dense row-major n x n array. */
static void store_hessian(const Emitter *e, const Plan *p, Buf *out)
{
    const HessPattern *h = &e->k->hess;
    int dense = (e->k->entries & ENTRY_HESS_DENSE) != 0;
    char v[320];
    if (dense)
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        H[i] = 0.0;\n", h->n * h->n);
    for (uint32_t b = 0; b < h->nband; b++)
        if (!p->band_run[b])
            band_loop(e, p, b, out);
    uint8_t *banded = banded_entries(h);
    for (uint32_t j = 0; j < h->n; j++)
        for (uint32_t q = h->colptr[j]; q < h->colptr[j + 1]; q++) {
            uint32_t i = h->rowind[q];
            if (banded[q])
                continue;
            elem(e, p, e->k->hval[q], "0", v);
            if (!dense)
                buf_printf(out, "    H[%u] = %s;\n", q, v);
            else if (i == j)
                buf_printf(out, "    H[%u] = %s;\n", i * h->n + j, v);
            else
                buf_printf(out, "    H[%u] = H[%u] = %s;\n", i * h->n + j, j * h->n + i, v);
        }
    free(banded);
}

static void second_function(const Emitter *e, Entry entry, int work, Buf *out)
{
    const Kernel *k = e->k;
    EntryPlan *ep = entry_plan(e, entry);
    Plan *p = &ep->p;
    second_signature(e, entry, work, 0, out);
    buf_puts(out, "{\n");
    if (!uses(p, e, 0))
        buf_puts(out, "    (void)in;\n");
    if (k->nparams && !uses(p, e, 1))
        buf_puts(out, "    (void)params;\n");
    if (work && !p->work)
        buf_puts(out, "    (void)work;\n");
    if (entry != E_HESS && !uses_tangent(p, e))
        buf_puts(out, "    (void)v;\n");
    body(e, p, out);
    if (entry == E_JVP)
        store_result(e, p, k->jvp, "out", 0, out);
    else
        store_vectors(e, entry, ep, out);
    if (entry == E_HESS)
        store_hessian(e, p, out);
    if (is_scalar(e, k->value)) {
        char v[320];
        elem(e, p, k->value, "0", v);
        buf_printf(out, "    return %s;\n", v);
    }
    buf_puts(out, "}\n");
}

/* The Hessian's pattern, compressed columns of the lower triangle. */
static void hessian_pattern(const Emitter *e, int proto, Buf *out)
{
    const HessPattern *h = &e->k->hess;
    if (proto) {
        buf_printf(out, "extern const int %s_hess_colptr[];   /* n + 1 */\n"
                        "extern const int %s_hess_rowind[];   /* nnz */\n", e->sym, e->sym);
        return;
    }
    buf_printf(out, "const int %s_hess_colptr[%u] = {", e->sym, h->n + 1);
    for (uint32_t j = 0; j <= h->n; j++)
        buf_printf(out, "%s%u", j == 0 ? "" : j % 16 ? ", " : ",\n    ", h->colptr[j]);
    /* C has no empty arrays: a Hessian with no entries gets one unused. */
    buf_printf(out, "};\nconst int %s_hess_rowind[%u] = {", e->sym, h->nnz ? h->nnz : 1);
    for (uint32_t q = 0; q < (h->nnz ? h->nnz : 1); q++)
        buf_printf(out, "%s%u", q == 0 ? "" : q % 16 ? ", " : ",\n    ", h->nnz ? h->rowind[q] : 0);
    buf_puts(out, "};\n");
}

/* The definition names its parameters gradc_*: the body calls the value
 * function by the user's name, which a parameter named n, in, out, params
 * or work would hide (a function called n is a fair name). The prototype
 * keeps the short names the documentation uses. */
static void batch_function(const Emitter *e, int work, int proto, Buf *out)
{
    int tensor = !is_scalar(e, e->k->value);
    const char *p = proto ? "" : "gradc_";
    const char *restr = proto ? "" : "restrict ";
    buf_printf(out, "void %s_batch%s(unsigned long %sn, const double *%s%sin", e->sym,
               work ? "_work" : "", p, restr, p);
    if (e->k->nparams)
        buf_printf(out, ", const double *%s%sparams", restr, p);
    buf_printf(out, ", double *%s%sout", restr, p);
    if (work)
        buf_printf(out, ", double *%swork", p);
    buf_printf(out, ")%s", proto ? ";\n" : "\n");
    if (proto)
        return;
    const char *prm = e->k->nparams ? "gradc_params, " : "";
    const char *wrk = work ? ", gradc_work" : "";
    buf_printf(out, "{\n    for (unsigned long gradc_s = 0; gradc_s < gradc_n; gradc_s++)\n");
    if (tensor)
        buf_printf(out, "        %s%s(gradc_in + gradc_s * %u, %sgradc_out + gradc_s * %u%s);\n}\n",
                   e->sym, work ? "_work" : "", e->in_size, prm, e->out_size, wrk);
    else
        buf_printf(out, "        gradc_out[gradc_s] = %s%s(gradc_in + gradc_s * %u%s%s);\n}\n",
                   e->sym, work ? "_work" : "", e->in_size, e->k->nparams ? ", gradc_params" : "",
                   wrk);
}

static void init_function(const Emitter *e, const Network *net, int proto, Buf *out)
{
    buf_printf(out, "void %s_init_params(double *%sparams, unsigned long seed)%s", e->sym,
               proto ? "" : "restrict ", proto ? ";\n" : "\n");
    if (proto)
        return;
    /* The documented scheme (net.c): splitmix64, uniform in +-limit. */
    buf_printf(out, "{\n    unsigned long long state = seed;\n    double *p = params;\n");
    for (uint32_t l = 0; l < net->nlayers; l++) {
        const Layer *L = &net->layer[l];
        uint32_t nw = L->in * L->units;
        char lim[48], val[48];
        buf_printf(out, "    /* layer %u: %u -> %u */\n", l + 1, L->in, L->units);
        if (L->wkind == INIT_RANDOM) {
            emit_literal(net_init_limit(L), lim);
            buf_printf(out, "    for (long i = 0; i < %u; i++) {\n"
                            "        unsigned long long z = (state += 0x9e3779b97f4a7c15ull);\n"
                            "        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n"
                            "        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
                            "        z ^= z >> 31;\n"
                            "        p[i] = (2.0 * ((double)(z >> 11) * 0x1.0p-53) - 1.0) * %s;\n    }\n",
                       nw, lim);
        } else if (L->wkind == INIT_SCALAR) {
            emit_literal(L->wval, val);
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        p[i] = %s;\n", nw, val);
        } else {
            buf_printf(out, "    {\n        static const double w[%u] = {", nw);
            for (uint32_t i = 0; i < nw; i++) {
                emit_literal(L->wlit[i], val);
                buf_printf(out, "%s%s", i ? ", " : "", val);
            }
            buf_printf(out, "};\n        for (long i = 0; i < %u; i++)\n            p[i] = w[i];\n    }\n", nw);
        }
        if (L->bkind == INIT_SCALAR) {
            emit_literal(L->bval, val);
            buf_printf(out, "    for (long i = 0; i < %u; i++)\n        p[%u + i] = %s;\n", L->units, nw, val);
        } else {
            buf_printf(out, "    {\n        static const double b[%u] = {", L->units);
            for (uint32_t i = 0; i < L->units; i++) {
                emit_literal(L->blit[i], val);
                buf_printf(out, "%s%s", i ? ", " : "", val);
            }
            buf_printf(out, "};\n        for (long i = 0; i < %u; i++)\n            p[%u + i] = b[i];\n    }\n",
                       L->units, nw);
        }
        buf_printf(out, "    p += %u;\n", nw + L->units);
    }
    buf_puts(out, "    (void)state;\n}\n");
}

/* One signature for every kernel, so the run-time library needs one
 * function pointer: value into out[], gradient (or VJP with seed v) into
 * grad and grad_params when grad is not null. */
static void runtime_entry(const Emitter *e, int work, Buf *out)
{
    int tensor = !is_scalar(e, e->k->value);
    const char *w = work ? "_work" : "", *wa = work ? ", work" : "";
    const char *pa = e->k->nparams ? ", params" : "", *gp = e->k->nparams ? ", grad_params" : "";
    buf_printf(out, "\nvoid %s_rt(const double *in, const double *params, const double *v, "
                    "double *out, double *grad, double *grad_params, double *work);\n", e->sym);
    buf_printf(out, "void %s_rt(const double *in, const double *params, const double *v, "
                    "double *out, double *grad, double *grad_params, double *work)\n{\n"
                    "    (void)params;\n    (void)v;\n    (void)grad_params;\n    (void)work;\n", e->sym);
    if (!tensor) {
        buf_printf(out, "    if (!grad)\n        out[0] = %s%s(in%s%s);\n", e->sym, w, pa, wa);
        if (has(e, E_GRAD))
            buf_printf(out, "    else\n        out[0] = %s_grad%s(in%s, grad%s%s);\n", e->sym, w, pa, gp, wa);
    } else {
        buf_printf(out, "    %s%s(in%s, out%s);\n", e->sym, w, pa, wa);
        if (has(e, E_GRAD))
            buf_printf(out, "    if (grad)\n        %s_vjp%s(in%s, v, grad%s%s);\n", e->sym, w, pa, gp, wa);
    }
    buf_puts(out, "}\n");
    if (!has(e, E_JVP) && !has(e, E_HVP) && !has(e, E_HESS))
        return;
    /* Forward mode and second order: J v into jv, H v into hv, each when
     * not null; the gradient by the variables and the Hessian's entries
     * into grad and H when H is not null. */
    buf_printf(out, "\nvoid %s_rt2(const double *in, const double *params, const double *v, "
                    "double *jv, double *hv, double *grad, double *H, double *work);\n", e->sym);
    buf_printf(out, "void %s_rt2(const double *in, const double *params, const double *v, "
                    "double *jv, double *hv, double *grad, double *H, double *work)\n{\n"
                    "    (void)params;\n    (void)v;\n    (void)jv;\n    (void)hv;\n"
                    "    (void)grad;\n    (void)H;\n    (void)work;\n", e->sym);
    if (has(e, E_JVP))
        buf_printf(out, "    if (jv)\n        %s_jvp%s(in%s, v, jv%s);\n", e->sym, w, pa, wa);
    if (has(e, E_HVP))
        buf_printf(out, "    if (hv)\n        %s_hvp%s(in%s, v, hv%s);\n", e->sym, w, pa, wa);
    if (has(e, E_HESS))
        buf_printf(out, "    if (H)\n        %s_hess%s(in%s, grad, H%s);\n", e->sym, w, pa, wa);
    buf_puts(out, "}\n");
}

static void teardown(Emitter *e)
{
    free(e->input_off);
    free(e->grad_off);
    if (e->lit)
        free(e->lit->slot);
    free(e->lit);
    free(e->table_used);
    if (e->lits)
        buf_free(e->lits);
    free(e->lits);
    free(e->slot_off);
    for (int i = 0; e->plans && i < E_COUNT; i++) {
        EntryPlan *ep = &e->plans[i];
        if (ep->roots)
            plan_free(&ep->p);
        free(ep->roots);
        free(ep->pieces);
        free(ep->npieces);
        free(ep->early);
    }
    free(e->plans);
}

static int setup(Emitter *e, const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    memset(e, 0, sizeof *e);
    e->k = k;
    e->o = o;
    e->out = out;
    const char *name = o && o->name ? o->name : k->name;
    snprintf(e->sym, sizeof e->sym, "%s%s", o && o->prefix ? o->prefix : "", name);
    if (!emit_valid_c_name(e->sym)) {
        diag_plain(d, "'%s' cannot be the name of a C function (it is not an identifier, or it is a C keyword or a name the generated code uses); choose another with --name or --prefix", e->sym);
        return -1;
    }
    e->input_off = xmalloc((k->ninputs + 1) * sizeof *e->input_off);
    e->lit = xmalloc(sizeof *e->lit);
    *e->lit = (Literals){xcalloc(1024, sizeof *e->lit->slot), 10, 0};
    e->table_used = xcalloc(k->g->n, 1);
    e->lits = xmalloc(sizeof *e->lits);
    memset(e->lits, 0, sizeof *e->lits);
    e->plans = xcalloc(E_COUNT, sizeof *e->plans);
    e->grad_off = xmalloc((k->ninputs + 1) * sizeof *e->grad_off);
    uint32_t nin = k->ninputs - k->nparams;
    for (uint32_t i = 0; i < k->ninputs; i++) {
        uint32_t *acc = i < nin ? &e->in_size : &e->params_size;
        e->input_off[i] = *acc;
        *acc += size_of(e, k->input[i]);
    }
    /* The gradient arrays hold the inputs of k->wrt, one after another. */
    for (uint32_t j = 0; k->grad && j < k->nwrt; j++) {
        uint32_t i = k->wrt[j];
        uint32_t *acc = i < nin ? &e->grad_size : &e->grad_params_size;
        e->grad_off[i] = *acc;
        *acc += size_of(e, k->input[i]);
        e->nwrt_in += i < nin;
    }
    e->out_size = size_of(e, k->value);
    /* Inputs past the named ones: the seed of a VJP, then the tangents
     * of the variables, each read from v at its input's offset in `in`. */
    e->slot_off = xcalloc((size_t)k->g->ninputs + 1, sizeof *e->slot_off);
    for (uint32_t i = 0; k->tangent && i < k->ninputs; i++)
        if (k->tangent[i])
            e->slot_off[node(e, k->tangent[i])->aux - k->ninputs] = e->input_off[i];
    return 0;
}

static void input_comment(const Emitter *e, Buf *out)
{
    const Kernel *k = e->k;
    char sh[48];
    buf_printf(out, " * in[%u]:", e->in_size);
    for (uint32_t i = 0; i < k->ninputs - k->nparams; i++) {
        Shape s = node(e, k->input[i])->shape;
        buf_printf(out, "%s %s%s at %u", i ? "," : "", k->input_name[i],
                   s.rank ? shape_str(s, sh) : "", e->input_off[i]);
    }
    if (k->nparams)
        buf_printf(out, "; params[%u]", e->params_size);
    buf_printf(out, "; value %s\n", shape_str(node(e, k->value)->shape, sh));
    if (!k->grad || k->wrt_all)
        return;
    /* --wrt: say which inputs the gradient arrays hold, and where. */
    buf_printf(out, " * grad[%u]:", e->grad_size);
    for (uint32_t j = 0; j < e->nwrt_in; j++) {
        uint32_t i = k->wrt[j];
        Shape s = node(e, k->input[i])->shape;
        buf_printf(out, "%s %s%s at %u", j ? "," : "", k->input_name[i],
                   s.rank ? shape_str(s, sh) : "", e->grad_off[i]);
    }
    if (k->nparams)
        buf_printf(out, "; grad_params[%u]", e->grad_params_size);
    buf_puts(out, " (--wrt: the gradient by these inputs only)\n");
}

uint32_t emit_work_size(const Kernel *k, const EmitOptions *o)
{
    Emitter e;
    Diag d;
    diag_init(&d);
    uint32_t size = setup(&e, k, o, NULL, &d) == 0 ? work_size(&e) : 0;
    teardown(&e);
    diag_free(&d);
    return size;
}

/* The most doubles of scratch any entry point's parts share (0: none is
 * split): NAME_SCRATCH_SIZE in the header. */
static uint32_t scratch_size(const Emitter *e)
{
    uint32_t size = 0;
    for (int entry = E_VALUE; entry <= E_GRAD; entry++) {
        if (!has(e, entry))
            continue;
        const Plan *p = &entry_plan(e, (Entry)entry)->p;
        if (p->nparts && p->nslots > size)
            size = p->nslots;
    }
    return size;
}

int emit_report(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    Emitter e;
    if (setup(&e, k, o, out, d) != 0) {
        teardown(&e);
        return -1;
    }
    uint32_t work = work_size(&e);
    int tensor = !is_scalar(&e, k->value);
    char name[300];
    for (int entry = E_VALUE; entry <= E_GRAD; entry++) {
        if (!has(&e, entry))
            continue;
        Plan *p = &entry_plan(&e, (Entry)entry)->p;
        p->part_tag = entry == E_GRAD ? "g" : "v";
        snprintf(name, sizeof name, "%s%s%s", e.sym,
                 entry == E_VALUE ? "" : tensor ? "_vjp" : "_grad", work ? "_work" : "");
        split_report(&e, p, name, out);
    }
    for (int entry = E_JVP; entry < E_COUNT; entry++) {
        if (!has(&e, entry))
            continue;
        Plan *p = &entry_plan(&e, (Entry)entry)->p;
        snprintf(name, sizeof name, "%s%s%s", e.sym, second_name[entry], work ? "_work" : "");
        split_report(&e, p, name, out);
        if (entry == E_HESS) {
            uint32_t nb = 0, looped = 0;
            for (uint32_t b = 0; b < k->hess.nband; b++) {
                nb += k->hess.band[b].len;
                looped += p->band_run[b] != 0;
            }
            buf_printf(out, "  Hessian: %u entries (lower triangle): %u written by %u band loops "
                            "(%u of them fused with the loop of their terms), %u one by one\n",
                       k->hess.nnz, nb, k->hess.nband, looped, k->hess.nnz - nb);
        }
    }
    if (k->jac) {
        Plan p;
        free(jacobian_plan(&e, &p));
        snprintf(name, sizeof name, "%s_jacobian%s", e.sym, work ? "_work" : "");
        split_report(&e, &p, name, out);
        plan_free(&p);
    }
    const char *real = o && o->single ? "floats" : "doubles";
    buf_printf(out, "%s: work array %u %s (%s), scratch %u %s\n", e.sym, work, real,
               work ? "NAME_WORK_SIZE; _work entry points" : "none: plain entry points",
               scratch_size(&e), real);
    teardown(&e);
    return 0;
}

/* What a header says above each prototype: what the function computes
 * and the size of every array argument, in the header's own macros. */
typedef enum Doc { DOC_VALUE, DOC_GRAD, DOC_JACOBIAN, DOC_BATCH, DOC_INIT } Doc;

static void doc_comment(const Emitter *e, Doc what, int work, Buf *out)
{
    char in[300], outm[300], prm[300], g[300], w[300];
    macro_name(e->sym, "_IN_SIZE", in, sizeof in);
    macro_name(e->sym, "_OUT_SIZE", outm, sizeof outm);
    macro_name(e->sym, "_NUM_PARAMS", prm, sizeof prm);
    macro_name(e->sym, e->k->grad && !e->k->wrt_all ? "_GRAD_SIZE" : "_IN_SIZE", g, sizeof g);
    macro_name(e->sym, "_WORK_SIZE", w, sizeof w);
    int tensor = !is_scalar(e, e->k->value), np = e->k->nparams != 0;
    buf_puts(out, "\n/* ");
    switch (what) {
    case DOC_VALUE:
        buf_printf(out, tensor ? "The value into out[%s]." : "Returns the value.", outm);
        break;
    case DOC_GRAD:
        if (tensor)
            buf_printf(out, "Vector-Jacobian product: grad[%s] = v^T d(value)/d(in) for the\n"
                            " * seed v[%s]", g, outm);
        else
            buf_printf(out, "Returns the value; grad[%s] = its gradient by the inputs", g);
        if (np)
            buf_printf(out, ";\n * grad_params[%s] the same by params", prm);
        buf_puts(out, ".");
        break;
    case DOC_JACOBIAN:
        buf_printf(out, "The Jacobian by the inputs, row-major: J[%s * %s],\n"
                        " * J[i * %s + j] = d(value[i])/d(in[j]).", outm, g, g);
        break;
    case DOC_BATCH:
        buf_printf(out, "n values: in[n * %s], out[n * %s]; sample s reads\n"
                        " * in + s * %s and writes out + s * %s", in, outm, in, outm);
        break;
    case DOC_INIT:
        buf_printf(out, "Fills params[%s] with the network's initial parameters\n"
                        " * (the random ones drawn from seed; docs/tensors.md). */\n", prm);
        return;
    }
    if (what != DOC_BATCH)
        buf_printf(out, "\n * in[%s]: the inputs, laid out as above", in);
    if (np)
        buf_printf(out, "; params[%s]", prm);
    if (work)
        buf_printf(out, ";\n * work[%s]: scratch (uninitialised, one per concurrent call)", w);
    buf_puts(out, ". */\n");
}

/* The header's comment above f_jvp, f_hvp and f_hess. */
static void second_doc(const Emitter *e, Entry entry, int work, Buf *out)
{
    char in[300], outm[300], g[300], nnz[300], n[300];
    macro_name(e->sym, "_IN_SIZE", in, sizeof in);
    macro_name(e->sym, "_OUT_SIZE", outm, sizeof outm);
    macro_name(e->sym, e->k->wrt_all ? "_IN_SIZE" : "_GRAD_SIZE", g, sizeof g);
    macro_name(e->sym, "_HESS_NNZ", nnz, sizeof nnz);
    macro_name(e->sym, "_HESS_N", n, sizeof n);
    int scalar = is_scalar(e, e->k->value);
    if (entry == E_JVP)
        buf_printf(out, "\n/* %sout[%s] = J v, the derivative along the direction v[%s]\n"
                        " * (laid out as in)", scalar ? "Returns the value; " : "", outm, in);
    else if (entry == E_HVP)
        buf_printf(out, "\n/* Returns the value; out[%s] = H v, the Hessian times the direction\n"
                        " * v[%s] (laid out as in)", g, in);
    else if (e->k->entries & ENTRY_HESS_DENSE)
        buf_printf(out, "\n/* Returns the value; grad[%s] = the gradient, H[%s * %s] = the\n"
                        " * Hessian, row-major, both halves", g, n, n);
    else
        buf_printf(out, "\n/* Returns the value; grad[%s] = the gradient, H[%s] = the\n"
                        " * Hessian's structural nonzeros of the lower triangle, in the\n"
                        " * order of the pattern below", g, nnz);
    buf_printf(out, ".\n * in[%s]: the inputs%s%s. */\n", in, e->k->nparams ? "; params: as above" : "",
               work ? "; work: scratch" : "");
}

/* The prototypes; with doc, each under a comment on its arguments. */
static void prototypes(const Emitter *e, const Network *net, int work, int doc, Buf *out)
{
    if (has(e, E_VALUE)) {
        if (doc)
            doc_comment(e, DOC_VALUE, work, out);
        signature(e, E_VALUE, work, 1, out);
    }
    if (has(e, E_GRAD)) {
        if (doc)
            doc_comment(e, DOC_GRAD, work, out);
        signature(e, E_GRAD, work, 1, out);
        if (!is_scalar(e, e->k->value)) {
            if (doc)
                doc_comment(e, DOC_JACOBIAN, work, out);
            jacobian_function(e, work, 1, out);
        }
    }
    for (int entry = E_JVP; entry < E_COUNT; entry++)
        if (has(e, entry)) {
            if (doc)
                second_doc(e, (Entry)entry, work, out);
            second_signature(e, (Entry)entry, work, 1, out);
        }
    if (has(e, E_HESS)) {
        if (doc)
            buf_puts(out, "\n/* The Hessian's pattern: the lower triangle's structural nonzeros by\n"
                          " * compressed columns; f_hess writes H[q] for row rowind[q] and column j\n"
                          " * for colptr[j] <= q < colptr[j + 1] (docs/emitted-api.md). */\n");
        hessian_pattern(e, 1, out);
    }
    if (has(e, E_VALUE)) {
        if (doc)
            doc_comment(e, DOC_BATCH, work, out);
        batch_function(e, work, 1, out);
    }
    if (net) {
        if (doc)
            doc_comment(e, DOC_INIT, work, out);
        init_function(e, net, 1, out);
    }
}

/* The value's plan once its entry point is printed: nothing else reads
 * it, and its per-node arrays (26 MB at 10^6 nodes) go back to the heap
 * for the plans made after. Kept made, so that it is not made again. */
static void release_value_plan(const Emitter *e)
{
    EntryPlan *ep = &e->plans[E_VALUE];
    plan_free(&ep->p);
    memset(&ep->p, 0, sizeof ep->p);
}

/* Whether the value's entry point can be printed before the other plans
 * are made (its plan made here), so that they reuse its memory: the text
 * before it must not depend on them. It depends on them only through
 * whether any entry point needs a work array, which it does if the value
 * does; and the tables of tensor constants, printed first, are known
 * only once every function is printed. */
static int value_first(const Emitter *e)
{
    return has(e, E_VALUE) && !has_tables(e) && entry_plan(e, E_VALUE)->p.work != 0;
}

/* Every function of the file, in order. */
static void emit_functions(const Emitter *e, uint32_t work, Buf *out)
{
    const Network *net = e->o ? e->o->net : NULL;
    const char *sep = "";
    if (has(e, E_VALUE)) {
        entry_function(e, E_VALUE, work != 0, out);
        release_value_plan(e);
        sep = "\n";
    }
    if (has(e, E_GRAD)) {
        buf_puts(out, sep);
        entry_function(e, E_GRAD, work != 0, out);
        if (!is_scalar(e, e->k->value)) {
            buf_puts(out, "\n");
            jacobian_function(e, work != 0, 0, out);
        }
        sep = "\n";
    }
    for (int entry = E_JVP; entry < E_COUNT; entry++)
        if (has(e, entry)) {
            buf_puts(out, sep);
            second_function(e, (Entry)entry, work != 0, out);
            sep = "\n";
        }
    if (has(e, E_VALUE)) {
        buf_puts(out, "\n");
        batch_function(e, work != 0, 0, out);
    }
    if (net) {
        buf_puts(out, "\n");
        init_function(e, net, 0, out);
    }
    if (e->o && e->o->runtime_entry)
        runtime_entry(e, work != 0, out);
}


int emit_c_source(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    Emitter e;
    if (setup(&e, k, o, out, d) != 0) {
        teardown(&e);
        return -1;
    }
    /* Only whether there is a work array matters to the source. */
    uint32_t work = value_first(&e) ? 1 : work_size(&e);
    const Network *net = o ? o->net : NULL;
    /* Room for the whole text at once, from its usual size per kernel
     * node (random 10^6: 60 bytes): grown by doubling, a big buffer was
     * copied at every step below malloc's mmap threshold. Room never
     * written costs address space, not memory. */
    buf_grow(out, (size_t)k->g->n * 64);
    size_t start = out->len;
    buf_printf(out, "/* Generated by gradc " GRADC_VERSION "; do not edit.\n");
    input_comment(&e, out);
    buf_puts(out, " */\n#include <math.h>\n");
    if (o && o->blas)
        buf_puts(out, "#include <cblas.h>   /* --blas: link with -lopenblas (or any CBLAS) */\n");
    buf_puts(out, "\n");
    prototypes(&e, net, work != 0, 0, out);
    uint32_t nin = k->ninputs - k->nparams;
    buf_printf(out, "extern const char *const %s_input_names[%u];\n\n", e.sym, nin + 1);
    buf_printf(out, "const char *const %s_input_names[%u] = {", e.sym, nin + 1);
    for (uint32_t i = 0; i < nin; i++)
        buf_printf(out, "\"%s\", ", k->input_name[i]);
    buf_puts(out, "0};\n\n");
    /* The tables of tensor constants come first in the file, but only
     * those the code reads are printed (a one-hot vector's element is a
     * literal): the functions go to a buffer of their own first. */
    Buf functions = {0};
    int tables = has_tables(&e);
    if (tables)
        emit_functions(&e, work, &functions);
    constants(&e, out);
    if (has(&e, E_HESS))
        hessian_pattern(&e, 0, out);
    if (tables) {
        buf_put(out, functions.data, functions.len);
        buf_free(&functions);
    } else {
        emit_functions(&e, work, out);
    }
    teardown(&e);
    if (o && o->max_bytes && out->len - start > o->max_bytes) {
        diag_plain(d, "the generated C would be %.1f MB, more than the limit of %.1f MB "
                   "(--max-code-size MB; docs/robustness.md)",
                   (double)(out->len - start) / (1 << 20), (double)o->max_bytes / (1 << 20));
        out->len = start;
        return -1;
    }
    return 0;
}

int emit_c_header(const Kernel *k, const EmitOptions *o, Buf *out, Diag *d)
{
    Emitter e;
    if (setup(&e, k, o, out, d) != 0) {
        teardown(&e);
        return -1;
    }
    char guard[300], m[300];
    uint32_t work = work_size(&e);
    const Network *net = o ? o->net : NULL;
    macro_name(e.sym, "_H_GRADC", guard, sizeof guard);
    buf_printf(out, "/* Generated by gradc " GRADC_VERSION "; do not edit.\n");
    input_comment(&e, out);
    buf_puts(out, " * See docs/emitted-api.md for the calling convention.\n */\n");
    buf_printf(out, "#ifndef %s\n#define %s\n\n", guard, guard);
    macro_name(e.sym, "_NUM_INPUTS", m, sizeof m);
    buf_printf(out, "#define %s %u   /* named inputs */\n", m, k->ninputs - k->nparams);
    macro_name(e.sym, "_IN_SIZE", m, sizeof m);
    buf_printf(out, "#define %s %u   /* doubles in `in` */\n", m, e.in_size);
    macro_name(e.sym, "_OUT_SIZE", m, sizeof m);
    buf_printf(out, "#define %s %u   /* doubles in the value */\n", m, e.out_size);
    if (k->nparams) {
        macro_name(e.sym, "_NUM_PARAMS", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles in `params` */\n", m, e.params_size);
    }
    if (k->grad && !k->wrt_all) {
        macro_name(e.sym, "_GRAD_SIZE", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles in `grad` (--wrt) */\n", m, e.grad_size);
    }
    if (has(&e, E_HESS)) {
        macro_name(e.sym, "_HESS_N", m, sizeof m);
        buf_printf(out, "#define %s %u   /* rows (= columns) of the Hessian: the variables */\n",
                   m, k->hess.n);
        macro_name(e.sym, "_HESS_NNZ", m, sizeof m);
        buf_printf(out, "#define %s %u   /* its structural nonzeros in the lower triangle%s */\n",
                   m, k->hess.nnz, k->entries & ENTRY_HESS_DENSE ? "" : ": doubles in `H`");
    }
    uint32_t scratch = scratch_size(&e);
    if (scratch) {
        macro_name(e.sym, "_SCRATCH_SIZE", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles through which the parts of a split "
                        "function pass values (%s) */\n",
                   m, scratch, work ? "inside `work`, or on the stack" : "on the stack");
    }
    if (work) {
        macro_name(e.sym, "_WORK_SIZE", m, sizeof m);
        buf_printf(out, "#define %s %u   /* doubles of `work` the caller provides */\n", m, work);
    }
    macro_name(e.sym, "_NUM_INPUTS", m, sizeof m);
    buf_puts(out, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
    buf_printf(out, "\n/* Input names in order, then a null pointer. */\n");
    buf_printf(out, "extern const char *const %s_input_names[%s + 1];\n", e.sym, m);
    prototypes(&e, net, work != 0, 1, out);
    buf_printf(out, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    teardown(&e);
    return 0;
}

/* ops.h — the list of IR operations, one row each (an X-macro).
 *
 * OP(ID, name, arity, flags, eval, vjp, C)
 *   name   the spelling in the language (for callable ops) and in IR dumps
 *   arity  number of operands (0 for leaves)
 *   flags  OPF_CALL: callable by name from formulas; OPF_COMM: commutative,
 *          operands are put in a canonical order by the constructor;
 *          OPF_ELEM: elementwise on tensors, a scalar operand broadcasts;
 *          OPF_ODD0/1/OPF_ODD: vjp is odd in adj, node for node, for
 *          operand 0/1/both (see gradc.h)
 *   eval   its value (constant folding and the reference interpreter)
 *   vjp    its reverse-mode rule, building IR
 *   C      its C spelling; $0 $1 stand for operand atoms
 *
 * Adding a primitive is one row here plus its eval and vjp in ops.c. */

/*  ID      name        arity flags    eval        vjp    C */
OP(ERROR,   "error",   0, 0,        ev_none,    d_none, "")
OP(CONST,   "const",   0, 0,        ev_none,    d_none, "")
OP(INPUT,   "input",   0, 0,        ev_none,    d_none, "")
OP(ADD,     "add",     2, OPF_COMM|OPF_ELEM|OPF_ODD, ev_add,     d_add, "$0 + $1")
OP(SUB,     "sub",     2, OPF_ELEM|OPF_ODD, ev_sub,     d_sub, "$0 - $1")
OP(MUL,     "mul",     2, OPF_COMM|OPF_ELEM|OPF_ODD, ev_mul,     d_mul, "$0 * $1")
OP(DIV,     "div",     2, OPF_ELEM|OPF_ODD1, ev_div,     d_div, "$0 / $1")
OP(NEG,     "neg",     1, OPF_ELEM|OPF_ODD, ev_neg,     d_neg, "-$0")
OP(POW,     "pow",     2, OPF_CALL|OPF_ELEM|OPF_ODD, ev_pow,     d_pow, "pow($0, $1)")
OP(EXP,     "exp",     1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_exp,     d_exp, "exp($0)")
OP(LOG,     "log",     1, OPF_CALL|OPF_ELEM, ev_log,     d_log, "log($0)")
OP(LOG1P,   "log1p",   1, OPF_CALL|OPF_ELEM, ev_log1p,   d_log1p, "log1p($0)")
OP(EXPM1,   "expm1",   1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_expm1,   d_expm1, "expm1($0)")
OP(SQRT,    "sqrt",    1, OPF_CALL|OPF_ELEM, ev_sqrt,    d_sqrt, "sqrt($0)")
OP(SIN,     "sin",     1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_sin,     d_sin, "sin($0)")
OP(COS,     "cos",     1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_cos,     d_cos, "cos($0)")
OP(TAN,     "tan",     1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_tan,     d_tan, "tan($0)")
OP(ASIN,    "asin",    1, OPF_CALL|OPF_ELEM, ev_asin,    d_asin, "asin($0)")
OP(ACOS,    "acos",    1, OPF_CALL|OPF_ELEM, ev_acos,    d_acos, "acos($0)")
OP(ATAN,    "atan",    1, OPF_CALL|OPF_ELEM, ev_atan,    d_atan, "atan($0)")
OP(ATAN2,   "atan2",   2, OPF_CALL|OPF_ELEM, ev_atan2,   d_atan2, "atan2($0, $1)")
OP(SINH,    "sinh",    1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_sinh,    d_sinh, "sinh($0)")
OP(COSH,    "cosh",    1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_cosh,    d_cosh, "cosh($0)")
OP(TANH,    "tanh",    1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_tanh,    d_tanh, "tanh($0)")
OP(HYPOT,   "hypot",   2, OPF_CALL|OPF_ELEM, ev_hypot,   d_hypot, "hypot($0, $1)")
OP(ERF,     "erf",     1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_erf,     d_erf, "erf($0)")
OP(SIGMOID, "sigmoid", 1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_sigmoid, d_sigmoid, "$0 >= 0.0 ? 1.0 / (1.0 + exp(-$0)) : exp($0) / (1.0 + exp($0))")
OP(RELU,    "relu",    1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_relu,    d_relu, "$0 < 0.0 ? 0.0 : $0")
OP(ABS,     "abs",     1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_abs,     d_abs, "fabs($0)")
OP(MAX,     "max",     2, OPF_CALL|OPF_ELEM|OPF_ODD, ev_max,     d_max, "($0 != $0 || $0 >= $1) ? $0 : $1")
OP(MIN,     "min",     2, OPF_CALL|OPF_ELEM|OPF_ODD, ev_min,     d_min, "($0 != $0 || $0 <= $1) ? $0 : $1")
OP(SOFTPLUS, "softplus", 1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_softplus, d_softplus, "($0 < 0.0 ? 0.0 : $0) + log1p(exp(-fabs($0)))")
OP(STEP,    "step",    1, OPF_CALL|OPF_ELEM|OPF_ODD, ev_step,    d_none, "$0 > 0.0 ? 1.0 : 0.0")
/* Internal: the piecewise-constant derivatives of relu, max/min and abs. */
OP(GE,      "ge",      2, OPF_ELEM|OPF_ODD, ev_ge,      d_none, "$0 >= $1 ? 1.0 : 0.0")
OP(SIGN,    "sign",    1, OPF_ELEM|OPF_ODD, ev_sign,    d_none, "(double)(($0 > 0.0) - ($0 < 0.0))")
/* Tensor operations: single nodes whose C is a loop nest (emit_c.c) and
 * whose values come from kernels.c. Attributes live in aux and num. */
OP(TCONST,  "tconst",  0, 0,        ev_none,    d_none, "")   /* aux: pool offset */
OP(BCAST,   "bcast",   1, 0,        ev_none,    d_bcast, "")  /* scalar to shape */
OP(SUM,     "sum",     1, 0,        ev_none,    d_sum, "")    /* all elements */
OP(MATMUL,  "matmul",  2, 0,        ev_none,    d_matmul, "") /* aux: 1 = A^T, 2 = B^T */
OP(OUTER,   "outer",   2, 0,        ev_none,    d_outer, "")
OP(TRANSPOSE, "transpose", 1, 0,    ev_none,    d_transpose, "")
OP(INDEX,   "index",   1, 0,        ev_none,    d_index, "")  /* aux: i; drops dim 0 */
OP(SLICE,   "slice",   1, 0,        ev_none,    d_slice, "")  /* aux: start, num: stride */
OP(PAD,     "pad",     1, 0,        ev_none,    d_pad, "")    /* adjoint of SLICE, INDEX */
OP(SOFTMAX, "softmax", 1, 0,        ev_none,    d_softmax, "")
OP(LOGSUMEXP, "logsumexp", 1, 0,    ev_none,    d_logsumexp, "")
OP(IVAR,    "ivar",    0, 0,        ev_none,    d_none, "")   /* range-sum index (front.c only) */
OP(VIEW,    "view",    1, 0,        ev_none,    d_view, "")   /* aux: flat offset */
OP(UNVIEW,  "unview",  1, 0,        ev_none,    d_unview, "") /* adjoint of VIEW */

/* test_lexparse.c — the front end (grammar/lexer.re, grammar/parser.y,
 * compiler/front.c): what parses and what it means, and every diagnostic
 * by its exact text (message, line, column, source line and caret).
 * Values are computed with the reference interpreter, so these tests do not
 * depend on a C compiler. */
#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradc.h"

/* ---- helpers ---- */

static Program *parse(const char *text, int bare, Diag *d)
{
    Source src = {"t.grad", text, strlen(text)};
    diag_init(d);
    return front_parse(&src, bare, d);
}

/* The diagnostics of a source that must not compile. */
static char *errors_of(const char *text, int bare)
{
    Diag d;
    Program *p = parse(text, bare, &d);
    cr_assert_null(p, "compiled, but should not:\n%s", text);
    cr_assert_gt(d.nerrors, 0);
    char *s = strdup(d.out.data ? d.out.data : "");
    diag_free(&d);
    return s;
}

static void expect_errors(const char *text, int bare, const char *want)
{
    char *got = errors_of(text, bare);
    cr_expect_str_eq(got, want, "source:\n%s\n--- got:\n%s--- want:\n%s", text, got, want);
    free(got);
}

/* Value of the bare expression `text` at in[] (its inputs in order of
 * appearance), by the interpreter; checks the number of inputs. */
static double eval_bare(const char *text, const double *in, uint32_t n)
{
    Diag d;
    Program *p = parse(text, 1, &d);
    cr_assert_not_null(p, "does not compile: %s\n%s", text, d.out.data ? d.out.data : "");
    diag_free(&d);
    cr_assert_eq(p->bare->ninputs, n, "%s: %u inputs, expected %u", text, p->bare->ninputs, n);
    double v;
    interp_eval(p->g, p->bare->input, in, n, &p->bare->result, 1, &v);
    program_free(p);
    return v;
}

/* Value of function `name` of a source file at in[]. */
static double eval_func(const char *text, const char *name, const double *in, uint32_t n)
{
    Diag d;
    Program *p = parse(text, 0, &d);
    cr_assert_not_null(p, "does not compile:\n%s\n%s", text, d.out.data ? d.out.data : "");
    diag_free(&d);
    Func *f = program_find(p, name);
    cr_assert_not_null(f, "no function %s", name);
    cr_assert_eq(f->ninputs, n);
    double v;
    interp_eval(p->g, f->input, in, n, &f->result, 1, &v);
    program_free(p);
    return v;
}

static void input_names(const char *text, const char *want)
{
    Diag d;
    Program *p = parse(text, 1, &d);
    cr_assert_not_null(p);
    diag_free(&d);
    char got[256] = "";
    for (uint32_t i = 0; i < p->bare->ninputs; i++) {
        strcat(got, i ? "," : "");
        strcat(got, p->bare->input_name[i]);
    }
    cr_expect_str_eq(got, want, "inputs of %s", text);
    program_free(p);
}

/* ---- numbers, names, precedence ---- */

Test(lexparse, numbers)
{
    cr_expect_eq(eval_bare("2", NULL, 0), 2.0);
    cr_expect_eq(eval_bare("0.5", NULL, 0), 0.5);
    cr_expect_eq(eval_bare(".25", NULL, 0), 0.25);
    cr_expect_eq(eval_bare("1e-3", NULL, 0), 0.001);
    cr_expect_eq(eval_bare("2.5E+2", NULL, 0), 250.0);
    cr_expect_eq(eval_bare("2.", NULL, 0), 2.0);
    cr_expect_eq(eval_bare("0.1 + 0.2", NULL, 0), 0.1 + 0.2);
    cr_expect_eq(eval_bare("pi", NULL, 0), 3.14159265358979323846);
    /* 200 digits is long but legal: 10^199 rounded to a double. */
    char big[260];
    memset(big, '0', 200);
    big[0] = '1';
    big[200] = 0;
    cr_expect_eq(eval_bare(big, NULL, 0), 1e199);
}

/* Plain decimals skip strtod (num.c, plain_decimal): the same double,
 * bit for bit, at the edges of that shortcut (2^53, 22 decimals) and past
 * them, where strtod takes over. */
Test(lexparse, plain_decimals_read_as_strtod_reads_them)
{
    static const char *const texts[] = {
        "0", "00.0", "5.", ".5", "0.1", "0.3", "2.675", "4.35", "1.0000000000000002",
        "0.1234567890123456789", "9007199254740992", "9007199254740993", "9007199254740991.",
        "900719925474099.3", "90071992547409.93", "1234567890123456789", "12345678901234567890",
        "0.0000000000000000000001", "0.00000000000000000000001", "1.7976931348623157",
        "1e-3", "2.5E+2", "4.9406564584124654e-324",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        double got, want = strtod(texts[i], NULL);
        cr_expect(num_parse(texts[i], strlen(texts[i]), &got), "%s", texts[i]);
        cr_expect(memcmp(&got, &want, sizeof got) == 0, "%s: %.17g, strtod %.17g",
                  texts[i], got, want);
    }
    double v;
    cr_expect(!num_parse(".", 1, &v));
    cr_expect(!num_parse("1.2.3", 5, &v));
}

Test(lexparse, power_is_right_associative_and_binds_tightest)
{
    cr_expect_eq(eval_bare("2^3^2", NULL, 0), 512.0);      /* 2^(3^2) */
    cr_expect_eq(eval_bare("(2^3)^2", NULL, 0), 64.0);
    double x = 3;
    cr_expect_eq(eval_bare("-x^2", &x, 1), -9.0);           /* -(x^2) */
    cr_expect_eq(eval_bare("(-x)^2", &x, 1), 9.0);
    cr_expect_eq(eval_bare("2*x^2", &x, 1), 18.0);
    cr_expect_eq(eval_bare("-2^2", NULL, 0), -4.0);
    cr_expect_eq(eval_bare("2^-1", NULL, 0), 0.5);           /* unary minus in an exponent */
    cr_expect_eq(eval_bare("2^-1^2", NULL, 0), 0.5);         /* 2^(-(1^2)) */
}

/* A subscript binds tighter than everything: -v[1]^2 is -((v[1])^2). */
Test(lexparse, subscripts_bind_tightest)
{
    static const struct { const char *text; double want; } c[] = {
        {"f(a, b) = -[a, b][1]^2\n", -9.0},
        {"f(a, b) = 2^[a, b][0]\n", 4.0},
        {"f(a, b) = [a, b][0]^[a, b][1]\n", 8.0},
        {"f(a, b) = [a, b][1]^-[a, b][0]\n", 1.0 / 9},
        {"f(a, b) = ([a, b]*2)[1]\n", 6.0},
        {"f(a, b) = -[[a, b], [b, a]][1][0] + [[a, b], [b, a]][0, 1]\n", 0.0},
        {"f(a, b) = a*[a, b][1] - b\n", 3.0},
    };
    double ab[2] = {2, 3};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        cr_expect_eq(eval_func(c[i].text, "f", ab, 2), c[i].want, "%s", c[i].text);
}

Test(lexparse, unary_minus)
{
    double xy[2] = {3, 4};
    cr_expect_eq(eval_bare("x*-y", xy, 2), -12.0);
    cr_expect_eq(eval_bare("y^-1", xy + 1, 1), 0.25);
    cr_expect_eq(eval_bare("--x", xy, 1), 3.0);
    cr_expect_eq(eval_bare("---x", xy, 1), -3.0);
    cr_expect_eq(eval_bare("+x", xy, 1), 3.0);
    cr_expect_eq(eval_bare("x - -y", xy, 2), 7.0);
    cr_expect_eq(eval_bare("-x*y", xy, 2), -12.0);
    cr_expect_eq(eval_bare("x/-y", xy, 2), -0.75);
}

Test(lexparse, left_associative_arithmetic)
{
    cr_expect_eq(eval_bare("10 - 4 - 3", NULL, 0), 3.0);
    cr_expect_eq(eval_bare("64 / 4 / 2", NULL, 0), 8.0);
    cr_expect_eq(eval_bare("1 + 2 * 3", NULL, 0), 7.0);
    cr_expect_eq(eval_bare("(1 + 2) * 3", NULL, 0), 9.0);
    cr_expect_eq(eval_bare("2 * 3 / 4", NULL, 0), 1.5);
}

Test(lexparse, every_function)
{
    double x = 0.5, xy[2] = {0.5, 2.0};
    static const struct { const char *text; double want; int two; } t[] = {
        {"exp(x)", 1.6487212707001282, 0},
        {"log(x)", -0.6931471805599453, 0},
        {"log1p(x)", 0.4054651081081644, 0},
        {"expm1(x)", 0.6487212707001282, 0},
        {"sqrt(x)", 0.7071067811865476, 0},
        {"sin(x)", 0.479425538604203, 0},
        {"cos(x)", 0.8775825618903728, 0},
        {"tan(x)", 0.5463024898437905, 0},
        {"asin(x)", 0.5235987755982989, 0},
        {"acos(x)", 1.0471975511965979, 0},
        {"atan(x)", 0.4636476090008061, 0},
        {"sinh(x)", 0.5210953054937474, 0},
        {"cosh(x)", 1.1276259652063807, 0},
        {"tanh(x)", 0.46211715726000974, 0},
        {"erf(x)", 0.5204998778130465, 0},
        {"sigmoid(x)", 0.6224593312018546, 0},
        {"relu(x)", 0.5, 0},
        {"relu(-x)", 0.0, 0},
        {"abs(-x)", 0.5, 0},
        {"atan2(x, y)", 0.24497866312686414, 1},
        {"hypot(x, y)", 2.0615528128088303, 1},
        {"max(x, y)", 2.0, 1},
        {"min(x, y)", 0.5, 1},
        {"pow(x, y)", 0.25, 1},
        {"x^y", 0.25, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double v = eval_bare(t[i].text, t[i].two ? xy : &x, t[i].two ? 2 : 1);
        cr_expect(fabs(v - t[i].want) <= 4e-16 * fabs(t[i].want), "%s = %.17g, want %.17g",
                  t[i].text, v, t[i].want);
    }
}

Test(lexparse, inputs_in_order_of_first_appearance)
{
    input_names("(x+y)*z", "x,y,z");
    input_names("w0*x0 + w1*x1 + w2", "w0,x0,w1,x1,w2");
    input_names("b*a + a*b", "b,a");
    input_names("sin(y) + exp(pi*x)", "y,x");     /* pi and functions are not inputs */
    input_names("2+3", "");
}

Test(lexparse, comments_newlines_and_parentheses)
{
    double xy[2] = {2, 3};
    cr_expect_eq(eval_bare("x*y  # a comment", xy, 2), 6.0);
    cr_expect_eq(eval_bare("# first a comment\nx*y\n# and one after\n", xy, 2), 6.0);
    cr_expect_eq(eval_bare("(x +\n   y) * (\n x\n)", xy, 2), 10.0);   /* newlines inside () */
    cr_expect_eq(eval_bare("max(x,\n    y)", xy, 2), 3.0);
    cr_expect_eq(eval_bare("x +\\\n y", xy, 2), 5.0);                 /* backslash continues */
    cr_expect_eq(eval_bare("\n\n  x*y\n\n", xy, 2), 6.0);
    cr_expect_eq(eval_bare("x*y\r\n", xy, 2), 6.0);
}

Test(lexparse, definitions)
{
    const char *src =
        "# the notes' circuits\n"
        "f(x, y, z) = (x + y) * z\n"
        "\n"
        "neuron(w0, x0, w1, x1, w2) {\n"
        "  z = w0*x0 + w1*x1 + w2   # named intermediate\n"
        "  s = 1 / (1 + exp(-z))\n"
        "  s\n"
        "}\n"
        "g(a, b) = f(a, b, 2) + (a\n"
        "   - b)\n"
        "h(x) {\n"
        "  y = x^2\n"
        "\n"
        "  y + 1 }\n";
    double in3[3] = {-2, 5, -4};
    cr_expect_eq(eval_func(src, "f", in3, 3), -12.0);
    double in5[5] = {2, -1, -3, -2, -3};
    double s = eval_func(src, "neuron", in5, 5);
    cr_expect(fabs(s - 0.7310585786300049) <= 1e-16, "neuron = %.17g", s);
    double ab[2] = {1, 4};
    cr_expect_eq(eval_func(src, "g", ab, 2), 10.0 - 3.0);
    double x = 3;
    cr_expect_eq(eval_func(src, "h", &x, 1), 10.0);
}

Test(lexparse, semicolons_separate_statements)
{
    double v = eval_func("f(x) { y = x*2; y + 1 }", "f", (double[]){4}, 1);
    cr_expect_eq(v, 9.0);
    double xy[2] = {2, 5};
    cr_expect_eq(eval_bare("a = x + 1; a * y", xy, 2), 15.0);
}

Test(lexparse, keywords_of_other_issues_are_names_in_formulas)
{
    double in[3] = {1, 2, 3};
    cr_expect_eq(eval_bare("network + check * grad", in, 3), 7.0);   /* network=1 check=2 grad=3 */
}

/* Numbers are read and written with '.', whatever locale the program
 * runs in. */
Test(lexparse, locale_independent)
{
    const char *loc = setlocale(LC_ALL, "de_DE.UTF-8");
    if (!loc)
        loc = setlocale(LC_ALL, "de_DE.utf8");
    if (!loc)
        loc = setlocale(LC_ALL, "fr_FR.UTF-8");
    if (loc) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.1f", 0.5);
        cr_expect_str_eq(buf, "0,5", "the locale %s is active", loc);
    }
    cr_expect_eq(eval_bare("0.5 + 1.25e1", NULL, 0), 13.0);
    char out[32];
    num_format(0.7310585786300049, out);
    cr_expect_str_eq(out, "0.7310585786300049");
    num_format(-12, out);
    cr_expect_str_eq(out, "-12");
    double v;
    cr_expect(num_parse("2.5", 3, &v) && v == 2.5);
    cr_expect(!num_parse("2,5", 3, &v));
    setlocale(LC_ALL, "C");
    if (!loc)
        cr_log_warn("no German or French locale installed; checked in the C locale only");
}

Test(lexparse, num_format_round_trips)
{
    static const double v[] = {0.1, 1.0 / 3, 1e-300, 1e300, 123456789.125, -2.5e-8,
                               5e-324, 1.7976931348623157e308, 0.7310585786300049, 100, -0.0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char s[32];
        num_format(v[i], s);
        double back;
        cr_expect(num_parse(s, strlen(s), &back), "%s", s);
        cr_expect(memcmp(&back, &v[i], sizeof back) == 0, "%.17g printed as %s", v[i], s);
    }
    char s[32];
    num_format(100, s);
    cr_expect_str_eq(s, "100");
    num_format(0.1, s);
    cr_expect_str_eq(s, "0.1");
    num_format(-0.0, s);
    cr_expect_str_eq(s, "-0");
    num_format(NAN, s);
    cr_expect_str_eq(s, "nan");
    num_format(-INFINITY, s);
    cr_expect_str_eq(s, "-inf");
}

/* The shortest decimal that reads back, found the slow way: every
 * precision from 1 up. */
static void shortest_by_search(double v, char out[32])
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

Test(lexparse, num_format_is_the_shortest_text)
{
    /* num_format starts at 15 digits; it must agree with the search from 1
     * digit on short decimals, folded constants (17 digits), whole numbers
     * past 1e15, tiny and huge magnitudes. */
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        double v;
        switch (i % 5) {
        case 0: v = (double)(r % 100000) / 1000;                 break; /* 3.7, 12.345 */
        case 1: v = 1.0 / (double)(1 + r % 997);                 break; /* 17 digits */
        case 2: v = ldexp((double)(r >> 11), (int)(r % 200) - 100); break;
        case 3: v = (double)(r % 1000) * 1e15 + (double)(r % 7);  break; /* whole, big */
        default: memcpy(&v, &r, sizeof v);                       break; /* any bits */
        }
        if (!isfinite(v) || (v == floor(v) && fabs(v) < 1e15))
            continue;           /* NaN, inf and small whole numbers have their own paths */
        char got[32], want[32];
        num_format(v, got);
        shortest_by_search(v, want);
        if (strstr(want, "e+") && fabs(v) < 1e16 && v == floor(v))
            snprintf(want, 32, "%.0f", v);
        cr_assert_str_eq(got, want, "for %a", v);
    }
}

Test(lexparse, deep_nesting_is_not_a_crash)
{
    /* Parentheses and calls nested 100000 deep: the parser stack is on the
     * heap and nothing downstream recurses. */
    enum { N = 100000 };
    char *s = malloc(6 * N + 8);
    size_t n = 0;
    for (int i = 0; i < N; i++)
        s[n++] = '(';
    s[n++] = 'x';
    for (int i = 0; i < N; i++)
        s[n++] = ')';
    s[n] = 0;
    double x = 1.5;
    cr_expect_eq(eval_bare(s, &x, 1), 1.5);
    free(s);
}

/* ---- diagnostics, by exact text ---- */

Test(diagnostics, unknown_function_with_suggestion)
{
    expect_errors("f(x) = sigm(x) * 2\n", 0,
                  "t.grad:1:8: error: unknown function 'sigm'\n"
                  "    1 | f(x) = sigm(x) * 2\n"
                  "      |        ^~~~\n"
                  "t.grad:1:8: note: did you mean 'sigmoid'?\n"
                  "    1 | f(x) = sigm(x) * 2\n"
                  "      |        ^~~~\n");
    expect_errors("exq(x)", 1,
                  "t.grad:1:1: error: unknown function 'exq'\n"
                  "    1 | exq(x)\n"
                  "      | ^~~\n"
                  "t.grad:1:1: note: did you mean 'exp'?\n"
                  "    1 | exq(x)\n"
                  "      | ^~~\n");
    /* Nothing close: no note. */
    expect_errors("frobnicate(x)", 1,
                  "t.grad:1:1: error: unknown function 'frobnicate'\n"
                  "    1 | frobnicate(x)\n"
                  "      | ^~~~~~~~~~\n");
}

Test(diagnostics, user_functions_are_suggested_too)
{
    char *e = errors_of("energy(x) = x^2\ng(x) = enrgy(x)\n", 0);
    cr_expect(strstr(e, "t.grad:2:8: error: unknown function 'enrgy'\n"), "%s", e);
    cr_expect(strstr(e, "t.grad:2:8: note: did you mean 'energy'?\n"), "%s", e);
    free(e);
}

Test(diagnostics, wrong_number_of_arguments)
{
    expect_errors("f(x) = max(x)\n", 0,
                  "t.grad:1:8: error: function 'max' takes 2 arguments, but 1 was given\n"
                  "    1 | f(x) = max(x)\n"
                  "      |        ^~~\n");
    expect_errors("sin(x, y)", 1,
                  "t.grad:1:1: error: function 'sin' takes 1 argument, but 2 were given\n"
                  "    1 | sin(x, y)\n"
                  "      | ^~~\n");
    expect_errors("f(a, b) = a*b\ng(x) = f(x)\n", 0,
                  "t.grad:2:8: error: function 'f' takes 2 arguments, but 1 was given\n"
                  "    2 | g(x) = f(x)\n"
                  "      |        ^\n");
}

Test(diagnostics, undefined_variable_in_a_file_function)
{
    expect_errors("f(alpha) = alpha * beta\n", 0,
                  "t.grad:1:20: error: undefined variable 'beta'\n"
                  "    1 | f(alpha) = alpha * beta\n"
                  "      |                    ^~~~\n");
    expect_errors("g(weight) {\n  z = 2 * weigth\n  z\n}\n", 0,
                  "t.grad:2:11: error: undefined variable 'weigth'\n"
                  "    2 |   z = 2 * weigth\n"
                  "      |           ^~~~~~\n"
                  "t.grad:2:11: note: did you mean 'weight'?\n"
                  "    2 |   z = 2 * weigth\n"
                  "      |           ^~~~~~\n");
}

Test(diagnostics, locals_do_not_leak_between_functions)
{
    char *e = errors_of("f(x) {\n  t = x + 1\n  t\n}\ng(y) = t * y\n", 0);
    cr_expect(strstr(e, "t.grad:5:8: error: undefined variable 't'\n"), "%s", e);
    free(e);
}

Test(diagnostics, duplicate_definitions)
{
    expect_errors("f(x) = x\nf(y) = y + 1\n", 0,
                  "t.grad:2:1: error: duplicate definition of function 'f'\n"
                  "    2 | f(y) = y + 1\n"
                  "      | ^\n"
                  "t.grad:1:1: note: 'f' was defined here\n"
                  "    1 | f(x) = x\n"
                  "      | ^\n");
    expect_errors("f(x) {\n  z = x\n  z = 2*x\n  z\n}\n", 0,
                  "t.grad:3:3: error: duplicate definition of 'z'\n"
                  "    3 |   z = 2*x\n"
                  "      |   ^\n"
                  "t.grad:2:3: note: 'z' was defined here\n"
                  "    2 |   z = x\n"
                  "      |   ^\n");
    expect_errors("f(x, x) = x\n", 0,
                  "t.grad:1:6: error: duplicate parameter 'x'\n"
                  "    1 | f(x, x) = x\n"
                  "      |      ^\n");
    expect_errors("sin(x) = x\n", 0,
                  "t.grad:1:1: error: 'sin' is a built-in function and cannot be redefined\n"
                  "    1 | sin(x) = x\n"
                  "      | ^~~\n");
}

Test(diagnostics, unexpected_token_says_what_was_expected)
{
    expect_errors("x * * 2", 1,
                  "t.grad:1:5: error: unexpected '*'; expected an expression\n"
                  "    1 | x * * 2\n"
                  "      |     ^\n");
    /* At the end of the input the caret goes after the last line's text. */
    expect_errors("f(x) = (x + 1\n", 0,
                  "t.grad:1:14: error: unexpected end of line; expected ')'\n"
                  "    1 | f(x) = (x + 1\n"
                  "      |              ^\n"
                  "t.grad:1:8: note: this '(' is not closed\n"
                  "    1 | f(x) = (x + 1\n"
                  "      |        ^\n");
    expect_errors("x y", 1,
                  "t.grad:1:3: error: unexpected name 'y'; expected end of line, '=' or '('\n"
                  "    1 | x y\n"
                  "      |   ^\n");
    expect_errors("f(x) = \n", 0,
                  "t.grad:1:8: error: unexpected end of line; expected an expression\n"
                  "    1 | f(x) = \n"
                  "      |        ^\n");
}

/* The front end parses without bison's LAC first and, at a syntax error,
 * throws that parse away and parses again with LAC (front.c,
 * front_parse_shaped): the expected list is LAC's ("or '('" is what the
 * parser without LAC leaves out here), and what the first parse reported
 * before it stopped is not repeated; a message from before the parse stays. */
Test(diagnostics, a_late_syntax_error_is_reported_once_with_the_full_expected_list)
{
    Buf src = {0};
    buf_puts(&src, "a(x) = x + zeta\n");
    for (int i = 0; i < 3000; i++)
        buf_printf(&src, "g%d(x) = sin(x) * %d.5 + (x - 1)^2\n", i, i);
    buf_puts(&src, "h(x) = x = 2\n");
    Source s = {"t.grad", src.data, src.len};
    Diag d;
    diag_init(&d);
    diag_plain(&d, "before");
    cr_expect_null(front_parse(&s, 0, &d));
    cr_expect_eq(d.nerrors, 3);
    cr_expect_str_eq(d.out.data,
                     "gradc: error: before\n"
                     "t.grad:1:12: error: undefined variable 'zeta'\n"
                     "    1 | a(x) = x + zeta\n"
                     "      |            ^~~~\n"
                     "t.grad:3002:10: error: unexpected '='; expected end of line or '('\n"
                     " 3002 | h(x) = x = 2\n"
                     "      |          ^\n");
    diag_free(&d);
    buf_free(&src);
}

/* What a call names is looked up once per name (front.c, front_call);
 * a user function is still found by calls after its definition only. */
Test(diagnostics, calls_before_and_after_a_definition)
{
    expect_errors("g(x) = f(x) + sum([x, x])\n"
                  "f(x) = 2*x\n"
                  "h(x) = f(x) + sum([x, x]) + sin(x) + f(sin(x))\n"
                  "k(x) = sum(x, x) + sine(x)\n", 0,
                  "t.grad:1:8: error: unknown function 'f'\n"
                  "    1 | g(x) = f(x) + sum([x, x])\n"
                  "      |        ^\n"
                  "t.grad:2:1: note: 'f' is defined here, after its use at line 1: a function can "
                  "only call functions defined before it\n"
                  "    2 | f(x) = 2*x\n"
                  "      | ^\n"
                  "t.grad:4:8: error: function 'sum' takes 1 argument, but 2 were given\n"
                  "    4 | k(x) = sum(x, x) + sine(x)\n"
                  "      |        ^~~\n"
                  "t.grad:4:20: error: unknown function 'sine'\n"
                  "    4 | k(x) = sum(x, x) + sine(x)\n"
                  "      |                    ^~~~\n"
                  "t.grad:4:20: note: did you mean 'sin'?\n"
                  "    4 | k(x) = sum(x, x) + sine(x)\n"
                  "      |                    ^~~~\n");
}

Test(diagnostics, malformed_numbers)
{
    expect_errors("f(x) = 1e+ * x\n", 0,
                  "t.grad:1:8: error: malformed number '1e+'\n"
                  "    1 | f(x) = 1e+ * x\n"
                  "      |        ^~~\n");
    expect_errors("1.2.3 * x", 1,
                  "t.grad:1:1: error: malformed number '1.2.3'\n"
                  "    1 | 1.2.3 * x\n"
                  "      | ^~~~~\n");
    expect_errors("2e", 1,
                  "t.grad:1:1: error: malformed number '2e'\n"
                  "    1 | 2e\n"
                  "      | ^~\n");
    expect_errors("x * 1e400", 1,
                  "t.grad:1:5: error: the number '1e400' is too large for a double (at most about 1.8e308)\n"
                  "    1 | x * 1e400\n"
                  "      |     ^~~~~\n");
}

Test(diagnostics, bad_characters)
{
    expect_errors("x $+ y", 1,
                  "t.grad:1:3: error: unexpected character '$'\n"
                  "    1 | x $+ y\n"
                  "      |   ^\n");
    char *e = errors_of("x \x01", 1);
    cr_expect(strstr(e, "t.grad:1:3: error: unexpected byte 0x01\n"), "%s", e);
    free(e);
}

Test(diagnostics, empty_inputs)
{
    expect_errors("", 1,
                  "t.grad:1:1: error: there is no expression to evaluate\n");
    expect_errors("# only a comment\n", 1,
                  "t.grad:2:1: error: there is no expression to evaluate\n");
    expect_errors("1 + 2", 0,
                  "t.grad:1:1: error: an expression on its own has no name; define a function, e.g. 'f(x) = ...'\n"
                  "    1 | 1 + 2\n"
                  "      | ^~~~~\n");
}

Test(diagnostics, errors_accumulate_one_per_mistake)
{
    Diag d;
    Program *p = parse("f(x) = x +\ng(x) = sinn(x)\nh(x) = x * y\nk(x) = x\n", 0, &d);
    cr_expect_null(p);
    cr_expect_eq(d.nerrors, 3, "%s", d.out.data);
    cr_expect(strstr(d.out.data, "t.grad:1:11: error: unexpected end of line; expected an expression"),
              "%s", d.out.data);
    cr_expect(strstr(d.out.data, "t.grad:2:8: error: unknown function 'sinn'"), "%s", d.out.data);
    cr_expect(strstr(d.out.data, "t.grad:3:12: error: undefined variable 'y'"), "%s", d.out.data);
    diag_free(&d);
}

Test(diagnostics, long_lines_are_cut_around_the_column)
{
    char src[400];
    strcpy(src, "f(x) = x");
    for (int i = 0; i < 40; i++)
        strcat(src, " + x");
    strcat(src, " + nope");
    for (int i = 0; i < 40; i++)
        strcat(src, " + x");
    strcat(src, "\n");
    char *e = errors_of(src, 0);
    /* "f(x) = x" is 8 columns, then 40 * 4, then " + ": column 172. */
    cr_expect(strstr(e, "t.grad:1:172: error: undefined variable 'nope'\n"), "%s", e);
    char *line = strchr(e, '\n') + 1;
    char *caret = strchr(line, '\n') + 1;
    cr_expect(strncmp(line, "    1 | ...", 11) == 0, "%s", e);
    cr_expect(strstr(line, "...\n") == strchr(line, '\n') - 3, "%s", e);
    cr_expect(strlen(line) - strlen(caret) < 6 + 3 + 72 + 3 + 4, "%s", e);
    /* The caret sits under 'nope'. */
    const char *n = strstr(line, "nope");
    cr_assert(n && n < caret);
    cr_expect_eq(strchr(caret, '^') - caret, n - line, "%s", e);
    free(e);
}

Test(diagnostics, many_errors_stop_at_the_cap)
{
    /* 50000 undefined names: 20 messages, then a note; the rest are
     * counted but neither shown nor given suggestions (which scan every
     * name, and made this quadratic). */
    Buf src = {0};
    buf_puts(&src, "f(x) = x");
    for (int i = 0; i < 50000; i++)
        buf_printf(&src, " + a%d", i);
    buf_puts(&src, "\n");
    Diag d;
    Program *p = parse(src.data, 0, &d);
    cr_expect_null(p);
    cr_expect_eq(d.nerrors, 50000);
    const char *out = d.out.data;
    int shown = 0;
    for (const char *s = out; (s = strstr(s, ": error: ")); s++)
        shown++;
    cr_expect_eq(shown, 20);
    cr_expect(strstr(out, "gradc: note: too many errors; stopping here\n"), "%s", out);
    diag_free(&d);
    buf_free(&src);
}

Test(diagnostics, exponential_inlining_is_an_error_not_an_exhausted_machine)
{
    /* g_k doubles in size at each definition: g_40 would be 2^40 nodes.
     * One error, where the limit is crossed; later calls stay quiet. */
    Buf src = {0};
    buf_puts(&src, "g0(x) = sin(x)\n");
    for (int k = 1; k <= 40; k++)
        buf_printf(&src, "g%d(x) = g%d(x + 1) + g%d(x * 2)\n", k, k - 1, k - 1);
    buf_puts(&src, "f(x) = g40(x)\n");
    Diag d;
    Program *p = parse(src.data, 0, &d);
    cr_expect_null(p);
    cr_expect_eq(d.nerrors, 1, "%s", d.out.data);
    cr_expect(strstr(d.out.data, "error: calling 'g") &&
              strstr(d.out.data, "' here makes the formula too large (more than 4194304 nodes once "
                                 "calls are inlined)\n"),
              "%s", d.out.data);
    diag_free(&d);
    buf_free(&src);
}

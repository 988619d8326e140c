/* test_check.c — problem files (compiler/check.c) and `gradc check`
 * (cli/check.c): the check grammar and its diagnostics, the comparison
 * with its tolerance edges and shape rules, and the command's lines, exit
 * statuses, JSON, JUnit XML (validated by xmllint), -j and the seed
 * samples. Expected values are worked by hand: (x + y) z at (-2, 5, -4)
 * is -12 with gradient (-4, -4, 3); x^2 at 3 is 9 with derivative 6. */
#include "support.h"
#include <criterion/criterion.h>

#include "check.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *tmpdir(void)
{
    return support_tmpdir("check");
}

/* Every run uses a private cache, never the user's. */
static void private_cache(void)
{
    static char *dir;
    if (!dir)
        dir = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/cache.sqlite", dir);
    setenv("GRADC_CACHE", path, 1);
}

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}


/* Runs `gradc ARGS` through the shell; stdout and stderr kept apart. */
static Run gradc(const char *args)
{
    private_cache();
    char *d = tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out' 2>'%s/err'", GRADC_BIN, args, d, d);
    int st = system(cmd);
    Run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, NULL, NULL};
    snprintf(cmd, sizeof cmd, "%s/out", d);
    r.out = slurp(cmd);
    snprintf(cmd, sizeof cmd, "%s/err", d);
    r.err = slurp(cmd);
    return r;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* Parses source text (not bare mode); diagnostics into *diags. */
static Program *parse(const char *text, char **diags)
{
    static Source src;
    src = (Source){"p.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 0, &d);
    *diags = strdup(d.out.data ? d.out.data : "");
    diag_free(&d);
    return p;
}

static Value vec(int rank, uint32_t d0, uint32_t d1, const double *v)
{
    Value x = {rank, {d0, d1}, rank == 0 ? 1 : rank == 1 ? d0 : d0 * d1, (double *)v};
    return x;
}

/* A minimal JSON syntax checker: value := object | array | string |
 * number | true | false | null. Returns the end, or NULL on an error. */
static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p && *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p)
                return NULL;
        }
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *json_seq(const char *p, char close, int object)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            if (!(p = json_string(json_ws(p))))
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        if (!(p = json_value(p)))
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    if (*p == '{')
        return json_seq(p, '}', 1);
    if (*p == '[')
        return json_seq(p, ']', 0);
    if (*p == '"')
        return json_string(p);
    for (const char *w = "true\0false\0null\0"; *w; w += strlen(w) + 1)
        if (!strncmp(p, w, strlen(w)))
            return p + strlen(w);
    char *end;
    strtod(p, &end);
    return end > p && (*p == '-' || isdigit((unsigned char)*p)) ? end : NULL;
}

static int json_valid(const char *s)
{
    const char *e = json_value(s);
    return e && *json_ws(e) == 0;
}

/* ---- the grammar ---- */

Test(grammar, checks_are_recorded_with_their_values)
{
    char *diags;
    Program *p = parse("f(x, y, z) = (x + y) * z\n"
                       "check f(-2, 5, -4) == -12\n"
                       "tolerance 1e-6\n"
                       "check \"named\" grad f(-2, 5, -4) != [-4, -4, 3.5] within 0.5\n"
                       "check [[1, 2], [3, 4]] == [[1, 2], [3, -4]]  # a comment\n",
                       &diags);
    cr_assert_not_null(p, "%s", diags);
    const CheckList *L = check_list(p);
    cr_assert_eq(L->n, 3);
    const Check *a = L->check[0], *b = L->check[1], *c = L->check[2];
    cr_assert_eq(a->kind, CHECK_VALUE);
    cr_assert_eq(a->loc.first_line, 2);
    cr_assert_str_eq(a->text, "f(-2, 5, -4) == -12");
    cr_assert_null(a->name);
    cr_assert_eq(a->expected.rank, 0);
    cr_assert_eq(a->expected.v[0], -12);
    cr_assert_eq(a->tol, CHECK_DEFAULT_TOL);
    cr_assert_eq(a->nin, 3);
    cr_assert_eq(a->in[0], -2);
    cr_assert_eq(a->in[2], -4);
    cr_assert_eq(b->kind, CHECK_GRAD);
    cr_assert_str_eq(b->name, "named");
    cr_assert(b->negate);
    cr_assert_eq(b->tol, 0.5);
    cr_assert_eq(b->expected.rank, 1);
    cr_assert_eq(b->expected.dim[0], 3);
    cr_assert_eq(b->expected.v[2], 3.5);
    cr_assert_eq(c->tol, 1e-6, "the file's tolerance applies to what follows");
    cr_assert_eq(c->expected.rank, 2);
    cr_assert_eq(c->expected.v[3], -4);
    cr_assert_str_eq(c->text, "[[1, 2], [3, 4]] == [[1, 2], [3, -4]]");
    program_free(p);
}

Test(grammar, check_words_stay_usable_as_names)
{
    char *diags;
    Program *p = parse("check = 2\n"
                       "tolerance(x) = x * check\n"
                       "within(grad) = grad + 1\n"
                       "check within(3) == 4\n"
                       "check tolerance(2) == 4\n",
                       &diags);
    cr_assert_not_null(p, "%s", diags);
    cr_assert_eq(check_list(p)->n, 2);
    program_free(p);
}

Test(grammar, nan_and_inf_in_expected_values)
{
    char *diags;
    Program *p = parse("check 1 == [nan, inf, -inf]\n", &diags);
    cr_assert_not_null(p, "%s", diags);
    const Value *v = &check_list(p)->check[0]->expected;
    cr_assert(isnan(v->v[0]));
    cr_assert(isinf(v->v[1]) && v->v[1] > 0);
    cr_assert(isinf(v->v[2]) && v->v[2] < 0);
    program_free(p);
}

static void expect_error(const char *text, const char *message)
{
    char *diags;
    Program *p = parse(text, &diags);
    cr_assert_null(p, "expected an error for: %s", text);
    cr_assert(strstr(diags, message), "expected\n  %s\nin\n%s", message, diags);
}

Test(grammar, diagnostics)
{
    expect_error("check 1 == [[1, 2], [3]]\n",
                 "p.grad:1:21: error: this list has 1 item, but the first list at this depth has 2");
    expect_error("check 1 == [[1, 2], 3]\n",
                 "p.grad:1:21: error: a number where a list of 2 was expected");
    expect_error("check 1 == [1, [2, 3]]\n",
                 "p.grad:1:16: error: a list where a number was expected");
    expect_error("check 1 == x\n",
                 "p.grad:1:12: error: expected a number, 'nan' or 'inf' in the expected value, not 'x'");
    expect_error("check 1 == 1 within -1\n", "p.grad:1:21: error: a tolerance must be a finite number >= 0");
    expect_error("s(x[2]) = softmax(x)\ncheck grad s([1, 2]) == [0, 0]\n",
                 "p.grad:2:12: error: 'grad' needs a scalar result, but 's' gives [2]; use 'jacobian'");
    expect_error("f(x) = x\ncheck f(y) == 1\n", "p.grad:2:9: error: undefined variable 'y'");
    expect_error("check \"unterminated == 1\n", "p.grad:1:7: error: unterminated string");
    expect_error("tolerance x\n", "p.grad:1:11: error: unexpected name 'x'; expected a number\n");
    expect_error("check 1 == []\n", "p.grad:1:13: error: unexpected ']'; expected a number or a list\n");
    expect_error("f(x) = x\ncheck f(1) 1\n", "p.grad:2:12: error: unexpected number '1'; expected == or !=");
}

/* ---- comparing ---- */

Test(compare, tolerance_is_relative_plus_absolute)
{
    /* |a - e| <= tol + tol * |e|: at e = 100, tol = 1e-3 allows 0.101. */
    cr_assert(check_close(100.1, 100, 1e-3));
    cr_assert(check_close(100.101, 100, 1e-3));
    cr_assert_not(check_close(100.1011, 100, 1e-3));
    /* near zero the absolute part: 1e-3 + 0 */
    cr_assert(check_close(0.001, 0, 1e-3));
    cr_assert_not(check_close(0.0011, 0, 1e-3));
    cr_assert(check_close(-12, -12, 0));
    cr_assert_not(check_close(-12.000000001, -12, 0));
    cr_assert(check_close(NAN, NAN, 0));
    cr_assert_not(check_close(NAN, 1, 1));
    cr_assert(check_close(INFINITY, INFINITY, 0));
    cr_assert_not(check_close(-INFINITY, INFINITY, 1e300));
}

Test(compare, dimensions_of_size_one_are_dropped)
{
    double col[4] = {0, 1, 1, 0}, flat[4] = {0, 1, 1, 0};
    Value a = vec(2, 4, 1, col), e = vec(1, 4, 0, flat);
    Compare c = check_compare(&a, &e, 1e-4, 0);
    cr_assert(c.shape_ok && c.pass && c.first == -1);
    double one = 1;
    Value s = vec(0, 0, 0, &one), v1 = vec(1, 1, 0, &one);
    cr_assert(check_compare(&v1, &s, 0, 0).pass);
}

Test(compare, first_difference_and_shape_mismatch)
{
    double a[6] = {1, 2, 3, 4, 5, 6}, e[6] = {1, 2, 3, 4, 5.5, 6};
    Value va = vec(2, 2, 3, a), ve = vec(2, 2, 3, e);
    Compare c = check_compare(&va, &ve, 1e-4, 0);
    cr_assert_not(c.pass);
    cr_assert_eq(c.first, 4);
    Buf b = {0};
    value_index(&ve, (uint64_t)c.first, &b);
    cr_assert_str_eq(b.data, "[1, 1]");
    buf_free(&b);
    /* != passes when some element differs */
    cr_assert(check_compare(&va, &ve, 1e-4, 1).pass);
    cr_assert_not(check_compare(&va, &va, 1e-4, 1).pass);
    /* different shapes fail both ways */
    Value flat = vec(1, 6, 0, a);
    cr_assert_not(check_compare(&flat, &ve, 1e-4, 0).pass);
    cr_assert_not(check_compare(&flat, &ve, 1e-4, 1).pass);
    cr_assert_not(check_compare(&flat, &ve, 1e-4, 1).shape_ok);
}

Test(compare, formatting)
{
    double m[4] = {0.5, -1, 2, 1e-7};
    Value v = vec(2, 2, 2, m);
    Buf b = {0}, j = {0}, s = {0};
    value_format(&v, &b, 0);
    cr_assert_str_eq(b.data, "[[0.5, -1], [2, 1e-07]]");
    value_shape(&v, &s);
    cr_assert_str_eq(s.data, "[2, 2]");
    double n[2] = {NAN, -INFINITY};
    Value w = vec(1, 2, 0, n);
    value_json(&w, &j);
    cr_assert_str_eq(j.data, "[\"NaN\", \"-Infinity\"]");
    buf_free(&b);
    buf_free(&j);
    buf_free(&s);
}

/* ---- gradc check ---- */

static const char good[] =
    "f(x, y, z) = (x + y) * z\n"
    "check f(-2, 5, -4) == -12\n"
    "check grad f(-2, 5, -4) == [-4, -4, 3]\n"
    "sq(x) = x^2\n"
    "check \"square\" grad sq(3) == 6\n"
    "check sq([1, 2, 3]) == [1, 4, 9]   # a batch of three\n";

Test(command, passing_file)
{
    char *d = tmpdir();
    char *path = write_file(d, "good.grad", good);
    char args[1024];
    snprintf(args, sizeof args, "check '%s'", path);
    Run r = gradc(args);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    char line[1100];
    snprintf(line, sizeof line, "PASS %s:2: f(-2, 5, -4) == -12\n", path);
    cr_assert(strstr(r.out, line), "%s", r.out);
    snprintf(line, sizeof line, "PASS %s:5: \"square\": grad sq(3) == 6\n", path);
    cr_assert(strstr(r.out, line), "%s", r.out);
    cr_assert_eq(count(r.out, "PASS "), 4);
    cr_assert(strstr(r.out, "\n4 passed, 0 failed\n"), "%s", r.out);
}

Test(command, failing_check_shows_expected_actual_and_location)
{
    char *d = tmpdir();
    char *path = write_file(d, "bad.grad",
                            "f(x, y, z) = (x + y) * z\n"
                            "check f(-2, 5, -4) == -12\n"
                            "check grad f(-2, 5, -4) == [-4, -4, 4]\n"
                            "check f(-2, 5, -4) == -12.1 within 1e-3\n");
    char args[1024];
    snprintf(args, sizeof args, "check '%s'", path);
    Run r = gradc(args);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    char line[2048];
    snprintf(line, sizeof line,
             "FAIL %s:3: grad f(-2, 5, -4) == [-4, -4, 4]: expected [-4, -4, 4], got [-4, -4, 3]; "
             "first difference at [2]: expected 4, got 3 (tolerance 0.0001)\n", path);
    cr_assert(strstr(r.out, line), "%s", r.out);
    snprintf(line, sizeof line,
             "FAIL %s:4: f(-2, 5, -4) == -12.1 within 1e-3: expected -12.1, got -12 (tolerance 0.001)\n", path);
    cr_assert(strstr(r.out, line), "%s", r.out);
    cr_assert(strstr(r.out, "\n1 passed, 2 failed\n"), "%s", r.out);
}

Test(command, tolerance_edges)
{
    /* 1e-3 + 1e-3 * |1| = 0.002: 1.002 is the largest actual accepted for 1. */
    char *d = tmpdir();
    char *path = write_file(d, "tol.grad",
                            "id(x) = x\n"
                            "check id(1.0019) == 1 within 1e-3\n"
                            "check id(1.0021) == 1 within 1e-3\n"
                            "check id(1.0021) != 1 within 1e-3\n"
                            "tolerance 0.1\n"
                            "check id(1.05) == 1\n"
                            "check id(1.5) == 1\n"
                            "check id(1) == 1 within 0\n");
    char args[1024];
    snprintf(args, sizeof args, "check '%s'", path);
    Run r = gradc(args);
    cr_assert_eq(r.status, 1);
    char line[1100];
    snprintf(line, sizeof line, "FAIL %s:3:", path);
    cr_assert(strstr(r.out, line), "%s", r.out);
    snprintf(line, sizeof line, "FAIL %s:7:", path);
    cr_assert(strstr(r.out, line), "%s", r.out);
    cr_assert(strstr(r.out, "\n4 passed, 2 failed\n"), "%s", r.out);
}

Test(command, batch_and_network_checks)
{
    char *d = tmpdir();
    char *path = write_file(d, "net.grad",
                            "network and_gate(x[2]) { dense(1, step, weights = [[1, 1]], bias = -1) }\n"
                            "check and_gate([[0, 0], [0, 1], [1, 0], [1, 1]]) == [0, 0, 0, 1]\n"
                            "check and_gate([[0, 0], [0, 1], [1, 0], [1, 1]]) != [0, 1, 1, 0]\n"
                            "check and_gate([[0, 0], [0, 1], [1, 0], [1, 1]]) == [0, 0, 1, 1]\n"
                            "check and_gate([[0, 0], [0, 1]]) == [0, 0, 0]\n"
                            "check params(and_gate) == 3\n");
    char args[1024];
    snprintf(args, sizeof args, "check '%s'", path);
    Run r = gradc(args);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "first difference at [2]: expected 1, got 0"), "%s", r.out);
    cr_assert(strstr(r.out, "expected shape [3], got shape [2, 1]: [[0], [0]]"), "%s", r.out);
    cr_assert(strstr(r.out, "\n3 passed, 2 failed\n"), "%s", r.out);
}

Test(command, file_that_does_not_compile_exits_2)
{
    char *d = tmpdir();
    char *ok = write_file(d, "a.grad", good);
    char *bad = write_file(d, "b.grad", "f(x) = x +\ncheck f(1) == 1\ncheck sigm(1) == 1\n");
    char args[1024];
    snprintf(args, sizeof args, "check '%s' '%s'", ok, bad);
    Run r = gradc(args);
    cr_assert_eq(r.status, 2, "%s%s", r.out, r.err);
    char msg[1100];
    snprintf(msg, sizeof msg, "%s:1:11: error: unexpected end of line; expected an expression", bad);
    cr_assert(strstr(r.err, msg), "%s", r.err);
    snprintf(msg, sizeof msg, "%s:3:7: error: unknown function 'sigm'", bad);
    cr_assert(strstr(r.err, msg), "%s", r.err);
    snprintf(msg, sizeof msg, "ERROR %s:1:11: error:", bad);
    cr_assert(strstr(r.out, msg), "%s", r.out);
    cr_assert(strstr(r.out, "\n4 passed, 0 failed\n"), "%s", r.out);
}

Test(command, directories_are_searched_in_order)
{
    char *d = tmpdir();
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub", d);
    mkdir(sub, 0700);
    write_file(d, "b.grad", "check 2 == 2\n");
    write_file(sub, "a.grad", "check 1 == 1\n");
    write_file(d, "a.grad", "check 0 == 0\n");
    write_file(d, "notes.txt", "check 1 == 2\n");
    char args[1024];
    snprintf(args, sizeof args, "check '%s'", d);
    Run r = gradc(args);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    char *a = strstr(r.out, "/a.grad:1"), *b = strstr(r.out, "/b.grad:1"), *s = strstr(r.out, "/sub/a.grad:1");
    cr_assert(a && b && s && a < b && b < s, "%s", r.out);
    cr_assert(strstr(r.out, "\n3 passed, 0 failed\n"), "%s", r.out);
}

Test(command, json_output_parses)
{
    char *d = tmpdir();
    write_file(d, "a.grad", good);
    write_file(d, "b.grad", "check 1 == [1, 2]\ncheck \"back\\slash\" 2 == 3\n");
    write_file(d, "c.grad", "check 1 == \n");
    char args[1024];
    snprintf(args, sizeof args, "check --json '%s'", d);
    Run r = gradc(args);
    cr_assert_eq(r.status, 2, "%s%s", r.out, r.err);
    cr_assert(json_valid(r.out), "not JSON:\n%s", r.out);
    cr_assert(strstr(r.out, "\"passed\": 4, \"failed\": 2"), "%s", r.out);
    cr_assert(strstr(r.out, "\"status\": \"fail\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"expected\": [-4, -4, 3], \"actual\": [-4, -4, 3]"), "%s", r.out);
    cr_assert(strstr(r.out, "\"name\": \"back\\\\slash\""), "%s", r.out);
    cr_assert(strstr(r.out, "c.grad:1:12: error: unexpected end of line"), "%s", r.out);
}

Test(command, junit_output_is_valid_xml)
{
    if (system("command -v xmllint >/dev/null 2>&1") != 0)
        cr_assert_fail("xmllint is needed (Debian: apt-get install libxml2-utils)");
    char *d = tmpdir();
    write_file(d, "a.grad", good);
    write_file(d, "b.grad", "check \"<&>\" 1 == [1, 2]\ncheck 2 == 3\n");
    write_file(d, "c.grad", "check 1 == \n");
    char args[1024];
    snprintf(args, sizeof args, "check --junit '%s/report.xml' '%s'", d, d);
    Run r = gradc(args);
    cr_assert_eq(r.status, 2);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s/report.xml'", d);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/report.xml", d);
    char *x = slurp(cmd);
    cr_assert(strstr(x, "<testsuites name=\"gradc check\" tests=\"7\" failures=\"2\" errors=\"1\">"), "%s", x);
    cr_assert(strstr(x, "&lt;&amp;&gt;"), "%s", x);
    cr_assert_eq(count(x, "<failure "), 2);
    cr_assert_eq(count(x, "<error "), 1);
}

Test(command, parallel_output_is_the_same)
{
    char args[1024];
    snprintf(args, sizeof args, "check '%s/samples'", GRADC_SOURCE_DIR);
    Run one = gradc(args);
    snprintf(args, sizeof args, "check -j 3 '%s/samples'", GRADC_SOURCE_DIR);
    Run three = gradc(args);
    cr_assert_eq(one.status, 0, "%s%s", one.out, one.err);
    cr_assert_eq(three.status, 0, "%s%s", three.out, three.err);
    cr_assert_str_eq(one.out, three.out);
}

/* On a terminal, with many files, a progress line on stderr that is
 * erased before each report; `script` gives the command a terminal. */
Test(command, progress_line_on_a_terminal)
{
    if (system("command -v script >/dev/null 2>&1") != 0)
        cr_assert_fail("script (Debian: bsdutils) is needed");
    char *d = tmpdir();
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d.grad", i);
        write_file(d, name, "check 1 + 1 == 2\n");
    }
    char args[1024];
    snprintf(args, sizeof args, "script -qec \"'%s' check '%s'\" /dev/null", GRADC_BIN, d);
    private_cache();
    FILE *f = popen(args, "r");
    cr_assert_not_null(f);
    Buf b = {0};
    buf_puts(&b, "");
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&b, chunk, n);
    cr_assert_eq(pclose(f), 0, "%s", b.data);
    cr_assert(strstr(b.data, "\r\033[K[9/10] "), "%s", b.data);
    cr_assert(strstr(b.data, "10 passed, 0 failed"), "%s", b.data);
    /* and none when the output is not a terminal */
    snprintf(args, sizeof args, "check '%s'", d);
    Run r = gradc(args);
    cr_assert_null(strstr(r.err, "[9/10]"), "%s", r.err);
    buf_free(&b);
}

/* ---- the seed samples ---- */

Test(samples, seed_samples_pass_and_cover_the_notes)
{
    char args[1024];
    snprintf(args, sizeof args, "check '%s/samples/seed'", GRADC_SOURCE_DIR);
    Run r = gradc(args);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_eq(count(r.out, "FAIL"), 0);
    cr_assert(count(r.out, "PASS ") >= 20, "%s", r.out);
    static const char *const topics[] = {
        "\"softmax Jacobian\"", "\"linear neuron\"", "\"softmax of one neuron\"",
        "\"ReLU neuron\"", "\"4-3-3-2 network\"", "\"parameter count\"", "\"AND gate\"",
        "\"OR gate\"", "\"a single perceptron cannot do XOR\"", "\"XOR with a hidden layer\"",
        "\"(x + y) z\"", "\"sigmoid neuron\"", "\"2 (x y + max(z, w))\"",
    };
    for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
        cr_assert(strstr(r.out, topics[i]), "no passing check %s", topics[i]);
}

/* A copy of a seed sample with one wrong answer: exit 1, and the line. */
Test(samples, one_wrong_answer_is_named)
{
    char src[1024];
    snprintf(src, sizeof src, "%s/samples/seed/06_sigmoid_neuron.grad", GRADC_SOURCE_DIR);
    char *text = slurp(src);
    const char *right = "check f7(2, -1, -3, -2, -3) == 1.3679\n";
    char *at = strstr(text, right);
    cr_assert_not_null(at);
    int line = 1;
    for (char *p = text; p < at; p++)
        line += *p == '\n';
    memcpy(strstr(at, "1.3679"), "1.3600", 6);     /* the notes' rounded f7 */
    char *d = tmpdir();
    char *path = write_file(d, "06_altered.grad", text);
    char args[1024];
    snprintf(args, sizeof args, "check '%s'", path);
    Run r = gradc(args);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert_eq(count(r.out, "FAIL "), 1, "%s", r.out);
    char want[1200];
    snprintf(want, sizeof want, "FAIL %s:%d: f7(2, -1, -3, -2, -3) == 1.3600: expected 1.36, got 1.36787944117144",
             path, line);
    cr_assert(strstr(r.out, want), "%s", r.out);
}

/* test_cli.c — the gradc command line (cli/), run as a user runs it: the
 * built binary in a child process, checking standard output, standard
 * error and the exit status. Covers eval's text and JSON output, argument
 * handling, --at errors, a missing C compiler, and emit: warning-free C99,
 * several generated files linked into one program, awkward input names,
 * and the IR dump. */
#include "support.h"
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradc.h"

/* ---- helpers ---- */


/* A private directory (0700, so the cache accepts it) for this test. */
static char *tmpdir(void)
{
    char *d = strdup("/tmp/gradc-test-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static char *path(const char *dir, const char *name)
{
    char *s = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(s, "%s/%s", dir, name);
    return s;
}

/* Runs gradc with args (NULL-terminated) and env ("K=V" strings,
 * NULL-terminated, may be NULL); the cache is a fresh file in dir. */
static Run run_env(const char *dir, const char *const *env, const char *const *args)
{
    char *outp = path(dir, "stdout"), *errp = path(dir, "stderr"), *cache = path(dir, "cache.sqlite");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        setenv("GRADC_CACHE", cache, 1);
        unsetenv("CC");
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        const char *argv[64] = {GRADC_BIN};
        int n = 1;
        for (; args[n - 1]; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(GRADC_BIN, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    Run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(outp), slurp(errp)};
    unlink(outp);
    unlink(errp);
    free(outp);
    free(errp);
    free(cache);
    return r;
}

static Run run(const char *dir, const char *const *args)
{
    return run_env(dir, NULL, args);
}


static void cleanup(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    free(dir);
}

/* Expects success with exactly `out` on stdout and nothing on stderr. */
static void expect_output(const char *dir, const char *const *args, const char *out)
{
    Run r = run(dir, args);
    cr_expect_eq(r.status, 0, "status %d, stderr:\n%s", r.status, r.err);
    cr_expect_str_eq(r.out, out);
    cr_expect_str_eq(r.err, "");
    run_free(&r);
}

/* Expects exit status 1, nothing on stdout and exactly `err` on stderr. */
static void expect_failure(const char *dir, const char *const *args, const char *err)
{
    Run r = run(dir, args);
    cr_expect_eq(r.status, 1, "status %d", r.status);
    cr_expect_str_eq(r.out, "");
    cr_expect_str_eq(r.err, err);
    run_free(&r);
}

static int shell(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- eval ---- */

Test(cli, eval_sigmoid_neuron_text)
{
    char *dir = tmpdir();
    Run r = run(dir, ARGS("eval", "1/(1+exp(-(w0*x0+w1*x1+w2)))", "--at",
                          "w0=2,x0=-1,w1=-3,x1=-2,w2=-3", "--grad"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "");
    /* "value  0.7310585786300049", then one "d/dNAME VALUE" line per input,
     * values in a column (a space where a minus sign would be). */
    static const char *const name[6] = {"value", "d/dw0", "d/dx0", "d/dw1", "d/dx1", "d/dw2"};
    static const double want[6] = {0.7310585786300049, -0.19661193324148185, 0.3932238664829637,
                                   -0.39322386648296376, -0.5898357997244456, 0.19661193324148185};
    const char *p = r.out;
    for (int i = 0; i < 6; i++) {
        size_t len = strlen(name[i]);
        cr_assert(strncmp(p, name[i], len) == 0, "line %d of:\n%s", i, r.out);
        cr_expect(p[len] == ' ');
        char *end;
        double v = strtod(p + len, &end);
        cr_expect(*end == '\n', "%s", r.out);
        cr_expect(fabs(v - want[i]) <= 1e-15 * fabs(want[i]), "%s = %.17g, want %.17g", name[i], v, want[i]);
        cr_expect(want[i] < 0 ? p[len + 1] == '-' : p[len + 1] == ' ' && p[len + 2] != ' ',
                  "column of line %d:\n%s", i, r.out);
        p = end + 1;
    }
    cr_expect_eq(*p, 0);
    cr_expect(strncmp(r.out, "value  0.7310585786300049\n", 26) == 0, "%s", r.out);
    run_free(&r);
    cleanup(dir);
}

Test(cli, eval_json_shapes)
{
    char *dir = tmpdir();
    expect_output(dir, ARGS("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--grad", "--json"),
                  "{\"value\": -12, \"grad\": {\"x\": -4, \"y\": -4, \"z\": 3}}\n");
    expect_output(dir, ARGS("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--json"),
                  "{\"value\": -12}\n");
    /* Full precision, round-trippable. */
    expect_output(dir, ARGS("eval", "x/y", "--at", "x=1", "--at", "y=3", "--json", "--grad"),
                  "{\"value\": 0.3333333333333333, \"grad\": {\"x\": 0.3333333333333333, "
                  "\"y\": -0.1111111111111111}}\n");
    expect_output(dir, ARGS("eval", "2*(x*y+max(z,w))", "--at", "x=3,y=-4,z=2,w=-1", "--grad", "--json"),
                  "{\"value\": -20, \"grad\": {\"x\": -8, \"y\": 6, \"z\": 2, \"w\": 0}}\n");
    cleanup(dir);
}

Test(cli, eval_json_nan_and_infinities_are_strings)
{
    char *dir = tmpdir();
    expect_output(dir, ARGS("eval", "log(x)", "--at", "x=-1", "--json", "--grad"),
                  "{\"value\": \"NaN\", \"grad\": {\"x\": -1}}\n");
    expect_output(dir, ARGS("eval", "log(x)", "--at", "x=0", "--json", "--grad"),
                  "{\"value\": \"-Infinity\", \"grad\": {\"x\": \"Infinity\"}}\n");
    expect_output(dir, ARGS("eval", "exp(x)", "--at", "x=1000", "--json"),
                  "{\"value\": \"Infinity\"}\n");
    expect_output(dir, ARGS("eval", "x*y", "--at", "x=nan,y=inf", "--json", "--grad"),
                  "{\"value\": \"NaN\", \"grad\": {\"x\": \"Infinity\", \"y\": \"NaN\"}}\n");
    cleanup(dir);
}

Test(cli, eval_warnings_stay_out_of_the_json)
{
    /* A cache in a world-writable directory is refused with a warning:
     * on stderr, while stdout is exactly the JSON. */
    char *dir = tmpdir();
    Run r = run_env(dir, ARGS("GRADC_CACHE=/tmp/gradc-test-cli-refused.sqlite"),
                    ARGS("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--grad", "--json"));
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.out, "{\"value\": -12, \"grad\": {\"x\": -4, \"y\": -4, \"z\": 3}}\n");
    cr_expect(strstr(r.err, "warning"), "%s", r.err);
    run_free(&r);
    cleanup(dir);
}

Test(cli, eval_expression_starting_with_minus)
{
    char *dir = tmpdir();
    expect_output(dir, ARGS("eval", "-x^2", "--at", "x=3"), "value -9\n");
    expect_output(dir, ARGS("eval", "-x^2", "--at", "x=3", "--json"), "{\"value\": -9}\n");
    /* "--" puts the options first and the expression after it. */
    expect_output(dir, ARGS("eval", "--at", "x=3", "--", "-x^2"), "value -9\n");
    expect_output(dir, ARGS("eval", "--", "-2^2"), "value -4\n");
    expect_failure(dir, ARGS("eval", "--", "-x^2", "--at", "x=3"),
                   "gradc: error: unexpected argument '--at' after the expression (options go before '--')\n"
                   "gradc: note: see 'gradc eval --help'\n");
    /* emit: the argument after -e is the expression. */
    Run r = run(dir, ARGS("emit", "-e", "-x^2", "--emit", "ir"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "= neg "), "%s", r.out);
    run_free(&r);
    cleanup(dir);
}

Test(cli, eval_interpreter_engine_agrees)
{
    char *dir = tmpdir();
    expect_output(dir, ARGS("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--grad", "--json",
                            "--engine", "interp"),
                  "{\"value\": -12, \"grad\": {\"x\": -4, \"y\": -4, \"z\": 3}}\n");
    cleanup(dir);
}

Test(cli, eval_at_errors)
{
    char *dir = tmpdir();
    expect_failure(dir, ARGS("eval", "x", "--at", "x=abc"),
                   "<at>:1:3: error: 'abc' is not a number\n"
                   "    1 | x=abc\n"
                   "      |   ^~~\n");
    expect_failure(dir, ARGS("eval", "x+y", "--at", "x=,y=2"),
                   "<at>:1:3: error: missing value: expected a number\n"
                   "    1 | x=,y=2\n"
                   "      |   ^\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x=0x10"),
                   "<at>:1:3: error: '0x10' is not a number\n"
                   "    1 | x=0x10\n"
                   "      |   ^~~~\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x=1e999"),
                   "<at>:1:3: error: '1e999' is too large for a double (write inf for infinity)\n"
                   "    1 | x=1e999\n"
                   "      |   ^~~~~\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x 1"),
                   "<at>:1:1: error: expected NAME=VALUE, e.g. --at x=1.5,y=-2 or --at 'v=[1,2,3]'\n"
                   "    1 | x 1\n"
                   "      | ^~~\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x=1,x=2"),
                   "<at>:1:5: error: 'x' is given twice\n"
                   "    1 | x=1,x=2\n"
                   "      |     ^\n");
    expect_failure(dir, ARGS("eval", "x+y", "--at", "x=1"),
                   "<expr>:1:3: error: no value for input 'y' (give one with --at y=VALUE)\n"
                   "    1 | x+y\n"
                   "      |   ^\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x=1,q=2"),
                   "<at>:1:5: error: 'q' is not an input of f (its inputs: x)\n"
                   "    1 | x=1,q=2\n"
                   "      |     ^\n");
    /* A missing --at value altogether. */
    expect_failure(dir, ARGS("eval", "x", "--at"),
                   "gradc: error: --at needs NAME=VALUE,...\n"
                   "gradc: note: see 'gradc eval --help'\n");
    cleanup(dir);
}

Test(cli, usage_errors)
{
    char *dir = tmpdir();
    expect_failure(dir, ARGS("eval", "x", "--at", "x=1", "--frobnicate"),
                   "gradc: error: unknown option '--frobnicate'\n"
                   "gradc: note: see 'gradc eval --help'\n");
    expect_failure(dir, ARGS("emit", "-e", "x", "--frobnicate"),
                   "gradc: error: unknown option '--frobnicate'\n"
                   "gradc: note: see 'gradc emit --help'\n");
    expect_failure(dir, ARGS("emit", "-e"),
                   "gradc: error: -e needs a value\n"
                   "gradc: note: see 'gradc emit --help'\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x=1", "extra"),
                   "gradc: error: unexpected argument 'extra' (quote the expression as one argument)\n"
                   "gradc: note: see 'gradc eval --help'\n");
    Run r = run(dir, ARGS("frobnicate"));
    cr_expect_eq(r.status, 1);
    cr_expect(strncmp(r.err, "gradc: error: unknown command 'frobnicate'\n", 43) == 0, "%s", r.err);
    run_free(&r);
    r = run(dir, ARGS("--version"));
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.out, "gradc " GRADC_VERSION "\n");
    run_free(&r);
    r = run(dir, ARGS("eval", "--help"));
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "--at NAME=VALUE"), "%s", r.out);
    run_free(&r);
    cleanup(dir);
}

Test(cli, syntax_errors_exit_1_with_location)
{
    char *dir = tmpdir();
    expect_failure(dir, ARGS("eval", "(x+", "--at", "x=1"),
                   "<expr>:1:4: error: unexpected end of line; expected an expression\n"
                   "    1 | (x+\n"
                   "      |    ^\n"
                   "<expr>:1:1: note: this '(' is not closed\n"
                   "    1 | (x+\n"
                   "      | ^\n");
    expect_failure(dir, ARGS("emit", "-e", "sigm(x)"),
                   "<expr>:1:1: error: unknown function 'sigm'\n"
                   "    1 | sigm(x)\n"
                   "      | ^~~~\n"
                   "<expr>:1:1: note: did you mean 'sigmoid'?\n"
                   "    1 | sigm(x)\n"
                   "      | ^~~~\n");
    cleanup(dir);
}

Test(cli, missing_c_compiler_is_a_clear_error)
{
    char *dir = tmpdir();
    Run r = run_env(dir, ARGS("CC=/nonexistent/cc"),
                    ARGS("eval", "x*y", "--at", "x=1,y=2", "--no-cache"));
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.out, "");
    cr_expect(strstr(r.err, "gradc: error: cannot run the C compiler '/nonexistent/cc'"), "%s", r.err);
    run_free(&r);
    /* A compiler that fails: its own message is shown. */
    char *fake = path(dir, "badcc");
    FILE *f = fopen(fake, "w");
    fputs("#!/bin/sh\necho 'badcc: internal compiler error: out of cheese' >&2\nexit 4\n", f);
    fclose(f);
    chmod(fake, 0700);
    char env[600];
    snprintf(env, sizeof env, "CC=%s", fake);
    r = run_env(dir, ARGS(env), ARGS("eval", "x*y", "--at", "x=1,y=2", "--no-cache"));
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "out of cheese"), "%s", r.err);
    run_free(&r);
    free(fake);
    cleanup(dir);
}

/* ---- emit ---- */

#define CFLAGS "-std=c99 -Wall -Wextra -pedantic -Werror"

Test(cli, emit_compiles_warning_free)
{
    char *dir = tmpdir();
    char *c = path(dir, "circuit.c"), *h = path(dir, "circuit.h");
    Run r = run(dir, ARGS("emit", "-e", "2*(x*y + max(z,w))", "--name", "circuit", "-o", c, "--header", h));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "");
    run_free(&r);
    char *src = slurp(c), *hdr = slurp(h);
    cr_expect(strstr(src, "#include <math.h>"));
    cr_expect(!strstr(src, "#include \"circuit.h\""), "the .c stands alone");
    cr_expect(strstr(src, "double circuit(const double *"), "%s", src);
    cr_expect(strstr(src, "double circuit_grad(const double *"), "%s", src);
    cr_expect(strstr(hdr, "#define CIRCUIT_NUM_INPUTS 4"), "%s", hdr);
    cr_expect(strstr(hdr, "circuit_input_names"), "%s", hdr);
    cr_expect(!strstr(src, "malloc"));
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c circuit.c -o circuit.o 2>&1", dir), 0);
    cr_expect_eq(shell("cd '%s' && echo '#include \"circuit.h\"' | cc " CFLAGS " -x c -c - -o h.o 2>&1", dir), 0);
    free(src);
    free(hdr);
    free(c);
    free(h);
    cleanup(dir);
}

Test(cli, several_generated_files_link_into_one_program)
{
    char *dir = tmpdir();
    char *c1 = path(dir, "circuit.c"), *h1 = path(dir, "circuit.h");
    char *c2 = path(dir, "mul.c"), *h2 = path(dir, "mul.h");
    char *c3 = path(dir, "pmul.c"), *h3 = path(dir, "pmul.h");
    char *c4 = path(dir, "file.c"), *h4 = path(dir, "file.h"), *g4 = path(dir, "two.grad");
    FILE *f = fopen(g4, "w");
    fputs("sq(x) = x^2\ncube(x) {\n  s = sq(x)\n  s * x\n}\n", f);
    fclose(f);
    const char *const *cmds[] = {
        ARGS("emit", "-e", "2*(x*y + max(z,w))", "--name", "circuit", "-o", c1, "--header", h1),
        ARGS("emit", "-e", "x*y", "--name", "mul", "-o", c2, "--header", h2),
        ARGS("emit", "-e", "x/y", "--name", "mul", "--prefix", "p_", "-o", c3, "--header", h3),
        ARGS("emit", g4, "--prefix", "lib_", "-o", c4, "--header", h4),
    };
    for (int i = 0; i < 4; i++) {
        Run r = run(dir, cmds[i]);
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_free(&r);
    }
    char *mainc = path(dir, "main.c");
    f = fopen(mainc, "w");
    fputs("#include <stdio.h>\n"
          "#include \"circuit.h\"\n#include \"mul.h\"\n#include \"pmul.h\"\n#include \"file.h\"\n"
          "int main(void)\n{\n"
          "    double in4[4] = {3, -4, 2, -1}, g4[4], in2[2] = {2, 5}, g2[2], x = 3, g1[1];\n"
          "    double v = circuit_grad(in4, g4);\n"
          "    printf(\"%g %g %g %g %g %d\\n\", v, g4[0], g4[1], g4[2], g4[3], CIRCUIT_NUM_INPUTS);\n"
          "    double q = p_mul_grad(in2, g2);\n"
          "    printf(\"%g %g %g %g %s %s\\n\", mul(in2), q, g2[0], g2[1], p_mul_input_names[1],\n"
          "           mul_input_names[2] ? \"?\" : \"null\");\n"
          "    double c = lib_cube_grad(&x, g1);\n"
          "    printf(\"%g %g %g %d\\n\", c, g1[0], lib_sq(&x), LIB_SQ_NUM_INPUTS);\n"
          "    return 0;\n}\n",
          f);
    fclose(f);
    cr_assert_eq(shell("cd '%s' && cc " CFLAGS " -o prog main.c circuit.c mul.c pmul.c file.c -lm 2>&1", dir), 0);
    cr_assert_eq(shell("cd '%s' && ./prog > prog.out", dir), 0);
    char *out_path = path(dir, "prog.out");
    char *out = slurp(out_path);
    /* circuit: -20 and (-8, 6, 2, 0) as in the notes; mul: 2*5; p_mul:
     * 2/5 with d/dx = 1/5, d/dy = -2/25; cube(3) = 27, 3*3^2 = 27; sq(3) = 9. */
    cr_expect_str_eq(out, "-20 -8 6 2 0 4\n10 0.4 0.2 -0.08 y null\n27 27 9 1\n");
    free(out);
    free(out_path);
    free(mainc);
    free(c1), free(h1), free(c2), free(h2), free(c3), free(h3), free(c4), free(h4), free(g4);
    cleanup(dir);
}

Test(cli, input_names_that_are_c_keywords_or_clash)
{
    char *dir = tmpdir();
    char *c = path(dir, "k.c"), *h = path(dir, "k.h");
    const char *expr = "int*double + in - grad*main + exp(exp) + work/out + f";
    Run r = run(dir, ARGS("emit", "-e", expr, "-o", c, "--header", h));
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c k.c 2>&1 && echo '#include \"k.h\"' | cc " CFLAGS
                       " -x c -c - -o h.o 2>&1", dir), 0);
    char *src = slurp(c);
    cr_expect(strstr(src, "\"int\", \"double\", \"in\", \"grad\", \"main\", \"exp\""), "%s", src);
    free(src);
    /* And it evaluates: 2*3 + 4 - 5*6 + e^1 + 8/2 + 1. */
    r = run(dir, ARGS("eval", expr, "--at", "int=2,double=3,in=4,grad=5,main=6,exp=1,work=8,out=2,f=1",
                      "--json"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    double want = 6 + 4 - 30 + exp(1.0) + 4 + 1;
    double got = strtod(r.out + strlen("{\"value\": "), NULL);
    cr_expect(fabs(got - want) <= 1e-15 * fabs(want), "%s", r.out);
    run_free(&r);
    /* A function name that is not a valid C name is an error, not bad C. */
    expect_failure(dir, ARGS("emit", "-e", "x", "--name", "int"),
                   "gradc: error: 'int' cannot be the name of a C function (it is not an identifier, or "
                   "it is a C keyword or a name the generated code uses); choose another with --name or "
                   "--prefix\n");
    free(c);
    free(h);
    cleanup(dir);
}

Test(cli, emit_ir_dump)
{
    char *dir = tmpdir();
    Run r = run(dir, ARGS("emit", "--emit", "ir", "-e", "(x+y)*z"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    /* The operands of the commutative add are in canonical order. */
    const char *add = strstr(r.out, "  %4 = add %1 %2\n") ? "  %4 = add %1 %2\n" : "  %4 = add %2 %1\n";
    char want[512];
    snprintf(want, sizeof want,
             "function f(x, y, z)\n"
             "  %%1 = input 0\n"
             "  %%2 = input 1\n"
             "  %%3 = input 2\n"
             "%s"
             "  %%5 = mul %%4 %%3\n"
             "  value %%5\n"
             "  grad x %%3\n"
             "  grad y %%3\n"
             "  grad z %%4\n", add);
    cr_expect_str_eq(r.out, want);
    run_free(&r);
    cleanup(dir);
}

Test(cli, emit_writes_to_stdout_by_default)
{
    char *dir = tmpdir();
    Run r = run(dir, ARGS("emit", "-e", "sin(x)"));
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "double f(const double *"), "%s", r.out);
    cr_expect(strstr(r.out, "double f_grad(const double *"), "%s", r.out);
    cr_expect_str_eq(r.err, "");
    run_free(&r);
    r = run(dir, ARGS("emit", "/nonexistent/file.grad"));
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, "gradc: error: cannot read '/nonexistent/file.grad': No such file or directory\n");
    run_free(&r);
    cleanup(dir);
}

/* Bad input never crashes: a handful of hostile inputs through eval and
 * emit must each give exit status 0 or 1, with a message on errors. */
Test(cli, hostile_inputs_do_not_crash)
{
    char *dir = tmpdir();
    static const char *const inputs[] = {
        "", "#", "(((((", ")))))", "x+", "*x", "1e", "1e999", "--x", "x^^2", "max(", "max(x,",
        "max(,)", "sin()", "f(x)=x", "x=1", "@", "x@y", "[", "]", "[1,", "x[", "x[0]", "sum(",
        "sum(i=0..3,", "sum(i=3..0, x)", "params(", "network", "\"", "\x01\x02", "\xff\xfe",
        "\xc3\xa9", "1/0", "0/0", "x;;;y", "\\", "x = x", "check", "tolerance 1",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        Run r = run(dir, ARGS("eval", inputs[i], "--at", "x=1,y=2"));
        cr_expect(r.status == 0 || r.status == 1, "eval '%s': status %d", inputs[i], r.status);
        cr_expect(r.status == 0 || strstr(r.err, "error"), "eval '%s': no message", inputs[i]);
        run_free(&r);
        r = run(dir, ARGS("emit", "-e", inputs[i]));
        cr_expect(r.status == 0 || r.status == 1, "emit '%s': status %d", inputs[i], r.status);
        cr_expect(r.status == 0 || strstr(r.err, "error"), "emit '%s': no message", inputs[i]);
        run_free(&r);
    }
    cleanup(dir);
}

/* The JIT writes into a private directory under $TMPDIR and removes it,
 * after success and after a failing compiler alike. */
Test(cli, jit_leaves_no_temporary_files)
{
    char *dir = tmpdir();
    char *tmp = path(dir, "tmp");
    cr_assert_eq(mkdir(tmp, 0700), 0);
    char env[600];
    snprintf(env, sizeof env, "TMPDIR=%s", tmp);
    Run r = run_env(dir, ARGS(env), ARGS("eval", "sin(x)*y", "--at", "x=1,y=2", "--no-cache"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = run_env(dir, ARGS(env, "CC=false"), ARGS("eval", "sin(x)*y", "--at", "x=1,y=2", "--no-cache"));
    cr_expect_eq(r.status, 1);
    run_free(&r);
    cr_expect_eq(shell("test -z \"$(ls -A '%s')\"", tmp), 0, "left behind in %s", tmp);
    free(tmp);
    cleanup(dir);
}

/* One file's functions go into one .c: their C names must not collide. */
Test(cli, emit_refuses_clashing_function_names)
{
    char *dir = tmpdir();
    char *g = path(dir, "clash.grad");
    FILE *f = fopen(g, "w");
    fputs("f_grad(x) = x\nf(x) = x*2\n", f);
    fclose(f);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:2:1: error: functions 'f_grad' and 'f' would both define the C name 'f_grad'; emit "
             "them one at a time (FILE:FUNC) with different --prefix, or rename one\n"
             "    2 | f(x) = x*2\n"
             "      | ^\n", g);
    expect_failure(dir, ARGS("emit", g), want);
    /* One at a time, with different prefixes, they link together. */
    char *c1 = path(dir, "a.c"), *c2 = path(dir, "b.c");
    char spec[600];
    snprintf(spec, sizeof spec, "%s:f", g);
    Run r = run(dir, ARGS("emit", spec, "--prefix", "a_", "-o", c1));
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    snprintf(spec, sizeof spec, "%s:f_grad", g);
    r = run(dir, ARGS("emit", spec, "--prefix", "b_", "-o", c2));
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c a.c b.c 2>&1", dir), 0);
    free(c1);
    free(c2);
    free(g);
    cleanup(dir);
}

/* The generated file includes <math.h>: its names are not free. */
Test(cli, names_from_math_h_are_refused_but_a_prefix_helps)
{
    char *dir = tmpdir();
    static const char *const bad[] = {"floor", "isnan", "sinf", "cbrt", "j0", "M_PI", "__x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[512];
        snprintf(want, sizeof want,
                 "gradc: error: '%s' cannot be the name of a C function (it is not an identifier, or "
                 "it is a C keyword or a name the generated code uses); choose another with --name "
                 "or --prefix\n", bad[i]);
        expect_failure(dir, ARGS("emit", "-e", "x*2", "--name", bad[i]), want);
    }
    char *g = path(dir, "floor.grad"), *c = path(dir, "floor.c");
    FILE *f = fopen(g, "w");
    fputs("floor(x) = x * 2\n", f);
    fclose(f);
    Run r = run(dir, ARGS("emit", g, "-o", c));
    cr_expect_eq(r.status, 1);
    run_free(&r);
    r = run(dir, ARGS("emit", g, "--prefix", "my_", "-o", c));
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c floor.c 2>&1", dir), 0);
    free(g);
    free(c);
    cleanup(dir);
}

/* A function of a file: FILE:FUNC, or FILE with --func (also for explain). */
Test(cli, eval_a_function_of_a_file)
{
    char *dir = tmpdir();
    char *file = path(dir, "fg.grad");
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs("f(x, y, z) = (x + y) * z\ng(x) = x^2\n", f);
    fclose(f);
    char spec[4200];
    snprintf(spec, sizeof spec, "%s:g", file);
    expect_output(dir, ARGS("eval", spec, "--at", "x=3", "--grad", "--json"),
                  "{\"value\": 9, \"grad\": {\"x\": 6}}\n");
    expect_output(dir, ARGS("eval", file, "--func", "g", "--at", "x=3", "--grad", "--json"),
                  "{\"value\": 9, \"grad\": {\"x\": 6}}\n");
    Run r = run(dir, ARGS("explain", file, "--func", "f", "--at", "x=-2,y=5,z=-4"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "df/dz = 3"), "%s", r.out);
    run_free(&r);
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/none.grad", dir);
    r = run(dir, ARGS("eval", missing, "--func", "g", "--at", "x=3"));
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "cannot read"), "%s", r.err);
    run_free(&r);
    free(file);
    cleanup(dir);
}

/* ---- --wrt: the gradient by some inputs ---- */

Test(cli, eval_wrt_lists_only_the_chosen_inputs)
{
    char *dir = tmpdir();
    /* d/dx (x*y + sin z) = y = 3, d/dz = cos 0 = 1 */
    expect_output(dir, ARGS("eval", "x*y + sin(z)", "--at", "x=2,y=3,z=0", "--grad",
                            "--wrt", "z,x", "--json"),
                  "{\"value\": 6, \"grad\": {\"x\": 3, \"z\": 1}}\n");
    expect_output(dir, ARGS("eval", "x*y + sin(z)", "--at", "x=2,y=3,z=0", "--grad",
                            "--wrt", "y"),
                  "value  6\nd/dy   2\n");
    expect_output(dir, ARGS("eval", "x*y + sin(z)", "--at", "x=2,y=3,z=0", "--grad",
                            "--wrt", "y", "--engine", "interp", "--json"),
                  "{\"value\": 6, \"grad\": {\"y\": 2}}\n");
    /* softmax([a, b]) by b: d/db of (e^a, e^b)/(e^a + e^b) at a = b = 0 is (-1/4, 1/4) */
    expect_output(dir, ARGS("eval", "softmax([a, b])", "--at", "a=0,b=0", "--jacobian",
                            "--wrt", "b", "--json"),
                  "{\"value\": [0.5, 0.5], \"jacobian\": {\"b\": [[-0.25], [0.25]]}}\n");
    cleanup(dir);
}

Test(cli, wrt_errors)
{
    char *dir = tmpdir();
    expect_failure(dir, ARGS("eval", "x*yy", "--at", "x=1,yy=2", "--grad", "--wrt", "x,y"),
                   "<wrt>:1:3: error: 'y' is not an input of f (its inputs: x, yy)\n"
                   "    1 | x,y\n"
                   "      |   ^\n"
                   "<wrt>:1:3: note: did you mean 'yy'?\n"
                   "    1 | x,y\n"
                   "      |   ^\n");
    expect_failure(dir, ARGS("emit", "-e", "x*y", "--wrt", "y,y"),
                   "<wrt>:1:3: error: 'y' is listed twice\n"
                   "    1 | y,y\n"
                   "      |   ^\n");
    expect_failure(dir, ARGS("emit", "-e", "x*y", "--wrt", ""),
                   "<wrt>:1:1: error: expected input names, e.g. x,p\n");
    expect_failure(dir, ARGS("emit", "-e", "x*y", "--wrt"),
                   "gradc: error: --wrt needs a value\n"
                   "gradc: note: see 'gradc emit --help'\n");
    expect_failure(dir, ARGS("eval", "x", "--at", "x=1", "--wrt"),
                   "gradc: error: --wrt needs input names, e.g. --wrt x,p\n"
                   "gradc: note: see 'gradc eval --help'\n");
    char *file = path(dir, "two.grad");
    FILE *f = fopen(file, "w");
    fputs("f(x, y) = x*y\ng(x) = x^2\nnetwork n(x[2]) { dense(2, relu) }\n", f);
    fclose(f);
    char msg[1024];
    snprintf(msg, sizeof msg, "gradc: error: --wrt names inputs of one function, but %s defines 3; "
             "choose one with %s:NAME or --func NAME\n", file, file);
    expect_failure(dir, ARGS("emit", file, "--wrt", "x"), msg);
    expect_failure(dir, ARGS("emit", file, "--func", "n", "--freeze", "--wrt", "params"),
                   "gradc: error: --wrt params: with --freeze the parameters of n are constants, not inputs\n");
    expect_failure(dir, ARGS("eval", file, "--func", "n", "--at", "x=[1,2]", "--grad", "--wrt", "params"),
                   "gradc: error: --wrt params: gradc eval prints derivatives by the inputs of n, "
                   "not by its parameters (gradc emit --wrt gives those)\n");
    free(file);
    cleanup(dir);
}

/* The header says what grad holds; the code compiles without warnings
 * (also a network by its input only, whose grad_params is then unused). */
Test(cli, emit_wrt_header_and_warning_free_code)
{
    char *dir = tmpdir();
    char *c = path(dir, "f.c"), *h = path(dir, "f.h"), *file = path(dir, "n.grad");
    FILE *f = fopen(file, "w");
    fputs("network mlp(x[2]) { dense(3, relu) dense(2, softmax) }\n", f);
    fclose(f);
    Run r = run(dir, ARGS("emit", "-e", "x*y + z", "--wrt", "z,x", "-o", c, "--header", h));
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *hdr = slurp(h);
    cr_expect(strstr(hdr, " * grad[2]: x at 0, z at 1 (--wrt: the gradient by these inputs only)\n"), "%s", hdr);
    cr_expect(strstr(hdr, "#define F_GRAD_SIZE 2 "), "%s", hdr);
    cr_expect(strstr(hdr, "#define F_NUM_INPUTS 3 "), "%s", hdr);
    cr_expect(strstr(hdr, "double f_grad(const double *in, double *grad);"), "%s", hdr);
    free(hdr);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c f.c -o f.o 2>&1", dir), 0);
    /* Called as documented: grad[0] = d/dx = y, grad[1] = d/dz = 1. */
    cr_expect_eq(shell("cd '%s' && printf '#include \"f.h\"\\nint main(void){double in[3]={2,5,7},g[F_GRAD_SIZE];"
                       "double v=f_grad(in,g);return !(v==17&&g[0]==5&&g[1]==1);}\\n' > m.c && "
                       "cc " CFLAGS " m.c f.o -o m -lm && ./m", dir), 0);
    r = run(dir, ARGS("emit", file, "--wrt", "x", "-o", c));
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *src = slurp(c);
    cr_expect(strstr(src, "(void)grad_params;"), "%s", src);
    free(src);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c f.c -o f.o 2>&1", dir), 0);
    free(c);
    free(h);
    free(file);
    cleanup(dir);
}

/* --max-block cuts a long body into static parts; the file still compiles
 * without warnings, --report describes the parts on standard error, and
 * the header states the scratch (tests/test_split.c checks the numbers). */
Test(cli, emit_max_block_and_report)
{
    char *dir = tmpdir();
    char *c = path(dir, "long.c"), *h = path(dir, "long.h");
    const char *expr = "sin(x)*y + cos(y)*x + exp(x*y) + x^2*y^3 + tanh(x - y) + log(1 + x*x)";
    Run r = run(dir, ARGS("emit", "-e", expr, "--name", "lng", "--max-block", "4", "--report",
                          "-o", c, "--header", h));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "");
    cr_expect(strstr(r.err, "lng: 1"), "%s", r.err);
    cr_expect(strstr(r.err, "parts (max-block 4), scratch w["), "%s", r.err);
    cr_expect(strstr(r.err, "  lng__g0: "), "%s", r.err);
    char *src = slurp(c), *hdr = slurp(h);
    cr_expect(strstr(src, "GRADC_NOINLINE static void lng__g0("), "%s", src);
    cr_expect(strstr(hdr, "#define LNG_SCRATCH_SIZE "), "%s", hdr);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c long.c -o long.o 2>&1", dir), 0);
    free(src);
    free(hdr);
    run_free(&r);
    r = run(dir, ARGS("emit", "-e", expr, "--max-block", "0"));
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "gradc: error: --max-block needs a positive number\n"), "%s", r.err);
    run_free(&r);
    free(c);
    free(h);
    cleanup(dir);
}

/* Parts that repeat (a sum written out term by term) are one function
 * called in a loop, which --report names, and the file compiles without
 * warnings; --no-fold keeps one function per part. */
Test(cli, emit_folds_repeating_parts)
{
    char *dir = tmpdir();
    char *g = path(dir, "terms.grad"), *c = path(dir, "terms.c");
    FILE *f = fopen(g, "w");
    fputs("rosen(x0", f);
    for (int i = 1; i < 40; i++)
        fprintf(f, ", x%d", i);
    fputs(") = 0", f);
    for (int i = 0; i + 1 < 40; i++)
        fprintf(f, " + (100*(x%d - x%d^2)^2 + (1 - x%d)^2)", i + 1, i, i);
    fputs("\n", f);
    fclose(f);
    Run r = run(dir, ARGS("emit", g, "--max-block", "50", "--report", "-o", c));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "are one function called in a loop (in + "), "%s", r.err);
    cr_expect(strstr(r.err, " times\n"), "%s", r.err);
    char *src = slurp(c);
    cr_expect(strstr(src, "    for (long i = 0; i < "), "%s", src);
    cr_expect_eq(shell("cd '%s' && cc " CFLAGS " -c terms.c -o terms.o 2>&1", dir), 0);
    free(src);
    run_free(&r);
    r = run(dir, ARGS("emit", g, "--max-block", "50", "--report", "--no-fold", "-o", c));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(!strstr(r.err, "loop"), "%s", r.err);
    src = slurp(c);
    cr_expect(!strstr(src, "for (long i"), "%s", src);
    free(src);
    run_free(&r);
    free(g);
    free(c);
    cleanup(dir);
}

/* ---- second order and forward mode: --hessian, --tangent, --entry ---- */

Test(cli, eval_hessian_and_tangent)
{
    char *dir = tmpdir();
    /* x^2 y: H = [[2y, 2x], [2x, 0]]; grad (2xy, x^2) = (12, 9) at (3, 2) */
    expect_output(dir, ARGS("eval", "x*x*y", "--at", "x=3,y=2", "--hessian", "--json"),
                  "{\"value\": 18, \"hessian\": {\"x\": {\"x\": 4, \"y\": 6}, \"y\": {\"x\": 6, \"y\": 0}}}\n");
    expect_output(dir, ARGS("eval", "x*x*y", "--at", "x=3,y=2", "--hessian", "--json",
                            "--engine", "interp"),
                  "{\"value\": 18, \"hessian\": {\"x\": {\"x\": 4, \"y\": 6}, \"y\": {\"x\": 6, \"y\": 0}}}\n");
    /* J v = 12 * 1 + 9 * 0.5 */
    expect_output(dir, ARGS("eval", "x*x*y", "--at", "x=3,y=2", "--tangent", "x=1,y=0.5", "--json"),
                  "{\"value\": 18, \"jvp\": 16.5}\n");
    expect_output(dir, ARGS("eval", "x*x*y", "--at", "x=3,y=2", "--grad", "--tangent", "y=1",
                            "--hessian", "--wrt", "y"),
                  "value  18\nd/dy   9\njvp    9\nd2/dy dy  0\n");
    /* w sum(v^2): H_vv = 2w I, H_vw = 2v (a column), H_ww = 0 */
    expect_output(dir, ARGS("eval", "sum(v * v) * w", "--at", "v=[1,2],w=3", "--hessian", "--json"),
                  "{\"value\": 15, \"hessian\": {\"v\": {\"v\": [[6, 0], [0, 6]], \"w\": [[2], [4]]}, "
                  "\"w\": {\"v\": [[2, 4]], \"w\": 0}}}\n");
    /* softmax([a, b]) along a at a = b = 0: (1/4, -1/4) */
    expect_output(dir, ARGS("eval", "softmax([a, b])", "--at", "a=0,b=0", "--tangent", "a=1", "--json"),
                  "{\"value\": [0.5, 0.5], \"jvp\": [0.25, -0.25]}\n");
    cleanup(dir);
}

Test(cli, second_order_errors)
{
    char *dir = tmpdir();
    expect_failure(dir, ARGS("eval", "softmax([a, b])", "--at", "a=0,b=0", "--hessian"),
                   "gradc: error: f: Hessians and Hessian-vector products need a scalar value\n");
    expect_failure(dir, ARGS("eval", "x*y", "--at", "x=1,y=2", "--tangent", "q=1"),
                   "<tangent>:1:1: error: 'q' is not an input of f that a direction can move\n"
                   "    1 | q=1\n      | ^\n");
    expect_failure(dir, ARGS("emit", "-e", "x", "--entry", "value,foo"),
                   "gradc: error: unknown entry point 'foo' in --entry (value, grad, jvp, hvp, hess)\n"
                   "gradc: note: see 'gradc emit --help'\n");
    expect_failure(dir, ARGS("emit", "-e", "x", "--dense-hessian"),
                   "gradc: error: --dense-hessian needs the hess entry point (--entry ...,hess)\n"
                   "gradc: note: see 'gradc emit --help'\n");
    cleanup(dir);
}

/* gradc emit --entry: only the chosen functions, a header with the
 * pattern, C that compiles cleanly and gives the Hessian of chained
 * Rosenbrock (worked out by hand in the program below). */
Test(cli, emit_entries_compile_and_run)
{
    char *dir = tmpdir();
    char *src = path(dir, "r.grad"), *c = path(dir, "r.c"), *h = path(dir, "r.h");
    char *mainc = path(dir, "main.c"), *exe = path(dir, "main");
    FILE *f = fopen(src, "w");
    fputs("rosen(x[6]) = sum(i = 0 .. 4, 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2)\n", f);
    fclose(f);
    Run r = run(dir, ARGS("emit", src, "--entry", "hess,hvp,jvp", "-o", c, "--header", h));
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *code = slurp(c), *hdr = slurp(h);
    cr_expect(strstr(hdr, "#define ROSEN_HESS_NNZ 11 "), "%s", hdr);
    cr_expect(strstr(hdr, "#define ROSEN_HESS_N 6 "), "%s", hdr);
    cr_expect(strstr(hdr, "double rosen_hess(const double *in, double *grad, double *H);"));
    cr_expect(strstr(hdr, "double rosen_hvp(const double *in, const double *v, double *out);"));
    cr_expect(strstr(hdr, "double rosen_jvp(const double *in, const double *v, double *out);"));
    cr_expect(!strstr(code, "rosen_grad(") && !strstr(code, "double rosen(const"), "%s", code);
    free(code);
    free(hdr);
    f = fopen(mainc, "w");
    fputs("#include <math.h>\n#include <stdio.h>\n#include \"r.h\"\n"
          "int main(void)\n{\n"
          "    double x[6] = {0.5, -1, 1.5, 0.25, -0.75, 2}, g[6], H[ROSEN_HESS_NNZ], v[6] = {1, 0, 0, 0, 0, 0}, hv[6];\n"
          "    double want[6][6] = {{0}};\n"
          "    for (int i = 0; i < 5; i++) {\n"
          "        want[i][i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2;\n"
          "        want[i + 1][i + 1] += 200;\n"
          "        want[i + 1][i] = want[i][i + 1] = -400 * x[i];\n    }\n"
          "    rosen_hess(x, g, H);\n    int bad = 0;\n"
          "    for (int j = 0; j < ROSEN_HESS_N; j++)\n"
          "        for (int q = rosen_hess_colptr[j]; q < rosen_hess_colptr[j + 1]; q++)\n"
          "            bad += fabs(H[q] - want[rosen_hess_rowind[q]][j]) > 1e-12;\n"
          "    rosen_hvp(x, v, hv);\n"
          "    for (int i = 0; i < 6; i++)\n        bad += fabs(hv[i] - want[i][0]) > 1e-12;\n"
          "    double jv, val = rosen_jvp(x, v, &jv);\n"
          "    bad += fabs(jv - g[0]) > 1e-12 || val <= 0;\n"
          "    printf(\"%d\\n\", bad);\n    return bad;\n}\n", f);
    fclose(f);
    cr_assert_eq(shell("cd '%s' && cc -std=c99 -Wall -Wextra -pedantic -Werror -o '%s' main.c r.c -lm && '%s'",
                       dir, exe, exe), 0);
    free(src);
    free(c);
    free(h);
    free(mainc);
    free(exe);
    cleanup(dir);
}

/* A function named like the parts of another (f__g0 beside f) is refused
 * in one file: the parts are static functions f__v0, f__g0, …. */
Test(cli, emit_refuses_names_of_parts)
{
    char *dir = tmpdir();
    char *g = path(dir, "parts.grad");
    FILE *f = fopen(g, "w");
    fputs("f(x) = x^2\nf__g0(x) = x^3\n", f);
    fclose(f);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:2:1: error: the C name 'f__g0' could clash with the parts of 'f' (static "
             "functions named f__…); emit them one at a time (FILE:FUNC), or rename one\n"
             "    2 | f__g0(x) = x^3\n"
             "      | ^~~~~\n", g);
    expect_failure(dir, ARGS("emit", g), want);
    free(g);
    cleanup(dir);
}

/* test_numerics.c — the numerical edge cases of docs/robustness.md, value
 * and gradient, in the generated code (JIT) and in the reference
 * interpreter: both must print exactly the expected JSON. The expected
 * values follow from IEEE arithmetic and the derivative rules of
 * docs/language.md (written by hand, not taken from gradc). */
#include <criterion/criterion.h>

#include "support.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static Run run(const char *dir, const char *const *args)
{
    char outp[512], errp[512], cache[512];
    snprintf(outp, sizeof outp, "%s/stdout", dir);
    snprintf(errp, sizeof errp, "%s/stderr", dir);
    snprintf(cache, sizeof cache, "%s/cache.sqlite", dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        setenv("GRADC_CACHE", cache, 1);
        const char *argv[32] = {GRADC_BIN};
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
    return r;
}

typedef struct Case {
    const char *expr, *at, *mode;       /* mode: --grad or --jacobian */
    const char *json;
} Case;

static const Case cases[] = {
    /* softmax subtracts the maximum: exp(-1000) and exp(-2000) underflow
     * to 0, never exp(1000) = inf. J = diag(s) - s s^T: J[0][1] is
     * -(1 * 0) = -0. */
    {"softmax(x)", "x=[1000,0,-1000]", "--jacobian",
     "{\"value\": [1, 0, 0], \"jacobian\": {\"x\": [[0, -0, -0], [0, 0, 0], [0, 0, 0]]}}\n"},
    {"log(sum(exp(x)))", "x=[1000,0,-1000]", "--grad",      /* rewritten to logsumexp */
     "{\"value\": 1000, \"grad\": {\"x\": [1, 0, 0]}}\n"},
    /* sigmoid is computed stably; s(1 - s) is 0 at both ends. */
    {"sigmoid(x)", "x=800", "--grad", "{\"value\": 1, \"grad\": {\"x\": 0}}\n"},
    {"sigmoid(x)", "x=-800", "--grad", "{\"value\": 0, \"grad\": {\"x\": 0}}\n"},
    {"1/(1+exp(-x))", "x=-800", "--grad", "{\"value\": 0, \"grad\": {\"x\": 0}}\n"},
    /* log(0) = -inf, d/dx = 1/0 = +inf. */
    {"log(x)", "x=0", "--grad", "{\"value\": \"-Infinity\", \"grad\": {\"x\": \"Infinity\"}}\n"},
    {"log(x)", "x=-1", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": -1}}\n"},
    /* sqrt(0) = 0, d/dx = 1/(2 sqrt(0)) = +inf. */
    {"sqrt(x)", "x=0", "--grad", "{\"value\": 0, \"grad\": {\"x\": \"Infinity\"}}\n"},
    /* x^2 is x*x: exact for a negative base, d/dx = 2x. */
    {"x^2", "x=-3", "--grad", "{\"value\": 9, \"grad\": {\"x\": -6}}\n"},
    /* A variable exponent: pow(-3, 2) = 9, d/dx = y x^(y-1) = -6,
     * d/dy = x^y log(x) = 9 log(-3) = NaN. */
    {"x^y", "x=-3,y=2", "--grad", "{\"value\": 9, \"grad\": {\"x\": -6, \"y\": \"NaN\"}}\n"},
    /* A negative base to a fractional power is not real: NaN throughout. */
    {"x^y", "x=-8,y=0.5", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": \"NaN\", \"y\": \"NaN\"}}\n"},
    /* Division by zero: 1/0 = inf, d/dx (1/x) = -1/x^2 = -inf; 0/0 = NaN. */
    {"1/x", "x=0", "--grad", "{\"value\": \"Infinity\", \"grad\": {\"x\": \"-Infinity\"}}\n"},
    {"x/y", "x=0,y=0", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": \"Infinity\", \"y\": \"NaN\"}}\n"},
    /* NaN and infinities in the inputs propagate. */
    {"exp(x) + y", "x=nan,y=1", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": \"NaN\", \"y\": 1}}\n"},
    {"exp(x)", "x=inf", "--grad", "{\"value\": \"Infinity\", \"grad\": {\"x\": \"Infinity\"}}\n"},
    {"exp(x)", "x=-inf", "--grad", "{\"value\": 0, \"grad\": {\"x\": 0}}\n"},
    {"x*y", "x=inf,y=0", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": 0, \"y\": \"Infinity\"}}\n"},
    /* The derivatives of relu, abs, max and min are comparisons (x > 0,
     * a >= b), false for NaN: the value is NaN, the gradient 0, or all
     * of it to the other argument (docs/robustness.md). */
    {"relu(x)", "x=nan", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": 0}}\n"},
    {"abs(x)", "x=nan", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": 0}}\n"},
    {"max(x, y)", "x=nan,y=1", "--grad", "{\"value\": \"NaN\", \"grad\": {\"x\": 0, \"y\": 1}}\n"},
    /* The kinks (docs/language.md): relu'(0) = abs'(0) = 0; max and min
     * at a tie send the whole gradient to the first argument. */
    {"relu(x)", "x=0", "--grad", "{\"value\": 0, \"grad\": {\"x\": 0}}\n"},
    {"abs(x)", "x=0", "--grad", "{\"value\": 0, \"grad\": {\"x\": 0}}\n"},
    {"max(x, y)", "x=2,y=2", "--grad", "{\"value\": 2, \"grad\": {\"x\": 1, \"y\": 0}}\n"},
    {"min(x, y)", "x=2,y=2", "--grad", "{\"value\": 2, \"grad\": {\"x\": 1, \"y\": 0}}\n"},
    {"step(x)", "x=0", "--grad", "{\"value\": 0, \"grad\": {\"x\": 0}}\n"},
};

Test(numerics, edge_cases_agree_in_generated_code_and_interpreter)
{
    char dir[] = "/tmp/gradc-num-XXXXXX";
    cr_assert(mkdtemp(dir));
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const Case *c = &cases[i];
        for (int interp = 0; interp < 2; interp++) {
            const char *args[] = {"eval", c->expr, "--at", c->at, c->mode, "--json",
                                  "--engine", interp ? "interp" : "jit", NULL};
            Run r = run(dir, args);
            cr_expect_eq(r.status, 0, "%s at %s: status %d: %s", c->expr, c->at, r.status, r.err);
            cr_expect_str_eq(r.out, c->json, "%s at %s (%s)", c->expr, c->at, interp ? "interp" : "jit");
            run_free(&r);
        }
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* `gradc check` says plainly when a value is NaN or infinite. */
Test(numerics, check_reports_nan_and_infinity_plainly)
{
    char dir[] = "/tmp/gradc-numc-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/n.grad", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("f(x) = log(x)\n"
          "check f(0/0) == 1\n"
          "check f(0) == -inf\n"
          "check f(0) == 0\n"
          "check grad f(0) == inf\n"
          "check f(-1) == nan\n", f);
    fclose(f);
    const char *args[] = {"check", path, NULL};
    Run r = run(dir, args);
    cr_expect_eq(r.status, 1, "%s", r.err);
    char want[2048];
    snprintf(want, sizeof want,
             "FAIL %s:2: f(0/0) == 1: expected 1, got nan (tolerance 0.0001)\n"
             "PASS %s:3: f(0) == -inf\n"
             "FAIL %s:4: f(0) == 0: expected 0, got -inf (tolerance 0.0001)\n"
             "PASS %s:5: grad f(0) == inf\n"
             "PASS %s:6: f(-1) == nan\n"
             "3 passed, 2 failed\n", path, path, path, path, path);
    cr_expect_str_eq(r.out, want);
    run_free(&r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

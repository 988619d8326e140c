/* test_fuzz_regressions.c — every input of the fuzzers' seed corpora and
 * every input that once broke the compiler (tests/fuzz/regressions/) goes
 * through the fuzzers' in-process pipelines (tests/fuzz/pipeline.c): parse
 * in both modes, kernel, C, header, interpreter; the checks of a problem
 * file; the --at value parser. Under ASan/UBSan (the
 * GRADC_FUZZ build, or CMAKE_C_FLAGS) this also catches the memory bugs. */
#include <criterion/criterion.h>

#include "fuzz/pipeline.h"
#include "gradc.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    Buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.data ? b.data : xstrdup("");
}

/* Runs every regular file of the directory; returns how many. */
static int run_dir(const char *sub)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", GRADC_SOURCE_DIR, sub);
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192], why[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *text = slurp(path, &len);
        /* Every file through every pipeline: each takes any bytes. */
        int rc = fuzz_pipeline(text, len, why, sizeof why);
        cr_expect_eq(rc, 0, "%s: %s", e->d_name, why);
        rc = fuzz_check_pipeline(text, len, why, sizeof why);
        cr_expect_eq(rc, 0, "%s (check): %s", e->d_name, why);
        rc = fuzz_at_pipeline(text, len, why, sizeof why);
        cr_expect_eq(rc, 0, "%s (at): %s", e->d_name, why);
        free(text);
        count++;
    }
    closedir(d);
    return count;
}

Test(fuzz, corpus_goes_through_the_pipeline)
{
    cr_expect_geq(run_dir("corpus"), 30);
}

Test(fuzz, regressions_go_through_the_pipeline)
{
    cr_expect_geq(run_dir("regressions"), 1);
}

Test(fuzz, check_corpus_goes_through_the_pipelines)
{
    cr_expect_geq(run_dir("corpus-check"), 10);
}

Test(fuzz, at_corpus_goes_through_the_pipelines)
{
    cr_expect_geq(run_dir("corpus-at"), 20);
}

/* The first error of parsing text in file mode ("" when it parses). */
static void first_error(const char *text, char *out, size_t n)
{
    Source src = {"t.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 0, &d);
    const char *s = d.out.data ? d.out.data : "";
    size_t len = strcspn(s, "\n");
    snprintf(out, n, "%.*s", (int)len, s);
    program_free(p);
    diag_free(&d);
}

/* The limits of docs/testing.md: 2^24 elements, 2^20 range terms. */
Test(fuzz, huge_sizes_are_errors_with_locations)
{
    char e[512];
    first_error("f(x[100000000]) = sum(x)\n", e, sizeof e);
    cr_expect_str_eq(e, "t.grad:1:5: error: the shape [100000000] has more than 16777216 elements");
    first_error("f(A[10000, 10000]) = sum(A)\n", e, sizeof e);
    cr_expect_str_eq(e, "t.grad:1:5: error: the shape [10000,10000] has more than 16777216 elements");
    first_error("f(x[16777216]) = sum(x)\n", e, sizeof e);
    cr_expect_str_eq(e, "");
    first_error("f(x) = sum(i = 0 .. 100000000, x*i)\n", e, sizeof e);
    cr_expect_str_eq(e, "t.grad:1:21: error: the range 0 .. 100000000 has more than 1048576 terms");
    first_error("network n(x[10000]) { dense(10000, relu) }\n", e, sizeof e);
    cr_expect_str_eq(e, "t.grad:1:29: error: a layer of 10000 units on 10000 inputs has more than 16777216 weights");
    first_error("network n(x[4000]) {\n  dense(4000, relu)\n  dense(4000, linear)\n}\n", e, sizeof e);
    cr_expect_str_eq(e, "t.grad:1:9: error: network 'n' has more than 16777216 parameters");
}

/* The gradient of sum(x) is 1 everywhere: for a large x it stays a
 * broadcast, not a table of 2^20 ones in the generated C. */
Test(fuzz, large_constant_gradients_are_not_tables)
{
    const char *text = "f(x[1048576]) = sum(x)\n";
    Source src = {"t.grad", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, 0, &d);
    cr_assert(p);
    Kernel *k = opt_kernel(p, p->func[0], 1);
    Buf c = {0};
    cr_assert_eq(emit_c_source(k, &(EmitOptions){0}, &c, &d), 0);
    cr_expect_lt(c.len, 20000, "%zu bytes of C", c.len);
    double *in = xmalloc(1048576 * sizeof *in), *out = xmalloc((1 + 1048576) * sizeof *out);
    for (uint32_t i = 0; i < 1048576; i++)
        in[i] = i % 3;
    NodeId roots[2] = {k->value, k->grad[0]};
    interp_eval(k->g, k->input, in, 1, roots, 2, out);
    /* sum of 0,1,2,0,1,2,...: 349525 full cycles of 3 and a last 0. */
    cr_expect_eq(out[0], 349525.0 * 3);
    cr_expect_eq(out[1], 1.0);
    cr_expect_eq(out[1048576], 1.0);
    free(in);
    free(out);
    buf_free(&c);
    kernel_free(k);
    program_free(p);
    diag_free(&d);
}

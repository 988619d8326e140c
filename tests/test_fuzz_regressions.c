/* test_fuzz_regressions.c — every input of the fuzzer's seed corpus and
 * every input that once broke the compiler (tests/fuzz/regressions/) goes
 * through the fuzzer's in-process pipeline (tests/fuzz/pipeline.c): parse
 * in both modes, kernel, C, header, interpreter. Under ASan/UBSan (the
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
        int rc = fuzz_pipeline(text, len, why, sizeof why);
        cr_expect_eq(rc, 0, "%s: %s", e->d_name, why);
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

/* support.c — helpers shared by the tests: running the gradc binary,
 * emitting and loading C. */
#include "support.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gradc.h"
#include "gradc_runtime.h"

char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    Buf b = {0};
    buf_puts(&b, "");
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            buf_put(&b, chunk, n);
        fclose(f);
    }
    return b.data;
}

void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

/* The directories support_tmpdir made in this process: each test runs in
 * a process of its own, which removes them when it exits, failed
 * assertion or not. */
static char **tmpdirs;
static int ntmpdirs;

static void remove_tmpdirs(void)
{
    for (int i = 0; i < ntmpdirs; i++)
        if (support_shell(NULL, "rm -rf '%s'", tmpdirs[i]) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdirs[i]);
}

char *support_tmpdir(const char *tag)
{
    char *d = malloc(strlen(tag) + 32);
    sprintf(d, "/tmp/gradc-test-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(d), "mkdtemp %s", d);
    if (ntmpdirs == 0)
        atexit(remove_tmpdirs);
    tmpdirs = realloc(tmpdirs, (size_t)(ntmpdirs + 1) * sizeof *tmpdirs);
    cr_assert_not_null(tmpdirs);
    tmpdirs[ntmpdirs++] = strdup(d);
    return d;
}

char *support_emit(const Kernel *k, const EmitOptions *o, int header)
{
    Buf out = {0};
    Diag d;
    diag_init(&d);
    int rc = header ? emit_c_header(k, o, &out, &d) : emit_c_source(k, o, &out, &d);
    cr_assert_eq(rc, 0, "%s", d.out.data ? d.out.data : "");
    diag_free(&d);
    return out.data;
}

gradc_so *support_load(const char *src)
{
    gradc_options opt = {.no_cache = 1};
    char *err = NULL;
    gradc_so *so = gradc_so_compile(src, &opt, &err);
    cr_assert_not_null(so, "%s", err ? err : "");
    return so;
}

int support_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
        n++;
    return n;
}

int support_shell(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    Buf b = {0};
    buf_puts(&b, "");
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        buf_put(&b, chunk, n);
    int st = pclose(p);
    if (out)
        *out = b.data;
    else
        free(b.data);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* test_diagnostics.c — the malformed inputs of tests/diagnostics/ through
 * the real gradc binary. Each case is NAME.grad (or NAME.gen, a recipe for
 * inputs too big or too binary to commit) and NAME.expected: its first
 * line "$ gradc ARGS" is the command (FILE stands for the input, run from
 * a fresh directory as NAME.grad), the rest is exactly what gradc must
 * print on stderr. Every case must exit with status 1 (not a signal, not
 * a sanitizer's exit code) and print nothing on stdout. */
#include <criterion/criterion.h>

#include "support.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIR_ GRADC_SOURCE_DIR "/tests/diagnostics"

/* A byte buffer that may hold NULs. */
typedef struct Bytes {
    char *p;
    size_t n, cap;
} Bytes;

static void put(Bytes *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* C escapes of a recipe line: \n \t \0 \\ \xHH. */
static size_t unescape(const char *s, char *out)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            out[n++] = *s;
            continue;
        }
        s++;
        if (*s == 'n')
            out[n++] = '\n';
        else if (*s == 't')
            out[n++] = '\t';
        else if (*s == '0')
            out[n++] = 0;
        else if (*s == 'x' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            s += 2;
        } else
            out[n++] = *s;
    }
    return n;
}

/* A .gen recipe: each line is a piece of the input, "*N TEXT" is TEXT
 * N times, "#" starts a comment; no newline is added between pieces. */
static Bytes generate(const char *recipe)
{
    Bytes b = {0};
    char *text = slurp(recipe), *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        long times = 1;
        if (line[0] == '*') {
            char *end;
            times = strtol(line + 1, &end, 10);
            line = *end == ' ' ? end + 1 : end;
        }
        char piece[4096];
        size_t n = unescape(line, piece);
        for (long i = 0; i < times; i++)
            put(&b, piece, n);
    }
    free(text);
    return b;
}

/* "eval FILE:f --at 'x=1, y=2'": words split at blanks, '...' quotes. */
static int split(char *s, const char *file, char **argv, int max)
{
    int n = 0;
    while (*s && n < max - 1) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        char word[4096];
        size_t w = 0;
        while (*s && *s != ' ' && w < sizeof word - 256) {
            if (*s == '\'') {
                for (s++; *s && *s != '\''; s++)
                    word[w++] = *s;
                if (*s)
                    s++;
            } else if (!strncmp(s, "FILE", 4)) {
                w += (size_t)sprintf(word + w, "%s", file);
                s += 4;
            } else
                word[w++] = *s++;
        }
        word[w] = 0;
        argv[n++] = strdup(word);
    }
    argv[n] = NULL;
    return n;
}

static char *replace_file(const char *s, const char *file)
{
    Bytes b = {0};
    for (; *s; s++) {
        if (!strncmp(s, "FILE", 4)) {
            put(&b, file, strlen(file));
            s += 3;
        } else
            put(&b, s, 1);
    }
    put(&b, "", 1);
    return b.p;
}

/* Runs one case; returns 1 when it passed (failures are reported). */
static int run_case(const char *name, const char *input, const char *tmp)
{
    char path[4096], file[512];
    snprintf(file, sizeof file, "%s.grad", name);
    snprintf(path, sizeof path, "%s/%s", tmp, file);
    Bytes in = {0};
    if (strstr(input, ".gen"))
        in = generate(input);
    else {
        FILE *f = fopen(input, "rb");
        cr_assert(f);
        char chunk[65536];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
            put(&in, chunk, k);
        fclose(f);
    }
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    if (in.n)
        fwrite(in.p, 1, in.n, f);
    fclose(f);
    free(in.p);

    char exp_path[4096];
    snprintf(exp_path, sizeof exp_path, "%s/%s.expected", DIR_, name);
    char *exp = slurp(exp_path);
    char *nl = strchr(exp, '\n');
    cr_assert(!strncmp(exp, "$ gradc ", 8) && nl, "%s.expected: no '$ gradc ...' line", name);
    *nl = 0;
    char *argv[64] = {GRADC_BIN};
    int argc = 1 + split(exp + 8, file, argv + 1, 62);
    char *want = replace_file(nl + 1, file);

    char outp[4200], errp[4200];
    snprintf(outp, sizeof outp, "%s/stdout", tmp);
    snprintf(errp, sizeof errp, "%s/stderr", tmp);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (chdir(tmp) != 0)
            _exit(126);
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        setenv("GRADC_CACHE", "cache.sqlite", 1);
        execv(GRADC_BIN, argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    char *out = slurp(outp), *err = slurp(errp);
    int ok = 1;
    if (WIFSIGNALED(st)) {
        cr_expect(0, "%s: killed by signal %d", name, WTERMSIG(st));
        ok = 0;
    } else if (WEXITSTATUS(st) != 1) {
        cr_expect(0, "%s: exit status %d, not 1; stderr:\n%.2000s", name, WEXITSTATUS(st), err);
        ok = 0;
    }
    if (strcmp(err, want)) {
        cr_expect(0, "%s: stderr differs.\nwant:\n%.3000s\ngot:\n%.3000s", name, want, err);
        ok = 0;
    }
    if (*out) {
        cr_expect(0, "%s: printed on stdout: %.200s", name, out);
        ok = 0;
    }
    for (int i = 1; i < argc; i++)
        free(argv[i]);
    free(exp);
    free(want);
    free(out);
    free(err);
    unlink(path);
    return ok;
}

/* Every NAME.grad / NAME.gen of tests/diagnostics with its NAME.expected. */
Test(diagnostics, every_malformed_input_gets_its_message)
{
    char tmp[] = "/tmp/gradc-diag-XXXXXX";
    cr_assert(mkdtemp(tmp));
    DIR *d = opendir(DIR_);
    cr_assert(d);
    int cases = 0, passed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || (strcmp(e->d_name + n - 5, ".grad") && strcmp(e->d_name + n - 4, ".gen")))
            continue;
        char name[256], input[4096];
        snprintf(name, sizeof name, "%.*s", (int)(n - (e->d_name[n - 4] == '.' ? 4 : 5)), e->d_name);
        snprintf(input, sizeof input, "%s/%s", DIR_, e->d_name);
        cases++;
        passed += run_case(name, input, tmp);
    }
    closedir(d);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    cr_expect_eq(system(cmd), 0);
    cr_expect_geq(cases, 60, "only %d cases", cases);
    cr_expect_eq(passed, cases, "%d of %d cases failed", cases - passed, cases);
}

/* A limit on the size of the generated C (--max-code-size, in MB): a
 * clear error and no output file, rather than C a compiler chokes on.
 * 40,000 nested sin() make about 6 MB of C. */
Test(diagnostics, generated_code_size_is_bounded)
{
    char tmp[] = "/tmp/gradc-size-XXXXXX";
    cr_assert(mkdtemp(tmp));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'f(x) = ' > big.grad && for i in $(seq 40000); do printf 'sin('; done >> big.grad"
             " && printf x >> big.grad && for i in $(seq 40000); do printf ')'; done >> big.grad"
             " && echo >> big.grad", tmp);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' emit big.grad --max-code-size 1 -o big.c 2>err; "
             "echo $? > status", tmp, GRADC_BIN);
    cr_assert_eq(system(cmd), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/status", tmp);
    char *status = slurp(path);
    cr_expect_str_eq(status, "1\n");
    snprintf(path, sizeof path, "%s/err", tmp);
    char *err = slurp(path);
    cr_expect(!strncmp(err, "gradc: error: the generated C would be ", 39) &&
              strstr(err, " MB, more than the limit of 1.0 MB (--max-code-size MB; docs/robustness.md)\n"),
              "%s", err);
    snprintf(path, sizeof path, "%s/big.c", tmp);
    cr_expect(access(path, F_OK) != 0, "big.c was written");
    /* Without the limit the same file is emitted. */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' emit big.grad --max-code-size 0 -o big.c", tmp, GRADC_BIN);
    cr_expect_eq(system(cmd), 0);
    free(status);
    free(err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    cr_expect_eq(system(cmd), 0);
}

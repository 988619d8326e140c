/* input.c — where the driver's sources come from: files, FILE:FUNC
 * specifications and command-line text. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Colour only on a terminal, and never when NO_COLOR is set to anything
 * non-empty (no-color.org) or the terminal is dumb. */
static int stderr_colour(void)
{
    static int on = -1;
    if (on < 0) {
        const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
        on = isatty(2) && !(no && *no) && !(term && !strcmp(term, "dumb"));
    }
    return on;
}

/* The label of a diagnostic line ("FILE:L:C: error: ..." or "gradc:
 * warning: ..."): its offset and length, and the colour it gets (gcc's). */
static const char *label_of(const char *line, size_t n, size_t *at, size_t *len)
{
    static const char *const labels[][2] = {
        {": error:", "\033[1;31m"}, {": warning:", "\033[1;35m"}, {": note:", "\033[1;36m"}};
    if (n == 0 || line[0] == ' ')       /* a quoted source line or its caret */
        return NULL;
    for (int i = 0; i < 3; i++) {
        const char *hit = strstr(line, labels[i][0]);
        if (hit && (size_t)(hit - line) < n) {
            *at = (size_t)(hit - line) + 2;
            *len = strlen(labels[i][0]) - 2;
            return labels[i][1];
        }
    }
    return NULL;
}

void cli_eputs(const char *text)
{
    if (!stderr_colour()) {
        fputs(text, stderr);
        return;
    }
    while (*text) {
        size_t n = strcspn(text, "\n"), at, len;
        const char *colour = label_of(text, n, &at, &len);
        if (colour)
            fprintf(stderr, "%.*s%s%.*s\033[0m%.*s", (int)at, text, colour, (int)len, text + at,
                    (int)(n - at - len), text + at + len);
        else
            fwrite(text, 1, n, stderr);
        if (text[n] == '\n')
            fputc('\n', stderr), n++;
        text += n;
    }
}

int report(Diag *d)
{
    if (d->out.data)
        cli_eputs(d->out.data);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char text[1200];
    snprintf(text, sizeof text, "gradc: error: %s\ngradc: note: see 'gradc %s --help'\n", msg, cmd);
    cli_eputs(text);
    return 1;
}

int input_from_file(Input *in, const char *path, Diag *d)
{
    memset(in, 0, sizeof *in);
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f && (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode))) {
        fclose(f);
        f = NULL;
        errno = EISDIR;
    }
    if (!f) {
        diag_plain(d, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    Buf b = {0};
    buf_puts(&b, "");
    char chunk[65536];
    size_t n;
    /* Bounded, so that /dev/zero or a huge binary is an error, not a
     * process that eats all memory. */
    enum { MAX_SOURCE = 64 << 20 };
    while (b.len <= MAX_SOURCE && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&b, chunk, n);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err || b.len > MAX_SOURCE) {
        if (err)
            diag_plain(d, "cannot read '%s': %s", path, strerror(err));
        else
            diag_plain(d, "'%s' is larger than %d MiB: not a source file", path, MAX_SOURCE >> 20);
        buf_free(&b);
        return -1;
    }
    in->owned = b.data;
    in->src = (Source){path, b.data, b.len};
    return 0;
}

void input_from_text(Input *in, const char *text)
{
    memset(in, 0, sizeof *in);
    in->src = (Source){"<expr>", text, strlen(text)};
    in->bare = 1;
}

int input_from_spec(Input *in, const char *spec, Diag *d)
{
    const char *colon = strrchr(spec, ':');
    if (colon && colon > spec && colon[1]) {
        char *path = xstrdup(spec);
        path[colon - spec] = 0;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            int rc = input_from_file(in, path, d);
            in->owned_name = path;
            in->src.name = path;
            in->func = colon + 1;
            return rc;
        }
        free(path);
    }
    input_from_text(in, spec);
    return 0;
}

int input_from_spec_func(Input *in, const char *spec, const char *func, Diag *d)
{
    if (!func)
        return input_from_spec(in, spec, d);
    /* With --func the argument can only be a file. */
    if (input_from_file(in, spec, d) != 0)
        return -1;
    in->func = func;
    return 0;
}

void input_free(Input *in)
{
    free(in->owned);
    free(in->owned_name);
    in->owned = in->owned_name = NULL;
}

Func *input_compile(Input *in, Program **prog, Diag *d)
{
    Program *p = front_parse_shaped(&in->src, in->bare, in->shapes, in->nshapes, d);
    *prog = p;
    if (!p)
        return NULL;
    if (in->bare)
        return p->bare;
    if (in->func) {
        Func *f = program_find(p, in->func);
        if (!f)
            diag_plain(d, "%s has no function named '%s'", in->src.name, in->func);
        return f;
    }
    if (p->nfunc == 0)
        diag_error(d, &in->src, loc_point(1, 1), "no function is defined in this file");
    else if (p->nfunc > 1)
        diag_plain(d, "%s defines %u functions; choose one with %s:NAME or --func NAME",
                   in->src.name, p->nfunc, in->src.name);
    return p->nfunc == 1 ? p->func[0] : NULL;
}

int cli_wrt(const Func *f, const char *text, int freeze, uint8_t **wrt, Diag *d)
{
    Source src = {"<wrt>", text, strlen(text)};
    *wrt = xmalloc(f->ninputs + 1);
    int rc = front_wrt(f, &src, *wrt, d);
    if (rc == 0 && freeze && f->net && (*wrt)[f->ninputs - 1]) {
        diag_plain(d, "--wrt %s: with --freeze the parameters of %s are constants, not inputs",
                   f->input_name[f->ninputs - 1], f->name);
        rc = -1;
    }
    if (rc != 0) {
        free(*wrt);
        *wrt = NULL;
    }
    return rc;
}

/* diag.c — diagnostics: "FILE:LINE:COL: error: MESSAGE", then the source
 * line (a window of it when long) and a caret under the column. Messages
 * accumulate in a buffer so callers (and tests) decide where they go. */
#include "gradc.h"

#include <string.h>

enum { WINDOW = 72 };           /* widest source excerpt shown */

void diag_init(Diag *d)
{
    memset(d, 0, sizeof *d);
    d->max_errors = 20;
}

void diag_free(Diag *d)
{
    buf_free(&d->out);
}

Loc loc_point(int line, int col)
{
    Loc l = {line, col, line, col + 1};
    return l;
}

/* Finds line `line` (1-based) of the source; returns its start and length. */
static const char *find_line(const Source *src, int line, size_t *len)
{
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
    }
    if (p > end)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    if (*len && p[*len - 1] == '\r')
        (*len)--;
    return p;
}

/* The excerpt: the line, cut to a window around the column when long. */
static void render_excerpt(Buf *b, const Source *src, Loc loc)
{
    size_t len;
    const char *line = src && src->text ? find_line(src, loc.first_line, &len) : NULL;
    if (!line || len == 0)      /* an empty line: nothing to point at */
        return;
    size_t col = loc.first_column > 0 ? (size_t)loc.first_column - 1 : 0;
    if (col > len)
        col = len;
    size_t width = 1;
    if (loc.last_line == loc.first_line && loc.last_column > loc.first_column)
        width = (size_t)(loc.last_column - loc.first_column);
    size_t from = 0, to = len;
    if (len > WINDOW) {
        from = col > WINDOW / 2 ? col - WINDOW / 2 : 0;
        if (from > len - WINDOW)
            from = len - WINDOW;
        to = from + WINDOW;
    }
    const char *pre = from > 0 ? "..." : "";
    const char *post = to < len ? "..." : "";
    buf_printf(b, "%5d | %s", loc.first_line, pre);
    for (size_t i = from; i < to; i++) {
        /* Control bytes of a binary file would reach the terminal (escape
         * sequences included): one '?' each, so the caret stays aligned. */
        unsigned char c = (unsigned char)line[i];
        buf_put(b, (c < 0x20 && c != '\t') || c == 0x7f ? "?" : &line[i], 1);
    }
    buf_printf(b, "%s\n", post);
    buf_printf(b, "      | %s", pre);
    for (size_t i = from; i < col; i++)
        buf_put(b, line[i] == '\t' ? "\t" : " ", 1);
    buf_put(b, "^", 1);
    for (size_t i = 1; i < width && col + i < to; i++)
        buf_put(b, "~", 1);
    buf_put(b, "\n", 1);
}

static void vreport(Diag *d, const Source *src, Loc loc, const char *kind,
                    const char *fmt, va_list ap)
{
    buf_printf(&d->out, "%s:%d:%d: %s: ", src ? src->name : "gradc",
               loc.first_line, loc.first_column, kind);
    char msg[1024];
    /* A message quoting a 10 MB name is cut, visibly. */
    if (vsnprintf(msg, sizeof msg, fmt, ap) >= (int)sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);
    buf_puts(&d->out, msg);
    buf_puts(&d->out, "\n");
    render_excerpt(&d->out, src, loc);
}

void diag_error(Diag *d, const Source *src, Loc loc, const char *fmt, ...)
{
    if (d->nerrors++ >= d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, src, loc, "error", fmt, ap);
    va_end(ap);
    if (d->nerrors == d->max_errors)
        buf_puts(&d->out, "gradc: note: too many errors; stopping here\n");
}

void diag_note(Diag *d, const Source *src, Loc loc, const char *fmt, ...)
{
    if (d->nerrors > d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, src, loc, "note", fmt, ap);
    va_end(ap);
}

void diag_plain(Diag *d, const char *fmt, ...)
{
    d->nerrors++;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_printf(&d->out, "gradc: error: %s\n", msg);
}

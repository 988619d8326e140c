/* at.c — the values of `gradc eval --at NAME=VALUE,...`: numbers, nan,
 * inf, and lists of them, parsed like source text so that every mistake
 * is reported at its column of "<at>". Fuzzed by tests/fuzz/fuzz_at.c. */
#include "cli.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static Loc at_loc(const Source *s, const char *b, const char *e)
{
    Loc l = {1, (int)(b - s->text) + 1, 1, (int)(e - s->text) + 1};
    return l;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

/* The end of one top-level item of "x=1,y=[1,2]": the next comma outside
 * brackets. */
static const char *item_end(const char *p, const char *end)
{
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']' && depth > 0)
            depth--;
        else if (*p == ',' && depth == 0)
            return p;
    }
    return end;
}

/* A number as --at takes it: decimal with an optional sign, or nan, inf,
 * infinity; not hex, and not a decimal too large for a double. Returns 0,
 * or -1 with an error at [b, e). */
static int at_number(const Source *s, const char *b, const char *e, double *v, Diag *d)
{
    size_t n = (size_t)(e - b), i = n > 0 && (*b == '-' || *b == '+');
    int word = n > i && isalpha((unsigned char)b[i]);
    int ok = 1;
    for (size_t k = i; k < n && !word; k++)
        ok &= isdigit((unsigned char)b[k]) || strchr(".eE+-", b[k]) != NULL;
    ok = ok && num_parse(b, n, v) && (word ? isnan(*v) || isinf(*v) : 1);
    if (ok && !word && isinf(*v)) {
        diag_error(d, s, at_loc(s, b, e), "'%.*s' is too large for a double (write inf for infinity)",
                   (int)n, b);
        return -1;
    }
    if (!ok && n == 0)
        diag_error(d, s, at_loc(s, b, b + 1), "missing value: expected a number");
    else if (!ok)
        diag_error(d, s, at_loc(s, b, e), "'%.*s' is not a number", (int)n, b);
    return ok ? 0 : -1;
}

/* A number, or a list of numbers, or a list of equally long lists. */
static int parse_value(const Source *s, const char *b, const char *e, Assign *a, Diag *d)
{
    Buf vals = {0};
    b = skip_space(b, e);
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    if (b == e || *b != '[') {
        double v;
        if (at_number(s, b, e, &v, d) != 0)
            return -1;
        a->shape = SHAPE_SCALAR;
        a->data = xmalloc(sizeof v);
        a->data[0] = v;
        return 0;
    }
    uint32_t rows = 0, cols = 0, count = 0, depth = 0, nested = 0, flat = 0;
    const char *p = b;
    while (p < e) {
        p = skip_space(p, e);
        if (*p == '[') {
            if (++depth > 2) {
                diag_error(d, s, at_loc(s, p, p + 1), "values have at most two dimensions");
                goto fail;
            }
            if (depth == 2) {
                if (flat) {     /* [1, [2, 3]] */
                    diag_error(d, s, at_loc(s, p, p + 1), "a list mixes numbers and rows");
                    goto fail;
                }
                nested = 1;
                count = 0;
            }
            p++;
        } else if (*p == ']') {
            if (depth == 0) {
                diag_error(d, s, at_loc(s, p, p + 1), "unbalanced ']' in the value");
                goto fail;
            }
            if (depth == 2) {
                if (rows > 0 && count != cols) {
                    diag_error(d, s, at_loc(s, p, p + 1), "row %u has %u %s, but row 0 has %u", rows, count,
                               count == 1 ? "number" : "numbers", cols);
                    goto fail;
                }
                cols = count;
                rows++;
            }
            depth--;
            p++;
        } else if (*p == ',') {
            p++;
        } else {
            const char *q = p;
            while (q < e && *q != ',' && *q != ']' && !isspace((unsigned char)*q))
                q++;
            double v;
            if (nested && depth == 1) {     /* [[1, 2], 3] */
                diag_error(d, s, at_loc(s, p, q > p ? q : p + 1), "a list mixes numbers and rows");
                goto fail;
            }
            if ((nested && depth != 2) || depth == 0) {
                diag_error(d, s, at_loc(s, p, q > p ? q : p + 1), "'%.*s' is not a number", (int)(q - p), p);
                goto fail;
            }
            flat |= depth == 1;
            if (at_number(s, p, q, &v, d) != 0)
                goto fail;
            buf_put(&vals, (const char *)&v, sizeof v);
            count++;
            p = q;
        }
    }
    if (depth != 0 || vals.len == 0) {
        diag_error(d, s, at_loc(s, b, e), depth ? "unbalanced '[' in the value" : "an empty list is not a value");
        goto fail;
    }
    a->shape = nested ? shape_mat(rows, cols) : shape_vec(count);
    a->data = (double *)vals.data;
    return 0;
fail:
    buf_free(&vals);
    return -1;
}

void at_parse(const Source *s, Assign *out, int max, int *n, Diag *d)
{
    const char *p = s->text, *end = s->text + s->len;
    while (p <= end) {
        const char *stop = item_end(p, end);
        const char *eq = stop > p ? memchr(p, '=', (size_t)(stop - p)) : NULL;
        const char *nb = skip_space(p, eq ? eq : stop), *ne = eq ? eq : stop;
        while (ne > nb && isspace((unsigned char)ne[-1]))
            ne--;
        int ident = ne > nb && (isalpha((unsigned char)*nb) || *nb == '_');
        for (const char *q = nb; q < ne && ident; q++)
            ident = isalnum((unsigned char)*q) || *q == '_';
        Assign a = {nb, (size_t)(ne - nb), SHAPE_SCALAR, NULL, 0, at_loc(s, nb, ne),
                    at_loc(s, eq ? eq + 1 : stop, stop), s};
        if (!eq || !ident)
            diag_error(d, s, at_loc(s, p, stop > p ? stop : p + 1),
                       "expected NAME=VALUE, e.g. --at x=1.5,y=-2 or --at 'v=[1,2,3]'");
        else if (*n == max)
            diag_error(d, s, a.loc, "too many values");
        else if (parse_value(s, eq + 1, stop, &a, d) == 0)
            out[(*n)++] = a;
        p = stop + 1;
    }
}

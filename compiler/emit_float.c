/* emit_float.c — single precision (`gradc emit --float`): rewrites the
 * emitter's double-precision C into float, token by token. One pass over
 * the finished text rather than a type parameter threaded through every
 * printf of the emitter, so that every entry point, present or future, is
 * converted the same way and the double output stays byte-identical.
 *
 * The emitted C is a small, known subset, so the tokens that change are:
 * the keyword double (float), floating literals (an f suffix; literals
 * outside float's range become INFINITY or 0.0f, as the cast would make
 * them, without gcc's -Woverflow), <math.h> calls (expf, logf, ...),
 * HUGE_VAL, the CBLAS double routines (cblas_sgemm, cblas_sgemv), and the
 * words "double"/"doubles" in comments. Strings are copied untouched. */
#include "gradc.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

/* Functions the emitted code may call, and their float spellings. */
static const char *const renamed[][2] = {
    {"exp", "expf"}, {"log", "logf"}, {"log1p", "log1pf"}, {"expm1", "expm1f"},
    {"sqrt", "sqrtf"}, {"sin", "sinf"}, {"cos", "cosf"}, {"tan", "tanf"},
    {"asin", "asinf"}, {"acos", "acosf"}, {"atan", "atanf"}, {"atan2", "atan2f"},
    {"sinh", "sinhf"}, {"cosh", "coshf"}, {"tanh", "tanhf"}, {"hypot", "hypotf"},
    {"erf", "erff"}, {"erfc", "erfcf"}, {"pow", "powf"}, {"fabs", "fabsf"},
    {"fmax", "fmaxf"}, {"fmin", "fminf"}, {"floor", "floorf"}, {"ceil", "ceilf"},
    {"copysign", "copysignf"}, {"fma", "fmaf"}, {"exp2", "exp2f"}, {"log2", "log2f"},
    {"log10", "log10f"}, {"cbrt", "cbrtf"}, {"round", "roundf"}, {"trunc", "truncf"},
    {"fmod", "fmodf"}, {"double", "float"}, {"HUGE_VAL", "HUGE_VALF"},
    {"cblas_dgemm", "cblas_sgemm"}, {"cblas_dgemv", "cblas_sgemv"}, {NULL, NULL},
};

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* An identifier: its float spelling when it has one. */
static void identifier(const char *s, size_t n, Buf *out)
{
    for (int i = 0; renamed[i][0]; i++)
        if (strlen(renamed[i][0]) == n && !memcmp(s, renamed[i][0], n)) {
            buf_puts(out, renamed[i][1]);
            return;
        }
    buf_put(out, s, n);
}

/* A preprocessing number (C99 6.4.8): digits, letters, '.', and a sign
 * right after e, E, p or P. Returns its length. */
static size_t number_len(const char *s)
{
    size_t n = 0;
    while (ident_char(s[n]) || s[n] == '.' ||
           ((s[n] == '+' || s[n] == '-') && n > 0 && strchr("eEpP", s[n - 1])))
        n++;
    return n;
}

/* A number: floating literals get an f suffix (integers stay as they are). */
static void number(const char *s, size_t n, Buf *out)
{
    int hex = n > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    int floating = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || (hex ? s[i] == 'p' || s[i] == 'P' : s[i] == 'e' || s[i] == 'E'))
            floating = 1;
    if (!floating || strchr("fFlL", s[n - 1])) {
        buf_put(out, s, n);
        return;
    }
    char text[64];
    size_t m = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, s, m);
    text[m] = 0;
    double v = strtod(text, NULL);      /* the emitter's literals are C-locale */
    if (fabs(v) > FLT_MAX && fabs((double)(float)v) > FLT_MAX) {
        buf_puts(out, "INFINITY");
        return;
    }
    if (v != 0 && (float)v == 0) {
        buf_puts(out, "0.0f");
        return;
    }
    buf_put(out, s, n);
    buf_puts(out, "f");
}

/* A comment: "double" and "doubles" become "float" and "floats". */
static void comment(const char *s, size_t n, Buf *out)
{
    size_t i = 0;
    while (i < n) {
        if (i + 6 <= n && !memcmp(s + i, "double", 6) && (i == 0 || !ident_char(s[i - 1]))) {
            size_t end = i + 6 + (i + 6 < n && s[i + 6] == 's');
            if (end >= n || !ident_char(s[end])) {
                buf_puts(out, "float");
                i += 6;
                continue;
            }
        }
        buf_put(out, s + i, 1);
        i++;
    }
}

/* The length of the string or character literal at s (quote included). */
static size_t quoted_len(const char *s, size_t n)
{
    size_t i = 1;
    while (i < n && s[i] != s[0])
        i += s[i] == '\\' ? 2 : 1;
    return i < n ? i + 1 : n;
}

void emit_float(const char *c, size_t n, Buf *out)
{
    static const char note[] =
        " * Single precision (gradc emit --float): every real number is a float.\n";
    size_t i = 0;
    while (i < n) {
        const char *s = c + i;
        size_t len;
        if (s[0] == '/' && i + 1 < n && s[1] == '*') {
            const char *end = strstr(s + 2, "*/");
            len = end ? (size_t)(end - s) + 2 : n - i;
            /* The file's opening comment says so, right after its first line. */
            const char *nl = i == 0 ? memchr(s, '\n', len) : NULL;
            if (nl) {
                size_t first = (size_t)(nl - s) + 1;
                comment(s, first, out);
                buf_puts(out, note);
                comment(s + first, len - first, out);
            } else
                comment(s, len, out);
        } else if (s[0] == '/' && i + 1 < n && s[1] == '/') {
            const char *end = memchr(s, '\n', n - i);
            len = end ? (size_t)(end - s) : n - i;
            comment(s, len, out);
        } else if (s[0] == '"' || s[0] == '\'') {
            len = quoted_len(s, n - i);
            buf_put(out, s, len);
        } else if (isdigit((unsigned char)s[0]) ||
                   (s[0] == '.' && i + 1 < n && isdigit((unsigned char)s[1]))) {
            len = number_len(s);
            number(s, len, out);
        } else if (ident_char(s[0])) {
            for (len = 1; i + len < n && ident_char(s[len]); len++)
                ;
            identifier(s, len, out);
        } else {
            len = 1;
            buf_put(out, s, 1);
        }
        i += len;
    }
}

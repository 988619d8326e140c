/* lexer.re — tokens for the parser, with 1-based line/column locations.
 * Newlines end statements except inside ( ) and [ ], where they are
 * spaces, so long formulas can be wrapped. A name at the start of a
 * statement followed by a parenthesised list and '=' or '{' is a function
 * definition (DEFNAME): deciding that here keeps the grammar LALR(1). */
#include "front.h"
#include "parser.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

void lex_init(Lexer *lx, const char *text, size_t len)
{
    memset(lx, 0, sizeof *lx);
    lx->text = lx->cur = lx->line_start = text;
    lx->lim = text + len;
    lx->line = 1;
    lx->at_stmt_start = 1;
}

static Loc span(const Lexer *lx, const char *b, const char *e)
{
    Loc l;
    l.first_line = l.last_line = lx->line;
    l.first_column = (int)(b - lx->line_start) + 1;
    l.last_column = (int)(e - lx->line_start) + 1;
    return l;
}

/* Where the input ends: just after the last line's text, rather than on
 * the empty line after a final newline, so that "unexpected end of line"
 * points at the line it is about. */
static Loc end_loc(const Lexer *lx)
{
    const char *e = lx->lim, *b = lx->line_start;
    if (e > lx->text && e == b && e[-1] == '\n') {
        const char *nl = e - 1;
        for (b = nl; b > lx->text && b[-1] != '\n'; b--)
            ;
        if (nl > b && nl[-1] == '\r')
            nl--;
        Loc l = {lx->line - 1, (int)(nl - b) + 1, lx->line - 1, (int)(nl - b) + 2};
        return l;
    }
    return span(lx, e, e);
}

static void newline(Lexer *lx, const char *after)
{
    lx->line++;
    lx->line_start = after;
}

/* After NAME at p: "( ... )" then '=' (not '==') or '{' on the same line. */
static int looks_like_def(const char *p, const char *lim)
{
    while (p < lim && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= lim || *p != '(')
        return 0;
    int depth = 0;
    for (; p < lim; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            break;
        else if (*p == '#' || *p == ';' || *p == '{' || *p == '}')
            return 0;
    }
    if (p >= lim)
        return 0;
    for (p++; p < lim && (*p == ' ' || *p == '\t'); p++)
        ;
    return p < lim && ((*p == '=' && (p + 1 >= lim || p[1] != '=')) || *p == '{');
}

static void bad_char(Parser *P)
{
    Lexer *lx = &P->lx;
    Loc loc = span(lx, lx->tok, lx->cur);
    unsigned char c = (unsigned char)lx->tok[0];
    lx->bad_line = lx->line;
    if (c >= 0x20 && c < 0x7f)
        front_error(P, loc, "unexpected character '%c'", c);
    else if (c >= 0xc2 && c <= 0xf4 && lx->cur - lx->tok == (c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2))
        front_error(P, loc, "unexpected character '%.*s'", (int)(lx->cur - lx->tok), lx->tok);
    else if (c >= 0x80)         /* not UTF-8: print no raw byte to a terminal */
        front_error(P, loc, "unexpected byte 0x%02x (the text is not UTF-8)", c);
    else
        front_error(P, loc, "unexpected byte 0x%02x", c);
}

/* Keywords are recognised only where nothing else could stand (at the
 * start of a statement, or `params` before '('), so they stay usable as
 * names elsewhere: a formula may have inputs called `network`. */
static int keyword(const Lexer *lx, const char *b, const char *e)
{
    size_t n = (size_t)(e - b);
    if (lx->at_stmt_start && lx->depth == 0 && n == 7 && !memcmp(b, "network", 7)) {
        const char *p = e;      /* `network NAME`, else a name: network*2 */
        while (p < lx->lim && (*p == ' ' || *p == '\t'))
            p++;
        if (p > e && p < lx->lim && (isalpha((unsigned char)*p) || *p == '_'))
            return NETWORK;
    }
    if (n == 6 && !memcmp(b, "params", 6)) {
        const char *p = e;
        while (p < lx->lim && (*p == ' ' || *p == '\t'))
            p++;
        if (p < lx->lim && *p == '(')
            return PARAMS;
    }
    return 0;
}

static const char *skip_blanks(const char *p, const char *lim)
{
    while (p < lim && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* After NAME at p in a check: "( ... )" then '==' or '!='. */
static int looks_like_check_call(const char *p, const char *lim)
{
    p = skip_blanks(p, lim);
    if (p >= lim || *p != '(')
        return 0;
    for (int depth = 0; p < lim; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            break;
    }
    p = p < lim ? skip_blanks(p + 1, lim) : lim;
    return lim - p >= 2 && (p[0] == '=' || p[0] == '!') && p[1] == '=';
}

static int is_word(const char *b, const char *e, const char *w)
{
    return (size_t)(e - b) == strlen(w) && !memcmp(b, w, (size_t)(e - b));
}

/* The words of problem files (compiler/check.h): `check` and `tolerance`
 * start a statement; right after `check` (or its "name") may come `grad`
 * or `jacobian`, and a call compared with == or != (CALLNAME); `within`
 * ends one. Anywhere else they are ordinary names. */
static int check_word(Parser *P, const char *b, const char *e)
{
    Lexer *lx = &P->lx;
    const char *p;
    int first = lx->check_mark && skip_blanks(lx->check_mark, b) == b;
    if (P->bare_mode)
        return 0;
    if (lx->at_stmt_start && lx->depth == 0) {
        lx->in_check = 0;
        lx->check_mark = NULL;
        p = skip_blanks(e, lx->lim);
        if ((p < lx->lim && *p == '=' && (p + 1 >= lx->lim || p[1] != '=')) ||
            looks_like_def(e, lx->lim))
            return 0;           /* check = 1, check(x) = x */
        if (is_word(b, e, "check")) {
            lx->in_check = 1;
            lx->check_mark = e;
            return CHECK;
        }
        return is_word(b, e, "tolerance") ? TOLERANCE : 0;
    }
    if (!lx->in_check)
        return 0;
    if (first && (is_word(b, e, "grad") || is_word(b, e, "jacobian"))) {
        lx->check_mark = e;
        return b[0] == 'g' ? GRAD : JACOBIAN;
    }
    if (first && looks_like_check_call(e, lx->lim)) {
        lx->check_mark = NULL;
        return CALLNAME;
    }
    return is_word(b, e, "within") ? WITHIN : 0;
}

int lex_next(ParseValue *lval, Loc *lloc, Parser *P)
{
    Lexer *lx = &P->lx;
    const unsigned char *cur, *mar;
    for (;;) {
        lx->tok = lx->cur;
        cur = (const unsigned char *)lx->cur;
        /*!re2c
        re2c:yyfill:enable = 0;
        re2c:define:YYCTYPE = "unsigned char";
        re2c:define:YYCURSOR = cur;
        re2c:define:YYMARKER = mar;

        digit = [0-9];
        num   = (digit+ ("." digit+)? | "." digit+) ([eE] [+-]? digit+)?;
        /* An exponent without digits, or a second decimal point: one
         * "malformed number" error instead of a confusing syntax error. */
        badnum = (digit+ ("." digit+)? | "." digit+) ([eE] [+-]? [a-zA-Z_]? | ("." digit+)+);
        ident = [a-zA-Z_][a-zA-Z0-9_]*;
        utf8  = [\xc0-\xf7][\x80-\xbf]*;

        "\x00" {
            lx->cur = (const char *)cur;
            if ((const char *)cur - 1 < lx->lim) {
                front_error(P, span(lx, lx->tok, lx->cur), "unexpected NUL byte");
                lx->bad_line = lx->line;
                continue;
            }
            lx->cur = lx->lim;
            *lloc = end_loc(lx);
            if (!lx->done) {            /* a last separator ends the last line */
                lx->done = 1;
                return SEP;
            }
            return 0;
        }
        [ \t\r\f\v]+           { lx->cur = (const char *)cur; continue; }
        "#" [^\n\x00]*         { lx->cur = (const char *)cur; continue; }
        "\\" [ \t\r]* "\n"     { lx->cur = (const char *)cur; newline(lx, lx->cur); continue; }
        "\n" {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            newline(lx, lx->cur);
            if (lx->depth > 0)
                continue;
            lx->at_stmt_start = 1;
            return SEP;
        }
        ";" {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            lx->at_stmt_start = 1;
            return SEP;
        }
        num {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            lx->at_stmt_start = 0;
            if (!num_parse(lx->tok, (size_t)(lx->cur - lx->tok), &lval->num)) {
                front_error(P, *lloc, "malformed number '%.*s'",
                            (int)(lx->cur - lx->tok), lx->tok);
                lval->num = 0;
            } else if (isinf(lval->num)) {
                front_error(P, *lloc, "the number '%.*s' is too large for a double (at most about 1.8e308)",
                            (int)(lx->cur - lx->tok), lx->tok);
                lval->num = 0;
            }
            return NUMBER;
        }
        badnum {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            lx->at_stmt_start = 0;
            front_error(P, *lloc, "malformed number '%.*s'", (int)(lx->cur - lx->tok), lx->tok);
            lval->num = 0;
            return NUMBER;
        }
        digit+ "." / [^.] {
            lx->cur = (const char *)cur;    /* "2." is a number; "2..5" a range */
            *lloc = span(lx, lx->tok, lx->cur);
            lx->at_stmt_start = 0;
            num_parse(lx->tok, (size_t)(lx->cur - lx->tok), &lval->num);
            return NUMBER;
        }
        ".." { lx->cur = (const char *)cur; *lloc = span(lx, lx->tok, lx->cur); lx->at_stmt_start = 0; return DOTDOT; }
        ident {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            int kw = keyword(lx, lx->tok, lx->cur);
            if (kw) {
                lx->at_stmt_start = 0;
                return kw;
            }
            lval->name = front_intern(P, lx->tok, (size_t)(lx->cur - lx->tok));
            int ck = check_word(P, lx->tok, lx->cur);
            if (ck) {
                lx->at_stmt_start = 0;
                return ck;
            }
            int def = lx->at_stmt_start && lx->depth == 0 &&
                      looks_like_def(lx->cur, lx->lim);
            lx->at_stmt_start = 0;
            return def ? DEFNAME : IDENT;
        }
        ["] [^"\n\x00]* ["] {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            lval->name = front_intern(P, lx->tok + 1, (size_t)(lx->cur - lx->tok - 2));
            if (lx->in_check && lx->check_mark && skip_blanks(lx->check_mark, lx->tok) == lx->tok)
                lx->check_mark = lx->cur;   /* check "name" grad ... */
            lx->at_stmt_start = 0;
            return STRING;
        }
        ["] [^"\n\x00]* {
            lx->cur = (const char *)cur;
            front_error(P, span(lx, lx->tok, lx->cur), "unterminated string (a check's name ends with '\"' on the same line)");
            continue;
        }
        "==" { lx->cur = (const char *)cur; *lloc = span(lx, lx->tok, lx->cur); lx->at_stmt_start = 0; return EQEQ; }
        "!=" { lx->cur = (const char *)cur; *lloc = span(lx, lx->tok, lx->cur); lx->at_stmt_start = 0; return NOTEQ; }
        [([] {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            if (lx->depth++ == 0) {
                lx->open = *lloc;
                lx->open_ch = lx->tok[0];
            }
            lx->at_stmt_start = 0;
            return lx->tok[0];
        }
        [)\]] {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            if (lx->depth > 0 && --lx->depth == 0)
                lx->open.first_line = 0;
            lx->at_stmt_start = 0;
            return lx->tok[0];
        }
        [-+*/^,={}@:<>] {
            lx->cur = (const char *)cur;
            *lloc = span(lx, lx->tok, lx->cur);
            lx->at_stmt_start = lx->tok[0] == '{';
            if (lx->tok[0] == '{' || lx->tok[0] == '}')
                lx->brace = lx->tok[0] == '{' ? *lloc : (Loc){0};
            return lx->tok[0];
        }
        utf8 | [\x80-\xff] { lx->cur = (const char *)cur; bad_char(P); continue; }
        *                   { lx->cur = (const char *)cur; bad_char(P); continue; }
        */
    }
}

/* num.c — numbers in text. Formulas, --at values, JSON and emitted C must
 * mean the same thing whatever locale the embedding program has set, so
 * everything goes through the "C" locale explicitly. */
#include "gradc.h"

#include <locale.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static locale_t c_locale(void)
{
    static locale_t loc;        /* created once; never freed on purpose */
    if (!loc)
        loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    return loc;
}

/* Plain decimals ("2.5", "0.731", "12"): when all their digits make an
 * integer m below 2^53 and k of them follow the point (k <= 22), m and
 * 10^k are both exact doubles, so the one correctly rounded division
 * m / 10^k is the correctly rounded value of the text, which is what
 * strtod returns too (Clinger's fast path). Returns 0 for anything else. */
static int plain_decimal(const char *s, size_t n, double *out)
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                   1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                   1e20, 1e21, 1e22};
#if FLT_EVAL_METHOD != 0        /* (x87: division in extended precision) */
    return 0;
#endif
    uint64_t m = 0;
    size_t digits = 0, point = n;
    if (n == 0 || n > 19 + 1)   /* 19 digits cannot overflow m */
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            m = m * 10 + (uint64_t)(s[i] - '0');
            digits++;
        } else if (s[i] == '.' && point == n) {
            point = i;
        } else {
            return 0;
        }
    }
    size_t k = point == n ? 0 : n - point - 1;
    if (digits == 0 || digits > 19 || m > (UINT64_C(1) << 53) || k > 22)
        return 0;
    *out = (double)m / pow10[k];
    return 1;
}

int num_parse(const char *s, size_t n, double *out)
{
    char small[128];
    if (n == 0)
        return 0;
    if (plain_decimal(s, n, out))
        return 1;
    char *tmp = n < sizeof small ? small : xmalloc(n + 1);  /* 200 digits are legal */
    memcpy(tmp, s, n);
    tmp[n] = 0;
    /* strtod also takes hex, "inf", "nan" and leading spaces: callers that
     * must be strict (the lexer) only hand over what they matched. */
    char *end;
    *out = strtod_l(tmp, &end, c_locale());
    int ok = end == tmp + n;
    if (tmp != small)
        free(tmp);
    return ok;
}

void num_format(double v, char out[32])
{
    if (isnan(v)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "-inf" : "inf");
        return;
    }
    locale_t old = uselocale(c_locale());
    if (v == floor(v) && fabs(v) < 1e15) {     /* whole: fast and exact */
        snprintf(out, 32, "%.0f", v);
        uselocale(old);
        return;
    }
    /* The shortest text that reads back, without trying every length: a
     * decimal of at most DBL_DIG (15) digits survives the trip through a
     * double, so if one reads back as v, %.15g (which drops trailing
     * zeros) prints exactly it; otherwise 16 or 17 digits are needed.
     * Folded constants of a big kernel are mostly of 17 digits, and
     * trying 1..17 cost 17 printf/strtod pairs each. */
    for (int prec = DBL_DIG; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod_l(out, NULL, c_locale()) == v)
            break;
    }
    /* Whole numbers print whole: "100", not "1e+02". */
    if (strstr(out, "e+") && fabs(v) < 1e16 && v == floor(v))
        snprintf(out, 32, "%.0f", v);
    uselocale(old);
}

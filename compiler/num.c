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

int num_parse(const char *s, size_t n, double *out)
{
    char small[128];
    if (n == 0)
        return 0;
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

/* w3b.c — hand-written W3b: softmax + cross-entropy of 1,000 values for
 * class 3, f(x) = -log(softmax(x)[3]) = logsumexp(x) - x[3], computed
 * stably (the maximum is subtracted first). The gradient is
 * softmax(x) - e_3; the exponentials of the value pass are kept in grad
 * and scaled in place, so there is one exp per element in all. */
#include <math.h>

enum { N = 1000, K = 3 };
const int hand_ninputs = N;

static double max_of(const double *restrict x)
{
    double m = x[0];
    for (int i = 1; i < N; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

double hand_value(const double *restrict x, int n)
{
    (void)n;
    double m = max_of(x), s = 0.0;
    for (int i = 0; i < N; i++)
        s += exp(x[i] - m);
    return m + log(s) - x[K];
}

double hand_grad(const double *restrict x, int n, double *restrict g)
{
    (void)n;
    double m = max_of(x), s = 0.0;
    for (int i = 0; i < N; i++) {
        g[i] = exp(x[i] - m);
        s += g[i];
    }
    double r = 1.0 / s;
    for (int i = 0; i < N; i++)
        g[i] *= r;
    g[K] -= 1.0;
    return m + log(s) - x[K];
}

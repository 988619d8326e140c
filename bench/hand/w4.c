/* w4.c — hand-written W4, the chained ("extended") Rosenbrock function
 *   f(x) = sum_{i=0}^{n-2} 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2
 * for any n >= 2. One pass computes value and gradient: term i touches
 * only x[i] and x[i+1], so the x[i+1] part of its gradient is carried
 * into the next iteration instead of being stored and re-read. */
const int hand_ninputs = -1;

double hand_value(const double *restrict x, int n)
{
    double f = 0.0;
    for (int i = 0; i < n - 1; i++) {
        double a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
        f += 100.0 * a * a + b * b;
    }
    return f;
}

double hand_grad(const double *restrict x, int n, double *restrict g)
{
    double f = 0.0, carry = 0.0;
    for (int i = 0; i < n - 1; i++) {
        double xi = x[i];
        double a = x[i + 1] - xi * xi, b = 1.0 - xi;
        f += 100.0 * a * a + b * b;
        double t = 200.0 * a;           /* d term / d x[i+1] */
        g[i] = carry - 2.0 * (xi * t + b);
        carry = t;
    }
    g[n - 1] = carry;
    return f;
}

/* w4h.c — hand-written Hessian of W4, the chained Rosenbrock function
 *   f(x) = sum_{i=0}^{n-2} 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2,
 * in the layout of gradc's f_hess: the lower triangle's nonzeros by
 * compressed columns, column j holding (j, j) then (j + 1, j), so
 * H[2j] = d2f/dxj2 and H[2j + 1] = d2f/dxj dx(j+1). One pass computes
 * the value, the gradient and the tridiagonal:
 *   d2/dxi2 = 1200 xi^2 - 400 x(i+1) + 2 (i < n-1), + 200 (i > 0)
 *   d2/dxi dx(i+1) = -400 xi */
double hand_hess(const double *restrict x, int n, double *restrict g, double *restrict H)
{
    double f = 0.0, carry = 0.0, dcarry = 0.0;
    for (int i = 0; i < n - 1; i++) {
        double xi = x[i];
        double a = x[i + 1] - xi * xi, b = 1.0 - xi;
        f += 100.0 * a * a + b * b;
        double t = 200.0 * a;           /* d term / d x[i+1] */
        g[i] = carry - 2.0 * (xi * t + b);
        carry = t;
        H[2 * i] = dcarry + 1200.0 * xi * xi - 400.0 * x[i + 1] + 2.0;
        H[2 * i + 1] = -400.0 * xi;
        dcarry = 200.0;
    }
    g[n - 1] = carry;
    H[2 * (n - 1)] = dcarry;
    return f;
}

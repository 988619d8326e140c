/* w2.c — hand-written W2, the notes' circuit f = 2*(x*y + max(z, w)),
 * inputs x, y, z, w. max routes the gradient to the larger operand (to z
 * on a tie, as gradc does). */
const int hand_ninputs = 4;

double hand_value(const double *restrict in, int n)
{
    (void)n;
    double m = in[2] >= in[3] ? in[2] : in[3];
    return 2.0 * (in[0] * in[1] + m);
}

double hand_grad(const double *restrict in, int n, double *restrict g)
{
    (void)n;
    int zbig = in[2] >= in[3];
    double m = zbig ? in[2] : in[3];
    g[0] = 2.0 * in[1];
    g[1] = 2.0 * in[0];
    g[2] = zbig ? 2.0 : 0.0;
    g[3] = zbig ? 0.0 : 2.0;
    return 2.0 * (in[0] * in[1] + m);
}

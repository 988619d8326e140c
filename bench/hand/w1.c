/* w1.c — hand-written W1, the notes' sigmoid neuron
 *   f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))
 * inputs in gradc's order of appearance: w0, x0, w1, x1, w2.
 * The gradient uses f' = f*(1-f): one exp, one division for everything. */
const int hand_ninputs = 5;

#include <math.h>

double hand_value(const double *restrict in, int n)
{
    (void)n;
    double z = in[0] * in[1] + in[2] * in[3] + in[4];
    return 1.0 / (1.0 + exp(-z));
}

double hand_grad(const double *restrict in, int n, double *restrict g)
{
    (void)n;
    double z = in[0] * in[1] + in[2] * in[3] + in[4];
    double f = 1.0 / (1.0 + exp(-z));
    double d = f * (1.0 - f);
    g[0] = d * in[1];
    g[1] = d * in[0];
    g[2] = d * in[3];
    g[3] = d * in[2];
    g[4] = d;
    return f;
}

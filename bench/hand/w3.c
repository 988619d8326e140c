/* w3.c — hand-written W3: the softmax of 3 values and its 3x3 Jacobian
 *   s_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j,
 *   J[i][j] = d s_i / d x_j = s_i (delta_ij - s_j)   (row-major). */
#include <math.h>

const int hand_ninputs = 3;

void hand_forward(const double *restrict x, double *restrict s)
{
    double m = x[0] > x[1] ? x[0] : x[1];
    m = x[2] > m ? x[2] : m;
    double e0 = exp(x[0] - m), e1 = exp(x[1] - m), e2 = exp(x[2] - m);
    double sum = e0 + e1 + e2;
    s[0] = e0 / sum;
    s[1] = e1 / sum;
    s[2] = e2 / sum;
}

void hand_jacobian(const double *restrict x, double *restrict J)
{
    double s[3];
    hand_forward(x, s);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            J[i * 3 + j] = s[i] * ((i == j) - s[j]);
}

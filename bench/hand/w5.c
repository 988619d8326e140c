/* w5.c — hand-written W5: an MLP 784 -> 128 (ReLU) -> 10 (softmax) with
 * cross-entropy for class 3, and the gradient of the loss with respect to
 * every weight (not the input: the samples are data, as in training).
 * Compiled with -DBATCH=1 (one sample) or -DBATCH=64 (the loss summed over
 * 64 samples).
 *
 * in = [x (BATCH x 784, row-major) | W1 (128 x 784) | b1 (128) |
 *       W2 (10 x 128) | b2 (10)],
 * the layout of `loss(x[784], p[101770])` in gradc (docs/tensors.md), and
 * grad = [W1 | b1 | W2 | b2], what `gradc emit --wrt p` writes.
 *
 * Every sum runs over its index in increasing order, as the naive loops
 * would, so the result rounds like a straightforward implementation; the
 * speed comes from the loop shapes: several independent dot products at
 * once for one sample, and for a batch axpy-shaped inner loops over
 * contiguous memory that gcc vectorises without -ffast-math. */
#include <math.h>
#include <string.h>

#ifndef BATCH
#define BATCH 1
#endif

enum { NI = 784, NH = 128, NO = 10, K = 3, NS = BATCH };
enum {
    W1OFF = NS * NI,
    B1OFF = W1OFF + NH * NI,
    W2OFF = B1OFF + NH,
    B2OFF = W2OFF + NO * NH,
    TOTAL = B2OFF + NO,
};
const int hand_ninputs = TOTAL;
const int hand_ngrad = TOTAL - W1OFF;   /* the gradient by p only */

/* Softmax cross-entropy of one logit vector; p receives softmax(z). */
static double xent(const double *z, double *p)
{
    double m = z[0], s = 0.0;
    for (int o = 1; o < NO; o++)
        m = z[o] > m ? z[o] : m;
    for (int o = 0; o < NO; o++) {
        p[o] = exp(z[o] - m);
        s += p[o];
    }
    for (int o = 0; o < NO; o++)
        p[o] /= s;
    return m + log(s) - z[K];
}

#if BATCH == 1

/* h = relu(W1 x + b1), four rows at a time: four independent sums keep the
 * adder busy, each still summed in k order. */
static void hidden(const double *restrict x, const double *restrict W1,
                   const double *restrict b1, double *restrict h)
{
    for (int j = 0; j < NH; j += 4) {
        const double *w0 = W1 + j * NI, *w1 = w0 + NI, *w2 = w1 + NI, *w3 = w2 + NI;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int k = 0; k < NI; k++) {
            s0 += w0[k] * x[k];
            s1 += w1[k] * x[k];
            s2 += w2[k] * x[k];
            s3 += w3[k] * x[k];
        }
        double a[4] = {s0 + b1[j], s1 + b1[j + 1], s2 + b1[j + 2], s3 + b1[j + 3]};
        for (int q = 0; q < 4; q++)
            h[j + q] = a[q] < 0.0 ? 0.0 : a[q];
    }
}

static void logits(const double *restrict h, const double *restrict W2,
                   const double *restrict b2, double *restrict z)
{
    for (int o = 0; o < NO; o++) {
        double s = 0.0;
        for (int j = 0; j < NH; j++)
            s += W2[o * NH + j] * h[j];
        z[o] = s + b2[o];
    }
}

double hand_value(const double *restrict in, int n)
{
    (void)n;
    double h[NH], z[NO], p[NO];
    hidden(in, in + W1OFF, in + B1OFF, h);
    logits(h, in + W2OFF, in + B2OFF, z);
    return xent(z, p);
}

double hand_grad(const double *restrict in, int n, double *restrict g)
{
    (void)n;
    const double *x = in, *W2 = in + W2OFF;
    double h[NH], z[NO], dz[NO], dh[NH];
    hidden(x, in + W1OFF, in + B1OFF, h);
    logits(h, W2, in + B2OFF, z);
    double loss = xent(z, dz);
    dz[K] -= 1.0;
    double *gW1 = g, *gb1 = g + (B1OFF - W1OFF), *gW2 = g + (W2OFF - W1OFF);
    double *gb2 = g + (B2OFF - W1OFF);
    for (int o = 0; o < NO; o++) {
        gb2[o] = dz[o];
        for (int j = 0; j < NH; j++)
            gW2[o * NH + j] = dz[o] * h[j];
    }
    for (int j = 0; j < NH; j++)
        dh[j] = 0.0;
    for (int o = 0; o < NO; o++)            /* dh = W2^T dz, axpy form */
        for (int j = 0; j < NH; j++)
            dh[j] += dz[o] * W2[o * NH + j];
    for (int j = 0; j < NH; j++) {
        double d = h[j] > 0.0 ? dh[j] : 0.0;  /* ReLU: 1 where its input was > 0 */
        gb1[j] = d;
        double *row = gW1 + j * NI;
        if (d == 0.0) {                     /* a dead unit: zeros, no flops */
            memset(row, 0, NI * sizeof *row);
            continue;
        }
        for (int k = 0; k < NI; k++)
            row[k] = d * x[k];
    }
    return loss;
}

#else

/* Work arrays: transposed activations so inner loops run over samples. */
static double Xt[NI][NS], Ht[NH][NS], Zt[NO][NS], dHt[NH][NS];
static double P[NS][NO];

/* Ht = relu(W1 X^T + b1), Zt = W2 Ht + b2; returns the summed loss and
 * leaves softmax(z_s) in P[s]. */
static double forward(const double *restrict in)
{
    const double *X = in, *W1 = in + W1OFF, *b1 = in + B1OFF;
    const double *W2 = in + W2OFF, *b2 = in + B2OFF;
    for (int s = 0; s < NS; s++)
        for (int k = 0; k < NI; k++)
            Xt[k][s] = X[s * NI + k];
    for (int j = 0; j < NH; j++) {
        double acc[NS] = {0};
        for (int k = 0; k < NI; k++) {
            double w = W1[j * NI + k];
            for (int s = 0; s < NS; s++)
                acc[s] += w * Xt[k][s];
        }
        for (int s = 0; s < NS; s++) {
            double a = acc[s] + b1[j];
            Ht[j][s] = a < 0.0 ? 0.0 : a;
        }
    }
    for (int o = 0; o < NO; o++) {
        double acc[NS] = {0};
        for (int j = 0; j < NH; j++) {
            double w = W2[o * NH + j];
            for (int s = 0; s < NS; s++)
                acc[s] += w * Ht[j][s];
        }
        for (int s = 0; s < NS; s++)
            Zt[o][s] = acc[s] + b2[o];
    }
    double loss = 0.0;
    for (int s = 0; s < NS; s++) {
        double z[NO];
        for (int o = 0; o < NO; o++)
            z[o] = Zt[o][s];
        loss += xent(z, P[s]);
    }
    return loss;
}

double hand_value(const double *restrict in, int n)
{
    (void)n;
    return forward(in);
}

double hand_grad(const double *restrict in, int n, double *restrict g)
{
    (void)n;
    const double *X = in, *W2 = in + W2OFF;
    double *gW1 = g, *gb1 = g + (B1OFF - W1OFF), *gW2 = g + (W2OFF - W1OFF);
    double *gb2 = g + (B2OFF - W1OFF);
    double loss = forward(in);
    double dZt[NO][NS];
    for (int s = 0; s < NS; s++)
        for (int o = 0; o < NO; o++)
            dZt[o][s] = P[s][o] - (o == K);
    for (int o = 0; o < NO; o++) {
        double b = 0.0;
        for (int s = 0; s < NS; s++)
            b += dZt[o][s];
        gb2[o] = b;
        for (int j = 0; j < NH; j++) {
            double acc = 0.0;
            for (int s = 0; s < NS; s++)
                acc += dZt[o][s] * Ht[j][s];
            gW2[o * NH + j] = acc;
        }
    }
    for (int j = 0; j < NH; j++) {          /* dH = (W2^T dZ) * relu' */
        double acc[NS] = {0};
        for (int o = 0; o < NO; o++) {
            double w = W2[o * NH + j];
            for (int s = 0; s < NS; s++)
                acc[s] += w * dZt[o][s];
        }
        double b = 0.0;
        for (int s = 0; s < NS; s++) {
            dHt[j][s] = Ht[j][s] > 0.0 ? acc[s] : 0.0;
            b += dHt[j][s];
        }
        gb1[j] = b;
    }
    for (int j = 0; j < NH; j++) {          /* gW1 = dH^T X, axpy rows */
        double *row = gW1 + j * NI;
        for (int k = 0; k < NI; k++)
            row[k] = 0.0;
        for (int s = 0; s < NS; s++) {
            double d = dHt[j][s];
            if (d == 0.0)
                continue;
            for (int k = 0; k < NI; k++)
                row[k] += d * X[s * NI + k];
        }
    }
    return loss;
}

#endif

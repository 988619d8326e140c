/* main.c — calls the code gradc_generate() made from model.grad and
 * exits 0 when it agrees with the gradient worked out by hand. */
#include <math.h>
#include <stdio.h>

#include "model.h"          /* spring, spring_grad (double) */
#include "model_float.h"    /* f_spring, f_spring_grad (float, --prefix f_) */
#include "gate.h"           /* z_gate, z_gate_vjp (FUNC gate, FREEZE, --prefix z_) */

/* |got - want| within tol relative to want (absolute below 1). */
static int near(const char *what, double got, double want, double tol)
{
    double scale = fabs(want) > 1 ? fabs(want) : 1;
    if (fabs(got - want) <= tol * scale)
        return 1;
    fprintf(stderr, "consumer: %s = %.17g, expected %.17g\n", what, got, want);
    return 0;
}

int main(void)
{
    const double x = 1, v = 2, k = 3;
    /* By hand: 0.5*3*1 + 0.5*4 + log(1 + e); sigmoid(1) = e / (1 + e). */
    const double e = exp(1.0);
    const double value = 1.5 + 2 + log(1 + e);
    const double grad[3] = {k * x + e / (1 + e), v, 0.5 * x * x};
    const char *names[3] = {"d/dx", "d/dv", "d/dk"};

    double in[SPRING_IN_SIZE] = {x, v, k}, g[SPRING_IN_SIZE];
    int ok = near("spring", spring(in), value, 1e-14);
    ok &= near("spring_grad value", spring_grad(in, g), value, 1e-14);
    for (int i = 0; i < 3; i++)
        ok &= near(names[i], g[i], grad[i], 1e-14);

    float fin[F_SPRING_IN_SIZE] = {(float)x, (float)v, (float)k}, fg[F_SPRING_IN_SIZE];
    ok &= near("f_spring_grad value", f_spring_grad(fin, fg), value, 1e-6);
    for (int i = 0; i < 3; i++)
        ok &= near(names[i], fg[i], grad[i], 1e-6);

    /* gate(1, 0.5) = sigmoid(2 - 1.5 + 0.5) = sigmoid(1); no params argument. */
    double gin[Z_GATE_IN_SIZE] = {1, 0.5}, gout[Z_GATE_OUT_SIZE], seed[1] = {1}, gg[2];
    double s = e / (1 + e);
    z_gate(gin, gout);
    z_gate_vjp(gin, seed, gg);
    ok &= near("gate", gout[0], s, 1e-14);
    ok &= near("gate d/dx0", gg[0], s * (1 - s) * 2, 1e-14);
    ok &= near("gate d/dx1", gg[1], s * (1 - s) * -3, 1e-14);

    if (ok)
        printf("consumer: spring = %.6f, gradient (%.6f, %.6f, %.6f), as by hand\n",
               value, g[0], g[1], g[2]);
    return ok ? 0 : 1;
}

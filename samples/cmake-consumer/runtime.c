/* runtime.c — the run-time library through the CMake package: compiles
 * model.grad's formula while running and checks it against the gradient
 * by hand (model.grad says how). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <gradc_runtime.h>

int main(void)
{
    char *err = NULL;
    gradc_fn *f = gradc_compile("0.5*k*x^2 + 0.5*v^2 + log(1 + exp(x))", NULL, &err);
    if (!f) {
        fprintf(stderr, "runtime_consumer: %s", err);
        free(err);
        return 1;
    }
    /* Inputs in order of first appearance: k, x, v. */
    double in[3] = {3, 1, 2}, g[3];
    double e = exp(1.0), v = gradc_grad(f, in, g);
    double want[3] = {0.5, 3 + e / (1 + e), 2};
    int ok = fabs(v - (3.5 + log(1 + e))) < 1e-14;
    for (int i = 0; i < 3; i++)
        ok &= fabs(g[i] - want[i]) < 1e-14;
    gradc_release(f);
    if (!ok)
        fprintf(stderr, "runtime_consumer: got %.17g (%.17g, %.17g, %.17g)\n", v, g[0], g[1], g[2]);
    return ok ? 0 : 1;
}

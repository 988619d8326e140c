/* consumer.c — compiles a formula while it runs, through the run-time
 * library (gradc_runtime.h, libgradc), and exits 0 when the value and
 * gradient agree with the ones worked out by hand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <gradc_runtime.h>

int main(void)
{
    /* The sigmoid neuron of the lecture notes. By hand, with
     * z = w0*x0 + w1*x1 + w2 = -2 + 6 - 3 = 1 and s = 1/(1+e^-1):
     * d/dw0 = s(1-s) x0, d/dx0 = s(1-s) w0, ..., d/dw2 = s(1-s). */
    char *err = NULL;
    gradc_fn *f = gradc_compile("1/(1+exp(-(w0*x0+w1*x1+w2)))", NULL, &err);
    if (!f) {
        fprintf(stderr, "consumer: %s", err);
        free(err);
        return 1;
    }
    double in[5] = {2, -1, -3, -2, -3}, g[5];
    double s = 1 / (1 + exp(-1.0)), ds = s * (1 - s);
    double want[5] = {ds * -1, ds * 2, ds * -2, ds * -3, ds};
    double v = gradc_grad(f, in, g);
    int ok = gradc_num_inputs(f) == 5 && fabs(v - s) < 1e-14;
    for (int i = 0; i < 5; i++) {
        printf("d/d%s = %.6f\n", gradc_input_name(f, i), g[i]);
        ok &= fabs(g[i] - want[i]) < 1e-14;
    }
    printf("value = %.6f: %s\n", v, ok ? "right" : "WRONG");
    gradc_release(f);
    return ok ? 0 : 1;
}

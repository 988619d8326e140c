/* rt.h — the run-time library's internal interface, used by its public API
 * (api.c) and by the command-line driver: a compiled kernel, loaded. */
#ifndef GRADC_RT_H
#define GRADC_RT_H

#include "gradc.h"
#include "gradc_runtime.h"

typedef struct Loaded {
    gradc_so *so;
    double (*value)(const double *in);
    double (*grad)(const double *in, double *grad);
    double (*value_work)(const double *in, double *work);
    double (*grad_work)(const double *in, double *grad, double *work);
    uint32_t work;              /* doubles of scratch, when the _work forms */
} Loaded;

/* Emits k as C, compiles and loads it. Returns 0, or -1 with *err set. */
int rt_load(const Kernel *k, const gradc_options *opt, Loaded *out, char **err);
double rt_value(const Loaded *l, const double *in);
double rt_grad(const Loaded *l, const double *in, double *grad);
void rt_unload(Loaded *l);

const char *gradc_default_cc(const gradc_options *opt);
const char *gradc_default_cflags(const gradc_options *opt);

#endif

/* rt.h — the run-time library's internal interface, used by its public API
 * (api.c) and by the command-line driver: a compiled kernel, loaded. */
#ifndef GRADC_RT_H
#define GRADC_RT_H

#include "gradc.h"
#include "gradc_runtime.h"

typedef struct Loaded {
    gradc_so *so;
    /* NAME_rt of the emitted code (compiler/emit_c.c): the value into out,
     * and when grad is not null the gradient (scalar values) or the VJP
     * with seed v (tensor values) into grad and grad_params. */
    void (*entry)(const double *in, const double *params, const double *v,
                  double *out, double *grad, double *grad_params, double *work);
    uint32_t in_size, params_size, out_size;
    uint32_t work;              /* doubles of scratch the entry needs */
    /* NAME_rt2, present when the kernel has f_jvp, f_hvp or f_hess: J v
     * and H v with direction v into jv and hv, the gradient by the
     * variables and the Hessian's entries into grad and H (each when not
     * null). */
    void (*entry2)(const double *in, const double *params, const double *v,
                   double *jv, double *hv, double *grad, double *H, double *work);
} Loaded;

/* How rt_load emits kernels: fixed symbol names, so user names never need
 * to be valid C. */
extern const EmitOptions rt_emit;
/* Emits k as C, compiles and loads it, through the cache (cache.c) unless
 * opt disables it. Returns 0, or -1 with *err set. */
int rt_load(const Kernel *k, const gradc_options *opt, Loaded *out, char **err);
/* rt_load that also appends the cache's hit/miss explanation to why. */
int rt_load_explained(const Kernel *k, const gradc_options *opt, Loaded *out,
                      Buf *why, char **err);
/* Calls the entry point, providing its work array. */
void rt_call(const Loaded *l, const double *in, const double *params,
             const double *v, double *out, double *grad, double *grad_params);
/* Calls NAME_rt2 (the kernel must have one). */
void rt_call2(const Loaded *l, const double *in, const double *params, const double *v,
              double *jv, double *hv, double *grad, double *H);
double rt_value(const Loaded *l, const double *in);             /* scalar */
double rt_grad(const Loaded *l, const double *in, double *grad); /* scalar */
void rt_unload(Loaded *l);

/* ---- jit.c ---- */
/* Compiles C source into a loaded shared object; when image is not NULL
 * it receives the object file's bytes. NULL with *err set on failure. */
gradc_so *jit_compile(const char *c_source, const gradc_options *opt,
                      Buf *image, char **err);
/* Loads a shared object from its bytes (written to a 0600 file in a
 * fresh 0700 directory, loaded, then removed). */
gradc_so *jit_load_image(const void *data, size_t size, char **err);
const char *gradc_default_cc(const gradc_options *opt);
const char *gradc_default_cflags(const gradc_options *opt);

#endif

/* gradc_runtime.h — compile formulas to native code at run time and call
 * them: the public C API of libgradc_runtime.
 *
 *     char *err = NULL;
 *     gradc_fn *f = gradc_compile("(x + y) * z", NULL, &err);
 *     if (!f) { fputs(err, stderr); free(err); return 1; }
 *     double in[3] = {-2, 5, -4}, g[3];
 *     double v = gradc_grad(f, in, g);      // v = -12, g = {-4, -4, 3}
 *     gradc_release(f);
 *
 * The generated C is compiled with $CC (default "cc") into a shared object
 * that is loaded with dlopen and kept in a cache (docs/cache.md), so that a
 * formula compiled before loads in about a millisecond. Handles are independent; calling a handle's
 * functions from several threads at once is safe. */
#ifndef GRADC_RUNTIME_H
#define GRADC_RUNTIME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gradc_fn gradc_fn;

typedef struct gradc_options {
    const char *cc;             /* C compiler; NULL: $CC, else "cc" */
    const char *cflags;         /* NULL: "-O2" */
    const char *source_name;    /* name in diagnostics; NULL: "<expr>" */
    /* The cache of compiled code (docs/cache.md). NULL: $GRADC_CACHE, else
     * $XDG_CACHE_HOME/gradc/cache.sqlite, else ~/.cache/gradc/cache.sqlite */
    const char *cache_path;
    int no_cache;               /* non-zero: neither read nor write it */
    /* Comma-separated input names ("w,b"): the gradient is taken only with
     * respect to these, and gradc_grad writes only their derivatives, in
     * declaration order (gradc_num_wrt, gradc_wrt_name). NULL: all inputs. */
    const char *wrt;
} gradc_options;

/* Compiles `text`. With func == NULL, text is a bare expression whose free
 * variables are the inputs in order of first appearance; otherwise text is
 * a source file and func names the function to compile. On failure returns
 * NULL and, if err is not NULL, sets *err to the messages (free() it). */
gradc_fn *gradc_compile(const char *text, const char *func, char **err);
gradc_fn *gradc_compile_opts(const char *text, const char *func,
                             const gradc_options *opt, char **err);
/* Compiles function func of the source file at path (named so in
 * diagnostics unless opt->source_name says otherwise; func == NULL: the
 * file holds a bare expression); opt may be NULL. */
gradc_fn *gradc_compile_file(const char *path, const char *func,
                             const gradc_options *opt, char **err);

size_t gradc_num_inputs(const gradc_fn *f);
const char *gradc_input_name(const gradc_fn *f, size_t i);
double gradc_value(const gradc_fn *f, const double *in);
/* Returns the value and sets grad[i] to the derivative by input i (with
 * options.wrt: by the i-th of the inputs gradc_wrt_name lists). */
double gradc_grad(const gradc_fn *f, const double *in, double *grad);
/* The inputs gradc_grad differentiates by: all of them unless options.wrt
 * named some. */
size_t gradc_num_wrt(const gradc_fn *f);
const char *gradc_wrt_name(const gradc_fn *f, size_t i);
void gradc_release(gradc_fn *f);

/* Lower level: compile C source text and look up symbols in it. */
typedef struct gradc_so gradc_so;
gradc_so *gradc_so_compile(const char *c_source, const gradc_options *opt,
                           char **err);
void *gradc_so_symbol(gradc_so *so, const char *name);
void gradc_so_close(gradc_so *so);

#ifdef __cplusplus
}
#endif
#endif

/* api.c — the public run-time API: formula text in, callable code out,
 * built from the compiler core (parse, differentiate, emit) and jit.c. */
#include "rt.h"
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct gradc_fn {
    Loaded code;
    size_t ninputs;
    char **input_name;
    size_t nwrt;
    size_t *wrt;                /* indices into input_name */
};

/* Internal symbol names: fixed, so user names never need to be valid C. */
const EmitOptions rt_emit = {.name = "kernel", .prefix = "gradc_", .runtime_entry = 1};

int rt_load(const Kernel *k, const gradc_options *opt, Loaded *out, char **err)
{
    return rt_load_explained(k, opt, out, NULL, err);
}

int rt_load_explained(const Kernel *k, const gradc_options *opt, Loaded *out,
                      Buf *why, char **err)
{
    memset(out, 0, sizeof *out);
    /* Emits C only on a cache miss. */
    out->so = cache_so_compile(k, &rt_emit, opt, why, err);
    if (!out->so)
        return -1;
    out->work = emit_work_size(k, &rt_emit);
    out->entry = (void (*)(const double *, const double *, const double *, double *,
                           double *, double *, double *))gradc_so_symbol(out->so, "gradc_kernel_rt");
    out->entry2 = (void (*)(const double *, const double *, const double *, double *, double *,
                            double *, double *, double *))gradc_so_symbol(out->so, "gradc_kernel_rt2");
    uint32_t nin = k->ninputs - k->nparams;
    for (uint32_t i = 0; i < k->ninputs; i++) {
        uint32_t size = shape_size(k->g->node[k->input[i]].shape);
        if (i < nin)
            out->in_size += size;
        else
            out->params_size += size;
    }
    out->out_size = shape_size(k->g->node[k->value].shape);
    if (!out->entry) {
        *err = xstrdup("gradc: error: the compiled code has no entry point gradc_kernel_rt\n");
        gradc_so_close(out->so);
        out->so = NULL;
        return -1;
    }
    return 0;
}

void rt_call(const Loaded *l, const double *in, const double *params,
             const double *v, double *out, double *grad, double *grad_params)
{
    double *w = l->work ? xmalloc(l->work * sizeof *w) : NULL;
    l->entry(in, params, v, out, grad, grad_params, w);
    free(w);
}

void rt_call2(const Loaded *l, const double *in, const double *params, const double *v,
              double *jv, double *hv, double *grad, double *H)
{
    double *w = l->work ? xmalloc(l->work * sizeof *w) : NULL;
    l->entry2(in, params, v, jv, hv, grad, H, w);
    free(w);
}

double rt_value(const Loaded *l, const double *in)
{
    double v;
    rt_call(l, in, NULL, NULL, &v, NULL, NULL);
    return v;
}

double rt_grad(const Loaded *l, const double *in, double *grad)
{
    double v;
    rt_call(l, in, NULL, NULL, &v, grad, NULL);
    return v;
}

void rt_unload(Loaded *l)
{
    gradc_so_close(l->so);
    memset(l, 0, sizeof *l);
}

static char *take_diag(Diag *d)
{
    char *s = d->out.data ? d->out.data : xstrdup("gradc: error: compilation failed\n");
    d->out.data = NULL;
    diag_free(d);
    return s;
}

gradc_fn *gradc_compile_opts(const char *text, const char *func,
                             const gradc_options *opt, char **err)
{
    char *dummy = NULL;
    if (!err)
        err = &dummy;
    *err = NULL;
    Source src = {opt && opt->source_name ? opt->source_name : "<expr>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, func == NULL, &d);
    Func *f = !p ? NULL : func ? program_find(p, func) : p->bare;
    if (p && !f)
        diag_plain(&d, "%s has no function named '%s'", src.name, func);
    if (!f) {
        *err = take_diag(&d);
        program_free(p);
        free(dummy);
        return NULL;
    }
    uint8_t *wrt = NULL;
    if (opt && opt->wrt) {
        Source list = {"<wrt>", opt->wrt, strlen(opt->wrt)};
        wrt = xmalloc(f->ninputs + 1);
        if (front_wrt(f, &list, wrt, &d) != 0) {
            *err = take_diag(&d);
            free(wrt);
            program_free(p);
            free(dummy);
            return NULL;
        }
    }
    diag_free(&d);
    Kernel *k = opt_kernel_wrt(p, f, wrt);
    free(wrt);
    gradc_fn *fn = xmalloc(sizeof *fn);
    memset(fn, 0, sizeof *fn);
    fn->ninputs = f->ninputs;
    fn->input_name = xmalloc((f->ninputs + 1) * sizeof *fn->input_name);
    for (uint32_t i = 0; i < f->ninputs; i++)
        fn->input_name[i] = xstrdup(f->input_name[i]);
    fn->nwrt = k->nwrt;
    fn->wrt = xmalloc((k->nwrt + 1) * sizeof *fn->wrt);
    for (uint32_t j = 0; j < k->nwrt; j++)
        fn->wrt[j] = k->wrt[j];
    int rc = rt_load(k, opt, &fn->code, err);
    kernel_free(k);
    program_free(p);
    if (rc != 0) {
        gradc_release(fn);
        free(dummy);
        return NULL;
    }
    return fn;
}

gradc_fn *gradc_compile(const char *text, const char *func, char **err)
{
    return gradc_compile_opts(text, func, NULL, err);
}

gradc_fn *gradc_compile_file(const char *path, const char *func,
                             const gradc_options *opt, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err) {
            Buf b = {0};
            buf_printf(&b, "gradc: error: cannot read '%s': %s\n", path, strerror(errno));
            *err = b.data;
        }
        return NULL;
    }
    Buf text = {0};
    buf_puts(&text, "");
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&text, chunk, n);
    fclose(f);
    gradc_options o = opt ? *opt : (gradc_options){0};
    if (!o.source_name)
        o.source_name = path;
    gradc_fn *fn = gradc_compile_opts(text.data, func, &o, err);
    buf_free(&text);
    return fn;
}

size_t gradc_num_inputs(const gradc_fn *f) { return f->ninputs; }

const char *gradc_input_name(const gradc_fn *f, size_t i)
{
    return i < f->ninputs ? f->input_name[i] : NULL;
}

size_t gradc_num_wrt(const gradc_fn *f) { return f->nwrt; }

const char *gradc_wrt_name(const gradc_fn *f, size_t i)
{
    return i < f->nwrt ? f->input_name[f->wrt[i]] : NULL;
}

double gradc_value(const gradc_fn *f, const double *in) { return rt_value(&f->code, in); }

double gradc_grad(const gradc_fn *f, const double *in, double *grad)
{
    return rt_grad(&f->code, in, grad);
}

void gradc_release(gradc_fn *f)
{
    if (!f)
        return;
    rt_unload(&f->code);
    for (size_t i = 0; i < f->ninputs; i++)
        free(f->input_name[i]);
    free(f->input_name);
    free(f->wrt);
    free(f);
}

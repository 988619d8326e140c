/* cli.h — the command-line driver's shared helpers. The driver is a thin
 * layer over the compiler core and the run-time library. */
#ifndef GRADC_CLI_H
#define GRADC_CLI_H

#include "gradc.h"
#include "rt.h"

/* A source to compile: a file (path), or command-line text ("<expr>"). */
typedef struct Input {
    Source src;
    char *owned;                /* file contents, freed by input_free */
    char *owned_name;
    const char *func;           /* FILE:FUNC or --func, else NULL */
    int bare;                   /* text is a bare expression */
    const BareShape *shapes;    /* shapes of bare inputs (from --at values) */
    uint32_t nshapes;
} Input;

int input_from_file(Input *in, const char *path, Diag *d);
void input_from_text(Input *in, const char *text);
/* "model.grad:neuron" names a function in a file when the file exists. */
int input_from_spec(Input *in, const char *spec, Diag *d);
/* The same with --func NAME: spec must then be a file. */
int input_from_spec_func(Input *in, const char *spec, const char *func, Diag *d);
void input_free(Input *in);
/* Parses and finds the function to work on; NULL after reporting errors. */
Func *input_compile(Input *in, Program **prog, Diag *d);

/* The --wrt list of f (text as given) as a mask of f's inputs in *wrt
 * (free() it); errors point into "<wrt>". With freeze, a network's
 * parameters are constants and cannot be listed. Returns 0 or -1. */
int cli_wrt(const Func *f, const char *text, int freeze, uint8_t **wrt, Diag *d);

/* Writes diagnostics text to stderr, its error:/warning:/note: labels in
 * colour when stderr is a terminal and NO_COLOR is not set. */
void cli_eputs(const char *text);

/* ---- at.c: the values of --at ---- */
/* One NAME=VALUE assignment taken from --at text; VALUE a number or a
 * (nested) list of numbers. */
typedef struct Assign {
    const char *name;           /* points into the --at text */
    size_t len;
    Shape shape;
    double *data;               /* shape_size(shape) numbers; free() it */
    int used;
    Loc loc, vloc;              /* of the name, of the value */
    const Source *src;
} Assign;
/* Splits "x=1,y=[1,2]" (the text of one --at, named "<at>") into
 * assignments appended to out[*n..max), reporting each malformed part in
 * d. */
void at_parse(const Source *s, Assign *out, int max, int *n, Diag *d);

/* Prints the accumulated diagnostics to stderr and returns 1. */
int report(Diag *d);
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- cache.c: options shared by every command that compiles ---- */
typedef struct CacheOpts {
    const char *path;           /* --cache PATH */
    int disabled;               /* --no-cache */
    int explain;                /* --explain-cache */
} CacheOpts;
/* When argv[*i] is --cache PATH, --cache=PATH, --no-cache or
 * --explain-cache, records it (advancing *i past a value) and returns 1;
 * returns 0 for any other argument, -1 after a usage error. */
int cli_cache_option(CacheOpts *c, const char *cmd, int argc, char **argv, int *i);
/* Run-time options selecting that cache (other fields zero). */
gradc_options cli_cache_runtime_options(const CacheOpts *c);

int cmd_eval(int argc, char **argv);
int cmd_emit(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_check(int argc, char **argv);          /* check.c */
int cmd_explain(int argc, char **argv);        /* explain.c (with trace.c) */
int cmd_graph(int argc, char **argv);          /* graph.c (with trace.c) */

#endif

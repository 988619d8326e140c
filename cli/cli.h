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
} Input;

int input_from_file(Input *in, const char *path, Diag *d);
void input_from_text(Input *in, const char *text);
/* "model.grad:neuron" names a function in a file when the file exists. */
int input_from_spec(Input *in, const char *spec, Diag *d);
void input_free(Input *in);
/* Parses and finds the function to work on; NULL after reporting errors. */
Func *input_compile(Input *in, Program **prog, Diag *d);

/* Prints the accumulated diagnostics to stderr and returns 1. */
int report(Diag *d);
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int cmd_eval(int argc, char **argv);
int cmd_emit(int argc, char **argv);

#endif

/* pipeline.h — one input through the whole compiler in process, for the
 * fuzzer (fuzz_compile.c) and its regression test (test_fuzz_regressions.c):
 * parse in bare and file mode, then for every function build the gradient
 * kernel, emit C and a header, and interpret it. No C compiler, no dlopen. */
#ifndef GRADC_FUZZ_PIPELINE_H
#define GRADC_FUZZ_PIPELINE_H

#include "gradc.h"

#include <stddef.h>

/* Returns 0, or -1 with the broken rule in why (the Diag disagreed with
 * the result, or a message was not "FILE:LINE:COL: error|note: ..."). A
 * crash, a leak or undefined behaviour is for the sanitizers to catch. */
int fuzz_pipeline(const char *data, size_t size, char *why, size_t nwhy);

/* A problem file (docs/check.md): parse it, run every check's left side on
 * the interpreter, compare it with the expected value and format both as
 * `gradc check` reports them. Returns 0, or -1 with the broken rule. */
int fuzz_check_pipeline(const char *data, size_t size, char *why, size_t nwhy);

/* The text of one `gradc eval --at` (cli/at.c): parse it; every value must
 * read back bit for bit from its printed form, and every error be reported
 * at "<at>:1:COL". Returns 0, or -1 with the broken rule. */
int fuzz_at_pipeline(const char *data, size_t size, char *why, size_t nwhy);

/* The Diag agrees with itself: every line "NAME:LINE:COL: error|note: "
 * (1 <= LINE <= lines of src + 1, COL >= 1) or an excerpt line, and one
 * error line per counted error. Returns 0, or -1 with the broken rule. */
int fuzz_diag_ok(const Diag *d, const Source *src, char *why, size_t nwhy);

#endif

/* pipeline.h — one input through the whole compiler in process, for the
 * fuzzer (fuzz_compile.c) and its regression test (test_fuzz_regressions.c):
 * parse in bare and file mode, then for every function build the gradient
 * kernel, emit C and a header, and interpret it. No C compiler, no dlopen. */
#ifndef GRADC_FUZZ_PIPELINE_H
#define GRADC_FUZZ_PIPELINE_H

#include <stddef.h>

/* Returns 0, or -1 with the broken rule in why (the Diag disagreed with
 * the result, or a message was not "FILE:LINE:COL: error|note: ..."). A
 * crash, a leak or undefined behaviour is for the sanitizers to catch. */
int fuzz_pipeline(const char *data, size_t size, char *why, size_t nwhy);

#endif

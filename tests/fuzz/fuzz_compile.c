/* fuzz_compile.c — libFuzzer target: arbitrary bytes through the whole
 * compiler in process (pipeline.h), in bare and in file mode. Any crash,
 * hang, leak or sanitizer report is a bug; so is a Diag that disagrees
 * with the result (then we abort with the rule that broke).
 * Build with -DGRADC_FUZZ=ON; docs/testing.md says how to run it. */
#include "pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    if (size > 64 * 1024)
        return 0;               /* big inputs only slow the search down */
    if (fuzz_pipeline((const char *)data, size, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_compile: %s\n", why);
        abort();
    }
    return 0;
}

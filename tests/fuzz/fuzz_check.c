/* fuzz_check.c — libFuzzer target: arbitrary bytes as a problem file
 * (docs/check.md). The checks are parsed, their left sides run on the
 * interpreter, compared with the expected values and formatted as
 * `gradc check` reports them (pipeline.h). Any crash, hang, leak or
 * sanitizer report is a bug; so is a Diag that disagrees with the result.
 * Build with -DGRADC_FUZZ=ON; docs/robustness.md says how to run it. */
#include "pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    if (size > 64 * 1024)
        return 0;
    if (fuzz_check_pipeline((const char *)data, size, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_check: %s\n", why);
        abort();
    }
    return 0;
}

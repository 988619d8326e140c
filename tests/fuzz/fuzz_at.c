/* fuzz_at.c — libFuzzer target: arbitrary bytes as the text of one
 * `gradc eval --at` (cli/at.c). Any crash, read past the text, leak or
 * sanitizer report is a bug; so is a value that does not read back from
 * its printed form, or an error not reported at "<at>:1:COL".
 * Build with -DGRADC_FUZZ=ON; docs/robustness.md says how to run it. */
#include "pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    if (size > 16 * 1024)
        return 0;
    if (fuzz_at_pipeline((const char *)data, size, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_at: %s\n", why);
        abort();
    }
    return 0;
}

/* support.c — helpers shared by the tests that run the gradc binary. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

#include "gradc.h"

char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    Buf b = {0};
    buf_puts(&b, "");
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            buf_put(&b, chunk, n);
        fclose(f);
    }
    return b.data;
}

void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

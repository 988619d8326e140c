/* support.h — helpers shared by the tests that run the gradc binary. */
#ifndef GRADC_TEST_SUPPORT_H
#define GRADC_TEST_SUPPORT_H

/* What a finished process printed, and how it ended. */
typedef struct Run {
    int status;                 /* exit status, or -1 */
    char *out, *err;
} Run;

/* The whole file as a string ("" when it cannot be read); free() it. */
char *slurp(const char *path);
void run_free(Run *r);

#endif

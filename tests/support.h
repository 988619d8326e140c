/* support.h — helpers shared by the tests: running the gradc binary,
 * emitting and loading C. */
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

/* A new directory /tmp/gradc-test-TAG-XXXXXX, removed with everything in
 * it when the test's process exits; free() the string. */
char *support_tmpdir(const char *tag);

/* Runs a shell command (printf-style, at most 4 KB); its standard output
 * (with stderr if the command redirects it) in *out unless out is NULL
 * (free() it), the exit status returned (-1: killed by a signal). */
int support_shell(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Tests of the compiler core: the C of kernel k (its header when header
 * is set), asserting that emission succeeds; free() it. */
struct Kernel;
struct EmitOptions;
char *support_emit(const struct Kernel *k, const struct EmitOptions *o, int header);
/* C source compiled and loaded by the run-time library, uncached. */
struct gradc_so *support_load(const char *src);
/* How many times needle occurs in hay. */
int support_count(const char *hay, const char *needle);

#endif

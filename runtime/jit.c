/* jit.c — C text to loaded code: write it to a private temporary directory,
 * compile it with the system C compiler into a shared object, dlopen it,
 * and remove the files (the mapping stays valid). The object's bytes can
 * be kept (for the cache) and loaded again the same way. */
#include "rt.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct gradc_so {
    void *handle;
};

static char *errorf(const char *fmt, ...)
{
    Buf b = {0};
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_printf(&b, "gradc: error: %s\n", msg);
    return b.data;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    return close(fd);
}

static int write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    return close(fd);
}

/* The whole file into b; 0, or -1 with errno set. */
static int slurp(const char *path, Buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    Buf b = {0};
    buf_puts(&b, "");
    if (!f)
        return b.data;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 65536)
        buf_put(&b, chunk, n);
    fclose(f);
    return b.data;
}

/* Splits "ccache gcc -m64" into argv words (no quoting: as make does). */
static int split_words(const char *s, char **words, int max, char *store)
{
    int n = 0;
    strcpy(store, s);
    for (char *tok = strtok(store, " \t"); tok && n < max; tok = strtok(NULL, " \t"))
        words[n++] = tok;
    return n;
}

const char *gradc_default_cc(const gradc_options *opt)
{
    if (opt && opt->cc && *opt->cc)
        return opt->cc;
    const char *cc = getenv("CC");
    return cc && *cc ? cc : "cc";
}

const char *gradc_default_cflags(const gradc_options *opt)
{
    return opt && opt->cflags ? opt->cflags : "-O2";
}

/* Runs the compiler; returns 0 or an error message. */
static char *run_compiler(const gradc_options *opt, const char *dir)
{
    const char *cc = gradc_default_cc(opt);
    const char *cflags = gradc_default_cflags(opt);
    size_t storelen = strlen(cc) + strlen(cflags) + 2;
    char *store = xmalloc(storelen), *store2 = xmalloc(storelen);
    char *argv[64];
    int argc = split_words(cc, argv, 16, store);
    argc += split_words(cflags, argv + argc, 32, store2);
    char src[4200], so[4200], log[4200];
    snprintf(src, sizeof src, "%s/gen.c", dir);
    snprintf(so, sizeof so, "%s/gen.so", dir);
    snprintf(log, sizeof log, "%s/cc.log", dir);
    const char *tail[] = {"-shared", "-fPIC", "-o", so, src, "-lm", NULL};
    for (int i = 0; tail[i]; i++)
        argv[argc++] = (char *)tail[i];
    argv[argc] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    char *err = NULL;
    int rc = argc > 6 ? posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) : ENOENT;
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        err = errorf("cannot run the C compiler '%s': %s; install one (e.g. apt-get install gcc) or set $CC",
                     cc, strerror(rc));
    } else {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char *out = read_file(log);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                err = errorf("cannot run the C compiler '%s' (exit status 127); install one or set $CC:\n%s", cc, out);
            else if (WIFEXITED(status))
                err = errorf("the C compiler '%s' failed with exit status %d:\n%s", cc, WEXITSTATUS(status), out);
            else
                err = errorf("the C compiler '%s' was killed by signal %d:\n%s", cc, WTERMSIG(status), out);
            free(out);
        }
    }
    free(store);
    free(store2);
    return err;
}

static void remove_dir(const char *dir)
{
    const char *names[] = {"gen.c", "gen.so", "cc.log"};
    char path[4200];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* A fresh private (0700) directory under base. */
static char *private_dir_in(const char *base, char dir[4096])
{
    snprintf(dir, 4096, "%s/gradc-XXXXXX", base);
    if (mkdtemp(dir))
        return NULL;
    return errorf("cannot create a temporary directory in %s: %s", base, strerror(errno));
}

/* A fresh private directory under $TMPDIR or /tmp. */
static char *private_dir(char dir[4096])
{
    const char *tmp = getenv("TMPDIR");
    return private_dir_in(tmp && *tmp ? tmp : "/tmp", dir);
}

static gradc_so *finish(void *h, char *e, char **err)
{
    if (e) {
        if (err)
            *err = e;
        else
            free(e);
        return NULL;
    }
    gradc_so *s = xmalloc(sizeof *s);
    s->handle = h;
    return s;
}

gradc_so *jit_compile(const char *c_source, const gradc_options *opt,
                      Buf *image, char **err)
{
    char dir[4096];
    char *e = private_dir(dir);
    if (e)
        return finish(NULL, e, err);
    char src[4200], so[4200];
    snprintf(src, sizeof src, "%s/gen.c", dir);
    snprintf(so, sizeof so, "%s/gen.so", dir);
    if (write_file(src, c_source) != 0)
        e = errorf("cannot write %s: %s", src, strerror(errno));
    if (!e)
        e = run_compiler(opt, dir);
    /* Read the object before loading it: what is cached is exactly what
     * was loaded. */
    if (!e && image && slurp(so, image) != 0)
        e = errorf("cannot read the compiled object %s: %s", so, strerror(errno));
    void *h = NULL;
    if (!e && !(h = dlopen(so, RTLD_NOW | RTLD_LOCAL)))
        e = errorf("cannot load the compiled code: %s", dlerror());
    remove_dir(dir);
    return finish(h, e, err);
}

/* Writes the object to a 0600 file in a fresh private directory under
 * base and loads it; NULL with *e set when any step fails. */
static void *load_in(const char *base, const void *data, size_t size, char **e)
{
    char dir[4096], so[4200];
    if ((*e = private_dir_in(base, dir)))
        return NULL;
    snprintf(so, sizeof so, "%s/gen.so", dir);
    void *h = NULL;
    if (write_bytes(so, data, size) != 0)
        *e = errorf("cannot write %s: %s", so, strerror(errno));
    else if (!(h = dlopen(so, RTLD_NOW | RTLD_LOCAL)))
        *e = errorf("cannot load the cached code: %s", dlerror());
    remove_dir(dir);
    return h;
}

gradc_so *jit_load_image(const void *data, size_t size, char **err)
{
    /* Memory-backed places first: creating files on a busy disk costs
     * milliseconds, which is what a cache hit is meant to save. A place
     * where loading fails (missing, full, mounted noexec) is skipped. */
    const char *run = getenv("XDG_RUNTIME_DIR"), *tmp = getenv("TMPDIR");
    const char *base[] = {run && *run == '/' ? run : NULL, "/dev/shm",
                          tmp && *tmp ? tmp : "/tmp"};
    char *e = NULL;
    for (int i = 0; i < 3; i++) {
        if (!base[i])
            continue;
        free(e);
        void *h = load_in(base[i], data, size, &e);
        if (h)
            return finish(h, NULL, err);
    }
    return finish(NULL, e, err);
}

gradc_so *gradc_so_compile(const char *c_source, const gradc_options *opt, char **err)
{
    return jit_compile(c_source, opt, NULL, err);
}

void *gradc_so_symbol(gradc_so *so, const char *name)
{
    return so ? dlsym(so->handle, name) : NULL;
}

void gradc_so_close(gradc_so *so)
{
    if (!so)
        return;
    dlclose(so->handle);
    free(so);
}

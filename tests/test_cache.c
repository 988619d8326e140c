/* test_cache.c — the SQLite cache of compiled graphs (runtime/cache.c):
 * hits after misses, what the key does and does not depend on, recovery
 * from damaged files, the trust rules, concurrency, eviction order and
 * read-only or full locations. Every cache lives in a fresh private
 * temporary directory, never in the user's own cache. Expected numbers
 * are worked by hand: (x + y) * z at x=1, y=2, z=3 is 9 with gradient
 * (3, 3, 3); x*y + k at x=1, y=2 is 2 + k. */
#include "support.h"
#include <criterion/criterion.h>

#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *made_dirs[64];
static int nmade;

static char *fresh_dir(void)
{
    char *d = strdup("/tmp/gradc-test-cache-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    if (nmade < 64)
        made_dirs[nmade++] = strdup(d);
    return d;
}

/* Removes the test's directories (each test runs in its own process). */
static void remove_dirs(void)
{
    for (int i = 0; i < nmade; i++) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "chmod -R u+rwX '%s' 2>/dev/null; rm -rf '%s'",
                 made_dirs[i], made_dirs[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", made_dirs[i]);
    }
    nmade = 0;
}

TestSuite(cache, .fini = remove_dirs);

static char *join(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 2);
    sprintf(s, "%s/%s", a, b);
    return s;
}


static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Runs gradc with args (NULL-terminated) and GRADC_CACHE=cache (unset
 * when NULL), optionally as user `uid` (when >= 0) with TMPDIR=tmpdir and
 * a copy of gradc in tmpdir (the build tree may be closed to that user). */
static Run run_as(const char *cache, int uid, const char *tmpdir, const char *const *args)
{
    char bin[4200];
    snprintf(bin, sizeof bin, "%s", GRADC_BIN);
    if (uid >= 0) {
        snprintf(bin, sizeof bin, "%s/gradc", tmpdir);
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 755 '%s'", GRADC_BIN, bin, bin);
        cr_assert_eq(system(cmd), 0);
    }
    char *dir = fresh_dir();
    char *outp = join(dir, "out"), *errp = join(dir, "err");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        if (cache)
            setenv("GRADC_CACHE", cache, 1);
        else
            unsetenv("GRADC_CACHE");
        if (tmpdir)
            setenv("TMPDIR", tmpdir, 1);
        if (uid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0))
            _exit(126);
        const char *argv[32] = {bin};
        int n = 1;
        for (; args[n - 1]; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    Run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(outp), slurp(errp)};
    unlink(outp);
    unlink(errp);
    rmdir(dir);
    free(outp);
    free(errp);
    free(dir);
    return r;
}

static Run run(const char *cache, const char *const *args)
{
    return run_as(cache, -1, NULL, args);
}


#define EVAL(...) ((const char *const[]){"eval", __VA_ARGS__, NULL})

static const char product_out[] = "{\"value\": 9, \"grad\": {\"x\": 3, \"y\": 3, \"z\": 3}}\n";

/* Evaluates (x + y) * z through the cache and checks the answer. */
static Run eval_product(const char *cache, const char *extra)
{
    Run r = extra ? run(cache, EVAL("(x + y) * z", "--at", "x=1,y=2,z=3", "--grad", "--json", extra))
                  : run(cache, EVAL("(x + y) * z", "--at", "x=1,y=2,z=3", "--grad", "--json"));
    cr_assert_eq(r.status, 0, "gradc failed: %s", r.err);
    cr_assert_str_eq(r.out, product_out);
    return r;
}

static long long json_int(const char *json, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", name);
    const char *p = strstr(json, pat);
    cr_assert_not_null(p, "no %s in %s", name, json);
    return strtoll(p + strlen(pat), NULL, 10);
}

static Run stats(const char *cache)
{
    Run r = run(cache, (const char *const[]){"cache", "stats", "--json", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    return r;
}

/* The key of a formula (bare expression or FILE text with function fn). */
static void key_of(const char *text, const char *fn, const gradc_options *opt,
                   const EmitOptions *eo, CacheKey *key)
{
    Source src = {"<test>", text, strlen(text)};
    Diag d;
    diag_init(&d);
    Program *p = front_parse(&src, fn == NULL, &d);
    cr_assert_not_null(p, "%s", d.out.data);
    Func *f = fn ? program_find(p, fn) : p->bare;
    cr_assert_not_null(f);
    Kernel *k = opt_kernel(p, f, 1);
    cache_key_for(key, k, eo ? eo : &rt_emit, opt);
    kernel_free(k);
    program_free(p);
    diag_free(&d);
}

static char *key_hex(const char *text, const char *fn, const gradc_options *opt)
{
    CacheKey k;
    key_of(text, fn, opt, NULL, &k);
    char *hex = strdup(k.hex);
    cache_key_free(&k);
    return hex;
}

/* A synthetic key, for tests of the store itself. */
static void fake_key(CacheKey *k, const char *ir)
{
    memset(k, 0, sizeof *k);
    k->ir = strdup(ir);
    k->options = strdup("name=kernel");
    k->compiler = strdup("/usr/bin/cc size=1 mtime=1");
    k->flags = strdup("-O2");
    k->version = strdup(cache_build_identity());
    cache_key_finish(k);
}

static void note_key(const CacheEntry *e, void *ctx)
{
    Buf *b = ctx;
    buf_printf(b, "%s\n", e->key);
}

/* Whether k is stored, without touching it (a get would count a use). */
static int present(Cache *c, const CacheKey *k)
{
    Buf b = {0};
    buf_puts(&b, "");
    cr_assert_eq(cache_list(c, note_key, &b), 0);
    int yes = strstr(b.data, k->hex) != NULL;
    buf_free(&b);
    return yes;
}

/* Looks k up, which counts as a use when it is there. */
static int has_key(Cache *c, const CacheKey *k)
{
    void *obj = NULL;
    size_t n = 0;
    int r = cache_get(c, k, &obj, &n);
    free(obj);
    return r == CACHE_HIT;
}

/* Flips one byte in the middle of every stored object, from outside. */
static void flip_object_bytes(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *sel, *upd;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT id, object FROM payload", -1, &sel, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE payload SET object = ?2 WHERE id = ?1", -1, &upd, NULL),
                 SQLITE_OK);
    int n = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        int len = sqlite3_column_bytes(sel, 1);
        unsigned char *obj = malloc((size_t)len);
        memcpy(obj, sqlite3_column_blob(sel, 1), (size_t)len);
        obj[len / 2] ^= 0x40;
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
        sqlite3_bind_blob(upd, 2, obj, len, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(upd), SQLITE_DONE);
        sqlite3_reset(upd);
        free(obj);
        n++;
    }
    cr_assert_eq(n, 1);
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sqlite3_close(db);
}

/* The number of rows of a table, read from outside gradc. */
static int count_rows(const char *path, const char *table)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char q[128];
    snprintf(q, sizeof q, "SELECT count(*) FROM %s", table);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Rewrites one SQL statement into a cache file from outside gradc. */
static void sql(const char *path, const char *stmt)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, &msg), SQLITE_OK, "%s", msg);
    sqlite3_close(db);
}

/* ---- hits and misses ---- */

Test(cache, hit_after_miss)
{
    char *dir = fresh_dir(), *cache = join(dir, "sub/dir/cache.sqlite");
    Run a = eval_product(cache, "--explain-cache");
    cr_assert(strstr(a.err, "gradc: cache miss:"), "%s", a.err);
    Run b = eval_product(cache, "--explain-cache");
    cr_assert(strstr(b.err, "gradc: cache hit:"), "%s", b.err);
    Run s = stats(cache);
    cr_assert_eq(json_int(s.out, "entries"), 1);
    cr_assert_eq(json_int(s.out, "hits"), 1);
    cr_assert_eq(json_int(s.out, "misses"), 1);
    cr_assert(json_int(s.out, "bytes") > 1000, "%s", s.out);
    /* The missing directories were created private, the file 0600. */
    struct stat st;
    char *sub = join(dir, "sub/dir");
    cr_assert_eq(stat(sub, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(stat(cache, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    run_free(&a);
    run_free(&b);
    run_free(&s);
}

Test(cache, stats_json_is_one_object_with_the_documented_keys)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    Run s = stats(cache);
    char expect[4200];
    snprintf(expect, sizeof expect,
             "{\"entries\": 0, \"bytes\": 0, \"hits\": 0, \"misses\": 0, \"path\": \"%s\"}\n", cache);
    cr_assert_str_eq(s.out, expect);
    run_free(&s);
}

Test(cache, no_cache_and_cache_option)
{
    char *dir = fresh_dir(), *env = join(dir, "env.sqlite"), *opt = join(dir, "opt.sqlite");
    Run a = eval_product(env, "--no-cache");
    struct stat st;
    cr_assert_neq(stat(env, &st), 0, "--no-cache created the cache");
    run_free(&a);
    Run b = run(env, EVAL("(x + y) * z", "--at", "x=1,y=2,z=3", "--grad", "--json", "--cache", opt));
    cr_assert_eq(b.status, 0);
    cr_assert_str_eq(b.out, product_out);
    cr_assert_eq(stat(opt, &st), 0, "--cache PATH was not used");
    cr_assert_neq(stat(env, &st), 0, "--cache PATH did not override GRADC_CACHE");
    run_free(&b);
}

Test(cache, list_clear_and_gc)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    Run a = eval_product(cache, NULL);
    Run l = run(cache, (const char *const[]){"cache", "list", NULL});
    cr_assert_eq(l.status, 0);
    cr_assert_eq(count_lines(l.out), 2, "%s", l.out);     /* header + one entry */
    cr_assert(strstr(l.out, "function f(x, y, z)"), "%s", l.out);
    Run g = run(cache, (const char *const[]){"cache", "gc", NULL});
    cr_assert_eq(g.status, 0);
    cr_assert(strstr(g.out, "removed 0 entries"), "%s", g.out);
    /* An entry of another gradc build is dropped by gc. */
    sql(cache, "UPDATE entry SET version = 'gradc 0.0.1 build old'");
    Run g2 = run(cache, (const char *const[]){"cache", "gc", NULL});
    cr_assert(strstr(g2.out, "removed 1 entries"), "%s", g2.out);
    Run b = eval_product(cache, NULL);
    Run c = run(cache, (const char *const[]){"cache", "clear", NULL});
    cr_assert_eq(c.status, 0);
    Run s = stats(cache);
    cr_assert_eq(json_int(s.out, "entries"), 0);
    cr_assert_eq(json_int(s.out, "hits"), 0);
    cr_assert_eq(json_int(s.out, "misses"), 0);
    Run *all[] = {&a, &l, &g, &g2, &b, &c, &s};
    for (int i = 0; i < 7; i++)
        run_free(all[i]);
}

Test(cache, check_uses_the_cache_and_its_options)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite"), *file = join(dir, "cube.grad");
    FILE *f = fopen(file, "w");
    /* d/dx x^3 = 3 x^2: 12 at x = 2. */
    fputs("cube(x) = x^3\ncheck grad cube(2) == 12\n", f);
    fclose(f);
    for (int i = 0; i < 2; i++) {
        Run r = run(NULL, (const char *const[]){"check", file, "--cache", cache, NULL});
        cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
        cr_assert(strstr(r.out, "1 passed, 0 failed"), "%s", r.out);
        run_free(&r);
    }
    Run s = stats(cache);
    cr_assert_eq(json_int(s.out, "entries"), 1, "%s", s.out);
    cr_assert_eq(json_int(s.out, "hits"), 1, "%s", s.out);
    run_free(&s);
    char *other = join(dir, "other.sqlite");
    Run n = run(other, (const char *const[]){"check", file, "--no-cache", NULL});
    cr_assert_eq(n.status, 0);
    struct stat st;
    cr_assert_neq(stat(other, &st), 0, "--no-cache wrote a cache");
    run_free(&n);
}

Test(cache, public_api_uses_the_cache)
{
    char *dir = fresh_dir(), *cache = join(dir, "api.sqlite");
    gradc_options opt = {.cache_path = cache};
    for (int i = 0; i < 2; i++) {
        char *err = NULL;
        gradc_fn *f = gradc_compile_opts("(x + y) * z", NULL, &opt, &err);
        cr_assert_not_null(f, "%s", err);
        double in[3] = {1, 2, 3}, g[3];
        cr_assert_eq(gradc_grad(f, in, g), 9);
        cr_assert_eq(g[0], 3);
        gradc_release(f);
    }
    Cache *c = cache_open(cache);
    CacheStats s;
    cr_assert_eq(cache_stats(c, &s), 0);
    cr_assert_eq(s.entries, 1);
    cr_assert_eq(s.hits, 1);
    cr_assert_eq(s.misses, 1);
    cache_close(c);
}

Test(cache, hit_loads_when_memory_backed_places_are_unusable)
{
    /* A missing $XDG_RUNTIME_DIR is skipped for the next place. */
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite"), *tmp = join(dir, "tmp");
    mkdir(tmp, 0700);
    setenv("XDG_RUNTIME_DIR", "/nonexistent/gradc-test", 1);
    setenv("TMPDIR", tmp, 1);
    Run a = eval_product(cache, NULL);
    Run b = eval_product(cache, "--explain-cache");
    cr_assert(strstr(b.err, "gradc: cache hit:") && count_lines(b.err) == 1, "%s", b.err);
    /* Nothing is left behind where the object was written. */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", tmp);
    cr_assert_eq(system(cmd), 0, "files left in TMPDIR");
    run_free(&a), run_free(&b);
}

Test(cache, public_api_compiles_a_file_function_through_the_cache)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite"), *file = join(dir, "f.grad");
    FILE *f = fopen(file, "w");
    /* d/dx x^3 = 3 x^2 = 12 at x = 2; d/dy of y*y = 2y. */
    fputs("cube(x) = x^3\nsq(y) = y * y\n", f);
    fclose(f);
    gradc_options opt = {.cache_path = cache};
    for (int i = 0; i < 2; i++) {
        char *err = NULL;
        gradc_fn *fn = gradc_compile_file(file, "cube", &opt, &err);
        cr_assert_not_null(fn, "%s", err);
        double in = 2, g;
        cr_assert_eq(gradc_grad(fn, &in, &g), 8);
        cr_assert_eq(g, 12);
        gradc_release(fn);
    }
    Cache *c = cache_open(cache);
    CacheStats s;
    cr_assert_eq(cache_stats(c, &s), 0);
    cr_assert_eq(s.hits, 1);
    cr_assert_eq(s.misses, 1);
    cache_close(c);
    /* Errors name the file; a missing file is an error, not a crash. */
    char *err = NULL;
    cr_assert_null(gradc_compile_file(file, "nope", &opt, &err));
    cr_assert(strstr(err, "f.grad has no function named 'nope'"), "%s", err);
    free(err);
    err = NULL;
    char *missing = join(dir, "missing.grad");
    cr_assert_null(gradc_compile_file(missing, "cube", NULL, &err));
    cr_assert(strstr(err, "cannot read") && strstr(err, "missing.grad"), "%s", err);
    free(err);
}

/* ---- the key ---- */

Test(cache, key_ignores_spacing_comments_and_operand_order)
{
    const char *same[] = {
        "f(x, y, z) = (x + y) * z\n",
        "# the product of a sum\nf(x,y,z)=(x+y)*z   # trailing comment\n",
        "f(x, y, z) =     z * (y + x)\n",
        "g(a) = a\nf(x, y, z) = (x + y) * z\n",      /* another function around */
    };
    char *first = key_hex(same[0], "f", NULL);
    for (int i = 1; i < 4; i++) {
        char *k = key_hex(same[i], "f", NULL);
        cr_assert_str_eq(k, first, "source %d", i);
        free(k);
    }
    free(first);
}

Test(cache, key_changes_with_formula_options_flags_and_compiler)
{
    char *dir = fresh_dir();
    const char *text = "f(x, y, z) = (x + y) * z\n";
    gradc_options base = {.cc = "cc", .cflags = "-O2"};
    char *k0 = key_hex(text, "f", &base);
    char *k1 = key_hex("f(x, y, z) = (x - y) * z\n", "f", &base);
    cr_assert_str_neq(k0, k1, "a different formula");
    gradc_options o1 = {.cc = "cc", .cflags = "-O1"};
    char *k2 = key_hex(text, "f", &o1);
    cr_assert_str_neq(k0, k2, "different flags");
    /* Another compiler: a different program, found along $PATH. */
    char *fake = join(dir, "fakecc");
    FILE *f = fopen(fake, "w");
    fputs("#!/bin/sh\nexec cc \"$@\"\n", f);
    fclose(f);
    chmod(fake, 0755);
    gradc_options o2 = {.cc = fake, .cflags = "-O2"};
    char *k3 = key_hex(text, "f", &o2);
    cr_assert_str_neq(k0, k3, "a different compiler");
    /* The same compiler file touched (e.g. upgraded) is another compiler. */
    struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
    utimensat(AT_FDCWD, fake, times, 0);
    char *k4 = key_hex(text, "f", &o2);
    cr_assert_str_neq(k3, k4, "a changed compiler binary");
    /* Code-generation options (symbol names, stack budget). */
    CacheKey a, b;
    EmitOptions eo = rt_emit;
    eo.max_locals = 16;
    key_of(text, "f", &base, &eo, &a);
    key_of(text, "f", &base, NULL, &b);
    cr_assert_str_neq(a.hex, b.hex, "different code-generation options");
    cr_assert_str_eq(a.ir_hash, b.ir_hash);
    cache_key_free(&a);
    cache_key_free(&b);
    free(k0), free(k1), free(k2), free(k3), free(k4);
}

Test(cache, same_compiler_by_another_name_is_the_same_key)
{
    char *dir = fresh_dir(), *link = join(dir, "mycc");
    char real[PATH_MAX];
    /* "cc" resolved along $PATH to the real file, then named by a link. */
    char *id = cache_compiler_identity("cc");
    cr_assert(sscanf(id, "%4095s", real) == 1);
    cr_assert_eq(real[0], '/', "%s", id);
    cr_assert_eq(symlink(real, link), 0);
    char *id2 = cache_compiler_identity(link);
    cr_assert_str_eq(id, id2);
    cr_assert(strstr(id, " size=") && strstr(id, " mtime="), "%s", id);
    free(id);
    free(id2);
}

Test(cache, key_holds_nothing_machine_specific)
{
    /* A different temporary directory or process gives the same key. */
    gradc_options o = {.cc = "cc", .cflags = "-O2"};
    char *k1 = key_hex("(x + y) * z", NULL, &o);
    setenv("TMPDIR", "/var/tmp", 1);
    char *k2 = key_hex("(x + y) * z", NULL, &o);
    cr_assert_str_eq(k1, k2);
    CacheKey k;
    key_of("(x + y) * z", NULL, &o, NULL, &k);
    cr_assert_null(strstr(k.ir, "/tmp"));
    cr_assert_null(strstr(k.options, "/tmp"));
    cr_assert_null(strstr(k.flags, "/tmp"));
    cache_key_free(&k);
    /* A copied cache file hits for the same formula and toolchain. */
    char *d1 = fresh_dir(), *d2 = fresh_dir();
    char *c1 = join(d1, "c.sqlite"), *c2 = join(d2, "c.sqlite");
    Run a = eval_product(c1, NULL);
    Run g = run(c1, (const char *const[]){"cache", "gc", NULL});   /* folds the WAL in */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", c1, c2);
    cr_assert_eq(system(cmd), 0);
    Run b = eval_product(c2, "--explain-cache");
    cr_assert(strstr(b.err, "cache hit:"), "%s", b.err);
    run_free(&a), run_free(&g), run_free(&b);
    free(k1), free(k2);
}

Test(cache, explains_which_component_differs)
{
    char *dir = fresh_dir(), *path = join(dir, "c.sqlite");
    Cache *c = cache_open(path);
    cr_assert_not_null(c);
    CacheKey k, other;
    fake_key(&k, "function f(x)\n  %1 = input 0\n  value %1\n");
    cr_assert_eq(cache_put(c, &k, "/* C */", "object", 6), 0);
    fake_key(&other, k.ir);
    free(other.flags);
    other.flags = strdup("-O3");
    cache_key_finish(&other);
    Buf out = {0};
    cache_explain(c, &other, &out);
    cr_assert(strstr(out.data, "cache miss:") && strstr(out.data, "differs in: flags\n"), "%s", out.data);
    cr_assert(strstr(out.data, "flags: stored '-O2', now '-O3'"), "%s", out.data);
    buf_free(&out);
    cache_key_free(&other);
    fake_key(&other, "function f(x)\n  %1 = input 0\n  %2 = sin %1\n  value %2\n");
    cache_explain(c, &other, &out);
    cr_assert(strstr(out.data, "differs in: IR\n"), "%s", out.data);
    cr_assert(strstr(out.data, "first difference at line 3: stored '  value %1', now '  %2 = sin %1'"),
              "%s", out.data);
    buf_free(&out);
    cache_explain(c, &k, &out);
    cr_assert(strstr(out.data, "cache hit:"), "%s", out.data);
    buf_free(&out);
    cache_key_free(&other);
    cache_key_free(&k);
    cache_close(c);
}

Test(cache, why_command_names_the_compiler)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    Run a = eval_product(cache, NULL);
    char *fake = join(dir, "othercc");
    FILE *f = fopen(fake, "w");
    fputs("#!/bin/sh\nexec cc \"$@\"\n", f);
    fclose(f);
    chmod(fake, 0755);
    setenv("CC", fake, 1);           /* inherited by the child */
    Run w = run(cache, (const char *const[]){"cache", "why", "(x+y)*z", NULL});
    unsetenv("CC");
    cr_assert_eq(w.status, 0, "%s", w.err);
    cr_assert(strstr(w.out, "cache miss:") && strstr(w.out, "differs in: compiler\n"), "%s", w.out);
    Run h = run(cache, (const char *const[]){"cache", "why", "(x+y)*z", NULL});
    cr_assert(strstr(h.out, "cache hit:"), "%s", h.out);
    run_free(&a), run_free(&w), run_free(&h);
}

/* ---- damaged files ---- */

/* The command succeeds with one warning line, the damaged file is moved
 * aside next to the new one, and the next run is a clean hit. */
static void check_recovery(const char *dir, const char *cache)
{
    Run r = eval_product(cache, NULL);
    cr_assert_eq(count_lines(r.err), 1, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "gradc: warning: cache ") && strstr(r.err, "moved it to"), "%s", r.err);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '^c.sqlite.corrupt-'", dir);
    cr_assert_eq(system(cmd), 0, "no file moved aside");
    Run h = eval_product(cache, "--explain-cache");
    cr_assert_eq(count_lines(h.err), 1, "%s", h.err);
    cr_assert(strstr(h.err, "gradc: cache hit:"), "%s", h.err);
    run_free(&r);
    run_free(&h);
}

/* A cache with a few entries, folded into one file. */
static void populate(const char *cache)
{
    const char *formulas[] = {"sin(x) * y + z", "exp(x - y) * z", "x / (1 + y * z)", "(x + y) * z"};
    for (int i = 0; i < 4; i++) {
        Run r = run(cache, EVAL(formulas[i], "--at", "x=1,y=2,z=3"));
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_free(&r);
    }
    Run g = run(cache, (const char *const[]){"cache", "gc", NULL});
    run_free(&g);
}

Test(cache, recovers_from_a_garbage_file)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    FILE *f = fopen(cache, "w");
    for (int i = 0; i < 300; i++)
        fputs("this is not a database at all\n", f);
    fclose(f);
    chmod(cache, 0600);
    check_recovery(dir, cache);
}

Test(cache, recovers_from_a_truncated_file)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    populate(cache);
    struct stat st;
    cr_assert_eq(stat(cache, &st), 0);
    cr_assert(st.st_size > 16384);
    cr_assert_eq(truncate(cache, st.st_size / 2), 0);
    check_recovery(dir, cache);
}

Test(cache, recovers_from_a_corrupted_file)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    populate(cache);
    /* Every page but the first (the header) overwritten with a pattern. */
    int fd = open(cache, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    unsigned char junk[512];
    memset(junk, 0xa5, sizeof junk);
    for (off_t off = 4096; off < st.st_size; off += 4096)
        cr_assert_eq(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
    close(fd);
    check_recovery(dir, cache);
}

Test(cache, tampered_object_is_never_loaded)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    Run a = eval_product(cache, NULL);
    flip_object_bytes(cache);
    Run b = eval_product(cache, NULL);
    cr_assert_eq(count_lines(b.err), 1, "%s", b.err);
    cr_assert(strstr(b.err, "failed its integrity check (object hash mismatch); recompiling"), "%s", b.err);
    /* Recompiled and stored again: the next run is a clean hit. */
    Run c = eval_product(cache, "--explain-cache");
    cr_assert(strstr(c.err, "gradc: cache hit:") && count_lines(c.err) == 1, "%s", c.err);
    run_free(&a), run_free(&b), run_free(&c);
}

Test(cache, damaged_entry_reported_by_get)
{
    char *dir = fresh_dir(), *path = join(dir, "c.sqlite");
    Cache *c = cache_open(path);
    CacheKey k;
    fake_key(&k, "function f()\n");
    cr_assert_eq(cache_put(c, &k, "", "0123456789", 10), 0);
    sql(path, "UPDATE payload SET object = CAST('0123456780' AS BLOB)");
    void *obj = NULL;
    size_t n;
    cr_assert_eq(cache_get(c, &k, &obj, &n), CACHE_DAMAGED);
    cr_assert_null(obj);
    cr_assert_eq(cache_get(c, &k, &obj, &n), CACHE_MISS, "the damaged entry was not removed");
    cache_key_free(&k);
    cache_close(c);
}

/* ---- trust ---- */

Test(cache, untrusted_owner_or_mode)
{
    struct stat st = {0};
    st.st_mode = S_IFREG | 0600;
    st.st_uid = 1000;
    cr_assert_null(cache_untrusted(&st, 1000, 0));
    cr_assert_str_eq(cache_untrusted(&st, 1001, 0), "is not owned by you");
    st.st_mode = S_IFREG | 0620;
    cr_assert_str_eq(cache_untrusted(&st, 1000, 0), "is writable by group or others");
    st.st_mode = S_IFREG | 0602;
    cr_assert_str_eq(cache_untrusted(&st, 1000, 0), "is writable by group or others");
    st.st_mode = S_IFDIR | 0755;
    cr_assert_null(cache_untrusted(&st, 1000, 1));
    cr_assert_str_eq(cache_untrusted(&st, 1000, 0), "is not a regular file");
    st.st_mode = S_IFDIR | 0777;
    cr_assert_str_eq(cache_untrusted(&st, 1000, 1), "is writable by group or others");
}

Test(cache, refuses_group_or_other_writable_locations)
{
    char *dir = fresh_dir(), *shared = join(dir, "shared"), *cache = join(shared, "c.sqlite");
    mkdir(shared, 0700);
    chmod(shared, 0770);
    Run a = eval_product(cache, NULL);
    cr_assert_eq(count_lines(a.err), 1, "%s", a.err);
    cr_assert(strstr(a.err, "is writable by group or others; refusing it, running uncached"), "%s", a.err);
    struct stat st;
    cr_assert_neq(stat(cache, &st), 0, "a refused cache was written");
    chmod(shared, 0700);
    Run b = eval_product(cache, NULL);
    cr_assert_str_eq(b.err, "");
    chmod(cache, 0606);
    Run c = eval_product(cache, NULL);
    cr_assert(strstr(c.err, "c.sqlite is writable by group or others; refusing it"), "%s", c.err);
    run_free(&a), run_free(&b), run_free(&c);
}

Test(cache, refuses_a_symbolic_link)
{
    char *dir = fresh_dir(), *real = join(dir, "real.sqlite"), *link = join(dir, "c.sqlite");
    Run a = eval_product(real, NULL);
    cr_assert_eq(symlink(real, link), 0);
    Run b = eval_product(link, NULL);
    cr_assert(strstr(b.err, "is a symbolic link; refusing it"), "%s", b.err);
    run_free(&a), run_free(&b);
}

Test(cache, refuses_a_cache_owned_by_someone_else)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to run gradc as another user (cache_untrusted covers the rule)");
    /* Root's cache, used by 'nobody': not theirs, so not trusted. */
    char *dir = fresh_dir(), *cdir = join(dir, "c"), *cache = join(cdir, "c.sqlite");
    char *tmp = join(dir, "tmp");
    chmod(dir, 0755);
    mkdir(cdir, 0755);
    mkdir(tmp, 0700);
    chown(tmp, 65534, 65534);
    Run a = eval_product(cache, NULL);
    Run b = run_as(cache, 65534, tmp, EVAL("(x + y) * z", "--at", "x=1,y=2,z=3", "--grad", "--json"));
    cr_assert_eq(b.status, 0, "%s", b.err);
    cr_assert_str_eq(b.out, product_out);
    cr_assert_eq(count_lines(b.err), 1, "%s", b.err);
    cr_assert(strstr(b.err, "is not owned by you; refusing it, running uncached"), "%s", b.err);
    run_free(&a), run_free(&b);
}

/* ---- read-only and full locations ---- */

Test(cache, read_only_location_runs_uncached)
{
    /* A cache its owner cannot write. Root ignores permission bits, so as
     * root the owner is 'nobody' and gradc runs as 'nobody'. */
    int uid = geteuid() == 0 ? 65534 : -1;
    char *dir = fresh_dir(), *cdir = join(dir, "ro"), *cache = join(cdir, "c.sqlite");
    char *tmp = join(dir, "tmp");
    chmod(dir, 0755);
    mkdir(cdir, 0700);
    mkdir(tmp, 0700);
    Run a = eval_product(cache, NULL);
    char side[4200];
    if (uid >= 0) {
        chown(tmp, 65534, 65534);
        chown(cdir, 65534, 65534);
        chown(cache, 65534, 65534);
        snprintf(side, sizeof side, "%s-wal", cache);
        chown(side, 65534, 65534);
        snprintf(side, sizeof side, "%s-shm", cache);
        chown(side, 65534, 65534);
    }
    chmod(cache, 0400);
    chmod(cdir, 0500);
    Run b = run_as(cache, uid, tmp, EVAL("x * y + 4", "--at", "x=1,y=2"));
    cr_assert_eq(b.status, 0, "%s", b.err);
    cr_assert_str_eq(b.out, "value  6\n");
    cr_assert_eq(count_lines(b.err), 1, "%s", b.err);
    cr_assert(strstr(b.err, "is read-only") && strstr(b.err, "running uncached"), "%s", b.err);
    chmod(cdir, 0700);
    run_free(&a), run_free(&b);
}

Test(cache, unusable_directory_runs_uncached)
{
    /* The cache's directory would have to be made inside a regular file. */
    char *dir = fresh_dir(), *file = join(dir, "file"), *cache = join(file, "c.sqlite");
    FILE *f = fopen(file, "w");
    fclose(f);
    Run r = eval_product(cache, NULL);
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    cr_assert(strstr(r.err, "cannot create the cache directory") && strstr(r.err, "running uncached"),
              "%s", r.err);
    run_free(&r);
}

Test(cache, full_disk_store_fails_softly)
{
    /* A file-size limit stands in for a full disk: writes past it fail. */
    char *dir = fresh_dir(), *path = join(dir, "c.sqlite"), *errp = join(dir, "err");
    Cache *c = cache_open(path);
    cr_assert_not_null(c);
    cache_close(c);
    CacheKey k;
    fake_key(&k, "function big()\n");
    size_t n = 4 << 20;
    char *big = calloc(1, n);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        if (!freopen(errp, "w", stderr))
            _exit(2);
        Cache *cc = cache_open(path);
        if (!cc)
            _exit(3);
        int rc = cache_put(cc, &k, "", big, n);
        void *obj = NULL;
        size_t got;
        int after = cache_get(cc, &k, &obj, &got);
        cache_close(cc);
        fflush(stderr);
        _exit(rc == -1 && after != CACHE_HIT ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    char *err = slurp(errp);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the store past the limit did not fail softly: %s", err);
    cr_assert_eq(count_lines(err), 1, "[%s]", err);
    cr_assert(strstr(err, "gradc: warning: cache ") && strstr(err, "running uncached"), "%s", err);
    free(err);
    /* The file is still a good cache afterwards. */
    c = cache_open(path);
    cr_assert_not_null(c);
    CacheStats s;
    cr_assert_eq(cache_stats(c, &s), 0);
    cr_assert_eq(s.entries, 0);
    cache_close(c);
    free(big);
    cache_key_free(&k);
}

/* ---- concurrency ---- */

Test(cache, eight_concurrent_processes, .timeout = 300)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    for (int round = 0; round < 2; round++) {
        pid_t pid[8];
        char *outs[8];
        for (int i = 0; i < 8; i++) {
            outs[i] = malloc(4300);
            snprintf(outs[i], 4300, "%s/out%d", dir, i);
            pid[i] = fork();
            cr_assert(pid[i] >= 0);
            if (pid[i] == 0) {
                /* Four formulas, each compiled by two processes at once. */
                char formula[32];
                snprintf(formula, sizeof formula, "x * y + %d", i % 4);
                int o = open(outs[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
                dup2(o, 1);
                dup2(o, 2);
                setenv("GRADC_CACHE", cache, 1);
                execl(GRADC_BIN, GRADC_BIN, "eval", formula, "--at", "x=1,y=2", (char *)NULL);
                _exit(127);
            }
        }
        for (int i = 0; i < 8; i++) {
            int st;
            waitpid(pid[i], &st, 0);
            char *out = slurp(outs[i]);
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d: %s", i, out);
            char expect[32];
            snprintf(expect, sizeof expect, "value  %d\n", 2 + i % 4);
            cr_assert_str_eq(out, expect, "process %d (round %d): [%s]", i, round, out);
            free(out);
            free(outs[i]);
        }
        Run s = stats(cache);
        cr_assert_eq(json_int(s.out, "entries"), 4, "entries lost or doubled: %s", s.out);
        cr_assert_eq(json_int(s.out, "hits") + json_int(s.out, "misses"), 8 * (round + 1), "%s", s.out);
        if (round == 1)
            cr_assert_eq(json_int(s.out, "hits"), 8, "the second round must only hit: %s", s.out);
        run_free(&s);
    }
}

/* Eight processes start on one garbage file: every one succeeds, one
 * warning between them, four entries in the fresh cache. */
static void recover_damaged_file_concurrently(int round)
{
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    FILE *f = fopen(cache, "w");
    for (int i = 0; i < 500; i++)
        fputs("garbage garbage garbage\n", f);
    fclose(f);
    chmod(cache, 0600);
    pid_t pid[8];
    char *errs[8];
    for (int i = 0; i < 8; i++) {
        errs[i] = malloc(4300);
        snprintf(errs[i], 4300, "%s/err%d", dir, i);
        pid[i] = fork();
        if (pid[i] == 0) {
            char formula[32];
            snprintf(formula, sizeof formula, "x * y + %d", i % 4);
            int o = open(errs[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(o, 2);
            setenv("GRADC_CACHE", cache, 1);
            execl(GRADC_BIN, GRADC_BIN, "eval", formula, "--at", "x=1,y=2", (char *)NULL);
            _exit(127);
        }
    }
    int warnings = 0;
    char said[8 * 1024] = "";
    for (int i = 0; i < 8; i++) {
        int st;
        waitpid(pid[i], &st, 0);
        char *err = slurp(errs[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d: %s", i, err);
        warnings += count_lines(err);
        snprintf(said + strlen(said), sizeof said - strlen(said), "[%d] %s", i, err);
        free(err);
        free(errs[i]);
    }
    /* Only the process that moved the file aside says so. */
    cr_assert_eq(warnings, 1, "round %d: the processes said:\n%s", round, said);
    Run s = stats(cache);
    cr_assert_eq(json_int(s.out, "entries"), 4, "round %d: %s", round, s.out);
    run_free(&s);
}

/* Three rounds, since the races this guards against (a checkpoint making
 * a healthy file look truncated; a fresh WAL created between the renames
 * of a recovery) need an unlucky schedule to show. */
Test(cache, concurrent_processes_recover_a_damaged_file_once, .timeout = 300)
{
    for (int round = 0; round < 3; round++)
        recover_damaged_file_concurrently(round);
}

/* ---- the size limit ---- */

Test(cache, evicts_least_recently_used_first)
{
    char *dir = fresh_dir(), *path = join(dir, "c.sqlite");
    Cache *c = cache_open(path);
    cr_assert_not_null(c);
    /* Each entry counts 1000 bytes of object plus its IR text (15 bytes). */
    cache_set_max(c, 3 * 1015);
    char blob[1000];
    memset(blob, 'o', sizeof blob);
    CacheKey k[5];
    const char *ir[5] = {"function a()\n  ", "function b()\n  ", "function c()\n  ",
                         "function d()\n  ", "function e()\n  "};
    for (int i = 0; i < 3; i++) {
        fake_key(&k[i], ir[i]);
        cr_assert_eq(cache_put(c, &k[i], "", blob, sizeof blob), 0);
        usleep(2000);
    }
    cr_assert(has_key(c, &k[0]));         /* a is now the most recent */
    usleep(2000);
    fake_key(&k[3], ir[3]);
    cr_assert_eq(cache_put(c, &k[3], "", blob, sizeof blob), 0);
    cr_assert(!present(c, &k[1]), "b was the least recently used");
    cr_assert(present(c, &k[0]) && present(c, &k[2]) && present(c, &k[3]));
    cr_assert(has_key(c, &k[0]));
    usleep(2000);
    fake_key(&k[4], ir[4]);
    cr_assert_eq(cache_put(c, &k[4], "", blob, sizeof blob), 0);
    /* Order of use now: c (oldest), d, a, e: c goes. */
    CacheStats s;
    cr_assert_eq(cache_stats(c, &s), 0);
    cr_assert_eq(s.entries, 3);
    cr_assert_eq(s.bytes, 3 * 1015);
    cr_assert(!present(c, &k[2]), "c was the least recently used");
    cr_assert(present(c, &k[3]) && present(c, &k[0]) && present(c, &k[4]));
    /* Evicted entries take their stored objects with them. */
    cr_assert_eq(count_rows(path, "payload"), 3);
    cr_assert_eq(cache_clear(c), 0);
    cr_assert_eq(count_rows(path, "entry"), 0);
    cr_assert_eq(count_rows(path, "payload"), 0);
    for (int i = 0; i < 5; i++)
        cache_key_free(&k[i]);
    cache_close(c);
}

Test(cache, gradc_honours_the_size_limit)
{
    /* Three formulas whose entries are the same size S, give or take a
     * few bytes; a limit of 2.5 S keeps the two most recently used. */
    char *dir = fresh_dir(), *cache = join(dir, "c.sqlite");
    const char *formulas[] = {"x * y + 1", "x * y + 2", "x * y + 3"};
    char limit[32];
    for (int i = 0; i < 3; i++) {
        Run r = run(cache, EVAL(formulas[i], "--at", "x=1,y=2"));
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_free(&r);
        if (i == 0) {
            Run s = stats(cache);
            snprintf(limit, sizeof limit, "%lld", json_int(s.out, "bytes") * 5 / 2);
            setenv("GRADC_CACHE_MAX", limit, 1);
            run_free(&s);
        }
    }
    Run s = stats(cache);
    cr_assert_eq(json_int(s.out, "entries"), 2, "%s", s.out);
    cr_assert(json_int(s.out, "bytes") <= atoll(limit), "%s", s.out);
    run_free(&s);
    /* The oldest, x * y + 1, was evicted: evaluating it again misses. */
    Run m = run(cache, EVAL("x * y + 1", "--at", "x=1,y=2", "--explain-cache"));
    cr_assert(strstr(m.err, "cache miss:"), "%s", m.err);
    Run h = run(cache, EVAL("x * y + 3", "--at", "x=1,y=2", "--explain-cache"));
    cr_assert(strstr(h.err, "cache hit:"), "%s", h.err);
    run_free(&m), run_free(&h);
    unsetenv("GRADC_CACHE_MAX");
}

Test(cache, size_limit_from_the_environment)
{
    const char *cases[][2] = {{"1000", "1000"}, {"64K", "65536"}, {"256M", "268435456"},
                              {"1G", "1073741824"}, {"2MiB", "2097152"}};
    for (int i = 0; i < 5; i++) {
        setenv("GRADC_CACHE_MAX", cases[i][0], 1);
        cr_assert_eq(cache_max_bytes(), strtoull(cases[i][1], NULL, 10), "%s", cases[i][0]);
    }
    unsetenv("GRADC_CACHE_MAX");
    cr_assert_eq(cache_max_bytes(), (uint64_t)256 << 20);
    char *dir = fresh_dir(), *errp = join(dir, "err");
    setenv("GRADC_CACHE_MAX", "lots", 1);
    fflush(stderr);
    int saved = dup(2), fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    uint64_t got = cache_max_bytes();
    fflush(stderr);
    dup2(saved, 2);
    close(fd);
    close(saved);
    cr_assert_eq(got, (uint64_t)256 << 20);
    char *err = slurp(errp);
    cr_assert_str_eq(err, "gradc: warning: GRADC_CACHE_MAX='lots' is not a size like 256M; using 256M\n");
    free(err);
    unsetenv("GRADC_CACHE_MAX");
}

Test(cache, default_location)
{
    gradc_options opt = {.cache_path = "/x/opt.sqlite"};
    setenv("GRADC_CACHE", "/x/env.sqlite", 1);
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    setenv("HOME", "/x/home", 1);
    char *p = cache_default_path(&opt);
    cr_assert_str_eq(p, "/x/opt.sqlite");
    free(p);
    p = cache_default_path(NULL);
    cr_assert_str_eq(p, "/x/env.sqlite");
    free(p);
    unsetenv("GRADC_CACHE");
    p = cache_default_path(NULL);
    cr_assert_str_eq(p, "/x/xdg/gradc/cache.sqlite");
    free(p);
    setenv("XDG_CACHE_HOME", "relative", 1);     /* ignored, as XDG says */
    p = cache_default_path(NULL);
    cr_assert_str_eq(p, "/x/home/.cache/gradc/cache.sqlite");
    free(p);
}

Test(cache, schema_version_mismatch_rebuilds)
{
    char *dir = fresh_dir(), *path = join(dir, "c.sqlite");
    Cache *c = cache_open(path);
    CacheKey k;
    fake_key(&k, "function f()\n");
    cr_assert_eq(cache_put(c, &k, "", "x", 1), 0);
    cache_close(c);
    sql(path, "PRAGMA user_version = 99");
    c = cache_open(path);
    cr_assert_not_null(c);
    CacheStats s;
    cr_assert_eq(cache_stats(c, &s), 0);
    cr_assert_eq(s.entries, 0);
    cr_assert_eq(cache_put(c, &k, "", "x", 1), 0);
    cr_assert(has_key(c, &k));
    cache_close(c);
    cache_key_free(&k);
}

/* Kernels that differ only in their --wrt set are different entries: a
 * hit must never hand back code that writes another gradient. */
Test(cache, wrt_sets_have_their_own_entries)
{
    char *dir = fresh_dir(), *cache = join(dir, "wrt.sqlite");
    const char *sets[] = {NULL, "y", "x,z", "y"}, *first[] = {"x", "y", "x", "y"};
    size_t count[] = {3, 1, 2, 1};
    double want[][3] = {{6, 3, 2}, {3, 0, 0}, {6, 2, 0}, {3, 0, 0}};
    for (int i = 0; i < 4; i++) {
        gradc_options opt = {.cache_path = cache, .wrt = sets[i]};
        char *err = NULL;
        gradc_fn *f = gradc_compile_opts("x * y * z", NULL, &opt, &err);
        cr_assert_not_null(f, "%s", err);
        double in[3] = {1, 2, 3}, g[3] = {0, 0, 0};
        cr_assert_eq(gradc_grad(f, in, g), 6);
        for (int j = 0; j < 3; j++)
            cr_assert_eq(g[j], want[i][j], "wrt %s: g[%d] = %g", sets[i] ? sets[i] : "(all)", j, g[j]);
        cr_assert_eq(gradc_num_wrt(f), count[i]);
        cr_assert_str_eq(gradc_wrt_name(f, 0), first[i]);
        gradc_release(f);
    }
    Cache *c = cache_open(cache);
    CacheStats s;
    cr_assert_eq(cache_stats(c, &s), 0);
    cr_assert_eq(s.entries, 3);
    cr_assert_eq(s.hits, 1);                /* the second "y" */
    cache_close(c);
    gradc_options bad = {.cache_path = cache, .wrt = "w"};
    char *err = NULL;
    cr_assert_null(gradc_compile_opts("x * y * z", NULL, &bad, &err));
    cr_assert_str_eq(err, "<wrt>:1:1: error: 'w' is not an input of f (its inputs: x, y, z)\n"
                          "    1 | w\n      | ^\n");
    free(err);
}

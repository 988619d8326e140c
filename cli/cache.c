/* cache.c — `gradc cache stats|list|clear|gc|why`, and the --cache,
 * --no-cache and --explain-cache options shared by the commands that
 * compile. The cache itself is runtime/cache.c; docs/cache.md. */
#include "cli.h"
#include "cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char cache_help[] =
    "usage: gradc cache COMMAND [--cache PATH] [--json]\n"
    "\n"
    "The cache of compiled formulas (docs/cache.md). Its location: --cache\n"
    "PATH, else $GRADC_CACHE, else $XDG_CACHE_HOME/gradc/cache.sqlite, else\n"
    "~/.cache/gradc/cache.sqlite. Size limit: $GRADC_CACHE_MAX (default 256M).\n"
    "\n"
    "commands:\n"
    "  stats [--json]        entries, bytes, hits, misses, path\n"
    "  list [--json]         every entry, most recently used first\n"
    "  clear                 remove every entry and reset the counters\n"
    "  gc                    drop entries of other gradc builds, evict down to\n"
    "                        the size limit, compact the file\n"
    "  why EXPR|FILE:FUNC [--func NAME]\n"
    "                        say whether the formula would hit, and on a miss\n"
    "                        which key component differs from the closest entry\n";

int cli_cache_option(CacheOpts *c, const char *cmd, int argc, char **argv, int *i)
{
    const char *s = argv[*i];
    if (!strcmp(s, "--no-cache")) {
        c->disabled = 1;
    } else if (!strcmp(s, "--explain-cache")) {
        c->explain = 1;
    } else if (!strcmp(s, "--cache") || !strncmp(s, "--cache=", 8)) {
        const char *v = s[7] == '=' ? s + 8 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!v || !*v)
            return -cli_usage_error(cmd, "--cache needs the path of the cache file");
        c->path = v;
    } else {
        return 0;
    }
    return 1;
}

gradc_options cli_cache_runtime_options(const CacheOpts *c)
{
    gradc_options o = {0};
    o.cache_path = c->path;
    o.no_cache = c->disabled;
    return o;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void human_size(int64_t n, char out[32])
{
    if (n < 1024)
        snprintf(out, 32, "%lld B", (long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, 32, "%.1f KiB", n / 1024.0);
    else
        snprintf(out, 32, "%.1f MiB", n / (1024.0 * 1024.0));
}

static void time_text(int64_t us, char out[32])
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int stats(Cache *c, int json)
{
    CacheStats s;
    if (cache_stats(c, &s) != 0)
        return 1;
    if (json) {
        printf("{\"entries\": %lld, \"bytes\": %lld, \"hits\": %lld, \"misses\": %lld, \"path\": ",
               (long long)s.entries, (long long)s.bytes, (long long)s.hits, (long long)s.misses);
        json_string(cache_path(c));
        puts("}");
        return 0;
    }
    char bytes[32], file[32], limit[32];
    human_size(s.bytes, bytes);
    human_size(s.file_bytes, file);
    human_size((int64_t)cache_max_bytes(), limit);
    printf("path     %s\nentries  %lld\nbytes    %lld (%s; limit %s; file %s)\n"
           "hits     %lld\nmisses   %lld\n", cache_path(c), (long long)s.entries,
           (long long)s.bytes, bytes, limit, file, (long long)s.hits, (long long)s.misses);
    return 0;
}

typedef struct ListState {
    int json, n;
} ListState;

/* The first line of the IR: "function NAME(INPUTS)". */
static int signature_len(const char *ir)
{
    return (int)strcspn(ir, "\n");
}

static void list_one(const CacheEntry *e, void *ctx)
{
    ListState *ls = ctx;
    char used[32], made[32], size[32];
    time_text(e->last_used, used);
    time_text(e->created, made);
    if (ls->json) {
        printf("%s\n  {\"key\": \"%s\", \"function\": ", ls->n ? "," : "", e->key);
        char *sig = strndup(e->ir, (size_t)signature_len(e->ir));
        json_string(sig);
        free(sig);
        printf(", \"hits\": %lld, \"size\": %lld, \"object_size\": %lld, "
               "\"created\": \"%s\", \"last_used\": \"%s\", \"options\": ",
               (long long)e->hits, (long long)e->size, (long long)e->object_size, made, used);
        json_string(e->options);
        printf(", \"compiler\": ");
        json_string(e->compiler);
        printf(", \"flags\": ");
        json_string(e->flags);
        printf(", \"version\": ");
        json_string(e->version);
        printf("}");
    } else {
        if (!ls->n)
            printf("%-16s  %6s  %10s  %-20s  %s\n", "KEY", "HITS", "SIZE", "LAST USED", "FUNCTION");
        human_size(e->size, size);
        printf("%.16s  %6lld  %10s  %-20s  %.*s\n", e->key, (long long)e->hits, size, used,
               signature_len(e->ir), e->ir);
    }
    ls->n++;
}

static int list(Cache *c, int json)
{
    ListState ls = {json, 0};
    if (json)
        printf("[");
    int rc = cache_list(c, list_one, &ls);
    if (json)
        printf("%s]\n", ls.n ? "\n" : "");
    else if (!ls.n && rc == 0)
        printf("the cache %s is empty\n", cache_path(c));
    return rc ? 1 : 0;
}

/* `gradc cache why`: the key's components, then hit or miss and why. */
static int why(const char *spec, const char *func, const CacheOpts *co)
{
    Diag d;
    diag_init(&d);
    Input input;
    Program *p = NULL;
    int rc = 1;
    /* With --func, spec is a file; else EXPR or FILE:FUNC. */
    if ((func ? input_from_file(&input, spec, &d) : input_from_spec(&input, spec, &d)) != 0)
        goto out;
    if (func)
        input.func = func;
    Func *f = input_compile(&input, &p, &d);
    if (!f || d.nerrors)
        goto out;
    Kernel *k = opt_kernel(p, f, 1);
    gradc_options o = cli_cache_runtime_options(co);
    CacheKey key;
    cache_key_for(&key, k, &rt_emit, &o);
    printf("key       %s\n", key.hex);
    printf("IR        %s (%d nodes)\n", key.ir_hash, (int)k->g->n - 1);
    printf("options   %s\ncompiler  %s\nflags     %s\nversion   %s\n",
           key.options, key.compiler, key.flags, key.version);
    char *path = cache_default_path(&o);
    Cache *c = path ? cache_open(path) : NULL;
    if (c) {
        Buf out = {0};
        cache_explain(c, &key, &out);
        fputs(out.data, stdout);
        buf_free(&out);
        cache_close(c);
        rc = 0;
    }
    free(path);
    cache_key_free(&key);
    kernel_free(k);
out:
    if (rc)
        report(&d);
    diag_free(&d);
    program_free(p);
    input_free(&input);
    return rc;
}

int cmd_cache(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(cache_help, argc < 2 ? stderr : stdout);
        return argc < 2;
    }
    const char *sub = argv[1], *spec = NULL, *func = NULL;
    static const char *const subs[] = {"stats", "list", "clear", "gc", "why"};
    int which = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(sub, subs[i]))
            which = i;
    if (which < 0)
        return cli_usage_error("cache", "unknown cache command '%s' (stats, list, clear, gc, why)", sub);
    CacheOpts co = {0};
    int json = 0;
    for (int i = 2; i < argc; i++) {
        int r = cli_cache_option(&co, "cache", argc, argv, &i);
        if (r < 0)
            return 1;
        if (r > 0 && (co.disabled || co.explain))
            return cli_usage_error("cache", "'%s' makes no sense here", argv[i]);
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--json") && which < 2)
            json = 1;
        else if (!strcmp(argv[i], "--func") && which == 4 && i + 1 < argc)
            func = argv[++i];
        else if (which == 4 && !spec && (argv[i][0] != '-' || i == 2))
            spec = argv[i];
        else
            return cli_usage_error("cache", "unexpected argument '%s' for 'cache %s'", argv[i], sub);
    }
    if (which == 4) {
        if (!spec)
            return cli_usage_error("cache", "'cache why' needs the expression or FILE:FUNC");
        return why(spec, func, &co);
    }
    gradc_options o = cli_cache_runtime_options(&co);
    char *path = cache_default_path(&o);
    if (!path) {
        fputs("gradc: error: no cache location: set GRADC_CACHE or HOME\n", stderr);
        return 1;
    }
    Cache *c = cache_open(path);
    free(path);
    if (!c)
        return 1;
    int rc = 0;
    int64_t removed = 0;
    switch (which) {
    case 0: rc = stats(c, json); break;
    case 1: rc = list(c, json); break;
    case 2:
        rc = cache_clear(c) != 0;
        if (!rc)
            printf("cleared %s\n", cache_path(c));
        break;
    case 3:
        rc = cache_gc(c, &removed) != 0;
        if (!rc)
            printf("removed %lld entries from %s\n", (long long)removed, cache_path(c));
        break;
    }
    cache_close(c);
    return rc;
}

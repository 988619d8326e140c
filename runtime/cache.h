/* cache.h — the run-time library's SQLite cache of compiled graphs
 * (cache.c), used by rt_load (api.c) and by `gradc cache` (cli/cache.c).
 * docs/cache.md describes the key, the trust model and the faults. */
#ifndef GRADC_CACHE_H
#define GRADC_CACHE_H

#include "rt.h"

#include <sys/stat.h>

#define CACHE_SCHEMA_VERSION 2
#define CACHE_DEFAULT_MAX ((uint64_t)256 << 20)   /* 256 MiB */

/* What decides the compiled object, one component per field, so that a
 * miss can say which one changed. The key hashes all of them. */
typedef struct CacheKey {
    char *ir;                   /* canonical IR text (kernel_dump) */
    char *options;              /* code-generation options */
    char *compiler;             /* resolved path, size, mtime of $CC */
    char *flags;                /* compiler and linker flags */
    char *version;              /* gradc version and build identity */
    char ir_hash[33];           /* XXH3-128 of ir, 32 hex digits */
    char hex[33];               /* the key: XXH3-128 of all components */
} CacheKey;

/* Builds the key of kernel k emitted with eo and compiled as opt says. */
void cache_key_for(CacheKey *key, const Kernel *k, const EmitOptions *eo,
                   const gradc_options *opt);
/* Fills ir_hash and hex from the (already set, malloc'ed) components. */
void cache_key_finish(CacheKey *key);
void cache_key_free(CacheKey *key);
/* XXH3-128 of data as 32 lower-case hex digits. */
void cache_hash(const void *data, size_t n, char out[33]);
/* "PATH size=N mtime=S.NS" for each program word of cc, found along
 * $PATH; the compiler is never run to identify it. */
char *cache_compiler_identity(const char *cc);
const char *cache_build_identity(void);

/* Why a cache file or directory with this status must not be used by
 * user uid, or NULL when it may. */
const char *cache_untrusted(const struct stat *st, uid_t uid, int want_dir);

/* The cache file to use: opt->cache_path, $GRADC_CACHE,
 * $XDG_CACHE_HOME/gradc/cache.sqlite or ~/.cache/gradc/cache.sqlite.
 * Returns a malloc'ed path, or NULL when no home directory is known. */
char *cache_default_path(const gradc_options *opt);
/* $GRADC_CACHE_MAX ("256M", "1G", "500000"), else CACHE_DEFAULT_MAX. */
uint64_t cache_max_bytes(void);

typedef struct Cache Cache;

/* Opens (creating) the cache at path. Returns NULL after printing one
 * warning line when the cache cannot or must not be used; a corrupt file
 * is moved aside and replaced by a fresh one. */
Cache *cache_open(const char *path);
void cache_close(Cache *c);
const char *cache_path(const Cache *c);
void cache_set_max(Cache *c, uint64_t max);

enum { CACHE_MISS = 0, CACHE_HIT = 1, CACHE_DAMAGED = 2, CACHE_FAILED = -1 };

/* Looks key up. On a hit whose object matches its stored hash, *object
 * gets a copy of it (free() it) and the entry's use is recorded. A
 * damaged entry is deleted and reported as CACHE_DAMAGED. */
int cache_get(Cache *c, const CacheKey *key, void **object, size_t *size);
/* Stores an entry (once: a concurrent store of the same key wins), then
 * evicts least-recently-used entries down to the size limit. Counts a
 * miss. Returns 0, or -1 after a warning. */
int cache_put(Cache *c, const CacheKey *key, const char *c_source,
              const void *object, size_t size);
/* Says hit or miss and, on a miss, which components differ from the
 * closest stored entry; lines end with '\n'. */
void cache_explain(Cache *c, const CacheKey *key, Buf *out);

typedef struct CacheStats {
    int64_t entries, bytes, hits, misses, file_bytes;
} CacheStats;
int cache_stats(Cache *c, CacheStats *s);

typedef struct CacheEntry {
    const char *key, *ir, *options, *compiler, *flags, *version;
    int64_t size, object_size, hits, created, last_used;   /* times in us */
} CacheEntry;
/* Calls each() for every entry, most recently used first. */
int cache_list(Cache *c, void (*each)(const CacheEntry *, void *), void *ctx);
/* Removes every entry and resets the counters. */
int cache_clear(Cache *c);
/* Drops entries of other gradc builds, evicts down to the size limit,
 * checkpoints and compacts the file. *removed counts entries dropped. */
int cache_gc(Cache *c, int64_t *removed);

/* rt_load's compile step through the cache: the loaded object of k, from
 * the cache on a hit, else emitted as C with eo, compiled and stored. When
 * why is not NULL, the hit/miss explanation is appended to it. NULL with
 * *err set when emission, compilation or loading fails. */
gradc_so *cache_so_compile(const Kernel *k, const EmitOptions *eo,
                           const gradc_options *opt, Buf *why, char **err);

#endif

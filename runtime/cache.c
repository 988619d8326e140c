/* cache.c — compiled graphs kept in SQLite, so a formula seen before loads
 * in about a millisecond instead of waiting for the C compiler.
 *
 * The key hashes (XXH3-128) everything that decides the object: canonical
 * IR, code-generation options, gradc's build identity, the C compiler's
 * identity and flags; each component is also stored on its own so a miss
 * can be explained. A shared file that holds code to be executed brings
 * its own faults, handled here: untrusted ownership or modes (refused),
 * corrupt files (moved aside), read-only or full disks (run uncached),
 * many processes at once (WAL, busy timeout, short transactions). */
#include "cache.h"
#include "build_id.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define BUSY_TIMEOUT_MS 15000
#define WAL_PAGES 32

/* ---- the key ---- */

void cache_hash(const void *data, size_t n, char out[33])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", c.digest[i]);
}

void cache_key_finish(CacheKey *key)
{
    cache_hash(key->ir, strlen(key->ir), key->ir_hash);
    /* Each component with its length in decimal, so that no two lists of
     * components serialise alike and the bytes are the same on any host. */
    const char *part[] = {"gradc-cache-key 1", key->ir, key->options,
                          key->compiler, key->flags, key->version};
    Buf b = {0};
    for (size_t i = 0; i < sizeof part / sizeof *part; i++) {
        buf_printf(&b, "%zu:", strlen(part[i]));
        buf_puts(&b, part[i]);
    }
    cache_hash(b.data, b.len, key->hex);
    buf_free(&b);
}

void cache_key_free(CacheKey *key)
{
    free(key->ir);
    free(key->options);
    free(key->compiler);
    free(key->flags);
    free(key->version);
    memset(key, 0, sizeof *key);
}

const char *cache_build_identity(void)
{
    return "gradc " GRADC_VERSION " build " GRADC_BUILD_ID;
}

/* The file that running `prog` would execute, searched along $PATH as
 * execvp does, with symbolic links resolved; 0 or -1. */
static int find_program(const char *prog, char *out)
{
    if (strchr(prog, '/'))
        return realpath(prog, out) ? 0 : -1;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (1) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        char cand[PATH_MAX + 256];
        snprintf(cand, sizeof cand, "%.*s/%s", n ? (int)n : 1, n ? path : ".", prog);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return realpath(cand, out) ? 0 : -1;
        if (!end)
            return -1;
        path = end + 1;
    }
}

char *cache_compiler_identity(const char *cc)
{
    Buf b = {0};
    buf_puts(&b, "");
    char *words = xstrdup(cc), *save = NULL;
    int first = 1;
    for (char *w = strtok_r(words, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        char real[PATH_MAX];
        struct stat st;
        /* "ccache gcc": every word that names a program is identified. */
        if (w[0] != '-' && find_program(w, real) == 0 && stat(real, &st) == 0)
            buf_printf(&b, "%s%s size=%lld mtime=%lld.%09ld", first ? "" : " ", real,
                       (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                       st.st_mtim.tv_nsec);
        else
            buf_printf(&b, "%s%s%s", first ? "" : " ", w, first ? " (not found)" : "");
        first = 0;
    }
    free(words);
    return b.data;
}

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void cache_key_for(CacheKey *key, const Kernel *k, const EmitOptions *eo,
                   const gradc_options *opt)
{
    memset(key, 0, sizeof *key);
    Buf ir = {0};
    kernel_dump(k, &ir);
    key->ir = ir.data;
    /* Every EmitOptions field that can change the object (header_name
     * only names things in comments; networks are never cached). */
    key->options = strf("name=%s prefix=%s max_locals=%d max_block=%d runtime_entry=%d "
                        "real=double%s",
                        eo->name ? eo->name : k->name, eo->prefix ? eo->prefix : "",
                        eo->max_locals ? eo->max_locals : EMIT_DEFAULT_MAX_LOCALS,
                        eo->max_block ? eo->max_block : EMIT_DEFAULT_MAX_BLOCK,
                        eo->runtime_entry, eo->no_fold ? " no_fold=1" : "");
    key->compiler = cache_compiler_identity(gradc_default_cc(opt));
    /* What jit.c adds after the user's flags. */
    key->flags = strf("%s -shared -fPIC -lm", gradc_default_cflags(opt));
    key->version = xstrdup(cache_build_identity());
    cache_key_finish(key);
}

/* ---- where the cache lives, and whether to trust it ---- */

const char *cache_untrusted(const struct stat *st, uid_t uid, int want_dir)
{
    if (want_dir && !S_ISDIR(st->st_mode))
        return "is not a directory";
    if (!want_dir && !S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_uid != uid)
        return "is not owned by you";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "is writable by group or others";
    return NULL;
}

char *cache_default_path(const gradc_options *opt)
{
    if (opt && opt->cache_path && *opt->cache_path)
        return xstrdup(opt->cache_path);
    const char *env = getenv("GRADC_CACHE");
    if (env && *env)
        return xstrdup(env);
    env = getenv("XDG_CACHE_HOME");
    if (env && env[0] == '/')       /* the XDG spec ignores relative paths */
        return strf("%s/gradc/cache.sqlite", env);
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    return home && *home ? strf("%s/.cache/gradc/cache.sqlite", home) : NULL;
}

uint64_t cache_max_bytes(void)
{
    const char *s = getenv("GRADC_CACHE_MAX");
    if (!s || !*s)
        return CACHE_DEFAULT_MAX;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    }
    if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
        end += 2;
    else if (shift && (*end == 'B' || *end == 'b'))
        end++;
    if (errno || end == s || *end || s[0] == '-' || v > (UINT64_MAX >> shift)) {
        fprintf(stderr, "gradc: warning: GRADC_CACHE_MAX='%s' is not a size like 256M; using 256M\n", s);
        return CACHE_DEFAULT_MAX;
    }
    return (uint64_t)v << shift;
}

struct Cache {
    sqlite3 *db;
    char *path;
    ino_t ino;                  /* of the file opened, to recover it once */
    dev_t dev;
    uint64_t max;
};

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "gradc: warning: %s\n", msg);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return strf("%.*s", (int)(slash - path), path);
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
    if (errno != ENOENT)
        return -1;
    char *parent = dir_of(dir);
    int rc = strcmp(parent, dir) ? make_dirs(parent) : -1;
    free(parent);
    if (rc == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = -1;
    return rc;
}

/* A new name next to path for a damaged cache, kept for inspection. */
static char *aside_name(const char *path)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    return strf("%s.corrupt-%s-%ld", path, stamp, (long)getpid());
}

/* Locks the cache's directory: shared while a process opens the cache
 * (which may create the file, its WAL and its shared-memory index),
 * exclusive while one moves a damaged file aside. Without the shared
 * lock a fresh file's new WAL could be created between the renames of
 * the damaged file and of its WAL, and be moved away from its database.
 * Returns the descriptor to pass to unlock_dir, or -1 (then unlocked:
 * recovery still works, with the race this lock closes). */
static int lock_dir(const char *path, int how)
{
    char *dir = dir_of(path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd >= 0)
        while (flock(dfd, how) != 0 && errno == EINTR)
            ;
    return dfd;
}

static void unlock_dir(int dfd)
{
    if (dfd >= 0)
        close(dfd);             /* releases the lock */
}

/* Moves a damaged cache file (and its WAL) aside, unless another process
 * already did: only the file whose inode we saw damaged is moved. Must
 * not be called while this process holds the shared lock_dir. */
static void move_aside(const char *path, dev_t dev, ino_t ino, const char *why)
{
    int dfd = lock_dir(path, LOCK_EX);  /* one recovery at a time */
    struct stat st;
    int still = lstat(path, &st) == 0 && st.st_ino == ino && st.st_dev == dev;
    if (still) {
        char *aside = aside_name(path);
        char *from = NULL, *to = NULL;
        if (rename(path, aside) == 0) {
            /* A WAL belongs to its database: never replay it into a fresh one. */
            const char *suffix[] = {"-wal", "-shm"};
            for (int i = 0; i < 2; i++) {
                from = strf("%s%s", path, suffix[i]);
                to = strf("%s%s", aside, suffix[i]);
                if (rename(from, to) != 0)
                    unlink(from);
                free(from);
                free(to);
            }
            warn("cache %s is damaged (%s); moved it to %s and started a fresh cache",
                 path, why, aside);
        } else {
            warn("cache %s is damaged (%s) and cannot be moved aside (%s); running uncached",
                 path, why, strerror(errno));
        }
        free(aside);
    }
    unlock_dir(dfd);
}

/* Checks cheaply for a truncated database, which SQLite itself notices
 * only when it reads a missing page: NULL when the file is as long as its
 * header says. Read without SQLite's locks, so a file that a checkpoint
 * is writing can look truncated for a moment: a "truncated" answer is
 * only a reason to ask SQLite (damage_confirmed). */
static const char *bad_header(int fd, const char *path)
{
    struct stat st;
    unsigned char h[100];
    /* Not a database at all is left for SQLite to say: it reads the
     * header under its locks, so it cannot see one half written. */
    if (fstat(fd, &st) != 0 || pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h
        || memcmp(h, "SQLite format 3", 16) != 0)
        return NULL;
    uint32_t pagesize = (uint32_t)h[16] << 8 | h[17];
    if (pagesize == 1)
        pagesize = 65536;
    uint32_t pages = (uint32_t)h[28] << 24 | h[29] << 16 | h[30] << 8 | h[31];
    int size_valid = !memcmp(h + 24, h + 92, 4);
    /* With a non-empty WAL the file can legitimately lag behind. */
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat ws;
    int has_wal = stat(wal, &ws) == 0 && ws.st_size > 0;
    if (size_valid && !has_wal && (uint64_t)pages * pagesize > (uint64_t)st.st_size)
        return "truncated";
    return NULL;
}

static int is_corrupt(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* One warning line for an error that makes the cache unusable. */
static void warn_unusable(const char *path, int rc, sqlite3 *db)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        warn("cache %s is read-only (%s); running uncached", path, msg);
        break;
    case SQLITE_FULL:
        warn("cache %s: the disk is full (%s); running uncached", path, msg);
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        warn("cache %s stayed busy for %d s (%s); running uncached", path,
             BUSY_TIMEOUT_MS / 1000, msg);
        break;
    default:
        warn("cache %s cannot be used (%s); running uncached", path, msg);
    }
}

/* The large, never-changing texts and object live in `payload`, apart
 * from the small `entry` row that every hit updates: SQLite rewrites a
 * whole row on update, overflow pages and all. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS entry("
    " key TEXT NOT NULL UNIQUE,"        /* XXH3-128 of the components */
    " size INTEGER NOT NULL,"           /* bytes counted by the limit */
    " last_used INTEGER NOT NULL,"      /* microseconds since 1970 */
    " created INTEGER NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0,"
    " ir_hash TEXT NOT NULL,"
    " options TEXT NOT NULL,"
    " compiler TEXT NOT NULL,"
    " flags TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " object_hash TEXT NOT NULL,"       /* XXH3-128 of object */
    " object_size INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS entry_lru ON entry(last_used, size);"
    "CREATE TABLE IF NOT EXISTS payload("
    " id INTEGER PRIMARY KEY,"          /* the entry's rowid */
    " ir TEXT NOT NULL,"
    " c_source TEXT NOT NULL,"
    " object BLOB NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS entry_payload AFTER DELETE ON entry"
    " BEGIN DELETE FROM payload WHERE id = old.rowid; END;"
    "CREATE TABLE IF NOT EXISTS counter(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO counter VALUES('hits', 0), ('misses', 0);";

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Creates the tables, or rebuilds them when written by another schema
 * version (the cache holds nothing that cannot be compiled again). */
static int setup_schema(sqlite3 *db)
{
    int v = -1, rc = user_version(db, &v);
    if (rc != SQLITE_OK || v == CACHE_SCHEMA_VERSION)
        return rc;
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = user_version(db, &v);          /* someone may have won */
    if (rc == SQLITE_OK && v != CACHE_SCHEMA_VERSION && v != 0)
        rc = sqlite3_exec(db, "DROP TABLE IF EXISTS entry; DROP TABLE IF EXISTS payload;"
                          " DROP TABLE IF EXISTS counter;", NULL, NULL, NULL);
    if (rc == SQLITE_OK && v != CACHE_SCHEMA_VERSION) {
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", CACHE_SCHEMA_VERSION);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, pragma, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int set_wal(sqlite3 *db)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = mode && !strcmp(mode, "wal") ? SQLITE_OK : SQLITE_READONLY;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Checks the -wal, -shm and -journal files SQLite may read: same rules as
 * the database, since a planted WAL is as good as a planted database. */
static const char *untrusted_sidecar(const char *path, char *which, size_t n)
{
    const char *suffix[] = {"-wal", "-shm", "-journal"};
    for (int i = 0; i < 3; i++) {
        snprintf(which, n, "%s%s", path, suffix[i]);
        struct stat st;
        if (lstat(which, &st) == 0) {
            const char *why = cache_untrusted(&st, geteuid(), 0);
            if (why)
                return why;
        }
    }
    return NULL;
}

/* Called after each commit with the WAL's length in pages. The first
 * connection of a process rebuilds the WAL index by reading the whole WAL
 * and cannot know how much of it was already checkpointed, so a WAL that
 * is merely rewound keeps growing across processes: truncate it instead.
 * A busy checkpoint is left to the next commit. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)arg;
    if (pages >= WAL_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return SQLITE_OK;
}

/* Asks SQLite, under its own locks, whether a file that looked truncated
 * is damaged: quick_check reads every page, so a page past the end shows.
 * Any other answer (busy, say) is left to the normal path to report. */
static int damage_confirmed(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int damaged = 0;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
        rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        const char *said = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        damaged = rc == SQLITE_ROW ? !said || strcmp(said, "ok") != 0 : is_corrupt(rc);
    } else {
        damaged = is_corrupt(rc);
    }
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return damaged;
}

/* Opens or creates the file with the trust checks, before SQLite sees it:
 * 0 when it may be used, 1 when it is damaged (*bad says how; the caller
 * moves it aside and tries again), -1 after a warning. */
static int check_file(Cache *c, const char **bad_out)
{
    int fd = open(c->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            warn("cache %s is a symbolic link; refusing it, running uncached", c->path);
        else if (errno == EACCES || errno == EROFS || errno == EPERM)
            warn("cache %s is read-only (%s); running uncached", c->path, strerror(errno));
        else
            warn("cache %s cannot be opened for writing (%s); running uncached",
                 c->path, strerror(errno));
        return -1;
    }
    struct stat st;
    const char *why = fstat(fd, &st) != 0 ? strerror(errno) : cache_untrusted(&st, geteuid(), 0);
    const char *bad = why ? NULL : bad_header(fd, c->path);
    close(fd);
    if (why) {
        warn("cache %s %s; refusing it, running uncached", c->path, why);
        return -1;
    }
    c->ino = st.st_ino;
    c->dev = st.st_dev;
    if (bad && damage_confirmed(c->path)) {
        *bad_out = bad;
        return 1;
    }
    char side[PATH_MAX + 16];
    if ((why = untrusted_sidecar(c->path, side, sizeof side))) {
        warn("cache file %s %s; refusing it, running uncached", side, why);
        return -1;
    }
    return 0;
}

/* Opens the checked file with SQLite, in WAL mode, with the schema. */
static int open_db(Cache *c)
{
    int rc = sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    /* A checkpoint syncs the file, which under load can take tens of
     * milliseconds: not on every close, only when a commit finds the WAL
     * past WAL_PAGES. */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
    sqlite3_wal_hook(c->db, wal_hook, NULL);
    /* Turning a new file to WAL can fail with SQLITE_BUSY at once, past
     * the busy handler, while another process does the same: wait here. */
    for (int waited = 0; (rc = set_wal(c->db)) == SQLITE_BUSY && waited < BUSY_TIMEOUT_MS; waited += 5)
        sqlite3_sleep(5);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=1048576",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = setup_schema(c->db);
    if (rc == SQLITE_OK && sqlite3_db_readonly(c->db, "main") == 1)
        rc = SQLITE_READONLY;
    return rc;
}

/* Opens the cache file: 0, 1 when it was damaged and moved aside (try
 * again), -1 after a warning. */
static int try_open(Cache *c)
{
    const char *bad = NULL;
    int dfd = lock_dir(c->path, LOCK_SH);
    int rc = check_file(c, &bad);
    if (rc == 0) {
        int src = open_db(c);
        rc = src == SQLITE_OK ? 0 : is_corrupt(src) ? 1 : -1;
        if (rc == 1)
            bad = sqlite3_errstr(src);
        else if (rc == -1)
            warn_unusable(c->path, src, c->db);
        if (rc != 0) {
            sqlite3_close_v2(c->db);
            c->db = NULL;
        }
    }
    unlock_dir(dfd);
    if (rc == 1)
        move_aside(c->path, c->dev, c->ino, bad);
    return rc;
}

Cache *cache_open(const char *path)
{
    if (!path || !*path)
        return NULL;
    char *dir = dir_of(path);
    struct stat st;
    const char *why = NULL;
    if (make_dirs(dir) != 0) {
        warn("cannot create the cache directory %s (%s); running uncached", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    if (stat(dir, &st) != 0 || (why = cache_untrusted(&st, geteuid(), 1))) {
        warn("cache directory %s %s; refusing it, running uncached", dir,
             why ? why : strerror(errno));
        free(dir);
        return NULL;
    }
    free(dir);
    Cache *c = xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->path = xstrdup(path);
    c->max = cache_max_bytes();
    int rc = try_open(c);
    if (rc == 1)
        rc = try_open(c);       /* a fresh file after moving one aside */
    if (rc != 0) {
        cache_close(c);
        return NULL;
    }
    return c;
}

void cache_close(Cache *c)
{
    if (!c)
        return;
    sqlite3_close_v2(c->db);
    free(c->path);
    free(c);
}

const char *cache_path(const Cache *c) { return c->path; }
void cache_set_max(Cache *c, uint64_t max) { c->max = max; }

/* Handles an error from an operation: a corrupt file is moved aside and
 * reopened fresh (returns 1: run the operation again); anything else
 * closes the cache after one warning (returns 0). */
static int fault(Cache *c, int rc)
{
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    if (is_corrupt(rc)) {
        sqlite3_close_v2(c->db);
        c->db = NULL;
        move_aside(c->path, c->dev, c->ino, sqlite3_errstr(rc));
        int again = try_open(c);
        if (again == 1)
            again = try_open(c);
        return again == 0;
    }
    warn_unusable(c->path, rc, c->db);
    sqlite3_close_v2(c->db);
    c->db = NULL;
    return 0;
}

/* Runs op, recovering once from a corrupt file; SQLITE_OK or the error. */
static int run(Cache *c, int (*op)(Cache *, void *), void *arg)
{
    for (int attempt = 0; c && c->db && attempt < 2; attempt++) {
        int rc = op(c, arg);
        if (rc == SQLITE_OK)
            return SQLITE_OK;
        if (!fault(c, rc))
            return rc;
    }
    return SQLITE_ERROR;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL);
}

static int exec_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- look up and store ---- */

typedef struct GetArgs {
    const CacheKey *key;
    void *object;
    size_t size;
    int result;
} GetArgs;

static int count(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    int rc = prepare(db, &st, "UPDATE counter SET value = value + 1 WHERE name = ?1");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return exec_done(st);
}

static int record_hit(sqlite3 *db, const char *key)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK)
        rc = prepare(db, &st, "UPDATE entry SET hits = hits + 1, last_used = ?2 WHERE key = ?1");
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_us());
        rc = exec_done(st);
    }
    if (rc == SQLITE_OK)
        rc = count(db, "hits");
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

static int delete_entry(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    int rc = prepare(db, &st, "DELETE FROM entry WHERE key = ?1");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return exec_done(st);
}

static int get_op(Cache *c, void *arg)
{
    GetArgs *a = arg;
    free(a->object);
    a->object = NULL;
    a->result = CACHE_MISS;
    sqlite3_stmt *st;
    int rc = prepare(c->db, &st, "SELECT p.object, e.object_hash FROM entry e"
                                 " JOIN payload p ON p.id = e.rowid WHERE e.key = ?1");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, a->key->hex, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const char *stored = (const char *)sqlite3_column_text(st, 1);
        char actual[33];
        cache_hash(blob, n, actual);
        if (stored && !strcmp(stored, actual)) {
            a->object = xmalloc(n ? n : 1);
            memcpy(a->object, blob, n);
            a->size = n;
            a->result = CACHE_HIT;
        } else {
            a->result = CACHE_DAMAGED;
        }
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && a->result == CACHE_HIT)
        rc = record_hit(c->db, a->key->hex);
    else if (rc == SQLITE_OK && a->result == CACHE_DAMAGED)
        rc = delete_entry(c->db, a->key->hex);
    return rc;
}

int cache_get(Cache *c, const CacheKey *key, void **object, size_t *size)
{
    GetArgs a = {key, NULL, 0, CACHE_MISS};
    int rc = run(c, get_op, &a);
    /* A hit whose use could not be recorded is still a good object. */
    if (rc != SQLITE_OK && a.result != CACHE_HIT) {
        free(a.object);
        return CACHE_FAILED;
    }
    *object = a.object;
    *size = a.size;
    return a.result;
}

typedef struct PutArgs {
    const CacheKey *key;
    const char *c_source;
    const void *object;
    size_t size;
} PutArgs;

/* Deletes least-recently-used entries until the total fits in max. Both
 * queries read only the index on (last_used, size), never the entries. */
static int evict(sqlite3 *db, uint64_t max)
{
    int64_t limit = max > INT64_MAX ? INT64_MAX : (int64_t)max;
    sqlite3_stmt *st;
    int rc = prepare(db, &st, "SELECT coalesce(sum(size), 0) > ?1 FROM entry");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, limit);
    rc = sqlite3_step(st);
    int over = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return rc;
    if (!over)
        return SQLITE_OK;
    /* Keeps the newest entries whose running total, newest first, fits. */
    rc = prepare(db, &st,
                 "DELETE FROM entry WHERE rowid IN (SELECT id FROM"
                 " (SELECT rowid AS id, sum(size) OVER (ORDER BY last_used DESC, rowid DESC) AS kept"
                 "  FROM entry) WHERE kept > ?1)");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, limit);
    return exec_done(st);
}

static int put_op(Cache *c, void *arg)
{
    PutArgs *a = arg;
    const CacheKey *k = a->key;
    char object_hash[33];
    cache_hash(a->object, a->size, object_hash);
    int64_t now = now_us();
    int64_t size = (int64_t)(a->size + strlen(a->c_source) + strlen(k->ir));
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK)
        rc = prepare(c->db, &st,
                     "INSERT INTO entry(key, size, last_used, created, hits, ir_hash, options,"
                     " compiler, flags, version, object_hash, object_size)"
                     " VALUES(?1, ?2, ?3, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                     " ON CONFLICT(key) DO NOTHING");
    if (rc == SQLITE_OK) {
        const char *text[] = {k->hex, NULL, NULL, k->ir_hash, k->options, k->compiler,
                              k->flags, k->version, object_hash};
        for (int i = 0; i < 9; i++)
            if (text[i])
                sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, size);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 10, (int64_t)a->size);
        rc = exec_done(st);
    }
    /* Another process may have stored the same key first: keep its entry. */
    if (rc == SQLITE_OK && sqlite3_changes(c->db) == 1) {
        rc = prepare(c->db, &st, "INSERT INTO payload(id, ir, c_source, object) VALUES(?1, ?2, ?3, ?4)");
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(c->db));
            sqlite3_bind_text(st, 2, k->ir, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, a->c_source, -1, SQLITE_STATIC);
            sqlite3_bind_blob64(st, 4, a->object, a->size, SQLITE_STATIC);
            rc = exec_done(st);
        }
    }
    if (rc == SQLITE_OK)
        rc = count(c->db, "misses");
    if (rc == SQLITE_OK)
        rc = evict(c->db, c->max);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int cache_put(Cache *c, const CacheKey *key, const char *c_source,
              const void *object, size_t size)
{
    PutArgs a = {key, c_source, object, size};
    if (run(c, put_op, &a) != SQLITE_OK)
        return -1;
    /* A store follows a compilation that took far longer than a sync:
     * leave the next processes an empty WAL to read. */
    sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return 0;
}

/* ---- explanations ---- */

static const char *const component_name[] = {"IR", "options", "compiler", "flags", "version"};

static void key_components(const CacheKey *k, const char *out[5])
{
    out[0] = k->ir_hash;
    out[1] = k->options;
    out[2] = k->compiler;
    out[3] = k->flags;
    out[4] = k->version;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* "first difference at line N: stored '...', now '...'" for two IR texts. */
static void ir_difference(const char *a, const char *b, Buf *out)
{
    int line = 1;
    while (*a && *a == *b) {
        line += *a == '\n';
        a++, b++;
    }
    while (line > 1 && a[-1] != '\n')
        a--, b--;
    int la = (int)strcspn(a, "\n"), lb = (int)strcspn(b, "\n");
    buf_printf(out, "    first difference at line %d: stored '%.*s', now '%.*s'\n",
               line, la > 80 ? 80 : la, a, lb > 80 ? 80 : lb, b);
}

typedef struct ExplainArgs {
    const CacheKey *key;
    Buf *out;
} ExplainArgs;

static int explain_op(Cache *c, void *arg)
{
    ExplainArgs *a = arg;
    const CacheKey *k = a->key;
    const char *now[5];
    key_components(k, now);
    sqlite3_stmt *st;
    /* The closest entry: same IR counts most, then each other component. */
    int rc = prepare(c->db, &st,
                     "SELECT b.key, b.hits, b.ir_hash, b.options, b.compiler, b.flags,"
                     " b.version, p.ir FROM (SELECT rowid AS id, key, hits, ir_hash, options,"
                     " compiler, flags, version, (ir_hash = ?1) * 8 + (options = ?2)"
                     " + (compiler = ?3) + (flags = ?4) + (version = ?5) AS score FROM entry"
                     " ORDER BY key = ?6 DESC, score DESC, last_used DESC LIMIT 1) AS b"
                     " JOIN payload p ON p.id = b.id");
    if (rc != SQLITE_OK)
        return rc;
    for (int i = 0; i < 5; i++)
        sqlite3_bind_text(st, i + 1, now[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, k->hex, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    Buf *out = a->out;
    if (rc == SQLITE_DONE) {
        buf_printf(out, "cache miss: key %.16s is not in %s, which is empty\n", k->hex, c->path);
    } else if (rc == SQLITE_ROW) {
        const char *stored_key = (const char *)sqlite3_column_text(st, 0);
        if (!strcmp(stored_key, k->hex)) {
            buf_printf(out, "cache hit: key %.16s in %s (used %lld times before)\n",
                       k->hex, c->path, (long long)sqlite3_column_int64(st, 1));
        } else {
            Buf names = {0};
            for (int i = 0; i < 5; i++)
                if (strcmp((const char *)sqlite3_column_text(st, 2 + i), now[i]))
                    buf_printf(&names, "%s%s", names.len ? ", " : "", component_name[i]);
            buf_printf(out, "cache miss: key %.16s is not in %s; the closest entry %.16s differs in: %s\n",
                       k->hex, c->path, stored_key, names.data ? names.data : "nothing (hash collision?)");
            buf_free(&names);
            for (int i = 0; i < 5; i++) {
                const char *was = (const char *)sqlite3_column_text(st, 2 + i);
                if (!strcmp(was, now[i]))
                    continue;
                if (i == 0) {
                    const char *ir = (const char *)sqlite3_column_text(st, 7);
                    buf_printf(out, "  IR: stored %d lines, now %d lines\n",
                               count_lines(ir), count_lines(k->ir));
                    ir_difference(ir, k->ir, out);
                } else {
                    buf_printf(out, "  %s: stored '%s', now '%s'\n", component_name[i], was, now[i]);
                }
            }
        }
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void cache_explain(Cache *c, const CacheKey *key, Buf *out)
{
    size_t mark = out->len;
    ExplainArgs a = {key, out};
    if (run(c, explain_op, &a) != SQLITE_OK) {
        out->len = mark;
        buf_printf(out, "cache unavailable: running uncached\n");
    }
}

/* ---- maintenance: stats, list, clear, gc ---- */

static int64_t scalar(sqlite3 *db, const char *sql, int *rc)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (*rc != SQLITE_OK || (*rc = prepare(db, &st, sql)) != SQLITE_OK)
        return 0;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        *rc = r == SQLITE_DONE ? SQLITE_OK : r;
    sqlite3_finalize(st);
    return v;
}

static int stats_op(Cache *c, void *arg)
{
    CacheStats *s = arg;
    int rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);   /* one snapshot */
    s->entries = scalar(c->db, "SELECT count(*) FROM entry", &rc);
    s->bytes = scalar(c->db, "SELECT coalesce(sum(size), 0) FROM entry", &rc);
    s->hits = scalar(c->db, "SELECT value FROM counter WHERE name = 'hits'", &rc);
    s->misses = scalar(c->db, "SELECT value FROM counter WHERE name = 'misses'", &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    struct stat st;
    s->file_bytes = stat(c->path, &st) == 0 ? (int64_t)st.st_size : 0;
    return rc;
}

int cache_stats(Cache *c, CacheStats *s)
{
    memset(s, 0, sizeof *s);
    return run(c, stats_op, s) == SQLITE_OK ? 0 : -1;
}

typedef struct ListArgs {
    void (*each)(const CacheEntry *, void *);
    void *ctx;
} ListArgs;

static int list_op(Cache *c, void *arg)
{
    ListArgs *a = arg;
    sqlite3_stmt *st;
    int rc = prepare(c->db, &st,
                     "SELECT e.key, p.ir, e.options, e.compiler, e.flags, e.version, e.size,"
                     " e.object_size, e.hits, e.created, e.last_used FROM entry e"
                     " JOIN payload p ON p.id = e.rowid ORDER BY e.last_used DESC, e.rowid DESC");
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        CacheEntry e;
        const char **text[] = {&e.key, &e.ir, &e.options, &e.compiler, &e.flags, &e.version};
        for (int i = 0; i < 6; i++)
            *text[i] = (const char *)sqlite3_column_text(st, i);
        int64_t *num[] = {&e.size, &e.object_size, &e.hits, &e.created, &e.last_used};
        for (int i = 0; i < 5; i++)
            *num[i] = sqlite3_column_int64(st, 6 + i);
        a->each(&e, a->ctx);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int cache_list(Cache *c, void (*each)(const CacheEntry *, void *), void *ctx)
{
    ListArgs a = {each, ctx};
    return run(c, list_op, &a) == SQLITE_OK ? 0 : -1;
}

static int clear_op(Cache *c, void *arg)
{
    (void)arg;
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE; DELETE FROM entry; DELETE FROM payload;"
                          " UPDATE counter SET value = 0; COMMIT;", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "VACUUM", NULL, NULL, NULL);
    return rc;
}

int cache_clear(Cache *c)
{
    return run(c, clear_op, NULL) == SQLITE_OK ? 0 : -1;
}

static int gc_op(Cache *c, void *arg)
{
    int64_t *removed = arg;
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int64_t before = scalar(c->db, "SELECT count(*) FROM entry", &rc);
    sqlite3_stmt *st;
    if (rc == SQLITE_OK && (rc = prepare(c->db, &st, "DELETE FROM entry WHERE version <> ?1")) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, cache_build_identity(), -1, SQLITE_STATIC);
        rc = exec_done(st);
    }
    if (rc == SQLITE_OK)
        rc = evict(c->db, c->max);
    int64_t after = scalar(c->db, "SELECT count(*) FROM entry", &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "VACUUM", NULL, NULL, NULL);
    /* Folds the WAL into the file, so copying the file copies the cache. */
    if (rc == SQLITE_OK)
        rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    *removed = before - after;
    return rc == SQLITE_BUSY ? SQLITE_OK : rc;  /* a busy checkpoint is not a failure */
}

int cache_gc(Cache *c, int64_t *removed)
{
    *removed = 0;
    return run(c, gc_op, removed) == SQLITE_OK ? 0 : -1;
}

/* ---- the compile step of rt_load, through the cache ---- */

/* Emits k and compiles it; image (when not NULL) receives the object. */
static gradc_so *compile(const Kernel *k, const EmitOptions *eo, const gradc_options *opt,
                         Buf *c_source, Buf *image, char **err)
{
    Diag d;
    diag_init(&d);
    EmitOptions bounded = *eo;  /* no C file a compiler would choke on */
    if (!bounded.max_bytes)
        bounded.max_bytes = EMIT_DEFAULT_MAX_BYTES;
    if (emit_c_source(k, &bounded, c_source, &d) != 0) {
        *err = d.out.data ? d.out.data : xstrdup("gradc: error: cannot emit C\n");
        d.out.data = NULL;
        diag_free(&d);
        return NULL;
    }
    diag_free(&d);
    return jit_compile(c_source->data, opt, image, err);
}

gradc_so *cache_so_compile(const Kernel *k, const EmitOptions *eo,
                           const gradc_options *opt, Buf *why, char **err)
{
    Buf src = {0}, image = {0};
    /* NAME_init_params depends on a network's initialisers, which the key
     * does not describe: such objects are compiled every time. */
    if ((opt && opt->no_cache) || eo->net) {
        if (why)
            buf_puts(why, "cache disabled: compiling\n");
        gradc_so *so = compile(k, eo, opt, &src, NULL, err);
        buf_free(&src);
        return so;
    }
    char *path = cache_default_path(opt);
    Cache *c = path ? cache_open(path) : NULL;
    if (!path)
        warn("no cache location: set GRADC_CACHE or HOME; running uncached");
    free(path);
    if (!c) {
        if (why)
            buf_puts(why, "cache unavailable: compiling\n");
        gradc_so *so = compile(k, eo, opt, &src, NULL, err);
        buf_free(&src);
        return so;
    }
    CacheKey key;
    cache_key_for(&key, k, eo, opt);
    if (why)
        cache_explain(c, &key, why);
    void *object = NULL;
    size_t size = 0;
    gradc_so *so = NULL;
    int got = cache_get(c, &key, &object, &size);
    if (got == CACHE_HIT) {
        char *e = NULL;
        so = jit_load_image(object, size, &e);
        free(e);        /* e.g. a full /tmp: compiling will say it better */
    } else if (got == CACHE_DAMAGED) {
        warn("cache entry %.16s in %s failed its integrity check (object hash mismatch); recompiling",
             key.hex, cache_path(c));
    }
    free(object);
    if (!so) {
        so = compile(k, eo, opt, &src, &image, err);
        if (so && got != CACHE_FAILED && image.len)
            cache_put(c, &key, src.data, image.data, image.len);
    }
    buf_free(&src);
    buf_free(&image);
    cache_key_free(&key);
    cache_close(c);
    return so;
}

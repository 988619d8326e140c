/* arena.c — memory for one compilation: an arena freed at once, growable
 * text buffers, and allocation wrappers that fail cleanly. */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct Chunk {
    struct Chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
    Chunk *head;
};

/* Under AddressSanitizer (the fuzzer, the sanitizer build) every
 * allocation gets a chunk of exactly its size, so that an overflow hits a
 * red zone instead of silently landing in the next allocation. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifndef ARENA_ASAN
#define ARENA_ASAN 0
#endif

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("gradc: error: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        fputs("gradc: error: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fputs("gradc: error: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* Large arrays read in random order (the IR's nodes and hash table) go in
 * transparent huge pages where the system gives them on request: a big
 * graph's lookups then miss the TLB far less (measured: W6 at 10^6 nodes). */
enum { BIG = 4u << 20, HUGE_PAGE = 2u << 20 };

void *xmalloc_big(size_t n)
{
    if (n < BIG)
        return xmalloc(n);
    n = (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    void *p = aligned_alloc(HUGE_PAGE, n);
    if (!p) {
        fputs("gradc: error: out of memory\n", stderr);
        exit(1);
    }
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

void *xrealloc_big(void *p, size_t old, size_t n)
{
    if (n < BIG)
        return xrealloc(p, n);
    void *q = xmalloc_big(n);
    memcpy(q, p, old < n ? old : n);
    free(p);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

Arena *arena_new(void)
{
    Arena *a = xmalloc(sizeof *a);
    a->head = NULL;
    return a;
}

void arena_free(Arena *a)
{
    if (!a)
        return;
    for (Chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc(Arena *a, size_t size)
{
    size_t asked = size;
    size = (size + 15) & ~(size_t)15;
    Chunk *c = a->head;
    if (ARENA_ASAN || !c || c->size - c->used < size) {
        size_t cap = ARENA_ASAN ? asked : size > 65536 ? size : 65536;
        c = xmalloc(sizeof *c + cap);
        c->size = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return memset(p, 0, asked);
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

void buf_grow(Buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        buf_put(b, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_put(b, big, (size_t)n);
    free(big);
}

void buf_free(Buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

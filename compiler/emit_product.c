/* emit_product.c — matrix products as C: register-tiled loop nests (or
"--blas" calls), and transposes. */
#include "emit.h"

#include <string.h>

/* --blas: the product as one BLAS call (row-major, transposes native). */
static int blas_product(const Emitter *e, const Node *n, const char *A, const char *B,
                        const char *T, Buf *out)
{
    Shape sa = node(e, n->arg[0])->shape, sb = node(e, n->arg[1])->shape;
    int ta = n->aux & 1, tb = n->aux & 2;
    uint64_t flops = (uint64_t)shape_size(sa) * (sb.rank == 2 ? (tb ? sb.dim[0] : sb.dim[1]) : 1);
    if (!e->o || !e->o->blas || flops < 4096)   /* small: a call costs more */
        return 0;
    const char *opa = ta ? "CblasTrans" : "CblasNoTrans", *opb = tb ? "CblasTrans" : "CblasNoTrans";
    if (sb.rank == 1) {
        buf_printf(out, "    cblas_dgemv(CblasRowMajor, %s, %u, %u, 1.0, %s, %u, %s, 1, 0.0, %s, 1);\n",
                   opa, sa.dim[0], sa.dim[1], A, sa.dim[1], B, T);
        return 1;
    }
    uint32_t m = ta ? sa.dim[1] : sa.dim[0], k = ta ? sa.dim[0] : sa.dim[1];
    uint32_t nc = tb ? sb.dim[0] : sb.dim[1];
    buf_printf(out, "    cblas_dgemm(CblasRowMajor, %s, %s, %u, %u, %u, 1.0, %s, %u, %s, %u, 0.0, %s, %u);\n",
               opa, opb, m, nc, k, A, sa.dim[1], B, sb.dim[1], T, nc);
    return 1;
}

/* A product's register tile: MR rows of C by NR columns, kept in local
 * accumulators while p runs over the whole inner dimension. Per step the
 * tile reads NR contiguous elements of a row of B and MR elements of A:
 * MR * NR multiply-adds for MR + NR loads, where an axpy over rows of C in
 * memory needs a load and a store of C for every one. gcc's SLP pass turns
 * the NR accumulators of a row into vector registers; the emitted code
 * picks NR = 12 (12 ymm registers) when compiled with AVX, else NR = 8
 * (16 xmm registers with SSE2). */
enum { TILE_MR = 4 };

/* One loop nest of mr x nr tiles covering rows [i0, i1) and columns
 * [j0, j1) of T = op(A) B (both ranges whole multiples of the tile). Each
 * T[i][j] is 0.0 plus its terms in the order p = 0, 1, ..., k-1: the
 * interpreter's order, so blocking changes no result. */
static void tile_nest(const char *A, int ta, uint32_t lda, const char *B, uint32_t ldb,
                      const char *T, uint32_t ldc, uint32_t k, uint32_t i0, uint32_t i1,
                      uint32_t mr, uint32_t j0, uint32_t j1, uint32_t nr, Buf *out)
{
    if (i0 >= i1 || j0 >= j1)
        return;
    buf_printf(out, "    for (long j0 = %u; j0 < %u; j0 += %u)\n"
                    "        for (long i0 = %u; i0 < %u; i0 += %u) {\n",
               j0, j1, nr, i0, i1, mr);
    for (uint32_t r = 0; r < mr; r++) {
        buf_puts(out, "            double");
        for (uint32_t q = 0; q < nr; q++)
            buf_printf(out, " c%u_%u = 0.0%s", r, q, q + 1 < nr ? "," : ";\n");
    }
    buf_printf(out, "            for (long p = 0; p < %u; p++) {\n"
                    "                const double *restrict b = %s + p * %u + j0;\n", k, B, ldb);
    for (uint32_t r = 0; r < mr; r++) {
        if (ta)
            buf_printf(out, "                const double u%u = %s[p * %u + i0 + %u];\n", r, A, lda, r);
        else
            buf_printf(out, "                const double u%u = %s[(i0 + %u) * %u + p];\n", r, A, r, lda);
    }
    for (uint32_t r = 0; r < mr; r++) {
        buf_puts(out, "               ");
        for (uint32_t q = 0; q < nr; q++)
            buf_printf(out, " c%u_%u += u%u * b[%u];", r, q, r, q);
        buf_puts(out, "\n");
    }
    buf_puts(out, "            }\n");
    for (uint32_t r = 0; r < mr; r++) {
        buf_puts(out, "           ");
        for (uint32_t q = 0; q < nr; q++)
            buf_printf(out, " %s[(i0 + %u) * %u + j0 + %u] = c%u_%u;", T, r, ldc, q, r, q);
        buf_puts(out, "\n");
    }
    buf_puts(out, "        }\n");
}

/* T[m x n] = op(A) B with B row-major (ldb) and A or A^T (lda): whole
 * tiles, then the columns and rows left over as narrower or shorter tiles. */
static void tiled_product(const char *A, int ta, uint32_t lda, const char *B, uint32_t ldb,
                          const char *T, uint32_t m, uint32_t n, uint32_t k, uint32_t nr, Buf *out)
{
    uint32_t mt = m - m % TILE_MR, nt = n - n % nr;
    tile_nest(A, ta, lda, B, ldb, T, n, k, 0, mt, TILE_MR, 0, nt, nr, out);
    tile_nest(A, ta, lda, B, ldb, T, n, k, 0, mt, TILE_MR, nt, n, n - nt, out);
    tile_nest(A, ta, lda, B, ldb, T, n, k, mt, m, m - mt, 0, nt, nr, out);
    tile_nest(A, ta, lda, B, ldb, T, n, k, mt, m, m - mt, nt, n, n - nt, out);
}

void product_matmul(const Emitter *e, const Plan *p, NodeId id, Buf *out)
{
    const Node *n = node(e, id);
    Shape sa = node(e, n->arg[0])->shape, sb = node(e, n->arg[1])->shape;
    int ta = n->aux & 1, tb = n->aux & 2;
    uint32_t m = ta ? sa.dim[1] : sa.dim[0], k = ta ? sa.dim[0] : sa.dim[1];
    char A[320], B[320], T[320];
    emit_base(e, p, n->arg[0], A);
    emit_base(e, p, n->arg[1], B);
    emit_base(e, p, id, T);
    if (blas_product(e, n, A, B, T, out))
        return;
    const char *aik = ta ? "%s[p * %u + i]" : "%s[i * %u + p]";
    char aik_s[400];
    snprintf(aik_s, sizeof aik_s, aik, A, sa.dim[1]);
    if (sb.rank == 1 && !ta && p->where[n->arg[0]].store == S_TCONST && m * k <= 16384) {
        /* A constant matrix (--freeze): unrolled, skipping zero weights. */
        const double *c = ir_tconst_data(e->k->g, n->arg[0]);
        for (uint32_t i = 0; i < m; i++) {
            buf_printf(out, "    %s[%u] = ", T, i);
            int terms = 0;
            for (uint32_t q = 0; q < k; q++) {
                if (c[i * k + q] == 0.0)
                    continue;
                char lit[48];
                emit_literal(c[i * k + q], lit);
                const char *sep = terms++ ? " + " : "";
                if (c[i * k + q] == 1.0)        /* exact: 1*x is x, -1*x is -x */
                    buf_printf(out, "%s%s[%u]", sep, B, q);
                else if (c[i * k + q] == -1.0)
                    buf_printf(out, "%s-%s[%u]", sep, B, q);
                else
                    buf_printf(out, "%s%s * %s[%u]", sep, lit, B, q);
            }
            buf_puts(out, terms ? ";\n" : "0.0;\n");
        }
        return;
    }
    if (sb.rank == 1 && !ta) {          /* dot products over contiguous rows */
        /* Four rows at a time: one sum alone waits on the adder's latency
         * at every step; four independent ones keep it busy and load x[p]
         * once per four rows. Each row still sums in the order p = 0, 1, ... */
        uint32_t m4 = m - m % 4;
        if (m4 > 0)
            buf_printf(out, "    for (long i = 0; i < %u; i += 4) {\n"
                            "        const double *restrict r0 = %s + i * %u, *restrict r1 = r0 + %u;\n"
                            "        const double *restrict r2 = r1 + %u, *restrict r3 = r2 + %u;\n"
                            "        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;\n"
                            "        for (long p = 0; p < %u; p++) {\n"
                            "            const double xp = %s[p];\n"
                            "            s0 += r0[p] * xp;\n            s1 += r1[p] * xp;\n"
                            "            s2 += r2[p] * xp;\n            s3 += r3[p] * xp;\n"
                            "        }\n"
                            "        %s[i] = s0;\n        %s[i + 1] = s1;\n"
                            "        %s[i + 2] = s2;\n        %s[i + 3] = s3;\n    }\n",
                       m4, A, sa.dim[1], sa.dim[1], sa.dim[1], sa.dim[1], k, B, T, T, T, T);
        if (m4 < m)
            buf_printf(out, "    for (long i = %u; i < %u; i++) {\n"
                            "        double s = 0.0;\n"
                            "        for (long p = 0; p < %u; p++)\n"
                            "            s += %s * %s[p];\n"
                            "        %s[i] = s;\n    }\n", m4, m, k, aik_s, B, T);
        return;
    }
    if (sb.rank == 1) {                 /* A^T x as axpy over rows of A */
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n        %s[i] = 0.0;\n"
                        "    for (long p = 0; p < %u; p++) {\n"
                        "        const double xp = %s[p];\n"
                        "        for (long i = 0; i < %u; i++)\n"
                        "            %s[i] += %s[p * %u + i] * xp;\n    }\n",
                   m, T, k, B, m, T, A, sa.dim[1]);
        return;
    }
    uint32_t nc = tb ? sb.dim[0] : sb.dim[1];
    if (tb) {                           /* C = op(A) B^T: dot products */
        buf_printf(out, "    for (long i = 0; i < %u; i++)\n"
                        "        for (long j = 0; j < %u; j++) {\n"
                        "            double s = 0.0;\n"
                        "            for (long p = 0; p < %u; p++)\n"
                        "                s += %s * %s[j * %u + p];\n"
                        "            %s[i * %u + j] = s;\n        }\n",
                   m, nc, k, aik_s, B, sb.dim[1], T, nc);
        return;
    }
    /* Wider tiles where the vector registers are: 4 x 12 accumulators are
     * 12 ymm registers with AVX, but would spill 24 xmm ones with SSE2. */
    buf_puts(out, "#if defined(__AVX__)\n");
    tiled_product(A, ta, sa.dim[1], B, sb.dim[1], T, m, nc, k, 12, out);
    buf_puts(out, "#else\n");
    tiled_product(A, ta, sa.dim[1], B, sb.dim[1], T, m, nc, k, 8, out);
    buf_puts(out, "#endif\n");
}

/* T = A^T for A[r x c], four columns of A at a time: each row of A gives
 * four contiguous reads and each of four rows of T a sequential write.
 * Element by element, one of the two sides strides by a whole row, which
 * for W5's 128 x 784 weights cost 4.5x as much (290 against 60 us). */
void product_transpose(const char *A, uint32_t r, uint32_t c, const char *T, Buf *out)
{
    uint32_t c4 = c - c % 4;
    if (c4 > 0) {
        buf_printf(out, "    for (long j = 0; j < %u; j += 4)\n"
                        "        for (long i = 0; i < %u; i++) {\n", c4, r);
        for (int q = 0; q < 4; q++)
            buf_printf(out, "            %s[(j + %d) * %u + i] = %s[i * %u + j + %d];\n",
                       T, q, r, A, c, q);
        buf_puts(out, "        }\n");
    }
    if (c4 < c)
        buf_printf(out, "    for (long j = %u; j < %u; j++)\n        for (long i = 0; i < %u; i++)\n"
                        "            %s[j * %u + i] = %s[i * %u + j];\n",
                   c4, c, r, T, r, A, c);
}

/* check.c — `gradc check FILE|DIR...`: run the `check` statements of
 * problem files through generated C and report each one (text, JSON,
 * JUnit XML). Files are independent, so -j N checks them in parallel
 * worker processes; the report keeps the files' order whatever finishes
 * first. Exit status: 0 all passed, 1 a check failed, 2 a file did not
 * compile (or could not be read or run). */
#include "cli.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char check_help[] =
    "usage: gradc check FILE|DIR... [options]\n"
    "\n"
    "Runs every `check` statement of the files (directories are searched\n"
    "recursively for *.grad, in sorted order) through generated C and prints\n"
    "one line per check, then 'N passed, N failed'. See docs/check.md.\n"
    "\n"
    "  --json         print the results as one JSON object instead\n"
    "  --junit FILE   also write JUnit XML (for CI systems) to FILE\n"
    "  -j N           check N files at a time (default 1)\n"
    "  -q, --quiet    print only failures, errors and the closing line\n"
    "  --cache PATH   the cache of compiled code to use (docs/cache.md)\n"
    "  --no-cache     neither read nor write the cache\n"
    "\n"
    "exit status: 0 all checks passed, 1 a check failed, 2 a file did not\n"
    "compile (its errors are printed as FILE:LINE:COL: error: ...)\n";

typedef struct CheckArgs {
    char **paths;
    int npaths;
    int json, quiet, jobs;
    const char *junit;
    CacheOpts cache;
} CheckArgs;

/* The cache options (--cache, --no-cache) every compilation uses. */
static gradc_options check_rt_opts;

/* One file's results, already rendered in every output format. */
typedef struct Report {
    int npass, nfail, error;
    Buf out;                    /* text lines for stdout */
    Buf err;                    /* diagnostics for stderr */
    Buf json;                   /* check objects, each followed by ",\n" */
    Buf jerr;                   /* error objects, likewise */
    Buf junit;                  /* <testcase> elements */
} Report;

enum { REPORT_BUFS = 5 };

static Buf *report_buf(Report *r, int i)
{
    Buf *b[REPORT_BUFS] = {&r->out, &r->err, &r->json, &r->jerr, &r->junit};
    return b[i];
}

static void report_free(Report *r)
{
    for (int i = 0; i < REPORT_BUFS; i++)
        buf_free(report_buf(r, i));
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static void json_str(Buf *b, const char *s)
{
    if (!s) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int n;
        if (*p == '"' || *p == '\\')
            buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else if (*p < 0x20)
            buf_printf(b, "\\u%04x", *p);
        else if (*p < 0x80)
            buf_put(b, (const char *)p, 1);
        else if ((n = utf8_len(p)) > 0) {
            buf_put(b, (const char *)p, (size_t)n);
            p += n - 1;
        } else
            buf_puts(b, "\\ufffd");
    }
    buf_puts(b, "\"");
}

/* Text for XML attributes and elements; bytes XML cannot hold become '?'. */
static void xml_str(Buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int n;
        switch (*p) {
        case '&': buf_puts(b, "&amp;"); break;
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\n': buf_puts(b, "&#10;"); break;
        case '\t': buf_puts(b, "&#9;"); break;
        default:
            if (*p < 0x20)
                buf_puts(b, "?");
            else if (*p < 0x80)
                buf_put(b, (const char *)p, 1);
            else if ((n = utf8_len(p)) > 0) {
                buf_put(b, (const char *)p, (size_t)n);
                p += n - 1;
            } else
                buf_puts(b, "?");
        }
    }
}

/* ---- running the checks of one program ---- */

static uint32_t size_of(const Graph *g, NodeId id)
{
    return shape_size(g->node[id].shape);
}

static Value value_of_shape(Shape s, double *v)
{
    Value x = {0};
    x.rank = s.rank;
    x.dim[0] = s.dim[0];
    x.dim[1] = s.dim[1];
    x.n = shape_size(s);
    x.v = v;
    return x;
}

/* The gradient slice of check c's inputs, as a value: the input's shape
 * when there is one input, else all of them end to end. */
static Value grad_value(const Graph *g, const Func *f, const double *grad)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->ninputs; i++)
        n += size_of(g, f->input[i]);
    double *v = xmalloc((n + 1) * sizeof *v);
    memcpy(v, grad, n * sizeof *v);
    if (f->ninputs == 1)
        return value_of_shape(g->node[f->input[0]].shape, v);
    return value_of_shape(shape_vec(n), v);
}

/* All checks of a program run as one compiled function, so a file costs
 * one C compilation. For check c with left side F_c(p_c), a fresh input
 * s_c of F_c's shape is added and the function is
 *     total = sum over c of sum(s_c * F_c(p_c)).
 * Its gradient by s_c is F_c's value; by p_c, with s_c = 1, it is F_c's
 * gradient, and with s_c = the unit vector e_i it is row i of F_c's
 * Jacobian. Every number compared thus comes out of the generated C. */
static int run_checks(Program *p, const CheckList *L, Value *actual, char **err)
{
    Graph *g = p->g;
    uint32_t nin = 0, k = 0, flat = 0;
    for (uint32_t c = 0; c < L->n; c++)
        nin += L->check[c]->lhs->ninputs + 1;
    Func f = {0};
    f.name = "checks";
    f.input = xmalloc(nin * sizeof *f.input);
    f.input_name = xmalloc(nin * sizeof *f.input_name);
    uint32_t *at = xmalloc((L->n + 1) * sizeof *at);     /* flat offset of p_c */
    uint32_t *seed_at = xmalloc((L->n + 1) * sizeof *seed_at);
    NodeId total = NODE_NONE;
    for (uint32_t c = 0; c < L->n; c++) {
        const Func *lhs = L->check[c]->lhs;
        at[c] = flat;
        for (uint32_t i = 0; i < lhs->ninputs; i++) {
            f.input_name[k] = "arg";
            f.input[k++] = lhs->input[i];
            flat += size_of(g, lhs->input[i]);
        }
        Shape s = g->node[lhs->result].shape;
        NodeId seed = ir_input(g, s);
        seed_at[c] = flat;
        flat += shape_size(s);
        f.input_name[k] = "seed";
        f.input[k++] = seed;
        NodeId term = ir_mul(g, seed, lhs->result);
        if (s.rank > 0)
            term = ir_sum(g, term);
        total = total ? ir_add(g, total, term) : term;
    }
    f.ninputs = k;
    f.result = total;
    Kernel *kern = opt_kernel(p, &f, 1);
    Loaded code;
    int rc = rt_load(kern, &check_rt_opts, &code, err);
    kernel_free(kern);
    double *in = xmalloc((flat + 1) * sizeof *in), *grad = xmalloc((flat + 1) * sizeof *grad);
    if (rc == 0) {
        for (uint32_t c = 0; c < L->n; c++) {
            const Check *ch = L->check[c];
            if (ch->nin)
                memcpy(in + at[c], ch->in, ch->nin * sizeof *in);
            for (uint32_t i = seed_at[c]; i < seed_at[c] + size_of(g, ch->lhs->result); i++)
                in[i] = 1;
        }
        rt_grad(&code, in, grad);
        for (uint32_t c = 0; c < L->n; c++) {
            const Check *ch = L->check[c];
            NodeId r = ch->lhs->result;
            uint32_t m = size_of(g, r);
            if (ch->kind == CHECK_VALUE) {
                double *v = xmalloc((m + 1) * sizeof *v);
                memcpy(v, grad + seed_at[c], m * sizeof *v);
                actual[c] = value_of_shape(g->node[r].shape, v);
            } else if (ch->kind == CHECK_GRAD) {
                actual[c] = grad_value(g, ch->lhs, grad + at[c]);
            }
        }
        /* Jacobians: one more call per row, with the seed a unit vector. */
        for (uint32_t c = 0; c < L->n; c++) {
            const Check *ch = L->check[c];
            if (ch->kind != CHECK_JACOBIAN)
                continue;
            uint32_t m = size_of(g, ch->lhs->result), n = seed_at[c] - at[c];
            double *J = xmalloc(((size_t)m * n + 1) * sizeof *J);
            for (uint32_t i = 0; i < m; i++) {
                for (uint32_t j = 0; j < m; j++)
                    in[seed_at[c] + j] = i == j;
                rt_grad(&code, in, grad);
                memcpy(J + (size_t)i * n, grad + at[c], n * sizeof *J);
            }
            for (uint32_t j = 0; j < m; j++)
                in[seed_at[c] + j] = 1;
            actual[c] = value_of_shape(shape_mat(m, n), J);
        }
        rt_unload(&code);
    }
    free(in);
    free(grad);
    free(at);
    free(seed_at);
    free(f.input);
    free(f.input_name);
    return rc;
}

/* ---- reporting ---- */

static const char *kind_name(CheckKind k)
{
    return k == CHECK_GRAD ? "grad" : k == CHECK_JACOBIAN ? "jacobian" : "value";
}

static void describe_failure(const Check *c, const Value *a, Compare cmp, Buf *b)
{
    if (!cmp.shape_ok) {
        buf_puts(b, "expected shape ");
        value_shape(&c->expected, b);
        buf_puts(b, ", got shape ");
        value_shape(a, b);
        buf_puts(b, ": ");
        value_format(a, b, 16);
        return;
    }
    if (c->negate) {
        buf_puts(b, "got ");
        value_format(a, b, 16);
        buf_printf(b, ", which equals the value it must differ from (within %g)", c->tol);
        return;
    }
    char e[32], x[32];
    num_format(c->expected.v[cmp.first], e);
    num_format(a->v[cmp.first], x);
    buf_puts(b, "expected ");
    value_format(&c->expected, b, 16);
    buf_puts(b, ", got ");
    value_format(a, b, 16);
    if (c->expected.n > 1) {
        buf_puts(b, "; first difference at ");
        value_index(&c->expected, (uint64_t)cmp.first, b);
        buf_printf(b, ": expected %s, got %s", e, x);
    }
    buf_printf(b, " (tolerance %g)", c->tol);
}

static void report_check(Report *r, const char *path, const Check *c,
                         const Value *a, int quiet)
{
    Compare cmp = check_compare(a, &c->expected, c->tol, c->negate);
    Buf why = {0}, title = {0};
    buf_puts(&why, "");
    if (!cmp.pass)
        describe_failure(c, a, cmp, &why);
    if (c->name)
        buf_printf(&title, "\"%s\": ", c->name);
    buf_puts(&title, c->text);
    if (cmp.pass) {
        r->npass++;
        if (!quiet)
            buf_printf(&r->out, "PASS %s:%d: %s\n", path, c->loc.first_line, title.data);
    } else {
        r->nfail++;
        buf_printf(&r->out, "FAIL %s:%d: %s: %s\n", path, c->loc.first_line, title.data, why.data);
    }
    /* JSON */
    Buf *j = &r->json;
    buf_puts(j, "    {\"file\": ");
    json_str(j, path);
    buf_printf(j, ", \"line\": %d, \"name\": ", c->loc.first_line);
    json_str(j, c->name);
    buf_puts(j, ", \"check\": ");
    json_str(j, c->text);
    buf_printf(j, ", \"kind\": \"%s\", \"op\": \"%s\", \"tolerance\": %.17g, \"status\": \"%s\", \"expected\": ",
               kind_name(c->kind), c->negate ? "!=" : "==", c->tol, cmp.pass ? "pass" : "fail");
    value_json(&c->expected, j);
    buf_puts(j, ", \"actual\": ");
    value_json(a, j);
    buf_puts(j, ", \"first_difference\": ");
    if (cmp.shape_ok && cmp.first >= 0)
        value_index(&c->expected, (uint64_t)cmp.first, j);
    else
        buf_puts(j, "null");
    buf_puts(j, ", \"message\": ");
    json_str(j, cmp.pass ? NULL : why.data);
    buf_puts(j, "},\n");
    /* JUnit */
    Buf *x = &r->junit;
    buf_puts(x, "    <testcase classname=\"");
    xml_str(x, path);
    buf_printf(x, "\" name=\"line %d: ", c->loc.first_line);
    xml_str(x, title.data);
    buf_printf(x, "\" file=\"");
    xml_str(x, path);
    buf_printf(x, "\" line=\"%d\"", c->loc.first_line);
    if (cmp.pass) {
        buf_puts(x, "/>\n");
    } else {
        buf_puts(x, ">\n      <failure message=\"");
        xml_str(x, why.data);
        buf_printf(x, "\" type=\"%s\">", cmp.shape_ok ? "value" : "shape");
        xml_str(x, why.data);
        buf_puts(x, "</failure>\n    </testcase>\n");
    }
    buf_free(&why);
    buf_free(&title);
}

/* A file that could not be read, compiled or run: its diagnostics go to
 * stderr, and one ERROR line (the first message) to the report. */
static void report_error(Report *r, const char *path, const char *diags)
{
    r->error = 1;
    buf_puts(&r->err, diags);
    size_t n = strcspn(diags, "\n");
    char *first = xmalloc(n + 1);
    memcpy(first, diags, n);
    first[n] = 0;
    buf_printf(&r->out, "ERROR %s\n", first);
    buf_puts(&r->jerr, "    {\"file\": ");
    json_str(&r->jerr, path);
    buf_puts(&r->jerr, ", \"message\": ");
    json_str(&r->jerr, first);
    buf_puts(&r->jerr, ", \"diagnostics\": ");
    json_str(&r->jerr, diags);
    buf_puts(&r->jerr, "},\n");
    buf_puts(&r->junit, "    <testcase classname=\"");
    xml_str(&r->junit, path);
    buf_puts(&r->junit, "\" name=\"compile\" file=\"");
    xml_str(&r->junit, path);
    buf_puts(&r->junit, "\">\n      <error message=\"");
    xml_str(&r->junit, first);
    buf_puts(&r->junit, "\" type=\"compile\">");
    xml_str(&r->junit, diags);
    buf_puts(&r->junit, "</error>\n    </testcase>\n");
    free(first);
}

static void check_file(const char *path, int quiet, Report *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < REPORT_BUFS; i++)
        buf_puts(report_buf(r, i), "");
    Diag d;
    diag_init(&d);
    Input in;
    Program *p = NULL;
    if (input_from_file(&in, path, &d) != 0 || !(p = front_parse(&in.src, 0, &d))) {
        report_error(r, path, d.out.data ? d.out.data : "gradc: error: compilation failed\n");
        goto out;
    }
    const CheckList *L = check_list(p);
    Value *actual = xmalloc((L->n + 1) * sizeof *actual);
    memset(actual, 0, (L->n + 1) * sizeof *actual);
    char *err = NULL;
    if (L->n > 0 && run_checks(p, L, actual, &err) != 0) {
        Buf m = {0};
        buf_printf(&m, "%s: error: the checks could not be compiled to native code:\n%s",
                   path, err ? err : "");
        report_error(r, path, m.data);
        buf_free(&m);
    } else {
        for (uint32_t c = 0; c < L->n; c++)
            report_check(r, path, L->check[c], &actual[c], quiet);
    }
    for (uint32_t c = 0; c < L->n; c++)
        free(actual[c].v);
    free(actual);
    free(err);
out:
    program_free(p);
    input_free(&in);
    diag_free(&d);
}

/* ---- worker processes ---- */

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static void report_send(Report *r, int fd)
{
    char head[160];
    int n = snprintf(head, sizeof head, "%d %d %d", r->npass, r->nfail, r->error);
    for (int i = 0; i < REPORT_BUFS; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, " %zu", report_buf(r, i)->len);
    head[n++] = '\n';
    write_all(fd, head, (size_t)n);
    for (int i = 0; i < REPORT_BUFS; i++)
        write_all(fd, report_buf(r, i)->data, report_buf(r, i)->len);
}

/* Parses what report_send wrote; 0 on success. */
static int report_receive(Report *r, const Buf *b)
{
    memset(r, 0, sizeof *r);
    size_t len[REPORT_BUFS];
    const char *nl = b->data ? memchr(b->data, '\n', b->len) : NULL;
    if (!nl || sscanf(b->data, "%d %d %d %zu %zu %zu %zu %zu", &r->npass, &r->nfail,
                      &r->error, &len[0], &len[1], &len[2], &len[3], &len[4]) != 8)
        return -1;
    const char *p = nl + 1, *end = b->data + b->len;
    for (int i = 0; i < REPORT_BUFS; i++) {
        if ((size_t)(end - p) < len[i])
            return -1;
        buf_put(report_buf(r, i), p, len[i]);
        buf_puts(report_buf(r, i), "");
        p += len[i];
    }
    return 0;
}

typedef struct Worker {
    pid_t pid;
    int fd;
    int file;
    Buf data;
} Worker;

static void start_worker(Worker *w, const char *path, int file, int quiet)
{
    int fds[2];
    memset(w, 0, sizeof *w);
    w->file = file;
    w->fd = -1;
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0 || (w->pid = fork()) < 0) {
        w->pid = -1;            /* reported as an error by finish_worker */
        return;
    }
    if (w->pid == 0) {
        close(fds[0]);
        Report r;
        check_file(path, quiet, &r);
        report_send(&r, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    w->fd = fds[0];
}

static void finish_worker(Worker *w, const char *path, Report *r)
{
    int status = 0;
    if (w->pid > 0)
        waitpid(w->pid, &status, 0);
    if (w->pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        report_receive(r, &w->data) == 0) {
        buf_free(&w->data);
        return;
    }
    report_free(r);
    memset(r, 0, sizeof *r);
    for (int i = 0; i < REPORT_BUFS; i++)
        buf_puts(report_buf(r, i), "");
    Buf m = {0};
    if (w->pid <= 0)
        buf_printf(&m, "gradc: error: cannot start a worker for '%s': %s\n", path, strerror(errno));
    else if (WIFSIGNALED(status))
        buf_printf(&m, "gradc: error: checking '%s' crashed (signal %d)\n", path, WTERMSIG(status));
    else
        buf_printf(&m, "gradc: error: checking '%s' failed\n", path);
    report_error(r, path, m.data);
    buf_free(&m);
    buf_free(&w->data);
}

/* ---- files ---- */

typedef struct Files {
    char **path;
    int n, cap;
} Files;

static void add_file(Files *fs, const char *path)
{
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? 2 * fs->cap : 64;
        fs->path = xrealloc(fs->path, (size_t)fs->cap * sizeof *fs->path);
    }
    fs->path[fs->n++] = xstrdup(path);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Collects the *.grad files below dir; hidden entries are skipped. */
static void walk(Files *fs, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d || depth > 64) {
        if (d)
            closedir(d);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = xmalloc(n);
        snprintf(path, n, "%s%s%s", dir, ends_with(dir, "/") ? "" : "/", e->d_name);
        struct stat st;
        memset(&st, 0, sizeof st);
        /* Links to directories are not followed (as find does): two of
         * them in a loop made the walk exponential in the depth. */
        int link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && !link)
            walk(fs, path, depth + 1);
        else if (ends_with(e->d_name, ".grad") && S_ISREG(st.st_mode))
            add_file(fs, path);
        free(path);
    }
    closedir(d);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the command ---- */

static int parse_args(int argc, char **argv, CheckArgs *a)
{
    memset(a, 0, sizeof *a);
    a->jobs = 1;
    a->paths = xmalloc((size_t)argc * sizeof *a->paths);
    int opts = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (opts && (!strcmp(s, "--help") || !strcmp(s, "-h"))) {
            fputs(check_help, stdout);
            exit(0);
        }
        int r = opts ? cli_cache_option(&a->cache, "check", argc, argv, &i) : 0;
        if (r < 0)
            return 1;
        if (r > 0 && a->cache.explain)
            return cli_usage_error("check", "--explain-cache is an option of 'gradc eval'");
        if (r > 0) {
            check_rt_opts = cli_cache_runtime_options(&a->cache);
            continue;
        }
        if (opts && !strcmp(s, "--")) {
            opts = 0;
        } else if (opts && !strcmp(s, "--json")) {
            a->json = 1;
        } else if (opts && (!strcmp(s, "-q") || !strcmp(s, "--quiet"))) {
            a->quiet = 1;
        } else if (opts && !strcmp(s, "--junit")) {
            if (i + 1 >= argc)
                return cli_usage_error("check", "--junit needs a file name");
            a->junit = argv[++i];
        } else if (opts && (!strcmp(s, "-j") || (!strncmp(s, "-j", 2) && s[2]))) {
            const char *v = s[2] ? s + 2 : i + 1 < argc ? argv[++i] : "";
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 256)
                return cli_usage_error("check", "-j needs a number of jobs from 1 to 256");
            a->jobs = (int)n;
        } else if (opts && s[0] == '-' && s[1]) {
            return cli_usage_error("check", "unknown option '%s'", s);
        } else {
            a->paths[a->npaths++] = argv[i];
        }
    }
    if (a->npaths == 0)
        return cli_usage_error("check", "give the problem files or directories to check");
    return 0;
}

static int write_junit(const char *path, Report *rs, Files *fs, int pass, int fail, int errors)
{
    Buf x = {0};
    buf_puts(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    buf_printf(&x, "<testsuites name=\"gradc check\" tests=\"%d\" failures=\"%d\" errors=\"%d\">\n",
               pass + fail + errors, fail, errors);
    for (int i = 0; i < fs->n; i++) {
        Report *r = &rs[i];
        buf_puts(&x, "  <testsuite name=\"");
        xml_str(&x, fs->path[i]);
        buf_printf(&x, "\" tests=\"%d\" failures=\"%d\" errors=\"%d\">\n",
                   r->npass + r->nfail + r->error, r->nfail, r->error);
        buf_puts(&x, r->junit.data ? r->junit.data : "");
        buf_puts(&x, "  </testsuite>\n");
    }
    buf_puts(&x, "</testsuites>\n");
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x.data, 1, x.len, f) == x.len;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "gradc: error: cannot write '%s': %s\n", path, strerror(errno));
    buf_free(&x);
    return ok ? 0 : -1;
}

static void print_json(Report *rs, int n, int pass, int fail, int errors)
{
    Buf j = {0}, e = {0};
    buf_puts(&j, "");
    buf_puts(&e, "");
    for (int i = 0; i < n; i++) {
        buf_puts(&j, rs[i].json.data ? rs[i].json.data : "");
        buf_puts(&e, rs[i].jerr.data ? rs[i].jerr.data : "");
    }
    if (j.len >= 2)                             /* the last ",\n" */
        j.data[j.len -= 2] = 0;
    if (e.len >= 2)
        e.data[e.len -= 2] = 0;
    printf("{\n  \"checks\": [\n%s\n  ],\n  \"errors\": [\n%s\n  ],\n"
           "  \"files\": %d, \"passed\": %d, \"failed\": %d, \"error_files\": %d\n}\n",
           j.data, e.data, n, pass, fail, errors);
    buf_free(&j);
    buf_free(&e);
}

typedef struct Progress {
    int on, done, total;
} Progress;

static void progress(Progress *pr, const char *path)
{
    if (!pr->on)
        return;
    if (path)
        fprintf(stderr, "\r\033[K[%d/%d] %s", pr->done, pr->total, path);
    else
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* Prints the reports of files [*next, upto) once all before them are in. */
static void flush_reports(Report *rs, const int *ready, int n, int *next,
                          const CheckArgs *a, Progress *pr)
{
    while (*next < n && ready[*next]) {
        Report *r = &rs[*next];
        if (pr->on && (r->out.len || r->err.len))
            progress(pr, NULL);
        fflush(stdout);
        if (r->err.len)
            cli_eputs(r->err.data);
        fflush(stderr);
        if (!a->json && r->out.len)
            fputs(r->out.data, stdout);
        fflush(stdout);
        ++*next;
    }
}

int cmd_check(int argc, char **argv)
{
    CheckArgs a;
    if (parse_args(argc, argv, &a)) {
        free(a.paths);
        return 2;
    }
    Files fs = {0};
    int missing = 0;
    for (int i = 0; i < a.npaths; i++) {
        struct stat st;
        if (stat(a.paths[i], &st) != 0) {
            fprintf(stderr, "gradc: error: cannot read '%s': %s\n", a.paths[i], strerror(errno));
            missing = 1;
        } else if (S_ISDIR(st.st_mode)) {
            int first = fs.n;
            walk(&fs, a.paths[i], 0);
            qsort(fs.path + first, (size_t)(fs.n - first), sizeof *fs.path, by_name);
        } else {
            add_file(&fs, a.paths[i]);
        }
    }
    Report *rs = xmalloc(((size_t)fs.n + 1) * sizeof *rs);
    int *ready = xmalloc(((size_t)fs.n + 1) * sizeof *ready);
    memset(ready, 0, ((size_t)fs.n + 1) * sizeof *ready);
    Progress pr = {isatty(2) && fs.n >= 10, 0, fs.n};
    int next = 0;
    if (a.jobs <= 1) {
        for (int i = 0; i < fs.n; i++) {
            progress(&pr, fs.path[i]);
            check_file(fs.path[i], a.quiet, &rs[i]);
            ready[i] = 1;
            pr.done++;
            flush_reports(rs, ready, fs.n, &next, &a, &pr);
        }
    } else {
        signal(SIGPIPE, SIG_IGN);
        Worker *ws = xmalloc((size_t)a.jobs * sizeof *ws);
        struct pollfd *pfd = xmalloc((size_t)a.jobs * sizeof *pfd);
        int nw = 0, started = 0;
        while (started < fs.n || nw > 0) {
            while (nw < a.jobs && started < fs.n) {
                progress(&pr, fs.path[started]);
                start_worker(&ws[nw++], fs.path[started], started, a.quiet);
                started++;
            }
            int timeout = -1;       /* 0 when a worker failed to start */
            for (int i = 0; i < nw; i++) {
                pfd[i] = (struct pollfd){ws[i].fd, POLLIN, 0};
                if (ws[i].fd < 0)
                    timeout = 0;
            }
            if (poll(pfd, (nfds_t)nw, timeout) < 0 && errno != EINTR)
                break;
            for (int i = 0; i < nw; i++) {
                char chunk[65536];
                ssize_t k = 0;
                if (ws[i].fd >= 0 && !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                if (ws[i].fd >= 0 && (k = read(ws[i].fd, chunk, sizeof chunk)) > 0) {
                    buf_put(&ws[i].data, chunk, (size_t)k);
                    continue;
                }
                if (k < 0 && errno == EINTR)
                    continue;
                if (ws[i].fd >= 0)
                    close(ws[i].fd);
                int f = ws[i].file;
                finish_worker(&ws[i], fs.path[f], &rs[f]);
                ready[f] = 1;
                pr.done++;
                ws[i--] = ws[--nw];
                flush_reports(rs, ready, fs.n, &next, &a, &pr);
            }
        }
        free(ws);
        free(pfd);
    }
    progress(&pr, NULL);
    int pass = 0, fail = 0, errors = missing;
    for (int i = 0; i < fs.n; i++) {
        pass += rs[i].npass;
        fail += rs[i].nfail;
        errors += rs[i].error;
    }
    if (a.json)
        print_json(rs, fs.n, pass, fail, errors);
    else
        printf("%d passed, %d failed\n", pass, fail);
    if (a.junit && write_junit(a.junit, rs, &fs, pass, fail, errors) != 0)
        errors++;
    for (int i = 0; i < fs.n; i++) {
        report_free(&rs[i]);
        free(fs.path[i]);
    }
    free(rs);
    free(ready);
    free(fs.path);
    free(a.paths);
    return errors ? 2 : fail ? 1 : 0;
}

/*
 * smtpload - the load generator of bench/check_bench.py: prepared messages
 * (for instance DKIM-signed ones) sent over several concurrent SMTP
 * sessions, from a chosen source address.
 *
 *   smtpload -p PORT -t RCPT -m MESSAGES [-s SESSIONS] [-b SOURCE]
 *            [-H HELO] [-N] DIR
 *
 * DIR holds the messages, one a file, read once at start (in name order):
 * the first line of a file is the envelope sender (up to the \n), the rest
 * the message as it is to arrive, with CRLF line ends.  SESSIONS processes
 * (default 8) each open a connection from SOURCE (an IPv4 address bound
 * before connect; default any) to 127.0.0.1:PORT, say EHLO HELO and then
 * take message numbers from a counter they share until MESSAGES have been
 * taken: message k is file k modulo the number of files, sent as MAIL
 * FROM, RCPT TO:<RCPT>, DATA, each command waiting for its reply (no
 * pipelining), over the same connection (as smtp-source -d) or, with -N,
 * over a new connection each (greeting, EHLO, message, QUIT).  The
 * processes start together; on stdout come "seconds S" (from the start to
 * the last 250 for a message) and "done N" (messages that had their 250).
 *
 * Why C: the same load must cost little next to the servers, which share
 * the machine's CPUs with it; a Python client spends as much CPU per
 * message as an MTA does and so hides the difference measured.
 *
 * Exit status 0 when every message had its 250; otherwise 1, with the
 * first failure on stderr ("session 3, message 17: RCPT: 550 ...").  Every
 * wait has a 60 s deadline (SO_RCVTIMEO/SO_SNDTIMEO), so a stuck server
 * ends the run instead of hanging it.  Bad arguments or files: status 2.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smtpreply.h"

#define SMTPLOAD_TIMEOUT_S    60
#define SMTPLOAD_MAX_SESSIONS 256
#define SMTPLOAD_MAX_FILES    100000

struct message {
    char   *sender;     /* "MAIL FROM:<sender>\r\n" */
    char   *data;       /* dot-stuffed, CRLF, then ".\r\n" */
    size_t  len;
};

struct shared {         /* one page shared by every session process */
    long   next;        /* the next message number to take */
    long   done;        /* messages that had their 250 */
    double last_ok;     /* CLOCK_MONOTONIC of the latest 250 of any process */
};

struct conn {
    int                 fd;
    smtpreply_parser_t *parser;
    char                buf[8192];  /* read, not yet parsed */
    size_t              len;
};

static char failure[512];

static int fail(const char *fmt, ...)
{
    va_list ap;

    if (failure[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(failure, sizeof(failure), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Put "message K: " before the failure already recorded. */
static int fail_message(long k)
{
    char head[32];
    int hl = snprintf(head, sizeof(head), "message %ld: ", k);
    size_t len = strlen(failure);

    if (hl <= 0 || (size_t)hl >= sizeof(failure))
        return -1;
    if (len + (size_t)hl >= sizeof(failure))
        len = sizeof(failure) - 1 - (size_t)hl;
    memmove(failure + hl, failure, len);
    memcpy(failure, head, (size_t)hl);
    failure[hl + len] = '\0';
    return -1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conn_write(struct conn *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one whole reply (lib/smtpreply parses it); 0 if its code is want,
 * else -1 (failure set).  Bytes after it stay in c->buf for the next. */
static int conn_reply(struct conn *c, int want, const char *what)
{
    const struct smtpreply *r;
    const char *why;
    size_t used;
    ssize_t n;

    for (;;) {
        if (c->len > 0) {
            int st = smtpreply_parse(c->parser, c->buf, c->len, &used, &r, &why);

            c->len -= used;
            memmove(c->buf, c->buf + used, c->len);
            if (st == SMTPREPLY_ERROR)
                return fail("%s: %s", what, why);
            if (st == SMTPREPLY_DONE)
                return r->code == want ? 0 : fail("%s: %d %.200s", what, r->code, r->lines[0]);
        }
        if ((n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len)) <= 0)
            return fail("%s: connection closed or timed out", what);
        c->len += (size_t)n;
    }
}

static int conn_cmd(struct conn *c, const char *line, size_t len, int want,
                    const char *what)
{
    if (conn_write(c, line, len) < 0)
        return fail("%s: cannot send", what);
    return conn_reply(c, want, what);
}

/* Connect from source (or any address) and get through greeting and EHLO. */
static int conn_open(struct conn *c, int port, const struct in_addr *source, const char *ehlo)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = SMTPLOAD_TIMEOUT_S };
    int one = 1;

    c->len = 0;
    smtpreply_parser_free(&c->parser);
    c->parser = smtpreply_parser_new(NULL);
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return fail("socket: %s", strerror(errno));
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (source) {
        struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = *source };

        if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
            return fail("bind to the source address: %s", strerror(errno));
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return fail("connect: %s", strerror(errno));
    if (conn_reply(c, 220, "greeting") < 0
        || conn_cmd(c, ehlo, strlen(ehlo), 250, "EHLO") < 0)
        return -1;
    return 0;
}

static void conn_close(struct conn *c, int quit)
{
    if (c->fd >= 0) {
        if (quit)
            conn_cmd(c, "QUIT\r\n", 6, 221, "QUIT");
        close(c->fd);
        c->fd = -1;
    }
    smtpreply_parser_free(&c->parser);
}

/* One session process: messages from the shared counter until none is left. */
static int session(struct shared *sh, long total, const struct message *msgs, size_t nmsgs,
                   int port, const struct in_addr *source, const char *ehlo,
                   const char *rcpt_cmd, int new_conn)
{
    struct conn c = { .fd = -1 };
    double last = 0;

    for (;;) {
        long k = __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED);
        const struct message *m;

        if (k >= total)
            break;
        m = &msgs[(size_t)k % nmsgs];
        if (c.fd < 0 && conn_open(&c, port, source, ehlo) < 0)
            return fail_message(k);
        if (conn_cmd(&c, m->sender, strlen(m->sender), 250, "MAIL") < 0
            || conn_cmd(&c, rcpt_cmd, strlen(rcpt_cmd), 250, "RCPT") < 0
            || conn_cmd(&c, "DATA\r\n", 6, 354, "DATA") < 0
            || conn_cmd(&c, m->data, m->len, 250, "end of data") < 0)
            return fail_message(k);
        last = now_s();
        __atomic_fetch_add(&sh->done, 1, __ATOMIC_RELAXED);
        if (new_conn)
            conn_close(&c, 1);
    }
    conn_close(&c, 1);
    /* The latest 250 of all processes: a failed compare-and-swap
     * reloads seen, so the loop ends once last_ok >= last. */
    double seen;

    __atomic_load(&sh->last_ok, &seen, __ATOMIC_RELAXED);
    while (last > seen && !__atomic_compare_exchange(&sh->last_ok, &seen, &last, 0,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return 0;
}

/* The file as a message: sender line, then the content dot-stuffed. */
static int load_file(const char *dir, const char *name, struct message *m)
{
    char path[4096];
    FILE *f;
    struct stat st;
    char *raw, *nl, *p, *end, *out;
    size_t n;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return fail("%s/%s: path too long", dir, name);
    if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) < 0)
        return fail("%s: %s", path, strerror(errno));
    raw = malloc((size_t)st.st_size + 1);
    if (raw == NULL || fread(raw, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fclose(f);
        return fail("%s: cannot read", path);
    }
    fclose(f);
    raw[st.st_size] = '\0';
    end = raw + st.st_size;
    if ((nl = memchr(raw, '\n', (size_t)st.st_size)) == NULL || nl == raw || nl - raw > 900
        || memchr(raw, '\r', (size_t)(nl - raw)) != NULL)
        return fail("%s: the first line must be the envelope sender", path);
    *nl = '\0';
    if (asprintf(&m->sender, "MAIL FROM:<%s>\r\n", raw) < 0)
        return fail("out of memory");
    if (end - (nl + 1) < 2 || end[-2] != '\r' || end[-1] != '\n')
        return fail("%s: the message must end with CRLF", path);
    /* At most one more byte per line, and the final ".\r\n". */
    n = (size_t)(end - nl) * 2 + 3;
    if ((out = m->data = malloc(n)) == NULL)
        return fail("out of memory");
    for (p = nl + 1; p < end;) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)(eol - p) + 1;

        if (eol == NULL || eol == p || eol[-1] != '\r')
            return fail("%s: a line does not end with CRLF", path);
        if (*p == '.')
            *out++ = '.';
        memcpy(out, p, ll);
        out += ll;
        p = eol + 1;
    }
    memcpy(out, ".\r\n", 3);
    m->len = (size_t)(out + 3 - m->data);
    free(raw);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct message *load_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    struct message *msgs;

    if (d == NULL) {
        fail("%s: %s", dir, strerror(errno));
        return NULL;
    }
    while ((e = readdir(d)) != NULL && n < SMTPLOAD_MAX_FILES) {
        if (e->d_name[0] == '.')
            continue;
        if ((names = realloc(names, (n + 1) * sizeof(*names))) == NULL
            || (names[n] = strdup(e->d_name)) == NULL) {
            closedir(d);
            fail("out of memory");
            return NULL;
        }
        n++;
    }
    closedir(d);
    if (n == 0) {
        fail("%s: no messages", dir);
        return NULL;
    }
    qsort(names, n, sizeof(*names), by_name);
    if ((msgs = calloc(n, sizeof(*msgs))) == NULL) {
        fail("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (load_file(dir, names[i], &msgs[i]) < 0)
            return NULL;
        free(names[i]);
    }
    free(names);
    *count = n;
    return msgs;
}

static void usage(void)
{
    fprintf(stderr, "usage: smtpload -p PORT -t RCPT -m MESSAGES [-s SESSIONS] [-b SOURCE] "
            "[-H HELO] [-N] DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 0, sessions = 8, new_conn = 0, opt, start[2], status, failed = 0;
    long total = 0;
    const char *rcpt = NULL, *helo = "client.example.org", *source_text = NULL;
    struct in_addr source;
    char *rcpt_cmd, *ehlo;
    struct message *msgs;
    size_t nmsgs;
    struct shared *sh;
    pid_t pids[SMTPLOAD_MAX_SESSIONS];
    double t0;

    while ((opt = getopt(argc, argv, "p:t:m:s:b:H:N")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 't': rcpt = optarg; break;
        case 'm': total = atol(optarg); break;
        case 's': sessions = atoi(optarg); break;
        case 'b': source_text = optarg; break;
        case 'H': helo = optarg; break;
        case 'N': new_conn = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || port <= 0 || port > 65535 || rcpt == NULL || strlen(rcpt) > 900
        || strlen(helo) > 255 || total < 1 || sessions < 1 || sessions > SMTPLOAD_MAX_SESSIONS)
        usage();
    if (source_text && inet_pton(AF_INET, source_text, &source) != 1) {
        fprintf(stderr, "smtpload: %s: not an IPv4 address\n", source_text);
        return 2;
    }
    if ((msgs = load_dir(argv[optind], &nmsgs)) == NULL) {
        fprintf(stderr, "smtpload: %s\n", failure);
        return 2;
    }
    if (asprintf(&rcpt_cmd, "RCPT TO:<%s>\r\n", rcpt) < 0
        || asprintf(&ehlo, "EHLO %s\r\n", helo) < 0)
        return 2;
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || pipe(start) < 0) {
        perror("smtpload");
        return 2;
    }
    memset(sh, 0, sizeof(*sh));
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < sessions; i++) {
        if ((pids[i] = fork()) < 0) {
            perror("fork");
            for (int j = 0; j < i; j++)
                kill(pids[j], SIGKILL);
            return 2;
        }
        if (pids[i] == 0) {
            char go;

            close(start[1]);
            /* Wait until every session is ready: EOF on the pipe. */
            if (read(start[0], &go, 1) < 0)
                _exit(3);
            if (session(sh, total, msgs, nmsgs, port, source_text ? &source : NULL, ehlo,
                        rcpt_cmd, new_conn) < 0) {
                fprintf(stderr, "session %d, %s\n", i, failure);
                _exit(1);
            }
            _exit(0);
        }
    }
    close(start[0]);
    t0 = now_s();
    close(start[1]);
    for (int i = 0; i < sessions; i++) {
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    }
    printf("seconds %.6f\ndone %ld\n", sh->last_ok > t0 ? sh->last_ok - t0 : 0.0, sh->done);
    return failed || sh->done != total;
}

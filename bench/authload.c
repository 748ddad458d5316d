/*
 * authload - the load generator of bench/auth_bench.py: authenticated
 * submission sessions over STARTTLS, from several client processes at once.
 *
 *   authload -p PORT -a BASE64 [-c CLIENTS] [-n SESSIONS]
 *            [-f SENDER -t RCPT [-s BYTES]]
 *
 * Each of CLIENTS processes runs its share of SESSIONS one after the other,
 * each on a new TCP connection to 127.0.0.1:PORT: greeting, EHLO, STARTTLS,
 * a full TLS handshake (no session resumption: every session has a new SSL
 * object and the context keeps no sessions), EHLO, AUTH PLAIN BASE64, then
 * with -f and -t one message of BYTES bytes (default 4096) from SENDER to
 * RCPT, and QUIT.  The processes start together; the time from their start
 * to the last one's end is printed as "seconds S" on stdout, with "done N".
 *
 * Why C: the same client code drives every system measured, and it must
 * cost little next to the servers, which share the machine's CPUs with it.
 * The earlier Python client spent 1.3-2 ms of CPU a session, as much as a
 * server, and so compressed every ratio towards 1.
 *
 * Exit status 0 when every session completed; otherwise 1, with the first
 * failure on stderr ("client 3, session 17: AUTH: 535 5.7.8 ...").  Every
 * wait has a 30 s deadline (SO_RCVTIMEO/SO_SNDTIMEO), so a stuck server ends
 * the run instead of hanging it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define AUTHLOAD_TIMEOUT_S  30
#define AUTHLOAD_MAX_CLIENTS 256

struct conn {
    int   fd;
    SSL  *ssl;
    char  buf[16384];
    size_t len;
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

static ssize_t conn_read(struct conn *c, void *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)n);

        return r > 0 ? r : -1;
    }
    return read(c->fd, p, n);
}

static int conn_write(struct conn *c, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        ssize_t w;

        if (c->ssl) {
            int r = SSL_write(c->ssl, s, (int)n);

            w = r > 0 ? r : -1;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
        }
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one whole reply; 0 if its code is want, else -1 (failure set). */
static int conn_reply(struct conn *c, const char *want, const char *what)
{
    for (;;) {
        char *line = c->buf, *end;

        while ((end = memchr(line, '\n', c->len - (size_t)(line - c->buf))) != NULL) {
            size_t llen = (size_t)(end - line);

            if (llen < 4 || line[3] != '-') {
                int good = llen >= 3 && memcmp(line, want, 3) == 0;

                if (!good)
                    fail("%s: %.*s", what, (int)(llen > 200 ? 200 : llen), line);
                c->len -= (size_t)(end + 1 - c->buf);
                memmove(c->buf, end + 1, c->len);
                return good ? 0 : -1;
            }
            line = end + 1;
        }
        if (c->len == sizeof(c->buf))
            return fail("%s: reply too long", what);
        ssize_t n = conn_read(c, c->buf + c->len, sizeof(c->buf) - c->len);

        if (n <= 0)
            return fail("%s: connection closed or timed out", what);
        c->len += (size_t)n;
    }
}

static int conn_cmd(struct conn *c, const char *line, const char *want, const char *what)
{
    char out[1024];
    int n = snprintf(out, sizeof(out), "%s\r\n", line);

    if (n < 0 || (size_t)n >= sizeof(out))
        return fail("%s: command too long", what);
    if (conn_write(c, out, (size_t)n) < 0)
        return fail("%s: cannot send", what);
    return conn_reply(c, want, what);
}

static int session(SSL_CTX *ctx, int port, const char *plain, const char *sender,
                   const char *rcpt, const char *message, size_t message_len)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = AUTHLOAD_TIMEOUT_S };
    struct conn c = { .fd = -1 };
    char line[1024];
    int rc = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return fail("socket: %s", strerror(errno));
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fail("connect: %s", strerror(errno));
        goto out;
    }
    if (conn_reply(&c, "220", "greeting") < 0
        || conn_cmd(&c, "EHLO client.example.org", "250", "EHLO") < 0
        || conn_cmd(&c, "STARTTLS", "220", "STARTTLS") < 0)
        goto out;
    if (c.len != 0) {
        fail("data after 220 to STARTTLS");
        goto out;
    }
    if ((c.ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c.ssl, c.fd) != 1
        || SSL_connect(c.ssl) != 1) {
        fail("TLS handshake: %s", ERR_reason_error_string(ERR_get_error()));
        goto out;
    }
    if (conn_cmd(&c, "EHLO client.example.org", "250", "EHLO after STARTTLS") < 0)
        goto out;
    snprintf(line, sizeof(line), "AUTH PLAIN %s", plain);
    if (conn_cmd(&c, line, "235", "AUTH") < 0)
        goto out;
    if (message != NULL) {
        snprintf(line, sizeof(line), "MAIL FROM:<%s>", sender);
        if (conn_cmd(&c, line, "250", "MAIL") < 0)
            goto out;
        snprintf(line, sizeof(line), "RCPT TO:<%s>", rcpt);
        if (conn_cmd(&c, line, "250", "RCPT") < 0
            || conn_cmd(&c, "DATA", "354", "DATA") < 0)
            goto out;
        if (conn_write(&c, message, message_len) < 0) {
            fail("message: cannot send");
            goto out;
        }
        if (conn_reply(&c, "250", "end of DATA") < 0)
            goto out;
    }
    if (conn_cmd(&c, "QUIT", "221", "QUIT") < 0)
        goto out;
    rc = 0;
out:
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    close(c.fd);
    ERR_clear_error();
    return rc;
}

/* size bytes of message: CRLF lines, none starting with a dot, then the
 * terminating CRLF.CRLF's last three bytes. */
static char *make_message(const char *sender, const char *rcpt, size_t size, size_t *len)
{
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "From: <%s>\r\nTo: <%s>\r\nSubject: auth_bench\r\n"
                      "Message-ID: <%ld.%ld@client.example.org>\r\n\r\n",
                      sender, rcpt, (long)getpid(), (long)time(NULL));
    size_t n = (size_t)hl, cap = size + 512;
    char *m = malloc(cap);

    if (m == NULL || hl < 0)
        exit(2);
    memcpy(m, head, n);
    while (n + 72 <= size) {
        memset(m + n, 'x', 70);
        memcpy(m + n + 70, "\r\n", 2);
        n += 72;
    }
    if (n + 2 < size) {
        memset(m + n, 'y', size - n - 2);
        n = size - 2;
        memcpy(m + n, "\r\n", 2);
        n += 2;
    }
    memcpy(m + n, ".\r\n", 3);
    *len = n + 3;
    return m;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: authload -p PORT -a BASE64 [-c CLIENTS] [-n SESSIONS] "
            "[-f SENDER -t RCPT [-s BYTES]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 0, clients = 4, sessions = 100, opt, start[2], status, failed = 0;
    const char *plain = NULL, *sender = NULL, *rcpt = NULL;
    size_t size = 4096, message_len = 0;
    char *message = NULL;
    pid_t pids[AUTHLOAD_MAX_CLIENTS];
    SSL_CTX *ctx;
    double t0;

    while ((opt = getopt(argc, argv, "p:a:c:n:f:t:s:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'a': plain = optarg; break;
        case 'c': clients = atoi(optarg); break;
        case 'n': sessions = atoi(optarg); break;
        case 'f': sender = optarg; break;
        case 't': rcpt = optarg; break;
        case 's': size = (size_t)strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (optind != argc || port <= 0 || port > 65535 || plain == NULL || strlen(plain) > 900
        || clients < 1 || clients > AUTHLOAD_MAX_CLIENTS || sessions < 1
        || (sender == NULL) != (rcpt == NULL) || (sender && (strlen(sender) > 900
                                                            || strlen(rcpt) > 900))
        || size < 600 || size > 10 * 1024 * 1024)
        usage();
    if (sender)
        message = make_message(sender, rcpt, size, &message_len);
    if (pipe(start) < 0) {
        perror("pipe");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* One context, made before the clients fork: none of them pays for it
     * inside the measured time. */
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        fprintf(stderr, "authload: cannot make a TLS context\n");
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_read_ahead(ctx, 1);     /* one read() per burst of records: the client
                                           should cost little next to the servers */
    for (int i = 0; i < clients; i++) {
        int share = sessions / clients + (i < sessions % clients ? 1 : 0);

        if ((pids[i] = fork()) < 0) {
            perror("fork");
            for (int j = 0; j < i; j++)
                kill(pids[j], SIGKILL);
            return 2;
        }
        if (pids[i] == 0) {
            char go;

            close(start[1]);
            /* Wait until every client is ready: EOF on the pipe. */
            if (read(start[0], &go, 1) < 0)
                _exit(3);
            for (int s = 0; s < share; s++) {
                if (session(ctx, port, plain, sender, rcpt, message, message_len) < 0) {
                    fprintf(stderr, "client %d, session %d: %s\n", i, s + 1, failure);
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    close(start[0]);
    t0 = now_s();
    close(start[1]);
    for (int i = 0; i < clients; i++) {
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    }
    printf("seconds %.6f\ndone %d\n", now_s() - t0, failed ? 0 : sessions);
    free(message);
    return failed;
}

/*
 * tlspipe - test tool: a TLS client connection to an SMTP server that
 * tells its channel binding data, then relays stdin and stdout over it.
 * Python's ssl module has no keying material exporter, so a test that
 * binds SCRAM-SHA-256-PLUS to a TLS 1.3 connection (tls-exporter, RFC
 * 9266) runs its SASL client in Python over this pipe.
 *
 *   tlspipe [-s] [-V 1.2|1.3] HOST PORT
 *
 * -s: plaintext first, as on port 587: the greeting, EHLO, STARTTLS and
 * its 220 are read and written here (nothing of them is relayed); without
 * it the connection is TLS at once (port 465).  -V pins the TLS version
 * (default: whatever both sides agree on).  The server's certificate is
 * not verified: the tests bind the SASL exchange to the connection instead.
 *
 * Output (stdout), before anything is relayed:
 *   tls PROTOCOL CIPHER
 *   cb tls-unique HEX          (TLS 1.2: the first Finished message, RFC 5929)
 *   cb tls-exporter HEX        (TLS 1.3: 32 bytes of the exporter with label
 *                               "EXPORTER-Channel-Binding" and an empty
 *                               context, RFC 9266)
 *   ready
 * then whatever the server sends, byte for byte; what arrives on stdin goes
 * to the server.  It ends when either side closes (exit 0), or at once with
 * "tlspipe: ..." on stderr and exit 1 on any error before "ready".
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TLSPIPE_LINE_MAX 4096

static void die(const char *what)
{
    unsigned long e = ERR_get_error();

    fprintf(stderr, "tlspipe: %s%s%s\n", what, e ? ": " : "",
            e ? ERR_error_string(e, NULL) : "");
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: tlspipe [-s] [-V 1.2|1.3] HOST PORT\n");
    exit(2);
}

/* All of data to fd (stdout, or the socket before TLS): 0, or -1. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One plaintext line (byte by byte: nothing of the TLS handshake that
 * follows may be read here).  Its length, or -1. */
static ssize_t read_line(int fd, char *line, size_t size)
{
    size_t n = 0;

    while (n + 1 < size) {
        ssize_t r = read(fd, line + n, 1);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (line[n++] == '\n') {
            line[n] = '\0';
            return (ssize_t)n;
        }
    }
    return -1;
}

/* One SMTP reply, all its lines; its code, or -1. */
static int read_reply(int fd)
{
    char line[TLSPIPE_LINE_MAX];

    for (;;) {
        ssize_t n = read_line(fd, line, sizeof(line));

        if (n < 4)
            return -1;
        if (line[3] == ' ' || line[3] == '\r' || line[3] == '\n')
            return atoi(line);
        if (line[3] != '-')
            return -1;
    }
}

static void starttls(int fd)
{
    static const char ehlo[] = "EHLO tlspipe.test\r\n", stls[] = "STARTTLS\r\n";

    if (read_reply(fd) != 220)
        die("no 220 greeting");
    if (write_all(fd, ehlo, sizeof(ehlo) - 1) < 0 || read_reply(fd) != 250)
        die("EHLO refused");
    if (write_all(fd, stls, sizeof(stls) - 1) < 0 || read_reply(fd) != 220)
        die("STARTTLS refused");
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1;

    if (getaddrinfo(host, port, &hints, &res) != 0)
        die("cannot resolve the server");
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        die("cannot connect");
    return fd;
}

static void print_hex_line(const char *prefix, const unsigned char *data, size_t len)
{
    char out[256];
    size_t n = (size_t)snprintf(out, sizeof(out), "%s ", prefix);

    for (size_t i = 0; i < len && n + 3 < sizeof(out); i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%02x", data[i]);
    out[n++] = '\n';
    if (write_all(1, out, n) < 0)
        exit(1);
}

/* Wait until fd is ready for what SSL_get_error asked for. */
static void ssl_wait(SSL *ssl, int fd, int rc)
{
    struct pollfd p = {.fd = fd};

    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        p.events = POLLIN;
        break;
    case SSL_ERROR_WANT_WRITE:
        p.events = POLLOUT;
        break;
    case SSL_ERROR_ZERO_RETURN:
        exit(0);
    default:
        exit(ERR_peek_error() || errno ? 1 : 0);
    }
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            exit(1);
}

int main(int argc, char **argv)
{
    int opt, smtp = 0, version = 0, fd;
    unsigned char cb[64];
    size_t cblen;
    SSL_CTX *ctx;
    SSL *ssl;

    while ((opt = getopt(argc, argv, "sV:")) != -1) {
        if (opt == 's')
            smtp = 1;
        else if (opt == 'V' && strcmp(optarg, "1.2") == 0)
            version = TLS1_2_VERSION;
        else if (opt == 'V' && strcmp(optarg, "1.3") == 0)
            version = TLS1_3_VERSION;
        else
            usage();
    }
    if (argc - optind != 2)
        usage();
    fd = connect_to(argv[optind], argv[optind + 1]);
    if (smtp)
        starttls(fd);

    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        die("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (version && (!SSL_CTX_set_min_proto_version(ctx, version)
                    || !SSL_CTX_set_max_proto_version(ctx, version)))
        die("cannot pin the TLS version");
    if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd))
        die("SSL_new");
    if (SSL_connect(ssl) != 1)
        die("TLS handshake failed");
    {
        char line[256];
        int n = snprintf(line, sizeof(line), "tls %s %s\n", SSL_get_version(ssl),
                         SSL_get_cipher_name(ssl));

        if (write_all(1, line, (size_t)n) < 0)
            exit(1);
    }
    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        if (SSL_export_keying_material(ssl, cb, 32, "EXPORTER-Channel-Binding", 24,
                                       (const unsigned char *)"", 0, 1) != 1)
            die("no keying material exporter");
        print_hex_line("cb tls-exporter", cb, 32);
    } else {
        /* A full handshake (never resumed here): the client's Finished. */
        cblen = SSL_get_finished(ssl, cb, sizeof(cb));
        if (cblen == 0 || cblen > sizeof(cb))
            die("no Finished message");
        print_hex_line("cb tls-unique", cb, cblen);
    }
    if (write_all(1, "ready\n", 6) < 0)
        exit(1);

    /* The relay.  Non-blocking from here: TLS 1.3 session tickets make the
     * socket readable with nothing for SSL_read to return. */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl");
    for (;;) {
        struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        char data[16384];
        int n;

        while ((n = SSL_read(ssl, data, sizeof(data))) > 0)
            if (write_all(1, data, (size_t)n) < 0)
                exit(1);
        switch (SSL_get_error(ssl, n)) {
        case SSL_ERROR_WANT_READ:
            break;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        default:
            return ERR_peek_error() ? 1 : 0;        /* the server closed */
        }
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            exit(1);
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(0, data, sizeof(data));

            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                SSL_shutdown(ssl);
                return 0;
            }
            while ((n = SSL_write(ssl, data, (int)r)) <= 0)
                ssl_wait(ssl, fd, n);
        }
    }
}

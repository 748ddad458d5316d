/*
 * tls - TLS with OpenSSL under a lib/stream (see tls.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "msg.h"
#include "tls.h"
#include "xalloc.h"

struct tls_server {
    SSL_CTX *ctx;
};

struct tls_conn {
    SSL *ssl;
};

/* The last OpenSSL error as text (the queue is cleared). */
static const char *tls_error_text(void)
{
    static char text[256];
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        return "unknown TLS error";
    ERR_error_string_n(e, text, sizeof(text));
    ERR_clear_error();
    return text;
}

tls_server_t *tls_server_new(const char *cert_file, const char *key_file, buf_t *err)
{
    tls_server_t *t;
    SSL_CTX *ctx;

    if (cert_file == NULL || *cert_file == '\0') {
        buf_printf(err, "no certificate file is configured");
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        buf_printf(err, "cannot make a TLS context: %s", tls_error_text());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One process per session: a session cache would never be hit. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_dh_auto(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        buf_printf(err, "cannot load the certificate %s: %s", cert_file, tls_error_text());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file && *key_file ? key_file : cert_file,
                                    SSL_FILETYPE_PEM) != 1) {
        buf_printf(err, "cannot load the private key %s: %s",
                   key_file && *key_file ? key_file : cert_file, tls_error_text());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        buf_printf(err, "the private key %s does not match the certificate %s", key_file,
                   cert_file);
        ERR_clear_error();
        goto fail;
    }
    t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    return t;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_server_free(tls_server_t **tp)
{
    if (*tp == NULL)
        return;
    SSL_CTX_free((*tp)->ctx);
    free(*tp);
    *tp = NULL;
}

/* Map an SSL_get_error() result for the stream hook (see stream.h):
 * EAGAIN waits in the call's own direction, EINPROGRESS in the other. */
static ssize_t tls_io_result(SSL *ssl, int ret, int is_write)
{
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
        errno = is_write ? EINPROGRESS : EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        errno = is_write ? EAGAIN : EINPROGRESS;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            errno = EPROTO;
        ERR_clear_error();
        return -1;
    default:
        msg_debug("TLS: %s", tls_error_text());
        errno = EPROTO;
        return -1;
    }
}

static ssize_t tls_read(void *ctx, void *data, size_t len)
{
    tls_conn_t *c = ctx;
    size_t got = 0;
    int ret;

    errno = 0;
    ret = SSL_read_ex(c->ssl, data, len, &got);
    if (ret == 1)
        return (ssize_t)got;
    return tls_io_result(c->ssl, ret, 0);
}

static ssize_t tls_write(void *ctx, const void *data, size_t len)
{
    tls_conn_t *c = ctx;
    size_t put = 0;
    int ret;

    errno = 0;
    ret = SSL_write_ex(c->ssl, data, len, &put);
    if (ret == 1)
        return (ssize_t)put;
    return tls_io_result(c->ssl, ret, 1);
}

static const struct stream_io tls_stream_io = { tls_read, tls_write };

static long tls_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

tls_conn_t *tls_server_start(tls_server_t *t, stream_t *s, int timeout_ms, const char **why)
{
    long deadline = tls_now_ms() + timeout_ms;
    tls_conn_t *c;
    int fd = stream_fd(s);

    ERR_clear_error();
    c = xcalloc(1, sizeof(*c));
    c->ssl = SSL_new(t->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        *why = tls_error_text();
        goto fail;
    }
    for (;;) {
        int ret, err;
        struct pollfd pfd = { .fd = fd };
        long left;

        errno = 0;
        ret = SSL_accept(c->ssl);
        if (ret == 1)
            break;
        err = SSL_get_error(c->ssl, ret);
        if (err == SSL_ERROR_WANT_READ)
            pfd.events = POLLIN;
        else if (err == SSL_ERROR_WANT_WRITE)
            pfd.events = POLLOUT;
        else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
            *why = errno ? strerror(errno) : "the client closed the connection";
            ERR_clear_error();
            goto fail;
        } else {
            *why = tls_error_text();
            goto fail;
        }
        left = deadline - tls_now_ms();
        if (left <= 0) {
            *why = "timeout";
            goto fail;
        }
        ret = poll(&pfd, 1, (int)left);
        if (ret < 0 && errno != EINTR) {
            *why = strerror(errno);
            goto fail;
        }
        if (ret == 0) {
            *why = "timeout";
            goto fail;
        }
    }
    stream_set_io(s, &tls_stream_io, c);
    return c;
fail:
    SSL_free(c->ssl);
    free(c);
    return NULL;
}

const char *tls_conn_protocol(const tls_conn_t *c)
{
    return SSL_get_version(c->ssl);
}

const char *tls_conn_cipher(const tls_conn_t *c)
{
    return SSL_get_cipher_name(c->ssl);
}

int tls_conn_bits(const tls_conn_t *c)
{
    return SSL_get_cipher_bits(c->ssl, NULL);
}

void tls_conn_free(tls_conn_t **cp, stream_t *s)
{
    tls_conn_t *c = *cp;

    if (c == NULL)
        return;
    if (s)
        stream_set_io(s, NULL, NULL);
    /* One try: on a non-blocking socket this queues close_notify if the
     * socket buffer has room, which is all a polite close needs. */
    (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c);
    *cp = NULL;
}

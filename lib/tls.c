/*
 * tls - TLS with OpenSSL under a lib/stream (see tls.h): the server
 * context, the client context with its in-process session cache, and the
 * handshake both share.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "msg.h"
#include "tls.h"
#include "trustpath.h"
#include "xalloc.h"

struct tls_server {
    SSL_CTX *ctx;
};

/* One cached client session. */
struct tls_cache_entry {
    char        *key;
    SSL_SESSION *sess;
    time_t       stored;
};

struct tls_client {
    SSL_CTX                *ctx;
    char                   *ca_file;        /* the trusted CAs' file, for messages */
    buf_t                  *ca_pem;         /* its contents until parsed, else NULL */
    long                    timeout;        /* cache lifetime, seconds; 0: no cache */
    struct tls_cache_entry  cache[TLS_CLIENT_CACHE_MAX];
    size_t                  ncache;
};

struct tls_conn {
    SSL            *ssl;
    tls_client_t   *client;         /* client connections: the cache */
    char           *cache_key;
    enum tls_trust  trust;
    char           *verify_error;
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

/* Root reads certificates, keys and CA files before its privilege drop:
 * only files that no other account can change or swap, all the way up
 * (DESIGN.md §1, lib/trustpath).  0 (also for a missing file, which the
 * loader reports), or -1 with errno and the reason in err. */
static int tls_path_trusted(const char *path, const char *what, buf_t *err)
{
    uid_t owners[2];
    size_t n, len;
    buf_t *why;
    int saved;

    if (geteuid() != 0)
        return 0;
    n = trustpath_owners(owners);
    why = buf_new(0);
    if (trustpath_check(path, TRUSTPATH_FILE, owners, n, why) == 0) {
        buf_free(&why);
        return 0;
    }
    saved = errno;
    if (saved == ENOENT) {
        /* Nothing to swap: the loader says the file is missing. */
        buf_free(&why);
        return 0;
    }
    len = why->len;
    while (len > 0 && (why->data[len - 1] == '\n' || why->data[len - 1] == '\0'))
        len--;
    buf_printf(err, "%s %s is not safe to read as root: %.*s", what, path, (int)len, why->data);
    buf_free(&why);
    errno = saved;
    return -1;
}

tls_server_t *tls_server_new(const char *cert_file, const char *key_file, buf_t *err)
{
    tls_server_t *t;
    SSL_CTX *ctx;

    if (cert_file == NULL || *cert_file == '\0') {
        buf_printf(err, "no certificate file is configured");
        return NULL;
    }
    if (tls_path_trusted(cert_file, "the certificate", err) < 0
        || (key_file && *key_file && tls_path_trusted(key_file, "the private key", err) < 0))
        return NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        buf_printf(err, "cannot make a TLS context: %s", tls_error_text());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read what the socket has, not a record header and then its body: one
     * read() per burst of records instead of two per record.  What is read
     * ahead is seen by tls_holds_input(), so nobody waits on the socket for
     * input the library already has. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* One process per session: a session cache would never be hit.  TLS
     * 1.3 tickets are sealed with a key of this process and rarely come back
     * to it, but one is still sent, as Postfix does: it is also what answers
     * the client's Finished at once.  Without any, a client that leaves
     * Nagle on (Python's smtplib) holds its next command until our delayed
     * ACK, 40 ms after every STARTTLS. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
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

/* Records read ahead (SSL_CTX_set_read_ahead) or not yet handed out. */
static int tls_holds_input(void *ctx)
{
    tls_conn_t *c = ctx;

    return SSL_has_pending(c->ssl);
}

static const struct stream_io tls_stream_io = { tls_read, tls_write, tls_holds_input };

static long tls_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Run the handshake on c->ssl (set up for fd) within timeout_ms: 0, or
 * -1 with *why. */
static int tls_handshake(tls_conn_t *c, int fd, int timeout_ms, int client, const char **why)
{
    long deadline = tls_now_ms() + timeout_ms;

    for (;;) {
        int ret, err;
        struct pollfd pfd = { .fd = fd };
        long left;

        errno = 0;
        ret = client ? SSL_connect(c->ssl) : SSL_accept(c->ssl);
        if (ret == 1)
            return 0;
        err = SSL_get_error(c->ssl, ret);
        if (err == SSL_ERROR_WANT_READ)
            pfd.events = POLLIN;
        else if (err == SSL_ERROR_WANT_WRITE)
            pfd.events = POLLOUT;
        else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
            if (ERR_peek_last_error() != 0)
                *why = tls_error_text();
            else
                *why = errno ? strerror(errno)
                             : client ? "the server closed the connection"
                                      : "the client closed the connection";
            ERR_clear_error();
            return -1;
        } else {
            *why = tls_error_text();
            return -1;
        }
        left = deadline - tls_now_ms();
        if (left <= 0) {
            *why = "timeout";
            return -1;
        }
        ret = poll(&pfd, 1, (int)left);
        if (ret < 0 && errno != EINTR) {
            *why = strerror(errno);
            return -1;
        }
        if (ret == 0) {
            *why = "timeout";
            return -1;
        }
    }
}

static void tls_conn_release(tls_conn_t *c)
{
    SSL_free(c->ssl);
    free(c->cache_key);
    free(c->verify_error);
    free(c);
}

tls_conn_t *tls_server_start(tls_server_t *t, stream_t *s, int timeout_ms, const char **why)
{
    tls_conn_t *c;
    int fd = stream_fd(s);

    ERR_clear_error();
    c = xcalloc(1, sizeof(*c));
    c->ssl = SSL_new(t->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        *why = tls_error_text();
        goto fail;
    }
    if (tls_handshake(c, fd, timeout_ms, 0, why) < 0)
        goto fail;
    stream_set_io(s, &tls_stream_io, c);
    return c;
fail:
    tls_conn_release(c);
    return NULL;
}

/* ------------------------------------------------------------- client */

/* The cache entry for key, or NULL; expired entries are dropped. */
static struct tls_cache_entry *tls_cache_find(tls_client_t *t, const char *key)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < t->ncache; i++) {
        struct tls_cache_entry *e = &t->cache[i];

        if (strcmp(e->key, key) != 0)
            continue;
        if (now - e->stored >= t->timeout || now < e->stored
            || !SSL_SESSION_is_resumable(e->sess)) {
            SSL_SESSION_free(e->sess);
            free(e->key);
            t->cache[i] = t->cache[--t->ncache];
            return NULL;
        }
        return e;
    }
    return NULL;
}

static void tls_cache_remove(tls_client_t *t, struct tls_cache_entry *e)
{
    SSL_SESSION_free(e->sess);
    free(e->key);
    *e = t->cache[--t->ncache];
}

/* OpenSSL's new-session callback (a full handshake, or a TLS 1.3 ticket
 * that arrived later): keep it under the connection's key.  1: we took
 * the reference. */
static int tls_cache_new_session(SSL *ssl, SSL_SESSION *sess)
{
    tls_conn_t *c = SSL_get_app_data(ssl);
    tls_client_t *t;
    struct tls_cache_entry *e;

    if (c == NULL || c->client == NULL || c->cache_key == NULL || c->client->timeout <= 0)
        return 0;
    t = c->client;
    if ((e = tls_cache_find(t, c->cache_key)) != NULL) {
        SSL_SESSION_free(e->sess);
    } else {
        if (t->ncache == TLS_CLIENT_CACHE_MAX) {
            size_t oldest = 0;

            for (size_t i = 1; i < t->ncache; i++)
                if (t->cache[i].stored < t->cache[oldest].stored)
                    oldest = i;
            tls_cache_remove(t, &t->cache[oldest]);
        }
        e = &t->cache[t->ncache++];
        e->key = xstrdup(c->cache_key);
    }
    e->sess = sess;
    e->stored = time(NULL);
    return 1;
}

/* The whole of a CA file, read as root before the chroot: the contents,
 * or NULL with errno (EINVAL: not a regular file, EFBIG: over
 * TLS_CA_FILE_MAX). */
#define TLS_CA_FILE_MAX (64 * 1024 * 1024)

static buf_t *tls_read_ca_file(const char *path)
{
    struct stat st;
    buf_t *b = NULL;
    int fd, err;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return NULL;
    if (fstat(fd, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            errno = EINVAL;
        } else {
            b = buf_new(TLS_CA_FILE_MAX);
            if (buf_read_all(b, fd) < 0)
                buf_free(&b);
        }
    }
    err = errno;
    close(fd);
    errno = err;
    return b;
}

int tls_client_load_cas(tls_client_t *t, buf_t *err)
{
    STACK_OF(X509_INFO) *infos;
    X509_STORE *store = SSL_CTX_get_cert_store(t->ctx);
    BIO *bio;
    int ncerts = 0, rc = -1;

    if (t->ca_pem == NULL)
        return 0;
    ERR_clear_error();
    if ((bio = BIO_new_mem_buf(t->ca_pem->data, (int)t->ca_pem->len)) == NULL) {
        buf_printf(err, "cannot load the CA file %s: %s", t->ca_file, tls_error_text());
        goto out;
    }
    infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (infos == NULL) {
        buf_printf(err, "cannot load the CA file %s: %s", t->ca_file, tls_error_text());
        goto out;
    }
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);

        if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1)
            ncerts++;
        if (info->crl)
            X509_STORE_add_crl(store, info->crl);
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (ncerts == 0) {
        buf_printf(err, "cannot load the CA file %s: no certificate in it", t->ca_file);
        goto out;
    }
    rc = 0;
out:
    buf_free(&t->ca_pem);
    return rc;
}

tls_client_t *tls_client_new(const char *cafile, long cache_timeout, buf_t *err)
{
    tls_client_t *t;
    SSL_CTX *ctx;
    const char *path = cafile;
    buf_t *pem;

    /* Read the CAs now (the chroot hides the file later); they are parsed
     * when a handshake first needs them (tls_client_load_cas).  A missing
     * or unreadable system file only means that nothing verifies. */
    if (path == NULL || *path == '\0') {
        buf_t *why = buf_new(0);

        path = getenv(X509_get_default_cert_file_env());
        if (path == NULL || *path == '\0')
            path = X509_get_default_cert_file();
        pem = NULL;
        if (tls_path_trusted(path, "the system CA file", why) < 0) {
            if (errno != ENOENT && errno != EACCES) {
                buf_append(err, why->data, why->len);
                buf_free(&why);
                return NULL;
            }
        } else if ((pem = tls_read_ca_file(path)) == NULL && errno != ENOENT
                   && errno != EACCES) {
            buf_printf(err, "cannot load the system CA file %s: %s", path, strerror(errno));
            buf_free(&why);
            return NULL;
        }
        buf_free(&why);
    } else if (tls_path_trusted(path, "the CA file", err) < 0) {
        return NULL;
    } else if ((pem = tls_read_ca_file(path)) == NULL) {
        buf_printf(err, "cannot load the CA file %s: %s", path, strerror(errno));
        return NULL;
    }
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        buf_printf(err, "cannot make a TLS context: %s", tls_error_text());
        buf_free(&pem);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);         /* as the server's, see there */
    t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->ca_file = xstrdup(path);
    t->ca_pem = pem;
    t->timeout = cache_timeout > 0 ? cache_timeout : 0;
    if (t->timeout > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(ctx, tls_cache_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return t;
}

void tls_client_free(tls_client_t **tp)
{
    tls_client_t *t = *tp;

    if (t == NULL)
        return;
    while (t->ncache > 0)
        tls_cache_remove(t, &t->cache[0]);
    SSL_CTX_free(t->ctx);
    free(t->ca_file);
    buf_free(&t->ca_pem);
    free(t);
    *tp = NULL;
}

tls_conn_t *tls_client_start(tls_client_t *t, stream_t *s, const struct tls_client_params *p,
                             int timeout_ms, const char **why)
{
    struct tls_cache_entry *e;
    tls_conn_t *c;
    int fd = stream_fd(s);
    long res;

    if (t->ca_pem != NULL) {
        buf_t *err = buf_new(0);

        if (tls_client_load_cas(t, err) < 0)
            msg_warn("%s: no server certificate will verify", buf_cstr(err));
        buf_free(&err);
    }
    ERR_clear_error();
    c = xcalloc(1, sizeof(*c));
    c->client = t;
    c->ssl = SSL_new(t->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        *why = tls_error_text();
        goto fail;
    }
    SSL_set_app_data(c->ssl, c);
    /* Every outcome of the checks is recorded; verify decides below. */
    SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    if (p->servername && *p->servername
        && SSL_set_tlsext_host_name(c->ssl, p->servername) != 1) {
        *why = tls_error_text();
        goto fail;
    }
    if (p->nnames > 0) {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        for (size_t i = 0; i < p->nnames; i++) {
            if ((i == 0 ? SSL_set1_host(c->ssl, p->names[i])
                        : SSL_add1_host(c->ssl, p->names[i])) != 1) {
                *why = "bad reference name for the server certificate";
                ERR_clear_error();
                goto fail;
            }
        }
    }
    if (p->cache_key && t->timeout > 0) {
        c->cache_key = xstrdup(p->cache_key);
        if ((e = tls_cache_find(t, p->cache_key)) != NULL) {
            SSL_set_session(c->ssl, e->sess);
            /* One use per session (TLS 1.3 tickets); the server sends new ones. */
            tls_cache_remove(t, e);
        }
    }
    if (tls_handshake(c, fd, timeout_ms, 1, why) < 0)
        goto fail;
    if (SSL_get0_peer_certificate(c->ssl) == NULL) {
        c->trust = TLS_ANONYMOUS;
        c->verify_error = xstrdup("no server certificate");
    } else if ((res = SSL_get_verify_result(c->ssl)) == X509_V_OK) {
        c->trust = p->nnames > 0 ? TLS_VERIFIED : TLS_TRUSTED;
    } else {
        c->trust = TLS_UNTRUSTED;
        c->verify_error = xstrdup(X509_verify_cert_error_string(res));
    }
    if (p->verify && c->trust != TLS_VERIFIED) {
        static char text[300];

        snprintf(text, sizeof(text), "server certificate not verified: %s",
                 c->verify_error ? c->verify_error : "no reference name");
        *why = text;
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
        goto fail;
    }
    stream_set_io(s, &tls_stream_io, c);
    return c;
fail:
    if (c->ssl)
        SSL_set_app_data(c->ssl, NULL);
    tls_conn_release(c);
    return NULL;
}

enum tls_trust tls_conn_trust(const tls_conn_t *c)
{
    return c->trust;
}

const char *tls_trust_str(enum tls_trust t)
{
    switch (t) {
    case TLS_VERIFIED:
        return "Verified";
    case TLS_TRUSTED:
        return "Trusted";
    case TLS_UNTRUSTED:
        return "Untrusted";
    default:
        return "Anonymous";
    }
}

const char *tls_conn_verify_error(const tls_conn_t *c)
{
    return c->verify_error;
}

int tls_conn_resumed(const tls_conn_t *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

int tls_conn_channel_binding(const tls_conn_t *c, buf_t *out, const char **type)
{
    unsigned char data[EVP_MAX_MD_SIZE];
    size_t n;
    int resumed = SSL_session_reused(c->ssl) == 1, own, rc;

    if (SSL_version(c->ssl) >= TLS1_3_VERSION) {
        n = 32;
        if (SSL_export_keying_material(c->ssl, data, n, "EXPORTER-Channel-Binding", 24,
                                       (const unsigned char *)"", 0, 1) != 1) {
            ERR_clear_error();
            return -1;
        }
        *type = "tls-exporter";
    } else {
        if (resumed && SSL_get_extms_support(c->ssl) != 1)
            return -1;
        /* The first Finished: the client's, unless the handshake resumed. */
        own = SSL_is_server(c->ssl) ? resumed : !resumed;
        n = own ? SSL_get_finished(c->ssl, data, sizeof(data))
                : SSL_get_peer_finished(c->ssl, data, sizeof(data));
        if (n == 0 || n > sizeof(data))
            return -1;
        *type = "tls-unique";
    }
    rc = buf_append(out, data, n);
    explicit_bzero(data, sizeof(data));
    return rc < 0 ? -1 : 0;
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

int tls_conn_alg_bits(const tls_conn_t *c)
{
    int alg = 0;

    (void)SSL_get_cipher_bits(c->ssl, &alg);
    return alg;
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
    SSL_set_app_data(c->ssl, NULL);
    tls_conn_release(c);
    *cp = NULL;
}

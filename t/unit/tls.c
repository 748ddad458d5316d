/*
 * t/unit/tls.c - unit tests for lib/tls.c's channel binding data
 * (tls_conn_channel_binding), what SCRAM-SHA-256-PLUS binds to.
 *
 * Real handshakes on socketpairs, the server in this process (lib/tls's
 * server with a certificate made here), the client in a child that sends
 * back, over the TLS connection, the channel binding data as it sees it:
 *   - TLS 1.3 (a raw OpenSSL client, and lib/tls's own client, which also
 *     exercises the function at the client's end): tls-exporter, 32
 *     bytes, the same at both ends, different per connection;
 *   - TLS 1.2: tls-unique is the client's Finished in a full handshake,
 *     the same at both ends; after a resumption with extended master
 *     secret the server's Finished, the same at both ends; after a
 *     resumption without it, none (-1, nothing appended).
 * The client computes its side with OpenSSL directly (RFC 9266, RFC 5929),
 * not through the function under test, except lib/tls's client.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "msg.h"
#include "stream.h"
#include "tls.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char tmpdir[64];
static char cert_path[128], key_path[128];

static void make_cert(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    FILE *f;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"tls.test", -1,
                               -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tls-test.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        msg_fatal("mkdtemp: %m");
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    f = fopen(cert_path, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* The child's side: what it sends back over TLS is one length byte (0:
 * none) and its channel binding data. */
static void child_send(SSL *ssl, stream_t *st, const unsigned char *d, size_t n)
{
    unsigned char msg[1 + 64];

    msg[0] = (unsigned char)n;
    memcpy(msg + 1, d, n);
    if (ssl)
        SSL_write(ssl, msg, (int)n + 1);
    else {
        stream_write(st, msg, n + 1);
        stream_flush(st);
    }
}

enum child_kind { RAW13, RAW12, RAW12_NOEMS, LIBTLS };

/* A raw OpenSSL client: max version, EMS or not; two connections on fds
 * a and b, the second resuming the first's session (TLS 1.2 only). */
static void child_raw(enum child_kind kind, int a, int b)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_SESSION *sess = NULL;
    int fds[2] = { a, b };

    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (kind != RAW13)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (kind == RAW12_NOEMS)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    for (int i = 0; i < 2 && fds[i] >= 0; i++) {
        SSL *ssl = SSL_new(ctx);
        unsigned char d[64];
        size_t n = 0;
        char ack;

        SSL_set_fd(ssl, fds[i]);
        if (sess)
            SSL_set_session(ssl, sess);
        if (SSL_connect(ssl) != 1)
            _exit(3);
        if (SSL_version(ssl) >= TLS1_3_VERSION) {
            n = 32;
            SSL_export_keying_material(ssl, d, n, "EXPORTER-Channel-Binding", 24,
                                       (const unsigned char *)"", 0, 1);
        } else if (!SSL_session_reused(ssl))
            n = SSL_get_finished(ssl, d, sizeof(d));            /* ours came first */
        else if (SSL_get_extms_support(ssl) == 1)
            n = SSL_get_peer_finished(ssl, d, sizeof(d));       /* the server's did */
        child_send(ssl, NULL, d, n);
        SSL_read(ssl, &ack, 1);
        if (i == 0 && kind != RAW13)
            sess = SSL_get1_session(ssl);
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fds[i]);
    }
    SSL_SESSION_free(sess);
    SSL_CTX_free(ctx);
    _exit(0);
}

/* lib/tls's client, and its own view of the channel binding. */
static void child_libtls(int fd)
{
    buf_t *err = buf_new(0), *d = buf_new(0);
    tls_client_t *t = tls_client_new(cert_path, 0, err);
    stream_t *st = stream_open(fd);
    struct tls_client_params p = { 0 };
    const char *why = NULL, *type = NULL;
    tls_conn_t *c;
    char ack;

    if (t == NULL || (c = tls_client_start(t, st, &p, 5000, &why)) == NULL)
        _exit(3);
    if (tls_conn_channel_binding(c, d, &type) < 0 || strcmp(type, "tls-exporter") != 0)
        buf_reset(d);
    child_send(NULL, st, (unsigned char *)d->data, d->len);
    stream_read(st, &ack, 1);
    _exit(0);
}

struct cb_result {
    int        handshakes;      /* the server's that succeeded */
    int        server_rc[2];    /* tls_conn_channel_binding's */
    const char *type[2];
    buf_t      *server[2];      /* the server's data */
    buf_t      *client[2];      /* what the client sent back */
    int        resumed[2];
    int        child_status;
};

static void cb_run(tls_server_t *srv, enum child_kind kind, struct cb_result *r)
{
    int sp[2][2];
    int nconn = kind == RAW13 || kind == LIBTLS ? 1 : 2;
    pid_t pid;

    memset(r, 0, sizeof(*r));
    for (int i = 0; i < nconn; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]) < 0)
            msg_fatal("socketpair: %m");
    fflush(NULL);
    if ((pid = fork()) == 0) {
        for (int i = 0; i < nconn; i++)
            close(sp[i][0]);
        if (kind == LIBTLS)
            child_libtls(sp[0][1]);
        child_raw(kind, sp[0][1], nconn > 1 ? sp[1][1] : -1);
    }
    for (int i = 0; i < nconn; i++)
        close(sp[i][1]);
    for (int i = 0; i < nconn; i++) {
        stream_t *st = stream_open(sp[i][0]);
        const char *why = NULL;
        tls_conn_t *c = tls_server_start(srv, st, 5000, &why);
        unsigned char len;

        r->server[i] = buf_new(0);
        r->client[i] = buf_new(0);
        if (c == NULL) {
            diag("server handshake %d: %s", i, why);
            stream_close(&st);
            continue;
        }
        r->handshakes++;
        r->resumed[i] = tls_conn_resumed(c);
        r->server_rc[i] = tls_conn_channel_binding(c, r->server[i], &r->type[i]);
        if (stream_read(st, &len, 1) == 1 && len > 0)
            stream_read_exact(st, r->client[i], len);
        stream_write(st, "k", 1);
        stream_flush(st);
        tls_conn_free(&c, st);
        stream_close(&st);
    }
    r->child_status = reap(pid);
}

static void cb_free(struct cb_result *r)
{
    for (int i = 0; i < 2; i++) {
        buf_free(&r->server[i]);
        buf_free(&r->client[i]);
    }
}

static int same(const buf_t *a, const buf_t *b)
{
    return a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void test_tls_channel_binding(void)
{
    buf_t *err = buf_new(0);
    tls_server_t *srv;
    struct cb_result r, r2;

    make_cert();
    srv = tls_server_new(cert_path, key_path, err);
    if (!ok(srv != NULL, "TLS server context")) {
        diag("%s", buf_cstr(err));
        return;
    }

    cb_run(srv, RAW13, &r);
    is_int(r.handshakes, 1, "TLS 1.3 handshake");
    is_int(r.server_rc[0], 0, "  the server has channel binding data");
    is_str(r.type[0], "tls-exporter", "  tls-exporter");
    is_int(r.server[0]->len, 32, "  32 bytes");
    ok(same(r.server[0], r.client[0]), "  the same as the client's");
    cb_run(srv, RAW13, &r2);
    ok(!same(r.server[0], r2.server[0]), "another connection, other data");
    cb_free(&r2);
    cb_free(&r);

    cb_run(srv, LIBTLS, &r);
    is_int(r.handshakes, 1, "lib/tls client and server");
    is_int(r.child_status, 0, "  the client ran to the end");
    ok(r.client[0]->len == 32 && same(r.server[0], r.client[0]),
       "  both ends agree on 32 bytes of tls-exporter");
    cb_free(&r);

    cb_run(srv, RAW12, &r);
    is_int(r.handshakes, 2, "TLS 1.2: two handshakes");
    is_int(r.server_rc[0], 0, "  the first has channel binding data");
    is_str(r.type[0], "tls-unique", "  tls-unique");
    is_int(r.server[0]->len, 12, "  a 12-byte Finished");
    ok(same(r.server[0], r.client[0]), "  the client's Finished, as the client sees it");
    is_int(r.resumed[1], 1, "  the second resumed the first's session");
    is_int(r.server_rc[1], 0, "  with extended master secret: channel binding data");
    ok(same(r.server[1], r.client[1]) && r.server[1]->len == 12,
       "  the server's Finished, the same at both ends");
    ok(!same(r.server[0], r.server[1]), "  not the first connection's");
    cb_free(&r);

    cb_run(srv, RAW12_NOEMS, &r);
    is_int(r.handshakes, 2, "TLS 1.2 without extended master secret: two handshakes");
    is_int(r.server_rc[0], 0, "  a full handshake still has tls-unique");
    ok(same(r.server[0], r.client[0]), "  the same at both ends");
    is_int(r.resumed[1], 1, "  the second resumed");
    is_int(r.server_rc[1], -1, "  and has no channel binding data");
    is_int(r.server[1]->len, 0, "  nothing appended");
    cb_free(&r);

    tls_server_free(&srv);
    unlink(cert_path);
    unlink(key_path);
    rmdir(tmpdir);
    buf_free(&err);
}

int main(void)
{
    alarm(60);
    signal(SIGPIPE, SIG_IGN);
    msg_init("tls-test", MSG_STDERR);
    test_tls_channel_binding();
    return done_testing();
}

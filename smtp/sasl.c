/*
 * sasl.c - SASL client authentication (RFC 4954) to the servers that
 * want it, most often a provider's smarthost named in relayhost.
 *
 * Credentials: smtp_sasl_password_maps, Berkeley DB tables ("hash:FILE",
 * built by "mailctl map FILE") of "key user:password" lines, key being the
 * next hop exactly as qmgr hands it (relayhost lower-cased, e.g.
 * "[smtp.provider.example]:587") or the server's host name.  smtp reads
 * every table whole into memory at start, as root and before the chroot
 * (the files are root's and mode 0600; a table is checked with trustpath
 * first, like all configuration root reads): the chrooted network_user
 * process could not open them later, and routing the lookups through
 * another process would put the passwords on a socket instead.  A table
 * changed later is seen by smtp processes started after the change (they
 * live for max_use connections or max_idle seconds; "mailctl reload"
 * restarts them).
 *
 * Mechanisms: PLAIN, else LOGIN, whichever the server offers, run by
 * lib/sasl's client (the messages) with lib/base64 (the encoding).  Both
 * send the password as it is, so they are used only where the security
 * options allow plaintext mechanisms: smtp_sasl_security_options (default
 * "noplaintext, noanonymous") on a session without TLS,
 * smtp_sasl_tls_security_options (default "noanonymous") on a TLS session.
 * A server that offers no AUTH gets the mail without authentication, as
 * with Postfix; one that offers AUTH but no usable mechanism, or refuses
 * the credentials, fails the session (4.7.x: deferred, and the next server
 * is tried), since a password problem is the sender's to fix.
 *
 * Failure modes: a table that is untrusted or cannot be read is fatal at
 * start (mail would otherwise go out unauthenticated, or not at all, with
 * no clue why).  Credentials never reach the log, also not with -v.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "conf.h"
#include "map.h"
#include "msg.h"
#include "sasl.h"
#include "smtp.h"
#include "trustpath.h"
#include "xalloc.h"

#define SASL_ENTRIES_MAX 100000

struct sasl_entry {
    char *key;
    char *user;
    char *pass;
};

static struct sasl_entry *sasl_table;
static size_t sasl_n;

static int sasl_add(void *ctx, const char *key, const char *value)
{
    const char *colon = strchr(value, ':');
    const char *spec = ctx;
    struct sasl_entry *e;

    if (colon == NULL) {
        msg_warn("smtp_sasl_password_maps: %s: the entry for %s is not user:password; ignored",
                 spec, key);
        return 0;
    }
    if (sasl_n >= SASL_ENTRIES_MAX)
        msg_fatal("smtp_sasl_password_maps: more than %d entries", SASL_ENTRIES_MAX);
    /* An earlier table wins, as with any list of maps. */
    for (size_t i = 0; i < sasl_n; i++)
        if (strcmp(sasl_table[i].key, key) == 0)
            return 0;
    sasl_table = xreallocarray(sasl_table, sasl_n + 1, sizeof(*sasl_table));
    e = &sasl_table[sasl_n++];
    e->key = xstrdup(key);
    e->user = xstrndup(value, (size_t)(colon - value));
    e->pass = xstrdup(colon + 1);
    return 0;
}

void sasl_init(void)
{
    char **maps;

    if (!smtp_param.sasl)
        return;
    maps = conf_split(conf_str("smtp_sasl_password_maps"));
    if (maps[0] == NULL)
        msg_warn("smtp_sasl_auth_enable is set, but smtp_sasl_password_maps names no table");
    for (char **p = maps; *p; p++) {
        const char *colon = strchr(*p, ':');
        buf_t *errs = buf_new(0);
        uid_t owners[2];
        size_t nowners = trustpath_owners(owners);
        char *dbpath, *err = NULL;
        map_t *m;

        if (colon == NULL)
            msg_fatal("smtp_sasl_password_maps: '%s' is not type:file", *p);
        dbpath = xasprintf("%s.db", colon + 1);
        if (trustpath_check(dbpath, TRUSTPATH_FILE, owners, nowners, errs) < 0)
            msg_fatal("smtp_sasl_password_maps: %s", buf_cstr(errs));
        buf_free(&errs);
        free(dbpath);
        if ((m = map_open(*p, &err)) == NULL)
            msg_fatal("smtp_sasl_password_maps: %s", err);
        if (map_foreach(m, sasl_add, *p) < 0)
            msg_fatal("smtp_sasl_password_maps: cannot read %s", *p);
        map_close(&m);
    }
    conf_split_free(&maps);
}

static const struct sasl_entry *sasl_find(const char *key)
{
    char *k = xstrdup(key);

    for (char *c = k; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    for (size_t i = 0; i < sasl_n; i++)
        if (strcmp(sasl_table[i].key, k) == 0) {
            free(k);
            return &sasl_table[i];
        }
    free(k);
    return NULL;
}

/* Does the option list allow plaintext mechanisms? */
static bool sasl_plaintext_ok(const char *param)
{
    char **opts = conf_split(conf_str(param));
    bool ok = true;

    for (char **p = opts; *p; p++)
        if (strcasecmp(*p, "noplaintext") == 0)
            ok = false;
    conf_split_free(&opts);
    return ok;
}

/* Send a line the log must not show; then read the reply. */
static int sasl_step(session_t *s, const char *line, const char *shown, const char **why)
{
    int rc;

    msg_debug("> %s: %s", s->namaddr, shown);
    stream_set_timeout(s->st, smtp_param.helo_ms);
    if (stream_write(s->st, line, strlen(line)) < 0 || stream_write(s->st, "\r\n", 2) < 0) {
        s->usable = false;
        return SESS_LOST;
    }
    rc = session_read(s, smtp_param.helo_ms, why);
    return rc;
}

/* Wipe and free a buffer that held credentials. */
static void sasl_wipe(buf_t **bp)
{
    if (*bp)
        explicit_bzero((*bp)->data, (*bp)->len);
    buf_free(bp);
}

/* Run mech's exchange (lib/sasl's client) up to the server's last reply,
 * which is left in s->reply: AUTH with the initial response if the
 * mechanism has one, then an answer to each 334 challenge while the
 * mechanism has one.  A SESS_* code. */
static int sasl_exchange(session_t *s, const char *mech, const struct sasl_entry *e,
                         const char **why)
{
    sasl_client_t *c = sasl_client_new(mech, e->user, e->pass, NULL);
    buf_t *resp = buf_new(0), *line = buf_new(0), *chal = buf_new(0);
    bool login = strcmp(mech, "LOGIN") == 0;
    int rc, n = 0;

    if (c == NULL)
        msg_panic("sasl_exchange: no client for %s", mech);
    buf_printf(line, "AUTH %s", mech);
    if (sasl_client_start(c, resp)) {
        buf_putc(line, ' ');
        if (resp->len == 0)
            buf_putc(line, '=');
        else
            base64_encode(line, resp->data, resp->len);
    }
    rc = sasl_step(s, buf_cstr(line), login ? "AUTH LOGIN" : "AUTH PLAIN (credentials)", why);
    while (rc == SESS_OK && s->reply.code == 334) {
        const struct smtpreply *r = s->parsed;
        const char *text = r && r->nlines == 1 ? r->lines[0] : "";

        /* A prompt that is not base64 is read as empty: LOGIN's client
         * does not read its prompts (as before), and PLAIN's refuses any
         * challenge after its credentials. */
        buf_reset(chal);
        if (base64_decode(chal, text, strlen(text)) < 0)
            buf_reset(chal);
        if (sasl_client_step(c, chal->data, chal->len, resp) != SASL_CONTINUE) {
            msg_debug("%s: %s", s->namaddr, sasl_client_reason(c));
            break;              /* the caller cancels the exchange */
        }
        explicit_bzero(line->data, line->len);
        buf_reset(line);
        base64_encode(line, resp->data, resp->len);
        rc = sasl_step(s, buf_cstr(line), !login ? "(credentials)"
                                          : n++ == 0 ? "(user name)" : "(password)", why);
    }
    sasl_wipe(&line);
    sasl_wipe(&resp);
    buf_free(&chal);
    sasl_client_free(&c);
    return rc;
}

int sasl_authenticate(session_t *s, const char *nexthop, struct smtp_status *st)
{
    const struct sasl_entry *e = sasl_find(nexthop);
    const char *why = NULL, *mech;
    bool plain_ok;
    int rc;

    if (e == NULL)
        e = sasl_find(s->host);
    if (e == NULL)
        return 0;
    if (s->caps.auth == NULL)
        return 0;           /* no AUTH offered: as Postfix, send without */
    plain_ok = sasl_plaintext_ok(s->tls ? "smtp_sasl_tls_security_options"
                                        : "smtp_sasl_security_options");
    mech = !plain_ok ? NULL
         : smtpext_has_auth(&s->caps, "PLAIN") ? "PLAIN"
         : smtpext_has_auth(&s->caps, "LOGIN") ? "LOGIN" : NULL;
    if (mech == NULL) {
        smtp_status_set(st, 4, "4.7.0", NULL, "SASL authentication failed: no mechanism "
                        "available with host %s (offered: %s; plaintext mechanisms %s)",
                        s->namaddr, *s->caps.auth ? s->caps.auth : "none",
                        plain_ok ? "allowed" : s->tls ? "not allowed" : "need TLS");
        return -1;
    }
    rc = sasl_exchange(s, mech, e, &why);
    if (rc != SESS_OK) {
        session_error(s, rc, why, "authenticating", "AUTH", st);
        return -1;
    }
    if (s->reply.code != 235) {
        char dsn[12];

        /* As Postfix's smtp_sasl_auth_soft_bounce: the sender fixes the
         * password, the mail waits. */
        if (s->reply.dsn[0])
            snprintf(dsn, sizeof(dsn), "4%s", s->reply.dsn + 1);
        else
            snprintf(dsn, sizeof(dsn), "4.7.0");
        smtp_status_set(st, 4, dsn, s->reply.text, "SASL authentication failed; server %s "
                        "said: %s", s->namaddr, s->reply.text);
        if (s->reply.code == 334) {
            /* A challenge we have no answer for: cancel the exchange. */
            if (sasl_step(s, "*", "*", &why) != SESS_OK)
                s->usable = false;
        }
        return -1;
    }
    msg_debug("%s: authenticated as %s with %s", s->namaddr, e->user, mech);
    return 0;
}

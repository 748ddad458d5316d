/*
 * lookupd - answers the questions the chrooted network processes cannot:
 * is this a valid local recipient?  (Later also SPF, DKIM and DNSBL, which
 * need the system resolver.)
 *
 * Runs as mail_owner without a chroot (it reads the passwd database and
 * the maps under config_directory), SERVER_MULTI: every client (each smtpd
 * process keeps one connection) is served from one event loop, one request
 * at a time per connection (lib/lookup_proto.h).  Peers: network_user,
 * mail_owner, root (SO_PEERCRED at the hello).
 *
 * Local recipients.  The address's domain must be local (mydestination);
 * "postmaster" is always valid (RFC 5321 4.5.1).  Otherwise the lower-cased
 * local part is looked up in each table of local_recipient_maps, in order:
 * "unix:passwd.byname" is the passwd database (getpwnam), anything else a
 * lib/map table (hash:/path, btree:/path), e.g. the alias maps.  Found in
 * one: LOOKUP_OK.  In none: LOOKUP_NOTFOUND.  An empty local_recipient_maps
 * accepts every local part (Postfix's rule).  A table that cannot be read
 * gives LOOKUP_TEMPFAIL, so the client is told to try again (451), never
 * refused by mistake.
 *
 * Failure modes: a malformed request or a hello from the wrong uid is a
 * peer error (logged, connection dropped).  Map errors are TEMPFAIL.
 *
 * Parameters: local_recipient_maps, recipient_delimiter, mydestination, network_user,
 * mail_owner (and the server skeleton's).
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "map.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "xalloc.h"

#define LOOKUPD_IO_MS     5000
#define LOOKUPD_MAX_MSG   (64 * 1024)
#define LOOKUPD_PASSWD    "unix:passwd.byname"

static uid_t lookupd_peer_uids[2];

/* One local part against one table: 1 found, 0 not, -1 error (*text set). */
static int lookupd_table(const char *spec, const char *local, char **text)
{
    char *err = NULL, *value = NULL;
    map_t *m;
    int rc;

    if (strcmp(spec, LOOKUPD_PASSWD) == 0) {
        struct passwd *pw;

        errno = 0;
        if ((pw = getpwnam(local)) != NULL)
            return 1;
        if (errno == 0 || errno == ENOENT || errno == ESRCH)
            return 0;
        *text = xasprintf("%s: %s", spec, strerror(errno));
        return -1;
    }
    if ((m = map_cached(spec, &err)) == NULL) {
        *text = xasprintf("%s", err);
        free(err);
        return -1;
    }
    rc = map_lookup(m, local, &value);
    free(value);
    if (rc < 0)
        *text = xasprintf("%s: lookup failed: %s", spec, strerror(errno));
    return rc;
}

/* Look key up in local_recipient_maps; *text (fresh, may be NULL) says why. */
static int lookupd_key(const char *key, char **text)
{
    char **tables = conf_split(conf_str("local_recipient_maps"));
    int result = LOOKUP_NOTFOUND, rc;

    if (tables[0] == NULL) {
        result = LOOKUP_OK;
        *text = xstrdup("local_recipient_maps is empty");
    }
    for (size_t i = 0; tables[i] && result == LOOKUP_NOTFOUND; i++) {
        rc = lookupd_table(tables[i], key, text);
        if (rc > 0) {
            result = LOOKUP_OK;
            free(*text);
            *text = xasprintf("%s found in %s", key, tables[i]);
        } else if (rc < 0) {
            result = LOOKUP_TEMPFAIL;
        }
    }
    conf_split_free(&tables);
    return result;
}

/* Decide about one address; *text (fresh) says why.  "user+ext" is valid
 * when "user+ext" or "user" is (recipient_delimiter). */
static int lookupd_rcpt(const char *address, char **text)
{
    char *local, *domain, *key, *base;
    int result = LOOKUP_NOTFOUND;

    *text = NULL;
    addr_split(address, &local, &domain);
    if (!addr_domain_is_local(domain)) {
        *text = xasprintf("%s is not a local domain", domain);
    } else if (addr_is_postmaster(local)) {
        result = LOOKUP_OK;
        *text = xstrdup("postmaster");
    } else {
        key = addr_lowercase(local);
        result = lookupd_key(key, text);
        if (result == LOOKUP_NOTFOUND && (base = addr_unextended(key)) != NULL) {
            free(*text);
            *text = NULL;
            result = lookupd_key(base, text);
            free(base);
        }
        if (*text == NULL)
            *text = xstrdup("not found in local_recipient_maps");
        free(key);
    }
    free(local);
    free(domain);
    return result;
}

static void lookupd_drop(event_loop_t *loop, int fd)
{
    event_del_fd(loop, fd);
    close(fd);
    server_conn_end();
}

static void lookupd_on_request(event_loop_t *loop, int fd, int events, void *arg)
{
    ipc_msg_t *m = NULL, *reply;
    char *address = NULL, *text = NULL;
    int rc, result;

    (void)events;
    (void)arg;
    rc = ipc_recv(fd, &m, LOOKUPD_MAX_MSG, LOOKUPD_IO_MS);
    if (rc <= 0) {
        if (rc < 0 && errno != ECONNRESET)
            msg_warn("lookupd: bad message from client: %s; dropping it", strerror(errno));
        lookupd_drop(loop, fd);
        return;
    }
    if (m->type != LOOKUP_RCPT || m->fd >= 0 || ipc_get_str(m, &address) < 0
        || ipc_get_end(m) < 0 || address[0] == '\0') {
        msg_warn("lookupd: malformed %s from client; dropping it", ipc_type_name(m->type));
        free(address);
        ipc_msg_free(&m);
        lookupd_drop(loop, fd);
        return;
    }
    result = lookupd_rcpt(address, &text);
    if (result == LOOKUP_TEMPFAIL)
        msg_warn("lookupd: cannot check recipient <%s>: %s", address, text);
    else if (msg_verbose)
        msg_info("lookupd: <%s>: %s (%s)", address,
                 result == LOOKUP_OK ? "valid" : "unknown", text);
    reply = ipc_msg_new(LOOKUP_REPLY, m->reqid);
    ipc_put_int(reply, result);
    ipc_put_str(reply, text);
    rc = ipc_send(fd, reply, LOOKUPD_IO_MS);
    ipc_msg_free(&reply);
    ipc_msg_free(&m);
    free(address);
    free(text);
    if (rc < 0)
        lookupd_drop(loop, fd);
}

static void lookupd_accept(event_loop_t *loop, int fd)
{
    const char *why;

    if (ipc_server_hello(fd, LOOKUP_PROTO_NAME, LOOKUP_PROTO_VERSION, lookupd_peer_uids, 2,
                         LOOKUPD_IO_MS, &why) < 0) {
        msg_warn("lookupd: refusing a client: %s", why);
        close(fd);
        server_conn_end();
        return;
    }
    event_add_fd(loop, fd, EVENT_READ, lookupd_on_request, NULL);
}

static void lookupd_pre_init(void)
{
    gid_t gid;

    if (privs_lookup(conf_str("network_user"), &lookupd_peer_uids[0], &gid) < 0)
        msg_fatal("network_user account %s does not exist", conf_str("network_user"));
    if (privs_lookup(conf_str("mail_owner"), &lookupd_peer_uids[1], &gid) < 0)
        msg_fatal("mail_owner account %s does not exist", conf_str("mail_owner"));
}

static void lookupd_post_init(event_loop_t *loop)
{
    (void)loop;
    lookup_proto_init();
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_NONE,
        .pre_init = lookupd_pre_init,
        .post_init = lookupd_post_init,
        .accept = lookupd_accept,
    };

    server_main(argc, argv, &opts);
}

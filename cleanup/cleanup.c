/*
 * cleanup - the only writer of new queue files (DESIGN.md §1, §2).
 *
 * Runs as mail_owner, chrooted into the spool, one client connection per
 * process (SERVER_SINGLE): smtpd and submission keep one connection for
 * the whole SMTP session, so as many cleanup processes fsync at once as
 * there are sessions delivering, and the file system merges their
 * commits.  Per CLEANUP_SUBMIT request (lib/cleanup_proto.h):
 *   1. check the envelope and the content size (message_size_limit);
 *      route SRS addresses of srs_domain back to the addresses they
 *      stand for (srsrev.c); rewrite the recipients through
 *      virtual_alias_maps (virtual.c);
 *   2. create the queue file in tmp/ (lib/queue), write the envelope, the
 *      client attributes and the recipients;
 *   3. DKIM-sign the message if it is ours (signing.c: local submissions,
 *      logged-in clients, mynetworks, bounces; the keys of its From:
 *      domain) and write the DKIM-Signature fields first;
 *      write a Received: header (not for qmgr's bounces), then copy the
 *      content from the client's memfd, counting Received: headers
 *      (hopcount_limit: 554 5.4.6) and noting the Message-ID; the header
 *      of a message from an authenticated client (sasl_username) is
 *      completed as sendmail completes a local submission's: a missing
 *      From: (the envelope sender), Date: or Message-ID: is added at the
 *      end of the header;
 *      Authentication-Results fields that claim our authserv-id
 *      (myhostname) are removed from mail from outside (network peers,
 *      local users); smtpd's own (the auth_results attribute, from
 *      checkd) is written under the Received: header;
 *   4. commit by the durability rule: fsync, rename into incoming/, fsync
 *      incoming/; only then answer 250 with the queue ID;
 *   5. tell qmgr about the new file (QMGR_NOTIFY, best effort: qmgr also
 *      scans incoming/).
 *
 * Peers: network_user (smtpd, submission), mail_owner (qmgr's bounces,
 * pickup, local's forwarding child) and root; checked with SO_PEERCRED at
 * the hello.  The peer's uid decides its class (lib/cleanup_proto.h), and
 * the decoder holds every request to that class's rules: only mail_owner
 * and root may set the bounce flag, submit_uid, submit_user or
 * maildrop_id, and network_user must say which client it speaks for
 * (client_addr).  A request that breaks them is a peer error.
 *
 * Failure modes: a malformed request is a peer error (logged, connection
 * dropped).  A queue write error answers 451 4.3.0 (452 4.3.1 when the
 * disk is full) and leaves no file behind.  A lost qmgr connection is
 * logged and retried with the next message.  A message that should be
 * signed but cannot be (libopendkim fails) answers 451 4.3.0.
 *
 * Parameters: message_size_limit, hopcount_limit, myhostname, mail_name,
 * virtual_alias_maps (and virtual.c's), srs_enable, srs_domain,
 * srs_secret_file, srs_max_age (srsrev.c), dkim_sign, dkim_key_directory,
 * mynetworks (signing.c), dkim_ed25519_process_limit,
 * network_user, mail_owner (and the server skeleton's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authres.h"
#include "cleanup_proto.h"
#include "conf.h"
#include "dkimsign.h"
#include "header.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "maildrop.h"
#include "msg.h"
#include "msgheader.h"
#include "privs.h"
#include "qmgr_proto.h"
#include "queue.h"
#include "server.h"
#include "signing.h"
#include "srsrev.h"
#include "virtual.h"
#include "xalloc.h"

#define CLEANUP_IDLE_MS     (3600 * 1000)   /* a session may idle between messages */
#define CLEANUP_IO_MS       (60 * 1000)
#define CLEANUP_QMGR_MS     2000

static uid_t cleanup_peer_uids[2];     /* network_user, mail_owner */
static int cleanup_qdir_fd = -1;
static int cleanup_qmgr_fd = -1;
static time_t cleanup_qmgr_warned;

static void cleanup_pre_init(void)
{
    gid_t gid;

    signing_init();         /* the DKIM keys are root's: read them now */
    if (privs_lookup(conf_str("network_user"), &cleanup_peer_uids[0], &gid) < 0)
        msg_fatal("network_user account %s does not exist", conf_str("network_user"));
    if (privs_lookup(conf_str("mail_owner"), &cleanup_peer_uids[1], &gid) < 0)
        msg_fatal("mail_owner account %s does not exist", conf_str("mail_owner"));
    if (cleanup_peer_uids[0] == cleanup_peer_uids[1] || cleanup_peer_uids[0] == 0)
        msg_warn("network_user %s has the uid of mail_owner or root: smtpd's requests are "
                 "trusted like theirs", conf_str("network_user"));
    srsrev_init();              /* the SRS secret file is root's alone */
}

static void cleanup_post_init(event_loop_t *loop)
{
    (void)loop;
    cleanup_proto_init();
    lookup_proto_init();
    qmgr_proto_init();
    if ((cleanup_qdir_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        msg_fatal("cannot open the queue directory: %s", strerror(errno));
}

/* Tell qmgr that incoming/id exists.  Best effort: a failure only delays
 * the delivery until qmgr's next scan of incoming/. */
static void cleanup_notify_qmgr(const char *id)
{
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        const char *why = NULL;
        ipc_msg_t *m;
        int rc;

        if (cleanup_qmgr_fd < 0)
            cleanup_qmgr_fd = ipc_client_open(QMGR_SOCKET, QMGR_PROTO_NAME, QMGR_PROTO_VERSION,
                                              CLEANUP_QMGR_MS, &why);
        if (cleanup_qmgr_fd < 0)
            break;
        m = qmgr_notify_encode(id);
        rc = ipc_send(cleanup_qmgr_fd, m, CLEANUP_QMGR_MS);
        ipc_msg_free(&m);
        if (rc == 0)
            return;
        close(cleanup_qmgr_fd);
        cleanup_qmgr_fd = -1;
    }
    if (time(NULL) - cleanup_qmgr_warned >= 60) {
        cleanup_qmgr_warned = time(NULL);
        msg_warn("cannot notify qmgr of new mail (%s); it will find it on its next scan",
                 strerror(errno));
    }
}

/* The reply for a queue write error. */
static int cleanup_write_error(int err, const char **dsn, const char **text)
{
    if (err == ENOSPC || err == EDQUOT) {
        *dsn = "4.3.1";
        *text = "Insufficient system storage";
        return 452;
    }
    *dsn = "4.3.0";
    *text = "Error: queue file write error";
    return 451;
}

/* Each piece of content as it goes into the queue file: the header scan. */
static void cleanup_observe(void *ctx, const char *data, size_t len)
{
    struct header_scan *hs = ctx;

    if (!hs->done)
        header_scan_feed(hs, data, len);
}

/*
 * A message from pickup names its maildrop file (maildrop_id; the decoder
 * takes it only from a trusted peer: pickup's account, mail_owner, or
 * root).  cleanup claims the
 * file with an exclusive lock for as long as it works on the message and
 * removes it right after its commit, before it answers: a pickup killed
 * or timed out while it waits neither loses the message nor gets it
 * queued twice, since a second cleanup given the same file finds it
 * locked or gone and answers 451 (pickup tries again later, and by then
 * the file is gone or, if the first cleanup died before its commit,
 * free again).
 */
static int cleanup_claim_fd = -1;

static int cleanup_maildrop_claim(const struct cleanup_request *r, const char **dsn,
                                  const char **text)
{
    const char *id = cleanup_request_get_attr(r, QUEUE_ATTR_MAILDROP_ID);
    struct stat st;
    int fd;

    if (id == NULL)
        return 0;
    if (!queue_id_valid(id)) {
        msg_warn("cleanup: ignoring a bad %s attribute", QUEUE_ATTR_MAILDROP_ID);
        return 0;
    }
    /* queue_open: a regular file with one link, nothing that could block. */
    fd = queue_open(cleanup_qdir_fd, QUEUE_DIR_MAILDROP, id, O_RDONLY, NULL);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 && st.st_nlink > 0) {
        cleanup_claim_fd = fd;
        return 0;
    }
    if (fd >= 0)
        close(fd);
    *dsn = "4.3.0";
    *text = "Error: the maildrop file is being queued already";
    return 451;
}

static void cleanup_maildrop_done(const struct cleanup_request *r)
{
    const char *id = cleanup_request_get_attr(r, QUEUE_ATTR_MAILDROP_ID);

    if (cleanup_claim_fd < 0)
        return;
    if (queue_remove(cleanup_qdir_fd, QUEUE_DIR_MAILDROP, id) < 0 && errno != ENOENT)
        msg_warn("cannot remove maildrop/%s: %s", id, strerror(errno));
}

static void cleanup_maildrop_release(void)
{
    if (cleanup_claim_fd >= 0)
        close(cleanup_claim_fd);
    cleanup_claim_fd = -1;
}

/* The header fields a message from an authenticated client (one with a
 * sasl_username) lacks, as sendmail adds them to a local submission:
 * From: (the envelope sender, which submission checked is the login's),
 * Date: and Message-ID:, into add. */
static void cleanup_missing_fields(const struct cleanup_request *r, const struct msgheader *h,
                                   buf_t *add)
{
    time_t now = time(NULL);

    if (msgheader_find(h, "from") == NULL && r->sender[0] != '\0')
        buf_printf(add, "From: <%s>\r\n", r->sender);
    if (msgheader_find(h, "date") == NULL)
        msgheader_put_date(add, now);
    if (msgheader_find(h, "message-id") == NULL)
        msgheader_put_message_id(add, now, conf_str("myhostname"));
}

/* Does a message from this peer lose the Authentication-Results fields
 * that claim our authserv-id (RFC 8601 5)?  Everything from outside
 * does: smtpd's and submission's clients and local users (pickup's
 * maildrop files); local's forwards and qmgr's bounces carry our own. */
static bool cleanup_strips_authres(const struct cleanup_request *r, enum cleanup_peer peer)
{
    return peer != CLEANUP_PEER_TRUSTED
           || cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_UID) != NULL;
}

/* Is this an Authentication-Results field with our authserv-id? */
static bool cleanup_forged_authres(const struct msgheader_field *f)
{
    char *value, *id = NULL;
    size_t len;
    bool ours;

    if (!msgheader_field_is(f, "authentication-results"))
        return false;
    value = msgheader_field_value(f, &len);
    ours = authres_authserv_id(value, len, &id) == 0
           && strcasecmp(id, conf_str("myhostname")) == 0;
    free(id);
    free(value);
    return ours;
}

/* Does the header h hold a forged field (cleanup_forged_authres)? */
static bool cleanup_has_forged_authres(const struct msgheader *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (cleanup_forged_authres(&h->fields[i]))
            return true;
    return false;
}

/* Copy the header fields of h but the forged Authentication-Results
 * fields (each logged); 0, or -1 with errno. */
static int cleanup_copy_header(queue_writer_t *w, const struct cleanup_request *r,
                               const struct msgheader *h, struct header_scan *hs)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct msgheader_field *f = &h->fields[i];
        const char *addr = cleanup_request_get_attr(r, QUEUE_ATTR_CLIENT_ADDR);

        if (cleanup_forged_authres(f)) {
            msg_info("removed an Authentication-Results field that claims to be ours (from %s)",
                     addr ? addr : "a local user");
            continue;
        }
        cleanup_observe(hs, f->text, f->len);
        if (queue_writer_content(w, f->text, f->len) < 0)
            return -1;
    }
    return 0;
}

/* Copy the client's content into the queue file, through the header scan,
 * with the fields in add (if any) at the end of the header h, as Postfix
 * adds them, and without the forged Authentication-Results fields when
 * strip (h was read then).  0, or -1 with errno. */
static int cleanup_copy_content(queue_writer_t *w, const struct cleanup_request *r,
                                const struct msgheader *h, const buf_t *add, bool strip,
                                struct header_scan *hs)
{
    buf_t *lines;
    int rc;

    if (strip && cleanup_has_forged_authres(h)) {
        if (cleanup_copy_header(w, r, h, hs) < 0)
            return -1;
    } else if (add->len == 0) {
        return queue_writer_copy_fd(w, r->content_fd, 0, r->content_len, cleanup_observe, hs);
    } else if (queue_writer_copy_fd(w, r->content_fd, 0, h->end, cleanup_observe, hs) < 0) {
        return -1;
    }
    if (add->len == 0)
        return queue_writer_copy_fd(w, r->content_fd, h->end, r->content_len - h->end,
                                    cleanup_observe, hs);
    lines = buf_new(0);
    if (h->unterminated)            /* a header that ends the content without a line end */
        buf_append(lines, "\r\n", 2);
    buf_append(lines, add->data, add->len);
    if (!h->separated && h->end < r->content_len)
        buf_append(lines, "\r\n", 2);     /* the body began without the empty line */
    cleanup_observe(hs, lines->data, lines->len);
    rc = queue_writer_content(w, lines->data, lines->len);
    buf_free(&lines);
    if (rc < 0)
        return -1;
    return queue_writer_copy_fd(w, r->content_fd, h->end, r->content_len - h->end,
                                cleanup_observe, hs);
}

/* The header (into h, *have_h set) when the message needs it: to complete
 * an authenticated client's (into add), to sign it, or to look for forged
 * Authentication-Results fields (strip); then the DKIM-Signature fields
 * (signing.c) written first.  0, or -1 with errno. */
static int cleanup_prepare(queue_writer_t *w, const struct cleanup_request *r, const char *id,
                           bool strip, struct msgheader *h, bool *have_h, buf_t *add,
                           char **signed_what)
{
    bool sasl = cleanup_request_get_attr(r, QUEUE_ATTR_SASL_USER) != NULL;
    bool sign = signing_wanted(r);
    buf_t *sigs;
    int rc;

    if (!sasl && !sign && !strip)
        return 0;
    if (msgheader_read(r->content_fd, r->content_len, h) < 0)
        return -1;
    *have_h = true;
    if (sasl)
        cleanup_missing_fields(r, h, add);
    if (!sign)
        return 0;
    sigs = buf_new(0);
    rc = signing_sign(r, h, add, id, sigs, signed_what);
    if (rc == 0 && sigs->len > 0)
        rc = queue_writer_content(w, sigs->data, sigs->len);
    buf_free(&sigs);
    return rc;
}

/* Write and commit one message.  Returns the SMTP code; *dsn and *text
 * (static or in *idbuf) describe the outcome. */
static int cleanup_write(struct cleanup_request *r, enum cleanup_peer peer, char *idbuf,
                         const char **dsn, const char **text, struct header_scan *hs)
{
    bool strip = cleanup_strips_authres(r, peer);
    long long limit = conf_size("message_size_limit");
    queue_writer_t *w = NULL;
    struct msgheader h;
    bool have_h = false;
    buf_t *add = NULL;
    char *signed_what = NULL;
    struct stat st;
    int code;

    if (fstat(r->content_fd, &st) < 0 || (uint64_t)st.st_size < r->content_len) {
        *dsn = "4.3.0";
        *text = "Error: message content is missing";
        msg_warn("cleanup: client sent a content descriptor shorter than its length");
        return 451;
    }
    if (limit > 0 && r->content_len > (uint64_t)limit && !(r->flags & CLEANUP_FLAG_BOUNCE)) {
        *dsn = "5.3.4";
        *text = "Message size exceeds fixed limit";
        return 552;
    }
    if ((code = cleanup_maildrop_claim(r, dsn, text)) != 0)
        return code;
    if ((code = srsrev_rewrite(r, dsn, text)) != 0) {
        msg_info("NOQUEUE: reject: %d %s %s", code, *dsn, *text);
        return code;
    }
    if (*conf_str("virtual_alias_maps")) {
        if ((code = virtual_expand(r, dsn, text)) != 0) {
            msg_info("NOQUEUE: reject: %d %s %s", code, *dsn, *text);
            return code;
        }
    }
    if (queue_writer_open(cleanup_qdir_fd, &w) < 0)
        return cleanup_write_error(errno, dsn, text);
    strlcpy(idbuf, queue_writer_id(w), QUEUE_ID_SIZE);
    add = buf_new(0);
    if (maildrop_write_envelope(w, r) < 0)
        goto envelope_error;
    if (cleanup_prepare(w, r, idbuf, strip, &h, &have_h, add, &signed_what) < 0)
        goto content_error;
    if (!(r->flags & CLEANUP_FLAG_BOUNCE)) {
        buf_t *rcv = buf_new(0);

        header_received(rcv, r, idbuf, time(NULL));
        /* smtpd's checks (checkd), under our Received: */
        if (cleanup_request_get_attr(r, QUEUE_ATTR_AUTH_RESULTS)) {
            buf_append_str(rcv, "Authentication-Results: ");
            authres_fold(rcv, cleanup_request_get_attr(r, QUEUE_ATTR_AUTH_RESULTS));
            buf_append_str(rcv, "\r\n");
        }
        queue_writer_content(w, rcv->data, rcv->len);
        buf_free(&rcv);
    }
    if (cleanup_copy_content(w, r, &h, add, strip && have_h, hs) < 0)
        goto content_error;
    if (!(r->flags & CLEANUP_FLAG_BOUNCE)
        && hs->received + 1 > (unsigned)conf_int("hopcount_limit")) {
        queue_writer_abort(&w);
        msg_info("%s: reject: too many hops (%u Received: headers)", idbuf, hs->received + 1);
        *dsn = "5.4.6";
        *text = "Error: too many hops";
        code = 554;
        goto out;
    }
    if (queue_writer_commit(&w) < 0) {
        int err = errno;

        msg_warn("%s: cannot commit the queue file: %s", idbuf, strerror(err));
        code = cleanup_write_error(err, dsn, text);
        goto out;
    }
    cleanup_maildrop_done(r);
    if (signed_what)
        msg_info("%s: DKIM-Signature added (%s)", idbuf, signed_what);
    *dsn = "2.0.0";
    *text = idbuf;
    code = 250;
    goto out;

content_error:
    {
        int err = errno;

        queue_writer_abort(&w);
        if (err == EBADMSG) {
            *dsn = "4.3.0";
            *text = "Error: message content is missing";
            code = 451;
        } else if (err == EIO) {
            *dsn = "4.3.0";
            *text = "Error: cannot DKIM-sign the message";
            code = 451;
        } else {
            msg_warn("%s: queue file write error: %s", idbuf, strerror(err));
            code = cleanup_write_error(err, dsn, text);
        }
        goto out;
    }
envelope_error:
    {
        int err = errno;

        queue_writer_abort(&w);
        if (err == EMSGSIZE) {
            *dsn = "5.5.4";
            *text = "Error: envelope field too long";
            code = 554;
        } else {
            code = cleanup_write_error(err, dsn, text);
        }
    }
out:
    if (have_h)
        msgheader_free(&h);
    buf_free(&add);
    free(signed_what);
    return code;
}

/* Handle one request from a peer of class peer (uid for the log); 0 to go
 * on, -1 to drop the peer. */
static int cleanup_request(int fd, uid_t uid, enum cleanup_peer peer, ipc_msg_t *m)
{
    struct cleanup_request r;
    struct header_scan hs;
    char id[QUEUE_ID_SIZE] = "";
    const char *why, *dsn = "4.3.0", *text = "";
    ipc_msg_t *reply;
    int code, rc;

    if (m->type != CLEANUP_SUBMIT) {
        msg_warn("cleanup: unexpected %s from client; dropping it", ipc_type_name(m->type));
        return -1;
    }
    if (cleanup_request_decode(m, peer, &r, &why) < 0) {
        msg_warn("cleanup: bad %s from client uid %ld (%s): %s; dropping it",
                 ipc_type_name(m->type), (long)uid, cleanup_peer_name(peer), why);
        return -1;
    }
    header_scan_init(&hs);
    code = cleanup_write(&r, peer, id, &dsn, &text, &hs);
    cleanup_maildrop_release();
    if (code == 250) {
        /* Logged before the answer, so the log never lags the client. */
        const char *msgid = header_scan_msgid(&hs);

        msg_info("%s: message-id=%s", id, *msgid ? msgid : "<>");
    }
    reply = cleanup_result_encode(m->reqid, code, dsn, text);
    rc = ipc_send(fd, reply, CLEANUP_IO_MS);
    ipc_msg_free(&reply);
    if (code == 250)
        cleanup_notify_qmgr(id);
    header_scan_free(&hs);
    cleanup_request_free(&r);
    if (rc < 0 && code == 250)
        /* The file is committed; the client just did not hear it.  It may
         * send the message again: a duplicate, never a loss. */
        msg_warn("%s: cannot send the result to the client: %s", id, strerror(errno));
    return rc;
}

static void cleanup_serve(int fd)
{
    enum cleanup_peer class;
    uid_t peer;
    const char *why;
    ipc_msg_t *m;
    int rc;

    if (ipc_server_hello(fd, CLEANUP_PROTO_NAME, CLEANUP_PROTO_VERSION, cleanup_peer_uids, 2,
                         CLEANUP_IO_MS, &why) < 0) {
        msg_warn("cleanup: refusing a client: %s", why);
        return;
    }
    if (ipc_peer_uid(fd, &peer, NULL) < 0)
        return;
    class = cleanup_peer_class(peer, cleanup_peer_uids[1]);
    for (;;) {
        rc = ipc_recv(fd, &m, CLEANUP_MAX_REQUEST, CLEANUP_IDLE_MS);
        if (rc == 0)
            return;
        if (rc < 0) {
            if (errno != ECONNRESET)
                msg_warn("cleanup: bad message from client: %s; dropping it", strerror(errno));
            return;
        }
        rc = cleanup_request(fd, peer, class, m);
        ipc_msg_free(&m);
        if (rc < 0)
            return;
        if (dkimsign_leaky_handles() >= (unsigned long)conf_int("dkim_ed25519_process_limit")) {
            /* libopendkim keeps what each Ed25519 signature loaded: a
             * fresh process before it adds up (about 1 MB).  Its clients
             * see the connection closed between messages and open another
             * (lib/smtpserver, pickup). */
            msg_info("cleanup: %lu Ed25519 signatures made; ending this process (libopendkim "
                     "keeps memory for each)", dkimsign_leaky_handles());
            close(fd);
            exit(0);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_SPOOL,
        .pre_init = cleanup_pre_init,
        .post_init = cleanup_post_init,
        .serve = cleanup_serve,
    };

    server_main(argc, argv, &opts);
}

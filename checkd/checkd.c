/*
 * checkd - checks inbound mail with SPF, DKIM and DMARC, confined.
 *
 * libspf2, libopendkim and the DMARC code parse DNS data and header fields
 * that anyone on the Internet chooses, and their upstreams are quiet, so
 * they run here and nowhere else: as check_user without other groups,
 * chrooted into the spool's dmarc/ directory (its own, where it appends
 * the DMARC history and holds no descriptor of anything outside), with a
 * seccomp filter (sandbox.c) that allows only the system calls this work
 * needs.  One smtpd session per process
 * (SERVER_SINGLE): smtpd connects when a session first needs a check and
 * closes when it ends; master starts as many checkd processes as there
 * are such sessions, up to the service's process limit, and restarts one
 * that dies.  The protocol is lib/check_proto's.
 *
 *  - CHECK_SPF: SPF of MAIL FROM (lib/spfcheck over libspf2; for <> the
 *    HELO name's postmaster).  The answer is kept for the connection, so
 *    the CHECK_MESSAGE that follows with the same client, HELO and sender
 *    asks no DNS again.
 *  - CHECK_MESSAGE: SPF of MAIL FROM and of the HELO name, DKIM of every
 *    signature (lib/dkimverify, at most dkim_verify_max_signatures), and
 *    DMARC (lib/dmarc) on the From: domain with the SPF result of MAIL FROM
 *    and the passing DKIM signatures.  The reply is one
 *    Authentication-Results field value (lib/authres; authserv-id =
 *    myhostname) and the disposition to apply: the sender's policy with
 *    its pct, then dmarc_reject = no turns reject into quarantine and
 *    dmarc_quarantine = no turns quarantine into none.  A message whose
 *    DMARC record names a rua gets a row in the history of dmarc/
 *    (lib/dmarchist) for the daily aggregate report.
 * Every lookup goes through lib/dns (libunbound, the dns_* parameters)
 * with dns_query_timeout; a failure is a temperror in the result, never a
 * missing answer.
 *
 * Failure modes: a malformed request, a hello from a wrong uid or a
 * message descriptor that cannot be read is a peer error (logged, that
 * connection closed).  DNS that cannot be set up, a public suffix list
 * that cannot be read or a library that cannot start is fatal (master
 * restarts us, throttled; smtpd meanwhile records temperror).  A system
 * call outside the filter ends the process with a log line naming it.
 *
 * Parameters: myhostname, dkim_verify_max_signatures, dmarc_reject,
 * dmarc_quarantine, dmarc_public_suffix_list, dns_forwarders,
 * dns_stub_zones, dnssec_trust_anchor_file, dns_query_timeout,
 * check_user, network_user (and the server skeleton's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authres.h"
#include "buf.h"
#include "check_proto.h"
#include "checkd.h"
#include "conf.h"
#include "dkimverify.h"
#include "dmarc.h"
#include "dmarchist.h"
#include "dns.h"
#include "ipc.h"
#include "msg.h"
#include "msgheader.h"
#include "server.h"
#include "spfcheck.h"
#include "xalloc.h"

#define CHECKD_IDLE_MS   (3600 * 1000)   /* a session may sit in DATA long */
#define CHECKD_REPLY_MS  (60 * 1000)
#define CHECKD_SIZE_SLACK 4096          /* smtpd may add a final CRLF */
#define CHECKD_DNS_CACHE     4096       /* answers kept (lib/dnscache) */
#define CHECKD_DNS_CACHE_TTL 300        /* seconds at most */
/* Authentication-Results is a queue file attribute (QUEUE_FIELD_MAX):
 * DKIM results stop being listed one by one past this length. */
#define CHECKD_AUTHRES_ROOM 4096

static dns_t *checkd_dns;
static spfcheck_t *checkd_spf;
static dkimverify_t *checkd_dkim;
static int checkd_dmarc_dir = -1;
static uid_t checkd_peer_uids[1];

/* The SPF answers of this connection's last (client, HELO, sender) and,
 * apart, of its last (client, HELO): a session's messages share them. */
struct checkd_spf_memo {
    char                   *key;
    struct spfcheck_outcome mailfrom;
    char                   *helo_key;
    struct spfcheck_outcome helo;
};

static void checkd_memo_clear(struct checkd_spf_memo *m)
{
    xfree(&m->key);
    xfree(&m->helo_key);
    spfcheck_outcome_clear(&m->mailfrom);
    spfcheck_outcome_clear(&m->helo);
}

/* SPF of MAIL FROM (and of HELO too when want_helo), from the memo when
 * this connection asked it already. */
static void checkd_spf_run(struct checkd_spf_memo *m, const char *addr, const char *helo,
                           const char *sender, int want_helo)
{
    char *key = xasprintf("%s\n%s\n%s", addr, helo, sender);
    char *helo_key = xasprintf("%s\n%s", addr, helo);

    if (m->key == NULL || strcmp(m->key, key) != 0) {
        xfree(&m->key);
        spfcheck_outcome_clear(&m->mailfrom);
        m->key = key;
        if (spfcheck_mailfrom(checkd_spf, addr, helo, sender, &m->mailfrom) < 0
            && m->mailfrom.result != SPFCHECK_PERMERROR)
            m->mailfrom.result = SPFCHECK_PERMERROR;
    } else {
        free(key);
    }
    if (want_helo && (m->helo_key == NULL || strcmp(m->helo_key, helo_key) != 0)) {
        xfree(&m->helo_key);
        spfcheck_outcome_clear(&m->helo);
        m->helo_key = helo_key;
        if (*helo == '\0' || spfcheck_helo(checkd_spf, addr, helo, &m->helo) < 0)
            m->helo.result = SPFCHECK_NONE;
    } else {
        free(helo_key);
    }
}

/* DNS callbacks of the libraries: synchronous lookups through lib/dns. */
static enum dkimverify_key checkd_key_lookup(void *ctx, const char *name, char *buf, size_t size)
{
    dns_result_t *res = dns_lookup(checkd_dns, name, DNS_T_TXT);
    enum dkimverify_key k;

    (void)ctx;
    if (res->status == DNS_OK && res->nrr > 0) {
        strlcpy(buf, res->rr[0].u.txt.joined, size);
        k = DKIMVERIFY_KEY_OK;
    } else if (res->status == DNS_TEMPFAIL || res->status == DNS_BOGUS) {
        k = DKIMVERIFY_KEY_TEMPFAIL;
    } else {
        k = DKIMVERIFY_KEY_NOTFOUND;
    }
    dns_result_free(&res);
    return k;
}

static enum dmarc_dns checkd_txt_lookup(void *ctx, const char *name, char ***txts, size_t *n)
{
    dns_result_t *res = dns_lookup(checkd_dns, name, DNS_T_TXT);
    enum dmarc_dns d;

    (void)ctx;
    *txts = NULL;
    *n = 0;
    if (res->status == DNS_OK) {
        *txts = xcalloc(res->nrr + 1, sizeof(**txts));
        for (size_t i = 0; i < res->nrr; i++)
            (*txts)[i] = xstrdup(res->rr[i].u.txt.joined);
        *n = res->nrr;
        d = DMARC_DNS_OK;
    } else if (res->status == DNS_TEMPFAIL || res->status == DNS_BOGUS) {
        d = DMARC_DNS_TEMPFAIL;
    } else {
        d = DMARC_DNS_NONE;
    }
    dns_result_free(&res);
    return d;
}

/* The From: field values of the message, and so its DMARC domain. */
static int checkd_from_domain(int fd, uint64_t len, char **domain, const char **why)
{
    struct msgheader h;
    char **values = NULL;
    size_t n = 0;
    int rc;

    if (msgheader_read(fd, len, &h) < 0) {
        *why = "cannot read the message";
        return -1;
    }
    for (size_t i = 0; i < h.n; i++) {
        if (!msgheader_field_is(&h.fields[i], "from"))
            continue;
        values = xreallocarray(values, n + 1, sizeof(*values));
        values[n++] = msgheader_field_value(&h.fields[i], NULL);
    }
    rc = dmarc_from_domain((const char *const *)values, n, domain, why);
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    free(values);
    msgheader_free(&h);
    return rc;
}

/* The sender's domain as SPF checked it ("" sender: the HELO name). */
static const char *checkd_domain_of(const char *sender, const char *helo)
{
    const char *at = strrchr(sender, '@');

    return *sender == '\0' ? helo : at ? at + 1 : sender;
}

/* What we apply of the policy's disposition, and the report's reason. */
static enum dmarc_p checkd_apply(enum dmarc_p p, const char **reason)
{
    if (p == DMARC_P_REJECT && !conf_bool("dmarc_reject")) {
        *reason = "local_policy";
        p = DMARC_P_QUARANTINE;
    }
    if (p == DMARC_P_QUARANTINE && !conf_bool("dmarc_quarantine")) {
        *reason = "local_policy";
        p = DMARC_P_NONE;
    }
    return p;
}

/* One history row for the DMARC aggregate report. */
static void checkd_record(const struct check_message_request *r, const char *from_domain,
                          const struct spfcheck_outcome *spf, const struct dkimverify_outcome *dk,
                          const struct dmarc_outcome *dm, enum dmarc_p applied,
                          const char *reason)
{
    struct dmarchist_row row;
    const char *why = NULL;
    size_t i;

    memset(&row, 0, sizeof(row));
    row.when = (long long)time(NULL);
    row.source_ip = r->client_addr;
    row.header_from = (char *)from_domain;
    row.envelope_from = (char *)(*r->sender ? checkd_domain_of(r->sender, r->helo) : "");
    row.envelope_to = r->rcpt_domain;
    row.policy_domain = dm->policy_domain;
    row.p = (char *)dmarc_p_name(dm->record.p);
    row.sp = (char *)dmarc_p_name(dm->record.sp);
    row.pct = dm->record.pct;
    row.adkim = dm->record.adkim;
    row.aspf = dm->record.aspf;
    row.fo = dm->record.fo ? dm->record.fo : "";
    row.rua = dm->record.rua;
    row.disposition = (char *)dmarc_p_name(applied == DMARC_P_UNSET ? DMARC_P_NONE : applied);
    row.dkim_aligned = dm->dkim_aligned;
    row.spf_aligned = dm->spf_aligned;
    row.reason = (char *)(reason ? reason : dm->sampled_out ? "sampled_out" : "");
    row.spf_domain = spf->domain ? spf->domain : "";
    row.spf_scope = (char *)(*r->sender ? "mfrom" : "helo");
    row.spf_result = (char *)spfcheck_result_name(spf->result);
    row.dkim = xcalloc(dk->nsig + 1, sizeof(*row.dkim));
    for (i = 0; i < dk->nsig; i++) {
        row.dkim[i].domain = dk->sigs[i].domain;
        row.dkim[i].selector = dk->sigs[i].selector;
        row.dkim[i].result = (char *)dk->sigs[i].result;
    }
    row.ndkim = dk->nsig;
    if (checkd_dmarc_dir >= 0 && dmarchist_append(checkd_dmarc_dir, &row, &why) < 0)
        msg_warn("cannot record the DMARC result of %s for its report: %s", from_domain,
                 why ? why : strerror(errno));
    free(row.dkim);
}

static void checkd_message(struct checkd_spf_memo *memo, const struct check_message_request *r,
                           struct check_message_result *res)
{
    struct dkimverify_outcome dk = { 0 };
    struct dmarc_outcome dm;
    struct dmarc_input in;
    struct dmarc_dkim_pass *passes;
    buf_t *ar = buf_new(CHECK_TEXT_MAX), *note = buf_new(0);
    char *from_domain = NULL;
    const char *why = NULL, *reason = NULL;
    const char *mailfrom_prop = *r->sender ? "smtp.mailfrom" : "smtp.helo";
    const char *mailfrom_val = *r->sender ? r->sender : r->helo;
    enum dmarc_p applied = DMARC_P_NONE;
    size_t npass = 0, unlisted = 0;

    memset(&dm, 0, sizeof(dm));
    memset(res, 0, sizeof(*res));
    checkd_spf_run(memo, r->client_addr, r->helo, r->sender, 1);
    authres_begin(ar, conf_str("myhostname"));
    authres_add(ar, "spf", spfcheck_result_name(memo->mailfrom.result), memo->mailfrom.comment,
                mailfrom_prop, mailfrom_val, NULL);
    if (*r->sender && memo->helo.result != SPFCHECK_NONE)
        authres_add(ar, "spf", spfcheck_result_name(memo->helo.result), memo->helo.comment,
                    "smtp.helo", r->helo, NULL);

    if (dkimverify_message(checkd_dkim, r->content_fd, r->content_len,
                           (size_t)conf_int("dkim_verify_max_signatures"), &dk) < 0) {
        authres_add(ar, "dkim", "temperror", "the message could not be read", NULL);
    } else if (dk.nsig == 0) {
        authres_add(ar, "dkim", "none", NULL, NULL);
    }
    passes = xcalloc(dk.nsig + 1, sizeof(*passes));
    for (size_t i = 0; i < dk.nsig; i++) {
        const struct dkimverify_sig *s = &dk.sigs[i];

        if (strcmp(s->result, "pass") == 0)
            passes[npass++].domain = s->domain;
        /* The field travels as a queue file attribute: those that were
         * not evaluated, and any beyond its room, go into one line. */
        if (i >= (size_t)conf_int("dkim_verify_max_signatures")
            || ar->len > CHECKD_AUTHRES_ROOM) {
            unlisted++;
            continue;
        }
        authres_add(ar, "dkim", s->result, s->comment, "header.d", s->domain,
                    "header.s", s->selector, "header.a", s->algorithm, "header.b", s->b, NULL);
    }
    if (unlisted) {
        buf_printf(note, "%zu more signatures not evaluated or not listed", unlisted);
        authres_add(ar, "dkim", "policy", buf_cstr(note), NULL);
        buf_reset(note);
    }

    if (checkd_from_domain(r->content_fd, r->content_len, &from_domain, &why) < 0) {
        res->dmarc = CHECK_DMARC_PERMERROR;
        authres_add(ar, "dmarc", "permerror", why, NULL);
        res->comment = xasprintf("DMARC: %s", why);
    } else {
        in.from_domain = from_domain;
        in.spf_domain = checkd_domain_of(r->sender, r->helo);
        in.spf_pass = memo->mailfrom.result == SPFCHECK_PASS;
        in.dkim = passes;
        in.ndkim = npass;
        dmarc_evaluate(&in, checkd_txt_lookup, NULL, &dm);
        res->dmarc = (int)dm.result;
        if (dm.policy_domain) {
            applied = checkd_apply(dm.disposition, &reason);
            buf_printf(note, "p=%s sp=%s dis=%s", dmarc_p_name(dm.record.p),
                       dmarc_p_name(dm.record.sp), dmarc_p_name(applied));
            res->policy_domain = xstrdup(dm.policy_domain);
        }
        authres_add(ar, "dmarc", dmarc_result_name(dm.result),
                    note->len ? buf_cstr(note) : dm.comment, "header.from", from_domain, NULL);
        res->comment = xasprintf("DMARC %s for %s%s%s", dmarc_result_name(dm.result),
                                 from_domain, dm.comment ? ": " : "",
                                 dm.comment ? dm.comment : "");
        if (dm.policy_domain && dm.record.rua && *dm.record.rua)
            checkd_record(r, from_domain, &memo->mailfrom, &dk, &dm, applied, reason);
    }
    res->disposition = applied == DMARC_P_REJECT ? CHECK_DISPOSITION_REJECT
                       : applied == DMARC_P_QUARANTINE ? CHECK_DISPOSITION_QUARANTINE
                       : CHECK_DISPOSITION_NONE;
    authres_end(ar);
    res->auth_results = buf_steal(ar, NULL);
    buf_free(&ar);
    buf_free(&note);
    free(passes);
    free(from_domain);
    dkimverify_outcome_clear(&dk);
    dmarc_outcome_clear(&dm);
}

/* The content a request names must be what smtpd makes: a regular file
 * (its memfd) holding at least content_len bytes, within
 * message_size_limit; anything else is a peer error (EPROTO), so no peer
 * can have us read a device or a pipe without end. */
static int checkd_content_ok(const struct check_message_request *q)
{
    long long limit = conf_size("message_size_limit");
    struct stat st;

    if (fstat(q->content_fd, &st) < 0 || !S_ISREG(st.st_mode)
        || (uint64_t)st.st_size < q->content_len
        || (limit > 0 && q->content_len > (uint64_t)limit + CHECKD_SIZE_SLACK)) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* One request: 0, or -1 to drop the peer. */
static int checkd_request(int fd, ipc_msg_t *m, struct checkd_spf_memo *memo)
{
    ipc_msg_t *reply = NULL;
    int rc;

    if (m->type == CHECK_SPF) {
        struct check_spf_request q;
        struct check_spf_result res;

        if (check_spf_request_decode(m, &q) < 0)
            return -1;
        checkd_spf_run(memo, q.client_addr, q.helo, q.sender, 0);
        res.result = (int)memo->mailfrom.result;
        res.domain = memo->mailfrom.domain;
        res.comment = memo->mailfrom.comment;
        reply = check_spf_result_encode(&res);
        check_spf_request_clear(&q);
    } else if (m->type == CHECK_MESSAGE) {
        struct check_message_request q;
        struct check_message_result res;

        if (check_message_request_decode(m, &q) < 0)
            return -1;
        if (checkd_content_ok(&q) < 0) {
            check_message_request_clear(&q);
            return -1;
        }
        checkd_message(memo, &q, &res);
        msg_info("check: client=%s, from=<%s>, dmarc=%s, disposition=%s%s%s", q.client_addr,
                 q.sender, check_dmarc_name(res.dmarc), check_disposition_name(res.disposition),
                 res.policy_domain && *res.policy_domain ? ", policy_domain=" : "",
                 res.policy_domain ? res.policy_domain : "");
        reply = check_message_result_encode(&res);
        check_message_result_clear(&res);
        check_message_request_clear(&q);
    } else {
        errno = EPROTO;
        return -1;
    }
    rc = ipc_send(fd, reply, CHECKD_REPLY_MS);
    ipc_msg_free(&reply);
    return rc;
}

static void checkd_serve(int fd)
{
    struct checkd_spf_memo memo = { 0 };
    const char *why = NULL;
    ipc_msg_t *m = NULL;
    int n;

    if (ipc_server_hello(fd, CHECK_PROTO_NAME, CHECK_PROTO_VERSION, checkd_peer_uids, 1,
                         CHECKD_REPLY_MS, &why) < 0) {
        msg_warn("checkd: refusing a client: %s", why ? why : strerror(errno));
        return;
    }
    while ((n = ipc_recv(fd, &m, CHECK_MAX_PAYLOAD, CHECKD_IDLE_MS)) > 0) {
        uint32_t type = m->type;

        if (checkd_request(fd, m, &memo) < 0) {
            msg_warn("checkd: dropping a client after %s: %s", ipc_type_name(type),
                     strerror(errno));
            ipc_msg_free(&m);
            break;
        }
        ipc_msg_free(&m);
    }
    if (n < 0 && errno != ECONNRESET)
        msg_warn("checkd: dropping a client: %s", strerror(errno));
    checkd_memo_clear(&memo);
}

static void checkd_pre_init(void)
{
    static const char *const params[] = {"network_user"};
    struct dns_settings ds;
    const char *why = NULL;

    server_peer_uids(params, 1, checkd_peer_uids);
    /* As root: the trust anchor and the public suffix list are read now;
     * the jail is the DMARC history directory itself (lib/server). */
    conf_dns_settings(&ds);
    if ((checkd_dns = dns_new(&ds, &why)) == NULL)
        msg_fatal("DNS is not usable: %s", why ? why : "unknown error");
    /* The same senders' records over and over: answered from memory,
     * without a round trip through libunbound's thread each. */
    dns_cache_lookups(checkd_dns, CHECKD_DNS_CACHE, CHECKD_DNS_CACHE_TTL);
    if (dmarc_init(conf_str("dmarc_public_suffix_list"), &why) < 0)
        msg_fatal("dmarc_public_suffix_list: %s", why ? why : "cannot be read");
    if ((checkd_spf = spfcheck_new(checkd_dns, conf_str("myhostname"), &why)) == NULL)
        msg_fatal("SPF: %s", why ? why : "libspf2 cannot start");
    if ((checkd_dkim = dkimverify_new(checkd_key_lookup, NULL, &why)) == NULL)
        msg_fatal("DKIM: %s", why);
}

static void checkd_post_init(event_loop_t *loop)
{
    (void)loop;
    check_proto_init();
    checkd_dmarc_dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (checkd_dmarc_dir < 0)
        msg_warn("cannot open the DMARC history directory: %s; DMARC results are not recorded "
                 "for reports", strerror(errno));
    sandbox_enter();
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .user_param = "check_user",
        .no_service_group = 1,
        .chroot = SERVER_CHROOT_DMARC,
        .pre_init = checkd_pre_init,
        .post_init = checkd_post_init,
        .serve = checkd_serve,
    };

    server_main(argc, argv, &opts);
}

/*
 * dkimverify - DKIM verification over libopendkim (see dkimverify.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <dkim.h>

#include "buf.h"
#include "dkimverify.h"
#include "pkeycache.h"
#include "xalloc.h"

#define DKIMVERIFY_CHUNK     65536
#define DKIMVERIFY_KEY_MAX   8192       /* a key record: 4096-bit RSA fits */

struct dkimverify {
    DKIM_LIB            *lib;
    dkimverify_lookup_fn lookup;
    void                *ctx;
};

/* Per message: what the callbacks need.  A key lookup that failed for
 * now is answered "not found" to libopendkim, which would otherwise give
 * up on every signature (DKIM_CBSTAT_TRYAGAIN ends the whole message);
 * the signature is remembered here and reported as temperror. */
struct dkimverify_run {
    dkimverify_t  *v;
    size_t         max_sigs;
    DKIM_SIGINFO **tempfail;
    size_t         ntempfail;
};

static DKIM_CBSTAT dkimverify_key_cb(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
    struct dkimverify_run *run = dkim_get_user_context(dkim);
    const char *domain = (const char *)dkim_sig_getdomain(sig);
    const char *selector = (const char *)dkim_sig_getselector(sig);
    char *name;
    enum dkimverify_key k;

    if (run == NULL || domain == NULL || selector == NULL || buflen == 0)
        return DKIM_CBSTAT_ERROR;
    name = xasprintf("%s._domainkey.%s", selector, domain);
    buf[0] = '\0';
    k = run->v->lookup(run->v->ctx, name, (char *)buf, buflen);
    free(name);
    buf[buflen - 1] = '\0';
    if (k == DKIMVERIFY_KEY_TEMPFAIL) {
        run->tempfail = xreallocarray(run->tempfail, run->ntempfail + 1, sizeof(*run->tempfail));
        run->tempfail[run->ntempfail++] = sig;
    }
    return k == DKIMVERIFY_KEY_OK ? DKIM_CBSTAT_CONTINUE : DKIM_CBSTAT_NOTFOUND;
}

/* Evaluate at most max_sigs signatures: the others are ignored. */
static DKIM_CBSTAT dkimverify_prescreen_cb(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
    struct dkimverify_run *run = dkim_get_user_context(dkim);

    for (int i = 0; run && i < nsigs; i++)
        if ((size_t)i >= run->max_sigs)
            dkim_sig_ignore(sigs[i]);
    return DKIM_CBSTAT_CONTINUE;
}

dkimverify_t *dkimverify_new(dkimverify_lookup_fn lookup, void *ctx, const char **error_r)
{
    dkimverify_t *v = xcalloc(1, sizeof(*v));
    unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
    unsigned int minbits = DKIMVERIFY_MIN_KEY_BITS;

    pkeycache_init();           /* libopendkim's key decodes, cached */
    v->lib = dkim_init(NULL, NULL);
    if (v->lib == NULL) {
        free(v);
        *error_r = "libopendkim cannot start (dkim_init)";
        return NULL;
    }
    v->lookup = lookup;
    v->ctx = ctx;
    if (dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) != DKIM_STAT_OK
        || dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits, sizeof(minbits))
               != DKIM_STAT_OK
        || dkim_set_key_lookup(v->lib, dkimverify_key_cb) != DKIM_STAT_OK
        || dkim_set_prescreen(v->lib, dkimverify_prescreen_cb) != DKIM_STAT_OK) {
        dkim_close(v->lib);
        free(v);
        *error_r = "libopendkim refuses the options";
        return NULL;
    }
    return v;
}

void dkimverify_free(dkimverify_t **vp)
{
    if (*vp == NULL)
        return;
    dkim_close((*vp)->lib);
    free(*vp);
    *vp = NULL;
}

void dkimverify_outcome_clear(struct dkimverify_outcome *out)
{
    for (size_t i = 0; i < out->nsig; i++) {
        free(out->sigs[i].domain);
        free(out->sigs[i].selector);
        free(out->sigs[i].algorithm);
        free(out->sigs[i].b);
        free(out->sigs[i].comment);
    }
    free(out->sigs);
    out->sigs = NULL;
    out->nsig = 0;
}

static struct dkimverify_sig *dkimverify_add(struct dkimverify_outcome *out)
{
    struct dkimverify_sig *s;

    out->sigs = xreallocarray(out->sigs, out->nsig + 1, sizeof(*out->sigs));
    s = &out->sigs[out->nsig++];
    memset(s, 0, sizeof(*s));
    return s;
}

/* The outcome of the whole message when libopendkim gave up on it. */
static void dkimverify_whole(struct dkimverify_outcome *out, DKIM_STAT st, const char *what)
{
    struct dkimverify_sig *s;

    dkimverify_outcome_clear(out);
    s = dkimverify_add(out);
    s->domain = xstrdup("");
    s->selector = xstrdup("");
    s->algorithm = xstrdup("");
    s->b = xstrdup("");
    s->result = st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL
                || st == DKIM_STAT_KEYFAIL || st == DKIM_STAT_CBTRYAGAIN ? "temperror" : "permerror";
    s->comment = xasprintf("%s: %s", what, dkim_getresultstr(st));
}

static const char *dkimverify_alg_name(DKIM_SIGINFO *sig)
{
    dkim_alg_t alg;

    if (dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
        return "";
    switch (alg) {
    case DKIM_SIGN_RSASHA1:        return "rsa-sha1";
    case DKIM_SIGN_RSASHA256:      return "rsa-sha256";
    case DKIM_SIGN_ED25519SHA256:  return "ed25519-sha256";
    default:                       return "";
    }
}

/* One signature's RFC 8601 result and reason. */
static void dkimverify_judge(DKIM *dkim, const struct dkimverify_run *run, DKIM_SIGINFO *sig,
                             struct dkimverify_sig *s)
{
    unsigned int flags = dkim_sig_getflags(sig);
    int err = dkim_sig_geterror(sig);
    ssize_t msglen = -1, canonlen = -1, signlen = -1;
    const char *why;

    for (size_t i = 0; i < run->ntempfail; i++) {
        if (run->tempfail[i] == sig) {
            s->result = "temperror";
            s->comment = xstrdup("key lookup failed for now");
            return;
        }
    }

    if (flags & DKIM_SIGFLAG_IGNORE) {
        s->result = "policy";
        s->comment = xstrdup("not evaluated: too many signatures");
        return;
    }
    if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
        (void)dkim_sig_getcanonlen(dkim, sig, &msglen, &canonlen, &signlen);
        if (signlen >= 0 && msglen > signlen) {
            s->result = "policy";
            s->comment = xasprintf("l=%zd leaves %zd bytes of the body unsigned", signlen,
                                   msglen - signlen);
        } else if (strcmp(s->algorithm, "rsa-sha1") == 0) {
            s->result = "policy";
            s->comment = xstrdup("rsa-sha1 is not accepted (RFC 8301)");
        } else {
            s->result = "pass";
        }
        return;
    }
    why = dkim_sig_geterrorstr(err);
    switch (err) {
    case DKIM_SIGERROR_OK:
    case DKIM_SIGERROR_BADSIG:
        s->result = "fail";
        why = (flags & DKIM_SIGFLAG_PASSED) || dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH
              ? "body hash did not verify" : "signature did not verify";
        break;
    case DKIM_SIGERROR_KEYFAIL:
        s->result = "temperror";
        why = "key lookup failed";
        break;
    case DKIM_SIGERROR_NOKEY:
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_MULTIREPLY:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
    case DKIM_SIGERROR_KEYHASHMISMATCH:
    case DKIM_SIGERROR_NOTEMAILKEY:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_KEYREVOKED:
    case DKIM_SIGERROR_KEYDECODE:
        s->result = "permerror";
        break;
    case DKIM_SIGERROR_KEYTOOSMALL:
        s->result = "policy";
        break;
    default:
        s->result = "neutral";
        break;
    }
    s->comment = xstrdup(why ? why : "unknown error");
}

/* Feed one header field (without its final CRLF) unless it is not one. */
static DKIM_STAT dkimverify_field(DKIM *dkim, buf_t *field)
{
    DKIM_STAT st = DKIM_STAT_OK;

    /* A line without a colon is not a header field; it cannot be signed. */
    if (field->len > 0 && memchr(field->data, ':', field->len) != NULL)
        st = dkim_header(dkim, (u_char *)field->data, field->len);
    buf_reset(field);
    return st;
}

int dkimverify_message(dkimverify_t *v, int fd, uint64_t len, size_t max_sigs,
                       struct dkimverify_outcome *out)
{
    struct dkimverify_run run = { v, max_sigs, NULL, 0 };
    DKIM_SIGINFO **sigs = NULL;
    DKIM_STAT st = DKIM_STAT_OK;
    DKIM *dkim;
    char *chunk = xmalloc(DKIMVERIFY_CHUNK);
    buf_t *line = buf_new(0), *field = buf_new(0);
    uint64_t off = 0;
    bool in_header = true;
    int nsigs = 0, rc = 0;
    ssize_t n;

    memset(out, 0, sizeof(*out));
    dkim = dkim_verify(v->lib, (const u_char *)"checkd", NULL, &st);
    if (dkim == NULL) {
        dkimverify_whole(out, st, "cannot verify");
        goto done;
    }
    dkim_set_user_context(dkim, &run);
    while (off < len && st == DKIM_STAT_OK) {
        size_t want = len - off < DKIMVERIFY_CHUNK ? (size_t)(len - off) : DKIMVERIFY_CHUNK;
        size_t i = 0;

        n = pread(fd, chunk, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            rc = -1;
            goto done;
        }
        off += (uint64_t)n;
        while (in_header && i < (size_t)n && st == DKIM_STAT_OK) {
            /* Header lines, one at a time. */
            char *nl = memchr(chunk + i, '\n', (size_t)n - i);
            size_t take = nl ? (size_t)(nl + 1 - (chunk + i)) : (size_t)n - i;

            buf_append(line, chunk + i, take);
            i += take;
            if (nl == NULL)
                break;
            if (line->len <= 2 && (line->len == 1 || line->data[0] == '\r')) {
                if (field->len)
                    st = dkimverify_field(dkim, field);
                if (st == DKIM_STAT_OK)
                    st = dkim_eoh(dkim);
                in_header = false;
            } else if ((line->data[0] == ' ' || line->data[0] == '\t') && field->len) {
                buf_append(field, "\r\n", 2);
                buf_append(field, line->data, line->len - (line->len >= 2
                           && line->data[line->len - 2] == '\r' ? 2 : 1));
            } else {
                if (field->len)
                    st = dkimverify_field(dkim, field);
                buf_append(field, line->data, line->len - (line->len >= 2
                           && line->data[line->len - 2] == '\r' ? 2 : 1));
            }
            buf_reset(line);
        }
        if (!in_header && st == DKIM_STAT_OK && i < (size_t)n) {
            st = dkim_body(dkim, (u_char *)chunk + i, (size_t)n - i);
        }
    }
    if (in_header && st == DKIM_STAT_OK) {
        /* The message ends inside its header: what there is is the header. */
        if (line->len) {
            buf_append(field, line->data, line->len);
            buf_reset(line);
        }
        if (field->len)
            st = dkimverify_field(dkim, field);
        if (st == DKIM_STAT_OK)
            st = dkim_eoh(dkim);
    }
    if (st == DKIM_STAT_NOSIG)
        goto done;              /* unsigned: nothing to say */
    if (st == DKIM_STAT_OK)
        st = dkim_eom(dkim, NULL);
    if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK || nsigs == 0) {
        if (st != DKIM_STAT_OK && st != DKIM_STAT_NOSIG)
            dkimverify_whole(out, st, "message not verifiable");
        goto done;
    }
    for (int k = 0; k < nsigs; k++) {
        struct dkimverify_sig *s = dkimverify_add(out);
        const char *d = (const char *)dkim_sig_getdomain(sigs[k]);
        const char *sel = (const char *)dkim_sig_getselector(sigs[k]);
        char b[64];
        size_t blen = sizeof(b);

        s->domain = xstrdup(d ? d : "");
        s->selector = xstrdup(sel ? sel : "");
        s->algorithm = xstrdup(dkimverify_alg_name(sigs[k]));
        if (dkim_get_sigsubstring(dkim, sigs[k], b, &blen) == DKIM_STAT_OK && blen < sizeof(b)) {
            b[blen] = '\0';
            s->b = xstrdup(b);
        } else {
            s->b = xstrdup("");
        }
        dkimverify_judge(dkim, &run, sigs[k], s);
    }
done:
    if (dkim)
        dkim_free(dkim);
    free(run.tempfail);
    free(chunk);
    buf_free(&line);
    buf_free(&field);
    return rc;
}

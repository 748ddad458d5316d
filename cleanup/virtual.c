/*
 * virtual - recipient rewriting through virtual_alias_maps; see virtual.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/tree.h>
#include <unistd.h>

#include "addrlist.h"
#include "conf.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "msg.h"
#include "virtual.h"
#include "xalloc.h"

static int virtual_lookup_fd = -1;
static char virtual_text[512];

/* The final addresses seen so far, for the once-each rule in O(log n). */
struct seen {
    RB_ENTRY(seen) tree;
    const char    *address;     /* points into expansion.out */
};

static int seen_cmp(const struct seen *a, const struct seen *b)
{
    return strcasecmp(a->address, b->address);
}

RB_HEAD(seen_tree, seen);
RB_PROTOTYPE(seen_tree, seen, tree, seen_cmp)
RB_GENERATE(seen_tree, seen, tree, seen_cmp)

struct expansion {
    const struct cleanup_rcpt *from;    /* the recipient being expanded */
    struct cleanup_rcpt *out;           /* the final addresses */
    size_t nout;
    size_t base;                        /* nout when this recipient started */
    const char **chain;                 /* the aliases on the way here */
    struct seen_tree seen;
    long recursion_limit, expansion_limit;
    const char *dsn;
    int code;                           /* 0 while all is well */
};

static int fail(struct expansion *x, int code, const char *dsn, const char *fmt, const char *arg)
{
    x->code = code;
    x->dsn = dsn;
    snprintf(virtual_text, sizeof(virtual_text), fmt, arg);
    return -1;
}

/* lookupd's answer, reconnecting once. */
static int ask(const char *address, char **value)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *why = NULL;
        int rc;

        if (virtual_lookup_fd < 0
            && (virtual_lookup_fd = ipc_client_open(LOOKUP_SOCKET, LOOKUP_PROTO_NAME,
                                                    LOOKUP_PROTO_VERSION, LOOKUP_TIMEOUT_MS,
                                                    &why)) < 0) {
            msg_warn("cannot reach lookupd (%s): %s", LOOKUP_SOCKET, why ? why : strerror(errno));
            return LOOKUP_TEMPFAIL;
        }
        if ((rc = lookup_virtual(virtual_lookup_fd, address, value, LOOKUP_TIMEOUT_MS)) >= 0)
            return rc;
        close(virtual_lookup_fd);
        virtual_lookup_fd = -1;
    }
    msg_warn("lost the connection to lookupd: %s", strerror(errno));
    return LOOKUP_TEMPFAIL;
}

static int add_final(struct expansion *x, const char *address)
{
    struct seen key = {.address = address}, *s;

    if (RB_FIND(seen_tree, &x->seen, &key))
        return 0;
    if ((long)(x->nout - x->base) >= x->expansion_limit)
        return fail(x, 554, "5.4.6", "<%s>: virtual alias expansion limit exceeded",
                    x->from->address);
    x->out = xreallocarray(x->out, x->nout + 1, sizeof(*x->out));
    x->out[x->nout].address = xstrdup(address);
    x->out[x->nout].orig = xstrdup(x->from->orig[0] ? x->from->orig : x->from->address);
    x->out[x->nout].orcpt = xstrdup(x->from->orcpt);
    x->out[x->nout].notify = x->from->notify;
    s = xcalloc(1, sizeof(*s));
    s->address = x->out[x->nout].address;
    RB_INSERT(seen_tree, &x->seen, s);
    x->nout++;
    return 0;
}

static int expand(struct expansion *x, const char *address, long depth)
{
    struct addrlist targets;
    const char *why = NULL;
    char *value = NULL;
    int rc;

    rc = ask(address, &value);
    if (rc == LOOKUP_NOTFOUND)
        return add_final(x, address);
    if (rc != LOOKUP_OK)
        return fail(x, 451, "4.3.0", "<%s>: Temporary lookup failure", address);
    if (addrlist_parse(value, strlen(value), &targets, &why) < 0) {
        msg_warn("virtual_alias_maps: the entry for %s does not parse (%s): %s", address, why,
                 value);
        free(value);
        return fail(x, 451, "4.3.0", "<%s>: Temporary lookup failure", address);
    }
    free(value);
    x->chain[depth] = address;
    rc = 0;
    for (size_t i = 0; i < targets.n && rc == 0; i++) {
        char *t = strchr(targets.addrs[i], '@') ? xstrdup(targets.addrs[i])
                  : xasprintf("%s@%s", targets.addrs[i], conf_str("myorigin"));
        bool loop = false;

        for (long d = 0; d <= depth && !loop; d++)
            loop = strcasecmp(x->chain[d], t) == 0;
        if (strcasecmp(t, address) == 0)
            rc = add_final(x, t);           /* "a -> a, b": keep a copy */
        else if (loop)
            rc = fail(x, 554, "5.4.6", "<%s>: virtual alias loop", x->from->address);
        else if (depth + 1 >= x->recursion_limit)
            rc = fail(x, 554, "5.4.6", "<%s>: virtual alias recursion limit exceeded",
                      x->from->address);
        else
            rc = expand(x, t, depth + 1);
        free(t);
    }
    addrlist_free(&targets);
    return rc;
}

int virtual_expand(struct cleanup_request *r, const char **dsn, const char **text)
{
    struct expansion x = {
        .recursion_limit = conf_int("virtual_alias_recursion_limit"),
        .expansion_limit = conf_int("virtual_alias_expansion_limit"),
    };
    struct seen *s, *next;
    size_t i;

    RB_INIT(&x.seen);
    x.chain = xcalloc((size_t)x.recursion_limit + 1, sizeof(*x.chain));
    for (i = 0; i < r->nrcpt && x.code == 0; i++) {
        x.from = &r->rcpts[i];
        x.base = x.nout;
        expand(&x, r->rcpts[i].address, 0);
    }
    free(x.chain);
    RB_FOREACH_SAFE(s, seen_tree, &x.seen, next) {
        RB_REMOVE(seen_tree, &x.seen, s);
        free(s);
    }
    if (x.code != 0) {
        for (i = 0; i < x.nout; i++) {
            free(x.out[i].address);
            free(x.out[i].orig);
            free(x.out[i].orcpt);
        }
        free(x.out);
        *dsn = x.dsn;
        *text = virtual_text;
        return x.code;
    }
    for (i = 0; i < r->nrcpt; i++) {
        free(r->rcpts[i].address);
        free(r->rcpts[i].orig);
        free(r->rcpts[i].orcpt);
    }
    free(r->rcpts);
    r->rcpts = x.out;
    r->nrcpt = x.nout;
    return 0;
}

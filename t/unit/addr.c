/*
 * t/unit/addr.c - unit tests for lib/addr.c: splitting at the last '@',
 * mydestination membership (case, trailing dot, a changed value seen at
 * once), postmaster, address extensions with one or several delimiter
 * characters, sender ownership, and the key under which local deliveries
 * to one recipient are counted (the same for every domain of ours, every
 * extension and every case).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static buf_t *errs;

static void set(const char *name, const char *value)
{
    buf_reset(errs);
    if (conf_set(name, value, "test", errs) < 0)
        diag("conf_set %s: %s", name, buf_cstr(errs));
}

static void split_is(const char *addr, const char *want_local, const char *want_domain)
{
    char *local, *domain;

    addr_split(addr, &local, &domain);
    is_str(local, want_local, "split %s: local part", addr);
    is_str(domain, want_domain, "split %s: domain", addr);
    free(local);
    free(domain);
}

static void unext_is(const char *local, const char *want)
{
    char *got = addr_unextended(local);

    if (want == NULL)
        ok(got == NULL, "%s has no extension", local);
    else
        is_str(got ? got : "(null)", want, "%s without its extension", local);
    free(got);
}

static void key_is(const char *addr, const char *want)
{
    char *got = addr_local_recipient_key(addr);

    is_str(got, want, "recipient key of %s", addr);
    free(got);
}

int main(void)
{
    char dir[] = "/tmp/posthorn-unit-addr-XXXXXX";
    char *path;
    int via;

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    path = xasprintf("%s/main.conf", dir);
    write_text(path, "myhostname = mail.example.test\nmydomain = example.test\n"
                     "mydestination = $myhostname, localhost, $mydomain\n"
                     "recipient_delimiter = +\n");
    errs = buf_new(0);
    if (conf_load(dir, errs) < 0) {
        printf("Bail out! conf_load: %s\n", buf_cstr(errs));
        return 1;
    }

    split_is("joe@example.test", "joe", "example.test");
    split_is("\"a@b\"@example.test", "\"a@b\"", "example.test");
    split_is("postmaster", "postmaster", "");

    ok(addr_domain_is_local("Example.TEST"), "mydestination: case does not matter");
    ok(addr_domain_is_local("mail.example.test."), "mydestination: a trailing dot does not");
    ok(addr_domain_is_local(""), "no domain is local");
    ok(!addr_domain_is_local("example.org"), "another domain is not local");
    ok(!addr_domain_is_local("sub.example.test"), "nor is a subdomain");
    ok(addr_is_local("joe@localhost"), "joe@localhost is local");
    set("mydestination", "example.org");
    ok(addr_domain_is_local("example.org") && !addr_domain_is_local("example.test"),
       "a changed mydestination is seen at once");
    set("mydestination", "$myhostname, localhost, $mydomain");

    ok(addr_is_postmaster("PostMaster"), "postmaster in any case");
    ok(!addr_is_postmaster("postmasters"), "postmasters is somebody else");

    unext_is("joe+list", "joe");
    unext_is("joe", NULL);
    unext_is("+joe", NULL);
    unext_is("joe+a+b", "joe");
    set("recipient_delimiter", "+-");
    unext_is("joe-list", "joe");
    unext_is("joe+list", "joe");
    set("recipient_delimiter", "");
    unext_is("joe+list", NULL);
    set("recipient_delimiter", "+");

    ok(addr_sender_owned("", "joe", &via), "the null sender is anyone's");
    ok(addr_sender_owned("Joe@example.test", "joe", &via) && !via, "joe owns Joe@example.test");
    ok(addr_sender_owned("joe+x@localhost", "joe", &via) && via, "and joe+x@localhost (via "
       "the extension)");
    ok(!addr_sender_owned("joe@example.org", "joe", &via), "not joe@ another domain");
    ok(!addr_sender_owned("jim@example.test", "joe", &via), "not jim's address");

    key_is("joe@mail.example.test", "joe");
    key_is("Joe+List@Example.TEST", "joe");
    key_is("joe+x@localhost", "joe");
    key_is("joe", "joe");
    key_is("+joe@example.test", "+joe");
    set("recipient_delimiter", "");
    key_is("joe+list@example.test", "joe+list");

    buf_free(&errs);
    unlink(path);
    rmdir(dir);
    free(path);
    return done_testing();
}

/*
 * t/unit/dsn.c - unit tests for lib/dsn.c's report builder (dsn_build),
 * on a real queue file: the "delayed" warning (Postfix's subject and
 * warning text with delay_warning_time and maximal_queue_lifetime spelled
 * out, Action: delayed, the 4.x.y status, 4.0.0 for a code of another
 * class, the remote reply as Diagnostic-Code with Remote-MTA,
 * Will-Retry-Until = arrival + maximal_queue_lifetime, the header only);
 * the success report with "relayed" and "delivered" recipients side by
 * side ("relayed to non-DSN-aware mailer" in the text); the failure
 * report unchanged (Action: failed, the whole message, no
 * Will-Retry-Until).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "dsn.h"
#include "queue.h"
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

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static char *report(const char *id, const queue_file_t *q, const struct dsn_rcpt *r, size_t n,
                    enum dsn_kind kind, time_t now)
{
    buf_t *b = buf_new(0);
    char *s;

    dsn_build(b, id, q, r, n, kind, now);
    s = xstrdup(buf_cstr(b));
    buf_free(&b);
    return s;
}

int main(void)
{
    char dir[] = "/tmp/posthorn-unit-dsn-XXXXXX", id[QUEUE_ID_SIZE], until[64], want[160];
    static const char content[] = "From: <alice@example.org>\r\nSubject: the original\r\n\r\n"
                                  "the secret body\r\n";
    queue_env_t env = {.sender = "alice@example.org", .envid = "env-7"};
    queue_rcpt_spec_t r1 = {.address = "bob@remote.test", .orcpt = "rfc822;Bob@remote.test"};
    queue_rcpt_spec_t r2 = {.address = "carol@remote.test"};
    queue_rcpt_spec_t r3 = {.address = "dave@remote.test"};
    queue_writer_t *w;
    queue_file_t *q = NULL;
    char *path, *s, *why = NULL;
    time_t now = 1800000000;
    struct tm tm;
    int qdir, fd;

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    path = xasprintf("%s/main.conf", dir);
    write_text(path, "myhostname = mx.example.org\ndelay_warning_time = 4h\n"
                     "maximal_queue_lifetime = 5d\n");
    errs = buf_new(0);
    if (conf_load(dir, errs) < 0) {
        printf("Bail out! conf_load: %s\n", buf_cstr(errs));
        return 1;
    }
    qdir = open(dir, O_RDONLY | O_DIRECTORY);
    for (int i = 0; queue_dirs[i]; i++)
        mkdirat(qdir, queue_dirs[i], 0700);
    if (queue_writer_open(qdir, &w) < 0) {
        printf("Bail out! queue_writer_open\n");
        return 1;
    }
    snprintf(id, sizeof(id), "%s", queue_writer_id(w));
    queue_writer_envelope(w, &env);
    queue_writer_rcpt(w, &r1);
    queue_writer_rcpt(w, &r2);
    queue_writer_rcpt(w, &r3);
    queue_writer_content(w, content, strlen(content));
    if (queue_writer_commit(&w) < 0
        || (fd = queue_open(qdir, QUEUE_DIR_INCOMING, id, O_RDONLY, NULL)) < 0
        || queue_read(fd, &q, &why) < 0) {
        printf("Bail out! cannot make the queue file: %s\n", why ? why : "?");
        return 1;
    }
    localtime_r(&(time_t){(time_t)q->arrival_sec + 5 * 86400}, &tm);
    strftime(until, sizeof(until), "%a, %d %b %Y %H:%M:%S %z", &tm);

    /* The delay warning. */
    {
        struct dsn_rcpt d[3] = {
            {.rcpt = &q->rcpts[0], .dsn = "4.7.1",
             .text = "host mx.remote.test[192.0.2.7] said: 451 4.7.1 try later (in reply to "
                     "RCPT TO command)",
             .relay = "mx.remote.test[192.0.2.7]:25", .diag_type = "smtp",
             .diag_text = "451 4.7.1 try later"},
            {.rcpt = &q->rcpts[1], .dsn = NULL, .text = "connect to x: Connection refused"},
            {.rcpt = &q->rcpts[2], .dsn = "5.1.1", .text = "cleanup was down"},
        };

        s = report(id, q, d, 3, DSN_DELAYED, now);
        like(s, "\r\nSubject: Delayed Mail (still being retried)\r\n", "delayed: the subject");
        like(s, "\r\nTo: <alice@example.org>\r\n", "to the sender");
        like(s, "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
             "Postfix's warning box");
        like(s, "could not be delivered for more than 4 hour(s).\r\n"
                "It will be retried until it is 5 day(s) old.",
             "delay_warning_time and maximal_queue_lifetime spelled out");
        is_int(count(s, "Action: delayed\r\n"), 3, "Action: delayed for each recipient");
        ok(strstr(s, "Action: failed") == NULL && strstr(s, "Action: delivered") == NULL,
           "and no other action");
        like(s, "Final-Recipient: rfc822; bob@remote.test\r\nAction: delayed\r\nStatus: 4.7.1\r\n"
                "Remote-MTA: dns; mx.remote.test\r\nDiagnostic-Code: smtp; 451 4.7.1 try later\r\n",
             "the deferral's status, the remote MTA and its reply as Diagnostic-Code");
        like(s, "Original-Recipient: rfc822;Bob@remote.test\r\n", "the ORCPT");
        like(s, "Final-Recipient: rfc822; carol@remote.test\r\nAction: delayed\r\n"
                "Status: 4.0.0\r\nDiagnostic-Code: X-Posthorn; connect to x: Connection refused",
             "no code: 4.0.0, our own text as the diagnostic");
        like(s, "Final-Recipient: rfc822; dave@remote.test\r\nAction: delayed\r\nStatus: 4.0.0\r\n",
             "a code of another class is not passed as a delay status");
        snprintf(want, sizeof(want), "Will-Retry-Until: %s\r\n", until);
        is_int(count(s, want), 3, "Will-Retry-Until = arrival + maximal_queue_lifetime (%s)",
               until);
        like(s, "Original-Envelope-Id: env-7\r\n", "the ENVID");
        like(s, "Content-Type: text/rfc822-headers\r\n", "the original's header only");
        like(s, "Subject: the original\r\n", "  which is there");
        ok(strstr(s, "the secret body") == NULL, "  without the body");
        like(s, "<bob@remote.test>: host mx.remote.test[192.0.2.7] said: 451 4.7.1 try later",
             "the text part has each reason");
        free(s);

        set("delay_warning_time", "90s");
        set("maximal_queue_lifetime", "2m");
        s = report(id, q, d, 1, DSN_DELAYED, now);
        like(s, "for more than 90 second(s).\r\nIt will be retried until it is 2 minute(s) old.",
             "other units: seconds, minutes");
        free(s);
        set("delay_warning_time", "4h");
        set("maximal_queue_lifetime", "5d");
    }

    /* Success: relayed and delivered side by side. */
    {
        struct dsn_rcpt d[2] = {
            {.rcpt = &q->rcpts[0], .dsn = "2.0.0", .text = "250 2.0.0 Ok: queued as X1",
             .relay = "mx.remote.test[192.0.2.7]:25", .diag_type = "smtp",
             .diag_text = "250 2.0.0 Ok: queued as X1", .relayed = 1},
            {.rcpt = &q->rcpts[1], .dsn = "2.0.0", .text = "delivered to maildir",
             .relay = "local"},
        };

        s = report(id, q, d, 2, DSN_SUCCESS, now);
        like(s, "\r\nSubject: Successful Mail Delivery Report\r\n", "success: the subject");
        like(s, "Final-Recipient: rfc822; bob@remote.test\r\nAction: relayed\r\nStatus: 2.0.0\r\n"
                "Remote-MTA: dns; mx.remote.test\r\nDiagnostic-Code: smtp; 250 2.0.0 Ok",
             "Action: relayed for the one handed to a server without DSN");
        like(s, "Final-Recipient: rfc822; carol@remote.test\r\nAction: delivered\r\n",
             "Action: delivered for the local one");
        like(s, "<bob@remote.test>: delivery via mx.remote.test[192.0.2.7]:25: 250 2.0.0 Ok: "
                "queued as X1 (relayed to non-DSN-aware mailer)", "the text says relayed");
        like(s, "Otherwise you may still receive\r\nnotifications of mail delivery errors",
             "and that more may come");
        ok(strstr(s, "Will-Retry-Until") == NULL && strstr(s, "the secret body") == NULL,
           "no Will-Retry-Until, no body");
        free(s);
    }

    /* Failure: as before. */
    {
        struct dsn_rcpt d[1] = {
            {.rcpt = &q->rcpts[2], .dsn = "5.1.1", .text = "unknown user",
             .relay = "mx.remote.test[192.0.2.7]:25", .diag_type = "smtp",
             .diag_text = "550 5.1.1 unknown user"},
        };

        s = report(id, q, d, 1, DSN_FAILED, now);
        like(s, "\r\nSubject: Undelivered Mail Returned to Sender\r\n", "failure: the subject");
        like(s, "Action: failed\r\nStatus: 5.1.1\r\n", "Action: failed, the 5.x.y status");
        like(s, "Content-Type: message/rfc822\r\n", "the whole message (RET not HDRS)");
        like(s, "the secret body", "  body and all");
        ok(strstr(s, "Will-Retry-Until") == NULL, "no Will-Retry-Until");
        free(s);
    }

    queue_file_free(&q);
    close(fd);
    {
        char *cmd = xasprintf("rm -rf '%s'", dir);

        if (system(cmd) != 0)
            diag("cannot remove %s", dir);
        free(cmd);
    }
    free(path);
    buf_free(&errs);
    close(qdir);
    return done_testing();
}

/*
 * sendmail.h - what the parts of the sendmail program share: the caller's
 * identity and the options, compose.c (reading the message), submit.c
 * (writing it into maildrop/) and smtp.c (-bs).
 */
#ifndef POSTHORN_SENDMAIL_H
#define POSTHORN_SENDMAIL_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "cleanup_proto.h"
#include "queue.h"

/* sysexits(3), as sendmail's callers (cron, mail(1), scripts) read them. */
#define EX_USAGE       64
#define EX_DATAERR     65
#define EX_NOUSER      67
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE    70
#define EX_OSERR       71
#define EX_CANTCREAT   73
#define EX_IOERR       74
#define EX_TEMPFAIL    75
#define EX_NOPERM      77
#define EX_CONFIG      78

struct sendmail_opts {
    bool        extract;        /* -t */
    bool        dot_ends;       /* no -i / -oi: a line "." ends the input */
    const char *sender;         /* -f / -r, NULL = the caller */
    const char *full_name;      /* -F, NULL = from the passwd entry */
    const char *envid;          /* -V */
    int         ret;            /* -R: QUEUE_RET_* */
    unsigned    notify;         /* -N: QUEUE_NOTIFY_* */
    int         verbose;        /* -v */
};

struct sendmail_user {
    uid_t uid;
    char *login;
    char *gecos_name;           /* "" if none */
    bool  trusted;              /* root: may use any sender */
};

extern struct sendmail_user sm_user;
extern struct sendmail_opts sm_opts;

/* Print "sendmail: fatal: ..." on stderr, log it, exit with code. */
_Noreturn void sm_fatal(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The envelope sender for address (NULL: the caller's own), checked
 * against the caller's identity: NULL and *why when an untrusted user
 * names someone else.  Caller frees. */
char *sm_sender(const char *address, const char **why);
/* user@myorigin for a bare "user"; a fresh copy otherwise. */
char *sm_qualify(const char *address);
/* Add each address of an address list to r (qualified, once each);
 * -1 with *why if the list does not parse. */
int sm_add_rcpts(struct cleanup_request *r, const char *list, const char **why);

/* compose.c: read the message from in into a memfd (CRLF line ends, the
 * header completed, Bcc removed; -t adds the header's recipients to r). */
void sm_compose(FILE *in, struct cleanup_request *r);

/* submit.c: write r into maildrop/ with the caller's attributes, wake
 * pickup; 0 with id, or -1 with errno (EINVAL: r breaks cleanup's rules,
 * *why says which). */
int sm_submit(struct cleanup_request *r, char id[QUEUE_ID_SIZE], const char **why);
/* The setgid group: gain it for spool access, and drop it again. */
void sm_privs_gain(void);
void sm_privs_shed(void);
/* Once, first thing: note the setgid group and drop it at exit for good. */
void sm_privs_init_exit(void);

/* mailq.c: -bp for anybody but root, through showq(8). */
_Noreturn void sm_mailq(void);

/* smtp.c: -bs, an SMTP session on stdin/stdout. */
_Noreturn void sm_smtp_session(void);

#endif

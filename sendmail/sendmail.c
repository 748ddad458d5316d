/*
 * sendmail - local mail submission, the sendmail(1) interface that cron,
 * mail(1), mutt, git send-email and scripts call; installed also as mailq
 * (= -bp) and newaliases (= -bi).
 *
 * Runs as its caller, setgid setgid_group (posthorn-drop), never setuid.
 * The message is read from stdin (compose.c), written into maildrop/ as
 * the caller's own file (submit.c) and pickup(8) hands it to cleanup, so
 * mail submitted while Posthorn is stopped waits in maildrop/ and goes out
 * after start.  sendmail exits 0 only after the file is durable.
 *
 * Modes: -bm (the default: a message on stdin, recipients from the
 * arguments and with -t from the header), -bs (SMTP on stdin/stdout,
 * smtp.c), -bp (mailq: the queue, via showq(8), or read directly by
 * root), -bi (newaliases: mailctl newaliases), -q (root: mailctl queue
 * flush).
 *
 * Who may send as whom: root may give any envelope sender (-f); any other
 * user only their own address (login@myorigin or login@ a mydestination
 * domain, with or without a +extension) or the null sender <>.
 *
 * Configuration: -C DIR, else $POSTHORN_CONFIG, else the built-in
 * directory, as every Posthorn program.  For a caller other than root the
 * directory and its main.conf must be root's and writable by nobody else,
 * so that a user cannot steer the setgid program with a configuration of
 * their own; for root they must pass lib/conftrust (so must every
 * directory above them and every symbolic link on the way), so that
 * nobody else can steer root's sendmail.
 *
 * Failure modes: every failure is a line "sendmail: fatal: ..." on stderr,
 * the same in syslog, and a sysexits(3) exit code: 64 usage, 65 bad
 * message, 67 unknown caller, 69 service unavailable, 71 OS error, 73 the
 * maildrop file cannot be created, 74 read error, 75 temporary failure, 77
 * sender not allowed, 78 configuration error.  Nothing is queued then.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "addrlist.h"
#include "buf.h"
#include "conf.h"
#include "conftrust.h"
#include "msg.h"
#include "sendmail.h"
#include "xalloc.h"

struct sendmail_user sm_user;
struct sendmail_opts sm_opts = {.dot_ends = true};
static const char *sm_progname = "sendmail";
static const char *sm_confdir;

/* "PROG: LEVEL: text" on stderr; the fatal ones also in syslog. */
static void sm_report(const char *level, const char *fmt, va_list ap)
{
    char *text;

    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    fprintf(stderr, "%s: %s: %s\n", sm_progname, level, text ? text : fmt);
    if (strcmp(level, "fatal") == 0)
        msg_warn("fatal: %s", text ? text : fmt);
    free(text);
}

void sm_fatal(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sm_report("fatal", fmt, ap);
    va_end(ap);
    exit(code);
}

void sm_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sm_report("warning", fmt, ap);
    va_end(ap);
}

char *sm_qualify(const char *address)
{
    if (*address == '\0' || strchr(address, '@'))
        return xstrdup(address);
    return xasprintf("%s@%s", address, conf_str("myorigin"));
}

char *sm_sender(const char *address, const char **why)
{
    char *sender;
    int own, via_extension;

    if (address == NULL)
        return sm_qualify(sm_user.login);
    if (strcmp(address, "<>") == 0)
        address = "";
    /* "-f <user@host>" as some scripts write it. */
    if (address[0] == '<' && address[strlen(address) - 1] == '>') {
        char *bare = xstrndup(address + 1, strlen(address) - 2);

        sender = sm_sender(bare, why);
        free(bare);
        return sender;
    }
    sender = sm_qualify(address);
    if (sm_user.trusted)
        return sender;
    own = addr_sender_owned(sender, sm_user.login, &via_extension);
    if (own && via_extension) {
        /* "bob-smith" with recipient_delimiter "-" is bob's only if no
         * account has that name. */
        char *local, *lower;
        struct passwd *pw;

        addr_split(sender, &local, NULL);
        lower = addr_lowercase(local);
        pw = getpwnam(lower);
        own = pw == NULL || pw->pw_uid == sm_user.uid;
        free(local);
        free(lower);
    }
    if (!own) {
        *why = "only root may send as another user";
        free(sender);
        return NULL;
    }
    return sender;
}

int sm_add_rcpts(struct cleanup_request *r, const char *list, const char **why)
{
    struct addrlist al;

    if (addrlist_parse(list, strlen(list), &al, why) < 0)
        return -1;
    for (size_t i = 0; i < al.n; i++) {
        const char *at = strrchr(al.addrs[i], '@');
        char *a;
        bool dup = false;

        if (al.addrs[i][0] == '@' || (at && at[1] == '\0') || strlen(al.addrs[i]) > 998) {
            *why = "an address needs a local part and a domain, and at most 998 characters";
            addrlist_free(&al);
            return -1;
        }
        a = sm_qualify(al.addrs[i]);

        for (size_t j = 0; j < r->nrcpt && !dup; j++)
            dup = strcmp(r->rcpts[j].address, a) == 0;
        if (!dup)
            cleanup_request_rcpt(r, a, a, "", sm_opts.notify);
        free(a);
    }
    addrlist_free(&al);
    return 0;
}

/* The configuration may steer a setgid program: for anybody but root it
 * must be root's.  The directory is opened once and checked through its
 * descriptor, and the configuration is then read through that same
 * descriptor (/proc/self/fd/N), so that no symbolic link swapped in
 * between the check and the read can substitute another one.  Returns
 * the path to load from (dir itself for root). */
static char *config_trusted_path(const char *dir)
{
    struct stat st;
    int fd;

    if (sm_user.uid == 0) {
        /* Root (cron's mail) reads it only if nobody else controls it,
         * nor anything above it (lib/conftrust). */
        buf_t *errs = buf_new(0);

        if (conftrust_main(dir, errs) < 0) {
            buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
            sm_fatal(EX_CONFIG, "%s: a configuration root does not control alone is not used",
                     buf_cstr(errs));
        }
        buf_free(&errs);
        return xstrdup(dir);
    }
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
        sm_fatal(EX_CONFIG, "%s: %s", dir, strerror(errno));
    if (st.st_uid != 0 || (st.st_mode & 022))
        sm_fatal(EX_CONFIG, "%s: not owned by root or writable by others: a configuration "
                 "the administrator does not control is not used", dir);
    if (fstatat(fd, "main.conf", &st, AT_SYMLINK_NOFOLLOW) < 0)
        sm_fatal(EX_CONFIG, "%s/main.conf: %s", dir, strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
        sm_fatal(EX_CONFIG, "%s/main.conf: not a regular file owned by root and writable by "
                 "root only: a configuration the administrator does not control is not used",
                 dir);
    return xasprintf("/proc/self/fd/%d", fd);
}

static void load_config(void)
{
    buf_t *errs = buf_new(0);
    char *path;

    if (sm_confdir == NULL || *sm_confdir == '\0')
        sm_confdir = getenv("POSTHORN_CONFIG");
    if (sm_confdir == NULL || *sm_confdir == '\0')
        sm_confdir = DEF_CONFIG_DIRECTORY;
    path = config_trusted_path(sm_confdir);
    if (conf_load(path, errs) < 0) {
        /* Name the file as the caller knows it, not /proc/self/fd/N. */
        const char *e = buf_cstr(errs), *hit;
        size_t n = strlen(path);

        while ((hit = strstr(e, path)) != NULL) {
            fwrite(e, 1, (size_t)(hit - e), stderr);
            fputs(sm_confdir, stderr);
            e = hit + n;
        }
        fputs(e, stderr);
        sm_fatal(EX_CONFIG, "the configuration in %s has errors", sm_confdir);
    }
    buf_free(&errs);
    free(path);
}

static void who_am_i(void)
{
    struct passwd *pw;

    sm_user.uid = getuid();
    if ((pw = getpwuid(sm_user.uid)) == NULL)
        sm_fatal(EX_NOUSER, "no passwd entry for user ID %u", (unsigned)sm_user.uid);
    sm_user.login = xstrdup(pw->pw_name);
    sm_user.gecos_name = xstrndup(pw->pw_gecos ? pw->pw_gecos : "",
                                  pw->pw_gecos ? strcspn(pw->pw_gecos, ",") : 0);
    sm_user.trusted = sm_user.uid == 0;
}

/* Run "mailctl -c CONFDIR args..." from our own directory, without the
 * setgid group. */
static _Noreturn void exec_mailctl(const char *const *args)
{
    char self[PATH_MAX], *slash, *path;
    const char *argv[8];
    ssize_t n;
    int i = 0;

    if (setresgid(getgid(), getgid(), getgid()) < 0)
        sm_fatal(EX_OSERR, "setresgid: %s", strerror(errno));
    if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0)
        sm_fatal(EX_OSERR, "readlink /proc/self/exe: %s", strerror(errno));
    self[n] = '\0';
    if ((slash = strrchr(self, '/')) != NULL)
        *slash = '\0';
    path = xasprintf("%s/mailctl", self);
    argv[i++] = "mailctl";
    argv[i++] = "-c";
    argv[i++] = sm_confdir;
    while (*args && i < 7)
        argv[i++] = *args++;
    argv[i] = NULL;
    execv(path, (char *const *)argv);
    sm_fatal(EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}

static void parse_notify(const char *arg)
{
    char *copy = xstrdup(arg), *save = NULL;

    sm_opts.notify = 0;
    for (char *w = strtok_r(copy, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
        if (strcasecmp(w, "never") == 0)
            sm_opts.notify |= QUEUE_NOTIFY_NEVER;
        else if (strcasecmp(w, "success") == 0)
            sm_opts.notify |= QUEUE_NOTIFY_SUCCESS;
        else if (strcasecmp(w, "failure") == 0)
            sm_opts.notify |= QUEUE_NOTIFY_FAILURE;
        else if (strcasecmp(w, "delay") == 0)
            sm_opts.notify |= QUEUE_NOTIFY_DELAY;
        else
            sm_fatal(EX_USAGE, "-N %s: expected never or a list of success, failure, delay",
                     arg);
    }
    if ((sm_opts.notify & QUEUE_NOTIFY_NEVER) && sm_opts.notify != QUEUE_NOTIFY_NEVER)
        sm_fatal(EX_USAGE, "-N %s: never excludes the others", arg);
    free(copy);
}

/* -o and -e options: only -oi changes anything; error modes are accepted
 * (errors always go to stderr and the exit code). */
static void option_o(const char *arg)
{
    if (strcmp(arg, "i") == 0)
        sm_opts.dot_ends = false;
    else if (arg[0] == 'e' || arg[0] == 'm' || arg[0] == 'd' || arg[0] == 'Q'
             || arg[0] == 'A' || arg[0] == 'L')
        ;   /* -oem -oep -om -odb -odi ...: nothing to do */
    else
        sm_warn("ignoring the sendmail option -o%s", arg);
}

int main(int argc, char **argv)
{
    enum { MODE_MAIL, MODE_SMTP, MODE_MAILQ, MODE_ALIASES, MODE_FLUSH } mode = MODE_MAIL;
    struct cleanup_request r;
    char id[QUEUE_ID_SIZE];
    const char *why = NULL, *base;
    int ch;

    base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (strcmp(base, "mailq") == 0)
        mode = MODE_MAILQ;
    else if (strcmp(base, "newaliases") == 0)
        mode = MODE_ALIASES;
    sm_progname = mode == MODE_MAILQ ? "mailq" : mode == MODE_ALIASES ? "newaliases" : "sendmail";
    msg_init(sm_progname, MSG_SYSLOG);
    sm_privs_init_exit();
    sm_privs_shed();        /* the setgid group only where it is needed */
    who_am_i();

    opterr = 0;
    while ((ch = getopt(argc, argv, "+A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q::r:tvx")) != -1) {
        switch (ch) {
        case 'b':
            if (strcmp(optarg, "m") == 0)
                mode = MODE_MAIL;
            else if (strcmp(optarg, "s") == 0)
                mode = MODE_SMTP;
            else if (strcmp(optarg, "p") == 0)
                mode = MODE_MAILQ;
            else if (strcmp(optarg, "i") == 0)
                mode = MODE_ALIASES;
            else if (strcmp(optarg, "d") == 0 || strcmp(optarg, "D") == 0)
                sm_fatal(EX_USAGE, "-b%s: Posthorn's daemons are started with mailctl start",
                         optarg);
            else
                sm_fatal(EX_USAGE, "-b%s is not supported", optarg);
            break;
        case 'I': mode = MODE_ALIASES; break;
        case 'q':
            if (optarg)
                sm_fatal(EX_USAGE, "-q%s: Posthorn's qmgr runs the queue itself; -q alone "
                         "retries deferred mail now", optarg);
            mode = MODE_FLUSH;
            break;
        case 'C': sm_confdir = optarg; break;
        case 'f': case 'r': sm_opts.sender = optarg; break;
        case 'F': sm_opts.full_name = optarg; break;
        case 't': sm_opts.extract = true; break;
        case 'i': sm_opts.dot_ends = false; break;
        case 'o': option_o(optarg); break;
        case 'e': break;            /* error mode: see option_o */
        case 'v': sm_opts.verbose++; break;
        case 'N': parse_notify(optarg); break;
        case 'R':
            if (strcasecmp(optarg, "full") == 0)
                sm_opts.ret = QUEUE_RET_FULL;
            else if (strcasecmp(optarg, "hdrs") == 0)
                sm_opts.ret = QUEUE_RET_HDRS;
            else
                sm_fatal(EX_USAGE, "-R %s: expected full or hdrs", optarg);
            break;
        case 'V': sm_opts.envid = optarg; break;
        case 'n': sm_warn("-n (no aliasing) is not supported; aliases apply"); break;
        case 'X': sm_warn("-X (traffic log) is not supported; see the mail log"); break;
        case 'B': case 'G': case 'h': case 'L': case 'm': case 'O': case 'p': case 'U':
        case 'A': case 'c': case 'x':
            break;                  /* accepted and ignored, as by Postfix */
        default:
            /* As sendmail does: an unknown option is no reason to lose
             * the message. */
            sm_warn("ignoring unknown option -%c", optopt ? optopt : '?');
            break;
        }
    }
    load_config();
    if (sm_opts.verbose)
        msg_verbose = sm_opts.verbose;

    switch (mode) {
    case MODE_ALIASES:
        exec_mailctl((const char *const[]){"newaliases", NULL});
    case MODE_FLUSH:
        if (!sm_user.trusted)
            sm_fatal(EX_NOPERM, "only root may flush the queue (mailctl queue flush)");
        exec_mailctl((const char *const[]){"queue", "flush", NULL});
    case MODE_MAILQ:
        if (sm_user.trusted)
            exec_mailctl((const char *const[]){"queue", "list", NULL});
        sm_mailq();
    case MODE_SMTP:
        sm_smtp_session();
    case MODE_MAIL:
        break;
    }

    cleanup_request_init(&r);
    if ((r.sender = sm_sender(sm_opts.sender, &why)) == NULL)
        sm_fatal(EX_NOPERM, "-f %s: %s", sm_opts.sender, why);
    r.envid = xstrdup(sm_opts.envid ? sm_opts.envid : "");
    r.ret = sm_opts.ret;
    for (int i = optind; i < argc; i++)
        if (sm_add_rcpts(&r, argv[i], &why) < 0)
            sm_fatal(EX_USAGE, "bad recipient %s: %s", argv[i], why);
    if (r.nrcpt == 0 && !sm_opts.extract)
        sm_fatal(EX_USAGE, "no recipients specified");
    sm_compose(stdin, &r);
    if (r.nrcpt == 0)
        sm_fatal(EX_DATAERR, "no recipient addresses found in the message header");
    if (sm_submit(&r, id, &why) < 0) {
        if (errno == EINVAL)
            sm_fatal(EX_USAGE, "cannot queue the message: %s", why);
        sm_fatal(errno == EACCES || errno == ENOENT ? EX_CANTCREAT : EX_TEMPFAIL,
                 "cannot write into %s/maildrop: %s%s", conf_str("queue_directory"),
                 strerror(errno),
                 errno == EACCES ? " (sendmail must be setgid the setgid_group; mailctl start "
                                   "sets that up)"
                 : errno == ENOENT ? " (mailctl start creates it)" : "");
    }
    if (sm_opts.verbose)
        fprintf(stderr, "sendmail: queued as maildrop/%s for %zu recipient%s\n", id, r.nrcpt,
                r.nrcpt == 1 ? "" : "s");
    cleanup_request_free(&r);
    return 0;
}

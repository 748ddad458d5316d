/*
 * user.c - "mailctl user": the mail passwords of the host's accounts
 * (lib/passdb, the file auth_password_file).
 *
 *   mailctl user add NAME [--password-stdin]     a new mail password
 *   mailctl user passwd NAME [--password-stdin]  change it
 *   mailctl user apop NAME [--password-stdin | --remove]
 *                                                the APOP secret pop3d checks
 *                                                with pop3_apop = yes (kept in
 *                                                clear in the record)
 *   mailctl user del NAME                        remove it
 *   mailctl user list                            the names, sorted
 *
 * NAME must be an account of this host (getpwnam) with a uid of at least
 * first_valid_uid: root and system accounts get no mail password (del
 * takes any name the store holds, so that a deleted account's record can
 * go too).  The password is read twice from /dev/tty with echo off, or
 * with --password-stdin once from standard input (one line, one trailing
 * newline stripped); it is never printed or logged, and wiped from memory
 * after use.  It must not be empty, at most 511 bytes, and acceptable to
 * SCRAM-SHA-256 (SASLprep: UTF-8 without control characters).  The
 * record's SCRAM iteration count is auth_scram_iterations.
 *
 * Every subcommand needs root (the file is root's) and reads main.conf
 * after the usual trust checks; the new file is owned by root, group
 * auth_user's group, mode 0640.
 *
 * Errors are "mailctl: message" with exit status 1; usage errors exit 2;
 * success is silent except for list.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "conf.h"
#include "mailctl.h"
#include "passdb.h"
#include "xalloc.h"

#define USER_LINE_MAX   (PASSDB_PASSWORD_MAX + 2)   /* room to see "too long" */

static int user_usage(void)
{
    fprintf(stderr, "usage: mailctl user add NAME [--password-stdin] | "
            "passwd NAME [--password-stdin] | apop NAME [--password-stdin | --remove] | "
            "del NAME | list\n");
    return 2;
}

/* The terminal being read with echo off, restored on a signal too. */
static int tty_fd = -1;
static struct termios tty_saved;

static void tty_restore(void)
{
    if (tty_fd >= 0)
        (void)tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
}

static void tty_signal(int sig)
{
    tty_restore();
    if (tty_fd >= 0)
        (void)!write(tty_fd, "\n", 1);
    _exit(128 + sig);
}

/* One line from fd into buf (USER_LINE_MAX + 1 bytes), without its
 * newline.  The length, or -1: a read error, end of input before any
 * byte (eof_ok 0), a NUL byte (-2), or a line too long (-3). */
static long user_read_line(int fd, char *buf, int eof_ok)
{
    size_t n = 0;
    int nul = 0;

    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            if (n == 0 && !eof_ok)
                return -1;
            break;
        }
        if (c == '\n')
            break;
        if (c == '\0')
            nul = 1;
        if (n < USER_LINE_MAX)
            buf[n] = c;
        n++;
    }
    buf[n < USER_LINE_MAX ? n : USER_LINE_MAX] = '\0';
    if (nul)
        return -2;
    if (n > PASSDB_PASSWORD_MAX)
        return -3;
    return (long)n;
}

/* Prompt on the terminal and read one line with echo off. */
static long user_read_tty(const char *prompt, char *buf)
{
    struct termios t;
    struct sigaction sa, old_int, old_term, old_hup, old_quit;
    long n;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = tty_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    sigaction(SIGQUIT, &sa, &old_quit);
    t = tty_saved;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    t.c_lflag |= ICANON;
    /* Echo off first, then the prompt: what is typed after the prompt
     * is never echoed nor discarded by the flush. */
    if (tcsetattr(tty_fd, TCSAFLUSH, &t) < 0) {
        n = -1;
    } else {
        (void)!write(tty_fd, prompt, strlen(prompt));
        n = user_read_line(tty_fd, buf, 1);
        tty_restore();
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    (void)!write(tty_fd, "\n", 1);
    return n;
}

/* Complain about a bad line from user_read_line. */
static void user_line_error(long n, const char *from)
{
    if (n == -2)
        fprintf(stderr, "mailctl: the password contains a NUL byte\n");
    else if (n == -3)
        fprintf(stderr, "mailctl: the password is longer than %d bytes\n", PASSDB_PASSWORD_MAX);
    else
        fprintf(stderr, "mailctl: cannot read the password from %s\n", from);
}

/* The new password into pw (USER_LINE_MAX + 1 bytes); 0 or -1 (said why). */
static int user_get_password(const char *name, const char *what, int from_stdin, char *pw)
{
    long n;

    if (from_stdin) {
        n = user_read_line(STDIN_FILENO, pw, 0);
        if (n < 0) {
            user_line_error(n, "standard input");
            return -1;
        }
    } else {
        char *again = xcalloc(1, USER_LINE_MAX + 1), *prompt;
        long m;

        tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (tty_fd < 0 || tcgetattr(tty_fd, &tty_saved) < 0) {
            fprintf(stderr, "mailctl: no terminal to read the password from "
                    "(use --password-stdin)\n");
            if (tty_fd >= 0)
                close(tty_fd);
            tty_fd = -1;
            free(again);
            return -1;
        }
        prompt = xasprintf("New %s for %s: ", what, name);
        n = user_read_tty(prompt, pw);
        free(prompt);
        prompt = xasprintf("Retype the new %s: ", what);
        m = n < 0 ? 0 : user_read_tty(prompt, again);
        free(prompt);
        close(tty_fd);
        tty_fd = -1;
        if (n < 0 || m < 0) {
            user_line_error(n < 0 ? n : m, "the terminal");
            explicit_bzero(again, USER_LINE_MAX + 1);
            free(again);
            return -1;
        }
        if (n != m || memcmp(pw, again, (size_t)n) != 0) {
            explicit_bzero(again, USER_LINE_MAX + 1);
            free(again);
            fprintf(stderr, "mailctl: the two do not match; nothing changed\n");
            return -1;
        }
        explicit_bzero(again, USER_LINE_MAX + 1);
        free(again);
    }
    if (n == 0) {
        fprintf(stderr, "mailctl: empty password refused\n");
        return -1;
    }
    return 0;
}

/* May NAME have a mail password?  0, or -1 with the reason printed. */
static int user_account_ok(const char *name)
{
    const char *why;
    struct passwd *pw;
    long long first = conf_int("first_valid_uid");

    if (!passdb_name_ok(name, &why)) {
        fprintf(stderr, "mailctl: '%s': %s\n", name, why);
        return -1;
    }
    errno = 0;
    if ((pw = getpwnam(name)) == NULL) {
        if (errno != 0 && errno != ENOENT && errno != ESRCH)
            fprintf(stderr, "mailctl: cannot look up the account %s: %s\n", name,
                    strerror(errno));
        else
            fprintf(stderr, "mailctl: %s is not an account of this host\n", name);
        return -1;
    }
    if (pw->pw_uid == 0) {
        fprintf(stderr, "mailctl: %s has uid 0: root gets no mail password "
                "(read root's mail as another user through an alias)\n", name);
        return -1;
    }
    if ((long long)pw->pw_uid < first) {
        fprintf(stderr, "mailctl: %s is a system account (uid %lu is below first_valid_uid "
                "%lld): system accounts get no mail password\n",
                name, (unsigned long)pw->pw_uid, first);
        return -1;
    }
    return 0;
}

/* auth_user's group, which may read the file; -1 (said why) if none. */
static int user_auth_gid(gid_t *gid)
{
    const char *auth = conf_str("auth_user");
    struct passwd *pw = getpwnam(auth);

    if (pw == NULL) {
        fprintf(stderr, "mailctl: auth_user %s does not exist (mailctl start creates it)\n",
                auth);
        return -1;
    }
    *gid = pw->pw_gid;
    return 0;
}

static int user_set(const char *name, int from_stdin, int how)
{
    const char *file = conf_str("auth_password_file"), *why;
    char *pw, *record = NULL, *err = NULL;
    gid_t gid;
    int rc;

    if (user_account_ok(name) < 0 || user_auth_gid(&gid) < 0)
        return 1;
    /* Say so before asking for a password (passdb_put checks again, under
     * the lock). */
    {
        char **names = NULL;
        size_t n = 0;
        int found = 0;

        if (passdb_list(file, &names, &n, &err) < 0) {
            fprintf(stderr, "mailctl: %s\n", err);
            free(err);
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], name) == 0)
                found = 1;
        passdb_list_free(&names, n);
        if (found && how == PASSDB_PUT_NEW) {
            fprintf(stderr, "mailctl: %s already has a mail password "
                    "(use mailctl user passwd to change it)\n", name);
            return 1;
        }
        if (!found && how == PASSDB_PUT_REPLACE) {
            fprintf(stderr, "mailctl: %s has no mail password (use mailctl user add)\n", name);
            return 1;
        }
    }
    pw = xcalloc(1, USER_LINE_MAX + 1);
    if (user_get_password(name, "mail password", from_stdin, pw) < 0) {
        explicit_bzero(pw, USER_LINE_MAX + 1);
        free(pw);
        return 1;
    }
    rc = passdb_make(pw, (unsigned)conf_int("auth_scram_iterations"), &record, &why);
    explicit_bzero(pw, USER_LINE_MAX + 1);
    free(pw);
    if (rc < 0) {
        fprintf(stderr, "mailctl: password refused: %s\n", why);
        return 1;
    }
    rc = passdb_put(file, name, record, how, gid, &err);
    explicit_bzero(record, strlen(record));
    free(record);
    if (rc < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "mailctl: %s (use mailctl user passwd to change it)\n", err);
        else if (errno == ENOENT && how == PASSDB_PUT_REPLACE)
            fprintf(stderr, "mailctl: %s (use mailctl user add)\n", err);
        else
            fprintf(stderr, "mailctl: %s\n", err);
        free(err);
        return 1;
    }
    return 0;
}

/* mailctl user apop NAME: the APOP secret (RFC 1939 7) that pop3d checks
 * when pop3_apop = yes, kept in clear in NAME's record; --remove drops it. */
static int user_apop(const char *name, int from_stdin, int remove)
{
    const char *file = conf_str("auth_password_file");
    char *secret = NULL, *err = NULL;
    gid_t gid;
    int rc;

    if (user_account_ok(name) < 0 || user_auth_gid(&gid) < 0)
        return 1;
    if (!remove) {
        secret = xcalloc(1, USER_LINE_MAX + 1);
        if (user_get_password(name, "APOP secret", from_stdin, secret) < 0) {
            explicit_bzero(secret, USER_LINE_MAX + 1);
            free(secret);
            return 1;
        }
    }
    rc = passdb_put_apop(file, name, secret, gid, &err);
    if (secret) {
        explicit_bzero(secret, USER_LINE_MAX + 1);
        free(secret);
    }
    if (rc < 0) {
        fprintf(stderr, "mailctl: %s%s\n", err, errno == ENOENT ? " (use mailctl user add)" : "");
        free(err);
        return 1;
    }
    if (!remove && !conf_bool("pop3_apop"))
        fprintf(stderr, "mailctl: note: pop3d offers APOP only with pop3_apop = yes\n");
    return 0;
}

static int user_del(const char *name)
{
    const char *why;
    char *err = NULL;
    gid_t gid;

    if (!passdb_name_ok(name, &why)) {
        fprintf(stderr, "mailctl: '%s': %s\n", name, why);
        return 1;
    }
    if (user_auth_gid(&gid) < 0)
        return 1;
    if (passdb_delete(conf_str("auth_password_file"), name, gid, &err) < 0) {
        fprintf(stderr, "mailctl: %s\n", err);
        free(err);
        return 1;
    }
    return 0;
}

static int user_list(void)
{
    char **names = NULL, *err = NULL;
    size_t n = 0;

    if (passdb_list(conf_str("auth_password_file"), &names, &n, &err) < 0) {
        fprintf(stderr, "mailctl: %s\n", err);
        free(err);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s\n", names[i]);
    passdb_list_free(&names, n);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mailctl: cannot write the list: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

int cmd_user(int argc, char **argv)
{
    const char *sub, *name = NULL;
    int from_stdin = 0, remove = 0;

    /* argv[0] is "user". */
    if (argc < 2)
        return user_usage();
    sub = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--password-stdin") == 0
            && (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0
                || strcmp(sub, "apop") == 0))
            from_stdin = 1;
        else if (strcmp(argv[i], "--remove") == 0 && strcmp(sub, "apop") == 0)
            remove = 1;
        else if (name == NULL && argv[i][0] != '-')
            name = argv[i];
        else
            return user_usage();
    }
    if (strcmp(sub, "list") == 0 ? name != NULL
        : (strcmp(sub, "add") != 0 && strcmp(sub, "passwd") != 0 && strcmp(sub, "del") != 0
           && strcmp(sub, "apop") != 0)
              || name == NULL || (remove && from_stdin))
        return user_usage();
    if (geteuid() != 0) {
        fprintf(stderr, "mailctl: user %s needs root (the password file is root's)\n", sub);
        return 1;
    }
    if (mailctl_load_config(0) < 0)
        return 1;
    if (strcmp(sub, "list") == 0)
        return user_list();
    if (strcmp(sub, "del") == 0)
        return user_del(name);
    if (strcmp(sub, "apop") == 0)
        return user_apop(name, from_stdin, remove);
    return user_set(name, from_stdin, strcmp(sub, "add") == 0 ? PASSDB_PUT_NEW
                                                               : PASSDB_PUT_REPLACE);
}

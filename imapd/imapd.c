/*
 * imapd - IMAP (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1, with the
 * extensions a current client expects) on 143 (STARTTLS) and 993
 * (implicit TLS, -o tls_wrappermode=yes), split in two as DESIGN.md §1
 * has it.  master runs this one program in both roles, told apart by the
 * service type, as it runs pop3d:
 *
 *  - an inet service (143, 993): the login half (login.c), as login_user
 *    in the jail queue_directory/login: greeting, CAPABILITY, STARTTLS,
 *    LOGIN and AUTHENTICATE through authd, ID, NOOP, LOGOUT.  After a
 *    login it hands the connection over (lib/login) and, under TLS, stays
 *    on as the proxy;
 *  - the unix service "imap": the mail half (lib/postlogin in its
 *    per-user mode), root, which redeems each hand-over's cookie with
 *    authd and gives the connection to the user's process: one process
 *    per user, started on the user's first connection, that has become
 *    the user and serves every connection of that user (user.c), so that
 *    they share one view of each mailbox.
 *
 * Failure modes: a certificate that cannot be loaded is fatal in the
 * login half; every peer error ends or answers that session only.
 */

#include "auth_proto.h"
#include "imapd.h"
#include "postlogin.h"
#include "server.h"

static void imap_mail_post_init(event_loop_t *loop)
{
    postlogin_init_per_user(loop, AUTH_SERVICE_IMAP, imap_user_serve);
}

int main(int argc, char **argv)
{
    static const struct server_opts login_opts = {
        .mode = SERVER_SINGLE,
        .user_param = "login_user",
        .chroot = SERVER_CHROOT_LOGIN,
        .pre_init = imap_login_pre_init,
        .post_init = imap_login_post_init,
        .serve = imap_login_serve,
    };
    static const struct server_opts mail_opts = {
        .mode = SERVER_MULTI,
        .user_param = NULL,             /* root: it becomes each user in a child */
        .chroot = SERVER_CHROOT_NONE,
        .no_idle_exit = 1,              /* it is the parent of the users' processes */
        .retire_keeps_sessions = 1,     /* a reload disconnects nobody */
        .post_init = imap_mail_post_init,
        .accept = postlogin_accept,
    };
    server_main(argc, argv, server_args_unix(argc, argv) ? &mail_opts : &login_opts);
}

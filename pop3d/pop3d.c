/*
 * pop3d - POP3 (RFC 1939, with RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * AUTH, RFC 3206 response codes) on 110 and on 995 (implicit TLS,
 * -o tls_wrappermode=yes), split in two processes as DESIGN.md §1 has it.
 * master runs this one program in both roles, told apart by the service
 * type:
 *
 *  - an inet service (110, 995): the login half (login.c), as login_user
 *    in the jail queue_directory/login: greeting, CAPA, STLS, USER/PASS
 *    and AUTH through authd, QUIT.  After a login it hands the connection
 *    over (lib/login) and, under TLS, stays on as the proxy;
 *  - the unix service "pop3": the mail half (lib/postlogin), root, which
 *    redeems each hand-over's cookie with authd and forks a session
 *    process that becomes the user before it reads the client's next
 *    command (transaction.c: the TRANSACTION and UPDATE states on the
 *    user's Maildir, mailbox.c).
 *
 * Failure modes: a certificate that cannot be loaded is fatal in the
 * login half (with TLS configured no client could log in safely); every
 * peer error ends or answers that session only.
 */

#include "postlogin.h"
#include "auth_proto.h"
#include "pop3d.h"
#include "server.h"

static void pop3_mail_post_init(event_loop_t *loop)
{
    postlogin_init(loop, AUTH_SERVICE_POP3, pop3_mail_serve);
}

int main(int argc, char **argv)
{
    static const struct server_opts login_opts = {
        .mode = SERVER_SINGLE,
        .user_param = "login_user",
        .chroot = SERVER_CHROOT_LOGIN,
        .pre_init = pop3_login_pre_init,
        .post_init = pop3_login_post_init,
        .serve = pop3_login_serve,
    };
    static const struct server_opts mail_opts = {
        .mode = SERVER_MULTI,
        .user_param = NULL,             /* root: it becomes each user in a child */
        .chroot = SERVER_CHROOT_NONE,
        .no_idle_exit = 1,              /* it is the parent of the sessions */
        .retire_keeps_sessions = 1,     /* a reload disconnects nobody */
        .post_init = pop3_mail_post_init,
        .accept = postlogin_accept,
    };
    server_main(argc, argv, server_args_unix(argc, argv) ? &mail_opts : &login_opts);
}

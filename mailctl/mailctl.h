/*
 * mailctl.h - the parts of mailctl: init.c (new instances), setup.c
 * (accounts and spool directories), control.c (talking to master),
 * tlsgen.c (self-signed certificates), queue.c (the mail queue), maps.c
 * (newaliases, map), user.c (mail passwords), dmarc.c (DMARC reports),
 * dkim.c (DKIM keys), dns.c (the DNS records of a mail domain),
 * mailctl.c (commands, check).
 */
#ifndef POSTHORN_MAILCTL_H
#define POSTHORN_MAILCTL_H

#include <stdio.h>
#include <sys/types.h>

#include "buf.h"

/* mailctl.c */
extern const char *mailctl_confdir;
/* Load main.conf (full = 0) or also check master.conf and its programs
 * (full = 1); 0 ok, -1 with the errors printed. */
int  mailctl_load_config(int full);
char *mailctl_self_dir(void);                 /* directory of this executable */

/* init.c */
int  cmd_init(int argc, char **argv);
/* Create dirfd/name (dir/name in messages) with O_CREAT | O_EXCL |
 * O_NOFOLLOW, owned by the caller, mode set with fchmod whatever the
 * umask; a write descriptor, or -1 with "FILE: reason" appended to errs. */
int  init_create_at(int dirfd, const char *dir, const char *name, mode_t mode, buf_t *errs);

/* setup.c */
int  setup_accounts_and_spool(void);          /* as root; 0 ok */
int  setup_srs_secret(void);                  /* as root: srs_secret_file; 0 ok */

/* control.c */
int  cmd_start(int argc, char **argv);
int  cmd_stop(int argc, char **argv);
int  cmd_reload(int argc, char **argv);
int  cmd_status(int argc, char **argv);

/* queue.c */
int  cmd_queue(int argc, char **argv);

/* maps.c */
int  cmd_newaliases(int argc, char **argv);
int  cmd_map(int argc, char **argv);
/* Every hash:/btree: table of alias_maps usable?  build: build one whose
 * .db is missing or older than its source (mailctl start); else report it
 * (mailctl check).  -1 (reasons printed) when one has neither source nor
 * .db, or cannot be built and has no .db. */
int  maps_aliases_ready(int build);
/* Every table of transport_maps usable?  Its type must be hash: or btree:
 * and its .db must exist (qmgr would defer every recipient otherwise: it
 * is not built on its own, as in Postfix); a .db older than its source is
 * a warning.  -1 (reasons printed) when one is not; strict 0 (mailctl
 * start) prints those as warnings too and returns 0. */
int  maps_transport_ready(int strict);

/* dmarc.c */
int  cmd_dmarc(int argc, char **argv);

/* user.c */
int  cmd_user(int argc, char **argv);

/* dkim.c */
int  cmd_dkim(int argc, char **argv);

/* dns.c */
int  cmd_dns(int argc, char **argv);
/* The TXT record of DKIM key k (read from path), after a comment line. */
struct dkimsign_key;
void mailctl_dns_dkim(FILE *out, const struct dkimsign_key *k, const char *path);

/* tlsgen.c */
/* key.pem and cert.pem, created in dirfd (dir in messages); 0 or -1. */
int  tlsgen_self_signed(const char *hostname, int dirfd, const char *dir, buf_t *errs);

#endif

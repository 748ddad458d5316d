/*
 * srsrev - cleanup's part of SRS (lib/srs.h): a recipient that is an SRS
 * address of srs_domain (a bounce to mail that local forwarded with its
 * sender rewritten) is replaced by the address it stands for, before the
 * virtual alias expansion: SRS0 by the original sender, SRS1 by the SRS0
 * address at the first forwarder.  The SRS address stays the recipient's
 * original recipient (orig, for DSNs and qmgr's orig_to=), unless it had
 * one already; ORCPT and NOTIFY are kept.  qmgr then routes the recipient
 * like any other.
 *
 * Only addresses of srs_domain with an SRS0/SRS1 local part, and only
 * with a valid hash (any of the secrets) and age, are reversed.  One that
 * does not check out is left as it is, with a log line: smtpd's recipient
 * check (lookupd) has refused it already, and from anywhere else it goes
 * where any address of that domain goes (local: unknown user, a bounce
 * per recipient rather than a refusal of the whole message).
 *
 * Interface:
 *   srsrev_init()                 as root, in pre_init: read the secrets
 *   srsrev_rewrite(r, &dsn, &text)  0, or 451 (SRS is on but its secret
 *                                 file could not be read) for the message
 *
 * Failure modes: the one above; *dsn and *text are static.
 */
#ifndef POSTHORN_CLEANUP_SRSREV_H
#define POSTHORN_CLEANUP_SRSREV_H

#include "cleanup_proto.h"

void srsrev_init(void);
int  srsrev_rewrite(struct cleanup_request *r, const char **dsn, const char **text);

#endif

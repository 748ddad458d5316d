/*
 * signing - cleanup's DKIM policy: which messages it signs, with which
 * keys (lib/dkimkeys), and the DKIM-Signature fields (lib/dkimsign).
 *
 * Signed (with dkim_sign = yes): qmgr's bounces (the bounce flag), local
 * submissions (sendmail through pickup: a trusted peer's request with
 * submit_uid and no client), and mail from an SMTP client that logged in
 * (sasl_username: submission, or smtpd's AUTH) or whose client_addr is in
 * mynetworks.  Not signed: anything else from an SMTP client (mail from
 * outside), local's forwards (a trusted peer, no client, no submit_uid).
 * The keys are those of the domain of the message's From: as it will be
 * queued (after cleanup added a missing one), or of its nearest parent
 * domain with keys; every key there signs.  No key, no From:, more than
 * one From: field, or From: addresses in different domains: not signed
 * (the last two logged).  A message whose body begins without the empty
 * line after the header is not signed either (a verifier would read its
 * first body line as a broken header field), nor one that libopendkim,
 * which makes the signatures, would canonicalize otherwise than RFC 6376
 * (a bare CR in the body or in a field to be signed, a NUL in such a
 * field: lib/dkimsign; logged).
 *
 * Interface:
 *   signing_init()        pre_init, as root: load dkim_key_directory
 *                         (each bad key logged with its path and skipped),
 *                         parse mynetworks
 *   signing_wanted(r)     should r's message be signed (policy above)?
 *   signing_sign(r, h, add, id, out, what)
 *                         h: r's content header (msgheader_read); add:
 *                         the fields cleanup adds at its end (CRLF lines,
 *                         may be empty); id: the queue ID for the
 *                         log; appends the DKIM-Signature
 *                         fields to out and a description for the log
 *                         ("d=example.com s=a,b") to *what (fresh), or
 *                         nothing when there is no key
 *
 * Failure modes: signing_init() never fails (no keys means no signing;
 * a mynetworks that does not parse is fatal, as in smtpd).
 * signing_sign() returns -1 with errno when the content cannot be read
 * (EBADMSG: shorter than its length) or EIO when libopendkim cannot sign; the
 * caller answers 451 so that no mail of a signing domain leaves unsigned.
 *
 * Parameters: dkim_sign, dkim_key_directory, mynetworks.
 */
#ifndef POSTHORN_CLEANUP_SIGNING_H
#define POSTHORN_CLEANUP_SIGNING_H

#include <stdbool.h>

#include "buf.h"
#include "cleanup_proto.h"
#include "msgheader.h"

void signing_init(void);
bool signing_wanted(const struct cleanup_request *r);
int  signing_sign(const struct cleanup_request *r, const struct msgheader *h, const buf_t *add,
                  const char *id, buf_t *out, char **what);

#endif

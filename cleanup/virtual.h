/*
 * virtual - cleanup's recipient rewriting through virtual_alias_maps.
 *
 * Each envelope recipient is looked up (over lookupd, which reads the
 * tables: cleanup is chrooted) and replaced by the addresses of its entry,
 * recursively, as Postfix's cleanup does.  An address whose entry names
 * itself is kept (the "a@x -> a@x, b@y" idiom); an address without an
 * entry is final.  Final addresses are kept once each, carrying the
 * original recipient (for DSNs and qmgr's orig_to=), ORCPT and NOTIFY of
 * the recipient they came from.
 *
 * Interface:
 *   virtual_expand(r, &dsn, &text)  rewrite r->rcpts in place: 0, or the
 *                                   SMTP reply code for the whole message
 *
 * Failure modes: lookupd that cannot be reached or a table that cannot
 * be read is 451 4.3.0 (the client tries again later); an entry that does
 * not parse is 451 4.3.0 too, with a warning naming it, so the admin can
 * fix it before the message is retried.  A loop (a -> b -> a), a chain
 * deeper than virtual_alias_recursion_limit or more than
 * virtual_alias_expansion_limit addresses from one recipient is 554 5.4.6.
 * *text is static, valid until the next call.
 */
#ifndef POSTHORN_CLEANUP_VIRTUAL_H
#define POSTHORN_CLEANUP_VIRTUAL_H

#include "cleanup_proto.h"

int virtual_expand(struct cleanup_request *r, const char **dsn, const char **text);

#endif

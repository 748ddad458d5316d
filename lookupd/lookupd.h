/*
 * lookupd.h - what lookupd's parts share (lookupd.c: the service, the
 * recipient and virtual questions; transport.c: transport_maps;
 * clientname.c: client names).
 *
 * lookupd_table(spec, key, value, text) looks key up in one table of a
 * map list: "unix:passwd.byname" is the passwd database, anything else a
 * lib/map table opened once and kept (a rebuilt table is noticed).  1
 * found (*value fresh if value is not NULL), 0 not found, -1 the table
 * could not be read (*text fresh: why).
 */
#ifndef POSTHORN_LOOKUPD_H
#define POSTHORN_LOOKUPD_H

#include "lookup_proto.h"

int lookupd_table(const char *spec, const char *key, char **value, char **text);

/* transport.c: the transport_maps entry of address, transport(5)'s search
 * order; fills r (clear it with lookup_transport_reply_clear). */
void transport_find(const char *address, struct lookup_transport_reply *r);

#endif

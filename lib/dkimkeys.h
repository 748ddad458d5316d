/*
 * dkimkeys - the DKIM key directory (dkim_key_directory): which keys sign
 * mail from which domain.  Shared by cleanup (which loads it as root
 * before its privilege drop) and mailctl (dkim list, dns).
 *
 * Layout: DIR/DOMAIN/SELECTOR.key, one PEM private key a file; the
 * algorithm is the key's own (lib/dkimsign).  Every key of a domain signs
 * its mail, so a domain with an RSA and an Ed25519 key gets both
 * signatures.  What is refused, each with a line "PATH: reason" in errs
 * and then skipped while the rest still load (DESIGN.md §1: root reads no
 * file another account could have written):
 *   - DIR itself, or a directory above it, not owned by one of owners[]
 *     or writable by group or others (lib/trustpath); then nothing loads;
 *   - a DOMAIN that is not a domain name (LDH labels, at most 253
 *     characters), is not a directory, is a symbolic link, or is not
 *     owned by owners[] or writable by group or others;
 *   - a SELECTOR.key whose selector is not one (LDH labels) or that is not
 *     a regular file with one link owned by owners[] (opened with
 *     O_NOFOLLOW | O_NONBLOCK, lib/safe_open), is writable by its group
 *     or has any permission for others (0600 or 0640 are right), is
 *     larger than 64 KiB, or is not a key dkimsign_key_parse() takes
 *     (RSA of at least 1024 bits, or Ed25519, unencrypted).
 * Names starting with '.', and files not ending in ".key", are ignored.
 * An RSA key under 2048 bits loads, with a line in warns.  A DIR that
 * does not exist is no error: there are no keys.
 *
 * Interface:
 *   dkimkeys_load(dir, owners, nowners, errs, warns)   never NULL
 *   dkimkeys_find(keys, domain)   the entry that signs mail from domain:
 *       domain's own, else its nearest parent's (mail from
 *       a.example.com is signed d=example.com when only example.com
 *       has keys); NULL if none
 *   dkimkeys_domain_valid(name)   a domain name for the layout above
 *   dkimkeys_free(&keys)
 * Entries are sorted by domain, and their keys by selector.
 *
 * Failure modes: none beyond the lines in errs; out of memory is fatal.
 */
#ifndef POSTHORN_DKIMKEYS_H
#define POSTHORN_DKIMKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "dkimsign.h"

#define DKIMKEYS_FILE_MAX (64 * 1024)

struct dkimkeys_domain {
    char            *domain;        /* lower case */
    size_t           n;             /* >= 1 */
    dkimsign_key_t **keys;
    char           **paths;         /* each key's file */
};

typedef struct dkimkeys {
    size_t                  n;
    struct dkimkeys_domain *domains;
} dkimkeys_t;

dkimkeys_t *dkimkeys_load(const char *dir, const uid_t *owners, size_t nowners, buf_t *errs,
                          buf_t *warns);
const struct dkimkeys_domain *dkimkeys_find(const dkimkeys_t *keys, const char *domain);
bool dkimkeys_domain_valid(const char *name);
void dkimkeys_free(dkimkeys_t **keysp);

#endif

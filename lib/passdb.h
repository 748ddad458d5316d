/*
 * passdb - the mail password store: one record per user in a Berkeley DB
 * file (auth_password_file), read by authd (auth_user) and written only by
 * root (mailctl user).  A mail password is separate from the login
 * password; what is kept of it serves two kinds of SMTP/IMAP AUTH:
 *   - PLAIN and LOGIN: a yescrypt hash (libxcrypt, "$y$...");
 *   - SCRAM-SHA-256: iterations, salt, StoredKey, ServerKey (lib/scram),
 *     never SaltedPassword or ClientKey, either of which logs in by itself.
 *
 * The record (version 1), one line of printable ASCII without a newline:
 *
 *     1 HASH ITER,SALT,STOREDKEY,SERVERKEY[ APOP]
 *
 *   HASH       the yescrypt hash as crypt(3) writes it: "$y$PARAMS$SALT$H",
 *              characters [./0-9A-Za-z$] only, at most PASSDB_HASH_MAX
 *   ITER       SCRAM iterations, decimal without leading zeros,
 *              SCRAM_ITERATIONS_MIN..PASSDB_ITERATIONS_MAX
 *   SALT       the SCRAM salt, base64 (RFC 4648, padded), 1..SCRAM_SALT_MAX
 *              octets (new records: SCRAM_SALT_LEN from RAND_bytes)
 *   STOREDKEY  SHA-256(HMAC(SaltedPassword, "Client Key")), base64, 32 octets
 *   SERVERKEY  HMAC(SaltedPassword, "Server Key"), base64, 32 octets
 *   APOP       optional: "A" and the base64 of the user's APOP secret
 *              (RFC 1939 7), in clear because APOP needs it so: 1..511
 *              octets without control characters (mailctl user apop)
 *
 * Fields are separated by exactly one space or comma; base64 must be
 * canonical (the only encoding passdb_format would write).  Anything else
 * is a malformed record: an error, never a crash.  The parser checks the
 * hash's shape and crypt_checksalt(); yescrypt parameters that libxcrypt
 * nevertheless cannot use show when the hash is computed:
 * passdb_verify_plain() then returns -1.  The key is the user
 * name, lower-case as lib/map stores keys; passdb_name_ok() says which
 * names the store can hold (a name it cannot hold is never found).
 *
 * The file: owned by root, group auth_user's group, mode 0640.  Before it
 * is read (at every reopen too, lib/map's check hook) it must be a regular
 * file with one link, not a symbolic link, owned by one of
 * trustpath_owners() (root; a non-root caller may also own it), neither
 * group- nor world-writable, and not readable by others (it holds
 * hashes); its directory and every one above it must pass lib/trustpath.
 * Writers (passdb_put, passdb_delete) take an exclusive flock on
 * "PATH.lock" (created mode 0600), read the current table, and replace the
 * whole file with lib/map's map_write: temporary file, fsync, rename,
 * fsync of the directory.  Readers (passdb_lookup) notice a replaced file
 * by its inode, as every lib/map reader does.
 *
 * Interface:
 *   passdb_name_ok(name, &why)          can the store hold this name?
 *   passdb_parse(text, &rec, &why)      strict parser; 0 or -1
 *   passdb_format(&rec)                 the record text (fresh string)
 *   passdb_make(password, iter, &text, &why)   a new record for password
 *   passdb_verify_plain(text, password)        1 right, 0 wrong, -1 bad record
 *   passdb_verify_hash(hash, password)         the same for a crypt(3) hash
 *   passdb_scram(text, &creds)                 the SCRAM credentials; 0 or -1
 *   passdb_open / passdb_lookup / passdb_close  the reader
 *   passdb_list(path, &names, &n, &err)         sorted user names
 *   passdb_put(path, name, text, how, gid, &err), passdb_delete(...)
 *
 * Failure modes: a bad record, a refused file, a missing user are returned
 * (-1 with errno and a message), never fatal.  Running out of memory is
 * fatal (xalloc); OpenSSL's RAND_bytes failing is fatal (the environment is
 * broken: no salt can be made).
 */
#ifndef POSTHORN_PASSDB_H
#define POSTHORN_PASSDB_H

#include <stddef.h>
#include <sys/types.h>

#include "scram.h"

#define PASSDB_VERSION          1
#define PASSDB_NAME_MAX         32          /* useradd's limit */
#define PASSDB_HASH_MAX         256
#define PASSDB_ITERATIONS_MAX   10000000u   /* auth_scram_iterations' upper bound */
#define PASSDB_RECORD_MAX       1024        /* longer text is malformed */
#define PASSDB_PASSWORD_MAX     511         /* octets: libxcrypt's limit (crypt.h's
                                               CRYPT_MAX_PASSPHRASE_SIZE less the NUL),
                                               below SCRAM_PASSWORD_MAX */

/* passdb_put's how */
#define PASSDB_PUT_NEW          1           /* the user must not have a record (EEXIST) */
#define PASSDB_PUT_REPLACE      2           /* the user must have one (ENOENT); an
                                               APOP secret it had is kept */
#define PASSDB_APOP             3           /* internal: passdb_put_apop */

struct passdb_record {
    char    hash[PASSDB_HASH_MAX + 1];      /* yescrypt, NUL-terminated */
    struct scram_credentials scram;
    char    apop[PASSDB_PASSWORD_MAX + 1];  /* the APOP secret in clear; "": none */
};

typedef struct passdb passdb_t;

/* 1 if the store can hold name: 1..PASSDB_NAME_MAX of [a-z0-9_.-], not
 * starting with '-' or '.', optionally ending in '$' (Samba machine
 * accounts); else 0 with a static reason in *why. */
int   passdb_name_ok(const char *name, const char **why);

/* 0 with *rec filled, or -1 (EINVAL) with a static reason in *why. */
int   passdb_parse(const char *text, struct passdb_record *rec, const char **why);
char *passdb_format(const struct passdb_record *rec);

/* A new record: fresh yescrypt salt (libxcrypt's default cost), fresh
 * 16-octet SCRAM salt, iterations SCRAM_ITERATIONS_MIN..
 * PASSDB_ITERATIONS_MAX.  The password must be non-empty, at most
 * PASSDB_PASSWORD_MAX octets and acceptable to SASLprep (UTF-8, no control
 * characters): one password serves PLAIN and SCRAM alike.  0 with *text
 * fresh, or -1 with a static reason in *why. */
int   passdb_make(const char *password, unsigned iterations, char **text, const char **why);
/* 1 the password is right, 0 wrong, -1 the record is malformed or crypt
 * failed.  Constant-time comparison of the hashes. */
int   passdb_verify_plain(const char *text, const char *password);
/* The same for a crypt(3) hash of any method libxcrypt knows (a shadow
 * entry's): 1 right, 0 wrong, -1 a hash libxcrypt cannot use. */
int   passdb_verify_hash(const char *hash, const char *password);
/* 0 with *creds filled, -1 malformed. */
int   passdb_scram(const char *text, struct scram_credentials *creds);
/* The record's APOP secret into secret (PASSDB_PASSWORD_MAX + 1 octets):
 * 1, 0 when it has none, -1 malformed. */
int   passdb_apop(const char *text, char *secret);
/* The record with its APOP secret set (NULL: removed): 1..511 octets
 * without control characters.  0 with *out fresh, or -1 with *why. */
int   passdb_set_apop(const char *text, const char *secret, char **out, const char **why);

/* The reader: path checked as above.  NULL with errno and *err (fresh). */
passdb_t *passdb_open(const char *path, char **err);
void  passdb_close(passdb_t **pp);
/* 1 found (*text fresh), 0 not found (or a name the store cannot hold),
 * -1 error (errno; logged). */
int   passdb_lookup(passdb_t *p, const char *name, char **text);

/* Every user name, sorted (strcmp), in a fresh array of fresh strings
 * (free with passdb_list_free); a missing file is an empty list.  0, or
 * -1 with errno and *err. */
int   passdb_list(const char *path, char ***names, size_t *n, char **err);
void  passdb_list_free(char ***names, size_t n);

/* Writers (under the lock).  gid: the group the new file gets ((gid_t)-1:
 * the caller's); the owner is root when the caller is root.  0, or -1
 * with errno (EEXIST, ENOENT as documented, EINVAL a bad name or record,
 * else the file's) and *err (fresh). */
int   passdb_put(const char *path, const char *name, const char *text, int how, gid_t gid,
                 char **err);
int   passdb_delete(const char *path, const char *name, gid_t gid, char **err);
/* Set (or with NULL remove) the APOP secret of a user who has a record
 * (ENOENT otherwise); the password stays. */
int   passdb_put_apop(const char *path, const char *name, const char *secret, gid_t gid,
                      char **err);

#endif

/*
 * scram - SCRAM-SHA-256 (RFC 5802, RFC 7677): the key derivation that the
 * password store and the server side of the exchange share.
 *
 * What a server keeps per user is struct scram_credentials: the salt, the
 * iteration count, StoredKey and ServerKey.  Neither key lets anyone log
 * in by itself (unlike SaltedPassword or ClientKey): StoredKey only checks
 * a client's proof, ServerKey only proves the server to the client.
 *
 * Interface:
 *   scram_sha256_keys  StoredKey and ServerKey from a password, a salt and
 *                      an iteration count:
 *       SaltedPassword = PBKDF2-HMAC-SHA256(SASLprep(password), salt, i)
 *       ClientKey      = HMAC(SaltedPassword, "Client Key")
 *       StoredKey      = SHA256(ClientKey)
 *       ServerKey      = HMAC(SaltedPassword, "Server Key")
 *
 * Failure modes: a password that SASLprep refuses (not UTF-8, prohibited
 * characters such as controls, bad bidirectional text, or nothing left
 * after preparation) cannot have SCRAM credentials: -1, and the caller
 * decides (refuse the password, or keep it for PLAIN only).  Parameters
 * out of range are also -1.  Running out of memory is fatal; an OpenSSL
 * failure in the hash functions is fatal too (the environment is broken).
 */
#ifndef POSTHORN_SCRAM_H
#define POSTHORN_SCRAM_H

#include <stddef.h>

#define SCRAM_KEY_LEN               32      /* SHA-256 output: every key and proof */
#define SCRAM_SALT_LEN              16      /* the salt length for new credentials */
#define SCRAM_SALT_MAX              64      /* longest salt accepted anywhere */
#define SCRAM_ITERATIONS_MIN        4096    /* RFC 7677 SHOULD: fewer are refused */
#define SCRAM_ITERATIONS_DEFAULT    4096    /* new credentials, and unknown users */
#define SCRAM_ITERATIONS_MAX        100000000u  /* a derivation bound (PBKDF2 takes an int) */
#define SCRAM_PASSWORD_MAX          1024    /* octets, before SASLprep */

/* What the server keeps for one user. */
struct scram_credentials {
    unsigned       iterations;
    unsigned char  salt[SCRAM_SALT_MAX];
    size_t         saltlen;                     /* 1..SCRAM_SALT_MAX */
    unsigned char  stored_key[SCRAM_KEY_LEN];
    unsigned char  server_key[SCRAM_KEY_LEN];
};

/* Derive StoredKey and ServerKey.  password: a C string of at most
 * SCRAM_PASSWORD_MAX octets; saltlen 1..SCRAM_SALT_MAX, iterations
 * 1..SCRAM_ITERATIONS_MAX (the server refuses fewer than
 * SCRAM_ITERATIONS_MIN when it checks credentials; deriving them is
 * allowed, for tests against published vectors).  Returns 0, or -1 (the
 * keys then unchanged) if the password cannot be prepared or a parameter
 * is out of range. */
int scram_sha256_keys(const char *password, const unsigned char *salt, size_t saltlen,
                      unsigned iterations, unsigned char stored_key[32],
                      unsigned char server_key[32]);

#endif

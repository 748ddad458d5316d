/*
 * scram - SCRAM-SHA-256 key derivation (see scram.h).
 *
 * OpenSSL does the work: PKCS5_PBKDF2_HMAC for SaltedPassword, HMAC() and
 * SHA256() for the keys.  Every intermediate secret is wiped before
 * return.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "msg.h"
#include "saslprep.h"
#include "scram.h"

/* HMAC-SHA-256 of data under key into out[SCRAM_KEY_LEN]; fatal if
 * OpenSSL fails (it cannot, short of a broken library). */
static void scram_hmac(const unsigned char *key, size_t keylen, const void *data, size_t len,
                       unsigned char out[SCRAM_KEY_LEN])
{
    unsigned outlen = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) == NULL
        || outlen != SCRAM_KEY_LEN)
        msg_fatal("scram: HMAC-SHA-256 failed");
}

int scram_sha256_keys(const char *password, const unsigned char *salt, size_t saltlen,
                      unsigned iterations, unsigned char stored_key[32],
                      unsigned char server_key[32])
{
    unsigned char salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
    char *prepared;
    size_t plen;
    int ok;

    if (saltlen < 1 || saltlen > SCRAM_SALT_MAX || iterations < 1
        || iterations > SCRAM_ITERATIONS_MAX || strlen(password) > SCRAM_PASSWORD_MAX)
        return -1;
    if (saslprep(password, strlen(password), &prepared) < 0)
        return -1;
    plen = strlen(prepared);
    ok = PKCS5_PBKDF2_HMAC(prepared, (int)plen, salt, (int)saltlen, (int)iterations,
                           EVP_sha256(), SCRAM_KEY_LEN, salted);
    explicit_bzero(prepared, plen);
    free(prepared);
    if (ok != 1)
        msg_fatal("scram: PBKDF2-HMAC-SHA-256 failed");
    scram_hmac(salted, sizeof(salted), "Client Key", 10, client_key);
    if (SHA256(client_key, sizeof(client_key), stored_key) == NULL)
        msg_fatal("scram: SHA-256 failed");
    scram_hmac(salted, sizeof(salted), "Server Key", 10, server_key);
    explicit_bzero(salted, sizeof(salted));
    explicit_bzero(client_key, sizeof(client_key));
    return 0;
}

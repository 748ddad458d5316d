/*
 * fuzz/passdb - libFuzzer harness for lib/passdb.c's record parser and
 * name check.
 *
 * The input (up to its first NUL) is a record for passdb_parse and a name
 * for passdb_name_ok.  Checks: the parser returns 0 or -1, with a reason
 * exactly when it refuses; an accepted record is canonical (passdb_format
 * gives the input back byte for byte), within the documented bounds (a
 * "$y$" hash of allowed characters, iterations 4096..10000000, salt
 * 1..64 octets) and passdb_scram gives the same credentials; a refused
 * one is refused by passdb_scram too.  An accepted name has only the
 * documented characters and length.  passdb_verify_plain is left out on
 * purpose: a record's yescrypt parameters choose the hash's cost, and
 * records come from root alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "passdb.h"
#include "scram.h"

static void check_record(const char *text)
{
    struct passdb_record rec;
    struct scram_credentials c;
    const char *why = NULL;
    char *again;
    int rc = passdb_parse(text, &rec, &why);

    if (rc != 0 && rc != -1)
        fuzz_fail("passdb_parse returned %d", rc);
    if (rc == -1) {
        if (why == NULL)
            fuzz_fail("passdb_parse refused without a reason");
        if (passdb_scram(text, &c) != -1)
            fuzz_fail("passdb_scram accepted what passdb_parse refused (%s)", why);
        return;
    }
    again = passdb_format(&rec);
    if (strcmp(again, text) != 0)
        fuzz_fail("accepted a non-canonical record: '%s' formats as '%s'", text, again);
    free(again);
    if (strncmp(rec.hash, "$y$", 3) != 0
        || strspn(rec.hash, "$./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
               != strlen(rec.hash))
        fuzz_fail("accepted the hash '%s'", rec.hash);
    if (rec.scram.iterations < SCRAM_ITERATIONS_MIN
        || rec.scram.iterations > PASSDB_ITERATIONS_MAX)
        fuzz_fail("accepted %u iterations", rec.scram.iterations);
    if (rec.scram.saltlen < 1 || rec.scram.saltlen > SCRAM_SALT_MAX)
        fuzz_fail("accepted a salt of %zu octets", rec.scram.saltlen);
    if (passdb_scram(text, &c) != 0 || c.iterations != rec.scram.iterations
        || c.saltlen != rec.scram.saltlen || memcmp(c.salt, rec.scram.salt, c.saltlen) != 0
        || memcmp(c.stored_key, rec.scram.stored_key, SCRAM_KEY_LEN) != 0
        || memcmp(c.server_key, rec.scram.server_key, SCRAM_KEY_LEN) != 0)
        fuzz_fail("passdb_scram disagrees with passdb_parse");
}

static void check_name(const char *name)
{
    const char *why = NULL;
    size_t len = strlen(name);

    if (!passdb_name_ok(name, &why)) {
        if (why == NULL)
            fuzz_fail("passdb_name_ok refused without a reason");
        return;
    }
    if (len == 0 || len > PASSDB_NAME_MAX || name[0] == '-' || name[0] == '.')
        fuzz_fail("accepted the name '%s'", name);
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_.-", name[i])
            && !(name[i] == '$' && i == len - 1 && i > 0))
            fuzz_fail("accepted the name '%s'", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);

    if (text == NULL)
        return 0;
    check_record(text);
    check_name(text);
    free(text);
    return 0;
}

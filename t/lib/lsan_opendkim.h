/*
 * lsan_opendkim.h - what LeakSanitizer should expect of libopendkim, for
 * the tests that sign with Ed25519 keys (include it once per test).
 *
 * libopendkim 2.11 (Debian's 2.11.0~beta2) never frees the key an
 * Ed25519 signing handle loaded: dkim_free() releases what
 * dkim_privkey_load() made (the EVP_PKEY, its BIO, the output buffer)
 * only for RSA keys.  About 470 bytes a signature; that leak, and only
 * that one, is suppressed.  The full unwinder is needed to see the
 * dkim_privkey_load frame: libopendkim and libcrypto have no frame
 * pointers.  Without a sanitizer these functions are never called.
 */
#ifndef POSTHORN_LSAN_OPENDKIM_H
#define POSTHORN_LSAN_OPENDKIM_H

const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

const char *__lsan_default_suppressions(void)
{
    return "leak:dkim_privkey_load\n";
}

#endif

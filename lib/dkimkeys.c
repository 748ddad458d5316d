/*
 * dkimkeys - the DKIM key directory (see dkimkeys.h).
 *
 * The directory is reached with trustpath (every component checked, no
 * symbolic link followed unchecked), each DOMAIN directory is opened with
 * O_NOFOLLOW relative to it, and each key file with safe_open's rules
 * relative to that, so nothing on the way can be swapped by another
 * account between the check and the read.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dkimkeys.h"
#include "safe_open.h"
#include "trustpath.h"
#include "xalloc.h"

/* LDH labels separated by dots; for a domain at most 253 characters. */
static bool dkimkeys_labels_valid(const char *name, size_t max)
{
    size_t label = 0, len = strlen(name);

    if (len == 0 || len > max)
        return false;
    for (const char *p = name;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && !(*p == '-' && label > 0))
            return false;
        if (++label > 63)
            return false;
    }
}

bool dkimkeys_domain_valid(const char *name)
{
    return dkimkeys_labels_valid(name, 253);
}

static int dkimkeys_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the directory open at dirfd (O_PATH is fine), sorted,
 * without the ones starting with '.'; NULL-terminated, or NULL. */
static char **dkimkeys_names(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    DIR *d;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = xreallocarray(names, n + 2, sizeof(char *));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (names == NULL)
        names = xcalloc(1, sizeof(char *));
    names[n] = NULL;
    qsort(names, n, sizeof(char *), dkimkeys_cmp);
    return names;
}

static int dkimkeys_domain_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dkimkeys_domain *)a)->domain,
                  ((const struct dkimkeys_domain *)b)->domain);
}

static void dkimkeys_names_free(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

static bool dkimkeys_owner_ok(uid_t uid, const uid_t *owners, size_t nowners)
{
    for (size_t i = 0; i < nowners; i++)
        if (owners[i] == uid)
            return true;
    return false;
}

/* One key file: added to ent, or a line in errs. */
static void dkimkeys_file(struct dkimkeys_domain *ent, int domfd, const char *dirpath,
                          const char *name, const uid_t *owners, size_t nowners, buf_t *errs,
                          buf_t *warns)
{
    size_t len = strlen(name);
    char *selector, *path = xasprintf("%s/%s", dirpath, name);
    const char *why = NULL;
    buf_t *pem = NULL;
    struct stat st;
    dkimsign_key_t *k;

    selector = xstrndup(name, len - 4);
    if (!dkimkeys_labels_valid(selector, 63)) {
        buf_printf(errs, "%s: '%s' is not a selector (letters, digits, '-' and '.')\n", path,
                   selector);
        goto out;
    }
    if (safe_read_file(domfd, name, owners, nowners, DKIMKEYS_FILE_MAX, &pem, &st, &why) < 0) {
        if (errno == EPERM)
            buf_printf(errs, "%s: owned by uid %ld, not root\n", path, (long)st.st_uid);
        else
            buf_printf(errs, "%s: %s\n", path, why ? why : strerror(errno));
        goto out;
    }
    if (st.st_mode & 027) {
        buf_printf(errs, "%s: mode %04o: a private key must not be writable by its group "
                   "nor open to others (0600 or 0640)\n", path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if ((k = dkimsign_key_parse(pem->data, pem->len, ent->domain, selector, &why)) == NULL) {
        buf_printf(errs, "%s: %s\n", path, why);
        goto out;
    }
    if (dkimsign_key_alg(k) == DKIMSIGN_RSA_SHA256
        && dkimsign_key_bits(k) < DKIMSIGN_RSA_WARN_BITS)
        buf_printf(warns, "%s: an RSA key of %d bits; 2048 are recommended\n", path,
                   dkimsign_key_bits(k));
    ent->keys = xreallocarray(ent->keys, ent->n + 1, sizeof(*ent->keys));
    ent->paths = xreallocarray(ent->paths, ent->n + 1, sizeof(*ent->paths));
    ent->keys[ent->n] = k;
    ent->paths[ent->n++] = path;
    path = NULL;
out:
    if (pem) {
        explicit_bzero(pem->data, pem->len);
        buf_free(&pem);
    }
    free(selector);
    free(path);
}

/* One DOMAIN directory: its keys into keys (if it has any). */
static void dkimkeys_domain(dkimkeys_t *keys, int dirfd, const char *dir, const char *name,
                            const uid_t *owners, size_t nowners, buf_t *errs, buf_t *warns)
{
    char *dirpath = xasprintf("%s/%s", dir, name), **files;
    struct dkimkeys_domain ent = {0};
    struct stat st;
    int fd;

    if (!dkimkeys_domain_valid(name)) {
        buf_printf(errs, "%s: '%s' is not a domain name\n", dirpath, name);
        goto out;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        buf_printf(errs, "%s: %s\n", dirpath,
                   errno == ENOTDIR || errno == ELOOP ? "not a directory" : strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !dkimkeys_owner_ok(st.st_uid, owners, nowners)
        || (st.st_mode & 022)) {
        buf_printf(errs, "%s: owned by uid %ld, mode %04o: the directory must be root's "
                   "and writable by nobody else\n", dirpath, (long)st.st_uid,
                   (unsigned)(st.st_mode & 07777));
        close(fd);
        goto out;
    }
    ent.domain = xstrdup(name);
    for (char *p = ent.domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    files = dkimkeys_names(fd);
    for (size_t i = 0; files && files[i]; i++) {
        size_t len = strlen(files[i]);

        if (len > 4 && strcmp(files[i] + len - 4, ".key") == 0)
            dkimkeys_file(&ent, fd, dirpath, files[i], owners, nowners, errs, warns);
    }
    dkimkeys_names_free(files);
    close(fd);
    if (ent.n > 0) {
        keys->domains = xreallocarray(keys->domains, keys->n + 1, sizeof(*keys->domains));
        keys->domains[keys->n++] = ent;
    } else {
        free(ent.domain);
    }
out:
    free(dirpath);
}

dkimkeys_t *dkimkeys_load(const char *dir, const uid_t *owners, size_t nowners, buf_t *errs,
                          buf_t *warns)
{
    dkimkeys_t *keys = xcalloc(1, sizeof(*keys));
    buf_t *terrs = buf_new(0);
    char **names;
    int fd;

    if (dir == NULL || *dir == '\0' || (access(dir, F_OK) < 0 && errno == ENOENT)) {
        buf_free(&terrs);
        return keys;
    }
    fd = trustpath_open(dir, TRUSTPATH_DIR, owners, nowners, terrs);
    if (fd < 0) {
        buf_append(errs, terrs->data, terrs->len);
        buf_free(&terrs);
        return keys;
    }
    buf_free(&terrs);
    if ((names = dkimkeys_names(fd)) == NULL)
        buf_printf(errs, "%s: cannot read the directory: %s\n", dir, strerror(errno));
    for (size_t i = 0; names && names[i]; i++)
        dkimkeys_domain(keys, fd, dir, names[i], owners, nowners, errs, warns);
    dkimkeys_names_free(names);
    close(fd);
    qsort(keys->domains, keys->n, sizeof(*keys->domains), dkimkeys_domain_cmp);
    return keys;
}

static const struct dkimkeys_domain *dkimkeys_exact(const dkimkeys_t *keys, const char *domain)
{
    size_t lo = 0, hi = keys->n;

    while (lo < hi) {           /* sorted by lower-case name */
        size_t mid = (lo + hi) / 2;
        int c = strcasecmp(domain, keys->domains[mid].domain);

        if (c == 0)
            return &keys->domains[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct dkimkeys_domain *dkimkeys_find(const dkimkeys_t *keys, const char *domain)
{
    const struct dkimkeys_domain *d;

    if (keys == NULL)
        return NULL;
    while (domain && *domain) {
        if ((d = dkimkeys_exact(keys, domain)) != NULL)
            return d;
        domain = strchr(domain, '.');
        if (domain)
            domain++;
    }
    return NULL;
}

void dkimkeys_free(dkimkeys_t **keysp)
{
    dkimkeys_t *keys = *keysp;

    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->n; i++) {
        for (size_t j = 0; j < keys->domains[i].n; j++) {
            dkimsign_key_free(&keys->domains[i].keys[j]);
            free(keys->domains[i].paths[j]);
        }
        free(keys->domains[i].keys);
        free(keys->domains[i].paths);
        free(keys->domains[i].domain);
    }
    free(keys->domains);
    free(keys);
    *keysp = NULL;
}

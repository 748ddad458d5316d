/*
 * fuzzlib.h - header-only helpers shared by the libFuzzer harnesses in
 * t/fuzz (built and run by t/fuzz/run.sh, never by make).
 *
 * Interface:
 *   fuzz_init()            once per process: silence msg_* output (stderr is
 *                          libFuzzer's), make a private scratch directory
 *                          (mkdtemp under $TMPDIR, default /dev/shm or
 *                          /tmp), removed at exit.
 *   fuzz_dir               that directory.
 *   fuzz_path(name)        "fuzz_dir/name" in a static buffer.
 *   fuzz_write(path, p, n) create or replace a file with p[0, n).
 *   fuzz_fd_mark()/fuzz_fd_check(mark)
 *                          the lowest free descriptor before and after one
 *                          input: a difference is a leaked descriptor.
 *   fuzz_fail(fmt, ...)    a broken promise of the module under test:
 *                          print and abort() (libFuzzer saves the input).
 *
 * Failure modes: a failure of the harness's own environment (no scratch
 * directory, cannot write a file) exits with a message from fuzz_init or
 * is skipped; it never counts as a finding in the code under test.
 * msg_fatal() in the module under test goes through a hook that says so
 * before libFuzzer reports "fuzz target exited": the caller decides
 * whether that fatal was legitimate.
 */
#ifndef POSTHORN_FUZZLIB_H
#define POSTHORN_FUZZLIB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "msg.h"

static char fuzz_dir[256];

__attribute__((unused))
static void fuzz_rmdir(void)
{
    DIR *d;
    struct dirent *de;
    char p[512];

    if (fuzz_dir[0] == '\0' || (d = opendir(fuzz_dir)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", fuzz_dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(fuzz_dir);
}

static void fuzz_fatal_hook(void)
{
    fprintf(stderr, "FUZZ: msg_fatal() was called (see the line above)\n");
}

__attribute__((format(printf, 1, 2), noreturn, unused))
static void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "FUZZ FAILURE: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

__attribute__((unused))
static void fuzz_init(void)
{
    const char *tmp = getenv("TMPDIR");

    /* msg_* lines would drown libFuzzer's output (and slow it down);
     * a fatal still says so through the hook. */
    msg_init("fuzz", 0);
    msg_fatal_hook(fuzz_fatal_hook);
    if (tmp == NULL || *tmp == '\0')
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/posthorn-fuzz.XXXXXX", tmp);
    if (mkdtemp(fuzz_dir) == NULL) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_dir, strerror(errno));
        exit(2);
    }
    atexit(fuzz_rmdir);
}

__attribute__((unused))
static const char *fuzz_path(const char *name)
{
    static char p[512];

    snprintf(p, sizeof(p), "%s/%s", fuzz_dir, name);
    return p;
}

/* 0, or -1 if the file could not be written (the input is then skipped). */
__attribute__((unused))
static int fuzz_write(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const char *c = p;

    if (fd < 0)
        return -1;
    while (n > 0) {
        ssize_t w = write(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return close(fd);
}

__attribute__((unused))
static int fuzz_fd_mark(void)
{
    int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

    if (fd >= 0)
        close(fd);
    return fd;
}

__attribute__((unused))
static void fuzz_fd_check(int mark)
{
    int now = fuzz_fd_mark();

    if (mark >= 0 && now != mark)
        fuzz_fail("descriptor leak: lowest free fd was %d, is now %d", mark, now);
}

#ifdef POSTHORN_IPC_H
/* Fill m's payload from "structured" fuzz input: lines "s TEXT" (a string
 * field), "b TEXT" (a bytes field) and "i N" (an int field), so a harness
 * of a protocol decoder gets past the field framing.  Include ipc.h before
 * this file to have it. */
__attribute__((unused))
static void fuzz_ipc_fields(ipc_msg_t *m, const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size), *save = NULL;

    if (text == NULL)
        abort();
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 's' && line[1] == ' ')
            ipc_put_str(m, line + 2);
        else if (line[0] == 'b' && line[1] == ' ')
            ipc_put_bytes(m, line + 2, strlen(line + 2));
        else if (line[0] == 'i' && line[1] == ' ')
            ipc_put_int(m, strtoll(line + 2, NULL, 10));
    }
    free(text);
}

/* The message a protocol harness decodes, from input whose first byte is
 * a control byte (its bits 1 and 2 are read here; the harness gives the
 * rest their meaning): bit 1, a memfd travels along; bit 2, the rest is
 * structured (fuzz_ipc_fields), else it is the raw payload.  size >= 1. */
__attribute__((unused))
static ipc_msg_t *fuzz_ipc_msg(uint32_t type, const uint8_t *data, size_t size)
{
    ipc_msg_t *m = ipc_msg_new(type, 7);

    if (data[0] & 4)
        fuzz_ipc_fields(m, data + 1, size - 1);
    else
        buf_append(m->payload, data + 1, size - 1);
    if (data[0] & 2) {
        int fd = memfd_create("fuzz", MFD_CLOEXEC);

        if (fd >= 0)
            ipc_set_fd(m, fd);
    }
    return m;
}
#endif

/* Most harnesses start the same way; one that needs more defines
 * FUZZ_OWN_INIT before including this file and writes its own. */
#ifndef FUZZ_OWN_INIT
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}
#endif

#endif

/*
 * t/unit/queue.c - unit tests for lib/queue.c (queue IDs, queue files,
 * queue directories).
 *
 * Covers: queue ID syntax (strict validation, canonical form, order equals
 * time order), IDs from rapid creations are valid, unique and increasing;
 * the round trip of every envelope, attribute, recipient and content field
 * (null sender, 8-bit and NUL bytes, 5 MB content streamed in odd pieces,
 * 2000 recipients); the commit protocol (incoming/ID, mode 0600, nothing
 * left in tmp/, no replacing an existing file, failures leave nothing);
 * abort; status updates in place (seen by a fresh reader, size unchanged,
 * bad offsets refused; the delay-warned flag beside the status, an
 * unknown flag refused; a file without flags reads as before); corrupt
 * files built by hand (every prefix, every unknown type byte, huge
 * lengths, missing version or end record, trailing garbage, records out
 * of order, bad field values, unknown status flags) all rejected with
 * EBADMSG and a reason; I/O errors (EFBIG via RLIMIT_FSIZE, missing
 * directories) returned, not fatal; misuse of the writer panics; the
 * directory helpers; queue_open's rule (a FIFO, a symbolic link, a
 * directory, a second link and another account's file are refused at
 * once, with distinct errnos; maildrop/ takes any owner); the spare pool
 * (a retired file is reused, cut to the new message; a spare with a second
 * link is refused; big files and gone ones are not kept).  Everything
 * happens in a mkdtemp directory that is removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "queue.h"
#include "queue_spare.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char dir[PATH_MAX];
static int qfd = -1;            /* the test queue directory */
static int scratch = -1;        /* a file for hand-made queue files */

/* ------------------------------------------------------------ helpers */

static int make_qdir(const char *path)
{
    int fd, i;

    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    if ((fd = open(path, O_RDONLY | O_DIRECTORY)) < 0)
        return -1;
    for (i = 0; queue_dirs[i]; i++)
        mkdirat(fd, queue_dirs[i], 0700);
    return fd;
}

static int count_in(int dfd, const char *sub)
{
    int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    if (d)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    return n;
}

static void rm_tree_at(int dfd, const char *sub)
{
    int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(fd, de->d_name, 0) < 0 && (errno == EISDIR || errno == EPERM))
            rm_tree_at(fd, de->d_name);
    }
    if (d)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    if (unlinkat(dfd, sub, AT_REMOVEDIR) < 0)
        diag("cannot remove %s: %s", sub, strerror(errno));
}

/* Collect content into a buf_t. */
static int collect(void *ctx, const void *data, size_t len)
{
    return buf_append(ctx, data, len) < 0 ? -1 : 0;
}

static int stop_at_first(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    ++*(int *)ctx;
    return 7;
}

/* Open incoming/ID and read it; NULL (with a diag) on failure. */
static queue_file_t *read_queued(const char *sub, const char *id, int *fdp)
{
    queue_file_t *q = NULL;
    char *why = NULL;
    int fd = queue_open(qfd, sub, id, O_RDONLY, NULL);

    if (fd < 0) {
        diag("open %s/%s: %s", sub, id, strerror(errno));
        return NULL;
    }
    if (queue_read(fd, &q, &why) < 0) {
        diag("read %s/%s: %s", sub, id, why ? why : "?");
        close(fd);
        free(why);
        return NULL;
    }
    *fdp = fd;
    return q;
}

/* A small committed message; returns the ID in id. */
static int small_message(char id[QUEUE_ID_SIZE], const char *content, int nrcpt)
{
    queue_writer_t *w;
    queue_env_t env = { .sender = "alice@example.org" };
    char addr[64];
    int i;

    if (queue_writer_open(qfd, &w) < 0)
        return -1;
    snprintf(id, QUEUE_ID_SIZE, "%s", queue_writer_id(w));
    queue_writer_envelope(w, &env);
    queue_writer_attr(w, QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1");
    for (i = 0; i < nrcpt; i++) {
        queue_rcpt_spec_t r = { .address = addr };

        snprintf(addr, sizeof(addr), "rcpt%d@example.com", i);
        queue_writer_rcpt(w, &r);
    }
    queue_writer_content(w, content, strlen(content));
    return queue_writer_commit(&w);
}

/* The whole file as a buf_t. */
static buf_t *file_bytes(const char *sub, const char *id)
{
    char *p = xasprintf("%s/%s/%s", dir, sub, id);
    buf_t *b = buf_new(0);
    char tmp[8192];
    ssize_t n;
    int fd = open(p, O_RDONLY);

    while (fd >= 0 && (n = read(fd, tmp, sizeof(tmp))) > 0)
        buf_append(b, tmp, (size_t)n);
    if (fd >= 0)
        close(fd);
    free(p);
    return b;
}

/* Parse bytes with queue_read via the scratch file: 0 ok, or errno. */
static int parse_bytes(const void *data, size_t len, char **whyp)
{
    queue_file_t *q = NULL;
    char *why = NULL;
    int ret;

    if (ftruncate(scratch, 0) < 0 || (len && pwrite(scratch, data, len, 0) != (ssize_t)len))
        msg_fatal("scratch: %m");
    ret = queue_read(scratch, &q, &why) == 0 ? 0 : errno;
    if (ret == 0 && (q == NULL || why != NULL))
        ret = -1;
    if (ret != 0 && (q != NULL || why == NULL))
        ret = -2;               /* an error must come with a reason, no file */
    queue_file_free(&q);
    if (whyp)
        *whyp = why;
    else
        free(why);
    return ret;
}

/* Hand-made records. */
static void rec(buf_t *b, int type, const void *p, size_t len)
{
    unsigned char h[5];

    h[0] = (unsigned char)type;
    h[1] = (unsigned char)(len >> 24);
    h[2] = (unsigned char)(len >> 16);
    h[3] = (unsigned char)(len >> 8);
    h[4] = (unsigned char)len;
    buf_append(b, h, 5);
    buf_append(b, p, len);
}

static void rec_str(buf_t *b, int type, const char *s)
{
    rec(b, type, s, strlen(s));
}

static void rec_version(buf_t *b)
{
    rec(b, 'V', "PHQ\001", 4);
}

static void rec_arrival(buf_t *b, uint32_t usec)
{
    unsigned char t[12] = { 0, 0, 0, 0, 0x60, 0, 0, 0 };

    t[8] = (unsigned char)(usec >> 24);
    t[9] = (unsigned char)(usec >> 16);
    t[10] = (unsigned char)(usec >> 8);
    t[11] = (unsigned char)usec;
    rec(b, 'T', t, 12);
}

/* A recipient payload; status byte, dsn bytes, notify, raw name part. */
static void rec_rcpt_raw(buf_t *b, int status, const char *dsn11, int notify,
                         const char *names, size_t nlen)
{
    unsigned char area[QUEUE_STATUS_SIZE + 1];
    buf_t *p = buf_new(0);

    memset(area, 0, sizeof(area));
    area[0] = (unsigned char)status;
    if (dsn11)
        memcpy(area + 1, dsn11, QUEUE_DSN_LEN);
    area[QUEUE_STATUS_SIZE] = (unsigned char)notify;
    buf_append(p, area, sizeof(area));
    buf_append(p, names, nlen);
    rec(b, 'r', p->data, p->len);
    buf_free(&p);
}

static void rec_rcpt(buf_t *b, const char *addr)
{
    buf_t *n = buf_new(0);

    buf_append(n, addr, strlen(addr) + 1);
    buf_putc(n, 0);
    rec_rcpt_raw(b, 0, NULL, 0, n->data, n->len);
    buf_free(&n);
}

static void rec_end(buf_t *b, uint64_t clen, uint32_t nrcpt)
{
    unsigned char e[12];
    int i;

    for (i = 0; i < 8; i++)
        e[i] = (unsigned char)(clen >> (56 - 8 * i));
    for (i = 0; i < 4; i++)
        e[8 + i] = (unsigned char)(nrcpt >> (24 - 8 * i));
    rec(b, 'X', e, 12);
}

/* A valid hand-made file with every record type and 3 data records. */
static buf_t *handmade(void)
{
    buf_t *b = buf_new(0);

    rec_version(b);
    rec_arrival(b, 5);
    rec_str(b, 'S', "");
    rec_str(b, 'E', "env-id-1");
    rec(b, 'R', "H", 1);
    rec_str(b, 'A', "client_name=mx.example.net");
    rec_str(b, 'A', "protocol=ESMTP");
    rec_rcpt(b, "bob@example.com");
    rec_rcpt_raw(b, 3, "4.4.1\0\0\0\0\0\0", QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY,
                 "carol@example.com\0orig@example.com\0rfc822;orig@example.com", 58);
    rec(b, 'D', "Subject: x\r\n", 12);
    rec(b, 'D', "\r\n", 2);
    rec(b, 'D', "body\0\377\r\n", 8);
    rec_end(b, 22, 2);
    return b;
}

/* Offsets of the records of a (valid) image. */
static size_t record_offsets(const buf_t *b, size_t *offs, size_t max)
{
    size_t off = 0, n = 0;
    const unsigned char *p = (const unsigned char *)b->data;

    while (off + 5 <= b->len && n < max) {
        offs[n++] = off;
        off += 5 + ((size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16
                    | (size_t)p[off + 3] << 8 | p[off + 4]);
    }
    return n;
}

/* Every proper prefix of image must be EBADMSG; returns the failures. */
static int all_prefixes_corrupt(const buf_t *img)
{
    size_t len;
    int bad = 0, r;

    for (len = 0; len < img->len; len++)
        if ((r = parse_bytes(img->data, len, NULL)) != EBADMSG) {
            if (bad++ < 5)
                diag("prefix of %zu bytes: result %d", len, r);
        }
    return bad;
}

/* ------------------------------------------------------------ tests */

static void test_ids(void)
{
    char id[QUEUE_ID_SIZE], a[QUEUE_ID_SIZE], b[QUEUE_ID_SIZE];
    char prev[QUEUE_ID_SIZE] = "";
    int64_t sec;
    uint32_t usec;
    uint64_t ino;
    int i, bad_valid = 0, bad_order = 0;
    struct timeval now;
    static const char *rejects[] = {
        "", "../x", "/", ".", "..", "0000000000z", "0000000000z01", "00000q0000z1",
        "0000000000y1", "0000000000z1/", "0000000000z1.", "000000ZZZZz1",
        "0000000000z1234567890123", "0000000000zpppppppppppp", "000000000z1",
        "0000000000z1 ", " 0000000000z1", "0000000000zz1", "0000000000z-1",
        "0000000000z1\n", "tmp/0000000000z1", "0000000000Z1",
    };

    queue_id_format(id, 0, 0, 0);
    is_str(id, "0000000000z0", "smallest ID");
    ok(queue_id_valid(id), "smallest ID is valid");
    queue_id_format(id, 1763800000, 999999, UINT64_MAX);
    ok(queue_id_valid(id), "largest inode: valid (%s)", id);
    ok(strlen(id) == QUEUE_ID_SIZE - 1, "largest ID fills QUEUE_ID_SIZE - 1");
    ok(queue_id_parse(id, &sec, &usec, &ino) == 0 && sec == 1763800000 && usec == 999999
       && ino == UINT64_MAX, "parse inverts format");
    queue_id_format(a, 1763800000, 999999, 999999999);
    queue_id_format(b, 1763800001, 0, 1);
    ok(strcmp(a, b) < 0, "later second sorts later even with a smaller inode");
    queue_id_format(a, 1763800000, 51, 5);
    queue_id_format(b, 1763800000, 52, 5);
    ok(strcmp(a, b) < 0, "microsecond digit carry keeps order");
    queue_id_format(a, 51, 0, 5);
    queue_id_format(b, 52, 0, 5);
    ok(strcmp(a, b) < 0, "second digit carry keeps order");
    for (i = 0; i < (int)(sizeof(rejects) / sizeof(rejects[0])); i++) {
        char *shown = xstrdup(rejects[i]), *c;

        for (c = shown; *c; c++)
            if (*c == '\n')
                *c = '~';       /* keep the TAP line whole */
        ok(!queue_id_valid(rejects[i]), "rejects '%s'", shown);
        free(shown);
    }
    ok(!queue_id_valid(NULL), "rejects NULL");

    /* Rapid creations from one process. */
    gettimeofday(&now, NULL);
    for (i = 0; i < 500; i++) {
        queue_writer_t *w;

        if (queue_writer_open(qfd, &w) < 0) {
            ok(0, "queue_writer_open: %s", strerror(errno));
            return;
        }
        snprintf(id, sizeof(id), "%s", queue_writer_id(w));
        queue_writer_abort(&w);
        if (!queue_id_valid(id))
            bad_valid++;
        if (strcmp(prev, id) >= 0)
            bad_order++;
        memcpy(prev, id, sizeof(prev));
    }
    is_int(bad_valid, 0, "500 rapid IDs are valid");
    is_int(bad_order, 0, "500 rapid IDs are unique and strictly increasing");
    ok(queue_id_parse(prev, &sec, &usec, &ino) == 0 && sec >= now.tv_sec
       && sec <= now.tv_sec + 5, "the ID carries the creation time");
    is_int(count_in(qfd, "tmp"), 0, "aborted writers leave nothing in tmp/");
}

static void test_round_trip(void)
{
    static const char content[] = "From: a\r\nSubject: \xe4\xf6\xfc\r\n\r\nNUL\0byte\0\r\n\xff\xfe.\r\n";
    queue_writer_t *w;
    queue_env_t env = { .sender = "", .envid = "QQ314159", .ret = QUEUE_RET_HDRS,
                        .arrival_sec = 1700000000, .arrival_usec = 123456 };
    queue_rcpt_spec_t r1 = { .address = "bob@example.com" };
    queue_rcpt_spec_t r2 = { .address = "carol@example.com", .orig = "info@example.com",
                             .orcpt = "rfc822;info@example.com",
                             .notify = QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE };
    queue_rcpt_spec_t r3 = { .address = "d\xc3\xa9@example.com", .notify = QUEUE_NOTIFY_NEVER };
    char id[QUEUE_ID_SIZE], *p;
    queue_file_t *q;
    buf_t *got = buf_new(0);
    struct stat st;
    int fd = -1, before = count_in(qfd, "incoming");

    ok(queue_writer_open(qfd, &w) == 0, "writer open");
    snprintf(id, sizeof(id), "%s", queue_writer_id(w));
    is_int(count_in(qfd, "tmp"), 1, "open creates one file in tmp/");
    ok(queue_writer_envelope(w, &env) == 0, "envelope");
    ok(queue_writer_attr(w, QUEUE_ATTR_CLIENT_NAME, "mx.example.net") == 0, "attr 1");
    ok(queue_writer_attr(w, QUEUE_ATTR_CLIENT_ADDR, "2001:db8::1") == 0, "attr 2");
    ok(queue_writer_attr(w, QUEUE_ATTR_HELO, "") == 0, "attr 3 (empty value)");
    ok(queue_writer_rcpt(w, &r1) == 0 && queue_writer_rcpt(w, &r2) == 0
       && queue_writer_rcpt(w, &r3) == 0, "three recipients");
    ok(queue_writer_content(w, content, 10) == 0
       && queue_writer_content(w, content + 10, 0) == 0
       && queue_writer_content(w, content + 10, sizeof(content) - 10) == 0, "content in pieces");
    is_int(queue_writer_content_len(w), sizeof(content), "content length counted");
    ok(queue_writer_commit(&w) == 0 && w == NULL, "commit, writer freed");
    is_int(count_in(qfd, "tmp"), 0, "nothing left in tmp/");
    is_int(count_in(qfd, "incoming"), before + 1, "one new file in incoming/");
    p = xasprintf("%s/incoming/%s", dir, id);
    ok(stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600,
       "incoming/ID exists with mode 0600");
    free(p);

    if ((q = read_queued("incoming", id, &fd)) == NULL) {
        ok(0, "read back");
        buf_free(&got);
        return;
    }
    is_int(q->arrival_sec, 1700000000, "arrival seconds");
    is_int(q->arrival_usec, 123456, "arrival microseconds");
    is_str(q->sender, "", "null sender");
    is_str(q->envid, "QQ314159", "ENVID");
    is_int(q->ret, QUEUE_RET_HDRS, "RET");
    is_int(q->nattr, 3, "three attributes");
    is_str(queue_attr(q, QUEUE_ATTR_CLIENT_NAME), "mx.example.net", "client_name");
    is_str(queue_attr(q, QUEUE_ATTR_CLIENT_ADDR), "2001:db8::1", "client_addr");
    is_str(queue_attr(q, QUEUE_ATTR_HELO), "", "empty attribute value");
    ok(queue_attr(q, "nope") == NULL, "missing attribute");
    is_int(q->nrcpt, 3, "three recipients");
    is_str(q->rcpts[0].address, "bob@example.com", "rcpt 1 address");
    ok(q->rcpts[0].orig == NULL && q->rcpts[0].orcpt == NULL && q->rcpts[0].notify == 0,
       "rcpt 1 has no orig, ORCPT, NOTIFY");
    is_str(q->rcpts[1].address, "carol@example.com", "rcpt 2 address");
    is_str(q->rcpts[1].orig, "info@example.com", "rcpt 2 orig");
    is_str(q->rcpts[1].orcpt, "rfc822;info@example.com", "rcpt 2 ORCPT");
    is_int(q->rcpts[1].notify, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE, "rcpt 2 NOTIFY");
    is_str(q->rcpts[2].address, "d\xc3\xa9@example.com", "rcpt 3 UTF-8 address");
    is_int(q->rcpts[2].notify, QUEUE_NOTIFY_NEVER, "rcpt 3 NOTIFY=NEVER");
    ok(q->rcpts[0].st.status == QUEUE_RCPT_PENDING && q->rcpts[0].st.attempts == 0
       && q->rcpts[0].st.next_attempt == 0 && q->rcpts[0].st.dsn[0] == 0,
       "new recipients are pending");
    ok(q->rcpts[0].status_offset < q->rcpts[1].status_offset
       && q->rcpts[1].status_offset < q->rcpts[2].status_offset, "status offsets increase");
    is_int(q->content_len, sizeof(content), "content length");
    is_int(q->ndata, 1, "one data record");
    ok(queue_content_copy(q, collect, got) == 0, "content copy");
    ok(got->len == sizeof(content) && memcmp(got->data, content, sizeof(content)) == 0,
       "8-bit and NUL bytes survive");
    is_int(q->size, lseek(fd, 0, SEEK_END), "size is the file size");
    queue_file_free(&q);
    ok(q == NULL, "queue_file_free NULLs the pointer");
    queue_file_free(&q);
    close(fd);
    buf_free(&got);
}

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_large(void)
{
    const size_t total = 5 * 1024 * 1024 + 12345;
    char *data = xmalloc(total), id[QUEUE_ID_SIZE], *p;
    queue_writer_t *w;
    queue_env_t env = { .sender = "big@example.org" };
    queue_rcpt_spec_t r = { .address = "x@example.com" };
    queue_file_t *q;
    buf_t *got = buf_new(0);
    size_t i, off, n;
    int fd = -1, outfd, calls = 0, pieces = 0;
    struct stat st;

    for (i = 0; i < total; i++)
        data[i] = (char)(rng() & 0xff);
    queue_writer_open(qfd, &w);
    snprintf(id, sizeof(id), "%s", queue_writer_id(w));
    queue_writer_envelope(w, &env);
    queue_writer_rcpt(w, &r);
    for (off = 0; off < total; off += n, pieces++) {
        n = (size_t)(rng() % 150000);
        if (n > total - off)
            n = total - off;
        if (queue_writer_content(w, data + off, n) < 0)
            break;
    }
    ok(off == total, "5 MB streamed in %d pieces of random size", pieces);
    ok(queue_writer_commit(&w) == 0, "large commit");
    if ((q = read_queued("incoming", id, &fd)) == NULL) {
        ok(0, "read back large");
        free(data);
        buf_free(&got);
        return;
    }
    is_int(q->content_len, total, "large content length");
    is_int(q->ndata, (total + QUEUE_DATA_MAX - 1) / QUEUE_DATA_MAX,
           "cut into full data records");
    ok(queue_content_copy(q, collect, got) == 0 && got->len == total
       && memcmp(got->data, data, total) == 0, "large content identical");
    ok(queue_content_copy(q, stop_at_first, &calls) == 7 && calls == 1,
       "callback result stops the copy");
    p = xasprintf("%s/copy", dir);
    outfd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ok(queue_content_to_fd(q, outfd) == 0 && fstat(outfd, &st) == 0
       && (size_t)st.st_size == total, "content to fd");
    close(outfd);
    unlink(p);
    free(p);
    queue_file_free(&q);
    close(fd);
    free(data);
    buf_free(&got);
}

static void test_many_rcpts(void)
{
    char id[QUEUE_ID_SIZE], addr[64];
    queue_file_t *q;
    size_t i;
    int fd = -1, bad = 0;

    ok(small_message(id, "Subject: many\r\n\r\nhi\r\n", 2000) == 0, "2000 recipients commit");
    if ((q = read_queued("incoming", id, &fd)) == NULL) {
        ok(0, "read back many");
        return;
    }
    is_int(q->nrcpt, 2000, "2000 recipients read");
    for (i = 0; i < q->nrcpt; i++) {
        snprintf(addr, sizeof(addr), "rcpt%zu@example.com", i);
        if (strcmp(q->rcpts[i].address, addr) != 0
            || (i > 0 && q->rcpts[i].status_offset <= q->rcpts[i - 1].status_offset))
            bad++;
    }
    is_int(bad, 0, "every recipient in order with its own status offset");
    is_str(queue_attr(q, QUEUE_ATTR_CLIENT_ADDR), "192.0.2.1", "attribute with many rcpts");
    queue_file_free(&q);
    close(fd);
}

static void test_status(void)
{
    char id[QUEUE_ID_SIZE];
    queue_file_t *q, *q2;
    queue_status_t st = { .status = QUEUE_RCPT_DEFERRED, .dsn = "4.4.1", .attempts = 3,
                          .next_attempt = 1800000000 };
    queue_status_t bad;
    struct stat s1, s2;
    int fd = -1, rwfd, rofd;
    off_t o;

    small_message(id, "x\r\n", 3);
    if ((q = read_queued("incoming", id, &fd)) == NULL) {
        ok(0, "read for status");
        return;
    }
    rwfd = queue_open(qfd, "incoming", id, O_RDWR, NULL);
    fstat(rwfd, &s1);
    o = q->rcpts[1].status_offset;
    ok(queue_set_rcpt_status(rwfd, o, &st, QUEUE_SYNC) == 0, "status update with fdatasync");
    st.status = QUEUE_RCPT_DELIVERED;
    st.dsn[0] = 0;
    st.attempts = UINT32_MAX;
    ok(queue_set_rcpt_status(rwfd, q->rcpts[2].status_offset, &st, 0) == 0,
       "status update without sync");
    fstat(rwfd, &s2);
    is_int(s2.st_size, s1.st_size, "file size unchanged");
    ok(s2.st_ino == s1.st_ino, "same inode (in place)");
    queue_file_free(&q);
    close(fd);
    if ((q2 = read_queued("incoming", id, &fd)) == NULL) {
        ok(0, "fresh reader");
        close(rwfd);
        return;
    }
    ok(q2->rcpts[0].st.status == QUEUE_RCPT_PENDING, "rcpt 1 untouched");
    ok(q2->rcpts[1].st.status == QUEUE_RCPT_DEFERRED && strcmp(q2->rcpts[1].st.dsn, "4.4.1") == 0
       && q2->rcpts[1].st.attempts == 3 && q2->rcpts[1].st.next_attempt == 1800000000,
       "fresh reader sees the deferred status");
    ok(q2->rcpts[2].st.status == QUEUE_RCPT_DELIVERED && q2->rcpts[2].st.dsn[0] == 0
       && q2->rcpts[2].st.attempts == UINT32_MAX, "fresh reader sees the delivered status");
    ok(q2->rcpts[1].st.flags == 0 && q2->rcpts[2].st.flags == 0, "no flags unless set");
    is_str(q2->rcpts[1].address, "rcpt1@example.com", "address intact after update");

    errno = 0;
    ok(queue_set_rcpt_status(rwfd, o + 1, &st, 0) < 0 && errno == EBADMSG,
       "offset not at a status area: EBADMSG");
    errno = 0;
    ok(queue_set_rcpt_status(rwfd, 0, &st, 0) < 0 && errno == EBADMSG, "offset 0: EBADMSG");
    errno = 0;
    ok(queue_set_rcpt_status(rwfd, q2->content_offset + QUEUE_HDR_SIZE, &st, 0) < 0
       && errno == EBADMSG, "offset in a data record: EBADMSG");
    ok(queue_set_rcpt_status(rwfd, q2->size + 100, &st, 0) < 0, "offset past the end fails");
    bad = st;
    bad.status = 9;
    errno = 0;
    ok(queue_set_rcpt_status(rwfd, o, &bad, 0) < 0 && errno == EINVAL, "bad status: EINVAL");
    bad = st;
    snprintf(bad.dsn, sizeof(bad.dsn), "4x4");
    errno = 0;
    ok(queue_set_rcpt_status(rwfd, o, &bad, 0) < 0 && errno == EINVAL, "bad DSN code: EINVAL");
    bad = st;
    bad.next_attempt = -1;
    ok(queue_set_rcpt_status(rwfd, o, &bad, 0) < 0 && errno == EINVAL, "negative time: EINVAL");
    bad = st;
    bad.flags = 0x40;
    errno = 0;
    ok(queue_set_rcpt_status(rwfd, o, &bad, 0) < 0 && errno == EINVAL,
       "a flag the format does not know: EINVAL");
    {
        queue_status_t warned = { .status = QUEUE_RCPT_DEFERRED, .flags = QUEUE_RCPT_F_DELAY_WARNED,
                                  .dsn = "4.7.1", .attempts = 4, .next_attempt = 1800000001 };
        queue_file_t *q3;
        int fd3 = -1;

        ok(queue_set_rcpt_status(rwfd, q2->rcpts[0].status_offset, &warned, QUEUE_SYNC) == 0,
           "status update with the delay-warned flag");
        if ((q3 = read_queued("incoming", id, &fd3)) != NULL) {
            ok(q3->rcpts[0].st.status == QUEUE_RCPT_DEFERRED
               && q3->rcpts[0].st.flags == QUEUE_RCPT_F_DELAY_WARNED
               && strcmp(q3->rcpts[0].st.dsn, "4.7.1") == 0 && q3->rcpts[0].st.attempts == 4
               && q3->rcpts[0].st.next_attempt == 1800000001 && q3->rcpts[1].st.flags == 0,
               "fresh reader sees the flag beside the status, on that recipient only");
            queue_file_free(&q3);
            close(fd3);
        } else {
            ok(0, "fresh reader after the flag");
        }
    }
    rofd = queue_open(qfd, "incoming", id, O_RDONLY, NULL);
    errno = 0;
    ok(queue_set_rcpt_status(rofd, o, &st, 0) < 0 && errno == EBADF,
       "read-only descriptor: EBADF, not fatal");
    close(rofd);
    queue_file_free(&q2);
    close(fd);
    fstat(rwfd, &s2);
    is_int(s2.st_size, s1.st_size, "refused updates change nothing");
    close(rwfd);
    if ((q = read_queued("incoming", id, &fd)) != NULL) {
        ok(1, "file still valid after refused updates");
        queue_file_free(&q);
        close(fd);
    } else
        ok(0, "file still valid after refused updates");
}

static void test_commit_abort(void)
{
    queue_writer_t *w;
    queue_env_t env = { .sender = "s@example.org" };
    queue_rcpt_spec_t r = { .address = "r@example.com" };
    char id[QUEUE_ID_SIZE], *p, *sub;
    int before = count_in(qfd, "incoming"), q2, fd;
    struct rlimit old, lim;
    char big[QUEUE_FIELD_MAX + 2];

    queue_writer_open(qfd, &w);
    queue_writer_envelope(w, &env);
    queue_writer_rcpt(w, &r);
    queue_writer_content(w, "abc", 3);
    queue_writer_abort(&w);
    ok(w == NULL, "abort NULLs the pointer");
    is_int(count_in(qfd, "tmp"), 0, "abort leaves nothing in tmp/");
    is_int(count_in(qfd, "incoming"), before, "abort adds nothing to incoming/");

    /* Never replace an existing queue file. */
    queue_writer_open(qfd, &w);
    snprintf(id, sizeof(id), "%s", queue_writer_id(w));
    p = xasprintf("%s/incoming/%s", dir, id);
    write_text(p, "precious");
    queue_writer_envelope(w, &env);
    queue_writer_rcpt(w, &r);
    errno = 0;
    ok(queue_writer_commit(&w) < 0 && errno == EEXIST && w == NULL,
       "commit onto an existing incoming/ID fails with EEXIST");
    sub = slurp(p);
    is_str(sub, "precious", "existing file untouched");
    free(sub);
    unlink(p);
    free(p);
    is_int(count_in(qfd, "tmp"), 0, "failed commit leaves nothing in tmp/");

    /* Oversized field. */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    queue_writer_open(qfd, &w);
    env.sender = big;
    errno = 0;
    ok(queue_writer_envelope(w, &env) < 0 && errno == EMSGSIZE, "oversized sender: EMSGSIZE");
    env.sender = "s@example.org";
    queue_writer_abort(&w);

    /* A second queue directory without incoming/: commit fails cleanly. */
    p = xasprintf("%s/q2", dir);
    q2 = make_qdir(p);
    unlinkat(q2, "incoming", AT_REMOVEDIR);
    ok(queue_writer_open(q2, &w) == 0, "writer in the second queue");
    queue_writer_envelope(w, &env);
    queue_writer_rcpt(w, &r);
    errno = 0;
    ok(queue_writer_commit(&w) < 0 && errno == ENOENT, "commit without incoming/: ENOENT");
    is_int(count_in(q2, "tmp"), 0, "... and nothing left in tmp/");
    unlinkat(q2, "tmp", AT_REMOVEDIR);
    errno = 0;
    ok(queue_writer_open(q2, &w) < 0 && errno == ENOENT && w == NULL,
       "open without tmp/: ENOENT, not fatal");
    mkdirat(q2, "tmp", 0700);
    mkdirat(q2, "incoming", 0700);

    /* A write error (file size limit) is sticky and returned. */
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 100000;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        char *chunk = xcalloc(1, 300000);
        int r1, r2, e1;

        queue_writer_open(q2, &w);
        queue_writer_envelope(w, &env);
        queue_writer_rcpt(w, &r);
        errno = 0;
        r1 = queue_writer_content(w, chunk, 300000);
        e1 = errno;
        r2 = queue_writer_content(w, chunk, 10);
        ok(r1 < 0 && e1 == EFBIG && r2 < 0 && errno == EFBIG, "write error returned and sticky");
        errno = 0;
        ok(queue_writer_commit(&w) < 0 && errno == EFBIG, "commit reports the write error");
        setrlimit(RLIMIT_FSIZE, &old);
        is_int(count_in(q2, "tmp"), 0, "failed write leaves nothing in tmp/");
        is_int(count_in(q2, "incoming"), 0, "failed write adds nothing to incoming/");
        free(chunk);
    } else
        diag("setrlimit: %s (skipped)", strerror(errno));
    signal(SIGXFSZ, SIG_DFL);
    close(q2);
    rm_tree_at(AT_FDCWD, p);
    free(p);

    /* A read-only or non-file descriptor is an error, not a crash. */
    {
        queue_file_t *q = NULL;
        char *why = NULL;

        small_message(id, "y\r\n", 1);
        p = xasprintf("%s/incoming/%s", dir, id);
        fd = open(p, O_WRONLY);
        errno = 0;
        ok(queue_read(fd, &q, &why) < 0 && errno == EBADF && q == NULL && why != NULL,
           "write-only descriptor: EBADF with a reason (%s)", why ? why : "");
        free(why);
        close(fd);
        free(p);
        why = NULL;
        errno = 0;
        ok(queue_read(qfd, &q, &why) < 0 && errno == EBADMSG && why != NULL,
           "directory: EBADMSG (%s)", why ? why : "");
        free(why);
    }
}

static void test_corrupt(void)
{
    buf_t *img = handmade(), *b;
    size_t offs[64], nrec, i, j;
    char *why = NULL, id[QUEUE_ID_SIZE];
    int r, bad;

    r = parse_bytes(img->data, img->len, &why);
    is_int(r, 0, "hand-made file is valid (%s)", why ? why : "ok");
    free(why);
    {
        queue_file_t *q = NULL;
        buf_t *got = buf_new(0);

        queue_read(scratch, &q, NULL);
        ok(q && q->ndata == 3 && q->content_len == 22 && q->nrcpt == 2
           && q->rcpts[1].st.status == QUEUE_RCPT_DEFERRED
           && strcmp(q->rcpts[1].st.dsn, "4.4.1") == 0 && q->ret == QUEUE_RET_HDRS
           && strcmp(q->rcpts[1].orcpt, "rfc822;orig@example.com") == 0
           && q->rcpts[0].st.flags == 0 && q->rcpts[1].st.flags == 0,
           "hand-made file decodes as written (a file without flags: none set)");
        ok(q && queue_content_copy(q, collect, got) == 0 && got->len == 22
           && memcmp(got->data, "Subject: x\r\n\r\nbody\0\377\r\n", 22) == 0,
           "content spread over three data records");
        queue_file_free(&q);
        buf_free(&got);
    }

    is_int(all_prefixes_corrupt(img), 0,
           "every one of the %zu proper prefixes of the hand-made file is corrupt", img->len);
    small_message(id, "Subject: t\r\n\r\ntruncate me\r\n", 2);
    b = file_bytes("incoming", id);
    is_int(all_prefixes_corrupt(b), 0,
           "every one of the %zu proper prefixes of a written file is corrupt", b->len);
    buf_free(&b);

    nrec = record_offsets(img, offs, 64);
    is_int(nrec, 13, "13 records in the hand-made file");

    /* Every unknown type byte in every record. */
    bad = 0;
    for (i = 0; i < nrec; i++)
        for (j = 0; j < 256; j++) {
            if (strchr("VTSERArDX", (int)j) && j != 0)
                continue;
            b = buf_new(0);
            buf_append(b, img->data, img->len);
            b->data[offs[i]] = (char)j;
            if (parse_bytes(b->data, b->len, NULL) != EBADMSG)
                bad++;
            buf_free(&b);
        }
    is_int(bad, 0, "every unknown type byte in every record is corrupt");
    /* Known but misplaced type bytes: count those that still parse. */
    bad = 0;
    for (i = 0; i < nrec; i++)
        for (j = 0; j < 9; j++) {
            b = buf_new(0);
            buf_append(b, img->data, img->len);
            if (b->data[offs[i]] == "VTSERArDX"[j]) {
                buf_free(&b);
                continue;
            }
            b->data[offs[i]] = "VTSERArDX"[j];
            r = parse_bytes(b->data, b->len, NULL);
            if (r != EBADMSG && r != 0)
                bad++;
            buf_free(&b);
        }
    is_int(bad, 0, "known type bytes swapped in: a clean result either way");
    b = buf_new(0);
    buf_append(b, img->data, img->len);
    b->data[offs[5]] = 'E';             /* attribute turned into a 2nd ENVID */
    is_int(parse_bytes(b->data, b->len, NULL), EBADMSG, "second ENVID is corrupt");
    b->data[offs[5]] = 'A';
    b->data[offs[2]] = 'r';             /* sender turned into a recipient */
    is_int(parse_bytes(b->data, b->len, NULL), EBADMSG, "recipient before sender is corrupt");
    buf_free(&b);

    /* Lengths. */
    bad = 0;
    for (i = 0; i < nrec; i++) {
        static const uint32_t lens[] = { 0xffffffffu, 0x7fffffffu, 0x80000000u, 0x10000u + 1 };
        uint32_t orig;
        unsigned char *h;

        for (j = 0; j < 6; j++) {
            uint32_t v;

            b = buf_new(0);
            buf_append(b, img->data, img->len);
            h = (unsigned char *)b->data + offs[i];
            orig = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
            v = j < 4 ? lens[j] : j == 4 ? orig + 1 : (uint32_t)img->len;
            h[1] = (unsigned char)(v >> 24);
            h[2] = (unsigned char)(v >> 16);
            h[3] = (unsigned char)(v >> 8);
            h[4] = (unsigned char)v;
            if (parse_bytes(b->data, b->len, NULL) != EBADMSG)
                bad++;
            buf_free(&b);
        }
    }
    is_int(bad, 0, "huge or too long lengths in every record are corrupt");

    /* Structure. */
#define EXPECT_CORRUPT(what, want) do { \
        char *why_ = NULL; \
        int r_ = parse_bytes(b->data, b->len, &why_); \
        is_int(r_, EBADMSG, "%s", what); \
        if (want) like(why_, want, "... reason: %s", why_ ? why_ : "(none)"); \
        free(why_); \
        buf_free(&b); \
    } while (0)

    b = buf_new(0);
    buf_append(b, img->data, offs[12]);
    EXPECT_CORRUPT("missing end record", "no end record");
    b = buf_new(0);
    buf_append(b, img->data + offs[1], img->len - offs[1]);
    EXPECT_CORRUPT("missing version record", "not the version record");
    b = buf_new(0);
    buf_append(b, img->data, img->len);
    buf_putc(b, '\n');
    EXPECT_CORRUPT("one byte after the end record", NULL);
    b = buf_new(0);
    buf_append(b, img->data, img->len);
    rec_end(b, 22, 2);
    EXPECT_CORRUPT("a second end record", "after the end record");
    b = buf_new(0);
    buf_append(b, img->data, img->len);
    buf_append(b, img->data, img->len);
    EXPECT_CORRUPT("the file twice", "after the end record");
    b = buf_new(0);
    EXPECT_CORRUPT("empty file", "empty file");

    b = buf_new(0);
    rec_version(b); rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', "");
    rec_rcpt(b, "a@b"); rec_end(b, 0, 1);
    EXPECT_CORRUPT("two version records", "version record not first");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_rcpt(b, "a@b"); rec_str(b, 'S', "");
    rec_end(b, 0, 1);
    EXPECT_CORRUPT("recipient before sender", "before arrival time and sender");
    b = buf_new(0);
    rec_version(b); rec_str(b, 'S', ""); rec_rcpt(b, "a@b"); rec_end(b, 0, 1);
    EXPECT_CORRUPT("no arrival record", "before arrival");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', ""); rec(b, 'D', "x", 1);
    rec_rcpt(b, "a@b"); rec_end(b, 1, 1);
    EXPECT_CORRUPT("data before recipients", "data record out of order");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', ""); rec_rcpt(b, "a@b");
    rec_str(b, 'A', "x=y"); rec_end(b, 0, 1);
    EXPECT_CORRUPT("attribute after recipients", "out of order");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', ""); rec_rcpt(b, "a@b");
    rec(b, 'D', "x", 1); rec_rcpt(b, "c@d"); rec_end(b, 1, 2);
    EXPECT_CORRUPT("recipient after data", "recipient record out of order");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_arrival(b, 0); rec_str(b, 'S', "");
    rec_rcpt(b, "a@b"); rec_end(b, 0, 1);
    EXPECT_CORRUPT("two arrival records", "repeated");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', ""); rec_str(b, 'S', "x@y");
    rec_rcpt(b, "a@b"); rec_end(b, 0, 1);
    EXPECT_CORRUPT("two senders", "repeated");
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', ""); rec_end(b, 0, 0);
    EXPECT_CORRUPT("no recipients", "before any recipient");

    /* Field values. */
#define ONE_BAD(what, want, ...) do { \
        b = buf_new(0); \
        __VA_ARGS__; \
        EXPECT_CORRUPT(what, want); \
    } while (0)
#define HEAD rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', "")
#define TAIL rec_rcpt(b, "a@b"); rec_end(b, 0, 1)
    ONE_BAD("bad magic", "bad version record", rec(b, 'V', "XYZ\001", 4));
    ONE_BAD("version 2", "unsupported", rec(b, 'V', "PHQ\002", 4); rec_arrival(b, 0);
            rec_str(b, 'S', ""); TAIL);
    ONE_BAD("version record of 5 bytes", "bad version record", rec(b, 'V', "PHQ\001\001", 5));
    ONE_BAD("microseconds out of range", "bad arrival", rec_version(b);
            rec_arrival(b, 1000000); rec_str(b, 'S', ""); TAIL);
    ONE_BAD("short arrival record", "bad arrival", rec_version(b); rec(b, 'T', "12345678", 8));
    ONE_BAD("NUL in sender", "NUL in sender", rec_version(b); rec_arrival(b, 0);
            rec(b, 'S', "a\0b", 3); TAIL);
    ONE_BAD("empty ENVID", "bad ENVID", HEAD; rec(b, 'E', "", 0); TAIL);
    ONE_BAD("RET X", "bad RET", HEAD; rec(b, 'R', "X", 1); TAIL);
    ONE_BAD("RET twice", "repeated", HEAD; rec(b, 'R', "F", 1); rec(b, 'R', "F", 1); TAIL);
    ONE_BAD("attribute without =", "bad attribute", HEAD; rec_str(b, 'A', "novalue"); TAIL);
    ONE_BAD("attribute with a bad name", "bad attribute", HEAD; rec_str(b, 'A', "Bad=1"); TAIL);
    ONE_BAD("attribute with an empty name", "bad attribute", HEAD; rec_str(b, 'A', "=1"); TAIL);
    ONE_BAD("attribute with NUL", "bad attribute", HEAD; rec(b, 'A', "a=\0", 3); TAIL);
    ONE_BAD("status byte 7", "status area", HEAD; rec_rcpt_raw(b, 7, NULL, 0, "a@b\0\0", 5);
            rec_end(b, 0, 1));
    ONE_BAD("an unknown recipient flag (0x40)", "status area", HEAD;
            rec_rcpt_raw(b, 0x40 | QUEUE_RCPT_DEFERRED, NULL, 0, "a@b\0\0", 5);
            rec_end(b, 0, 1));
    ONE_BAD("the delay-warned flag on status 7", "status area", HEAD;
            rec_rcpt_raw(b, QUEUE_RCPT_F_DELAY_WARNED | 7, NULL, 0, "a@b\0\0", 5);
            rec_end(b, 0, 1));
    ONE_BAD("DSN code with a letter", "status area", HEAD;
            rec_rcpt_raw(b, 3, "4.x.1\0\0\0\0\0\0", 0, "a@b\0\0", 5); rec_end(b, 0, 1));
    ONE_BAD("DSN code not NUL padded", "status area", HEAD;
            rec_rcpt_raw(b, 3, "4.4.1\0\0\0\0\0" "1", 0, "a@b\0\0", 5); rec_end(b, 0, 1));
    ONE_BAD("NOTIFY=NEVER,SUCCESS", "NOTIFY", HEAD;
            rec_rcpt_raw(b, 0, NULL, QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_SUCCESS, "a@b\0\0", 5);
            rec_end(b, 0, 1));
    ONE_BAD("unknown NOTIFY bit", "NOTIFY", HEAD; rec_rcpt_raw(b, 0, NULL, 0x10, "a@b\0\0", 5);
            rec_end(b, 0, 1));
    ONE_BAD("recipient with one NUL", "two NUL", HEAD; rec_rcpt_raw(b, 0, NULL, 0, "a@b\0xy", 6);
            rec_end(b, 0, 1));
    ONE_BAD("recipient with three NULs", "two NUL", HEAD;
            rec_rcpt_raw(b, 0, NULL, 0, "a@b\0\0\0", 6); rec_end(b, 0, 1));
    ONE_BAD("empty recipient address", "empty recipient", HEAD;
            rec_rcpt_raw(b, 0, NULL, 0, "\0x\0", 3); rec_end(b, 0, 1));
    ONE_BAD("recipient record too short", "too short", HEAD; rec(b, 'r', "abc", 3);
            rec_end(b, 0, 1));
    ONE_BAD("empty data record", "bad data record length", HEAD; rec_rcpt(b, "a@b");
            rec(b, 'D', "", 0); rec_end(b, 0, 1));
    {
        char *big = xcalloc(1, QUEUE_DATA_MAX + 1);

        ONE_BAD("oversized data record", "bad data record length", HEAD; rec_rcpt(b, "a@b");
                rec(b, 'D', big, QUEUE_DATA_MAX + 1); rec_end(b, QUEUE_DATA_MAX + 1, 1));
        ONE_BAD("oversized sender record", "too long", rec_version(b); rec_arrival(b, 0);
                rec(b, 'S', big, QUEUE_FIELD_MAX + 1); TAIL);
        free(big);
    }
    ONE_BAD("end record: wrong content length", "does not match", HEAD; rec_rcpt(b, "a@b");
            rec(b, 'D', "xy", 2); rec_end(b, 3, 1));
    ONE_BAD("end record: wrong recipient count", "does not match", HEAD; rec_rcpt(b, "a@b");
            rec_end(b, 0, 2));
    ONE_BAD("end record of 11 bytes", "bad end record", HEAD; rec_rcpt(b, "a@b");
            rec(b, 'X', "12345678901", 11));
    ONE_BAD("truncated header", "truncated record header", HEAD; TAIL;
            buf_truncate(b, b->len - 17 + 3));
#undef HEAD
#undef TAIL

    /* A minimal valid file with no content and empty fields. */
    b = buf_new(0);
    rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', ""); rec_rcpt(b, "a@b"); rec_end(b, 0, 1);
    is_int(parse_bytes(b->data, b->len, NULL), 0, "minimal file with no content is valid");
    buf_free(&b);

    /* The delay-warned flag beside each status is valid and reads apart. */
    for (int stv = QUEUE_RCPT_PENDING, good = 0; stv <= QUEUE_RCPT_DEFERRED; stv++) {
        queue_file_t *q = NULL;

        b = buf_new(0);
        rec_version(b); rec_arrival(b, 0); rec_str(b, 'S', "");
        rec_rcpt_raw(b, QUEUE_RCPT_F_DELAY_WARNED | stv, "4.4.1\0\0\0\0\0\0", 0, "a@b\0\0", 5);
        rec_end(b, 0, 1);
        if (parse_bytes(b->data, b->len, NULL) == 0 && queue_read(scratch, &q, NULL) == 0
            && q->rcpts[0].st.status == stv && q->rcpts[0].st.flags == QUEUE_RCPT_F_DELAY_WARNED)
            good++;
        queue_file_free(&q);
        buf_free(&b);
        if (stv == QUEUE_RCPT_DEFERRED)
            is_int(good, 4, "status byte with the delay-warned flag: valid, flag and status "
                   "apart, for each of the 4 statuses");
    }
    buf_free(&img);
}

static void test_dirs(void)
{
    char id[QUEUE_ID_SIZE];
    int fd, before_in, before_act;

    ok(queue_dir_valid("incoming") && queue_dir_valid("maildrop") && queue_dir_valid("tmp"),
       "known directories");
    ok(!queue_dir_valid("pid") && !queue_dir_valid("") && !queue_dir_valid("../incoming")
       && !queue_dir_valid(NULL), "other directories refused");
    small_message(id, "move me\r\n", 1);
    before_in = count_in(qfd, "incoming");
    before_act = count_in(qfd, "active");
    ok(queue_move(qfd, QUEUE_DIR_INCOMING, QUEUE_DIR_ACTIVE, id, QUEUE_SYNC) == 0,
       "move incoming -> active");
    ok(count_in(qfd, "incoming") == before_in - 1 && count_in(qfd, "active") == before_act + 1,
       "file moved");
    ok((fd = queue_open(qfd, QUEUE_DIR_ACTIVE, id, O_RDONLY, NULL)) >= 0, "open active/ID");
    if (fd >= 0)
        close(fd);
    ok(queue_move(qfd, QUEUE_DIR_ACTIVE, QUEUE_DIR_DEFERRED, id, 0) == 0, "move without sync");
    errno = 0;
    ok(queue_move(qfd, QUEUE_DIR_ACTIVE, QUEUE_DIR_HOLD, id, 0) < 0 && errno == ENOENT,
       "moving a missing file: ENOENT");
    errno = 0;
    ok(queue_move(qfd, QUEUE_DIR_DEFERRED, QUEUE_DIR_HOLD, "../x", 0) < 0 && errno == EINVAL,
       "bad ID refused: EINVAL");
    errno = 0;
    ok(queue_move(qfd, QUEUE_DIR_DEFERRED, "private", id, 0) < 0 && errno == EINVAL,
       "bad directory refused: EINVAL");
    errno = 0;
    ok(queue_open(qfd, "incoming", "..", O_RDONLY, NULL) < 0 && errno == EINVAL,
       "open '..': EINVAL");
    ok(queue_remove(qfd, QUEUE_DIR_DEFERRED, id) == 0 && count_in(qfd, "deferred") == 0,
       "remove");
    errno = 0;
    ok(queue_remove(qfd, QUEUE_DIR_DEFERRED, id) < 0 && errno == ENOENT, "remove again: ENOENT");
}

/* queue_open's rule: no symbolic link, FIFO, directory, second link or
 * foreign owner, and nothing of that kind can block it. */
/* "deferred/ID" (or "TOP/deferred/ID"), in one of two static buffers. */
static const char *dpath(const char *top, const char *id, int slot)
{
    static char b[2][PATH_MAX + 64];

    if (snprintf(b[slot], sizeof(b[slot]), "%s%sdeferred/%s", top ? top : "", top ? "/" : "",
                 id) >= (int)sizeof(b[slot]))
        msg_fatal("dpath: too long");
    return b[slot];
}

static void test_open_rule(void)
{
    char id[QUEUE_ID_SIZE], fifo[QUEUE_ID_SIZE], link_[QUEUE_ID_SIZE], hard[QUEUE_ID_SIZE],
         sub[QUEUE_ID_SIZE];
    const char *why = NULL;
    int fd, fl;

    small_message(id, "open me\r\n", 1);
    queue_id_format(fifo, 1700000000, 1, 11);
    queue_id_format(link_, 1700000000, 2, 12);
    queue_id_format(hard, 1700000000, 3, 13);
    queue_id_format(sub, 1700000000, 4, 14);
    ok(queue_move(qfd, QUEUE_DIR_INCOMING, QUEUE_DIR_DEFERRED, id, 0) == 0, "a file in deferred/");
    ok((fd = queue_open(qfd, QUEUE_DIR_DEFERRED, id, O_RDWR, &why)) >= 0, "it opens");
    if (fd >= 0) {
        fl = fcntl(fd, F_GETFL);
        ok(fl >= 0 && !(fl & O_NONBLOCK) && (fl & O_ACCMODE) == O_RDWR,
           "read-write and blocking again");
        ok(fcntl(fd, F_GETFD) == FD_CLOEXEC, "close-on-exec");
        close(fd);
    }

    ok(mkfifoat(qfd, dpath(NULL, fifo, 0), 0600) == 0, "a FIFO under a valid queue ID");
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, fifo, O_RDONLY, &why) < 0 && errno == EINVAL
       && queue_open_refused(errno), "the FIFO is refused at once (not blocked on)");
    is_str(why, "not a regular file", "  not a regular file");

    ok(symlinkat(dpath(dir, id, 1), qfd, dpath(NULL, link_, 0)) == 0,
       "a symbolic link to a good queue file");
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, link_, O_RDONLY, &why) < 0 && errno == ELOOP
       && queue_open_refused(errno), "the symbolic link is refused: ELOOP");
    is_str(why, "a symbolic link", "  a symbolic link");

    ok(linkat(qfd, dpath(NULL, id, 0), qfd, dpath(NULL, hard, 1), 0) == 0,
       "a second link to it");
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, hard, O_RDONLY, &why) < 0 && errno == EMLINK
       && queue_open_refused(errno), "the second link is refused: EMLINK");
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, id, O_RDONLY, &why) < 0 && errno == EMLINK,
       "and so is the first name while both exist");
    unlinkat(qfd, dpath(NULL, hard, 0), 0);

    ok(mkdirat(qfd, dpath(NULL, sub, 0), 0700) == 0, "a directory under a queue ID");
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, sub, O_RDONLY, &why) < 0 && queue_open_refused(errno),
       "the directory is refused");
    unlinkat(qfd, dpath(NULL, sub, 0), AT_REMOVEDIR);

    if (geteuid() == 0) {
        ok(fchownat(qfd, dpath(NULL, id, 0), 65534, 65534, 0) == 0,
           "the file given to another account");
        errno = 0;
        ok(queue_open(qfd, QUEUE_DIR_DEFERRED, id, O_RDONLY, &why) < 0 && errno == EPERM
           && queue_open_refused(errno), "a file not owned by the directory's owner: EPERM");
        is_str(why, "owned by another account", "  owned by another account");
        ok(queue_move(qfd, QUEUE_DIR_DEFERRED, QUEUE_DIR_MAILDROP, id, 0) == 0
           && (fd = queue_open(qfd, QUEUE_DIR_MAILDROP, id, O_RDONLY, &why)) >= 0,
           "in maildrop/ the submitter's file is fine");
        if (fd >= 0)
            close(fd);
        queue_remove(qfd, QUEUE_DIR_MAILDROP, id);
    } else {
        queue_remove(qfd, QUEUE_DIR_DEFERRED, id);
    }
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, id, O_RDONLY, &why) < 0 && errno == ENOENT
       && !queue_open_refused(errno), "a name that is gone: ENOENT, not refused");
    errno = 0;
    ok(queue_open(qfd, QUEUE_DIR_DEFERRED, id, O_RDONLY | O_CREAT, &why) < 0 && errno == EINVAL,
       "O_CREAT is refused");
    unlinkat(qfd, dpath(NULL, fifo, 0), 0);
    unlinkat(qfd, dpath(NULL, link_, 0), 0);
}

/* Misuse panics (our bug). */
static void misuse_envelope_twice(void)
{
    queue_writer_t *w;
    queue_env_t env = { .sender = "" };

    queue_writer_open(qfd, &w);
    queue_writer_envelope(w, &env);
    queue_writer_envelope(w, &env);
}

static void misuse_rcpt_first(void)
{
    queue_writer_t *w;
    queue_rcpt_spec_t r = { .address = "a@b" };

    queue_writer_open(qfd, &w);
    queue_writer_rcpt(w, &r);
}

static void misuse_commit_no_rcpt(void)
{
    queue_writer_t *w;
    queue_env_t env = { .sender = "" };

    queue_writer_open(qfd, &w);
    queue_writer_envelope(w, &env);
    queue_writer_commit(&w);
}

static void misuse_bad_notify(void)
{
    queue_writer_t *w;
    queue_env_t env = { .sender = "" };
    queue_rcpt_spec_t r = { .address = "a@b", .notify = QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_DELAY };

    queue_writer_open(qfd, &w);
    queue_writer_envelope(w, &env);
    queue_writer_rcpt(w, &r);
}

/* The spare pool (lib/queue_spare): a finished message's file is reused by
 * the next writer, cut to what that writer wrote; odd spares are refused. */
static ino_t queued_inode(const char *sub, const char *id)
{
    char *p = xasprintf("%s/%s/%s", dir, sub, id);
    struct stat st;
    int r = stat(p, &st);

    free(p);
    return r == 0 ? st.st_ino : 0;
}

static void test_spares(void)
{
    char id1[QUEUE_ID_SIZE], id2[QUEUE_ID_SIZE], id3[QUEUE_ID_SIZE], *p, *q2;
    buf_t *content = buf_new(0), *got = buf_new(0);
    queue_file_t *q;
    ino_t ino1, ino3;
    int fd, n;

    for (n = 0; n < 3000; n++)
        buf_append(content, "a long first message ", 21);
    buf_putc(content, '\0');
    ok(small_message(id1, content->data, 3) == 0, "spares: a long message is queued");
    ino1 = queued_inode("incoming", id1);
    ok(queue_spare_retire(qfd, "incoming", id1, 64000) == 0, "it is retired");
    is_int(queued_inode("incoming", id1) == 0, 1, "... out of incoming/");
    p = xasprintf("%s%s", QUEUE_SPARE_PREFIX, id1);
    ok(queued_inode("tmp", p) == ino1, "... into tmp/ as spare.ID");
    free(p);
    /* Writers that found no spare look again after a second. */
    usleep(1100000);
    ok(small_message(id2, "short", 1) == 0, "the next message is queued");
    ok(queued_inode("incoming", id2) == ino1, "... in the spare file (same inode)");
    ok(strcmp(id1, id2) != 0, "... under a new queue ID");
    is_int(count_in(qfd, "tmp"), 0, "... and the pool is empty");
    if ((q = read_queued("incoming", id2, &fd)) != NULL) {
        queue_content_copy(q, collect, got);
        is_int((int)got->len, 5, "the reused file holds only the new message");
        ok(q->size < 200 && q->nrcpt == 1, "... cut to its own size (%lld bytes)",
           (long long)q->size);
        queue_file_free(&q);
        close(fd);
    } else {
        ok(0, "the reused file reads back");
    }

    /* A spare being written is no other writer's; one given up stays a
     * spare. */
    {
        queue_writer_t *wa, *wb;
        char ida[QUEUE_ID_SIZE], idb[QUEUE_ID_SIZE];

        ok(queue_spare_retire(qfd, "incoming", id2, 100) == 0, "retire again");
        usleep(1100000);
        ok(queue_writer_open(qfd, &wa) == 0, "writer A opens");
        snprintf(ida, sizeof(ida), "%s", queue_writer_id(wa));
        ok(queue_writer_open(qfd, &wb) == 0, "writer B opens");
        snprintf(idb, sizeof(idb), "%s", queue_writer_id(wb));
        {
            int64_t sec;
            uint32_t usec;
            uint64_t ia = 0, ib = 0;

            queue_id_parse(ida, &sec, &usec, &ia);
            queue_id_parse(idb, &sec, &usec, &ib);
            ok(ia == (uint64_t)ino1, "A writes in the spare (its ID has the spare's inode)");
            ok(ib != (uint64_t)ino1, "B does not get the spare A holds");
        }
        queue_writer_abort(&wa);
        queue_writer_abort(&wb);
        is_int(count_in(qfd, "tmp"), 1, "A's spare is a spare again, B's file is gone");
        usleep(1100000);
        ok(small_message(id2, "again", 1) == 0, "a message is queued");
        ok(queued_inode("incoming", id2) == ino1, "... in that spare once more");
    }

    /* A spare with a second link is not used (and is removed). */
    ok(queue_spare_retire(qfd, "incoming", id2, 100) == 0, "retire the short one");
    p = xasprintf("%s/tmp/%s%s", dir, QUEUE_SPARE_PREFIX, id2);
    q2 = xasprintf("%s/linked", dir);
    ok(link(p, q2) == 0, "a second link to the spare");
    usleep(1100000);
    ok(small_message(id3, "x", 1) == 0, "a message is queued");
    ino3 = queued_inode("incoming", id3);
    ok(ino3 != 0 && ino3 != ino1, "... in a new file, not the linked spare");
    ok(access(p, F_OK) < 0, "the linked spare is gone from the pool");
    unlink(q2);
    free(q2);
    free(p);

    /* Too big for the pool, or the pool full: unlinked. */
    ok(queue_spare_retire(qfd, "incoming", id3, QUEUE_SPARE_SIZE_MAX + 1) == 0,
       "a file over QUEUE_SPARE_SIZE_MAX is retired");
    is_int(count_in(qfd, "tmp"), 0, "... by unlinking it");
    is_int(queued_inode("incoming", id3) == 0, 1, "... out of incoming/");
    errno = 0;
    ok(queue_spare_retire(qfd, "incoming", id3, 10) < 0 && errno == ENOENT,
       "retiring a message that is gone: ENOENT");
    ok(queue_spare_retire(qfd, "incoming", "../x", 10) < 0 && errno == EINVAL,
       "a bad ID: EINVAL");
    buf_free(&content);
    buf_free(&got);
}

/* An empty file incoming/ID retired into the pool; the ID is made up. */
static int retire_made_up(unsigned serial, char id[QUEUE_ID_SIZE])
{
    char *p;
    int fd;

    queue_id_format(id, time(NULL), serial % 1000000, 900000 + serial);
    p = xasprintf("%s/incoming/%s", dir, id);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    free(p);
    if (fd < 0)
        return -1;
    close(fd);
    return queue_spare_retire(qfd, "incoming", id, 0);
}

/* A steady flow: every retired file is claimed again at once, so the pool
 * stays empty although more than QUEUE_SPARE_MAX files were retired; the
 * estimate that counts only retires must not stop the reuse.  And a pool
 * that is really full still is. */
static void test_spare_flow(void)
{
    char id[QUEUE_ID_SIZE], *p;
    unsigned serial = 0, failed = 0;
    int n;

    for (n = 0; n <= QUEUE_SPARE_MAX; n++, serial++) {
        if (retire_made_up(serial, id) < 0) {
            failed++;
            continue;
        }
        p = xasprintf("%s/tmp/%s%s", dir, QUEUE_SPARE_PREFIX, id);
        if (unlink(p) < 0)          /* a writer's claim */
            failed++;
        free(p);
    }
    is_int((int)failed, 0, "spare flow: QUEUE_SPARE_MAX + 1 files retired and claimed");
    usleep(1100000);
    ok(retire_made_up(serial++, id) == 0, "one more is retired");
    p = xasprintf("%s%s", QUEUE_SPARE_PREFIX, id);
    ok(queued_inode("tmp", p) != 0, "... into the pool, which is empty");
    free(p);
    for (n = 1, failed = 0; n < QUEUE_SPARE_MAX; n++, serial++)
        if (retire_made_up(serial, id) < 0)
            failed++;
    is_int((int)failed, 0, "the pool filled to QUEUE_SPARE_MAX");
    usleep(1100000);
    ok(retire_made_up(serial++, id) == 0, "one more is retired");
    is_int(count_in(qfd, "tmp"), QUEUE_SPARE_MAX, "... by unlinking it: the pool is full");
    rm_tree_at(qfd, "tmp");
    ok(mkdirat(qfd, "tmp", 0700) == 0, "the pool emptied");
}

static void test_misuse(void)
{
    ok(dies_with_abort(misuse_envelope_twice), "envelope twice panics");
    ok(dies_with_abort(misuse_rcpt_first), "recipient before envelope panics");
    ok(dies_with_abort(misuse_commit_no_rcpt), "commit without recipients panics");
    ok(dies_with_abort(misuse_bad_notify), "NOTIFY=NEVER,DELAY panics");
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-queue.XXXXXX";
    char *p;

    alarm(300);
    msg_init("queue-test", 0);
    if (mkdtemp(tmpl) == NULL) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return done_testing();
    }
    snprintf(dir, sizeof(dir), "%s", tmpl);
    p = xasprintf("%s/spool", dir);
    qfd = make_qdir(p);
    free(p);
    p = xasprintf("%s/scratch", dir);
    scratch = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    free(p);
    if (qfd < 0 || scratch < 0) {
        ok(0, "set-up: %s", strerror(errno));
        return done_testing();
    }
    snprintf(dir, sizeof(dir), "%s/spool", tmpl);

    test_ids();
    test_round_trip();
    test_large();
    test_many_rcpts();
    test_status();
    test_commit_abort();
    test_corrupt();
    test_dirs();
    test_open_rule();
    test_spares();
    test_spare_flow();
    test_misuse();

    close(scratch);
    close(qfd);
    rm_tree_at(AT_FDCWD, tmpl);
    return done_testing();
}

/*
 * fuzz/queue_read - libFuzzer harness for lib/queue.c's reader: queue_read
 * on a file of any content, as pickup and cleanup meet maildrop files that
 * any local user can write, and local and qmgr meet queue files.
 *
 * Input: the file's bytes.  Promises checked: queue_read either refuses
 * with a reason (EBADMSG and *why, or another errno) or gives a file whose
 * content queue_content_copy can stream in full; nothing leaks, no
 * descriptor stays open.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzzlib.h"
#include "queue.h"
#include "xalloc.h"

static int sink(void *ctx, const void *data, size_t len)
{
    (void)data;
    *(size_t *)ctx += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    queue_file_t *q = NULL;
    char *why = NULL;
    size_t copied = 0;
    int fd, mark;

    if (!inited) {
        fuzz_init();
        inited = 1;
    }
    mark = fuzz_fd_mark();
    fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    if (queue_read(fd, &q, &why) < 0) {
        if (errno == EBADMSG && why == NULL)
            fuzz_fail("a corrupt file refused without a reason");
        if (q != NULL)
            fuzz_fail("a refused file still gives a queue file");
    } else {
        if (q == NULL)
            fuzz_fail("an accepted file without a queue file");
        if (queue_content_copy(q, sink, &copied) != 0)
            fuzz_fail("the content of an accepted file cannot be copied");
        queue_file_free(&q);
    }
    free(why);
    close(fd);
    fuzz_fd_check(mark);
    return 0;
}

/*
 * maildrop - local submission files, written by sendmail and read by
 * pickup; see maildrop.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "maildrop.h"
#include "xalloc.h"

int maildrop_write_envelope(queue_writer_t *w, const struct cleanup_request *r)
{
    queue_env_t env = {.sender = r->sender, .envid = r->envid, .ret = r->ret};
    size_t i;

    if (queue_writer_envelope(w, &env) < 0)
        return -1;
    for (i = 0; i < r->nattr; i++)
        if (queue_writer_attr(w, r->attr_names[i], r->attr_values[i]) < 0)
            return -1;
    for (i = 0; i < r->nrcpt; i++) {
        queue_rcpt_spec_t spec = {
            .address = r->rcpts[i].address,
            .orig = r->rcpts[i].orig[0] ? r->rcpts[i].orig : NULL,
            .orcpt = r->rcpts[i].orcpt[0] ? r->rcpts[i].orcpt : NULL,
            .notify = r->rcpts[i].notify,
        };
        if (queue_writer_rcpt(w, &spec) < 0)
            return -1;
    }
    return 0;
}

int maildrop_write(int qdirfd, const struct cleanup_request *r, char id[QUEUE_ID_SIZE])
{
    queue_writer_t *w;

    if (queue_maildrop_open(qdirfd, &w) < 0)
        return -1;
    strlcpy(id, queue_writer_id(w), QUEUE_ID_SIZE);
    if (maildrop_write_envelope(w, r) < 0)
        goto fail;
    if (queue_writer_copy_fd(w, r->content_fd, 0, r->content_len, NULL, NULL) < 0)
        goto fail;
    return queue_writer_commit(&w);
fail:
    queue_writer_abort(&w);
    return -1;
}

int maildrop_read(int fd, struct cleanup_request *r, char **why)
{
    queue_file_t *q = NULL;
    size_t i;
    int mfd, saved;

    cleanup_request_init(r);
    *why = NULL;
    if (queue_read(fd, &q, why) < 0)
        return -1;
    if ((mfd = memfd_create("posthorn-pickup", MFD_CLOEXEC)) < 0
        || queue_content_to_fd(q, mfd) < 0) {
        saved = errno;
        if (mfd >= 0)
            close(mfd);
        queue_file_free(&q);
        if (saved == EBADMSG)
            *why = xstrdup("the file changed while it was read");
        errno = saved;
        return -1;
    }
    r->sender = xstrdup(q->sender);
    r->envid = xstrdup(q->envid ? q->envid : "");
    r->ret = q->ret;
    for (i = 0; i < q->nattr; i++)
        cleanup_request_attr(r, q->attrs[i].name, q->attrs[i].value);
    for (i = 0; i < q->nrcpt; i++)
        cleanup_request_rcpt(r, q->rcpts[i].address, q->rcpts[i].orig ? q->rcpts[i].orig : "",
                             q->rcpts[i].orcpt ? q->rcpts[i].orcpt : "", q->rcpts[i].notify);
    r->content_fd = mfd;
    r->content_len = q->content_len;
    queue_file_free(&q);
    return 0;
}

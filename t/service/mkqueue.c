/*
 * mkqueue - test tool: write one queue file into QUEUE_DIRECTORY/incoming/
 * with lib/queue's writer (the same commit protocol cleanup uses) and
 * print its queue ID.
 *
 *   mkqueue [-s sender] [-e envid] [-R F|H] [-a name=value]...
 *           -r rcpt[,notify[,orcpt]] [-r ...] QUEUE_DIRECTORY < content
 *
 * notify is a number (QUEUE_NOTIFY_* bits).  The content is read from
 * stdin as is (use CRLF line ends, as cleanup stores them).  The file is
 * owned by whoever runs the tool; tests chown it to mail_owner if needed.
 * Exits 0, or 1 with a message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "xalloc.h"

#define MKQUEUE_MAX_RCPT 1000

static void usage(void)
{
    fprintf(stderr, "usage: mkqueue [-s sender] [-e envid] [-R F|H] [-a name=value]... "
            "-r rcpt[,notify[,orcpt]]... QUEUE_DIRECTORY < content\n");
    exit(1);
}

int main(int argc, char **argv)
{
    queue_rcpt_spec_t rcpts[MKQUEUE_MAX_RCPT];
    char *attrs[64];
    size_t nrcpt = 0, nattr = 0, i;
    queue_env_t env = {.sender = ""};
    queue_writer_t *w;
    char buf[65536];
    ssize_t n;
    int c, qfd;

    while ((c = getopt(argc, argv, "s:e:R:a:r:")) != -1) {
        switch (c) {
        case 's':
            env.sender = optarg;
            break;
        case 'e':
            env.envid = optarg;
            break;
        case 'R':
            env.ret = optarg[0] == 'F' ? QUEUE_RET_FULL : QUEUE_RET_HDRS;
            break;
        case 'a':
            if (nattr == 64 || strchr(optarg, '=') == NULL)
                usage();
            attrs[nattr++] = optarg;
            break;
        case 'r': {
            char *addr = xstrdup(optarg), *comma;

            if (nrcpt == MKQUEUE_MAX_RCPT)
                usage();
            memset(&rcpts[nrcpt], 0, sizeof(rcpts[nrcpt]));
            if ((comma = strchr(addr, ',')) != NULL) {
                *comma++ = '\0';
                rcpts[nrcpt].notify = (unsigned)strtoul(comma, &comma, 10);
                if (*comma == ',')
                    rcpts[nrcpt].orcpt = comma + 1;
            }
            rcpts[nrcpt++].address = addr;
            break;
        }
        default:
            usage();
        }
    }
    if (optind + 1 != argc || nrcpt == 0)
        usage();
    if ((qfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "mkqueue: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    if (queue_writer_open(qfd, &w) < 0 || queue_writer_envelope(w, &env) < 0) {
        fprintf(stderr, "mkqueue: cannot create a queue file: %s\n", strerror(errno));
        return 1;
    }
    for (i = 0; i < nattr; i++) {
        char *eq = strchr(attrs[i], '=');

        *eq = '\0';
        queue_writer_attr(w, attrs[i], eq + 1);
    }
    for (i = 0; i < nrcpt; i++)
        queue_writer_rcpt(w, &rcpts[i]);
    while ((n = read(0, buf, sizeof(buf))) > 0)
        queue_writer_content(w, buf, (size_t)n);
    printf("%s\n", queue_writer_id(w));
    if (n < 0 || queue_writer_commit(&w) < 0) {
        fprintf(stderr, "mkqueue: commit failed: %s\n", strerror(errno));
        return 1;
    }
    for (i = 0; i < nrcpt; i++)
        free((char *)rcpts[i].address);
    close(qfd);
    return 0;
}

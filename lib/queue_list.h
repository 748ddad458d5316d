/*
 * queue_list - every message in the queue, and the mailq-style listing;
 * see queue_list.c.
 */
#ifndef POSTHORN_QUEUE_LIST_H
#define POSTHORN_QUEUE_LIST_H

#include <stdio.h>

#include "queue.h"

struct queue_entry {
    char        id[QUEUE_ID_SIZE];
    const char *dir;
};

/* Every message in maildrop/ (if with_maildrop), incoming/, active/,
 * deferred/ and hold/, sorted by ID (creation order); *n entries, caller
 * frees.  Directories that do not exist are skipped. */
struct queue_entry *queue_list_collect(int qfd, int with_maildrop, size_t *n);
/* Open (queue_open: never a FIFO, device, symbolic link, second link or
 * foreign owner) and parse one queue file; NULL with *why (caller frees)
 * if it is unreadable or no queue file, or with *why NULL if it vanished
 * (or is a maildrop file in the middle of its commit).  *fdp is the open
 * file. */
queue_file_t *queue_list_load(int qfd, const char *dir, const char *id, int *fdp, char **why);
void queue_list_format_time(char *out, size_t len, int64_t t);
const char *queue_list_status_name(int status);
/* The listing of the queue under qfd, written to out. */
void queue_list_print(int qfd, FILE *out);

#endif

/*
 * cfgfile - read Postfix-style configuration text as logical lines.
 *
 * main.conf, master.conf and map sources (aliases, postmap tables) share
 * one line discipline: '#' as the first non-blank character starts a
 * comment line; blank and comment lines are skipped; a line that starts
 * with white space continues the previous one; the pieces are joined with
 * a single space, each trimmed of white space at both ends.  Comment and
 * blank lines inside a continued entry do not end it.
 *
 * cfgfile_read() calls fn once per logical line, with the number of the
 * line it starts on.  Problems are reported in the entry, not fatal: a NUL
 * byte (nul_line: the first physical line holding one) and a continuation
 * line with nothing before it (orphan).  fn returns 0 to go on, non-zero to
 * stop reading.  Returns 0, or -1 with errno on a read error.
 */
#ifndef POSTHORN_CFGFILE_H
#define POSTHORN_CFGFILE_H

#include <stdio.h>

#define CFGFILE_SPACE " \t\r\n\f\v"

struct cfgfile_entry {
    char       *text;       /* the joined, trimmed logical line; fn may modify it */
    int         line;       /* the physical line it starts on */
    int         nul_line;   /* 0, or a line that holds a NUL byte */
    int         orphan;     /* starts with a continuation line */
};

typedef int (*cfgfile_fn)(const struct cfgfile_entry *entry, void *ctx);

int cfgfile_read(FILE *fp, cfgfile_fn fn, void *ctx);

#endif

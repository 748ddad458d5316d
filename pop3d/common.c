/*
 * common.c - the POP3 pieces both halves use: command lines, replies, CAPA.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "msg.h"
#include "pop3d.h"

int pop3_parse(char *line, struct pop3_cmd *cmd)
{
    size_t n = 0;

    memset(cmd, 0, sizeof(*cmd));
    while (isalpha((unsigned char)line[n]) && n < sizeof(cmd->name) - 1) {
        cmd->name[n] = (char)toupper((unsigned char)line[n]);
        n++;
    }
    if (n == 0 || (line[n] != '\0' && line[n] != ' '))
        return -1;
    if (line[n] == ' ')
        cmd->arg = line + n + 1;
    return 0;
}

ssize_t pop3_read_command(session_t *s, buf_t *line)
{
    ssize_t n = session_read_command(s, line);

    if (n == STREAM_TOOLONG) {
        pop3_fail(s, "Line too long.");
        return n;
    }
    if (n <= 0) {
        session_io_failed(s, n == 0 ? STREAM_EOF : n);
        return n == 0 ? STREAM_EOF : n;
    }
    pop3_strip_eol(line);
    return (ssize_t)line->len;
}

void pop3_strip_eol(buf_t *line)
{
    size_t n = line->len;

    while (n > 0 && (line->data[n - 1] == '\n' || line->data[n - 1] == '\r'))
        n--;
    buf_truncate(line, n);
}

static void pop3_reply(session_t *s, const char *status, const char *fmt, va_list ap)
{
    char text[512];

    vsnprintf(text, sizeof(text), fmt, ap);
    stream_printf(s->stream, "%s%s%s\r\n", status, *text ? " " : "", text);
}

void pop3_ok(session_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pop3_reply(s, "+OK", fmt, ap);
    va_end(ap);
}

void pop3_err(session_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pop3_reply(s, "-ERR", fmt, ap);
    va_end(ap);
}

void pop3_fail(session_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pop3_reply(s, "-ERR", fmt, ap);
    va_end(ap);
    session_error(s, false);
    if (session_too_many_errors(s)) {
        pop3_err(s, "Too many invalid commands, closing the connection.");
        msg_info("too many errors after %s from " SESSION_PEER_FMT, s->where,
                 SESSION_PEER_ARGS(s));
        s->done = true;
    }
}

void pop3_capa(session_t *s, const char *const *extra)
{
    stream_puts(s->stream, "+OK Capability list follows\r\n"
                "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
                "EXPIRE NEVER\r\nLOGIN-DELAY 0\r\n");
    for (; extra && *extra; extra++)
        stream_printf(s->stream, "%s\r\n", *extra);
    stream_puts(s->stream, "IMPLEMENTATION " POP3_IMPLEMENTATION "\r\n.\r\n");
}

void pop3_limits(struct session_limits *lim)
{
    lim->line_limit = POP3_LINE_MAX;
    lim->timeout_ms = (int)conf_time("pop3d_timeout") * 1000;
    lim->hard_errors = conf_int("pop3d_error_limit");
    lim->soft_errors = lim->hard_errors / 2;
    lim->error_sleep = 1;
}

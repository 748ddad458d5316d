/*
 * conf - main.conf: the typed parameter table, loading, $name expansion.
 *
 * Implemented by conf.c (loading, expansion, getters), conf_value.c (types,
 * lists) and conf_table.c (the rows).
 *
 * Every parameter is one row of conf_params[] (conf_table.c): name, type,
 * default, bounds, one-line doc.  main.conf holds "name = value" lines;
 * '#' starts a comment line; a line that starts with whitespace continues
 * the previous one (Postfix style).  Values may refer to other parameters as
 * $name or ${name} ($$ is a literal $); expansion happens when a value is
 * read (recursively, an expansion loop is an error), and every value
 * is expanded and type-checked once at load time so that errors carry the
 * line they came from.
 *
 * Types: CONF_STR (any text, lists are comma/space separated, see
 * conf_split), CONF_INT (decimal, within [min,max]), CONF_BOOL (yes/no,
 * true/false, on/off, 1/0), CONF_TIME (number with optional unit s, m, h,
 * d, w; bare = seconds; stored as seconds, bounds in seconds), CONF_SIZE
 * (bytes, optional k/m/g suffix, 1024-based).
 *
 * Errors are collected, one "FILE:LINE: message" line each, into the
 * caller's buffer: unknown parameter name, bad value for its type, out of
 * bounds, unknown $name, an expansion loop, a line that is not
 * "name = value".  conf_load() returns -1 when there were any.
 *
 * Getters take a name from the table; an unknown name there is our bug and
 * panics.  Overrides from the command line (-o name=value) go through
 * conf_set() and are checked the same way ("command line" as the file).
 */
#ifndef POSTHORN_CONF_H
#define POSTHORN_CONF_H

#include <stdio.h>

#include "buf.h"

enum conf_type { CONF_STR, CONF_INT, CONF_BOOL, CONF_TIME, CONF_SIZE };

struct conf_param {
    const char     *name;
    enum conf_type  type;
    const char     *defval;
    long long       min, max;      /* INT, TIME (seconds), SIZE (bytes); ignored otherwise */
    const char     *doc;
    const char   *(*compute)(void);  /* default computed at load time (defval NULL) */
};

extern const struct conf_param conf_params[];
extern const size_t conf_nparams;

/* Read CONFDIR/main.conf (a missing file is an error).  Resets all values
 * to defaults first (conf_set() values too), so it can be called again on
 * reload; config_directory becomes confdir, taken literally.  A name set
 * twice keeps its last value.  Errors are appended one "FILE:LINE: message"
 * line each, sorted by line; the return value is 0 or -1. */
int  conf_load(const char *confdir, buf_t *errs);
/* Set one value as if from a file, then check every parameter again;
 * origin (NULL: "command line") replaces "FILE:LINE" in error messages.
 * On error (-1) the previous value is kept. */
int  conf_set(const char *name, const char *value, const char *origin, buf_t *errs);
/* The confdir given to conf_load() (the built-in default before that). */
const char *conf_confdir(void);

/* Getters.  conf_str() returns the expanded value; the string stays valid
 * until the next conf_load() or conf_set() (copy it to keep it longer).
 * The typed getters parse that value.  Reading a value that did not pass
 * the load-time check is fatal; a name not in the table, or a typed getter
 * for a parameter of another type, panics. */
const char *conf_str(const char *name);      /* expanded value */
/* The dns_* parameters (dns_forwarders, dns_stub_zones,
 * dnssec_trust_anchor_file, dns_query_timeout) as lib/dns's settings;
 * the strings are conf_str()'s. */
struct dns_settings;
void conf_dns_settings(struct dns_settings *ds);
long long   conf_int(const char *name);
int         conf_bool(const char *name);
long long   conf_time(const char *name);     /* seconds */
long long   conf_size(const char *name);     /* bytes */
int         conf_is_default(const char *name);  /* not set by main.conf or conf_set */
const struct conf_param *conf_find(const char *name);   /* NULL if unknown */
/* For "did you mean" hints: the parameter name nearest to an unknown one
 * (at most 2 edits, and fewer than a third of its length), or NULL. */
const char *conf_suggest(const char *name);

/* Check an expanded value against p's type and bounds: 0 with the number
 * in *out (BOOL 0/1, TIME seconds, SIZE bytes, STR 0; out may be NULL), or
 * -1 with "bad value 'x' for NAME: expected ..." or "value x for NAME is
 * below the minimum ..." appended to why (no location, no newline). */
int conf_check_value(const struct conf_param *p, const char *value, long long *out,
                     buf_t *why);

/* Split a list value on commas and white space into a NULL-terminated
 * array of fresh strings; free with conf_split_free(). */
char **conf_split(const char *value);
void   conf_split_free(char ***listp);

/* For "mailctl check -d / -n": one "name = value" line per parameter
 * ("name =" when empty), sorted by name.  Values are shown as written,
 * before $name expansion (like postconf); computed defaults by value. */
enum conf_dump_mode {
    CONF_DUMP_ALL,          /* every parameter with its value in force */
    CONF_DUMP_DEFAULTS,     /* every parameter with its default ("mailctl check -d") */
    CONF_DUMP_CHANGED,      /* only what main.conf or conf_set set ("mailctl check -n") */
};
void conf_dump(FILE *out, enum conf_dump_mode mode);

#endif

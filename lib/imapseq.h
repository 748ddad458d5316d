/*
 * imapseq - IMAP sequence sets (RFC 9051 9: sequence-set, and "$" of
 * SEARCHRES, RFC 5182): "1:*,*:4294967295", "2,4:7,9", "$".
 *
 * imapseq_parse() reads a set as written, "*" kept as such (it means the
 * highest message number, or the highest UID, only when the set is used);
 * imapseq_resolve() turns it into sorted, merged, disjoint ranges for a
 * given value of "*" (RFC 9051 6.4.8: "n:*" with n above it still names
 * the highest one; a range's ends may come in either order).  A number is
 * 1..4294967295 without leading zeros or signs; a set holds at most
 * IMAPSEQ_MAX_RANGES ranges.  Refusals have a reason for the BAD reply.
 *
 * Failure modes: none; out of memory is fatal.
 */
#ifndef POSTHORN_IMAPSEQ_H
#define POSTHORN_IMAPSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAPSEQ_STAR        0           /* "*" in a parsed range */
#define IMAPSEQ_MAX_RANGES  65536

struct imapseq_range {
    uint32_t lo, hi;                    /* as written; IMAPSEQ_STAR for "*" */
};

struct imapseq {
    bool                  saved;        /* "$": the last SEARCH's result (SEARCHRES) */
    struct imapseq_range *ranges;
    size_t                n;
};

/* 0 with *set filled, or -1 with *why (static); set is left empty. */
int  imapseq_parse(const char *text, struct imapseq *set, const char **why);
void imapseq_free(struct imapseq *set);
/* Sorted, merged ranges with "*" as star (star 0: an empty mailbox, where
 * every range names nothing); into *out (fresh), their count returned. */
size_t imapseq_resolve(const struct imapseq *set, uint32_t star, struct imapseq_range **out);
/* Is n in the set for this star? */
bool imapseq_contains(const struct imapseq *set, uint32_t n, uint32_t star);

#endif

/*
 * checkd.h - what checkd's files share.
 */
#ifndef POSTHORN_CHECKD_H
#define POSTHORN_CHECKD_H

/* sandbox.c: confine this process with its seccomp filter (after the
 * privilege drop, before the first request); fatal if it cannot. */
void sandbox_enter(void);

#endif

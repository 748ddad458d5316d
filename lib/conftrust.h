/*
 * conftrust - the configuration root relies on to run Posthorn, checked
 * with trustpath before it is read or run (DESIGN.md §1): the
 * configuration directory, main.conf and master.conf in it,
 * daemon_directory, and every program master would execute from there
 * (each command of master.conf, master itself for mailctl start), and
 * command_directory and the programs of master.conf's jobs in it.  Each
 * must be owned by root and writable by nobody else, and so must every
 * directory above it and every symbolic link on the way (see trustpath.h).
 *
 * Who is trusted (trustpath_owners): root alone when the effective uid is
 * 0; when a user runs a tool (mailctl check, status, ...) root or that
 * user, since nothing then runs with more rights than the user's own.
 *
 * Interface:
 *   conftrust_main(confdir, errs)      the directory and its main.conf
 *   conftrust_master(confdir, errs)    its master.conf
 *   conftrust_program(dir, name, errs) daemon_directory dir and dir/name
 *                                      (name NULL: the directory alone)
 *   conftrust_programs(dir, cdir, mc, errs)
 *                                      dir and the program of every
 *                                      service in mc; a job's program
 *                                      (and cdir) in cdir
 * Call them before reading the file (main.conf, master.conf) or running
 * the program.
 *
 * daemon_directory (and command_directory) must be an absolute path:
 * master runs in the spool, where a relative one would name another
 * directory.
 *
 * Failure modes: 0, or -1 with one "FILE: reason" line per untrusted file
 * appended to errs; the checks of one call stop at the first problem
 * with a directory they share.
 */
#ifndef POSTHORN_CONFTRUST_H
#define POSTHORN_CONFTRUST_H

#include "buf.h"
#include "master_conf.h"

int conftrust_main(const char *confdir, buf_t *errs);
int conftrust_master(const char *confdir, buf_t *errs);
int conftrust_program(const char *daemon_dir, const char *name, buf_t *errs);
int conftrust_programs(const char *daemon_dir, const char *command_dir,
                       const struct master_conf *mc, buf_t *errs);

#endif

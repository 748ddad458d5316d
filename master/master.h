/*
 * master.h - master's internal interfaces: the service table it runs
 * (service.c), its listeners (listen.c) and the control socket (control.c).
 */
#ifndef POSTHORN_MASTER_H
#define POSTHORN_MASTER_H

#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "event.h"
#include "master_conf.h"

/* The few parameters master itself uses, copied after each successful load
 * so that a failed reload never leaves master with half a configuration. */
struct master_params {
    char      *config_directory;
    char      *queue_directory;
    char      *daemon_directory;
    char      *command_directory;   /* the programs of jobs */
    char      *maillog_file;
    char      *inet_interfaces;
    int        default_process_limit;
    long long  throttle_time;       /* seconds */
    long long  stop_timeout;        /* seconds */
};

struct service;

struct proc {
    pid_t            pid;
    struct service  *svc;          /* NULL once its service was retired */
    char            *key;          /* its service's key, kept after retirement */
    time_t           started;
    int              busy;
    int              reported;     /* has sent at least one status record */
    int              job;          /* a job's process: its own process group */
    TAILQ_ENTRY(proc) link;
};
TAILQ_HEAD(proc_list, proc);

struct service {
    char           *key;           /* "inet:NAME" or "unix:NAME", matched on reload */
    char           *name;
    enum master_svc_type type;
    int             private_socket;
    int             wakeup;
    int             maxproc;       /* resolved: 0 = unlimited */
    char          **argv;          /* copy of the master.conf command */
    int             argc;
    char           *command_line;  /* for status output */
    int            *listen_fds;
    int             nlisten;
    int             status_rd, status_wr;   /* children -> master */
    int             trigger_rd, trigger_wr; /* master -> children (wakeup, EOF = go away) */
    int             nprocs, navail;
    int             nretired;      /* processes of the replaced generation still running */
    int             polling;       /* master watches listen_fds for demand */
    int             throttled;
    event_timer_t  *throttle_timer;
    event_timer_t  *wakeup_timer;  /* a job: its next run */
    event_timer_t  *backoff_timer; /* fork failed: wait before trying again */
    TAILQ_ENTRY(service) link;
};
TAILQ_HEAD(service_list, service);

extern struct master_params master_params;
extern struct service_list master_services;
extern struct proc_list master_procs;
extern event_loop_t *master_loop;
extern int master_foreground;
extern int master_stopping;
extern time_t master_started;

/* service.c */
int  service_table_build(struct master_conf *mc, struct service_list *out,
                         struct service_list *old, buf_t *errs);
void service_table_start(struct service_list *list);
void service_retire(struct service **svcp);
void service_reap_children(void);
void service_stop_all(void);
int  service_state(const struct service *svc, const char **state);

/* In a child about to exec a service or a job: every signal at its
 * default, none blocked; the environment to give it. */
void service_child_reset_signals(void);
char **service_child_environment(void);
/* Is svc's program (in daemon_directory, a job's in command_directory)
 * still root's alone?  0, or -1 (logged). */
int  service_program_trusted(struct service *svc);

/* job.c */
void job_start(struct service *svc);            /* schedule its first run */
void job_exited(struct proc *p, int status);    /* log how it ended */

/* listen.c */
int  listen_open(const struct master_svc *svc, int **fds, int *nfds, buf_t *errs);

/* control.c */
void control_open(void);
void control_close(void);

/* master.c */
int  master_reload(buf_t *errs);
void master_begin_stop(void);

#endif

/*
 * sandbox - checkd's seccomp filter (libseccomp): the system calls left to
 * a process that reads requests and message descriptors from its client,
 * asks DNS through libunbound (whose thread sends UDP and TCP queries),
 * appends DMARC history rows through a directory descriptor it already
 * holds, and logs.  Everything else is refused before it runs:
 *   - no new programs (execve), no ptrace, no new files but through
 *     openat for writing and appending (the history; the process is
 *     chrooted in its own directory anyway); an open for reading
 *     answers EACCES without running (libraries probe for files);
 *   - new sockets of AF_INET and AF_INET6 only (DNS); AF_UNIX answers
 *     EACCES (the jail has no paths, but abstract sockets would reach
 *     other programs; the syslog connection was made before the jail);
 *   - no executable memory (mmap and mprotect without PROT_EXEC);
 *   - threads, but no new processes (clone only with CLONE_THREAD; clone3,
 *     whose flags a filter cannot read, answers ENOSYS so that the C
 *     library falls back to clone).
 * A call outside the list raises SIGSYS without running; the handler
 * writes "checkd: forbidden system call N" to stderr and the log file
 * and ends the process (master starts another).  Under AddressSanitizer
 * the list is wider: its runtime reads /proc and files when it reports.
 *
 * The address space is limited too (RLIMIT_AS: 512 MiB and eight times
 * message_size_limit), so no input can make checkd take the machine's
 * memory.
 *
 * Failure modes: libseccomp refusing the filter is fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

#include "checkd.h"
#include "conf.h"
#include "msg.h"

/* The address space checkd may use: this much, and eight times
 * message_size_limit (the header in memory more than once: ours,
 * libopendkim's). */
#define SANDBOX_MEMORY_BASE ((rlim_t)512 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

static int sandbox_log_fd = -1;

static void sandbox_sigsys(int sig, siginfo_t *si, void *uc)
{
    char line[80] = "checkd: fatal: forbidden system call ";
    char num[16];
    size_t n = strlen(line), k = 0;
    int nr = si->si_syscall;

    (void)sig;
    (void)uc;
    if (nr < 0)
        nr = 0;
    do {
        num[k++] = (char)('0' + nr % 10);
        nr /= 10;
    } while (nr && k < sizeof(num));
    while (k > 0 && n < sizeof(line) - 2)
        line[n++] = num[--k];
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
    if (sandbox_log_fd >= 0)
        (void)!write(sandbox_log_fd, line, n);
    _exit(70);
}

static const int sandbox_allowed[] = {
    SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(writev),
    SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(fcntl),
    SCMP_SYS(dup), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack), SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
    SCMP_SYS(getegid), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom), SCMP_SYS(sched_yield),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
    SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
    SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
    SCMP_SYS(signalfd4), SCMP_SYS(eventfd2), SCMP_SYS(pipe2),
    SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(connect), SCMP_SYS(bind),
    SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
    SCMP_SYS(shutdown), SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
    SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg),
    SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(prlimit64), SCMP_SYS(getrlimit), SCMP_SYS(uname),
};

#ifdef SANDBOX_SANITIZER
static const int sandbox_sanitizer_allowed[] = {
    SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
    SCMP_SYS(prctl), SCMP_SYS(mincore), SCMP_SYS(sysinfo), SCMP_SYS(ioctl), SCMP_SYS(getppid),
    SCMP_SYS(getdents64), SCMP_SYS(sched_getparam), SCMP_SYS(kill), SCMP_SYS(tgkill),
    SCMP_SYS(process_vm_readv), SCMP_SYS(msync),
};
#endif

static void sandbox_rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
                         const struct scmp_arg_cmp *cmp)
{
    int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);

    if (rc < 0)
        msg_fatal("seccomp: cannot add a rule for system call %d: %s", nr, strerror(-rc));
}

/* A bound on the address space: whatever a message or a DNS answer makes
 * the libraries allocate, checkd ends (master starts another; smtpd takes
 * the mail with temperror) before the machine runs short.  Not under the
 * sanitizers, whose shadow memory needs terabytes of address space. */
static void sandbox_limit_memory(void)
{
#ifndef SANDBOX_SANITIZER
    long long size = conf_size("message_size_limit");
    struct rlimit rl;

    rl.rlim_cur = rl.rlim_max = SANDBOX_MEMORY_BASE
                                + (size > 0 ? (rlim_t)size * 8 : SANDBOX_MEMORY_BASE * 7);
    if (setrlimit(RLIMIT_AS, &rl) < 0)
        msg_fatal("cannot limit memory: %s", strerror(errno));
#endif
}

void sandbox_enter(void)
{
    scmp_filter_ctx ctx;
    struct sigaction sa;
    size_t i;
    int rc;

    sandbox_limit_memory();
    sandbox_log_fd = msg_logfile_fd();
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sandbox_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        msg_fatal("seccomp: cannot catch SIGSYS: %s", strerror(errno));

    if ((ctx = seccomp_init(SCMP_ACT_TRAP)) == NULL)
        msg_fatal("seccomp: cannot start a filter");
    for (i = 0; i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]); i++)
        sandbox_rule(ctx, SCMP_ACT_ALLOW, sandbox_allowed[i], 0, NULL);
#ifdef SANDBOX_SANITIZER
    for (i = 0; i < sizeof(sandbox_sanitizer_allowed) / sizeof(sandbox_sanitizer_allowed[0]); i++)
        sandbox_rule(ctx, SCMP_ACT_ALLOW, sandbox_sanitizer_allowed[i], 0, NULL);
    sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 0, NULL);
    sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 0, NULL);
#else
    {
        /* Memory, but never executable; files only opened to write. */
        struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
        struct scmp_arg_cmp wronly = SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY);

        sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, &noexec);
        sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, &noexec);
        struct scmp_arg_cmp rdonly = SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDONLY);
        struct scmp_arg_cmp rdwr = SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR);

        sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, &wronly);
        /* Libraries look for files now and then (OpenSSL's configuration):
         * reading fails harmlessly, in the jail anyway. */
        sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1, &rdonly);
        sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1, &rdwr);
        sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0, NULL);
    }
#endif
    {
        struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
        const int domains[] = {AF_INET, AF_INET6};
        struct scmp_arg_cmp local = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX);

        sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &thread);
        sandbox_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
        for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
            struct scmp_arg_cmp dom = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i]);

            sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, &dom);
        }
        /* No new UNIX sockets: the jail has no paths, but the abstract
         * namespace has no walls.  syslog's reconnect just fails. */
        sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, &local);
    }
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0)
        msg_fatal("seccomp: cannot load the filter: %s", strerror(-rc));
}

/*
 * Helpers for end-to-end tests against a real importanced: starting and
 * stopping it, processes that outlive no test, raw frames, and a second,
 * unprivileged uid to attack it from.
 */
#ifndef IMP_E2E_H
#define IMP_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "importance/protocol.h"

extern const char *e2e_daemon_bin;
extern char e2e_sock[108];
extern pid_t e2e_daemon_pid;

/* fork(); the child dies with the test, and teardown kills what is left */
pid_t e2e_fork(void);
int e2e_teardown(void **state);

uint64_t e2e_now_ms(void);
/* user+system CPU time of pid, in ms */
long e2e_cpu_ms(pid_t pid);
/* How many descriptors pid has open, or -1. */
int e2e_fd_count(pid_t pid);
long e2e_rss_kb(pid_t pid);

/* Starts importanced on a fresh socket with these extra arguments (split
 * on spaces; "" none), and waits until it answers. */
void e2e_start_daemon(const char *extra);
/* Standard error into the file at path (made anew) until
 * e2e_stderr_back(saved), saved being what this returns: a daemon started
 * between the two logs there. */
int e2e_stderr_to(const char *path);
void e2e_stderr_back(int saved);
/* Runs importanced with args and returns its exit status, its stderr in err. */
int e2e_run_daemon(const char *const *args, char *err, size_t size);
void e2e_stop_daemon(void);

int e2e_nice(pid_t pid);
/* waits until pid's nice is want: ms taken, or -1 */
long e2e_wait_nice(pid_t pid, int want, int timeout_ms);

/* The attacker: an unprivileged uid and gid (made once with useradd). */
void e2e_attacker(uid_t *uid, gid_t *gid);
/* In a child: become uid/gid for good (no supplementary groups). */
void e2e_become(uid_t uid, gid_t gid);

/* Raw frames on a connected socket. */
int e2e_raw_connect(void);
void e2e_raw_send(int fd, uint16_t type, uint32_t serial, const void *body, size_t len);
/* The next frame's status (first body word) and type; -EPIPE when closed,
 * -ETIMEDOUT after timeout_ms. */
int e2e_raw_reply(int fd, uint16_t *type, void *body, size_t size, int timeout_ms);

/* Byte commands between a test and a child. */
void e2e_say(int fd, char c);
char e2e_hear(int fd, int timeout_ms);

#endif

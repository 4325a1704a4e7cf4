/*
 * Processes, as the kernel knows them.
 *
 * Every process the daemon decides about or acts on is held by a pidfd,
 * and every fact about it (uid, executable, cgroup) is read through that
 * pidfd at the moment of the decision: a pid alone may have been reused.
 *
 * A `struct process` is one real process that is under a boost backend
 * (it has at least one receiver task: a connection of its own, later a
 * bus peer).  Its tasks' boosts are counted; the backend hears only the
 * process's edges (first boost, last unboost), so two connections of one
 * process never fight over its nice value or cgroup.
 */
#ifndef IMPD_PROCESS_H
#define IMPD_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backend.h"

struct broker;

/* What the kernel says about a live process, read through its pidfd. */
struct ident {
	pid_t pid;
	uid_t uid;      /* effective uid */
	uint64_t ino;   /* the pidfd's inode, unique for the life of the system
	                   (pidfs); on kernels without it, pid and start time */
};

/* 0 if the pidfd's process is alive, -ESRCH if it has exited. */
int process_alive(int pidfd);

/* Fills who from pidfd; -ESRCH if the process has exited. */
int process_ident(int pidfd, struct ident *who);

/* /proc/PID of the pidfd's process as a directory fd, opened and then
 * checked to still be that process; -ESRCH if it is gone.  Reads through
 * it keep referring to that process (they fail once it has exited). */
int process_procdir(int pidfd, pid_t pid);

/* The executable the process runs now (stat of /proc/PID/exe). */
int process_exe(int pidfd, pid_t pid, struct stat *st);

/* 1 if the process shares the daemon's user and pid namespaces, 0 if not
 * (then it can forge the pids its frames carry within its own namespace,
 * and it is never a donor), -errno. */
int process_in_our_namespaces(int pidfd, pid_t pid);

/* The whole of /proc/PID/FILE of the process behind pidfd, at most
 * size - 1 bytes, NUL-terminated: its length or -errno. */
int process_read(int pidfd, pid_t pid, const char *file, char *buf, size_t size);

/* The process's cgroup on the unified hierarchy ("0::" line), e.g. "/app/x". */
int process_cgroup(int pidfd, pid_t pid, char *out, size_t size);

struct process {
	uint64_t ino;  /* first: the key of broker.processes */
	pid_t pid;
	int pidfd;     /* our own duplicate */
	unsigned refs; /* tasks under it */
	unsigned boosts; /* of those, boosted */
	struct backend_target target;
};

/* Who an engine task stands for: a connection of ours (peer.h) or a
 * connection on a D-Bus bus.  Every task's userdata points to its actor;
 * the policy callback reaches the process through it, and diagnostics
 * decide through its uid who may see the task. */
struct actor {
	pid_t pid;
	uid_t uid;
	const char *source; /* whose task it is: "ipc", "dbus" or "unix" */
	struct process *process; /* receivers: under the backend */
};

/* The process of pidfd under the backend, made on first use (attached to
 * the backend then); one reference for the caller. */
int process_get(struct broker *b, int pidfd, const struct ident *who, struct process **out);
void process_put(struct broker *b, struct process *p);

/* One of the process's tasks is boosted (or not any more).  Returns 1 and
 * sets *applied and *value when this was an edge of the process and the
 * backend acted, 0 otherwise. */
int process_boost(struct broker *b, struct process *p, bool boosted, int *applied, int *value);

#endif

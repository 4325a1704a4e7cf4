/*
 * Processes held by pidfd; the registry of processes under a backend.
 *
 * Reading /proc/PID is safe only while PID is still the process we mean:
 * we open the directory first and check the pidfd afterwards.  A /proc
 * directory opened while its process was alive stays bound to that
 * process, so once the check passes every read through it is about the
 * right process, and fails (ESRCH/ENOENT) if it exits meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "donor.h"
#include "pidfd.h"
#include "process.h"

/* A pidfd polls readable once its process has exited.  Asking so needs
 * no permission over the process (signal 0 through pidfd_send_signal is a
 * kill permission check: another uid's process would need CAP_KILL, which
 * the shipped unit's bounding set does not give). */
int process_alive(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int n;

	if (pidfd < 0)
		return -EBADF;
	do
		n = poll(&p, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? 0 : -ESRCH;
}

/* Older kernels have no PIDFD_GET_INFO: the pid from the pidfd's fdinfo
 * and the uid from /proc/PID/status, both checked against the pidfd. */
static int ident_from_proc(int pidfd, struct ident *who)
{
	char path[64], line[1024];
	FILE *f;
	long pid = -1;
	long uid = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	fclose(f);
	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (!(f = fopen(path, "re")))
		return -ESRCH;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Uid:", 4)) {
			long r, e;

			if (sscanf(line + 4, "%ld %ld", &r, &e) == 2)
				uid = e;
		}
	fclose(f);
	if (uid < 0)
		return -ESRCH;
	/* Without pidfs, pidfds share one inode: the process is known by
	 * its pid and start time instead. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "re")))
		return -ESRCH;
	if (fgets(line, sizeof(line), f)) {
		char *p = strrchr(line, ')');
		unsigned long long start = 0;

		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&start) == 1)
			who->ino = ((uint64_t)pid << 40) ^ start;
	}
	fclose(f);
	if (process_alive(pidfd) < 0)
		return -ESRCH;
	who->pid = (pid_t)pid;
	who->uid = (uid_t)uid;
	return 0;
}

int process_ident(int pidfd, struct ident *who)
{
	struct pidfd_info_v0 info;
	struct stat st;
	int r;

	if (fstat(pidfd, &st) < 0)
		return -errno;
	who->ino = (uint64_t)st.st_ino;
	if ((r = pidfd_get_info(pidfd, &info)) == 0) {
		who->pid = (pid_t)info.tgid;
		who->uid = (uid_t)info.euid;
		return 0;
	}
	if (r == -ESRCH)
		return -ESRCH;
	return ident_from_proc(pidfd, who);
}

int process_procdir(int pidfd, pid_t pid)
{
	char path[32];
	int dfd;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if ((dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (process_alive(pidfd) < 0) {
		close(dfd);
		return -ESRCH;
	}
	return dfd;
}

int process_exe(int pidfd, pid_t pid, struct stat *st)
{
	int dfd = process_procdir(pidfd, pid), r = 0;

	if (dfd < 0)
		return dfd;
	if (fstatat(dfd, "exe", st, 0) < 0)
		r = -errno;
	close(dfd);
	return r;
}

int process_in_our_namespaces(int pidfd, pid_t pid)
{
	static const char *const ns[] = { "ns/user", "ns/pid" };
	int dfd = process_procdir(pidfd, pid), r = 1;

	if (dfd < 0)
		return dfd;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]) && r == 1; i++) {
		char self[32];
		struct stat theirs, ours;

		snprintf(self, sizeof(self), "/proc/self/%s", ns[i]);
		if (fstatat(dfd, ns[i], &theirs, 0) < 0 || stat(self, &ours) < 0)
			r = -errno;
		else if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev)
			r = 0;
	}
	close(dfd);
	return r;
}

int process_read(int pidfd, pid_t pid, const char *file, char *buf, size_t size)
{
	int dfd = process_procdir(pidfd, pid), fd;
	ssize_t n;

	if (dfd < 0)
		return dfd;
	fd = openat(dfd, file, O_RDONLY | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

int process_cgroup(int pidfd, pid_t pid, char *out, size_t size)
{
	char buf[8192], *line, *save = NULL;
	int n = process_read(pidfd, pid, "cgroup", buf, sizeof(buf)), r = -ENOENT;

	if (n < 0)
		return n;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "0::", 3)) {
			if (strlen(line + 3) >= size)
				return -ENAMETOOLONG;
			snprintf(out, size, "%s", line + 3);
			r = 0;
			break;
		}
	return r;
}

/* ------------------------------------------------------------------ */

int process_get(struct broker *b, int pidfd, const struct ident *who, struct process **out)
{
	void *found = tfind(&who->ino, &b->processes, cmp_u64);
	struct process *p;

	if (found) {
		p = *(struct process **)found;
		p->refs++;
		*out = p;
		return 0;
	}
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	p->ino = who->ino;
	p->pid = who->pid;
	p->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
	if (p->pidfd < 0 || !tsearch(p, &b->processes, cmp_u64)) {
		int e = p->pidfd < 0 ? -errno : -ENOMEM;

		if (p->pidfd >= 0)
			close(p->pidfd);
		free(p);
		return e;
	}
	p->refs = 1;
	p->target.pid = p->pid;
	p->target.pidfd = p->pidfd;
	/* the background band per rule: decided once, when it comes under the backend */
	p->target.background = donor_match(&b->cfg.background, p->pidfd, who);
	backend_attach(&b->cfg.backend, &p->target);
	*out = p;
	return 0;
}

void process_put(struct broker *b, struct process *p)
{
	if (!p || --p->refs)
		return;
	backend_detach(&b->cfg.backend, &p->target);
	tdelete(p, &b->processes, cmp_u64);
	close(p->pidfd);
	free(p);
}

int process_boost(struct broker *b, struct process *p, bool boosted, int *applied, int *value)
{
	unsigned v = 0;

	if (boosted ? p->boosts++ != 0 : (p->boosts == 0 || --p->boosts != 0))
		return 0;
	*applied = backend_apply(&b->cfg.backend, &p->target, boosted, &v);
	*value = (int)v;
	return 1;
}

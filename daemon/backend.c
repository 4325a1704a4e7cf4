/*
 * Policy backends.
 *
 * nice: on a boost every thread of the process whose nice value is above
 * the boost value is set to it, and its previous value remembered; on an
 * unboost each such thread gets its value back, unless something else
 * changed it meanwhile (then it is left alone).  Threads created while
 * boosted inherit the boosted value from their creator and keep it.
 *
 * cgroup: a receiver is moved into its own sub-cgroup of a cgroup v2
 * directory the daemon may write (delegated to it); a boost raises that
 * sub-cgroup's cpu.weight and an unboost restores it; when the client goes
 * the process is moved back where it was and the sub-cgroup removed.  Any
 * failure falls back to nice for that process.
 *
 * Before touching a pid we check, through the pidfd taken when the client
 * connected, that it is still the same process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"

const char *backend_name(enum backend_kind kind)
{
	return kind == BACKEND_CGROUP ? "cgroup" : kind == BACKEND_NICE ? "nice" : "none";
}

static bool alive(const struct backend_target *t)
{
	if (t->pidfd >= 0)
		return syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0) == 0;
	return kill(t->pid, 0) == 0 || errno == EPERM;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int saved;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	saved = errno;
	close(fd);
	return n < 0 ? -saved : 0;
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int find_cgroup2_mount(char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint options ... - fstype ... */
		char mnt[256];
		char *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %255s", mnt) == 1) {
			snprintf(out, size, "%s", mnt);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int backend_init(struct backend_config *cfg, char *why, size_t why_size)
{
	char path[2048], buf[256];
	int r;

	why[0] = '\0';
	if (cfg->kind != BACKEND_CGROUP)
		return 0;
	if (!cfg->cgroup_root[0]) {
		snprintf(why, why_size, "no --cgroup-root given");
		goto fallback;
	}
	if ((r = find_cgroup2_mount(cfg->cgroup_mount, sizeof(cfg->cgroup_mount))) < 0) {
		snprintf(why, why_size, "no cgroup v2 mount");
		goto fallback;
	}
	snprintf(path, sizeof(path), "%s/cgroup.controllers", cfg->cgroup_root);
	if ((r = read_file(path, buf, sizeof(buf))) < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
		goto fallback;
	}
	if (!strstr(buf, "cpu")) {
		snprintf(why, why_size, "the cpu controller is not available in %s", cfg->cgroup_root);
		goto fallback;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", cfg->cgroup_root);
	if ((r = write_file(path, "+cpu")) < 0) {
		snprintf(why, why_size, "cannot enable cpu in %s: %s", path, strerror(-r));
		goto fallback;
	}
	return 0;
fallback:
	cfg->kind = BACKEND_NICE;
	return -ENOTSUP;
}

static int cgroup_of(pid_t pid, char *out, size_t size)
{
	char path[64], buf[4096], *line;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((r = read_file(path, buf, sizeof(buf))) < 0)
		return r;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (!strncmp(line, "0::", 3)) {
			snprintf(out, size, "%s", line + 3);
			return 0;
		}
	return -ENOENT;
}

void backend_attach(const struct backend_config *cfg, struct backend_target *t)
{
	char path[2048], num[32];
	int r;

	t->kind = cfg->kind;
	if (cfg->kind != BACKEND_CGROUP)
		return;
	/* where the process is now, relative to the v2 mount */
	if (cgroup_of(t->pid, t->cgroup_orig, sizeof(t->cgroup_orig)) < 0)
		goto fallback;
	snprintf(t->cgroup_dir, sizeof(t->cgroup_dir), "%s/client-%d", cfg->cgroup_root, (int)t->pid);
	if (mkdir(t->cgroup_dir, 0755) < 0 && errno != EEXIST)
		goto fallback;
	snprintf(path, sizeof(path), "%s/cpu.weight", t->cgroup_dir);
	if (read_file(path, num, sizeof(num)) < 0)
		goto fallback_rmdir;
	t->weight_orig = (unsigned)strtoul(num, NULL, 10);
	snprintf(path, sizeof(path), "%s/cgroup.procs", t->cgroup_dir);
	snprintf(num, sizeof(num), "%d", (int)t->pid);
	if ((r = write_file(path, num)) < 0)
		goto fallback_rmdir;
	return;
fallback_rmdir:
	rmdir(t->cgroup_dir);
fallback:
	t->cgroup_dir[0] = '\0';
	t->kind = BACKEND_NICE;
}

static int save_thread(struct backend_target *t, pid_t tid, int nice, bool changed)
{
	if (t->n_saved == t->cap_saved) {
		size_t cap = t->cap_saved ? t->cap_saved * 2 : 8;
		struct backend_saved_nice *s = realloc(t->saved, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		t->saved = s;
		t->cap_saved = cap;
	}
	t->saved[t->n_saved].tid = tid;
	t->saved[t->n_saved].nice = nice;
	t->saved[t->n_saved].changed = changed;
	t->n_saved++;
	return 0;
}

/*
 * Calls fn for each thread of pid still there, with its nice value.  fn
 * returns 0 or -errno; the walk goes on after an error, except -ENOMEM,
 * after which nothing more could be recorded.  Returns -errno when the
 * threads cannot be listed (the process is gone), else fn's last error.
 */
static int each_thread(pid_t pid, int (*fn)(pid_t tid, int nice, void *ctx), void *ctx)
{
	char path[64];
	DIR *dir;
	struct dirent *de;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return -errno;
	while ((de = readdir(dir))) {
		pid_t tid = (pid_t)atoi(de->d_name);
		int cur, r;

		if (tid <= 0)
			continue;
		errno = 0;
		cur = getpriority(PRIO_PROCESS, (id_t)tid);
		if (cur == -1 && errno)
			continue; /* the thread went */
		if ((r = fn(tid, cur, ctx)) < 0)
			err = r;
		if (r == -ENOMEM)
			break;
	}
	closedir(dir);
	return err;
}

struct boost_walk {
	const struct backend_config *cfg;
	struct backend_target *t;
};

static int boost_thread(pid_t tid, int cur, void *ctx)
{
	struct boost_walk *w = ctx;
	bool change = cur > w->cfg->boost_nice;

	if (change && setpriority(PRIO_PROCESS, (id_t)tid, w->cfg->boost_nice) < 0)
		return -errno;
	if (save_thread(w->t, tid, cur, change) < 0) {
		if (change)
			setpriority(PRIO_PROCESS, (id_t)tid, cur);
		return -ENOMEM;
	}
	return 0;
}

/* Boosts every thread of the process that runs below the boost, and
 * remembers every thread it saw, changed or not (see nice_restore). */
static int nice_boost(const struct backend_config *cfg, struct backend_target *t, unsigned *value)
{
	struct boost_walk w = { cfg, t };
	int err = each_thread(t->pid, boost_thread, &w);

	errno = 0;
	*value = (unsigned)getpriority(PRIO_PROCESS, (id_t)t->pid);
	return err;
}

static bool saw_thread(const struct backend_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->n_saved; i++)
		if (t->saved[i].tid == tid)
			return true;
	return false;
}

/*
 * Threads created while the process was boosted inherited the boosted nice
 * from the thread that made them.  Which thread that was is not known, but
 * when every thread seen at the boost ran at one nice value and was
 * boosted from it, any new thread at the boost came from a boosted one and
 * goes back to that value.  In a process whose threads ran at different
 * values, new threads are left as they are: guessing could lower a thread
 * that was meant to run higher.
 */
static int restore_new_thread(pid_t tid, int cur, void *ctx)
{
	struct boost_walk *w = ctx;

	if (saw_thread(w->t, tid) || cur != w->cfg->boost_nice)
		return 0;
	return setpriority(PRIO_PROCESS, (id_t)tid, w->t->saved[0].nice) < 0 ? -errno : 0;
}

static int nice_restore_new_threads(const struct backend_config *cfg, struct backend_target *t)
{
	struct boost_walk w = { cfg, t };
	int base, err;

	if (!t->n_saved)
		return 0;
	base = t->saved[0].nice;
	for (size_t i = 0; i < t->n_saved; i++)
		if (!t->saved[i].changed || t->saved[i].nice != base)
			return 0;
	err = each_thread(t->pid, restore_new_thread, &w);
	return err == -ENOENT ? 0 : err; /* the process is gone */
}

static int nice_restore(const struct backend_config *cfg, struct backend_target *t, unsigned *value)
{
	int err = 0, e;

	for (size_t i = 0; i < t->n_saved; i++) {
		int cur;

		if (!t->saved[i].changed)
			continue;
		errno = 0;
		cur = getpriority(PRIO_PROCESS, (id_t)t->saved[i].tid);
		if (cur == -1 && errno)
			continue;
		/* changed by someone else meanwhile: theirs now */
		if (cur != cfg->boost_nice)
			continue;
		if (setpriority(PRIO_PROCESS, (id_t)t->saved[i].tid, t->saved[i].nice) < 0)
			err = -errno;
	}
	if ((e = nice_restore_new_threads(cfg, t)) < 0 && !err)
		err = e;
	t->n_saved = 0;
	if (value) {
		errno = 0;
		*value = (unsigned)getpriority(PRIO_PROCESS, (id_t)t->pid);
	}
	return err;
}

int backend_apply(const struct backend_config *cfg, struct backend_target *t, bool boost,
		      unsigned *value)
{
	char path[2048], num[32];
	int r;

	*value = 0;
	if (t->kind == BACKEND_NONE || boost == t->boosted)
		return 0;
	if (!alive(t))
		return -ESRCH;
	t->boosted = boost;
	if (t->kind == BACKEND_CGROUP) {
		snprintf(path, sizeof(path), "%s/cpu.weight", t->cgroup_dir);
		*value = boost ? cfg->boost_weight : t->weight_orig;
		snprintf(num, sizeof(num), "%u", *value);
		r = write_file(path, num);
		return r;
	}
	return boost ? nice_boost(cfg, t, value) : nice_restore(cfg, t, value);
}

void backend_detach(const struct backend_config *cfg, struct backend_target *t)
{
	char path[2048], num[32];
	unsigned value;

	if (t->kind == BACKEND_NICE && t->boosted && alive(t))
		nice_restore(cfg, t, &value);
	if (t->kind == BACKEND_CGROUP && t->cgroup_dir[0]) {
		if (alive(t)) {
			snprintf(path, sizeof(path), "%s%s/cgroup.procs", cfg->cgroup_mount, t->cgroup_orig);
			snprintf(num, sizeof(num), "%d", (int)t->pid);
			write_file(path, num);
		}
		rmdir(t->cgroup_dir);
	}
	free(t->saved);
	t->saved = NULL;
	t->n_saved = t->cap_saved = 0;
	t->boosted = false;
}

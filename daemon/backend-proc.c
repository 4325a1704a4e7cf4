/*
 * What the backends do to processes and threads: nice values, I/O
 * priorities, timer slack and the session's autogroup.
 *
 * Nothing is touched that the daemon has not verified.  The process is
 * known by the pidfd taken when it connected, and its pid + start time.
 * A thread is opened as a thread pidfd (PIDFD_THREAD) and PIDFD_GET_INFO
 * must name our process as its thread group; the process's pidfd must
 * still be alive after that, so the thread group id was still ours.  After
 * the change the thread pidfd must still be alive: a thread that has not
 * exited still holds its tid, so the call reached it.  Files under
 * /proc/PID are opened through a directory handle taken while the pidfd
 * shows the process alive; such a handle fails once the process is gone
 * instead of following a reused pid.
 *
 * A boost records, per thread, what it changed.  An unboost puts back each
 * recorded thread that is still the same thread (tid + start time) and
 * never leaves one at a nice value better than it had before the boost.
 * Threads and child processes started while the process was boosted
 * inherited the boosted values; they are put at the best value the
 * process's threads had before the boost (the floor), so none keeps a
 * level its process could not have given it, unless their value is better
 * than the boost itself (only a privileged caller can have set that: it
 * is theirs).  The processes are the ones the fork tracker recorded
 * (backend-fork.c), wherever they are now, double-forked ones included;
 * without it, the process's children found at the unboost.  The number
 * of threads handled per boost and per unboost is bounded by max_threads,
 * and as many again in the processes forked during the boost.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backend-internal.h"
#include "pidfd.h"

/* records of processes forked during one boost taken at its unboost */
#define FORK_TAKE_MAX 1024

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif


#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_NONE 0
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO(cls, level) (((cls) << IOPRIO_CLASS_SHIFT) | (level))

static bool pidfd_alive(int fd)
{
	struct pidfd_info_v0 info;

	return pidfd_get_info(fd, &info) == 0;
}

bool bk_target_alive(const struct backend_target *t)
{
	return t->pidfd >= 0 && pidfd_alive(t->pidfd);
}

int bk_start_time(pid_t pid, pid_t tid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long v;
	int r, field;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if ((r = bk_read_text(path, buf, sizeof(buf))) < 0)
		return r;
	/* the command name may hold anything; fields go on after its ')' */
	if (!(p = strrchr(buf, ')')))
		return -EINVAL;
	p++;
	for (field = 2; field < 21 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu", &v) != 1)
		return -EINVAL;
	*start = v;
	return 0;
}

uint64_t bk_now_ticks(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)ts.tv_nsec * (uint64_t)hz / 1000000000u;
}

/* The pidfd given at connect must be the process t->pid; its start time
 * becomes part of its identity. */
int bk_verify_target(struct backend_target *t)
{
	struct pidfd_info_v0 info;
	int r;

	if (t->pidfd < 0)
		return -EBADF;
	if ((r = pidfd_get_info(t->pidfd, &info)) < 0)
		return r;
	if ((pid_t)info.pid != t->pid || info.tgid != info.pid)
		return -ESRCH;
	if ((r = bk_start_time(t->pid, t->pid, &t->start)) < 0)
		return r;
	return bk_target_alive(t) ? 0 : -ESRCH;
}

/* A pidfd for thread tid of process pid (whose pidfd is pfd), or -errno. */
static int thread_open(int pfd, pid_t pid, pid_t tid)
{
	struct pidfd_info_v0 info;
	int fd = (int)syscall(SYS_pidfd_open, tid, tid == pid ? 0 : PIDFD_THREAD);

	if (fd < 0)
		return -errno;
	if (pidfd_get_info(fd, &info) < 0 || (pid_t)info.tgid != pid || !pidfd_alive(pfd)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

static int ioprio_get_tid(pid_t tid)
{
	return (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
}

static int ioprio_set_tid(pid_t tid, int prio)
{
	return syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, prio) < 0 ? -errno : 0;
}

/* The best-effort level a thread's I/O runs at: its class's, or for the
 * class "none" the one its nice value implies. */
static bool io_held_back(int prio, int nice, int level)
{
	int cls = prio >> IOPRIO_CLASS_SHIFT;

	if (cls == IOPRIO_CLASS_IDLE)
		return true;
	if (cls == IOPRIO_CLASS_BE)
		return (prio & 7) > level;
	if (cls == IOPRIO_CLASS_NONE)
		return (nice + 20) / 5 > level;
	return false; /* real time */
}

/* Calls fn for the threads of process pid, at most max of them. */
static int each_tid(pid_t pid, unsigned max, int (*fn)(pid_t tid, void *ctx), void *ctx)
{
	char path[64];
	struct dirent *de;
	unsigned n = 0;
	DIR *dir;
	int err = 0, r;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return -errno;
	while ((de = readdir(dir)) && n < max) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0)
			continue;
		n++;
		if ((r = fn(tid, ctx)) < 0)
			err = r;
		if (r == -ENOMEM)
			break;
	}
	closedir(dir);
	return err;
}

int bk_saved_push(struct backend_saved_thread **v, size_t *n, size_t *cap, const struct backend_saved_thread *s)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct backend_saved_thread *grown = realloc(*v, c * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		*v = grown;
		*cap = c;
	}
	(*v)[(*n)++] = *s;
	return 0;
}

static int save_thread(struct backend_target *t, const struct backend_saved_thread *s)
{
	return bk_saved_push(&t->saved, &t->n_saved, &t->cap_saved, s);
}

struct walk {
	const struct backend_config *cfg;
	struct backend_target *t;
	pid_t pid;     /* the process whose threads are walked */
	int pfd;       /* its pidfd */
	bool nice;     /* the nice backend is in force */
	unsigned budget; /* threads left to handle in this walk */
	/* unboost: the best nice the process may give itself, and what was
	 * found changed by someone else since the boost */
	int own_floor;
	unsigned n_kept, n_undone;
	pid_t kept_tid, undone_tid;
	int kept_nice, undone_nice, undone_to;
};

static int boost_thread(pid_t tid, void *ctx)
{
	struct walk *w = ctx;
	struct backend_target *t = w->t;
	struct backend_saved_thread s = { .tid = tid };
	int fd, cur_io, r = 0;

	if ((fd = thread_open(t->pidfd, t->pid, tid)) < 0)
		return 0; /* gone, or not ours */
	if (bk_start_time(t->pid, tid, &s.start) < 0)
		goto out;
	errno = 0;
	s.nice = getpriority(PRIO_PROCESS, (id_t)tid);
	if (s.nice == -1 && errno)
		goto out;
	cur_io = ioprio_get_tid(tid);
	s.ioprio = cur_io;
	if (s.nice < t->floor_nice)
		t->floor_nice = s.nice;
	if (w->nice && s.nice > t->nice_boosted) {
		if (setpriority(PRIO_PROCESS, (id_t)tid, t->nice_boosted) < 0)
			r = -errno;
		else
			s.nice_changed = true;
	}
	if (t->ioprio_boosted >= 0 && cur_io >= 0 &&
	    io_held_back(cur_io, s.nice, t->ioprio_boosted & 7)) {
		if ((r = ioprio_set_tid(tid, t->ioprio_boosted)) == 0)
			s.ioprio_changed = true;
	}
	if ((s.nice_changed || s.ioprio_changed) && !pidfd_alive(fd)) {
		r = -ESRCH; /* it exited during the change: nothing to put back */
		goto out;
	}
	if (save_thread(t, &s) < 0) {
		if (s.nice_changed)
			setpriority(PRIO_PROCESS, (id_t)tid, s.nice);
		if (s.ioprio_changed)
			ioprio_set_tid(tid, s.ioprio);
		r = -ENOMEM;
	}
out:
	close(fd);
	return r;
}

int bk_threads_boost(const struct backend_config *cfg, struct backend_target *t, bool nice)
{
	struct walk w = { cfg, t, t->pid, t->pidfd, nice, cfg->max_threads };
	int io;

	t->n_saved = 0;
	t->boost_start = bk_now_ticks();
	t->floor_nice = INT_MAX;
	t->nice_boosted = cfg->boost_nice;
	t->ioprio_boosted = cfg->boost_io_level >= 0 ? IOPRIO(IOPRIO_CLASS_BE, cfg->boost_io_level) : -1;
	io = ioprio_get_tid(t->pid);
	t->floor_ioprio = io < 0 ? 0 : io;
	if (!nice && t->ioprio_boosted < 0)
		return 0;
	/* before any change: a child forked from now on is recorded */
	t->forks_followed = bk_fork_boost(t);
	return each_tid(t->pid, cfg->max_threads, boost_thread, &w);
}

static const struct backend_saved_thread *saved_thread(const struct backend_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->n_saved; i++)
		if (t->saved[i].tid == tid)
			return &t->saved[i];
	return NULL;
}

static int proc_read(const struct backend_target *t, const char *name, char *buf, size_t size);

/*
 * The best nice value the process may set on its own threads: any, with
 * CAP_SYS_NICE in its effective set; else down to what its RLIMIT_NICE
 * allows (20 - limit), and never below where it already was.
 */
static int own_nice_floor(const struct backend_target *t, int before)
{
	unsigned long long cap = 0;
	char buf[4096], *p;
	struct rlimit rl;
	int floor = before;

	if (proc_read(t, "status", buf, sizeof(buf)) == 0 && (p = strstr(buf, "\nCapEff:")) &&
	    sscanf(p + 8, "%llx", &cap) == 1 && (cap >> 23 & 1)) /* CAP_SYS_NICE */
		return -20;
	if (prlimit(t->pid, RLIMIT_NICE, NULL, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= 40)
			return -20;
		if (20 - (int)rl.rlim_cur < floor)
			floor = 20 - (int)rl.rlim_cur;
	}
	return floor;
}

/*
 * Puts one thread back: what the boost recorded, or for a thread started
 * during the boost, the floor.  fd is its verified thread pidfd.
 *
 * A recorded thread whose nice is no longer the one the boost set was
 * changed by someone else (an administrator's renice, the process itself)
 * and keeps that value, unless it is better than both what the thread had
 * before and what the process may give itself (own_floor) while not
 * better than the boost: from the boosted value any process may raise its
 * own nice, so such a value may be the process keeping part of a boost it
 * was lent, and it is put back.  A value better than the boost itself
 * only a privileged caller can have set: it is kept.  The walk counts
 * both for one log line.
 */
static int restore_one(struct walk *w, pid_t tid, const struct backend_saved_thread *s)
{
	struct backend_target *t = w->t;
	int cur, io, r = 0;

	errno = 0;
	cur = getpriority(PRIO_PROCESS, (id_t)tid);
	if (cur == -1 && errno)
		return 0;
	io = ioprio_get_tid(tid);
	if (s) {
		if (s->nice_changed && cur == t->nice_boosted) {
			if (setpriority(PRIO_PROCESS, (id_t)tid, s->nice) < 0)
				r = -errno;
		} else if (s->nice_changed && cur < s->nice && cur < w->own_floor && cur > t->nice_boosted) {
			if (setpriority(PRIO_PROCESS, (id_t)tid, s->nice) < 0)
				r = -errno;
			if (!w->n_undone++) {
				w->undone_tid = tid;
				w->undone_nice = cur;
				w->undone_to = s->nice;
			}
		} else if (s->nice_changed && cur != s->nice && !w->n_kept++) {
			w->kept_tid = tid;
			w->kept_nice = cur;
		}
		if (s->ioprio_changed && io == t->ioprio_boosted && ioprio_set_tid(tid, s->ioprio) < 0)
			r = -errno;
		return r;
	}
	/* started during the boost: it inherited the boosted value, or a
	 * value from it that anyone may reach; only a privileged caller can
	 * have put it better than the boost, and that is theirs */
	if (w->nice && t->floor_nice != INT_MAX && cur < t->floor_nice) {
		if (cur >= t->nice_boosted) {
			if (setpriority(PRIO_PROCESS, (id_t)tid, t->floor_nice) < 0)
				r = -errno;
		} else if (!w->n_kept++) {
			w->kept_tid = tid;
			w->kept_nice = cur;
		}
	}
	if (t->ioprio_boosted >= 0 && io == t->ioprio_boosted && io != t->floor_ioprio &&
	    ioprio_set_tid(tid, t->floor_ioprio) < 0)
		r = -errno;
	return r;
}

static int restore_thread(pid_t tid, void *ctx)
{
	struct walk *w = ctx;
	const struct backend_saved_thread *s = w->pid == w->t->pid ? saved_thread(w->t, tid) : NULL;
	uint64_t start;
	int fd, r = 0;

	if (!w->budget)
		return 0;
	w->budget--;
	if ((fd = thread_open(w->pfd, w->pid, tid)) < 0)
		return 0;
	if (bk_start_time(w->pid, tid, &start) < 0)
		goto out;
	if (s && s->start != start)
		s = NULL; /* the tid was reused within the process: a new thread */
	if (!s && start < w->t->boost_start)
		goto out; /* not started during the boost, not changed by it */
	r = restore_one(w, tid, s);
out:
	close(fd);
	return r;
}

/* Child processes started during the boost, and theirs, to depth 4. */
static int restore_children(struct walk *w, int depth)
{
	char path[96], buf[4096], *p, *end;
	pid_t parent = w->pid;
	int pfd = w->pfd;
	DIR *dir;
	struct dirent *de;

	struct pidfd_info_v0 pinfo;
	bool have_parent;

	if (depth > 4 || !w->budget)
		return 0;
	have_parent = pidfd_get_info(pfd, &pinfo) == 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)parent);
	if (!(dir = opendir(path)))
		return 0;
	while ((de = readdir(dir)) && w->budget) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)tid);
		if (bk_read_text(path, buf, sizeof(buf)) < 0)
			continue;
		for (p = buf; w->budget; p = end) {
			long child = strtol(p, &end, 10);
			struct pidfd_info_v0 info;
			uint64_t start;
			int cfd;

			if (end == p || child <= 0)
				break;
			cfd = (int)syscall(SYS_pidfd_open, (pid_t)child, 0);
			if (cfd < 0)
				continue;
			/* still a child of the verified parent, started during the
			 * boost, and of the parent's own uids: a setuid child is not
			 * the receiver's to renice */
			if (pidfd_get_info(cfd, &info) == 0 && (pid_t)info.ppid == parent && pidfd_alive(pfd) &&
			    have_parent && info.euid == pinfo.euid && info.ruid == pinfo.ruid &&
			    bk_start_time((pid_t)child, (pid_t)child, &start) == 0 && start >= w->t->boost_start) {
				w->pid = (pid_t)child;
				w->pfd = cfd;
				each_tid(w->pid, w->budget, restore_thread, w);
				restore_children(w, depth + 1);
				w->pid = parent;
				w->pfd = pfd;
			}
			close(cfd);
		}
	}
	closedir(dir);
	return 0;
}

/*
 * The processes the kernel half recorded as forked from the boost
 * (backend-fork.c), wherever they are now: each one still the process
 * recorded (pid, start time during the boost, the credentials it was born
 * with) has its threads put back as a thread started during the boost
 * is, at most max_threads of them over all such processes.
 */
static void restore_born(struct walk *w)
{
	struct backend_target *t = w->t;
	struct bk_born *born = malloc(FORK_TAKE_MAX * sizeof(*born));
	size_t n;
	unsigned lost;

	bk_fork_unboost(t, &lost);
	if (!born)
		return;
	n = bk_fork_take(t, born, FORK_TAKE_MAX);
	w->budget = w->cfg->max_threads;
	for (size_t i = 0; i < n && w->budget; i++) {
		struct pidfd_info_v0 info;
		uint64_t start;
		int cfd = (int)syscall(SYS_pidfd_open, born[i].pid, 0);

		if (cfd < 0)
			continue;
		if (pidfd_get_info(cfd, &info) == 0 && info.ruid == born[i].uid && info.euid == born[i].euid &&
		    bk_start_time(born[i].pid, born[i].pid, &start) == 0 && start == born[i].start &&
		    start >= t->boost_start && pidfd_alive(cfd)) {
			w->pid = born[i].pid;
			w->pfd = cfd;
			each_tid(w->pid, w->budget, restore_thread, w);
			w->pid = t->pid;
			w->pfd = t->pidfd;
		}
		close(cfd);
	}
	free(born);
	if (lost)
		fprintf(stderr, "importanced: pid %d: %u process%s forked during the boost could not be recorded: "
			"they keep what they inherited unless they are still its children\n", (int)t->pid, lost,
			lost == 1 ? "" : "es");
	if (lost)
		restore_children(w, 1);
}

static void restore_logged(const struct walk *w)
{
	const struct backend_target *t = w->t;

	if (w->n_kept)
		fprintf(stderr, "importanced: pid %d: nice of %u thread%s changed by someone else during the boost "
			"(thread %d: %d): kept at the unboost\n", (int)t->pid, w->n_kept, w->n_kept == 1 ? "" : "s",
			(int)w->kept_tid, w->kept_nice);
	if (w->n_undone)
		fprintf(stderr, "importanced: pid %d: nice of %u thread%s set during the boost better than before and "
			"than the process may set itself (thread %d: %d): put back (%d)\n", (int)t->pid, w->n_undone,
			w->n_undone == 1 ? "" : "s", (int)w->undone_tid, w->undone_nice, w->undone_to);
}

int bk_threads_restore(const struct backend_config *cfg, struct backend_target *t, bool nice)
{
	struct walk w = { cfg, t, t->pid, t->pidfd, nice, cfg->max_threads };
	int err;

	if (!nice && t->ioprio_boosted < 0)
		return 0;
	w.own_floor = nice ? own_nice_floor(t, t->floor_nice == INT_MAX ? 19 : t->floor_nice) : -20;
	err = each_tid(t->pid, cfg->max_threads, restore_thread, &w);
	/* the receiver's own threads first: a child forked from now on
	 * inherits what they have been put back to */
	if (t->forks_followed)
		restore_born(&w);
	else
		restore_children(&w, 1);
	t->forks_followed = false;
	t->n_saved = 0;
	restore_logged(&w);
	return err == -ENOENT ? 0 : err;
}

int bk_threads_orphans(const struct backend_config *cfg, struct backend_target *t, bool nice)
{
	struct walk w = { cfg, t, t->pid, -1, nice, cfg->max_threads };

	if (!t->forks_followed || (!nice && t->ioprio_boosted < 0))
		return 0;
	t->forks_followed = false;
	restore_born(&w);
	restore_logged(&w);
	return 0;
}

/* A handle on /proc/PID that cannot follow a reused pid. */
static int proc_dir(const struct backend_target *t)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d", (int)t->pid);
	if ((fd = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (!bk_target_alive(t)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

static int proc_read(const struct backend_target *t, const char *name, char *buf, size_t size)
{
	int dfd = proc_dir(t), r;

	if (dfd < 0)
		return dfd;
	r = bk_read_at(dfd, name, buf, size);
	close(dfd);
	return r;
}

static int proc_write(const struct backend_target *t, const char *name, const char *text)
{
	int dfd = proc_dir(t), r;

	if (dfd < 0)
		return dfd;
	r = bk_write_at(dfd, name, text);
	close(dfd);
	return r;
}

int bk_slack_boost(const struct backend_config *cfg, struct backend_target *t)
{
	char buf[64];
	unsigned long cur;
	int r;

	t->slack_orig = 0;
	t->slack_boosted = cfg->boost_timerslack_ns;
	if (!cfg->boost_timerslack_ns)
		return 0;
	if ((r = proc_read(t, "timerslack_ns", buf, sizeof(buf))) < 0)
		return r;
	cur = strtoul(buf, NULL, 10);
	if (cur <= cfg->boost_timerslack_ns)
		return 0;
	snprintf(buf, sizeof(buf), "%lu", cfg->boost_timerslack_ns);
	if ((r = proc_write(t, "timerslack_ns", buf)) == 0)
		t->slack_orig = cur;
	return r;
}

int bk_slack_restore(const struct backend_config *cfg, struct backend_target *t)
{
	char buf[64];
	int r;

	(void)cfg;
	if (!t->slack_orig)
		return 0;
	if ((r = proc_read(t, "timerslack_ns", buf, sizeof(buf))) == 0 &&
	    strtoul(buf, NULL, 10) == t->slack_boosted) {
		snprintf(buf, sizeof(buf), "%lu", t->slack_orig);
		r = proc_write(t, "timerslack_ns", buf);
	}
	t->slack_orig = 0;
	return r;
}

/* The weight the scheduler gives a nice value: 1024 at 0, 1.25x a step. */
int bk_nice_weight(int nice)
{
	double w = 1024;

	for (int i = 0; i < nice; i++)
		w /= 1.25;
	for (int i = 0; i > nice; i--)
		w *= 1.25;
	return w < 2 ? 2 : (int)(w + 0.5);
}

int bk_autogroup_probe(char *why, size_t size)
{
	unsigned long on;

	if (bk_read_ulong("/proc/sys/kernel/sched_autogroup_enabled", &on) < 0) {
		snprintf(why, size, "the kernel has no autogroup scheduling");
		return -ENOTSUP;
	}
	if (!on) {
		snprintf(why, size, "sched_autogroup_enabled is 0: sessions are not scheduled as groups");
		return -ENOTSUP;
	}
	return 0;
}

static int autogroup_of(const struct backend_target *t, unsigned long *id, int *nice)
{
	char buf[128];
	int r;

	if ((r = proc_read(t, "autogroup", buf, sizeof(buf))) < 0)
		return r;
	return sscanf(buf, "/autogroup-%lu nice %d", id, nice) == 2 ? 0 : -EINVAL;
}

/* Whether some other process shares the autogroup id (its session). */
static bool autogroup_shared(pid_t self, unsigned long id)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	bool shared = false;

	if (!dir)
		return true;
	while (!shared && (de = readdir(dir))) {
		char path[64], buf[128];
		unsigned long other;
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/autogroup", (int)pid);
		if (bk_read_text(path, buf, sizeof(buf)) == 0 &&
		    sscanf(buf, "/autogroup-%lu", &other) == 1 && other == id)
			shared = true;
	}
	closedir(dir);
	return shared;
}

int bk_autogroup_attach(const struct backend_config *cfg, struct backend_target *t, char *why, size_t size)
{
	char buf[4096], where[600];
	unsigned long id;
	int nice, r;

	(void)cfg;
	/* autogroups only exist for tasks in the root of the cpu controller:
	 * v1's, or v2's where v2 has the controller */
	if ((r = proc_read(t, "cgroup", buf, sizeof(buf))) < 0)
		return r;
	for (int k = BACKEND_CGROUP_V1; k <= BACKEND_CGROUP_V2; k++) {
		char copy[4096];

		if (k == BACKEND_CGROUP_V2 && !bk_cgroup_v2_has_cpu())
			continue;
		memcpy(copy, buf, sizeof(copy));
		if (bk_cgroup_path(copy, (enum backend_kind)k, where, sizeof(where)) == 0 && strcmp(where, "/")) {
			snprintf(why, size, "pid %d is in cpu cgroup %s, not the root", (int)t->pid, where);
			return -ENOTSUP;
		}
	}
	if ((r = autogroup_of(t, &id, &nice)) < 0) {
		snprintf(why, size, "pid %d: no autogroup", (int)t->pid);
		return r;
	}
	if (autogroup_shared(t->pid, id)) {
		snprintf(why, size, "pid %d shares its session's autogroup with other processes", (int)t->pid);
		return -EBUSY;
	}
	t->autogroup_orig = nice;
	return 0;
}

int bk_autogroup_set(const struct backend_config *cfg, struct backend_target *t, bool boost)
{
	unsigned long id;
	char num[16];
	int cur, r;

	if ((r = autogroup_of(t, &id, &cur)) < 0)
		return r;
	if (boost) {
		t->autogroup_orig = cur;
		t->autogroup_boosted = cur <= cfg->autogroup_nice ? cur : cfg->autogroup_nice;
		if (cur <= cfg->autogroup_nice)
			return 0;
		snprintf(num, sizeof(num), "%d", cfg->autogroup_nice);
		return proc_write(t, "autogroup", num);
	}
	if (cur == t->autogroup_orig)
		return 0;
	if (cur != t->autogroup_boosted) {
		/* someone else's since the boost (whoever set it could: a
		 * group's nice below 0 needs the privilege or RLIMIT_NICE) */
		if (t->autogroup_boosted != t->autogroup_orig)
			fprintf(stderr, "importanced: pid %d: its autogroup's nice was set to %d by someone else during "
				"the boost: kept at the unboost\n", (int)t->pid, cur);
		return 0;
	}
	snprintf(num, sizeof(num), "%d", t->autogroup_orig);
	return proc_write(t, "autogroup", num);
}

/*
 * The background band (docs/backends.md, "The background band"): with
 * receiver-background, a receiver that is not boosted sits at
 * background_nice, as the reference's darwinbg tasks do, and only a boost
 * lifts it.  Where a nice value competes decides where the band goes: a
 * receiver alone in its autogroup (in the cpu root) competes through that
 * group, so the group's nice is set; otherwise every thread's (at most
 * max_threads).  Only a value better than the band is changed, and each
 * change is recorded; leaving the band (detach) puts back each recorded
 * value that is still the band's, keeps one someone else set since, and
 * puts a thread started during the band at the best value the process
 * had before it.  A boost saves and restores the band's values like any
 * others, so the unboost goes back into the band.
 */
struct band_walk {
	struct backend_target *t;
	unsigned n_kept;
};

static int band_thread(pid_t tid, void *ctx)
{
	struct band_walk *w = ctx;
	struct backend_target *t = w->t;
	struct backend_saved_thread s = { .tid = tid };
	int fd, r = 0;

	if ((fd = thread_open(t->pidfd, t->pid, tid)) < 0)
		return 0;
	errno = 0;
	s.nice = getpriority(PRIO_PROCESS, (id_t)tid);
	if (bk_start_time(t->pid, tid, &s.start) < 0 || (s.nice == -1 && errno))
		goto out;
	if (s.nice < t->band_floor)
		t->band_floor = s.nice;
	if (s.nice >= t->band_nice)
		goto out; /* already in the band, or below it: its own */
	if (setpriority(PRIO_PROCESS, (id_t)tid, t->band_nice) < 0) {
		r = -errno;
		goto out;
	}
	s.nice_changed = true;
	if ((r = bk_saved_push(&t->band, &t->n_band, &t->cap_band, &s)) < 0)
		setpriority(PRIO_PROCESS, (id_t)tid, s.nice);
out:
	close(fd);
	return r;
}

int bk_band_enter(const struct backend_config *cfg, struct backend_target *t)
{
	struct band_walk w = { t, 0 };
	unsigned long id;
	char num[16];
	int cur, r;

	t->band_on = false;
	t->n_band = 0;
	t->band_floor = INT_MAX;
	t->band_start = bk_now_ticks();
	t->band_nice = cfg->background_nice;
	if (!(cfg->background || t->background) || t->kind == BACKEND_NONE)
		return 0;
	t->band_autogroup = t->kind == BACKEND_AUTOGROUP ||
			    ((t->kind == BACKEND_CGROUP_V1 || t->kind == BACKEND_CGROUP_V2) && t->autogroup_alone);
	if (t->band_autogroup) {
		if ((r = autogroup_of(t, &id, &cur)) < 0)
			return r;
		t->band_autogroup_from = cur;
		t->band_on = true;
		if (cur >= t->band_nice)
			return 0;
		snprintf(num, sizeof(num), "%d", t->band_nice);
		return proc_write(t, "autogroup", num);
	}
	t->band_on = true;
	r = each_tid(t->pid, cfg->max_threads, band_thread, &w);
	return r == -ENOENT ? 0 : r;
}

static int unband_thread(pid_t tid, void *ctx)
{
	struct band_walk *w = ctx;
	struct backend_target *t = w->t;
	const struct backend_saved_thread *s = NULL;
	uint64_t start;
	int fd, cur;

	if ((fd = thread_open(t->pidfd, t->pid, tid)) < 0)
		return 0;
	errno = 0;
	cur = getpriority(PRIO_PROCESS, (id_t)tid);
	if (bk_start_time(t->pid, tid, &start) < 0 || (cur == -1 && errno))
		goto out;
	for (size_t i = 0; i < t->n_band && !s; i++)
		if (t->band[i].tid == tid && t->band[i].start == start)
			s = &t->band[i];
	if (s && cur == t->band_nice)
		setpriority(PRIO_PROCESS, (id_t)tid, s->nice);
	else if (s)
		w->n_kept++;
	else if (start >= t->band_start && cur == t->band_nice && t->band_floor < t->band_nice)
		setpriority(PRIO_PROCESS, (id_t)tid, t->band_floor);
out:
	close(fd);
	return 0;
}

void bk_band_leave(const struct backend_config *cfg, struct backend_target *t)
{
	struct band_walk w = { t, 0 };
	unsigned long id;
	char num[16];
	int cur;

	if (t->band_on && bk_target_alive(t)) {
		if (!t->band_autogroup)
			each_tid(t->pid, cfg->max_threads, unband_thread, &w);
		else if (autogroup_of(t, &id, &cur) == 0 && cur == t->band_nice && t->band_autogroup_from < cur) {
			snprintf(num, sizeof(num), "%d", t->band_autogroup_from);
			proc_write(t, "autogroup", num);
		} else if (cur != t->band_nice && t->band_autogroup_from < t->band_nice)
			w.n_kept++;
		if (w.n_kept)
			fprintf(stderr, "importanced: pid %d: a nice value someone else set while it was in the background "
				"band is kept (%u %s)\n", (int)t->pid, w.n_kept, t->band_autogroup ? "autogroup" : "threads");
	}
	free(t->band);
	t->band = NULL;
	t->n_band = t->cap_band = 0;
	t->band_on = false;
}

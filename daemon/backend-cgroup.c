/*
 * The cgroup backends: cgroup v2 (cpu.weight) and cgroup v1 (cpu.shares).
 *
 * Unboosted, a receiver is where it would be without importanced: its
 * own cgroup, its own autogroup.  A boost (bk_cgroup_set) goes through
 * the receiver's own autogroup when it is alone in it in the cpu root
 * (that group competes exactly where a leaf would, and nothing moves);
 * through nice, in place, when its cgroup or one above it has limits the
 * administrator set (v1: a CPU quota; v2: CPU, memory, pids or I/O
 * limits, which would all be left behind with a move), checked at every
 * boost; else by moving it into a leaf cgroup of its own, named after its
 * pid and start time, under the root directory: the hierarchy's own root
 * by default, so that the leaf competes with the other top-level groups,
 * where the sessions' autogroups and systemd's slices compete too (a
 * group's weight only counts against its siblings), weighing
 * boost_weight (v2) or boost_shares (v1).  The unboost moves everything
 * in the leaf back to where the receiver was at the boost.  Saying one is
 * a receiver moves nothing.  When the root is a directory given to us
 * (systemd delegation), that directory competes for all the leaves: its
 * weight is kept at the sum of the occupied ones'.
 *
 * On detach every process still in the leaf goes back to the cgroup the
 * receiver came from, or the nearest one above it that still exists,
 * until the leaf is empty; then the leaf is removed.  The cgroups the
 * processes came from are never written except to move them back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backend-internal.h"

/* A receiver's leaf: its pid and start time (made at a boost, swept at start). */
#define LEAF_NAME "importanced-%d-%llu"

/* Whether the mount is the one kind wants, from a mountinfo line. */
static bool mount_matches(const char *line, enum backend_kind kind)
{
	const char *dash = strstr(line, " - ");
	char fstype[32], opts[512];

	if (!dash || sscanf(dash + 3, "%31s %*s %511s", fstype, opts) != 2)
		return false;
	if (kind == BACKEND_CGROUP_V2)
		return !strcmp(fstype, "cgroup2");
	if (strcmp(fstype, "cgroup"))
		return false;
	for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
		if (!strcmp(o, "cpu"))
			return true;
	return false;
}

static int find_mount(enum backend_kind kind, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024], mnt[256];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (mount_matches(line, kind) && sscanf(line, "%*s %*s %*s %*s %255s", mnt) == 1) {
			snprintf(out, size, "%s", mnt);
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

/* Whether the space-separated list names the cpu controller (not cpuset). */
static bool lists_cpu(const char *list)
{
	for (const char *p = list; (p = strstr(p, "cpu")); p += 3)
		if ((p == list || p[-1] == ' ') && (!p[3] || p[3] == ' ' || p[3] == '\n'))
			return true;
	return false;
}

bool bk_cgroup_v2_has_cpu(void)
{
	char mount[256], path[300], buf[512];

	if (find_mount(BACKEND_CGROUP_V2, mount, sizeof(mount)) < 0)
		return false;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", mount);
	return bk_read_text(path, buf, sizeof(buf)) == 0 && lists_cpu(buf);
}

static const char *weight_file(enum backend_kind kind)
{
	return kind == BACKEND_CGROUP_V2 ? "cpu.weight" : "cpu.shares";
}

static const char *root_of(const struct backend_config *cfg)
{
	return cfg->cgroup_root[0] ? cfg->cgroup_root : cfg->cgroup_mount;
}

static int cgroup_of(pid_t pid, enum backend_kind kind, char *out, size_t size);

/*
 * cgroup v2 only lets processes live in leaves once a cgroup's children
 * have controllers.  When the root given to us is inside our own cgroup
 * (systemd's Delegate= gives a service its own cgroup and everything
 * below it), the daemon moves itself into <its cgroup>/daemon first.  Then
 * the cpu controller is enabled for the root's children, and for the
 * root itself in its parent where we may.
 */
static int v2_prepare_root(const struct backend_config *cfg, char *why, size_t size)
{
	char own[600], self[1024], path[1100], parent[1024];
	size_t n;
	int r;

	if (cfg->cgroup_root[0] && cgroup_of(getpid(), BACKEND_CGROUP_V2, own, sizeof(own)) == 0) {
		snprintf(self, sizeof(self), "%s%s", cfg->cgroup_mount, strcmp(own, "/") ? own : "");
		n = strlen(self);
		if (!strncmp(cfg->cgroup_root, self, n) && cfg->cgroup_root[n] == '/') {
			snprintf(path, sizeof(path), "%s/daemon", self);
			if ((mkdir(path, 0755) < 0 && errno != EEXIST) ||
			    (r = bk_write_ulong(strcat(path, "/cgroup.procs"), (unsigned long)getpid())) < 0) {
				snprintf(why, size, "cannot move importanced into %s/daemon, out of the way of its "
					 "receivers: %s", self, strerror(errno));
				return -EBUSY;
			}
		}
	}
	snprintf(parent, sizeof(parent), "%s", root_of(cfg));
	if (strrchr(parent, '/') && strcmp(parent, cfg->cgroup_mount)) {
		*strrchr(parent, '/') = '\0';
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", parent);
		bk_write_text(path, "+cpu"); /* may be someone else's, and already on */
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root_of(cfg));
	if ((r = bk_write_text(path, "+cpu")) < 0) {
		snprintf(why, size, "cannot enable cpu in %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

int bk_cgroup_probe(struct backend_config *cfg, enum backend_kind kind, char *why, size_t size)
{
	char mount[256], path[1024], file[1100], buf[512];
	int r;

	if (find_mount(kind, mount, sizeof(mount)) < 0) {
		snprintf(why, size, kind == BACKEND_CGROUP_V2 ? "no cgroup v2 mount" :
			 "no cgroup v1 hierarchy has the cpu controller");
		return -ENOTSUP;
	}
	if (kind == BACKEND_CGROUP_V2) {
		snprintf(path, sizeof(path), "%s/cgroup.controllers", mount);
		if ((r = bk_read_text(path, buf, sizeof(buf))) < 0 || !lists_cpu(buf)) {
			snprintf(why, size, "the cpu controller is not enabled in cgroup v2 (%s)%s", mount,
				 r < 0 ? "" : ": it is bound to a v1 hierarchy or disabled");
			return -ENOTSUP;
		}
	}
	if (cfg->cgroup_root[0] && strncmp(cfg->cgroup_root, mount, strlen(mount))) {
		snprintf(why, size, "cgroup root %s is not under %s", cfg->cgroup_root, mount);
		return -EINVAL;
	}
	if (cfg->cgroup_root[0] && mkdir(cfg->cgroup_root, 0755) < 0 && errno != EEXIST) {
		snprintf(why, size, "%s: %s", cfg->cgroup_root, strerror(errno));
		return -errno;
	}
	snprintf(cfg->cgroup_mount, sizeof(cfg->cgroup_mount), "%s", mount);
	if (kind == BACKEND_CGROUP_V2 && (r = v2_prepare_root(cfg, why, size)) < 0)
		return r;
	/* can we make a leaf and weigh it? */
	snprintf(path, sizeof(path), "%s/importanced-probe-%d", root_of(cfg), (int)getpid());
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(why, size, "cannot create a cgroup in %s: %s", root_of(cfg), strerror(-r));
		return r;
	}
	snprintf(file, sizeof(file), "%s/%s", path, weight_file(kind));
	r = bk_write_text(file, kind == BACKEND_CGROUP_V2 ? "100" : "1024");
	rmdir(path);
	if (r < 0) {
		snprintf(why, size, "cannot write %s: %s", file, strerror(-r));
		return r;
	}
	return 0;
}

/* Leaves left by a daemon that did not stop as it should (killed, its
 * state directory gone with the records that would have led a restart to
 * them): named as a receiver's leaf in our root, naming no process alive
 * with that start time, and empty (rmdir() takes only an empty cgroup).
 * Another daemon's leaves under the same root name living receivers, or
 * hold them, and are left alone.  Returns how many went. */
unsigned bk_cgroup_sweep(const struct backend_config *cfg)
{
	DIR *d = opendir(root_of(cfg));
	struct dirent *e;
	unsigned gone = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		unsigned long long start;
		uint64_t now;
		char path[1024], tail;
		int pid;

		if (e->d_type != DT_DIR || sscanf(e->d_name, LEAF_NAME "%c", &pid, &start, &tail) != 2 ||
		    pid <= 0)
			continue;
		if (bk_start_time(pid, pid, &now) == 0 && now == start)
			continue;
		snprintf(path, sizeof(path), "%s/%s", root_of(cfg), e->d_name);
		if (rmdir(path) == 0)
			gone++;
	}
	closedir(d);
	return gone;
}

int bk_cgroup_path(char *text, enum backend_kind kind, char *out, size_t size)
{
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* "0::/path" is the unified hierarchy, "N:ctl,ctl:/path" a v1 one */
		char *ctl = strchr(line, ':'), *where = ctl ? strchr(ctl + 1, ':') : NULL;
		bool found = false;

		if (!where)
			continue;
		*where++ = '\0';
		ctl++;
		if (kind == BACKEND_CGROUP_V2)
			found = !strcmp(line, "0") && !*ctl;
		else
			for (char *s2 = NULL, *c = strtok_r(ctl, ",", &s2); c && !found; c = strtok_r(NULL, ",", &s2))
				found = !strcmp(c, "cpu");
		if (found) {
			snprintf(out, size, "%s", where);
			return 0;
		}
	}
	return -ENOENT;
}

/* Where the process is in the hierarchy of kind, relative to its mount. */
static int cgroup_of(pid_t pid, enum backend_kind kind, char *out, size_t size)
{
	char path[64], buf[4096];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((r = bk_read_text(path, buf, sizeof(buf))) < 0)
		return r;
	return bk_cgroup_path(buf, kind, out, size);
}

/* The sum of the leaves' weights, for a root given to us. */
static unsigned long leaves_weight[BACKEND_N_REAL];

static void update_root_weight(const struct backend_config *cfg, enum backend_kind kind, long delta)
{
	unsigned long max = kind == BACKEND_CGROUP_V2 ? 10000 : 262144, min = kind == BACKEND_CGROUP_V2 ? 1 : 2;
	unsigned long w;
	char path[1024];

	long sum = (long)leaves_weight[kind] + delta;

	leaves_weight[kind] = sum < 0 ? 0 : (unsigned long)sum;
	if (!cfg->cgroup_root[0] || !strcmp(cfg->cgroup_root, cfg->cgroup_mount))
		return;
	w = leaves_weight[kind] < min ? (kind == BACKEND_CGROUP_V2 ? 100 : 1024) :
	    leaves_weight[kind] > max ? max : leaves_weight[kind];
	snprintf(path, sizeof(path), "%s/%s", cfg->cgroup_root, weight_file(kind));
	bk_write_ulong(path, w);
}

void bk_cgroup_forget_weights(void)
{
	memset(leaves_weight, 0, sizeof(leaves_weight));
}

static int move_to(const char *dir, pid_t pid)
{
	char path[1100];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	return bk_write_ulong(path, (unsigned long)pid);
}

/*
 * Limits an administrator put on the receiver's cgroup, or on one above
 * it: a process under them is never moved out (it would escape them), and
 * is boosted through nice instead.  v1 (the cpu hierarchy alone): a CPU
 * quota.  v2 (every controller moves with the process): CPU, memory, pids
 * and I/O limits.  0, or -EPERM with what was found in why.
 */
static int cgroup_limited(const struct backend_target *t, char *why, size_t size)
{
	static const char *const v1[] = { "cpu.cfs_quota_us" };
	static const char *const v2[] = { "cpu.max", "memory.max", "memory.high", "pids.max", "io.max" };
	const char *const *files = t->kind == BACKEND_CGROUP_V2 ? v2 : v1;
	size_t n_files = t->kind == BACKEND_CGROUP_V2 ? sizeof(v2) / sizeof(v2[0]) : 1;
	char dir[1024], path[1200], buf[128];
	size_t len = strlen(t->cgroup_orig);

	/* the cgroup itself, then each one above it, the root excluded */
	for (;;) {
		while (len > 1 && t->cgroup_orig[len - 1] == '/')
			len--;
		if (len <= 1)
			return 0;
		snprintf(dir, sizeof(dir), "%s%.*s", t->cgroup_mount, (int)len, t->cgroup_orig);
		for (size_t i = 0; i < n_files; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			if (bk_read_text(path, buf, sizeof(buf)) < 0)
				continue;
			buf[strcspn(buf, "\n")] = '\0';
			if (!buf[0] || !strcmp(buf, "-1") || !strncmp(buf, "max", 3))
				continue;
			snprintf(why, size, "%s is %s in %.*s", files[i], buf, (int)len, t->cgroup_orig);
			return -EPERM;
		}
		while (len > 1 && t->cgroup_orig[len - 1] != '/')
			len--;
	}
}

/*
 * A receiver comes under a cgroup backend: nothing moves (saying one is a
 * receiver changes nothing) and nothing is decided for good, since the
 * administrator may move it or set limits at any time; what is noted is
 * whether it is alone in its session's autogroup in the cpu root, where
 * its autogroup is exactly what competes for it (see bk_cgroup_set).
 */
int bk_cgroup_attach(const struct backend_config *cfg, struct backend_target *t, char *why, size_t size)
{
	char ignored[160];
	int r;

	if ((r = cgroup_of(t->pid, t->kind, t->cgroup_orig, sizeof(t->cgroup_orig))) < 0) {
		snprintf(why, size, "cannot read pid %d's cgroup: %s", (int)t->pid, strerror(-r));
		return r;
	}
	snprintf(t->cgroup_mount, sizeof(t->cgroup_mount), "%s", cfg->cgroup_mount);
	t->cgroup_leaf[0] = '\0';
	t->in_leaf = false;
	t->weight_idle = 0;
	t->idle_same = false;
	t->via = t->kind;
	t->autogroup_alone = bk_autogroup_probe(ignored, sizeof(ignored)) == 0 &&
			     bk_autogroup_attach(cfg, t, ignored, sizeof(ignored)) == 0;
	return 0;
}

/* The leaf, relative to the hierarchy's mount, as /proc/PID/cgroup says it. */
static const char *leaf_rel(const struct backend_target *t)
{
	return t->cgroup_leaf + strlen(t->cgroup_mount);
}

static int job_ask(struct backend_target *t, bool in);

/* Makes the receiver's leaf (the first time) and sets its weight; the
 * receiver does not move. */
static int leaf_make(const struct backend_config *cfg, struct backend_target *t, unsigned weight)
{
	char path[1024];
	int r;

	if (!t->cgroup_leaf[0])
		snprintf(t->cgroup_leaf, sizeof(t->cgroup_leaf), "%s/" LEAF_NAME, root_of(cfg), (int)t->pid,
			 (unsigned long long)t->start);
	if (mkdir(t->cgroup_leaf, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/%s", t->cgroup_leaf, weight_file(t->kind));
	if ((r = bk_write_ulong(path, weight)) < 0)
		goto fail_rmdir;
	if (!bk_target_alive(t)) {
		r = -ESRCH;
		goto fail_rmdir;
	}
	return 0;
fail_rmdir:
	rmdir(t->cgroup_leaf);
fail:
	t->cgroup_leaf[0] = '\0';
	return r;
}

/* Moves the receiver into its leaf (made on first use), at weight. */
static int move_into_leaf(const struct backend_config *cfg, struct backend_target *t, unsigned weight)
{
	int r;

	if ((r = leaf_make(cfg, t, weight)) < 0)
		return r;
	if (job_ask(t, true) < 0 && (r = move_to(t->cgroup_leaf, t->pid)) < 0) {
		rmdir(t->cgroup_leaf);
		t->cgroup_leaf[0] = '\0';
		return r;
	}
	t->in_leaf = true;
	update_root_weight(cfg, t->kind, (long)weight);
	return 0;
}

/* The nearest existing cgroup at or above path (relative to mount). */
static void existing_ancestor(const char *mount, const char *path, char *out, size_t size)
{
	size_t len = strlen(path);

	for (;;) {
		snprintf(out, size, "%s%.*s", mount, (int)len, path);
		if (len <= 1 || access(out, F_OK) == 0)
			return;
		while (len > 1 && path[len - 1] != '/')
			len--;
		if (len > 1)
			len--; /* the slash */
	}
}

/* Moves everything in the leaf back to where the receiver came from (or
 * the nearest cgroup above it that still exists, never further), until it
 * is empty: a process forking meanwhile puts new children in the leaf,
 * and they are moved too.  Returns the rounds it took. */
static int leaf_move_back(const char *leaf, const char *mount, const char *orig)
{
	char path[1024], back[1024], buf[16384], *p, *end;
	int round;

	existing_ancestor(mount, orig, back, sizeof(back));
	snprintf(path, sizeof(path), "%s/cgroup.procs", leaf);
	for (round = 0; round < 256; round++) {
		if (bk_read_text(path, buf, sizeof(buf)) < 0 || !buf[0])
			break;
		for (p = buf;; p = end) {
			long pid = strtol(p, &end, 10);

			if (end == p)
				break;
			move_to(back, (pid_t)pid);
		}
	}
	return round;
}

/*
 * Moves are made by a thread of their own, the mover.  A move between
 * cgroups takes the kernel's cgroup thread-group lock for writing, which
 * waits for an RCU grace period when no other move came just before
 * (8 ms on a quiet machine here, up to about 100 ms loaded; see
 * docs/backends.md): the daemon's loop must not wait for that.  Jobs are
 * done in the order asked, so a receiver's move in and its move back
 * never cross.  Everything about a target stays with the caller's thread:
 * a job carries copies of the paths and a duplicate of the pidfd (a move
 * in is made only while the process is still the one).  By its sequence
 * number the caller knows whether a target's last move is done (then
 * /proc says where the receiver is) or still queued (then it will be
 * where in_leaf says).  Detach waits for the queue (bk_cgroup_settle); if
 * the thread or a job cannot be made, the move is made in place.
 *
 * A move back may linger (leaf_linger_ms, see leaf_same): it waits on a
 * list of its own until its time, without holding up the queue, and a
 * boost in the meantime cancels it (linger_cancel), so that the boost is a
 * weight write.  A linger the mover has started cannot be cancelled: the
 * receiver is then where the move back puts it, and a move in asked after
 * it is made after it.  A move in may wait on that list too (leaf_delay_ms,
 * see cgroup_boost), and the unboost cancels it the same way; the list is
 * kept in the order the moves are due.
 */
struct job {
	struct job *next;
	bool in;               /* into the leaf; else everything in it back */
	uint64_t linger_id;    /* a lingering move back: its id (0: an ordered job) */
	uint64_t not_before;   /* and when it is due (CLOCK_MONOTONIC, ns) */
	pid_t pid;
	int pidfd;
	enum backend_kind kind;
	char leaf[600], mount[256], orig[600];
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_more = PTHREAD_COND_INITIALIZER, jobs_idle = PTHREAD_COND_INITIALIZER;
static struct job *jobs_head, **jobs_tail = &jobs_head;
/* moves due later, in the order they are due: lingering moves back
 * (leaf_linger_ms) and delayed moves in (leaf_delay_ms) */
static struct job *lingers_head;
static uint64_t jobs_asked, jobs_done, lingers_asked, linger_running;
static bool mover_up;

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool job_alive(const struct job *j)
{
	struct backend_target probe;

	probe.pidfd = j->pidfd;
	return bk_target_alive(&probe);
}

static void job_run(const struct job *j)
{
	char now[600];
	int r;

	if (j->in) {
		/* only from where it was at the boost: moved since (a delayed
		 * move gives the administrator time to), it stays theirs */
		if (!job_alive(j) || cgroup_of(j->pid, j->kind, now, sizeof(now)) < 0)
			return;
		if (strcmp(now, j->orig))
			fprintf(stderr, "importanced: pid %d was moved to %s before its move into %s: kept there\n",
				(int)j->pid, now, j->leaf);
		else if ((r = move_to(j->leaf, j->pid)) < 0)
			fprintf(stderr, "importanced: pid %d: cannot move it into %s: %s\n", (int)j->pid, j->leaf,
				strerror(-r));
		return;
	}
	if (job_alive(j) && cgroup_of(j->pid, j->kind, now, sizeof(now)) == 0 && strcmp(now, j->leaf + strlen(j->mount)))
		fprintf(stderr, "importanced: pid %d was moved out of %s to %s during the boost: kept there at the "
			"unboost\n", (int)j->pid, j->leaf, now);
	leaf_move_back(j->leaf, j->mount, j->orig);
}

static void *mover(void *arg)
{
	(void)arg;
	/* an ordinary thread at nice 0, whatever the loop thread had when it
	 * made it (real time is reset on fork; rt.c may have had the loop at
	 * nice 19): never real time, which is the loop's alone and under its
	 * budget (rt.c), since emptying a leaf a receiver keeps forking into
	 * can take many moves */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 0);
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&jobs_lock);
		for (;;) {
			if ((j = jobs_head)) {
				if (!(jobs_head = j->next))
					jobs_tail = &jobs_head;
				break;
			}
			if ((j = lingers_head) && monotonic_ns() >= j->not_before) {
				lingers_head = j->next;
				linger_running = j->linger_id;
				break;
			}
			if (j) {
				struct timespec until = { (time_t)(j->not_before / 1000000000u),
							  (long)(j->not_before % 1000000000u) };

				pthread_cond_timedwait(&jobs_more, &jobs_lock, &until);
			} else
				pthread_cond_wait(&jobs_more, &jobs_lock);
		}
		pthread_mutex_unlock(&jobs_lock);
		job_run(j);
		close(j->pidfd);
		pthread_mutex_lock(&jobs_lock);
		if (j->linger_id)
			linger_running = 0;
		else
			jobs_done++;
		pthread_cond_broadcast(&jobs_idle);
		pthread_mutex_unlock(&jobs_lock);
		free(j);
	}
	return NULL;
}

/* Starts the mover with every signal blocked: the daemon's signals are
 * its loop's (signalfd), never the mover's. */
static int mover_start(void)
{
	sigset_t all, old;
	pthread_condattr_t clock;
	pthread_attr_t attr;
	pthread_t th;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_condattr_init(&clock);
	pthread_condattr_setclock(&clock, CLOCK_MONOTONIC);
	pthread_cond_destroy(&jobs_more);
	pthread_cond_init(&jobs_more, &clock);
	pthread_condattr_destroy(&clock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&th, &attr, mover, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

/* Asks the mover for a move; -errno when it cannot (then the caller moves).
 * With linger_ms, a move that waits that long (t->linger_id): a lingering
 * move back, or a delayed move in. */
static int job_ask_linger(struct backend_target *t, bool in, unsigned linger_ms)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->in = in;
	if (linger_ms)
		j->not_before = monotonic_ns() + (uint64_t)linger_ms * 1000000u;
	j->pid = t->pid;
	j->kind = t->kind;
	snprintf(j->leaf, sizeof(j->leaf), "%s", t->cgroup_leaf);
	snprintf(j->mount, sizeof(j->mount), "%s", t->cgroup_mount);
	snprintf(j->orig, sizeof(j->orig), "%s", t->cgroup_orig);
	if ((j->pidfd = fcntl(t->pidfd, F_DUPFD_CLOEXEC, 3)) < 0) {
		free(j);
		return -errno;
	}
	pthread_mutex_lock(&jobs_lock);
	if (!mover_up && mover_start() < 0) {
		pthread_mutex_unlock(&jobs_lock);
		close(j->pidfd);
		free(j);
		return -EAGAIN;
	}
	mover_up = true;
	if (linger_ms) {
		struct job **p = &lingers_head;

		t->linger_id = j->linger_id = ++lingers_asked;
		while (*p && (*p)->not_before <= j->not_before)
			p = &(*p)->next;
		j->next = *p;
		*p = j;
	} else {
		*jobs_tail = j;
		jobs_tail = &j->next;
		t->move_seq = ++jobs_asked;
	}
	pthread_cond_signal(&jobs_more);
	pthread_mutex_unlock(&jobs_lock);
	return 0;
}

static int job_ask(struct backend_target *t, bool in)
{
	return job_ask_linger(t, in, 0);
}

/* Takes t's lingering move back off the list: 1 if it had not begun (the
 * receiver is still in its leaf), 0 if it is done, -1 if the mover is
 * making it; with wait, that is waited for (then 0). */
static int linger_cancel(struct backend_target *t, bool wait)
{
	struct job **p, *j = NULL;
	bool running;

	if (!t->linger_id)
		return 0;
	pthread_mutex_lock(&jobs_lock);
	for (p = &lingers_head; *p; p = &(*p)->next)
		if ((*p)->linger_id == t->linger_id) {
			j = *p;
			*p = j->next;
			break;
		}
	while (!j && wait && linger_running == t->linger_id)
		pthread_cond_wait(&jobs_idle, &jobs_lock);
	running = !j && linger_running == t->linger_id;
	pthread_mutex_unlock(&jobs_lock);
	t->linger_id = 0;
	if (j) {
		close(j->pidfd);
		free(j);
	}
	return j ? 1 : running ? -1 : 0;
}

static bool move_pending(const struct backend_target *t)
{
	bool pending;

	if (!t->move_seq)
		return false;
	pthread_mutex_lock(&jobs_lock);
	pending = jobs_done < t->move_seq;
	pthread_mutex_unlock(&jobs_lock);
	return pending;
}

void bk_cgroup_settle(void)
{
	pthread_mutex_lock(&jobs_lock);
	while (jobs_done < jobs_asked)
		pthread_cond_wait(&jobs_idle, &jobs_lock);
	pthread_mutex_unlock(&jobs_lock);
}

/*
 * A boost.  Where the receiver is now is where it goes back to: the
 * administrator may have moved it since it connected.  Then, first that
 * applies:
 * - still in its leaf (it stayed there with a weight someone else set):
 *   the leaf is raised;
 * - in the cpu root and alone in its autogroup: that autogroup is what
 *   competes with the other sessions and top-level groups, so its nice is
 *   raised (exactly what a leaf would do, and nothing moves);
 * - under a limit on its cgroup or one above it (cgroup_limited), checked
 *   at every move, so a limit set after it connected is followed: boosted
 *   through nice, in place;
 * - in the cpu root sharing its autogroup (leaf_delay_ms, not in the
 *   background band): boosted through nice at once, and moved into its
 *   leaf only when the boost lasts leaf_delay_ms.  Its session's members
 *   compete with it inside the autogroup, where nice decides; a move into
 *   the leaf and back costs it its place there (the kernel keeps a
 *   sleeping task's lag in its group, and a task that comes back to the
 *   group starts without it: measured, a request of 30 us answered in
 *   300-500 us after each return, and every request boosted again), so
 *   only a boost long enough to be worth it pays that;
 * - else moved into its leaf, weighing the boosted weight.
 *
 * An unboost undoes what the boost did: the autogroup's nice or the
 * threads' nice put back, or everything in the leaf moved back to where
 * the receiver was, so that unboosted it is scheduled as it would be with
 * no importanced.  What someone else changed during the boost is theirs:
 * a leaf weight someone else wrote is kept and the receiver stays in the
 * leaf at that weight; a receiver someone moved out of its leaf stays
 * where they put it.  Each says so on stderr.
 */
static int cgroup_boost(const struct backend_config *cfg, struct backend_target *t, unsigned boosted,
			unsigned *value)
{
	char now[600], path[1024], why[1024];
	bool back = false;
	unsigned long w;
	int r;

	/* lingering in its leaf: a boost in time keeps it there, unless a
	 * limit was put on its own cgroup meanwhile (then it goes back and is
	 * boosted there, through nice) */
	if (t->linger_id && !t->leaf_later) {
		int kept = linger_cancel(t, false);

		if (kept == 1 && cgroup_limited(t, why, sizeof(why)) < 0) {
			if (job_ask(t, false) < 0)
				leaf_move_back(t->cgroup_leaf, t->cgroup_mount, t->cgroup_orig);
			kept = -1;
		}
		if (kept != 1) {
			/* back, or on its way (then where the move puts it) */
			update_root_weight(cfg, t->kind, -(long)t->weight_idle);
			back = kept < 0;
			t->in_leaf = false;
			t->weight_idle = 0;
			t->idle_same = false;
		}
	}
	if (back || move_pending(t)) /* where its last move will have put it */
		snprintf(now, sizeof(now), "%s", t->in_leaf ? leaf_rel(t) : t->cgroup_orig);
	else if ((r = cgroup_of(t->pid, t->kind, now, sizeof(now))) < 0)
		return r;
	if (t->in_leaf && t->cgroup_leaf[0] && !strcmp(now, leaf_rel(t))) {
		snprintf(path, sizeof(path), "%s/%s", t->cgroup_leaf, weight_file(t->kind));
		if (bk_read_ulong(path, &w) == 0 && w != t->weight_idle) {
			update_root_weight(cfg, t->kind, (long)w - (long)t->weight_idle);
			t->weight_idle = (unsigned)w; /* changed since: theirs */
			t->idle_same = false;
		}
		if ((r = bk_write_ulong(path, boosted)) < 0)
			return r;
		update_root_weight(cfg, t->kind, (long)boosted - (long)t->weight_idle);
		t->via = t->kind;
		*value = boosted;
		return 0;
	}
	t->in_leaf = false;
	t->weight_idle = 0;
	t->idle_same = false;
	snprintf(t->cgroup_orig, sizeof(t->cgroup_orig), "%s", now);
	if (t->autogroup_alone && !strcmp(now, "/")) {
		t->via = BACKEND_AUTOGROUP;
		r = bk_autogroup_set(cfg, t, true);
		*value = (unsigned)t->autogroup_boosted;
		return r;
	}
	if (cgroup_limited(t, why, sizeof(why)) < 0) {
		if (t->via != BACKEND_NICE)
			fprintf(stderr, "importanced: pid %d: %s: boosted through nice, not moved out of it\n",
				(int)t->pid, why);
		t->via = BACKEND_NICE;
		return 0;
	}
	if (!strcmp(now, "/") && cfg->leaf_delay_ms && !t->band_on && leaf_make(cfg, t, boosted) == 0) {
		if (job_ask_linger(t, true, cfg->leaf_delay_ms) == 0) {
			t->leaf_later = true;
			t->in_leaf = true; /* once the move is made; the unboost may cancel it */
			update_root_weight(cfg, t->kind, (long)boosted);
			t->via = BACKEND_NICE;
			return 0;
		}
	}
	if ((r = move_into_leaf(cfg, t, boosted)) < 0)
		return r;
	t->via = t->kind;
	*value = boosted;
	return 0;
}

/*
 * Whether the receiver, unboosted, may stay in its leaf because there it is
 * scheduled exactly as in its own cgroup: that cgroup is a sibling of the
 * leaf (a child of the root the leaves are in), nothing else is in it (no
 * process, no cgroup below it), and no limit is on it.  The leaf then
 * weighs what that cgroup weighs (*weight): the same group, in the same
 * place, with the same members, under another name.  Checked at every
 * unboost, so a process put in its cgroup or a weight written on it since
 * the last one sends it back.
 */
static bool leaf_same(const struct backend_config *cfg, const struct backend_target *t, unsigned long *weight)
{
	char dir[1024], path[1200], buf[64], why[256];
	const char *slash = strrchr(t->cgroup_orig, '/');
	struct dirent *de;
	bool alone = true;
	DIR *d;

	/* a root given to us weighs the sum of its leaves: not the same there */
	if (!cfg->leaf_linger_ms || !slash || !strcmp(t->cgroup_orig, "/") ||
	    (cfg->cgroup_root[0] && strcmp(cfg->cgroup_root, cfg->cgroup_mount)))
		return false;
	snprintf(dir, sizeof(dir), "%s%.*s", t->cgroup_mount, (int)(slash - t->cgroup_orig), t->cgroup_orig);
	if (strcmp(slash == t->cgroup_orig ? t->cgroup_mount : dir, root_of(cfg)))
		return false; /* not the leaves' sibling */
	snprintf(dir, sizeof(dir), "%s%s", t->cgroup_mount, t->cgroup_orig);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (bk_read_text(path, buf, sizeof(buf)) < 0 || buf[0])
		return false;
	if (!(d = opendir(dir)))
		return false;
	while (alone && (de = readdir(d)))
		alone = de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	snprintf(path, sizeof(path), "%s/%s", dir, weight_file(t->kind));
	return alone && cgroup_limited(t, why, sizeof(why)) == 0 && bk_read_ulong(path, weight) == 0;
}

/* The leaf's weight while the receiver is moved back out of it. */
static unsigned long transit_weight(const struct backend_target *t)
{
	unsigned long w, own;
	char path[1200];
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, (id_t)t->pid);
	if (nice == -1 && errno)
		nice = 0;
	w = (unsigned long)bk_nice_weight(nice);
	if (t->kind == BACKEND_CGROUP_V2)
		w = w * 100 / 1024 ? w * 100 / 1024 : 1;
	snprintf(path, sizeof(path), "%s%s/%s", t->cgroup_mount, t->cgroup_orig, weight_file(t->kind));
	if (strcmp(t->cgroup_orig, "/") && bk_read_ulong(path, &own) == 0 && own < w)
		w = own;
	return w;
}

static int cgroup_unboost(const struct backend_config *cfg, struct backend_target *t, unsigned boosted,
			  unsigned *value)
{
	char now[600], path[1200];
	unsigned long w;

	if (t->via == BACKEND_AUTOGROUP) {
		int r = bk_autogroup_set(cfg, t, false);

		*value = (unsigned)t->autogroup_orig;
		return r;
	}
	if (t->leaf_later) {
		/* boosted through nice (put back by the caller), its move in
		 * due later: taken back if it has not begun, so nothing moved;
		 * else it is in its leaf, or on its way, and comes back */
		t->leaf_later = false;
		if (linger_cancel(t, false) == 1) {
			update_root_weight(cfg, t->kind, -(long)boosted);
			t->in_leaf = false;
			return 0;
		}
	} else if (t->via == BACKEND_NICE)
		return 0;
	if (!t->in_leaf || !t->cgroup_leaf[0])
		return 0;
	snprintf(path, sizeof(path), "%s/%s", t->cgroup_leaf, weight_file(t->kind));
	if (bk_read_ulong(path, &w) == 0 && w != boosted) {
		fprintf(stderr, "importanced: pid %d: %s of %s set to %lu by someone else during the boost: kept at the "
			"unboost, the receiver stays there\n", (int)t->pid, weight_file(t->kind), t->cgroup_leaf, w);
		update_root_weight(cfg, t->kind, (long)w - (long)boosted);
		t->weight_idle = (unsigned)w;
		*value = (unsigned)w;
		return 0;
	}
	if (t->idle_same) { /* decided again at each unboost */
		t->weight_idle = 0;
		t->idle_same = false;
	}
	if (!t->weight_idle && t->band_on && !t->band_autogroup) {
		/* in the background band (opt-in) it stays in its leaf, at the
		 * band's weight: later boosts are a write, never a move */
		int bw = bk_nice_weight(t->band_nice) * (t->kind == BACKEND_CGROUP_V2 ? 100 : 1024) / 1024;

		t->weight_idle = (unsigned)(bw < 2 ? 2 : bw);
	}
	if (!t->weight_idle && leaf_same(cfg, t, &w)) {
		/* the same as back, for a while: a boost within it is a write */
		if (bk_write_ulong(path, w) == 0 && job_ask_linger(t, false, cfg->leaf_linger_ms) == 0) {
			update_root_weight(cfg, t->kind, (long)w - (long)boosted);
			t->weight_idle = (unsigned)w;
			t->idle_same = true;
			*value = (unsigned)w;
			return 0;
		}
	}
	if (t->weight_idle) {
		*value = t->weight_idle;
		update_root_weight(cfg, t->kind, (long)t->weight_idle - (long)boosted);
		return bk_write_ulong(path, t->weight_idle);
	}
	/* on its way back the leaf lifts it no more: until the move is done
	 * (an RCU grace period, up to about 100 ms loaded) it weighs what its
	 * nice weighs, at most what its own cgroup weighs */
	bk_write_ulong(path, transit_weight(t));
	if (job_ask(t, false) < 0) {
		if (cgroup_of(t->pid, t->kind, now, sizeof(now)) == 0 && strcmp(now, leaf_rel(t)))
			fprintf(stderr, "importanced: pid %d was moved out of %s to %s during the boost: kept there at "
				"the unboost\n", (int)t->pid, t->cgroup_leaf, now);
		leaf_move_back(t->cgroup_leaf, t->cgroup_mount, t->cgroup_orig);
	}
	update_root_weight(cfg, t->kind, -(long)boosted);
	t->in_leaf = false;
	snprintf(path, sizeof(path), "%s%s/%s", t->cgroup_mount, strcmp(t->cgroup_orig, "/") ? t->cgroup_orig : "",
		 weight_file(t->kind));
	*value = bk_read_ulong(path, &w) == 0 ? (unsigned)w : 0;
	return 0;
}

int bk_cgroup_set(const struct backend_config *cfg, struct backend_target *t, bool boost, unsigned *value)
{
	unsigned boosted = t->kind == BACKEND_CGROUP_V2 ? cfg->boost_weight : cfg->boost_shares;

	return boost ? cgroup_boost(cfg, t, boosted, value) : cgroup_unboost(cfg, t, boosted, value);
}

/* The receiver left (or a record is cleaned up): everything in the leaf
 * goes back, and the leaf is removed. */
void bk_cgroup_detach(const struct backend_config *cfg, struct backend_target *t)
{
	int rounds;

	if (!t->cgroup_leaf[0])
		return;
	linger_cancel(t, true);
	bk_cgroup_settle();
	if (t->in_leaf)
		update_root_weight(cfg, t->kind, -(long)(t->boosted ?
			(t->kind == BACKEND_CGROUP_V2 ? cfg->boost_weight : cfg->boost_shares) : t->weight_idle));
	rounds = leaf_move_back(t->cgroup_leaf, t->cgroup_mount, t->cgroup_orig);
	if (rmdir(t->cgroup_leaf) < 0 && errno != ENOENT)
		fprintf(stderr, "importanced: %s: %s (after %d rounds of moving its processes back)\n", t->cgroup_leaf,
			strerror(errno), rounds);
	t->cgroup_leaf[0] = '\0';
	t->in_leaf = false;
	t->leaf_later = false;
}

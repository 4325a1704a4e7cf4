/*
 * The boost backend: configuration, choosing a backend, and applying a
 * boost through it; the backends themselves are in backend-cgroup.c and
 * backend-proc.c.
 *
 * A process under the backend has one CPU backend (cgroup v2 or v1, its
 * autogroup, or the nice values of its threads) and, whatever that is, the
 * I/O priority and timer slack lifts.  Every attach, boost, unboost leaves
 * a record of what is applied in the state directory (one file per
 * process, named by pid and start time, written whole and renamed into
 * place); detach removes it.  A daemon starting up reads the records a
 * previous one left and puts back what they say, for each process that is
 * still the same one (same pid and start time).  The state directory is
 * locked by the daemon that uses it; a second daemon on the same directory
 * records nothing rather than undoing the first one's boosts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend-internal.h"

static const char *const kind_names[] = {
	[BACKEND_NONE] = "none",           [BACKEND_NICE] = "nice",
	[BACKEND_AUTOGROUP] = "autogroup", [BACKEND_CGROUP_V1] = "cgroup-v1",
	[BACKEND_CGROUP_V2] = "cgroup-v2", [BACKEND_CGROUP] = "cgroup",
	[BACKEND_AUTO] = "auto",
};

const char *backend_name(enum backend_kind kind)
{
	return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

int backend_kind_parse(const char *name, enum backend_kind *out)
{
	for (unsigned k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++)
		if (!strcmp(name, kind_names[k])) {
			*out = (enum backend_kind)k;
			return 0;
		}
	return -EINVAL;
}

void backend_config_defaults(struct backend_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kind = cfg->asked = BACKEND_AUTO;
	cfg->boost_nice = -10;
	cfg->autogroup_nice = -10;
	cfg->boost_weight = 1000;
	cfg->boost_shares = 10240;
	cfg->boost_io_level = 4;
	cfg->boost_timerslack_ns = 50000;
	cfg->max_threads = 256;
	cfg->leaf_linger_ms = 1000;
	cfg->leaf_delay_ms = 5;
	cfg->background_nice = 10;
	cfg->daemon_rt_priority = 1;
	cfg->daemon_rt_budget_us = 3000;
	cfg->daemon_rt_window_us = 100000;
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/run/importanced");
	cfg->state_lock_fd = -1;
	cfg->state_dir_fd = -1;
}

int backend_config_check(const struct backend_config *cfg, char *err, size_t size)
{
#define RANGE(v, lo, hi, key)                                                                     \
	if ((long long)(v) < (long long)(lo) || (long long)(v) > (long long)(hi)) {               \
		snprintf(err, size, "%s %lld is out of range %lld..%lld", key, (long long)(v),    \
			 (long long)(lo), (long long)(hi));                                        \
		return -EINVAL;                                                                   \
	}
	RANGE(cfg->kind, BACKEND_NONE, BACKEND_AUTO, "policy");
	RANGE(cfg->boost_nice, -20, 19, "boost-nice");
	RANGE(cfg->autogroup_nice, -20, 19, "autogroup-nice");
	RANGE(cfg->boost_weight, 1, 10000, "boost-weight");
	RANGE(cfg->boost_shares, 2, 262144, "boost-shares");
	RANGE(cfg->boost_io_level, -1, 7, "boost-io-level");
	RANGE(cfg->boost_timerslack_ns, 0, 1000000000, "boost-timerslack-ns");
	RANGE(cfg->max_threads, 1, 65536, "boost-max-threads");
	RANGE(cfg->leaf_linger_ms, 0, 10000, "cgroup-leaf-linger-ms");
	RANGE(cfg->leaf_delay_ms, 0, 10000, "cgroup-leaf-delay-ms");
	RANGE(cfg->background_nice, 1, 19, "receiver-background-nice");
	RANGE(cfg->daemon_rt_priority, 0, 99, "daemon-rt-priority");
	RANGE(cfg->daemon_rt_budget_us, 1000, 10000000, "daemon-rt-budget-us");
	RANGE(cfg->daemon_rt_window_us, 10000, 10000000, "daemon-rt-window-us");
	if (cfg->daemon_rt_budget_us > cfg->daemon_rt_window_us) {
		snprintf(err, size, "daemon-rt-budget-us %lu is more than daemon-rt-window-us %lu",
			 cfg->daemon_rt_budget_us, cfg->daemon_rt_window_us);
		return -EINVAL;
	}
#undef RANGE
	if (cfg->cgroup_root[0] && cfg->cgroup_root[0] != '/') {
		snprintf(err, size, "cgroup-root %s is not an absolute path", cfg->cgroup_root);
		return -EINVAL;
	}
	if (cfg->state_dir[0] && cfg->state_dir[0] != '/') {
		snprintf(err, size, "state-dir %s is not an absolute path", cfg->state_dir);
		return -EINVAL;
	}
	return 0;
}

int bk_read_at(int dfd, const char *path, char *buf, size_t size)
{
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
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

int bk_write_at(int dfd, const char *path, const char *text)
{
	int fd = openat(dfd, path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	e = errno;
	close(fd);
	return n < 0 ? -e : 0;
}

int bk_read_text(const char *path, char *buf, size_t size)
{
	return bk_read_at(AT_FDCWD, path, buf, size);
}

int bk_write_text(const char *path, const char *text)
{
	return bk_write_at(AT_FDCWD, path, text);
}

int bk_read_ulong(const char *path, unsigned long *out)
{
	char buf[64];
	int r = bk_read_text(path, buf, sizeof(buf));

	if (r == 0)
		*out = strtoul(buf, NULL, 10);
	return r;
}

int bk_write_ulong(const char *path, unsigned long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu", value);
	return bk_write_text(path, buf);
}

static bool is_cgroup(enum backend_kind k)
{
	return k == BACKEND_CGROUP_V1 || k == BACKEND_CGROUP_V2;
}

/* Fills cfg->why_not[k] for every kind that cannot work; 0 if k can. */
static int probe(struct backend_config *cfg, enum backend_kind k)
{
	char *why = cfg->why_not[k];
	size_t size = sizeof(cfg->why_not[k]);
	struct backend_config copy;

	why[0] = '\0';
	switch (k) {
	case BACKEND_CGROUP_V1:
	case BACKEND_CGROUP_V2:
		/* the probe fills in the mount; only the chosen one's is kept */
		copy = *cfg;
		return bk_cgroup_probe(&copy, k, why, size);
	case BACKEND_AUTOGROUP:
		return bk_autogroup_probe(why, size);
	default:
		return 0;
	}
}

/*
 * The state directory is opened once, without following a link, and
 * everything in it is reached through that handle (openat, unlinkat,
 * O_NOFOLLOW), so that nothing another uid places there is followed.  A
 * directory that exists but is not importanced's uid's alone (another
 * owner, group or others may write) is refused: whoever can write there
 * could have a record replaced by a link to a file importanced then
 * overwrites, or forge a record a restarted daemon acts on.  One that
 * cannot be made or opened (a read-only /run, say) only turns records off.
 */
static void records_off(struct backend_config *cfg, const char *what)
{
	fprintf(stderr, "importanced: state directory %s: %s: boosts are not recorded\n", cfg->state_dir, what);
	if (cfg->state_dir_fd >= 0)
		close(cfg->state_dir_fd);
	cfg->state_dir_fd = -1;
	cfg->state_dir[0] = '\0';
}

static int open_state_dir(struct backend_config *cfg, char *why, size_t size)
{
	struct stat st;
	int fd;

	cfg->state_lock_fd = -1;
	cfg->state_dir_fd = -1;
	if (!cfg->state_dir[0])
		return 0;
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		records_off(cfg, strerror(errno));
		return 0;
	}
	cfg->state_dir_fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfg->state_dir_fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR) {
			bool link = errno == ELOOP || (lstat(cfg->state_dir, &st) == 0 && S_ISLNK(st.st_mode));

			snprintf(why, size, "state-dir %s is %s, not a directory: refused", cfg->state_dir,
				 link ? "a symbolic link" : "a file");
			return -EPERM;
		}
		records_off(cfg, strerror(errno));
		return 0;
	}
	if (fstat(cfg->state_dir_fd, &st) < 0) {
		records_off(cfg, strerror(errno));
		return 0;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(why, size,
			 "state-dir %s is %s (owner uid %u, mode %03o): refused, it must be owned by uid %u and "
			 "writable by nobody else",
			 cfg->state_dir, st.st_uid != geteuid() ? "owned by another uid" : "writable by others",
			 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		close(cfg->state_dir_fd);
		cfg->state_dir_fd = -1;
		return -EPERM;
	}
	if ((fd = openat(cfg->state_dir_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		records_off(cfg, strerror(errno));
		return 0;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		records_off(cfg, "in use by another importanced");
		return 0;
	}
	cfg->state_lock_fd = fd;
	return 0;
}

int backend_init(struct backend_config *cfg, char *why, size_t why_size)
{
	static const enum backend_kind order[] = { BACKEND_CGROUP_V2, BACKEND_CGROUP_V1, BACKEND_AUTOGROUP,
						   BACKEND_NICE };
	enum backend_kind chosen = BACKEND_NONE;
	unsigned n;
	int r;

	why[0] = '\0';
	if ((r = backend_config_check(cfg, why, why_size)) < 0)
		return r;
	cfg->asked = cfg->kind;
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum backend_kind k = order[i];
		bool wanted = cfg->asked == BACKEND_AUTO || cfg->asked == k ||
			      (cfg->asked == BACKEND_CGROUP && is_cgroup(k));

		if (probe(cfg, k) < 0 || chosen != BACKEND_NONE || !wanted)
			continue;
		chosen = k;
	}
	if (cfg->asked == BACKEND_NONE)
		chosen = BACKEND_NONE;
	else if (chosen == BACKEND_NONE) {
		enum backend_kind k = cfg->asked == BACKEND_CGROUP ? BACKEND_CGROUP_V2 : cfg->asked;

		snprintf(why, why_size, "policy %s cannot work here: %s%s%s", backend_name(cfg->asked),
			 cfg->why_not[k], cfg->asked == BACKEND_CGROUP ? "; " : "",
			 cfg->asked == BACKEND_CGROUP ? cfg->why_not[BACKEND_CGROUP_V1] : "");
		return -ENOTSUP;
	}
	if (is_cgroup(chosen) && (r = bk_cgroup_probe(cfg, chosen, why, why_size)) < 0)
		return r;
	cfg->kind = chosen;
	for (unsigned k = BACKEND_NONE; k < BACKEND_N_REAL; k++) {
		if (k == chosen || cfg->why_not[k][0])
			continue;
		if (k == BACKEND_NONE)
			snprintf(cfg->why_not[k], sizeof(cfg->why_not[k]), "boosts are wanted");
		else if (cfg->asked != BACKEND_AUTO)
			snprintf(cfg->why_not[k], sizeof(cfg->why_not[k]), "works here, not asked for (--backend %s)",
				 backend_name(cfg->asked));
		else
			snprintf(cfg->why_not[k], sizeof(cfg->why_not[k]), "works here, but %s comes first",
				 backend_name(chosen));
	}
	if ((r = open_state_dir(cfg, why, why_size)) < 0)
		return r;
	if (chosen != BACKEND_NONE) {
		static bool said;
		char fork_why[160];

		if (bk_fork_open(fork_why, sizeof(fork_why)) < 0 && !said) {
			said = true;
			fprintf(stderr, "importanced: forks during a boost are not followed (%s): a process forked while "
				"its parent was boosted is put back at the unboost only while it is still that parent's child\n",
				fork_why);
		}
	}
	backend_restore_recorded(cfg);
	if (is_cgroup(chosen) && (n = bk_cgroup_sweep(cfg)) > 0)
		fprintf(stderr, "importanced: removed %u empty leaves of receivers that are gone\n", n);
	return 0;
}

/* Appends to buf (of size, *len used so far), cutting at the end. */
static void __attribute__((format(printf, 4, 5))) append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len + 1 >= size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

int backend_describe(const struct backend_config *cfg, char *buf, size_t size)
{
	bool io = cfg->boost_io_level >= 0, slack = cfg->boost_timerslack_ns > 0;
	size_t len = 0;

	if (!size)
		return -EINVAL;
	buf[0] = '\0';
	append(buf, size, &len, "backend %s (asked: %s)\n", backend_name(cfg->kind), backend_name(cfg->asked));
	if (is_cgroup(cfg->kind))
		append(buf, size, &len, "  cgroups under %s\n", cfg->cgroup_root[0] ? cfg->cgroup_root : cfg->cgroup_mount);
	for (int k = BACKEND_CGROUP_V2; k >= BACKEND_NONE; k--)
		if (k != (int)cfg->kind)
			append(buf, size, &len, "  not %s: %s\n", backend_name((enum backend_kind)k), cfg->why_not[k]);
	if (cfg->kind != BACKEND_NONE)
		append(buf, size, &len, "  also lifted: %s%s%s\n", io ? "io priority" : "", io && slack ? ", " : "",
		       slack ? "timer slack" : io ? "" : "nothing");
	if (cfg->kind != BACKEND_NONE) {
		char fork_why[160];

		if (bk_fork_open(fork_why, sizeof(fork_why)) == 0)
			append(buf, size, &len, "  processes forked during a boost: followed (BPF), put back at the unboost\n");
		else
			append(buf, size, &len, "  processes forked during a boost: followed only while children (%s)\n",
			       fork_why);
	}
	if (cfg->kind != BACKEND_NONE && cfg->background)
		append(buf, size, &len, "  unboosted receivers in the background band: nice %d (receiver-background)\n",
		       cfg->background_nice);
	else if (cfg->kind != BACKEND_NONE && cfg->background_ruled)
		append(buf, size, &len, "  unboosted receivers matching a receiver-background-* rule in the background band: "
		       "nice %d\n", cfg->background_nice);
	return (int)len;
}

void backend_attach(const struct backend_config *cfg, struct backend_target *t)
{
	char why[200] = "";
	int r = 0;

	t->kind = cfg->kind;
	t->record_fd = -1;
	t->attached = false;
	t->boosted = false;
	t->forks_followed = false;
	t->cgroup_leaf[0] = '\0';
	t->in_leaf = false;
	t->leaf_later = false;
	t->via = t->kind;
	t->band_on = false;
	t->band = NULL;
	t->n_band = t->cap_band = 0;
	if (t->kind == BACKEND_NONE)
		return;
	if ((r = bk_verify_target(t)) < 0) {
		/* nothing is touched that could not be verified */
		fprintf(stderr, "importanced: pid %d cannot be verified through its pidfd (%s): it will not be boosted\n",
			(int)t->pid, strerror(-r));
		t->kind = BACKEND_NONE;
		return;
	}
	if (is_cgroup(t->kind) && (r = bk_cgroup_attach(cfg, t, why, sizeof(why))) < 0 && r != -EPERM)
		snprintf(why, sizeof(why), "pid %d cannot be under the cgroup backend: %s", (int)t->pid, strerror(-r));
	if (t->kind == BACKEND_AUTOGROUP)
		r = bk_autogroup_attach(cfg, t, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "importanced: %s; boosting it through nice\n", why);
		t->kind = t->via = BACKEND_NICE;
	}
	if ((r = bk_band_enter(cfg, t)) < 0)
		fprintf(stderr, "importanced: pid %d: cannot enter the background band: %s\n", (int)t->pid, strerror(-r));
	t->attached = true;
	bk_record(cfg, t);
}

/* The CPU part of a boost or unboost: a cgroup kind's (which decides at
 * each boost how it goes: t->via) or the autogroup's; nice is the
 * threads' (bk_threads_*). */
static int cpu_set(const struct backend_config *cfg, struct backend_target *t, bool boost, unsigned *value)
{
	if (is_cgroup(t->kind))
		return bk_cgroup_set(cfg, t, boost, value);
	if (t->kind == BACKEND_AUTOGROUP)
		return bk_autogroup_set(cfg, t, boost);
	return 0;
}

int backend_apply(const struct backend_config *cfg, struct backend_target *t, bool boost, unsigned *value)
{
	bool nice;
	int r = 0, c, e;

	*value = 0;
	if (t->kind == BACKEND_NONE || !t->attached || boost == t->boosted)
		return 0;
	if (!bk_target_alive(t))
		return -ESRCH;
	/* A boost sets the CPU first: that is what the waiting donor needs
	 * soonest.  An unboost puts the threads' nice back first: a receiver
	 * boosted through nice and moved into its leaf later (leaf_delay_ms)
	 * leaves the leaf at the weight of its own nice.  The CPU part's
	 * error is the one returned, either way. */
	if (boost) {
		r = cpu_set(cfg, t, true, value);
		nice = (is_cgroup(t->kind) ? t->via : t->kind) == BACKEND_NICE;
		e = bk_threads_boost(cfg, t, nice);
		if (e < 0 && !r)
			r = e;
		e = bk_slack_boost(cfg, t);
	} else {
		nice = (is_cgroup(t->kind) ? t->via : t->kind) == BACKEND_NICE;
		r = bk_threads_restore(cfg, t, nice);
		if ((c = cpu_set(cfg, t, false, value)) < 0)
			r = c;
		e = bk_slack_restore(cfg, t);
	}
	if (e < 0 && e != -ENOENT && !r)
		r = e;
	t->boosted = boost;
	if (nice) {
		errno = 0;
		*value = (unsigned)getpriority(PRIO_PROCESS, (id_t)t->pid);
	} else if (t->kind == BACKEND_AUTOGROUP)
		*value = (unsigned)(boost ? t->autogroup_boosted : t->autogroup_orig);
	bk_record(cfg, t);
	return r;
}

void backend_settle(void)
{
	bk_cgroup_settle();
}

static void restore_target(const struct backend_config *cfg, struct backend_target *t, bool alive)
{
	unsigned value;

	if (t->boosted && alive)
		backend_apply(cfg, t, false, &value);
	bk_band_leave(cfg, t); /* frees it whether or not alive */
	if (is_cgroup(t->kind))
		bk_cgroup_detach(cfg, t);
}

void backend_detach(const struct backend_config *cfg, struct backend_target *t)
{
	if (t->attached) {
		bool alive = bk_target_alive(t);

		/* gone while boosted: what it forked during the boost may live on */
		if (t->boosted && !alive)
			bk_threads_orphans(cfg, t, t->via == BACKEND_NICE);
		restore_target(cfg, t, alive);
		bk_record_remove(cfg, t);
	}
	free(t->saved);
	t->saved = NULL;
	t->n_saved = t->cap_saved = 0;
	t->boosted = t->attached = false;
}

/* ------------------------------------------------------------------ */
/* records                                                              */
/* ------------------------------------------------------------------ */

static bool recording(const struct backend_config *cfg)
{
	return cfg->state_dir[0] && cfg->state_dir_fd >= 0;
}

/* A record's name in the state directory. */
static void record_name(pid_t pid, uint64_t start, char *out, size_t size)
{
	snprintf(out, size, "%d-%llu", (int)pid, (unsigned long long)start);
}

/*
 * The record is rewritten in place with one pwrite() on a file kept open
 * (no open, rename or fsync on the boost path), ends with an "end" line,
 * and the file is then cut to its length.  A daemon killed between the
 * two leaves a longer file whose tail after "end" is ignored.  Whatever a
 * record says, a restore touches only threads and processes it verifies
 * again (pid + start time, thread group).
 */
void bk_record(const struct backend_config *cfg, struct backend_target *t)
{
	char path[320], *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!recording(cfg))
		return;
	if (t->record_fd < 0) {
		record_name(t->pid, t->start, path, sizeof(path));
		t->record_fd = openat(cfg->state_dir_fd, path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (t->record_fd < 0)
			return;
	}
	if (!(f = open_memstream(&buf, &len)))
		return;
	fprintf(f, "pid %d\nstart %llu\nkind %s\nboosted %d\nboost_start %llu\n", (int)t->pid,
		(unsigned long long)t->start, backend_name(t->kind), t->boosted,
		(unsigned long long)t->boost_start);
	fprintf(f, "floor_nice %d\nfloor_ioprio %d\nnice_boosted %d\nioprio_boosted %d\n", t->floor_nice,
		t->floor_ioprio, t->nice_boosted, t->ioprio_boosted);
	fprintf(f, "slack %lu %lu\nautogroup %d %d\nweight_idle %u\nvia %s\nin_leaf %d\n", t->slack_orig,
		t->slack_boosted, t->autogroup_orig, t->autogroup_boosted, t->weight_idle, backend_name(t->via),
		t->in_leaf);
	if (t->cgroup_leaf[0])
		fprintf(f, "leaf %s\norig %s\nmount %s\n", t->cgroup_leaf, t->cgroup_orig, t->cgroup_mount);
	if (t->band_on)
		fprintf(f, "band %d %d %d %d %llu\n", t->band_autogroup, t->band_nice, t->band_autogroup_from,
			t->band_floor, (unsigned long long)t->band_start);
	for (size_t i = 0; i < t->n_band; i++)
		fprintf(f, "band_thread %d %llu %d\n", (int)t->band[i].tid, (unsigned long long)t->band[i].start,
			t->band[i].nice);
	for (size_t i = 0; i < t->n_saved; i++)
		fprintf(f, "thread %d %llu %d %d %d %d\n", (int)t->saved[i].tid,
			(unsigned long long)t->saved[i].start, t->saved[i].nice, t->saved[i].ioprio,
			t->saved[i].nice_changed, t->saved[i].ioprio_changed);
	fputs("end\n", f);
	if (fclose(f) == 0 && pwrite(t->record_fd, buf, len, 0) == (ssize_t)len)
		(void)!ftruncate(t->record_fd, (off_t)len);
	free(buf);
}

void bk_record_remove(const struct backend_config *cfg, struct backend_target *t)
{
	char path[320];

	if (t->record_fd >= 0)
		close(t->record_fd);
	t->record_fd = -1;
	if (!recording(cfg))
		return;
	record_name(t->pid, t->start, path, sizeof(path));
	unlinkat(cfg->state_dir_fd, path, 0);
}

/* A path from a record; one too long for the field is left empty. */
static void copy_path(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = 0;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Reads a record: a regular file of ours, never through a link. */
static int record_load(int dfd, const char *name, struct backend_target *t)
{
	char line[1200], kind[32] = "";
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	unsigned long long a;
	int n1, n2, n3, n4, n5;
	unsigned long u1, u2;
	struct stat st;
	FILE *f;

	memset(t, 0, sizeof(*t));
	t->pidfd = -1;
	t->record_fd = -1;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || !(f = fdopen(fd, "r"))) {
		close(fd);
		return -EPERM;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "end"))
			break;
		if (sscanf(line, "pid %d", &n1) == 1)
			t->pid = n1;
		else if (sscanf(line, "start %llu", &a) == 1)
			t->start = a;
		else if (sscanf(line, "kind %31s", kind) == 1)
			backend_kind_parse(kind, &t->kind);
		else if (sscanf(line, "via %31s", kind) == 1)
			backend_kind_parse(kind, &t->via);
		else if (sscanf(line, "in_leaf %d", &n1) == 1)
			t->in_leaf = n1;
		else if (sscanf(line, "boosted %d", &n1) == 1)
			t->boosted = n1;
		else if (sscanf(line, "boost_start %llu", &a) == 1)
			t->boost_start = a;
		else if (sscanf(line, "floor_nice %d", &n1) == 1)
			t->floor_nice = n1;
		else if (sscanf(line, "floor_ioprio %d", &n1) == 1)
			t->floor_ioprio = n1;
		else if (sscanf(line, "nice_boosted %d", &n1) == 1)
			t->nice_boosted = n1;
		else if (sscanf(line, "ioprio_boosted %d", &n1) == 1)
			t->ioprio_boosted = n1;
		else if (sscanf(line, "slack %lu %lu", &u1, &u2) == 2) {
			t->slack_orig = u1;
			t->slack_boosted = u2;
		} else if (sscanf(line, "autogroup %d %d", &n1, &n2) == 2) {
			t->autogroup_orig = n1;
			t->autogroup_boosted = n2;
		} else if (sscanf(line, "weight_idle %lu", &u1) == 1)
			t->weight_idle = (unsigned)u1;
		else if (!strncmp(line, "leaf ", 5))
			copy_path(t->cgroup_leaf, sizeof(t->cgroup_leaf), line + 5);
		else if (!strncmp(line, "orig ", 5))
			copy_path(t->cgroup_orig, sizeof(t->cgroup_orig), line + 5);
		else if (!strncmp(line, "mount ", 6))
			copy_path(t->cgroup_mount, sizeof(t->cgroup_mount), line + 6);
		else if (sscanf(line, "band %d %d %d %d %llu", &n1, &n2, &n3, &n4, &a) == 5) {
			t->band_on = true;
			t->band_autogroup = n1;
			t->band_nice = n2;
			t->band_autogroup_from = n3;
			t->band_floor = n4;
			t->band_start = a;
		} else if (sscanf(line, "band_thread %d %llu %d", &n1, &a, &n2) == 3) {
			struct backend_saved_thread s = { .tid = n1, .start = a, .nice = n2, .nice_changed = true };

			if (bk_saved_push(&t->band, &t->n_band, &t->cap_band, &s) < 0)
				break;
		} else if (sscanf(line, "thread %d %llu %d %d %d %d", &n1, &a, &n2, &n3, &n4, &n5) == 6) {
			struct backend_saved_thread s = { n1, a, n2, n3, n4, n5 };

			if (bk_saved_push(&t->saved, &t->n_saved, &t->cap_saved, &s) < 0)
				break;
		}
	}
	fclose(f);
	t->attached = true;
	return t->pid > 0 ? 0 : -EINVAL;
}

int backend_restore_recorded(const struct backend_config *cfg)
{
	DIR *dir;
	struct dirent *de;
	int n = 0;

	int dfd;

	if (!recording(cfg) || (dfd = fcntl(cfg->state_dir_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return 0;
	if (!(dir = fdopendir(dfd))) {
		close(dfd);
		return 0;
	}
	rewinddir(dir);
	while ((de = readdir(dir))) {
		struct backend_target t;
		struct backend_config rc = *cfg;
		uint64_t start;
		bool alive;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		if (record_load(cfg->state_dir_fd, de->d_name, &t) < 0) {
			free(t.saved);
			free(t.band);
			unlinkat(cfg->state_dir_fd, de->d_name, 0);
			continue;
		}
		/* the same process: its pid now, with the start time recorded */
		t.pidfd = (int)syscall(SYS_pidfd_open, t.pid, 0);
		alive = t.pidfd >= 0 && bk_start_time(t.pid, t.pid, &start) == 0 && start == t.start &&
			bk_target_alive(&t);
		rc.kind = t.kind;
		rc.state_dir[0] = '\0'; /* the restore itself is not recorded */
		rc.cgroup_root[0] = '\0'; /* nor counted in the root's weight */
		if (t.cgroup_mount[0])
			snprintf(rc.cgroup_mount, sizeof(rc.cgroup_mount), "%s", t.cgroup_mount);
		restore_target(&rc, &t, alive);
		if (t.pidfd >= 0)
			close(t.pidfd);
		free(t.saved);
		unlinkat(cfg->state_dir_fd, de->d_name, 0);
		fprintf(stderr, "importanced: %s pid %d recorded by a previous daemon (%s)\n",
			alive ? "restored" : "cleaned up after", (int)t.pid, backend_name(t.kind));
		n++;
	}
	closedir(dir);
	bk_cgroup_forget_weights();
	return n;
}

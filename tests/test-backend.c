/*
 * Unit tests of the boost backend module (daemon/backend*.c) against real
 * processes and real cgroups, without a daemon: configuration ranges,
 * choosing a backend, the nice backend's restore rules (threads and
 * children started while boosted, a process that renices itself while
 * boosted, the per-boost thread bound), the cgroup v1 leaf, and restoring
 * from the records a crashed daemon left.
 *
 * The boosted process ("puppet") is a forked child that obeys one-byte
 * commands on a pipe and answers with a pid (or 0).
 */
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend-internal.h"
#include "backend.h"

struct puppet {
	pid_t pid;
	int cmd, answer;
};

static void *parked(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static pid_t gettid_now(void)
{
	return (pid_t)syscall(SYS_gettid);
}

struct spawned {
	pid_t tid;
	int ready[2];
};

static void *parked_report(void *arg)
{
	struct spawned *s = arg;

	s->tid = gettid_now();
	if (write(s->ready[1], "x", 1) < 0)
		return NULL;
	pause();
	return NULL;
}

/*
 * Commands: 't' start a thread (answer: its tid), 'f' fork a child that
 * parks (answer: its pid), 'r' set the main thread's nice to the next
 * byte minus 20 (answer: 0), 's' start a session of its own (answer: 0),
 * 'c' drop CAP_SYS_NICE, as an unprivileged receiver has not (answer: 0),
 * 'd' double-fork: a child that forks a grandchild and exits, so the
 * grandchild goes to init (answer: the grandchild's pid; it parks for a
 * minute at most).
 */
static void puppet_main(int cmd, int answer, int nice, int threads)
{
	pthread_attr_t small;
	char op;

	setpriority(PRIO_PROCESS, 0, nice);
	pthread_attr_init(&small);
	pthread_attr_setstacksize(&small, 64 << 10);
	for (int i = 0; i < threads; i++) {
		pthread_t th;

		if (pthread_create(&th, &small, parked, NULL) != 0)
			_exit(2);
	}
	while (read(cmd, &op, 1) == 1) {
		pid_t out = 0;
		pthread_t th;
		struct spawned s;
		char v;

		if (op == 't') {
			if (pipe(s.ready) < 0)
				_exit(1);
			pthread_create(&th, NULL, parked_report, &s);
			if (read(s.ready[0], &v, 1) != 1)
				_exit(1);
			out = s.tid;
		} else if (op == 'f') {
			out = fork();
			if (out == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				pause();
				_exit(0);
			}
		} else if (op == 'd') {
			int link[2];
			pid_t child;

			if (pipe(link) < 0)
				_exit(1);
			if ((child = fork()) == 0) {
				pid_t g = fork();

				if (g == 0) {
					alarm(60);
					pause();
					_exit(0);
				}
				if (write(link[1], &g, sizeof(g)) != sizeof(g))
					_exit(1);
				_exit(0);
			}
			if (read(link[0], &out, sizeof(out)) != sizeof(out))
				_exit(1);
			waitpid(child, NULL, 0);
			close(link[0]);
			close(link[1]);
		} else if (op == 's') {
			setsid();
		} else if (op == 'c') {
			struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
			struct __user_cap_data_struct d[2];

			if (syscall(SYS_capget, &h, d) < 0)
				_exit(1);
			d[0].effective &= ~(1u << CAP_SYS_NICE);
			d[0].permitted &= ~(1u << CAP_SYS_NICE);
			if (syscall(SYS_capset, &h, d) < 0)
				_exit(1);
		} else if (op == 'r') {
			if (read(cmd, &v, 1) != 1)
				_exit(1);
			setpriority(PRIO_PROCESS, 0, v - 20);
		}
		if (write(answer, &out, sizeof(out)) != sizeof(out))
			_exit(1);
	}
	_exit(0);
}

static pid_t puppet_do(struct puppet *p, char op, int arg);

static struct puppet puppet_start(int nice, int threads)
{
	struct puppet p;
	int a[2], b[2];

	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	p.pid = fork();
	assert_true(p.pid >= 0);
	if (p.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		puppet_main(a[0], b[1], nice, threads);
	}
	close(a[0]);
	close(b[1]);
	p.cmd = a[1];
	p.answer = b[0];
	/* its threads are up once /proc lists them all */
	for (int i = 0; i < 500; i++) {
		char path[64];
		int n = 0;
		DIR *d;
		struct dirent *de;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)p.pid);
		if ((d = opendir(path))) {
			while ((de = readdir(d)))
				n += de->d_name[0] != '.';
			closedir(d);
		}
		if (n == threads + 1 && getpriority(PRIO_PROCESS, (id_t)p.pid) == nice)
			break;
		usleep(2000);
	}
	puppet_do(&p, 'x', 0); /* an unknown command, answered once it is set up */
	return p;
}

static pid_t puppet_do(struct puppet *p, char op, int arg)
{
	pid_t out;
	char buf[2] = { op, (char)(arg + 20) };

	assert_int_equal(write(p->cmd, buf, op == 'r' ? 2 : 1), op == 'r' ? 2 : 1);
	assert_int_equal(read(p->answer, &out, sizeof(out)), sizeof(out));
	return out;
}

static void puppet_end(struct puppet *p)
{
	close(p->cmd);
	close(p->answer);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
}

static int nice_of(pid_t tid)
{
	return getpriority(PRIO_PROCESS, (id_t)tid);
}

/* Every thread of pid at `want`? */
static bool all_threads_at(pid_t pid, int want)
{
	char path[64];
	struct dirent *de;
	bool ok = true;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && nice_of(atoi(de->d_name)) != want)
			ok = false;
	closedir(d);
	return ok;
}

static struct backend_config config(enum backend_kind kind, const char *state_dir)
{
	struct backend_config cfg;
	char why[256];

	backend_config_defaults(&cfg);
	cfg.kind = kind;
	cfg.daemon_rt_priority = 0;
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", state_dir ? state_dir : "");
	assert_int_equal(backend_init(&cfg, why, sizeof(why)), 0);
	return cfg;
}

static struct backend_target target_of(pid_t pid)
{
	struct backend_target t;

	memset(&t, 0, sizeof(t));
	t.pid = pid;
	t.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(t.pidfd >= 0);
	return t;
}

/* backend_apply, then every cgroup move it asked for done: the moves
 * are the mover thread's (the daemon's loop does not wait for them). */
static int settled_apply(const struct backend_config *cfg, struct backend_target *t, bool boost, unsigned *v)
{
	int r = backend_apply(cfg, t, boost, v);

	backend_settle();
	return r;
}

/* ------------------------------------------------------------------ */

/* The keys are parsed by daemon/config.c; the backend checks the ranges. */
static void expect_refused(struct backend_config *cfg, const char *says)
{
	char err[256] = "";

	assert_int_equal(backend_config_check(cfg, err, sizeof(err)), -EINVAL);
	if (!strstr(err, says))
		fail_msg("\"%s\" not in \"%s\"", says, err);
	backend_config_defaults(cfg);
}

static void test_config_ranges(void **state)
{
	struct backend_config cfg;
	enum backend_kind k;
	char err[256];

	(void)state;
	backend_config_defaults(&cfg);
	assert_int_equal(backend_config_check(&cfg, err, sizeof(err)), 0);
	cfg.boost_nice = -21;
	expect_refused(&cfg, "boost-nice -21 is out of range -20..19");
	cfg.boost_nice = 20;
	expect_refused(&cfg, "boost-nice 20");
	cfg.autogroup_nice = -30;
	expect_refused(&cfg, "autogroup-nice");
	cfg.boost_weight = 0;
	expect_refused(&cfg, "boost-weight 0");
	cfg.boost_weight = 10001;
	expect_refused(&cfg, "boost-weight");
	cfg.boost_shares = 1;
	expect_refused(&cfg, "boost-shares 1");
	cfg.boost_io_level = 8;
	expect_refused(&cfg, "boost-io-level");
	cfg.max_threads = 0;
	expect_refused(&cfg, "boost-max-threads");
	cfg.daemon_rt_priority = 100;
	expect_refused(&cfg, "daemon-rt-priority");
	snprintf(cfg.cgroup_root, sizeof(cfg.cgroup_root), "relative/dir");
	expect_refused(&cfg, "not an absolute path");
	assert_int_equal(backend_kind_parse("fast", &k), -EINVAL);
	for (k = BACKEND_NONE; k <= BACKEND_AUTO; k++) {
		enum backend_kind back;

		assert_int_equal(backend_kind_parse(backend_name(k), &back), 0);
		assert_int_equal(back, k);
	}
}

static void test_choice_and_describe(void **state)
{
	struct backend_config cfg = config(BACKEND_AUTO, NULL);
	char text[1024];

	(void)state;
	assert_true(backend_describe(&cfg, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, backend_name(cfg.kind)));
	/* every kind not in use has its reason */
	for (int k = BACKEND_NONE; k < BACKEND_N_REAL; k++) {
		char line[64];

		if (k == (int)cfg.kind)
			continue;
		snprintf(line, sizeof(line), "not %s: ", backend_name((enum backend_kind)k));
		assert_non_null(strstr(text, line));
	}
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) == 0 &&
	    access("/sys/fs/cgroup/unified/cgroup.subtree_control", F_OK) == 0)
		assert_int_equal(cfg.kind, BACKEND_CGROUP_V1);
}

/* Threads and children started while boosted go back to what the process
 * had; the boost is negative, below what the process could set itself. */
static void test_nice_inherited_levels(void **state)
{
	struct backend_config cfg = config(BACKEND_NICE, NULL);
	struct puppet p = puppet_start(10, 2);
	struct backend_target t = target_of(p.pid);
	pid_t tid, child;
	unsigned v;

	(void)state;
	cfg.boost_nice = -5;
	puppet_do(&p, 'c', 0);
	backend_attach(&cfg, &t);
	assert_int_equal(t.kind, BACKEND_NICE);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_true(all_threads_at(p.pid, -5));
	tid = puppet_do(&p, 't', 0);
	child = puppet_do(&p, 'f', 0);
	assert_int_equal(nice_of(tid), -5);
	assert_int_equal(nice_of(child), -5);
	/* it renices itself while boosted: worse than the boost, better than before */
	puppet_do(&p, 'r', 3);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_true(all_threads_at(p.pid, 10));
	assert_int_equal(nice_of(tid), 10);
	assert_int_equal(nice_of(child), 10);
	backend_detach(&cfg, &t);
	close(t.pidfd);
	kill(child, SIGKILL);
	puppet_end(&p);
}

static int ioprio_of(pid_t tid)
{
	return (int)syscall(SYS_ioprio_get, 1, tid);
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re"))) {
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
			sscanf(p + 2, "%*c %d", &ppid);
		fclose(f);
	}
	return (pid_t)ppid;
}

/* Processes forked during a boost are born boosted (nice and I/O
 * priority): at the unboost a child and a double-forked grandchild, now
 * init's, go back to the receiver's value before the boost, threads
 * included; a grandchild an administrator reniced during the boost keeps
 * that value (theirs). */
static void test_nice_double_fork(void **state)
{
	struct backend_config cfg = config(BACKEND_NICE, NULL);
	struct puppet p = puppet_start(10, 1);
	struct backend_target t = target_of(p.pid);
	char describe[2048];
	pid_t child, grandchild, theirs;
	int io_before = ioprio_of(p.pid);
	unsigned v;

	(void)state;
	backend_describe(&cfg, describe, sizeof(describe));
	if (!strstr(describe, "followed (BPF)"))
		fail_msg("the fork tracker is not loaded here:\n%s", describe);
	puppet_do(&p, 'c', 0);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	child = puppet_do(&p, 'f', 0);
	grandchild = puppet_do(&p, 'd', 0);
	theirs = puppet_do(&p, 'd', 0);
	assert_true(parent_of(grandchild) != p.pid);
	assert_int_equal(nice_of(child), -10);
	assert_int_equal(nice_of(grandchild), -10);
	assert_int_equal(ioprio_of(grandchild), (2 << 13) | 4);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)theirs, -15), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_true(all_threads_at(p.pid, 10));
	assert_int_equal(nice_of(child), 10);
	assert_int_equal(nice_of(grandchild), 10);
	assert_int_equal(ioprio_of(grandchild), io_before);
	assert_int_equal(nice_of(theirs), -15);
	/* forked after the unboost: what the receiver has now, untouched */
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)theirs, 10), 0);
	backend_detach(&cfg, &t);
	close(t.pidfd);
	kill(child, SIGKILL);
	kill(grandchild, SIGKILL);
	kill(theirs, SIGKILL);
	puppet_end(&p);
}

/* The same under the cgroup and autogroup backends, which change no nice
 * value but lift the I/O priority: the double-forked grandchild's goes
 * back at the unboost, and it is back in its cgroup; a receiver that
 * exits while boosted has its grandchild put back when it is detached. */
static void double_fork_io(enum backend_kind kind)
{
	struct backend_config cfg = config(kind, NULL);
	struct puppet p = puppet_start(10, 1);
	struct backend_target t = target_of(p.pid);
	pid_t grandchild;
	int io_before = ioprio_of(p.pid);
	unsigned v;

	if (kind == BACKEND_AUTOGROUP)
		puppet_do(&p, 's', 0); /* alone in an autogroup of its own */
	backend_attach(&cfg, &t);
	assert_int_equal(t.kind, kind);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	grandchild = puppet_do(&p, 'd', 0);
	assert_int_equal(ioprio_of(grandchild), (2 << 13) | 4);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(ioprio_of(grandchild), io_before);
	assert_int_equal(nice_of(grandchild), 10);
	kill(grandchild, SIGKILL);

	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	grandchild = puppet_do(&p, 'd', 0);
	assert_int_equal(ioprio_of(grandchild), (2 << 13) | 4);
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	backend_detach(&cfg, &t);
	assert_int_equal(ioprio_of(grandchild), io_before);
	close(t.pidfd);
	kill(grandchild, SIGKILL);
	close(p.cmd);
	close(p.answer);
}

static void test_double_fork_io(void **state)
{
	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) == 0)
		double_fork_io(BACKEND_CGROUP_V1);
	double_fork_io(BACKEND_AUTOGROUP);
}

/* A process with more threads than boost-max-threads: only that many are
 * touched per boost, and the unboost puts back all it touched. */
static void test_nice_thread_bound(void **state)
{
	struct backend_config cfg = config(BACKEND_NICE, NULL);
	struct puppet p = puppet_start(10, 300);
	struct backend_target t = target_of(p.pid);
	struct dirent *de;
	char path[64];
	int boosted = 0;
	unsigned v;
	DIR *d;

	(void)state;
	cfg.max_threads = 64;
	backend_attach(&cfg, &t);
	backend_apply(&cfg, &t, true, &v);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p.pid);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && nice_of(atoi(de->d_name)) == cfg.boost_nice)
			boosted++;
	closedir(d);
	assert_int_equal(boosted, 64);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_true(all_threads_at(p.pid, 10));
	backend_detach(&cfg, &t);
	close(t.pidfd);
	puppet_end(&p);
}

/* A client with 2,000 threads toggling boosts: each edge touches at most
 * boost-max-threads of them (its default), not all 2,000, and every one it
 * touched is back after each unboost.  (What an edge costs in time is a
 * benchmark's business: bench/, docs/bench.md.) */
static void test_many_threads_bounded(void **state)
{
	struct backend_config cfg = config(BACKEND_NICE, NULL);
	struct puppet p = puppet_start(10, 2000);
	struct backend_target t = target_of(p.pid);
	struct dirent *de;
	char path[64];
	unsigned v;
	DIR *d;

	(void)state;
	assert_true(cfg.max_threads < 2000);
	backend_attach(&cfg, &t);
	for (int i = 0; i < 5; i++) {
		unsigned boosted = 0;

		backend_apply(&cfg, &t, true, &v);
		snprintf(path, sizeof(path), "/proc/%d/task", (int)p.pid);
		assert_non_null(d = opendir(path));
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && nice_of(atoi(de->d_name)) == cfg.boost_nice)
				boosted++;
		closedir(d);
		assert_int_equal(boosted, cfg.max_threads);
		assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
		assert_true(all_threads_at(p.pid, 10));
	}
	backend_detach(&cfg, &t);
	close(t.pidfd);
	puppet_end(&p);
}

static int cpu_cgroup_of(pid_t pid, char *out, size_t size)
{
	char path[64], line[512];
	FILE *f;
	int r = -1;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, ":cpu:")) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, size, "%s", strstr(line, ":cpu:") + 5);
			r = 0;
		}
	fclose(f);
	return r;
}

static unsigned long shares_of(const char *cg)
{
	char path[600];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu%s/cpu.shares", cg);
	if ((f = fopen(path, "re"))) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void test_cgroup_v1_leaf(void **state)
{
	struct backend_config cfg;
	struct puppet p;
	struct backend_target t;
	char before[256], cg[256], leaf[300];
	pid_t child;
	unsigned v;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	cfg = config(BACKEND_CGROUP_V1, NULL);
	cfg.leaf_delay_ms = 0; /* into its leaf at the boost (test_cgroup_v1_leaf_later: after a while) */
	p = puppet_start(10, 1);
	t = target_of(p.pid);
	assert_int_equal(cpu_cgroup_of(p.pid, before, sizeof(before)), 0);
	backend_attach(&cfg, &t);
	assert_int_equal(t.kind, BACKEND_CGROUP_V1);
	/* being a receiver moves nothing: only a donor's boost does */
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_string_equal(cg, before);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(v, 10240);
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_true(!strncmp(cg, "/importanced-", 13));
	snprintf(leaf, sizeof(leaf), "/sys/fs/cgroup/cpu%s", cg);
	assert_int_equal(shares_of(cg), 10240);
	assert_int_equal(nice_of(p.pid), 10); /* the group does it, not nice */
	child = puppet_do(&p, 'f', 0); /* a child joins the leaf */
	/* unboosted, both are back where the receiver was: scheduled as
	 * without importanced; on their way back the leaf weighed what nice
	 * 10 weighs, not the boost */
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(shares_of(leaf + strlen("/sys/fs/cgroup/cpu")), 110);
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_string_equal(cg, before);
	assert_int_equal(cpu_cgroup_of(child, cg, sizeof(cg)), 0);
	assert_string_equal(cg, before);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0); /* and in again */
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_true(!strncmp(cg, "/importanced-", 13));
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	backend_detach(&cfg, &t);
	/* both back where the receiver came from, the leaf gone */
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_string_equal(cg, before);
	assert_int_equal(cpu_cgroup_of(child, cg, sizeof(cg)), 0);
	assert_string_equal(cg, before);
	assert_int_equal(access(leaf, F_OK), -1);
	close(t.pidfd);
	kill(child, SIGKILL);
	puppet_end(&p);
}

/* A cgroup root of its own (as under delegation): it competes for its
 * leaves, so its weight follows the sum of theirs. */
static void test_cgroup_v1_own_root(void **state)
{
	const char *root = "/sys/fs/cgroup/cpu/importanced-test-root";
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	char why[256];
	unsigned v;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	backend_config_defaults(&cfg);
	cfg.kind = BACKEND_CGROUP_V1;
	cfg.leaf_delay_ms = 0;
	cfg.daemon_rt_priority = 0;
	cfg.state_dir[0] = '\0';
	snprintf(cfg.cgroup_root, sizeof(cfg.cgroup_root), "%s", root);
	assert_int_equal(backend_init(&cfg, why, sizeof(why)), 0);
	p = puppet_start(10, 0);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(t.kind, BACKEND_CGROUP_V1);
	assert_int_equal(shares_of("/importanced-test-root"), 1024); /* nothing moved yet */
	settled_apply(&cfg, &t, true, &v);
	assert_int_equal(shares_of("/importanced-test-root"), 10240);
	settled_apply(&cfg, &t, false, &v);
	assert_int_equal(shares_of("/importanced-test-root"), 1024); /* its leaf is empty again */
	backend_detach(&cfg, &t);
	assert_int_equal(shares_of("/importanced-test-root"), 1024); /* no leaves: a normal group */
	close(t.pidfd);
	puppet_end(&p);
	assert_int_equal(rmdir(root), 0);
}

static void write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Leaves a killed daemon left behind in its root: the next one removes
 * those that name no living process and are empty, and keeps a living
 * receiver's leaf, a leaf that still holds a process, and what is not
 * named as a leaf. */
static void test_cgroup_v1_sweep(void **state)
{
	const char *root = "/sys/fs/cgroup/cpu/importanced-test-sweep";
	char why[256], gone[320], live[320], held[320], other[320], procs[360];
	struct backend_config cfg;
	struct puppet p;
	uint64_t start;
	pid_t dead;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	assert_true(mkdir(root, 0755) == 0 || errno == EEXIST);
	dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	p = puppet_start(10, 0);
	assert_int_equal(bk_start_time(p.pid, p.pid, &start), 0);
	snprintf(gone, sizeof(gone), "%s/importanced-%d-12345", root, (int)dead);
	snprintf(live, sizeof(live), "%s/importanced-%d-%llu", root, (int)p.pid, (unsigned long long)start);
	snprintf(held, sizeof(held), "%s/importanced-%d-%llu", root, (int)p.pid, (unsigned long long)start + 1);
	snprintf(other, sizeof(other), "%s/importanced-admin", root);
	assert_int_equal(mkdir(gone, 0755), 0);
	assert_int_equal(mkdir(live, 0755), 0);
	assert_int_equal(mkdir(held, 0755), 0);
	assert_int_equal(mkdir(other, 0755), 0);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", held);
	write_file(procs, "%d\n", (int)p.pid); /* the start time is not the puppet's: stale, but not empty */

	backend_config_defaults(&cfg);
	cfg.kind = BACKEND_CGROUP_V1;
	cfg.daemon_rt_priority = 0;
	cfg.state_dir[0] = '\0';
	snprintf(cfg.cgroup_root, sizeof(cfg.cgroup_root), "%s", root);
	assert_int_equal(backend_init(&cfg, why, sizeof(why)), 0);
	assert_int_equal(access(gone, F_OK), -1);
	assert_int_equal(access(live, F_OK), 0);
	assert_int_equal(access(held, F_OK), 0);
	assert_int_equal(access(other, F_OK), 0);

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", "/sys/fs/cgroup/cpu");
	write_file(procs, "%d\n", (int)p.pid);
	puppet_end(&p);
	assert_int_equal(rmdir(live), 0);
	assert_int_equal(rmdir(held), 0);
	assert_int_equal(rmdir(other), 0);
	assert_int_equal(rmdir(root), 0);
}

static void write_file(const char *path, const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	assert_non_null(f = fopen(path, "w"));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	assert_int_equal(fclose(f), 0);
}

static void expect_in(pid_t pid, const char *want)
{
	char cg[256];

	assert_int_equal(cpu_cgroup_of(pid, cg, sizeof(cg)), 0);
	assert_string_equal(cg, want);
}

/* A puppet at nice 0 in cpu cgroup dir, made anew with that weight. */
static struct puppet puppet_in(const char *dir, int shares, int threads)
{
	char path[300];
	struct puppet p;

	rmdir(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/cpu.shares", dir);
	write_file(path, "%d\n", shares);
	p = puppet_start(0, threads);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	write_file(path, "%d\n", (int)p.pid);
	return p;
}

/* A receiver in a group the administrator gave a low weight is back in
 * that group whenever it is not boosted; a receiver under a CPU quota is
 * never moved out (boosted through nice), and the quota is checked at
 * every move: one set after the receiver connected, or after its first
 * boost, is followed; one taken away lets it move again (issue 15.6). */
static void test_cgroup_v1_limits_kept(void **state)
{
	const char *jail = "/sys/fs/cgroup/cpu/importanced-test-jail";
	char path[300], cg[256];
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	unsigned v;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	cfg = config(BACKEND_CGROUP_V1, NULL);
	cfg.leaf_linger_ms = 0; /* back in the jail at once (test_cgroup_v1_leaf_lingers: the other way) */
	p = puppet_in(jail, 128, 0);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(t.kind, BACKEND_CGROUP_V1);
	expect_in(p.pid, "/importanced-test-jail");
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_true(!strncmp(cg, "/importanced-", 13));
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, "/importanced-test-jail"); /* its 128 again */
	assert_int_equal(v, 128);

	/* a quota appears after the first boost: the next boost leaves it in
	 * place and goes through nice */
	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", jail);
	write_file(path, "10000\n");
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	expect_in(p.pid, "/importanced-test-jail");
	assert_int_equal(t.via, BACKEND_NICE);
	assert_int_equal(nice_of(p.pid), cfg.boost_nice);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(nice_of(p.pid), 0);
	expect_in(p.pid, "/importanced-test-jail");
	/* taken away: it moves again */
	write_file(path, "-1\n");
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(t.via, BACKEND_CGROUP_V1);
	assert_int_equal(nice_of(p.pid), 0);
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_true(!strncmp(cg, "/importanced-", 13));
	backend_detach(&cfg, &t);
	expect_in(p.pid, "/importanced-test-jail");
	close(t.pidfd);

	/* under a quota from the start: attached, but never moved */
	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", jail);
	write_file(path, "10000\n");
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(t.via, BACKEND_NICE);
	expect_in(p.pid, "/importanced-test-jail");
	backend_detach(&cfg, &t);
	assert_int_equal(nice_of(p.pid), 0);
	close(t.pidfd);
	puppet_end(&p);
	usleep(20000);
	assert_int_equal(rmdir(jail), 0);
}

/* cgroup-leaf-linger-ms: a receiver alone in a top-level cgroup of its
 * own (a sibling of the leaves) stays in its leaf for a while after the
 * unboost, at that cgroup's weight, which is where it would be without
 * importanced under another name, so that a boost within that while is a
 * weight write and not a move; then it goes back.  As soon as it would not
 * be the same (a process put in its cgroup) the unboost moves it back; a
 * limit put on its cgroup meanwhile sends it back at the next boost, which
 * goes through nice there; with the key at 0 it always goes back. */
static void test_cgroup_v1_leaf_lingers(void **state)
{
	const char *own = "/sys/fs/cgroup/cpu/importanced-test-own";
	char path[300], quota[300], leaf[256];
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p, q;
	unsigned v;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	cfg = config(BACKEND_CGROUP_V1, NULL);
	assert_int_equal(cfg.leaf_linger_ms, 1000);
	cfg.leaf_linger_ms = 400;
	p = puppet_in(own, 512, 1);
	snprintf(path, sizeof(path), "%s/cgroup.procs", own);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(cpu_cgroup_of(p.pid, leaf, sizeof(leaf)), 0);
	assert_true(!strncmp(leaf, "/importanced-", 13));
	assert_int_equal(shares_of(leaf), 10240);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, leaf); /* lingers, at its own group's weight */
	assert_int_equal(v, 512);
	assert_int_equal(shares_of(leaf), 512);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0); /* a write */
	expect_in(p.pid, leaf);
	assert_int_equal(shares_of(leaf), 10240);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, leaf);
	usleep(800000); /* the linger is over: back */
	expect_in(p.pid, "/importanced-test-own");
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0); /* a move in again */
	expect_in(p.pid, leaf);
	assert_int_equal(shares_of(leaf), 10240);

	/* someone else in its cgroup: it would compete with them there */
	q = puppet_start(0, 0);
	write_file(path, "%d\n", (int)q.pid);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, "/importanced-test-own");
	puppet_end(&q);
	usleep(20000);

	/* a quota on its cgroup while it lingers: the next boost is in place */
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, leaf);
	snprintf(quota, sizeof(quota), "%s/cpu.cfs_quota_us", own);
	write_file(quota, "10000\n");
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	expect_in(p.pid, "/importanced-test-own");
	assert_int_equal(t.via, BACKEND_NICE);
	assert_int_equal(nice_of(p.pid), cfg.boost_nice);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(nice_of(p.pid), 0);
	write_file(quota, "-1\n");

	/* the key at 0: back every time */
	cfg.leaf_linger_ms = 0;
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	expect_in(p.pid, leaf);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, "/importanced-test-own");
	/* lingering when it leaves: back, and the leaf gone */
	cfg.leaf_linger_ms = 5000;
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, leaf);
	backend_detach(&cfg, &t);
	expect_in(p.pid, "/importanced-test-own");
	snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu%s", leaf);
	assert_int_equal(access(path, F_OK), -1);
	close(t.pidfd);
	puppet_end(&p);
	usleep(20000);
	assert_int_equal(rmdir(own), 0);
}

/* A receiver alone in its session's autogroup, in the cpu root, is
 * boosted through that autogroup under a cgroup backend: nothing moves,
 * and unboosted it is exactly where it was. */
static void test_cgroup_v1_own_autogroup(void **state)
{
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	char path[64], buf[128];
	int nice = 99;
	unsigned v;
	FILE *f;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0 || access("/proc/self/autogroup", R_OK) != 0)
		skip();
	cfg = config(BACKEND_CGROUP_V1, NULL);
	p = puppet_start(10, 0);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu/cgroup.procs");
	write_file(path, "%d\n", (int)p.pid);
	puppet_do(&p, 's', 0);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_true(t.autogroup_alone);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(t.via, BACKEND_AUTOGROUP);
	expect_in(p.pid, "/");
	snprintf(path, sizeof(path), "/proc/%d/autogroup", (int)p.pid);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(sscanf(buf, "/autogroup-%*u nice %d", &nice), 1);
	assert_int_equal(nice, cfg.autogroup_nice);
	assert_int_equal(nice_of(p.pid), 10);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(sscanf(buf, "/autogroup-%*u nice %d", &nice), 1);
	assert_int_equal(nice, 0);
	expect_in(p.pid, "/");
	backend_detach(&cfg, &t);
	close(t.pidfd);
	puppet_end(&p);
}

static void autogroup_set(pid_t pid, int nice)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/autogroup", (int)pid);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%d", nice);
	assert_int_equal(fclose(f), 0);
}

static int autogroup_nice_of(pid_t pid);

/* The autogroup backend: a group nice someone else set during the boost
 * is kept at the unboost. */
static void test_autogroup_change_kept(void **state)
{
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	unsigned v;

	(void)state;
	if (access("/proc/self/autogroup", R_OK) != 0 || access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	cfg = config(BACKEND_AUTOGROUP, NULL);
	p = puppet_start(0, 0);
	write_file("/sys/fs/cgroup/cpu/cgroup.procs", "%d\n", (int)p.pid);
	puppet_do(&p, 's', 0);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(t.kind, BACKEND_AUTOGROUP);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(autogroup_nice_of(p.pid), cfg.autogroup_nice);
	autogroup_set(p.pid, 5);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(autogroup_nice_of(p.pid), 5);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(autogroup_nice_of(p.pid), 5); /* and its own from then on */
	backend_detach(&cfg, &t);
	close(t.pidfd);
	puppet_end(&p);
}

/* What someone else changed during a boost is theirs at the unboost: a
 * weight written on the receiver's leaf (it stays there at that weight,
 * and goes back to it after the next boost), a move out of the leaf (it
 * stays where it was put). */
/* Waits (up to 2 s) until pid's cpu cgroup starts with want; its cgroup. */
static void wait_in_prefix(pid_t pid, const char *want, char *cg, size_t size)
{
	for (int i = 0; i < 200; i++) {
		assert_int_equal(cpu_cgroup_of(pid, cg, size), 0);
		if (!strncmp(cg, want, strlen(want)))
			return;
		usleep(10000);
	}
	fail_msg("pid %d is in %s, not %s...", (int)pid, cg, want);
}

/* cgroup-leaf-delay-ms: a receiver in the cpu root sharing its session
 * is boosted through nice at once, in place, and moved into its leaf only
 * when the boost lasts; an unboost before that moves nothing, and one
 * after it brings the receiver back at its own nice's weight. */
static void test_cgroup_v1_leaf_later(void **state)
{
	struct backend_config cfg;
	struct puppet p;
	struct backend_target t;
	char cg[256], leaf[300];
	unsigned v;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	cfg = config(BACKEND_CGROUP_V1, NULL);
	assert_int_equal(cfg.leaf_delay_ms, 5);
	cfg.leaf_delay_ms = 300;
	p = puppet_start(10, 2);
	/* in the cpu root, in this test's session (not alone in its autogroup) */
	write_file("/sys/fs/cgroup/cpu/cgroup.procs", "%d\n", (int)p.pid);
	expect_in(p.pid, "/");
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_false(t.autogroup_alone);

	/* a short boost: nice, nothing moves, then or after the delay */
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal((int)v, cfg.boost_nice);
	assert_true(all_threads_at(p.pid, cfg.boost_nice));
	expect_in(p.pid, "/");
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_true(all_threads_at(p.pid, 10));
	expect_in(p.pid, "/");
	usleep(450000);
	backend_settle();
	expect_in(p.pid, "/");
	assert_int_equal(t.linger_id, 0);

	/* a boost that lasts: into its leaf after the delay, at the boost's
	 * weight, nice still raised */
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	expect_in(p.pid, "/");
	wait_in_prefix(p.pid, "/importanced-", cg, sizeof(cg));
	snprintf(leaf, sizeof(leaf), "/sys/fs/cgroup/cpu%s", cg);
	assert_int_equal(shares_of(cg), 10240);
	assert_true(all_threads_at(p.pid, cfg.boost_nice));
	/* unboosted: back in the root at its own nice; on the way the leaf
	 * weighed what nice 10 weighs, not the boost's nice */
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, "/");
	assert_true(all_threads_at(p.pid, 10));
	assert_int_equal(shares_of(cg), 110);

	/* moved by someone else before its move is due: it stays theirs, at
	 * the boost and after */
	mkdir("/sys/fs/cgroup/cpu/importanced-test-later", 0755);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	write_file("/sys/fs/cgroup/cpu/importanced-test-later/cgroup.procs", "%d\n", (int)p.pid);
	usleep(450000);
	backend_settle();
	expect_in(p.pid, "/importanced-test-later");
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, "/importanced-test-later");
	assert_true(all_threads_at(p.pid, 10));
	write_file("/sys/fs/cgroup/cpu/cgroup.procs", "%d\n", (int)p.pid);
	assert_int_equal(rmdir("/sys/fs/cgroup/cpu/importanced-test-later"), 0);

	/* a boost whose move is due when the receiver leaves: nothing left */
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	backend_detach(&cfg, &t);
	usleep(450000);
	expect_in(p.pid, "/");
	assert_true(all_threads_at(p.pid, 10));
	assert_int_equal(access(leaf, F_OK), -1);
	close(t.pidfd);
	puppet_end(&p);
}

static void test_cgroup_v1_changes_kept(void **state)
{
	const char *elsewhere = "/sys/fs/cgroup/cpu/importanced-test-elsewhere";
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	char cg[256], leaf[256], path[400];
	unsigned v;

	(void)state;
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) != 0)
		skip();
	cfg = config(BACKEND_CGROUP_V1, NULL);
	cfg.leaf_delay_ms = 0;
	p = puppet_start(10, 0);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(cpu_cgroup_of(p.pid, leaf, sizeof(leaf)), 0);
	assert_true(!strncmp(leaf, "/importanced-", 13));
	snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu%s/cpu.shares", leaf);
	write_file(path, "2048\n");
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, leaf);
	assert_int_equal(shares_of(leaf), 2048);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(shares_of(leaf), 10240);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(shares_of(leaf), 2048);
	backend_detach(&cfg, &t);
	close(t.pidfd);

	/* moved out of the leaf during the boost */
	rmdir(elsewhere);
	assert_int_equal(mkdir(elsewhere, 0755), 0);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(cpu_cgroup_of(p.pid, cg, sizeof(cg)), 0);
	assert_true(!strncmp(cg, "/importanced-", 13));
	snprintf(path, sizeof(path), "%s/cgroup.procs", elsewhere);
	write_file(path, "%d\n", (int)p.pid);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	expect_in(p.pid, "/importanced-test-elsewhere");
	backend_detach(&cfg, &t);
	expect_in(p.pid, "/importanced-test-elsewhere");
	close(t.pidfd);
	puppet_end(&p);
	usleep(20000);
	assert_int_equal(rmdir(elsewhere), 0);
}

/* Under the nice backend, a renice someone else made during the boost is
 * kept at the unboost: a worse value, or one better than the boost (only
 * a privileged caller can set it).  One better than before that the
 * process may not set itself (RLIMIT_NICE 0, no CAP_SYS_NICE), but could
 * have kept from the boost by raising its nice, is put back (also
 * test_nice_inherited_levels); with CAP_SYS_NICE the process could set
 * it anyway, and it is kept. */
static void test_nice_renice_kept(void **state)
{
	struct backend_config cfg = config(BACKEND_NICE, NULL);
	struct puppet p = puppet_start(10, 2);
	struct backend_target t = target_of(p.pid);
	pid_t tid;
	unsigned v;

	(void)state;
	tid = puppet_do(&p, 't', 0);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)p.pid, 0), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(nice_of(p.pid), 0); /* it may: CAP_SYS_NICE */
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)p.pid, 10), 0);

	puppet_do(&p, 'c', 0);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(nice_of(p.pid), -10);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)p.pid, 15), 0);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)tid, -15), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(nice_of(p.pid), 15);
	assert_int_equal(nice_of(tid), -15);

	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)p.pid, 10), 0);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)tid, 10), 0);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)p.pid, 0), 0);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(nice_of(p.pid), 10);
	assert_int_equal(nice_of(tid), 10);
	backend_detach(&cfg, &t);
	close(t.pidfd);
	puppet_end(&p);
}

static int autogroup_nice_of(pid_t pid)
{
	char path[64], buf[128];
	int nice = 99;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/autogroup", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(sscanf(buf, "/autogroup-%*u nice %d", &nice), 1);
	return nice;
}

/* receiver-background: unboosted, a receiver sits in the background band
 * (nice 10 on its threads, or on its autogroup when it is alone in one),
 * a boost lifts it, the unboost puts it back in the band, and leaving
 * puts back its own values; a value already worse than the band is its
 * own; a daemon that died with receivers in the band is undone by the
 * next one. */
static void test_background_band(void **state)
{
	char dir[] = "/tmp/test-backend-band.XXXXXX", cmd[128];
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p, q;
	pid_t tid;
	unsigned v;

	(void)state;
	cfg = config(BACKEND_NICE, NULL);
	cfg.background = true;
	p = puppet_start(0, 2);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_true(all_threads_at(p.pid, 10));
	tid = puppet_do(&p, 't', 0); /* started in the band: inherits it */
	assert_int_equal(nice_of(tid), 10);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_true(all_threads_at(p.pid, cfg.boost_nice));
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_true(all_threads_at(p.pid, 10));
	backend_detach(&cfg, &t);
	assert_true(all_threads_at(p.pid, 0));
	close(t.pidfd);
	puppet_end(&p);

	/* already worse than the band: its own */
	q = puppet_start(15, 0);
	t = target_of(q.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(nice_of(q.pid), 15);
	backend_detach(&cfg, &t);
	assert_int_equal(nice_of(q.pid), 15);
	close(t.pidfd);
	puppet_end(&q);

	/* off by default */
	cfg.background = false;
	q = puppet_start(0, 0);
	t = target_of(q.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(nice_of(q.pid), 0);
	backend_detach(&cfg, &t);
	close(t.pidfd);
	puppet_end(&q);

	/* per receiver rule (the caller matched it: t.background), the
	 * others as without importanced */
	q = puppet_start(0, 0);
	p = puppet_start(0, 0);
	t = target_of(q.pid);
	t.background = true;
	backend_attach(&cfg, &t);
	{
		struct backend_target other = target_of(p.pid);

		backend_attach(&cfg, &other);
		assert_int_equal(nice_of(q.pid), 10);
		assert_int_equal(nice_of(p.pid), 0);
		assert_int_equal(settled_apply(&cfg, &other, true, &v), 0);
		assert_int_equal(settled_apply(&cfg, &other, false, &v), 0);
		assert_int_equal(nice_of(p.pid), 0);
		backend_detach(&cfg, &other);
		close(other.pidfd);
	}
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_int_equal(nice_of(q.pid), cfg.boost_nice);
	assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
	assert_int_equal(nice_of(q.pid), 10);
	backend_detach(&cfg, &t);
	assert_int_equal(nice_of(q.pid), 0);
	close(t.pidfd);
	puppet_end(&p);
	puppet_end(&q);

	/* a cgroup backend, alone in its autogroup: the group is in the band */
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) == 0 && access("/proc/self/autogroup", R_OK) == 0) {
		cfg = config(BACKEND_CGROUP_V1, NULL);
		cfg.background = true;
		q = puppet_start(0, 0);
		puppet_do(&q, 's', 0);
		t = target_of(q.pid);
		backend_attach(&cfg, &t);
		assert_true(t.autogroup_alone);
		assert_int_equal(autogroup_nice_of(q.pid), 10);
		assert_int_equal(nice_of(q.pid), 0);
		assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
		assert_int_equal(autogroup_nice_of(q.pid), cfg.autogroup_nice);
		assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
		assert_int_equal(autogroup_nice_of(q.pid), 10);
		backend_detach(&cfg, &t);
		assert_int_equal(autogroup_nice_of(q.pid), 0);
		close(t.pidfd);
		puppet_end(&q);
	}

	/* a cgroup backend through a leaf (it shares the test's session): in
	 * the band it stays in its leaf at nice 10's weight, so that later
	 * boosts move nothing; leaving puts it back where it was */
	if (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) == 0) {
		char before[256], leaf[256];

		cfg = config(BACKEND_CGROUP_V1, NULL);
		cfg.background = true;
		q = puppet_start(0, 0);
		assert_int_equal(cpu_cgroup_of(q.pid, before, sizeof(before)), 0);
		t = target_of(q.pid);
		backend_attach(&cfg, &t);
		assert_false(t.autogroup_alone);
		assert_int_equal(nice_of(q.pid), 10);
		assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
		assert_int_equal(cpu_cgroup_of(q.pid, leaf, sizeof(leaf)), 0);
		assert_true(!strncmp(leaf, "/importanced-", 13));
		assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
		expect_in(q.pid, leaf);
		assert_int_equal(shares_of(leaf), 110);
		assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
		assert_int_equal(shares_of(leaf), 10240);
		assert_int_equal(settled_apply(&cfg, &t, false, &v), 0);
		assert_int_equal(shares_of(leaf), 110);
		backend_detach(&cfg, &t);
		expect_in(q.pid, before);
		assert_int_equal(nice_of(q.pid), 0);
		close(t.pidfd);
		puppet_end(&q);
	}

	/* the daemon dies with a receiver boosted out of the band */
	assert_non_null(mkdtemp(dir));
	p = puppet_start(0, 2);
	cfg = config(BACKEND_NICE, dir);
	cfg.background = true;
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	close(t.pidfd);
	free(t.saved);
	free(t.band);
	close(cfg.state_lock_fd);
	cfg = config(BACKEND_NICE, dir);
	assert_true(all_threads_at(p.pid, 0));
	close(cfg.state_lock_fd);
	puppet_end(&p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A daemon that dies leaves its records; the next one restores from them. */
static void test_restore_recorded(void **state)
{
	char dir[] = "/tmp/test-backend.XXXXXX";
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	unsigned v;
	int left = 0;
	struct dirent *de;
	DIR *d;

	(void)state;
	assert_non_null(mkdtemp(dir));
	p = puppet_start(10, 3); /* first: it must not inherit the state directory's lock */
	cfg = config(BACKEND_NICE, dir);
	t = target_of(p.pid);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	assert_true(all_threads_at(p.pid, cfg.boost_nice));
	/* the daemon "dies": nothing is detached; its lock goes with it */
	close(t.pidfd);
	free(t.saved);
	close(cfg.state_lock_fd);
	cfg = config(BACKEND_NICE, dir); /* restores in backend_init */
	assert_true(all_threads_at(p.pid, 10));
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)))
		left += de->d_name[0] >= '0' && de->d_name[0] <= '9';
	closedir(d);
	assert_int_equal(left, 0);
	close(cfg.state_lock_fd);
	puppet_end(&p);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void read_victim(const char *path, const char *want)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, want);
}

static void expect_init_refused(const char *dir, const char *says)
{
	struct backend_config cfg;
	char why[256] = "";

	backend_config_defaults(&cfg);
	cfg.kind = BACKEND_NICE;
	cfg.daemon_rt_priority = 0;
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", dir);
	assert_int_equal(backend_init(&cfg, why, sizeof(why)), -EPERM);
	if (!strstr(why, says))
		fail_msg("\"%s\" not in \"%s\"", says, why);
}

/* A state directory someone else could write is refused; nothing in one
 * is reached through a link (a record's name made a link to a file
 * elsewhere neither is written nor read through it). */
static void test_state_dir_guarded(void **state)
{
	char dir[] = "/tmp/test-backend-state.XXXXXX", link_path[64], victim[64], name[128], cmd[160];
	struct backend_config cfg;
	struct backend_target t;
	struct puppet p;
	unsigned v;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0777), 0);
	expect_init_refused(dir, "writable by others");
	assert_int_equal(chmod(dir, 0770), 0);
	expect_init_refused(dir, "writable by others");
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chown(dir, 65534, 65534), 0);
	expect_init_refused(dir, "owned by another uid");
	assert_int_equal(chown(dir, 0, 0), 0);
	snprintf(link_path, sizeof(link_path), "%s.link", dir);
	assert_int_equal(symlink(dir, link_path), 0);
	expect_init_refused(link_path, "symbolic link");
	unlink(link_path);

	/* a planted link where a restart looks for records: removed, not read */
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	assert_non_null(f = fopen(victim, "w"));
	fputs("keep\n", f);
	fclose(f);
	snprintf(name, sizeof(name), "%s/12345-1", dir);
	assert_int_equal(symlink(victim, name), 0);
	p = puppet_start(10, 1);
	cfg = config(BACKEND_NICE, dir);
	assert_int_equal(access(name, F_OK), -1);
	read_victim(victim, "keep\n");

	/* a planted link at a receiver's record name: the record is not written through it */
	t = target_of(p.pid);
	{
		char statp[64], buf[1024], *c;
		unsigned long long start = 0;

		snprintf(statp, sizeof(statp), "/proc/%d/stat", (int)p.pid);
		assert_non_null(f = fopen(statp, "r"));
		assert_non_null(fgets(buf, sizeof(buf), f));
		fclose(f);
		assert_non_null(c = strrchr(buf, ')'));
		/* field 22 is the start time; after ')' come fields 3.. */
		for (int field = 2; field < 22 && c; field++)
			c = strchr(c + 1, ' ');
		assert_non_null(c);
		start = strtoull(c + 1, NULL, 10);
		snprintf(name, sizeof(name), "%s/%d-%llu", dir, (int)p.pid, start);
	}
	assert_int_equal(symlink(victim, name), 0);
	backend_attach(&cfg, &t);
	assert_int_equal(settled_apply(&cfg, &t, true, &v), 0);
	read_victim(victim, "keep\n");
	backend_detach(&cfg, &t);
	read_victim(victim, "keep\n");
	close(t.pidfd);
	close(cfg.state_lock_fd);
	close(cfg.state_dir_fd);
	puppet_end(&p);

	/* "" : no records, nothing made */
	cfg = config(BACKEND_NICE, "");
	assert_int_equal(cfg.state_dir_fd, -1);
	unlink(victim);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_ranges),
		cmocka_unit_test(test_choice_and_describe),
		cmocka_unit_test(test_nice_inherited_levels),
		cmocka_unit_test(test_nice_double_fork),
		cmocka_unit_test(test_double_fork_io),
		cmocka_unit_test(test_nice_thread_bound),
		cmocka_unit_test(test_many_threads_bounded),
		cmocka_unit_test(test_cgroup_v1_leaf),
		cmocka_unit_test(test_cgroup_v1_leaf_lingers),
		cmocka_unit_test(test_cgroup_v1_leaf_later),
		cmocka_unit_test(test_cgroup_v1_own_root),
		cmocka_unit_test(test_cgroup_v1_sweep),
		cmocka_unit_test(test_cgroup_v1_limits_kept),
		cmocka_unit_test(test_cgroup_v1_own_autogroup),
		cmocka_unit_test(test_cgroup_v1_changes_kept),
		cmocka_unit_test(test_autogroup_change_kept),
		cmocka_unit_test(test_nice_renice_kept),
		cmocka_unit_test(test_background_band),
		cmocka_unit_test(test_restore_recorded),
		cmocka_unit_test(test_state_dir_guarded),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test-backend: needs root (nice values below the current, cgroups)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * End-to-end tests of importanced's boost backends with real processes:
 * for each backend this machine has, a boost changes what the scheduler
 * sees (cpu.shares / autogroup nice / nice, I/O priority, timer slack),
 * and an unboost, the receiver leaving, a daemon stopped and a daemon
 * killed and started again all put back exactly what was there.  A
 * backend that cannot work is refused.  A client of another uid whose
 * threads exit and whose thread ids go to root-owned processes cannot get
 * those processes reniced.
 *
 * The receiver ("server") is a forked child driven through a pipe: the
 * parent writes a command byte, the child answers with a byte.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "importance/client.h"
#include "importance/protocol.h"

#define SERVER_NICE 10
#define BOOST_NICE -10 /* importanced's default boost-nice */
#define SERVER_SLACK 2000000UL
#define IOPRIO_IDLE (3 << 13)
#define IOPRIO_BE4 ((2 << 13) | 4)
#define OTHER_USER "imp-backend-test"

static const char *daemon_bin;
static char sock[108], state_dir[128], log_path[128];
static pid_t daemon_pid = -1;
/* A child that dies with us. */
static pid_t spawn(void)
{
	pid_t p = fork();

	if (p == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return p;
}

/* After each test: every child still there (the kernel lists them), killed
 * and reaped, so that a failing test leaves nothing behind. */
static int cleanup(void **state)
{
	char path[64], list[8192], *p, *end;
	FILE *f;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	if ((f = fopen(path, "re"))) {
		n = fread(list, 1, sizeof(list) - 1, f);
		list[n] = '\0';
		fclose(f);
		for (p = list;; p = end) {
			long child = strtol(p, &end, 10);

			if (end == p)
				break;
			kill((pid_t)child, SIGKILL);
			waitpid((pid_t)child, NULL, 0);
		}
	}
	daemon_pid = -1;
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Forks importanced on our socket and state directory with args (NULL
 * ended) and the space-separated words of extra; its stderr goes to
 * log_path, opened with flag (O_APPEND or O_TRUNC).
 */
static pid_t daemon_exec(const char **args, const char *extra, int flag)
{
	pid_t p = spawn();

	assert_true(p >= 0);
	if (p == 0) {
		const char *argv[32] = { daemon_bin, "--socket", sock, "--state-dir", state_dir };
		int k = 5, fd = open(log_path, O_WRONLY | O_CREAT | flag, 0600);
		char *words = extra ? strdup(extra) : NULL, *save = NULL;

		while (*args && k < 20)
			argv[k++] = *args++;
		for (char *w = words ? strtok_r(words, " ", &save) : NULL; w && k < 31; w = strtok_r(NULL, " ", &save))
			argv[k++] = w;
		argv[k] = NULL;
		dup2(fd, 2);
		execv(daemon_bin, (char **)argv);
		_exit(127);
	}
	return p;
}

/* importanced with this policy and extra arguments; returns once it answers. */
static void daemon_start(const char *policy, const char *extra)
{
	const char *args[] = { "--backend", policy, "--donor-uid", "0", "--verbose", NULL };

	daemon_pid = daemon_exec(args, extra, O_APPEND);
	for (int i = 0; i < 500; i++) {
		impc *c;

		if (impc_connect(sock, IMPC_MONITOR, &c, NULL) == 0) {
			impc_close(c);
			return;
		}
		sleep_ms(10);
	}
	fail_msg("importanced did not come up");
}

static void daemon_stop(int sig)
{
	int status;

	kill(daemon_pid, sig);
	assert_int_equal(waitpid(daemon_pid, &status, 0), daemon_pid);
	if (sig == SIGTERM)
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(sock);
	daemon_pid = -1;
}

/* ------------------------------------------------------------------ */
/* the receiver                                                         */
/* ------------------------------------------------------------------ */

struct seen {
	int nice[40];
	int ioprio;
	unsigned long slack;
	char cpu_cgroup[256];
	unsigned long shares;
	int autogroup_nice;
};

struct server {
	pid_t pid;
	int cmd, reply;
	pid_t tids[40];
	int n_tids;
	struct seen unattached; /* before it connected */
};

static struct seen look(const struct server *s);

static void *parked_thread(void *arg)
{
	int fd = *(int *)arg;
	char c;

	/* until the end of the pipe closes: then the thread exits */
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void say(int fd, char c)
{
	assert_int_equal(write(fd, &c, 1), 1);
}

static char hear(int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c = 0;

	if (poll(&p, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1)
		return c;
	return 0;
}

/*
 * Commands: 'r' receive the queued message with its voucher, 'v' release
 * the voucher, 'c' close the connection, 'e' let the extra threads exit,
 * 'n' set its main thread's nice to 0 itself, 'f' fork a child that
 * parks, 'd' double-fork: a child that forks a grandchild and exits, so
 * that the grandchild goes to init ('f' and 'd' answer with the pid of
 * the process that parks after the byte; it parks a minute at most).
 * The server sets itself up as a held-back background task: nice 10, idle
 * I/O class, a long timer slack, n_threads threads besides the main one.
 */
static void server_main(int cmd, int reply, int n_threads, bool own_session, uid_t uid)
{
	pthread_t th[40];
	int park[2];
	impc *c = NULL;
	uint64_t port, voucher = 0;
	char op;

	if (own_session)
		setsid();
	if (uid) {
		struct passwd *pw = getpwuid(uid);

		if (!pw || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(uid) < 0)
			_exit(3);
	}
	setpriority(PRIO_PROCESS, 0, SERVER_NICE);
	syscall(SYS_ioprio_set, 1, 0, IOPRIO_IDLE);
	prctl(PR_SET_TIMERSLACK, SERVER_SLACK);
	if (pipe(park) < 0)
		_exit(3);
	for (int i = 0; i < n_threads; i++)
		pthread_create(&th[i], NULL, parked_thread, &park[0]);
	/* set up: the parent looks at it before it connects */
	say(reply, 'p');
	if (read(cmd, &op, 1) != 1)
		_exit(3);
	if (impc_connect(sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
	    impc_register(c, "svc", port) < 0)
		_exit(4);
	say(reply, 'k');
	while (read(cmd, &op, 1) == 1) {
		impc_message m;

		switch (op) {
		case 'r':
			if (impc_receive(c, port, 2000, IMPC_RECV_VOUCHER, &m) < 0)
				_exit(5);
			voucher = m.voucher;
			free(m.data);
			break;
		case 'v':
			impc_voucher_release(c, voucher);
			break;
		case 'c':
			impc_close(c);
			c = NULL;
			break;
		case 'n':
			setpriority(PRIO_PROCESS, 0, 0);
			break;
		case 'f':
		case 'd': {
			int link[2];
			pid_t child, parked = 0;

			if (pipe(link) < 0)
				_exit(3);
			if ((child = fork()) == 0) {
				if (op == 'd' && (parked = fork()) != 0) {
					if (write(link[1], &parked, sizeof(parked)) != sizeof(parked))
						_exit(3);
					_exit(0);
				}
				alarm(60);
				pause();
				_exit(0);
			}
			if (op == 'd') {
				if (read(link[0], &parked, sizeof(parked)) != sizeof(parked))
					_exit(3);
				waitpid(child, NULL, 0);
			} else
				parked = child;
			close(link[0]);
			close(link[1]);
			say(reply, op);
			if (write(reply, &parked, sizeof(parked)) != sizeof(parked))
				_exit(3);
			continue;
		}
		case 'e':
			close(park[1]);
			for (int i = 0; i < n_threads; i++)
				pthread_join(th[i], NULL);
			break;
		}
		say(reply, op);
	}
	_exit(0);
}

static struct server server_start(int n_threads, bool own_session, uid_t uid)
{
	struct server s = { 0 };
	int to_child[2], to_parent[2];
	char path[64];
	struct dirent *de;
	DIR *dir;

	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	s.pid = spawn();
	assert_true(s.pid >= 0);
	if (s.pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		server_main(to_child[0], to_parent[1], n_threads, own_session, uid);
	}
	close(to_child[0]);
	close(to_parent[1]);
	s.cmd = to_child[1];
	s.reply = to_parent[0];
	assert_int_equal(hear(s.reply, 5000), 'p');
	/* its threads, for the nice values */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)s.pid);
	dir = opendir(path);
	assert_non_null(dir);
	while ((de = readdir(dir)) && s.n_tids < 40)
		if (atoi(de->d_name) > 0)
			s.tids[s.n_tids++] = atoi(de->d_name);
	closedir(dir);
	s.unattached = look(&s);
	say(s.cmd, 'g');
	assert_int_equal(hear(s.reply, 5000), 'k');
	return s;
}

static void server_do(struct server *s, char op)
{
	say(s->cmd, op);
	assert_int_equal(hear(s->reply, 5000), op);
}

/* 'f' or 'd': the pid of the process it left parked */
static pid_t server_fork(struct server *s, char op)
{
	pid_t pid = 0;

	server_do(s, op);
	assert_int_equal(read(s->reply, &pid, sizeof(pid)), sizeof(pid));
	assert_true(pid > 0);
	return pid;
}

static void server_end(struct server *s)
{
	close(s->cmd);
	close(s->reply);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
}

/* A donor (this process: uid 0 is a donor by --donor-uid) queues a
 * message for the server: that boosts it. */
static impc *donor_send(void)
{
	impc *d;
	uint64_t port;
	bool donor;

	assert_int_equal(impc_connect(sock, 0, &d, &donor), 0);
	assert_true(donor);
	assert_int_equal(impc_lookup(d, "svc", &port), 0);
	assert_int_equal(impc_send(d, port, "x", 1, 0, 0, 0, NULL), 0);
	return d;
}

/* ------------------------------------------------------------------ */
/* what the scheduler sees                                              */
/* ------------------------------------------------------------------ */

static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static struct seen look(const struct server *s)
{
	struct seen v;
	char path[512], buf[512];
	FILE *f;

	memset(&v, 0, sizeof(v));
	for (int i = 0; i < s->n_tids; i++) {
		errno = 0;
		v.nice[i] = getpriority(PRIO_PROCESS, (id_t)s->tids[i]);
	}
	v.ioprio = (int)syscall(SYS_ioprio_get, 1, s->pid);
	snprintf(path, sizeof(path), "/proc/%d/timerslack_ns", (int)s->pid);
	if (read_line(path, buf, sizeof(buf)) == 0)
		v.slack = strtoul(buf, NULL, 10);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)s->pid);
	if ((f = fopen(path, "re"))) {
		while (fgets(buf, sizeof(buf), f)) {
			char *p = strstr(buf, ":cpu:");

			if (!p)
				p = strstr(buf, ":cpu,");
			if (p) {
				p = strchr(p + 1, ':');
				snprintf(v.cpu_cgroup, sizeof(v.cpu_cgroup), "%s", p + 1);
				v.cpu_cgroup[strcspn(v.cpu_cgroup, "\n")] = '\0';
			}
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu%s/cpu.shares", v.cpu_cgroup);
	if (v.cpu_cgroup[0] && read_line(path, buf, sizeof(buf)) == 0)
		v.shares = strtoul(buf, NULL, 10);
	snprintf(path, sizeof(path), "/proc/%d/autogroup", (int)s->pid);
	if (read_line(path, buf, sizeof(buf)) == 0)
		sscanf(buf, "/autogroup-%*u nice %d", &v.autogroup_nice);
	return v;
}

static void assert_same(const struct seen *a, const struct seen *b)
{
	for (int i = 0; i < 40; i++)
		assert_int_equal(a->nice[i], b->nice[i]);
	assert_int_equal(a->ioprio, b->ioprio);
	assert_int_equal(a->slack, b->slack);
	assert_string_equal(a->cpu_cgroup, b->cpu_cgroup);
	assert_int_equal(a->shares, b->shares);
	assert_int_equal(a->autogroup_nice, b->autogroup_nice);
}

static bool is_boosted(const char *kind, const struct seen *v, const struct server *s)
{
	if (v->ioprio != IOPRIO_BE4 || v->slack != 50000)
		return false;
	if (!strcmp(kind, "cgroup-v1")) /* its leaf, or its own autogroup in the root */
		return (!strncmp(v->cpu_cgroup, "/importanced-", 13) && v->shares == 10240) ||
		       (!strcmp(v->cpu_cgroup, "/") && v->autogroup_nice == -10);
	if (!strcmp(kind, "autogroup"))
		return v->autogroup_nice == -10;
	for (int i = 0; i < s->n_tids; i++)
		if (v->nice[i] != BOOST_NICE)
			return false;
	return true;
}

static void wait_boosted(const char *kind, const struct server *s, bool want)
{
	for (int i = 0; i < 300; i++) {
		struct seen v = look(s);

		if (is_boosted(kind, &v, s) == want)
			return;
		sleep_ms(10);
	}
	fail_msg("%s: server %s boosted", kind, want ? "never" : "still");
}

static void wait_same(const struct server *s, const struct seen *before)
{
	struct seen v;

	for (int i = 0; i < 300; i++) {
		v = look(s);
		if (!memcmp(&v, before, sizeof(v)))
			return;
		sleep_ms(10);
	}
	assert_same(&v, before);
}

static bool have_cgroup_v1_cpu(void)
{
	return access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) == 0;
}

static bool have_autogroup(void)
{
	char buf[8];

	return read_line("/proc/sys/kernel/sched_autogroup_enabled", buf, sizeof(buf)) == 0 && buf[0] == '1';
}

/* ------------------------------------------------------------------ */
/* the tests                                                            */
/* ------------------------------------------------------------------ */

/* One backend through every way a boost ends, the server in a session of
 * its own or sharing the test's. */
static void exercise(const char *kind, bool own_session)
{
	struct server s;
	struct seen attached, v;
	impc *d;

	daemon_start(kind, NULL);
	s = server_start(3, own_session, 0);
	assert_int_equal(s.unattached.nice[0], SERVER_NICE);
	assert_int_equal(s.unattached.ioprio, IOPRIO_IDLE);
	assert_int_equal(s.unattached.slack, SERVER_SLACK);
	attached = look(&s);
	if (!strcmp(kind, "cgroup-v1"))
		/* being a receiver moves nothing: only a donor's boost does */
		assert_string_equal(attached.cpu_cgroup, s.unattached.cpu_cgroup);

	/* boost, unboost */
	print_message("%s: boost, unboost%s\n", kind, own_session ? " (a session of its own)" : "");
	d = donor_send();
	wait_boosted(kind, &s, true);
	v = look(&s);
	if (!strcmp(kind, "cgroup-v1") && !own_session)
		/* sharing a session in the cpu root: nice at once, and its leaf
		 * once the boost lasts (cgroup-leaf-delay-ms) */
		assert_int_equal(v.nice[0], BOOST_NICE);
	else if (strcmp(kind, "nice"))
		assert_int_equal(v.nice[0], SERVER_NICE); /* the group does it, not nice */
	server_do(&s, 'r');
	server_do(&s, 'v');
	/* unboosted, exactly where it was (cgroup-v1: back from its leaf, or
	 * its own autogroup's nice put back) */
	wait_same(&s, &attached);
	impc_close(d);

	/* boosted, the donor exits: its queued message goes, and the boost */
	print_message("%s: donor exits while the server is boosted\n", kind);
	{
		int end[2];
		pid_t donor;
		char c;

		assert_int_equal(pipe(end), 0);
		donor = spawn();
		if (donor == 0) {
			close(end[1]);
			donor_send();
			if (read(end[0], &c, 1) < 0)
				_exit(1);
			_exit(0); /* without closing: the process just ends */
		}
		wait_boosted(kind, &s, true);
		close(end[1]);
		waitpid(donor, NULL, 0);
		close(end[0]);
		wait_same(&s, &attached);
	}

	/* boosted, the daemon stopped: it puts everything back on its way out */
	print_message("%s: daemon stopped while boosted\n", kind);
	d = donor_send();
	wait_boosted(kind, &s, true);
	daemon_stop(SIGTERM);
	impc_close(d);
	wait_same(&s, &s.unattached);
	server_end(&s);

	/* boosted, the receiver leaves the daemon (its process lives on) */
	print_message("%s: receiver disconnects while boosted\n", kind);
	daemon_start(kind, NULL);
	s = server_start(3, own_session, 0);
	d = donor_send();
	wait_boosted(kind, &s, true);
	server_do(&s, 'c');
	wait_same(&s, &s.unattached);
	impc_close(d);
	server_end(&s);

	/* boosted, the daemon killed: still boosted; a new daemon restores it */
	print_message("%s: daemon killed while boosted, started again\n", kind);
	s = server_start(3, own_session, 0);
	d = donor_send();
	wait_boosted(kind, &s, true);
	daemon_stop(SIGKILL);
	impc_close(d);
	sleep_ms(100);
	v = look(&s);
	assert_true(is_boosted(kind, &v, &s));
	daemon_start(kind, NULL);
	wait_same(&s, &s.unattached);
	daemon_stop(SIGTERM);
	server_end(&s);
}

static void test_cgroup_v1(void **state)
{
	(void)state;
	if (!have_cgroup_v1_cpu())
		skip();
	exercise("cgroup-v1", false); /* through a leaf */
	exercise("cgroup-v1", true);  /* through its own autogroup */
}

static void test_autogroup(void **state)
{
	(void)state;
	if (!have_autogroup())
		skip();
	exercise("autogroup", true);
}

static void test_nice(void **state)
{
	(void)state;
	exercise("nice", false);
}

/* Asked for by name, a backend that cannot work stops the daemon with the
 * reason; so does a value out of range. */
static void test_refused(void **state)
{
	const char *args[] = { "--backend", NULL, NULL };
	struct { const char *policy, *extra, *says; } cases[] = {
		{ "cgroup-v2", NULL, "cgroup v2" },
		{ "nice", "--boost-nice -21", "boost-nice: -21 is out of range" },
		{ "cgroup-v1", "--cgroup-root /tmp/not-a-cgroup", "is not under" },
		{ "bogus", NULL, "is not one of auto" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[2048] = "";
		int status;
		FILE *f;
		size_t n;
		pid_t p;

		if (!strcmp(cases[i].policy, "cgroup-v2") &&
		    access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0) {
			read_line("/sys/fs/cgroup/unified/cgroup.controllers", buf, sizeof(buf));
			if (strstr(buf, "cpu ") || (strlen(buf) >= 3 && !strcmp(buf + strlen(buf) - 3, "cpu")))
				continue; /* it can work here */
		}
		if (!strcmp(cases[i].policy, "cgroup-v1") && !have_cgroup_v1_cpu())
			continue;
		unlink(log_path);
		args[1] = cases[i].policy;
		p = daemon_exec(args, cases[i].extra, O_TRUNC);
		assert_int_equal(waitpid(p, &status, 0), p);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 2);
		f = fopen(log_path, "re");
		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		if (!strstr(buf, cases[i].says))
			fail_msg("policy %s %s: \"%s\" not in: %s", cases[i].policy,
				 cases[i].extra ? cases[i].extra : "", cases[i].says, buf);
	}
}

/* Whether the daemons' log so far says `what`. */
static bool log_says(const char *what)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(log_path, "re");

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, what) != NULL;
}

static void wait_nice(pid_t tid, int want)
{
	for (int i = 0; i < 300 && getpriority(PRIO_PROCESS, (id_t)tid) != want; i++)
		sleep_ms(10);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)tid), want);
}

/* A renice an administrator makes during a boost is theirs at the
 * unboost (the nice backend through a real daemon), and the log says so. */
static void test_renice_kept(void **state)
{
	struct server s;
	impc *d;

	(void)state;
	unlink(log_path);
	daemon_start("nice", NULL);
	s = server_start(3, false, 0);
	d = donor_send();
	wait_boosted("nice", &s, true);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)s.tids[0], 15), 0);
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)s.tids[1], -15), 0);
	server_do(&s, 'r');
	server_do(&s, 'v');
	wait_nice(s.tids[2], SERVER_NICE); /* ours: put back */
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)s.tids[0]), 15);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)s.tids[1]), -15);
	impc_close(d);
	daemon_stop(SIGTERM);
	assert_true(log_says("changed by someone else during the boost"));
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)s.tids[0]), 15);
	server_end(&s);
}

/* OTHER_USER's uid, the user made if missing (the test is skipped if it cannot be) */
static uid_t other_uid(void)
{
	struct passwd *pw;

	if (!getpwnam(OTHER_USER) && system("useradd -M " OTHER_USER " 2>/dev/null") != 0)
		skip();
	assert_non_null(pw = getpwnam(OTHER_USER));
	return pw->pw_uid;
}

/* A fresh daemon (nice backend) and a server of OTHER_USER, boosted by
 * a donor's message (*d). */
static struct server other_boosted(impc **d)
{
	uid_t uid = other_uid();
	struct server s;

	unlink(log_path);
	daemon_start("nice", NULL);
	s = server_start(3, false, uid);
	*d = donor_send();
	wait_boosted("nice", &s, true);
	return s;
}

/* The attack on the "kept" rule: a receiver of another uid (no
 * CAP_SYS_NICE, RLIMIT_NICE 0: it cannot go below its nice 10 on its own)
 * raises its nice from the boost's -10 to 0 while boosted, to keep 0 after
 * the unboost.  That value is put back, and the log says so. */
static void test_own_renice_put_back(void **state)
{
	struct server s;
	impc *d;

	(void)state;
	s = other_boosted(&d);
	server_do(&s, 'n');
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)s.pid), 0);
	server_do(&s, 'r');
	server_do(&s, 'v');
	wait_nice(s.pid, SERVER_NICE);
	impc_close(d);
	daemon_stop(SIGTERM);
	assert_true(log_says("than the process may set itself"));
	server_end(&s);
}

/* Issue 15 (8), the double fork: a receiver of another uid at nice 10
 * forks a child and double-forks a grandchild (reparented to init) while
 * it is boosted; both are born at the boost's nice and I/O priority, and
 * both are back at nice 10 and the idle I/O class after the unboost. */
static void test_double_fork_put_back(void **state)
{
	struct server s;
	pid_t child, grandchild;
	impc *d;

	(void)state;
	s = other_boosted(&d);
	server_do(&s, 'r');
	child = server_fork(&s, 'f');
	grandchild = server_fork(&s, 'd');
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)child), BOOST_NICE);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)grandchild), BOOST_NICE);
	assert_int_equal((int)syscall(SYS_ioprio_get, 1, grandchild), IOPRIO_BE4);
	server_do(&s, 'v');
	wait_nice(s.pid, SERVER_NICE);
	wait_nice(child, SERVER_NICE);
	wait_nice(grandchild, SERVER_NICE);
	assert_int_equal((int)syscall(SYS_ioprio_get, 1, child), IOPRIO_IDLE);
	assert_int_equal((int)syscall(SYS_ioprio_get, 1, grandchild), IOPRIO_IDLE);
	impc_close(d);
	daemon_stop(SIGTERM);
	assert_false(log_says("forks during a boost are not followed"));
	kill(child, SIGKILL);
	kill(grandchild, SIGKILL);
	server_end(&s);
}

/* A server of uid in a background band at nice 15 (the daemon's keys):
 * in it at HELLO, lifted by a boost, back in it after the unboost, back at
 * its own nice when it disconnects. */
static void band_cycle(uid_t uid)
{
	struct server s = server_start(3, false, uid);
	impc *d;

	for (int i = 0; i < s.n_tids; i++)
		wait_nice(s.tids[i], 15);
	d = donor_send();
	wait_boosted("nice", &s, true);
	server_do(&s, 'r');
	server_do(&s, 'v');
	for (int i = 0; i < s.n_tids; i++)
		wait_nice(s.tids[i], 15);
	impc_close(d);
	server_do(&s, 'c');
	for (int i = 0; i < s.n_tids; i++)
		wait_nice(s.tids[i], SERVER_NICE);
	server_end(&s);
}

static pid_t occupy(pid_t want);

/* The attack on the fork tracker's records: a receiver of another uid,
 * boosted, double-forks a grandchild, which is killed; its pid goes to a
 * root-owned process at the boost's nice, started during the boost.  The
 * unboost puts back what the receiver's boost lent, never that process:
 * its record went with the grandchild, and its start time and uids are
 * not the recorded ones. */
static void test_born_pid_reuse(void **state)
{
	struct server s;
	pid_t grandchild, victim;
	char path[64];
	impc *d;

	(void)state;
	s = other_boosted(&d);
	server_do(&s, 'r');
	grandchild = server_fork(&s, 'd');
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)grandchild), BOOST_NICE);
	kill(grandchild, SIGKILL);
	snprintf(path, sizeof(path), "/proc/%d", (int)grandchild);
	for (int i = 0; i < 300 && access(path, F_OK) == 0; i++)
		sleep_ms(10); /* init reaps it */
	if (!(victim = occupy(grandchild))) {
		server_end(&s);
		skip();
	}
	sleep_ms(100); /* occupy's child has set its own nice (0) by now */
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)victim, BOOST_NICE), 0);
	sleep_ms(50);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)victim), BOOST_NICE);
	server_do(&s, 'v');
	wait_nice(s.pid, SERVER_NICE);
	sleep_ms(100);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)victim), BOOST_NICE);
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	impc_close(d);
	daemon_stop(SIGTERM);
	server_end(&s);
}

/* receiver-background through a real daemon: a receiver's threads go
 * into the band at HELLO, a boost lifts them, the unboost puts them back
 * in the band, and disconnecting puts back its own nice. */
static void test_background_band(void **state)
{
	(void)state;
	daemon_start("nice", "--receiver-background yes --receiver-background-nice 15");
	band_cycle(0);
	daemon_stop(SIGTERM);
}

/* The band per receiver rule: with receiver-background-uid OTHER_USER,
 * a receiver of that uid goes into the band at HELLO and back into it
 * after a boost, and one of root is scheduled as without importanced. */
static void test_background_band_per_rule(void **state)
{
	uid_t uid = other_uid();
	struct server s;
	char extra[128];
	impc *d;

	(void)state;
	snprintf(extra, sizeof(extra), "--receiver-background-uid %s --receiver-background-nice 15", OTHER_USER);
	daemon_start("nice", extra);
	band_cycle(uid);

	s = server_start(3, false, 0);
	d = donor_send();
	wait_boosted("nice", &s, true);
	server_do(&s, 'r');
	server_do(&s, 'v');
	wait_same(&s, &s.unattached);
	impc_close(d);
	daemon_stop(SIGTERM);
	server_end(&s);
}

static void cpu_write(const char *dir, const char *file, const char *fmt, long v)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu/%s/%s", dir, file);
	assert_non_null(f = fopen(path, "we"));
	fprintf(f, fmt, v);
	assert_int_equal(fclose(f), 0);
}

/* The daemon's moves are its mover thread's: the receiver is there soon. */
static void wait_cgroup(const struct server *s, const char *want)
{
	struct seen v = look(s);

	for (int i = 0; i < 300 && strcmp(v.cpu_cgroup, want); i++) {
		sleep_ms(10);
		v = look(s);
	}
	assert_string_equal(v.cpu_cgroup, want);
}

/* The lingering leaf through a real daemon (cgroup-leaf-linger-ms 600):
 * a receiver alone in a top-level cgroup of its own, unboosted, stays in
 * its leaf at that cgroup's weight, a boost then is a write on the leaf,
 * and after the linger it is back in its cgroup. */
static void test_leaf_lingers(void **state)
{
	const char *own = "importanced-e2e-own";
	char dir[200], leaf[256];
	struct server s;
	struct seen v;
	impc *d;

	(void)state;
	if (!have_cgroup_v1_cpu())
		skip();
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/cpu/%s", own);
	rmdir(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	cpu_write(own, "cpu.shares", "%ld", 700);
	daemon_start("cgroup-v1", "--cgroup-leaf-linger-ms 600");
	s = server_start(3, false, 0);
	cpu_write(own, "cgroup.procs", "%ld", (long)s.pid);
	d = donor_send();
	wait_boosted("cgroup-v1", &s, true); /* into its leaf */
	v = look(&s);
	snprintf(leaf, sizeof(leaf), "%s", v.cpu_cgroup);
	assert_true(!strncmp(leaf, "/importanced-", 13));
	server_do(&s, 'r');
	server_do(&s, 'v');
	for (int i = 0; i < 100 && (v = look(&s)).shares != 700; i++)
		sleep_ms(2);
	assert_string_equal(v.cpu_cgroup, leaf); /* lingering, at its own weight */
	assert_int_equal(v.shares, 700);
	assert_int_equal(v.nice[0], SERVER_NICE);
	impc_close(d);
	wait_cgroup(&s, "/importanced-e2e-own");
	v = look(&s);
	assert_int_equal(v.shares, 700);
	daemon_stop(SIGTERM);
	server_end(&s);
	sleep_ms(20);
	assert_int_equal(rmdir(dir), 0);
}

/* Issue 15.6 through a real daemon: a receiver whose cgroup gets a CPU
 * quota after it said HELLO and after a first boost is boosted through
 * nice from then on and never leaves the quota's cgroup; without the
 * quota, unboosted, it is back in that cgroup. */
static void test_quota_followed(void **state)
{
	const char *jail = "importanced-e2e-jail";
	char dir[200];
	struct server s;
	struct seen v;
	impc *d;

	(void)state;
	if (!have_cgroup_v1_cpu())
		skip();
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/cpu/%s", jail);
	rmdir(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	unlink(log_path);
	daemon_start("cgroup-v1", NULL);
	s = server_start(3, false, 0);
	cpu_write(jail, "cgroup.procs", "%ld", (long)s.pid);
	v = look(&s);
	assert_string_equal(v.cpu_cgroup, "/importanced-e2e-jail");

	d = donor_send();
	wait_boosted("cgroup-v1", &s, true); /* into its leaf */
	server_do(&s, 'r');
	server_do(&s, 'v');
	wait_boosted("cgroup-v1", &s, false);
	wait_cgroup(&s, "/importanced-e2e-jail");
	impc_close(d);

	cpu_write(jail, "cpu.cfs_quota_us", "%ld", 10000);
	d = donor_send();
	wait_nice(s.tids[0], BOOST_NICE);
	v = look(&s);
	assert_string_equal(v.cpu_cgroup, "/importanced-e2e-jail");
	server_do(&s, 'r');
	server_do(&s, 'v');
	wait_nice(s.tids[0], SERVER_NICE);
	v = look(&s);
	assert_string_equal(v.cpu_cgroup, "/importanced-e2e-jail");
	assert_true(log_says("cpu.cfs_quota_us is 10000 in /importanced-e2e-jail: boosted through nice"));
	impc_close(d);
	daemon_stop(SIGTERM);
	server_end(&s);
	sleep_ms(20);
	assert_int_equal(rmdir(dir), 0);
}

/* A process of ours made to take pid `want` (through ns_last_pid), parked
 * at nice 0; 0 when another process took the pid first. */
static pid_t occupy(pid_t want)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");
		pid_t p;

		if (!f)
			return 0;
		fprintf(f, "%d", (int)want - 1);
		fclose(f);
		p = spawn();
		if (p == 0) {
			setpriority(PRIO_PROCESS, 0, 0);
			pause();
			_exit(0);
		}
		if (p == want)
			return p;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	return 0;
}

/*
 * The thread id attack: a client of another uid with 32 threads is
 * boosted, its threads exit, and root-owned processes take their ids.
 * Neither its unboost nor its disconnect may renice them.
 */
static void test_tid_reuse(void **state)
{
	struct server s;
	pid_t victims[40];
	int n_victims = 0;
	struct passwd *pw;
	impc *d;

	(void)state;
	if (!getpwnam(OTHER_USER) && system("useradd -M " OTHER_USER " 2>/dev/null") != 0)
		skip();
	pw = getpwnam(OTHER_USER);
	assert_non_null(pw);
	daemon_start("nice", NULL);
	for (int round = 0; round < 2; round++) {
		s = server_start(32, false, pw->pw_uid);
		assert_int_equal(s.n_tids, 33);
		d = donor_send();
		wait_boosted("nice", &s, true);
		server_do(&s, 'e'); /* the 32 threads exit; their ids are free */
		for (int i = 1; i < s.n_tids; i++) {
			pid_t v = occupy(s.tids[i]);

			if (v)
				victims[n_victims++] = v;
		}
		assert_true(n_victims >= 16); /* most ids taken by root-owned processes */
		if (round == 0) {
			server_do(&s, 'r'); /* unboost */
			server_do(&s, 'v');
		} else {
			server_do(&s, 'c'); /* disconnect while boosted */
		}
		impc_close(d);
		sleep_ms(200);
		for (int i = 0; i < n_victims; i++)
			assert_int_equal(getpriority(PRIO_PROCESS, (id_t)victims[i]), 0);
		/* and the client itself is back where it was */
		assert_int_equal(getpriority(PRIO_PROCESS, (id_t)s.pid), SERVER_NICE);
		for (int i = 0; i < n_victims; i++) {
			kill(victims[i], SIGKILL);
			waitpid(victims[i], NULL, 0);
		}
		n_victims = 0;
		server_end(&s);
	}
	daemon_stop(SIGTERM);
}

/* A client that never waits: one thread writes status requests without
 * end, another reads the replies. */
static void *drain(void *arg)
{
	char buf[4096];

	while (recv(*(int *)arg, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

static void flood_main(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct { struct impp_header h; struct impp_req_hello q; } __attribute__((packed)) hello = {
		{ IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) }, { IMPP_VERSION, IMPP_HELLO_MONITOR } };
	struct impp_header status = { IMPP_MAGIC, IMPP_REQ_STATUS, 0, 2, 0 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	pthread_t th;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(fd, &hello, sizeof(hello), 0) < 0)
		_exit(1);
	pthread_create(&th, NULL, drain, &fd);
	while (send(fd, &status, sizeof(status), 0) > 0)
		status.serial++;
	_exit(0);
}

/*
 * importanced runs at SCHED_FIFO so that boosts are applied at once; a
 * flood of requests that keeps it from ever sleeping must not let it
 * starve the machine: it steps down to SCHED_OTHER, and back up once the
 * flood is over.
 */
static void test_flood_steps_down(void **state)
{
	pid_t flooders[4];
	int other = 0, policy;

	(void)state;
	daemon_start("nice", "--daemon-rt-budget-us 20000");
	assert_int_equal(sched_getscheduler(daemon_pid) & ~SCHED_RESET_ON_FORK, SCHED_FIFO);
	for (int i = 0; i < 4; i++)
		if ((flooders[i] = spawn()) == 0)
			flood_main();
	for (int i = 0; i < 150 && !other; i++) {
		other = (sched_getscheduler(daemon_pid) & ~SCHED_RESET_ON_FORK) == SCHED_OTHER;
		sleep_ms(10);
	}
	for (int i = 0; i < 4; i++) {
		kill(flooders[i], SIGKILL);
		waitpid(flooders[i], NULL, 0);
	}
	assert_true(other);
	for (int i = 0; i < 300; i++) {
		policy = sched_getscheduler(daemon_pid) & ~SCHED_RESET_ON_FORK;
		if (policy == SCHED_FIFO)
			break;
		sleep_ms(10);
	}
	assert_int_equal(policy, SCHED_FIFO);
	daemon_stop(SIGTERM);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_refused, cleanup),
		cmocka_unit_test_teardown(test_nice, cleanup),
		cmocka_unit_test_teardown(test_cgroup_v1, cleanup),
		cmocka_unit_test_teardown(test_autogroup, cleanup),
		cmocka_unit_test_teardown(test_tid_reuse, cleanup),
		cmocka_unit_test_teardown(test_flood_steps_down, cleanup),
		cmocka_unit_test_teardown(test_renice_kept, cleanup),
		cmocka_unit_test_teardown(test_own_renice_put_back, cleanup),
		cmocka_unit_test_teardown(test_double_fork_put_back, cleanup),
		cmocka_unit_test_teardown(test_born_pid_reuse, cleanup),
		cmocka_unit_test_teardown(test_background_band, cleanup),
		cmocka_unit_test_teardown(test_background_band_per_rule, cleanup),
		cmocka_unit_test_teardown(test_quota_followed, cleanup),
		cmocka_unit_test_teardown(test_leaf_lingers, cleanup),
	};
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-backends: needs root (cgroups, other uids, ns_last_pid)\n");
		return 77;
	}
	daemon_bin = argv[1];
	snprintf(sock, sizeof(sock), "/tmp/importanced-backends.%d.sock", (int)getpid());
	snprintf(state_dir, sizeof(state_dir), "/tmp/importanced-backends.%d.state", (int)getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/importanced-backends.%d.log", (int)getpid());
	r = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char lock[160];

		snprintf(lock, sizeof(lock), "%s/lock", state_dir);
		unlink(lock);
		rmdir(state_dir);
	}
	if (r)
		fprintf(stderr, "test-backends: the daemons' output is in %s\n", log_path);
	else
		unlink(log_path);
	return r;
}

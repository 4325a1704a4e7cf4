/*
 * Why a process is boosted, against a real importanced: `impctl why PID`
 * names the donor behind each boost (a message queued for the receiver,
 * then the voucher it holds), says only what the asker's uid may see,
 * and the boost log carries the same: a line on stderr, and fields of
 * their own in a real systemd-journald (run in a private mount namespace,
 * the daemon's stderr named by JOURNAL_STREAM as systemd names a unit's).
 * Needs root; skips (77) without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "e2e.h"
#include "importance/client.h"

static uid_t auid; /* the receiver's uid */
static gid_t agid;
static char dir[64];

/* The receiver: uid auid at nice 10, port "why.rx"; 'r' receives with a
 * voucher, 'x' releases it; each step answered with 'k' (or 'e'). */
static pid_t receiver(int *cmd, int *reply)
{
	int to[2], from[2];
	pid_t pid;

	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	pid = e2e_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t port, voucher = 0;
		impc_message m;
		impc *c;
		char op;

		setpriority(PRIO_PROCESS, 0, 10);
		e2e_become(auid, agid);
		if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
		    impc_register(c, "why.rx", port) < 0)
			_exit(5);
		e2e_say(from[1], 'k');
		while ((op = e2e_hear(to[0], -1))) {
			int e = 0;

			if (op == 'r' && (e = impc_receive(c, port, 5000, IMPC_RECV_VOUCHER, &m)) == 0) {
				free(m.data);
				voucher = m.voucher;
			} else if (op == 'x') {
				e = impc_voucher_release(c, voucher);
			}
			e2e_say(from[1], e < 0 ? 'e' : 'k');
		}
		_exit(0);
	}
	close(to[0]);
	close(from[1]);
	assert_int_equal(e2e_hear(from[0], 5000), 'k');
	*cmd = to[1];
	*reply = from[0];
	return pid;
}

/* impctl why pid as uid (0: root), its output in out; its exit status. */
static int why(uid_t uid, pid_t pid, char *out, size_t size)
{
	char as[96] = "", cmd[512];
	size_t n;
	FILE *f;
	int status;

	if (uid)
		snprintf(as, sizeof(as), "setpriv --reuid=%u --regid=%u --clear-groups ", (unsigned)uid, (unsigned)uid);
	snprintf(cmd, sizeof(cmd), "%s%s/impctl --socket %s why %d 2>&1", as,
		 getenv("IMPCTL_DIR") ? getenv("IMPCTL_DIR") : ".", e2e_sock, (int)pid);
	assert_non_null(f = popen(cmd, "r"));
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The daemon with its stderr into dir/daemon.log. */
static void start_logged(const char *extra, char *log, size_t size)
{
	int saved;

	snprintf(log, size, "%s/daemon.log", dir);
	saved = e2e_stderr_to(log);
	e2e_start_daemon(extra);
	e2e_stderr_back(saved);
}

static bool file_has(const char *path, const char *what)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, what) != NULL;
}

/* A message queued, then a voucher held: each named, with its donor. */
static void test_why(void **state)
{
	char out[4096], want[128], log[128];
	int cmd, reply;
	uint64_t port;
	impc *c;
	pid_t rx;

	(void)state;
	start_logged("--verbose --donor-uid 0", log, sizeof(log));
	rx = receiver(&cmd, &reply);
	assert_int_equal(impc_connect(e2e_sock, 0, &c, NULL), 0);
	assert_int_equal(impc_lookup(c, "why.rx", &port), 0);

	/* not boosted yet */
	assert_int_equal(why(0, rx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "not boosted"));

	assert_int_equal(impc_send(c, port, "work", 4, 0, 0, 0, NULL), 0);
	assert_true(e2e_wait_nice(rx, -10, 2000) >= 0);
	assert_int_equal(why(0, rx, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "a message queued on one of its ports, from pid %d (uid 0, ipc)", (int)getpid());
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, ": boosted"));

	/* received with a voucher: the boost is the voucher's now */
	e2e_say(cmd, 'r');
	assert_int_equal(e2e_hear(reply, 5000), 'k');
	assert_int_equal(why(0, rx, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "a voucher it holds, from pid %d (uid 0, ipc)", (int)getpid());
	assert_non_null(strstr(out, want));
	assert_null(strstr(out, "a message queued"));

	/* the receiver's own uid sees its task, not who the donor is */
	assert_int_equal(why(auid, rx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "a voucher it holds, from a task of another uid"));
	assert_null(strstr(out, want));
	/* a third uid sees nothing of it */
	assert_int_equal(why(65534, rx, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no task of pid"));
	/* bad input: a clear error, before any connection */
	assert_int_equal(why(0, 0, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "why's PID"));

	e2e_say(cmd, 'x');
	assert_int_equal(e2e_hear(reply, 5000), 'k');
	assert_true(e2e_wait_nice(rx, 10, 2000) >= 0);
	assert_int_equal(why(0, rx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "not boosted"));

	/* the log said the same */
	snprintf(want, sizeof(want), "importanced: pid %d boost: applied (nice -10); uid %u, ipc, from %d/ipc",
		 (int)rx, (unsigned)auid, (int)getpid());
	assert_true(file_has(log, want));
	snprintf(want, sizeof(want), "importanced: pid %d unboost: applied (nice 10)", (int)rx);
	assert_true(file_has(log, want));
	impc_close(c);
	close(cmd);
	close(reply);
	e2e_stop_daemon();
}

/* The same boost in a real journal, as fields journalctl matches on. */
static void test_journal(void **state)
{
	char log[128], env[64], cmd[256], out[8192], want[64];
	struct stat st;
	int cmdfd, reply, saved;
	uint64_t port;
	pid_t jd, rx;
	impc *c;
	size_t n;
	FILE *f;

	(void)state;
	/* this process and its children (journald, importanced) get their
	 * own /run/systemd/journal and /run/log: the machine's are not touched */
	assert_int_equal(unshare(CLONE_NEWNS), 0);
	assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	assert_int_equal(mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"), 0);
	mkdir("/run/systemd", 0755);
	mkdir("/run/systemd/journal", 0755);
	jd = e2e_fork();
	assert_true(jd >= 0);
	if (jd == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execl("/lib/systemd/systemd-journald", "systemd-journald", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && access("/run/systemd/journal/socket", F_OK) < 0; i++)
		usleep(20000);
	assert_int_equal(access("/run/systemd/journal/socket", F_OK), 0);

	snprintf(log, sizeof(log), "%s/daemon.log", dir);
	saved = e2e_stderr_to(log);
	assert_int_equal(fstat(2, &st), 0);
	snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	e2e_start_daemon("--verbose --donor-uid 0");
	e2e_stderr_back(saved);
	unsetenv("JOURNAL_STREAM");

	rx = receiver(&cmdfd, &reply);
	assert_int_equal(impc_connect(e2e_sock, 0, &c, NULL), 0);
	assert_int_equal(impc_lookup(c, "why.rx", &port), 0);
	assert_int_equal(impc_send(c, port, "work", 4, 0, 0, 0, NULL), 0);
	assert_true(e2e_wait_nice(rx, -10, 2000) >= 0);

	snprintf(cmd, sizeof(cmd),
		 "journalctl --no-pager -o verbose IMPORTANCE_EVENT=boost IMPORTANCE_PID=%d IMPORTANCE_SOURCE=ipc",
		 (int)rx);
	out[0] = '\0';
	for (int i = 0; i < 50 && !strstr(out, "IMPORTANCE_DONORS"); i++) {
		usleep(50000);
		assert_non_null(f = popen(cmd, "r"));
		n = fread(out, 1, sizeof(out) - 1, f);
		out[n] = '\0';
		pclose(f);
	}
	snprintf(want, sizeof(want), "IMPORTANCE_DONORS=%d/ipc", (int)getpid());
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "IMPORTANCE_UID=%u", (unsigned)auid);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "IMPORTANCE_BACKEND=nice"));
	assert_non_null(strstr(out, "IMPORTANCE_VALUE=-10"));
	assert_non_null(strstr(out, "IMPORTANCE_RESULT=applied"));
	/* and not on stderr: the journal has it */
	assert_false(file_has(log, "boost: applied"));

	impc_close(c);
	close(cmdfd);
	close(reply);
	e2e_stop_daemon();
	kill(jd, SIGTERM);
	waitpid(jd, NULL, 0);
}

static int cleanup(void **state)
{
	char cmd[128];

	e2e_teardown(state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test-why: could not remove %s\n", dir);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_why, e2e_teardown),
		cmocka_unit_test_teardown(test_journal, e2e_teardown),
	};
	int failed;

	if (argc < 2) {
		fprintf(stderr, "usage: test-why IMPORTANCED\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-why: needs root (a second uid, a private journal)\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
	e2e_attacker(&auid, &agid);
	snprintf(dir, sizeof(dir), "/tmp/imp-why.%d", (int)getpid());
	mkdir(dir, 0700);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	cleanup(NULL);
	return failed;
}

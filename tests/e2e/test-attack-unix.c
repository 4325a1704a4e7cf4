/*
 * Attacks on the Unix-socket source from an unprivileged second uid
 * (impattack): a real importanced with `--unix yes` as root, real
 * redis-server.  The second uid is no donor; whatever it sends, floods or
 * asks for, it must cause no boost, and must not take a donor's away.
 * Needs root; skips (77) without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "e2e.h"

#define E2E_UNIX_NAME "attack"
#include "e2e-unix.h"

#include "../../daemon/bpf/unix.h" /* unix_filter_slot: the kernel half's filters */

/* ------------------------------------------------------------------ */

static pid_t flood(const char *sock, uid_t uid, int n)
{
	pid_t pid = e2e_fork();
	char count[16];

	snprintf(count, sizeof(count), "%d", n);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		e2e_become(uid ? auid : duid, uid ? agid : dgid);
		execlp("redis-benchmark", "redis-benchmark", "-s", sock, "-n", count, "-c", "8", "-q", "-t", "ping",
		       (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The second uid's requests, to a receiver of root's at nice 10 and to
 * its own redis: no boost, ever. */
static void test_nondonor_requests(void **state)
{
	char sock[128], path[128];
	struct server sv = { .type = SOCK_STREAM, .listening = true, .answer = true, .ms = 800 };
	pid_t srv, cli, pid, rq;
	int fd;

	(void)state;
	make_dir();
	start_daemon("");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	cli = redis_cli(sock, auid, "DEBUG", "SLEEP", "1");
	assert_int_equal(e2e_wait_nice(srv, BOOSTED, 900), -1);
	assert_int_equal(reap(cli), 0);

	snprintf(path, sizeof(path), "%s/svc.sock", dir);
	sv.fd = listen_on(path, SOCK_STREAM);
	pid = start_server(&sv);
	close(sv.fd);
	rq = e2e_fork();
	if (rq == 0) {
		e2e_become(auid, agid);
		if ((fd = unix_connect(path, SOCK_STREAM)) < 0)
			_exit(4);
		_exit(send(fd, "req", 3, 0) == 3 && recv(fd, path, 4, 0) > 0 ? 0 : 5);
	}
	assert_int_equal(e2e_wait_nice(pid, BOOSTED, 700), -1);
	assert_int_equal(reap(rq), 0);
	assert_int_equal(e2e_nice(pid), BACKGROUND);
	e2e_stop_daemon();
}

/* The second uid cannot make itself a live donor for its sockets. */
static void test_self_donor(void **state)
{
	char sock[128], cmd[1024];
	pid_t srv, cli;

	(void)state;
	make_dir();
	start_daemon("");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	cli = redis_cli(sock, auid, "DEBUG", "SLEEP", "1.2");
	usleep(100000);
	snprintf(cmd, sizeof(cmd), "setpriv --reuid=%u --regid=%u --clear-groups %s/impctl --socket %s donor %d on 2>/dev/null",
		 (unsigned)auid, (unsigned)agid, getenv("IMPCTL_DIR") ? getenv("IMPCTL_DIR") : ".", e2e_sock, (int)cli);
	assert_true(system(cmd) != 0);
	assert_int_equal(e2e_wait_nice(srv, BOOSTED, 800), -1);
	assert_int_equal(reap(cli), 0);
	e2e_stop_daemon();
}

/* A flood from the second uid never reaches the ring buffer (the kernel
 * filters on the sender): a donor's request during it is boosted, and
 * nothing is lost. */
static void test_flood_cannot_drop_boosts(void **state)
{
	char sock[128], log[128];
	pid_t srv, cli, fl;

	(void)state;
	make_dir();
	start_logged(start_daemon, "", log, sizeof(log));
	srv = start_redis("redis.sock", sock, sizeof(sock));
	kill(e2e_daemon_pid, SIGSTOP); /* whatever it sends would pile up now */
	fl = flood(sock, auid, 30000);
	assert_int_equal(reap(fl), 0);
	kill(e2e_daemon_pid, SIGCONT);
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1");
	assert_true(e2e_wait_nice(srv, BOOSTED, 800) >= 0);
	assert_int_equal(reap(cli), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
	e2e_stop_daemon();
	assert_false(log_has(log, "events lost", NULL));
}

/* A child that sleeps until killed (teardown kills what is left). */
static pid_t sleeper(void)
{
	pid_t pid = e2e_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* The kernel half's filters (daemon/bpf/unix.h) say only "maybe" for a
 * slot another key shares: the second uid's redis-cli, whose uid's slot
 * is a donor uid's and whose pid's slot is a live donor's, is judged by
 * the maps behind and boosts nothing; a donor's request still boosts.
 * (The daemon takes the kernel's word for a send let through by a donor
 * rule; one let through as a live donor's or boosted reader's it judges
 * again.) */
static void test_filter_collision(void **state)
{
	char sock[128], extra[64], cmd[512];
	unsigned int uid = 1;
	pid_t srv, cli, donor = 0;
	int go[2];

	(void)state;
	/* a donor uid that is not the second uid's, in its slot */
	while (uid == (unsigned)auid || uid == (unsigned)duid || unix_filter_slot(uid) != unix_filter_slot(auid))
		uid++;
	make_dir();
	snprintf(extra, sizeof(extra), "--donor-uid %u", uid);
	start_daemon(extra);
	srv = start_redis("redis.sock", sock, sizeof(sock));
	assert_int_equal(pipe(go), 0);
	cli = e2e_fork();
	if (cli == 0) {
		char c;
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		close(go[1]);
		e2e_become(auid, agid);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		execlp("redis-cli", "redis-cli", "-s", sock, "DEBUG", "SLEEP", "1", (char *)NULL);
		_exit(127);
	}
	close(go[0]);
	/* a live donor whose pid is in the redis-cli's slot (a few thousand
	 * forks at most) */
	for (int i = 0; i < 20000 && !donor; i++) {
		pid_t p = sleeper();

		if (unix_filter_slot((unsigned)p) == unix_filter_slot((unsigned)cli)) {
			donor = p;
		} else {
			kill(p, SIGKILL);
			waitpid(p, NULL, 0);
		}
	}
	assert_true(donor > 0);
	snprintf(cmd, sizeof(cmd), "%s/impctl --socket %s donor %d on >/dev/null",
		 getenv("IMPCTL_DIR") ? getenv("IMPCTL_DIR") : ".", e2e_sock, (int)donor);
	assert_int_equal(system(cmd), 0);

	e2e_say(go[1], 'g');
	close(go[1]);
	assert_int_equal(e2e_wait_nice(srv, BOOSTED, 900), -1);
	assert_int_equal(reap(cli), 0);
	assert_int_equal(e2e_nice(srv), BACKGROUND);

	/* the filters pass a donor's request as before */
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1");
	assert_true(e2e_wait_nice(srv, BOOSTED, 800) >= 0);
	assert_int_equal(reap(cli), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
	kill(donor, SIGKILL);
	waitpid(donor, NULL, 0);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_nondonor_requests, cleanup),
		cmocka_unit_test_teardown(test_self_donor, cleanup),
		cmocka_unit_test_teardown(test_flood_cannot_drop_boosts, cleanup),
		cmocka_unit_test_teardown(test_filter_collision, cleanup),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-attack-unix: needs root (BPF, a second uid): skipped\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
	e2e_attacker(&auid, &agid);
	donor_user();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

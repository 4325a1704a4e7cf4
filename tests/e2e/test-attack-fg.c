/*
 * Attacks on the foreground (docs/security.md, "The foreground"), as a
 * second uid against a real importanced (--donor-foreground yes): another
 * uid may say what is in front only for its own processes.  It cannot make
 * root's background app a live donor, by pid or by cgroup, nor clear
 * root's foreground; naming its own process is allowed and touches only
 * its own uid's donors.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "e2e.h"
#include "importance/client.h"

#define NICE_SERVER 10

static void become_session(void)
{
	FILE *f = fopen("/proc/self/loginuid", "w");

	if (!f || fprintf(f, "0") < 0 || fclose(f) != 0)
		_exit(3);
}

static void test_other_uid_cannot_steer(void **state)
{
	int to[2], from[2], res[2];
	uint64_t svc = 0, port = 0;
	pid_t server, app, attacker;
	impc *root, *c;
	int got[5];
	uid_t uid;
	gid_t gid;

	(void)state;
	e2e_attacker(&uid, &gid);
	e2e_start_daemon("--donor-foreground yes --donor-uid root --donor-uid impattack");
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	assert_int_equal(pipe(res), 0);
	if ((server = e2e_fork()) == 0) {
		setpriority(PRIO_PROCESS, 0, NICE_SERVER);
		if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
		    impc_register(c, "svc", port) < 0)
			_exit(5);
		e2e_say(from[1], 'K');
		pause();
		_exit(0);
	}
	assert_int_equal(e2e_hear(from[0], 10000), 'K');
	if ((app = e2e_fork()) == 0) { /* root's app, in a session, not in front */
		bool donor;

		become_session();
		if (impc_connect(e2e_sock, 0, &c, &donor) < 0 || !donor)
			_exit(5);
		e2e_say(from[1], 'K');
		e2e_hear(to[0], -1);
		if (impc_lookup(c, "svc", &svc) < 0 || impc_send(c, svc, "work", 4, 0, 0, 0, NULL) < 0)
			_exit(6);
		e2e_say(from[1], 'K');
		pause();
		_exit(0);
	}
	assert_int_equal(e2e_hear(from[0], 10000), 'K');
	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &root, NULL), 0);
	assert_int_equal(impc_foreground(root, 0, 0), 0); /* nothing of root's in front */
	e2e_say(to[1], 's');
	assert_int_equal(e2e_hear(from[0], 10000), 'K');

	if ((attacker = e2e_fork()) == 0) {
		e2e_become(uid, gid);
		if (impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL) < 0)
			_exit(5);
		got[0] = impc_foreground(c, app, 0);
		got[1] = impc_foreground(c, app, IMPC_FOREGROUND_CGROUP);
		got[2] = impc_foreground(c, server, 0);
		got[3] = impc_foreground(c, getpid(), 0); /* its own: allowed */
		got[4] = impc_foreground(c, 0, 0);        /* its own uid's: allowed */
		if (write(res[1], got, sizeof(got)) != sizeof(got))
			_exit(7);
		_exit(0);
	}
	assert_int_equal(read(res[0], got, sizeof(got)), (ssize_t)sizeof(got));
	waitpid(attacker, NULL, 0);
	assert_int_equal(got[0], -EPERM);
	assert_int_equal(got[1], -EPERM);
	assert_int_equal(got[2], -EPERM);
	assert_int_equal(got[3], 0);
	assert_int_equal(got[4], 0);
	/* root's app is still not live: its waiting request boosts nothing */
	for (int t = 0; t < 500; t += 20) {
		assert_int_equal(e2e_nice(server), NICE_SERVER);
		usleep(20000);
	}
	/* and root's own word still counts */
	assert_int_equal(impc_foreground(root, app, 0), 0);
	assert_true(e2e_wait_nice(server, -10, 5000) >= 0);
	impc_close(root);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_other_uid_cannot_steer, e2e_teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: test-attack-fg PATH/TO/importanced\n");
		return 2;
	}
	e2e_daemon_bin = argv[1];
	if (geteuid() != 0) {
		printf("test-attack-fg: not root, skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include <fcntl.h>
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

#define NICE_SERVER 10

static void become_session(void)
{
	FILE *f = fopen("/proc/self/loginuid", "w");

	if (!f || fprintf(f, "0") < 0 || fclose(f) != 0)
		_exit(3);
}

static int to[2], from[2];
static pid_t server, app;

/* A niced receiver, and root's app in a login session with one request
 * queued to it; nothing of root's is in front (root said none). */
static void scene(const char *extra)
{
	uint64_t svc = 0, port = 0;
	char args[512];
	impc *root, *c;

	snprintf(args, sizeof(args), "--donor-foreground yes --donor-uid root --donor-uid impattack %s", extra);
	e2e_start_daemon(args);
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
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
	if ((app = e2e_fork()) == 0) {
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
	assert_int_equal(impc_foreground(root, 0, 0), 0);
	impc_close(root);
	e2e_say(to[1], 's');
	assert_int_equal(e2e_hear(from[0], 10000), 'K');
}

static void stays_unboosted(int ms)
{
	for (int t = 0; t < ms; t += 20) {
		assert_int_equal(e2e_nice(server), NICE_SERVER);
		usleep(20000);
	}
}

static void test_other_uid_cannot_steer(void **state)
{
	int res[2];
	pid_t attacker;
	impc *root, *c;
	int got[5];
	uid_t uid;
	gid_t gid;

	(void)state;
	e2e_attacker(&uid, &gid);
	scene("");
	assert_int_equal(pipe(res), 0);
	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &root, NULL), 0);

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
	stays_unboosted(500);
	/* and root's own word still counts */
	assert_int_equal(impc_foreground(root, app, 0), 0);
	assert_true(e2e_wait_nice(server, -10, 5000) >= 0);
	impc_close(root);
	e2e_stop_daemon();
}

static const char *policy_file;

/* busctl, an unmodified caller, as uid (0: root) */
static int busctl(const char *address, uid_t uid, const char *method, const char *sig, const char *arg)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "%s busctl --address=%s call " "org.importance.Foreground1 /org/importance/Foreground "
		 "org.importance.Foreground1 %s %s %s >/dev/null 2>&1",
		 uid ? "setpriv --reuid=impattack --regid=impattack --clear-groups" : "", address, method, sig, arg);
	return system(cmd) == 0 ? 0 : -1;
}

/* The bus interface on a private dbus-daemon running Debian's stock
 * system.conf plus our policy file: root may name anyone's process, a
 * second uid only its own; a refused call changes nothing. */
static void test_bus_other_uid(void **state)
{
	char dir[] = "/tmp/imp-fgbus.XXXXXX", conf[128], sock[128], address[160], arg[32], extra[256];
	pid_t bus, own;
	uid_t uid;
	gid_t gid;
	FILE *f;

	(void)state;
	e2e_attacker(&uid, &gid);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(conf, sizeof(conf), "%s/bus.conf", dir);
	snprintf(sock, sizeof(sock), "%s/system_bus_socket", dir);
	snprintf(address, sizeof(address), "unix:path=%s", sock);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		   "<busconfig><include>/usr/share/dbus-1/system.conf</include><include>%s</include></busconfig>\n",
		policy_file);
	fclose(f);
	if ((bus = e2e_fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);
		char a[200];

		dup2(null, 2);
		snprintf(a, sizeof(a), "--address=%s", address);
		execlp("dbus-daemon", "dbus-daemon", "--config-file", conf, "--nofork", "--nopidfile", a, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	assert_int_equal(access(sock, F_OK), 0);
	snprintf(extra, sizeof(extra), "--foreground-bus %s", address);
	scene(extra);
	/* the daemon owns its name under the stock policy: root saying
	 * "nothing of mine is in front" (as scene() did) answers once it does */
	for (int i = 0; i < 250 && busctl(address, 0, "SetForegroundProcess", "u", "0") < 0; i++)
		usleep(20000);
	assert_int_equal(busctl(address, 0, "SetForegroundProcess", "u", "0"), 0);
	snprintf(arg, sizeof(arg), "%d", (int)app);
	assert_int_equal(busctl(address, uid, "SetForegroundProcess", "u", arg), -1); /* root's app: refused */
	assert_int_equal(busctl(address, uid, "SetForegroundCgroup", "s", "/"), 0);   /* only its own uid's */
	assert_int_equal(busctl(address, uid, "SetForegroundCgroup", "s", "x"), -1);  /* bad input */
	if ((own = e2e_fork()) == 0) {
		e2e_become(uid, gid);
		pause();
		_exit(0);
	}
	usleep(100000);
	snprintf(arg, sizeof(arg), "%d", (int)own);
	assert_int_equal(busctl(address, uid, "SetForegroundProcess", "u", arg), 0); /* its own: allowed */
	stays_unboosted(500);
	snprintf(arg, sizeof(arg), "%d", (int)app);
	assert_int_equal(busctl(address, 0, "SetForegroundProcess", "u", arg), 0); /* root: anyone's */
	assert_true(e2e_wait_nice(server, -10, 5000) >= 0);
	e2e_stop_daemon();
	kill(bus, SIGTERM);
	waitpid(bus, NULL, 0);
	unlink(conf);
	unlink(sock);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_other_uid_cannot_steer, e2e_teardown),
		cmocka_unit_test_teardown(test_bus_other_uid, e2e_teardown),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: test-attack-fg PATH/TO/importanced POLICY-FILE\n");
		return 2;
	}
	e2e_daemon_bin = argv[1];
	policy_file = realpath(argv[2], NULL); /* the bus reads it from elsewhere */
	if (!policy_file) {
		perror(argv[2]);
		return 1;
	}
	if (geteuid() != 0) {
		printf("test-attack-fg: not root, skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * logind as a foreground source, against the real systemd-logind: this
 * machine has no systemd as PID 1, so logind is run by the test on a
 * private system bus (dbus-daemon with Debian's stock system.conf, whose
 * system.d lets logind own org.freedesktop.login1), in a mount namespace
 * whose /run/systemd is a fresh tmpfs holding one session's state as
 * logind itself writes it (logind restores sessions from there at start;
 * creating one needs systemd).  The session is the audit session of a
 * real importance client; locking it (SetLockedHint, as a screen locker
 * does) turns the client's donations off, unlocking turns them back on.
 *
 *   test-logind IMPORTANCED
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

#define NICE_SERVER 10

static char address[160];

static pid_t run(const char *const *argv)
{
	pid_t p = e2e_fork();

	if (p == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int locked_hint(unsigned session, bool on)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "p=$(busctl --address=%s call org.freedesktop.login1 /org/freedesktop/login1 "
		 "org.freedesktop.login1.Manager GetSession s %u | cut -d'\"' -f2) && "
		 "busctl --address=%s call org.freedesktop.login1 \"$p\" org.freedesktop.login1.Session "
		 "SetLockedHint b %s >/dev/null 2>&1",
		 address, session, address, on ? "true" : "false");
	return system(cmd) == 0 ? 0 : -1;
}

static void test_locked_session_stops_donating(void **state)
{
	char dir[] = "/tmp/imp-logind.XXXXXX", conf[128], sock[128], buf[512], a[200];
	int to[2], from[2];
	uint64_t port = 0, svc = 0;
	pid_t server, app;
	unsigned session;
	impc *c;
	FILE *f;

	(void)state;
	/* our own /run/systemd */
	assert_int_equal(unshare(CLONE_NEWNS), 0);
	assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	mkdir("/run/systemd", 0755);
	assert_int_equal(mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755"), 0);
	assert_int_equal(mkdir("/run/systemd/sessions", 0755), 0);
	assert_int_equal(mkdir("/run/systemd/users", 0755), 0);
	assert_int_equal(mkdir("/run/systemd/seats", 0755), 0);

	/* a private system bus, stock policy */
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(conf, sizeof(conf), "/usr/share/dbus-1/system.conf");
	snprintf(sock, sizeof(sock), "%s/system_bus_socket", dir);
	snprintf(address, sizeof(address), "unix:path=%s", sock);
	snprintf(a, sizeof(a), "--address=%s", address);
	run((const char *[]){ "dbus-daemon", "--config-file", conf, "--nofork", "--nopidfile", a, NULL });
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	assert_int_equal(access(sock, F_OK), 0);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);

	e2e_start_daemon("--donor-foreground yes --donor-uid root --logind yes");
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
	if ((app = e2e_fork()) == 0) { /* a login session's app */
		bool donor;

		f = fopen("/proc/self/loginuid", "w");
		if (!f || fprintf(f, "0") < 0 || fclose(f) != 0)
			_exit(3);
		if (impc_connect(e2e_sock, 0, &c, &donor) < 0 || !donor)
			_exit(5);
		e2e_say(from[1], 'K');
		while (e2e_hear(to[0], -1) == 's')
			if (impc_lookup(c, "svc", &svc) < 0 || impc_send(c, svc, "work", 4, 0, 0, 0, NULL) < 0)
				_exit(6);
		_exit(0);
	}
	assert_int_equal(e2e_hear(from[0], 10000), 'K');
	snprintf(buf, sizeof(buf), "/proc/%d/sessionid", (int)app);
	assert_non_null(f = fopen(buf, "r"));
	assert_int_equal(fscanf(f, "%u", &session), 1);
	fclose(f);

	/* the session as logind records it, then logind */
	write_file("/run/systemd/users/0", "NAME=root\nSTATE=active\nSTOPPING=no\nRUNTIME=/run/user/0\n"
					   "SERVICE=user@0.service\nSLICE=user-0.slice\n");
	snprintf(buf, sizeof(buf),
		 "UID=0\nUSER=root\nACTIVE=1\nIS_DISPLAY=0\nSTATE=active\nREMOTE=0\nTYPE=x11\nCLASS=user\n"
		 "SCOPE=session-%u.scope\nSEAT=seat0\nLEADER=%d\n",
		 session, (int)app);
	snprintf(a, sizeof(a), "/run/systemd/sessions/%u", session);
	write_file(a, buf);
	run((const char *[]){ "/usr/lib/systemd/systemd-logind", NULL });

	e2e_say(to[1], 's'); /* the session is active: the request boosts */
	assert_true(e2e_wait_nice(server, -10, 5000) >= 0);
	for (int i = 0; i < 250 && locked_hint(session, true) < 0; i++) /* logind is up when it answers */
		usleep(20000);
	assert_true(e2e_wait_nice(server, NICE_SERVER, 5000) >= 0); /* locked: not live */
	for (int t = 0; t < 300; t += 20) {
		assert_int_equal(e2e_nice(server), NICE_SERVER);
		usleep(20000);
	}
	assert_int_equal(locked_hint(session, false), 0);
	assert_true(e2e_wait_nice(server, -10, 5000) >= 0); /* unlocked: back */
	e2e_stop_daemon();
	unlink(sock);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_locked_session_stops_donating, e2e_teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: test-logind PATH/TO/importanced\n");
		return 2;
	}
	e2e_daemon_bin = argv[1];
	if (geteuid() != 0) {
		printf("test-logind: not root, skipped\n");
		return 77;
	}
	if (access("/usr/lib/systemd/systemd-logind", X_OK) != 0) {
		fprintf(stderr, "test-logind: systemd-logind is not installed (package systemd)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * e2e-agent: the session agent on a user's own session bus, as users have
 * it.  A real importanced (root); a private session bus run by a second
 * uid with Debian's stock /usr/share/dbus-1/session.conf (no extra allow
 * rule), on dbus-daemon and on dbus-broker; importanced-agent as that uid;
 * unmodified services (python3-dbus, GDBus through python3-gi) at nice 10
 * and unmodified callers (busctl, gdbus).  A caller's pending call boosts
 * the service until its reply; the agent and importanced may restart; a
 * forged agent is believed only about its own uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buslaunch.h"
#include "e2e.h"
#include "importance/client.h"

static const char *agent_bin;

/* A service: python3-dbus or GDBus, one method Wait(u ms) answered after ms. */
static const char service_py[] =
	"import sys\n"
	"kind, address = sys.argv[1], sys.argv[2]\n"
	"from gi.repository import GLib\n"
	"if kind == 'dbus':\n"
	"    import dbus, dbus.service\n"
	"    from dbus.mainloop.glib import DBusGMainLoop\n"
	"    DBusGMainLoop(set_as_default=True)\n"
	"    bus = dbus.bus.BusConnection(address)\n"
	"    name = dbus.service.BusName('org.example.Slow', bus)\n"
	"    class Slow(dbus.service.Object):\n"
	"        @dbus.service.method('org.example.Slow', in_signature='u', out_signature='u',\n"
	"                             async_callbacks=('ok', 'err'))\n"
	"        def Wait(self, ms, ok, err):\n"
	"            GLib.timeout_add(ms, lambda: (ok(ms), False)[1])\n"
	"    Slow(bus, '/org/example/Slow')\n"
	"else:\n"
	"    from gi.repository import Gio\n"
	"    xml = ('<node><interface name=\"org.example.Slow\"><method name=\"Wait\">'\n"
	"           '<arg type=\"u\" direction=\"in\"/><arg type=\"u\" direction=\"out\"/>'\n"
	"           '</method></interface></node>')\n"
	"    info = Gio.DBusNodeInfo.new_for_xml(xml).interfaces[0]\n"
	"    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |\n"
	"             Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)\n"
	"    bus = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)\n"
	"    def call(conn, sender, path, iface, method, params, inv):\n"
	"        ms = params.unpack()[0]\n"
	"        GLib.timeout_add(ms, lambda: (inv.return_value(GLib.Variant('(u)', (ms,))), False)[1])\n"
	"    bus.register_object('/org/example/Slow', info, call, None, None)\n"
	"    Gio.bus_own_name_on_connection(bus, 'org.example.Slow', 0, None, None)\n"
	"print('ready', flush=True)\n"
	"GLib.MainLoop().run()\n";

struct world {
	const char *kind; /* dbus-daemon or dbus-broker */
	char dir[64], bus_sock[128], address[160], imp_sock[128], log[128];
	uid_t uid;
	gid_t gid;
	pid_t bus_pid, imp_pid, agent_pid;
};

static struct world worlds[2] = { { .kind = "dbus-daemon" }, { .kind = "dbus-broker" } };

static pid_t start_importanced(struct world *w)
{
	char donor[16];
	pid_t p;

	snprintf(donor, sizeof(donor), "%u", (unsigned)w->uid);
	p = e2e_fork();
	if (p == 0) {
		int fd = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		setsid();
		dup2(fd, 2);
		execl(e2e_daemon_bin, e2e_daemon_bin, "--no-config", "--socket", w->imp_sock, "--backend", "nice",
		      "--donor-uid", donor, "--verbose", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		impc *c;

		if (impc_connect(w->imp_sock, IMPC_MONITOR, &c, NULL) == 0) {
			impc_close(c);
			return p;
		}
		usleep(10000);
	}
	return -1;
}

static void stop(pid_t *p)
{
	if (*p > 0) {
		kill(*p, SIGTERM);
		waitpid(*p, NULL, 0);
	}
	*p = 0;
}

/* Runs argv as the world's user (nice n), its stdout into out (NULL: the
 * log); the child's pid. */
static pid_t run_as(struct world *w, int n, const char *out, char *const argv[])
{
	pid_t p = e2e_fork();

	if (p == 0) {
		int fd = open(out ? out : w->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		setpriority(PRIO_PROCESS, 0, n);
		dup2(fd, 1);
		dup2(fd, 2);
		e2e_become(w->uid, w->gid);
		setenv("DBUS_SESSION_BUS_ADDRESS", w->address, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

static pid_t start_agent_on(struct world *w, const char *display)
{
	char *argv[] = { (char *)agent_bin, "--socket", w->imp_sock, "--verbose", "--display", (char *)display, NULL };

	if (!display)
		argv[4] = NULL;
	return run_as(w, 0, NULL, argv);
}

static pid_t start_agent(struct world *w)
{
	return start_agent_on(w, NULL);
}

/* Whether the log has line (waiting up to ms). */
static bool log_has(struct world *w, const char *what, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		char buf[65536];
		int fd = open(w->log, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (strstr(buf, what))
				return true;
		}
		usleep(20000);
	}
	return false;
}

static int setup_world(void **state)
{
	struct world *w = *state;
	char path[128], why[256];
	FILE *f;

	e2e_attacker(&w->uid, &w->gid);
	snprintf(w->dir, sizeof(w->dir), "/tmp/e2e-agent.%d.%s", (int)getpid(), w->kind + 5);
	if (mkdir(w->dir, 0755) < 0 || chown(w->dir, w->uid, w->gid) < 0)
		return -1;
	snprintf(w->bus_sock, sizeof(w->bus_sock), "%s/bus", w->dir);
	snprintf(w->address, sizeof(w->address), "unix:path=%s", w->bus_sock);
	snprintf(w->imp_sock, sizeof(w->imp_sock), "%s/imp.sock", w->dir);
	snprintf(w->log, sizeof(w->log), "%s/log", w->dir);
	snprintf(path, sizeof(path), "%s/service.py", w->dir);
	if (!(f = fopen(path, "w")) || fputs(service_py, f) < 0 || fclose(f) != 0)
		return -1;
	if (!strcmp(w->kind, "dbus-daemon")) {
		char address[170];
		char *argv[] = { "dbus-daemon", "--config-file=/usr/share/dbus-1/session.conf", address, "--nofork",
				 NULL };

		snprintf(address, sizeof(address), "--address=%s", w->address);
		w->bus_pid = run_as(w, 0, NULL, argv);
		for (int i = 0; i < 300 && access(w->bus_sock, F_OK) != 0; i++)
			usleep(10000);
	} else {
		w->bus_pid = buslaunch_dbus_broker_as("/usr/share/dbus-1/session.conf", w->bus_sock, w->address, w->uid,
						      w->gid, why, sizeof(why));
		if (w->bus_pid < 0) {
			fprintf(stderr, "e2e-agent: dbus-broker: %s\n", why);
			return -1;
		}
		if (chown(w->bus_sock, w->uid, w->gid) < 0)
			return -1;
	}
	if (access(w->bus_sock, F_OK) != 0 || (w->imp_pid = start_importanced(w)) < 0)
		return -1;
	w->agent_pid = start_agent(w);
	return log_has(w, "attached by pid", 5000) ? 0 : -1;
}

static int teardown_world(void **state)
{
	struct world *w = *state;
	char cmd[200];

	stop(&w->agent_pid);
	stop(&w->imp_pid);
	stop(&w->bus_pid);
	e2e_teardown(state);
	if (getenv("E2E_KEEP"))
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The service of kind at nice 10, once it owns its name. */
static pid_t start_service(struct world *w, const char *kind)
{
	char path[128], out[128];
	char *argv[] = { "/usr/bin/python3", path, (char *)kind, w->address, NULL };
	pid_t p;

	snprintf(path, sizeof(path), "%s/service.py", w->dir);
	snprintf(out, sizeof(out), "%s/service.%s.out", w->dir, kind);
	unlink(out);
	p = run_as(w, 10, out, argv);
	for (int i = 0; i < 500; i++) {
		char buf[64] = "";
		int fd = open(out, O_RDONLY);

		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);

			close(fd);
			if (n > 0 && strstr(buf, "ready"))
				return p;
		}
		usleep(20000);
	}
	return -1;
}

/* A caller's call Wait(ms) to the service, with busctl or gdbus. */
static pid_t call(struct world *w, const char *tool, unsigned ms)
{
	char arg[32];

	snprintf(arg, sizeof(arg), "%u", ms);
	if (!strcmp(tool, "busctl")) {
		char address[170];
		char *argv[] = { "busctl", address, "call", "org.example.Slow", "/org/example/Slow", "org.example.Slow",
				 "Wait", "u", arg, NULL };

		snprintf(address, sizeof(address), "--address=%s", w->address);
		return run_as(w, 0, NULL, argv);
	} else {
		char *argv[] = { "gdbus", "call", "--session", "--dest", "org.example.Slow", "--object-path",
				 "/org/example/Slow", "--method", "org.example.Slow.Wait", arg, NULL };

		return run_as(w, 0, NULL, argv);
	}
}

/* The caller's call boosts the service until its reply. */
static void boosted_while_called(struct world *w, pid_t svc, const char *tool)
{
	pid_t caller = call(w, tool, 2500);
	int status;

	assert_true(caller > 0);
	assert_true(e2e_wait_nice(svc, -10, 2000) >= 0);
	assert_int_equal(waitpid(caller, &status, 0), caller);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(e2e_wait_nice(svc, 10, 2000) >= 0);
}

/* The agent's count at its end (--verbose): what it relayed and left out,
 * and how much of that was the driver's calls and replies. */
static void agent_counts(struct world *w, unsigned long long *relayed, unsigned long long *driver)
{
	char buf[65536], *at;
	unsigned long long left = 0;
	int fd = open(w->log, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (!(at = strstr(buf, "relayed ")) ||
	    sscanf(at, "relayed %llu messages, left out %llu (%llu", relayed, &left, driver) != 3)
		fail_msg("the agent did not count what it relayed: %s", buf);
	printf("agent (%s): relayed %llu messages, left out %llu, %llu of them driver calls and replies\n", w->kind,
	       *relayed, left, *driver);
}

/* ... and what it leaves out (calls to the bus driver and the driver's
 * replies to them, which the model never takes) changes nothing: the call
 * still boosts, and the count says they were left out. */
static void test_busctl_to_python_dbus(void **state)
{
	struct world *w = *state;
	pid_t svc = start_service(w, "dbus");
	unsigned long long relayed, driver;

	assert_true(svc > 0);
	assert_int_equal(e2e_nice(svc), 10);
	boosted_while_called(w, svc, "busctl");
	stop(&w->agent_pid);
	agent_counts(w, &relayed, &driver);
	assert_true(driver > 0);
	assert_true(relayed > 0);
	kill(svc, SIGTERM);
	waitpid(svc, NULL, 0);
}

static void test_gdbus_to_gdbus(void **state)
{
	struct world *w = *state;
	pid_t svc = start_service(w, "gio");

	assert_true(svc > 0);
	boosted_while_called(w, svc, "gdbus");
	kill(svc, SIGTERM);
	waitpid(svc, NULL, 0);
}

/* The agent killed during a call: the boost drops; a new agent boosts the
 * next call. */
static void test_agent_restart(void **state)
{
	struct world *w = *state;
	pid_t svc = start_service(w, "dbus"), caller;

	assert_true(svc > 0);
	caller = call(w, "busctl", 3000);
	assert_true(e2e_wait_nice(svc, -10, 2000) >= 0);
	stop(&w->agent_pid);
	assert_true(e2e_wait_nice(svc, 10, 1000) >= 0); /* before the reply */
	waitpid(caller, NULL, 0);
	assert_int_equal(truncate(w->log, 0), 0); /* the next "attached" is the new agent's */
	w->agent_pid = start_agent(w);
	assert_true(log_has(w, "attached by pid", 5000));
	boosted_while_called(w, svc, "busctl");
	kill(svc, SIGTERM);
	waitpid(svc, NULL, 0);
}

/* importanced restarted: the agent connects again and the next call boosts. */
static void test_daemon_restart(void **state)
{
	struct world *w = *state;
	pid_t svc = start_service(w, "dbus");

	assert_true(svc > 0);
	stop(&w->imp_pid);
	assert_int_equal(truncate(w->log, 0), 0);
	assert_true((w->imp_pid = start_importanced(w)) > 0);
	assert_true(log_has(w, "attached by pid", 8000));
	boosted_while_called(w, svc, "busctl");
	kill(svc, SIGTERM);
	waitpid(svc, NULL, 0);
}

/*
 * A forged agent, as the second uid: it attaches, says a call from its own
 * process (a donor by the rules) went to a connection, and when asked who
 * that connection is, names a root process at nice 10 and passes its
 * pidfd.  The root process is not boosted.  An answer to nothing asked is
 * refused; a uid attaches at most IMPP_AGENT_BUSES_PER_UID buses.
 */
static void test_forged_agent_believed_only_about_its_uid(void **state)
{
	struct world *w = *state;
	int pipefd[2], status;
	pid_t victim, forger;

	victim = e2e_fork();
	if (victim == 0) {
		setpriority(PRIO_PROCESS, 0, 10);
		for (;;)
			pause();
	}
	assert_int_equal(pipe(pipefd), 0);
	forger = e2e_fork();
	if (forger == 0) {
		int vfd = (int)syscall(SYS_pidfd_open, victim, 0);
		impc *c;
		uint32_t bus, more[1];
		impc_agent_question q;
		bool asked = false, dest = false, caller = false;
		int e;
		impc_bus_message m[2] = {
			{ 4, false, "org.freedesktop.DBus", NULL, "org.freedesktop.DBus", "NameOwnerChanged", 1, 0,
			  { ":1.7", "", ":1.7" } },
			{ 1, true, ":1.8", ":1.7", "org.example.X", "Do", 5, 0, { NULL, NULL, NULL } },
		};

		e2e_become(w->uid, w->gid);
		if (vfd < 0 || impc_connect(w->imp_sock, IMPC_MONITOR, &c, NULL) < 0 ||
		    impc_agent_attach(c, "forged", &bus) < 0)
			_exit(1);
		if (impc_agent_identity(c, bus, ":1.9", getpid(), w->uid, -1) != -ENOENT)
			_exit(2); /* nothing was asked about :1.9 */
		if ((e = impc_agent_attach(c, "forged-2", &more[0])) != -EDQUOT)
			_exit(3 + (e < 0 ? -e : 100)); /* the uid's real agent holds the other bus */
		if (impc_agent_events(c, bus, m, 2) < 0)
			_exit(4);
		for (int i = 0; i < 200 && !asked; i++) {
			impc_process(c);
			while (impc_agent_next_question(c, &q) == 0) {
				if (q.what != IMPC_AGENT_WHO)
					continue;
				if (!strcmp(q.name, ":1.7")) {
					dest = impc_agent_identity(c, bus, ":1.7", victim, 0, vfd) == 0;
				} else {
					caller = impc_agent_identity(c, bus, q.name, getpid(), w->uid, -1) == 0;
				}
				asked = dest && caller;
			}
			usleep(10000);
		}
		e2e_say(pipefd[1], asked ? 'a' : 'n');
		pause();
		_exit(0);
	}
	if (e2e_hear(pipefd[0], 5000) != 'a') {
		kill(forger, SIGKILL);
		waitpid(forger, &status, 0);
		fail_msg("the forged agent did not get its questions (exit %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	usleep(300 * 1000);
	assert_int_equal(e2e_nice(victim), 10);
	assert_true(log_has(w, "Operation not permitted: not boosted", 1000));
	kill(forger, SIGKILL);
	waitpid(forger, &status, 0);
	assert_true(WIFSIGNALED(status)); /* it got as far as the pause */
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
}

/* Two threads relaying on one handle at once, with batches of several
 * frames each: impc_agent_events' one frame buffer per handle is never
 * shared by two batches (a frame mixed of two would be refused). */
struct relayer {
	impc *c;
	uint32_t bus;
	int id, failed;
};

static void *relay_thread(void *arg)
{
	static const char long_member[] =
		"AVeryLongMemberNameSoThatABatchSpansSeveralFramesAVeryLongMemberNameSoThatABatchSpansSeveralFrames"
		"AVeryLongMemberNameSoThatABatchSpansSeveralFramesAVeryLongMemberNameSoThatABatchSpansSeveralFrames";
	struct relayer *r = arg;
	impc_bus_message m[512];
	char names[512][24];

	for (int round = 0; round < 40 && !r->failed; round++) {
		for (int i = 0; i < 512; i++) {
			/* a connection appearing and going: the model keeps nothing */
			snprintf(names[i], sizeof(names[i]), ":%d.%d", 100 + r->id, round * 512 + i);
			m[i] = (impc_bus_message){ 4, false, "org.freedesktop.DBus", NULL, "org.freedesktop.DBus",
						   i % 2 ? "NameOwnerChanged" : long_member, (uint64_t)i + 1, 0,
						   { names[i], "", names[i] } };
		}
		if (impc_agent_events(r->c, r->bus, m, 512) != 0)
			r->failed = round + 1;
	}
	return NULL;
}

static void test_events_from_two_threads(void **state)
{
	struct world *w = *state;
	int status;
	pid_t p = e2e_fork();

	if (p == 0) {
		struct relayer r[2];
		pthread_t t[2];
		uint32_t bus;
		impc *c;

		e2e_become(w->uid, w->gid);
		if (impc_connect(w->imp_sock, IMPC_MONITOR, &c, NULL) < 0 || impc_agent_attach(c, "threads", &bus) < 0)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			r[i] = (struct relayer){ c, bus, i, 0 };
			if (pthread_create(&t[i], NULL, relay_thread, &r[i]) != 0)
				_exit(2);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		_exit(r[0].failed || r[1].failed ? 3 : 0);
	}
	assert_int_equal(waitpid(p, &status, 0), p);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(log_has(w, "Bad message", 0));
}

/* An X server that takes the connection and never answers (a hung one)
 * holds only the agent's X thread: the bus is still relayed, a call still
 * boosts, and the agent still ends at once on SIGTERM. */
static void test_hung_x_server(void **state)
{
	struct world *w = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = 700 + (int)(getpid() % 200), x, peer = -1;
	char display[16], hello = 0;
	uint64_t t0;
	pid_t svc;

	/* on the abstract socket xcb tries (nobody else's file in /tmp) */
	snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "/tmp/.X11-unix/X%d", n);
	snprintf(display, sizeof(display), ":%d", n);
	assert_true((x = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(bind(x, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + 1))),
			 0);
	assert_int_equal(listen(x, 4), 0);
	stop(&w->agent_pid);
	assert_int_equal(truncate(w->log, 0), 0);
	w->agent_pid = start_agent_on(w, display);
	assert_true(log_has(w, "attached by pid", 5000));
	/* the agent's connection, its setup request sent, waiting for ours */
	for (int i = 0; i < 250 && peer < 0; i++)
		if ((peer = accept4(x, NULL, NULL, SOCK_CLOEXEC)) < 0)
			usleep(20000);
	assert_true(peer >= 0);
	assert_int_equal(read(peer, &hello, 1), 1);
	assert_true(hello == 'l' || hello == 'B'); /* the byte order: an X client's first byte */
	svc = start_service(w, "dbus");
	assert_true(svc > 0);
	boosted_while_called(w, svc, "busctl");
	t0 = e2e_now_ms();
	stop(&w->agent_pid);
	assert_true(e2e_now_ms() - t0 < 2000);
	assert_false(log_has(w, "watching the foreground", 0));
	kill(svc, SIGTERM);
	waitpid(svc, NULL, 0);
	close(peer);
	close(x);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_busctl_to_python_dbus),
		cmocka_unit_test(test_gdbus_to_gdbus),
		cmocka_unit_test(test_agent_restart),
		cmocka_unit_test(test_daemon_restart),
		cmocka_unit_test(test_forged_agent_believed_only_about_its_uid),
		cmocka_unit_test(test_hung_x_server),
		cmocka_unit_test(test_events_from_two_threads),
	};
	int failed = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: test-agent IMPORTANCED IMPORTANCED-AGENT\n");
		return 2;
	}
	e2e_daemon_bin = argv[1];
	agent_bin = argv[2];
	for (size_t i = 0; i < 2; i++) {
		struct CMUnitTest t[sizeof(tests) / sizeof(tests[0])];

		for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
			t[k] = tests[k];
			t[k].setup_func = setup_world;
			t[k].teardown_func = teardown_world;
			t[k].initial_state = &worlds[i];
		}
		failed += _cmocka_run_group_tests(worlds[i].kind, t, sizeof(t) / sizeof(t[0]), NULL, NULL);
	}
	return failed ? 1 : 0;
}

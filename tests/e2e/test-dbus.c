/*
 * End-to-end tests of importanced on D-Bus: a private dbus-daemon and a
 * private dbus-broker, importanced monitoring them (nice backend), bus
 * services that are this program run as "service" (nice 10, uid nobody,
 * so not donors), and callers that are plain busctl and gdbus run as root,
 * the donor uid.  The services' real nice values are what is checked, and
 * the engine's counts through impctl's status request.
 *
 *   test-dbus IMPORTANCED [DBUS_BROKER_ROOT]
 *   test-dbus service ADDRESS NAME     (a service; used by the tests)
 *   test-dbus flood ADDRESS NAME N     (a donor's calls and name churn)
 *   test-dbus echo SOCKET              (an importanced receiver, as nobody)
 *   test-dbus traffic ADDRESS          (GetId calls for ever, as nobody)
 */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "buslaunch.h"
#include "importance/client.h"

#define SERVICE_NICE 10
#define BOOST_NICE -10 /* importanced's default boost-nice */
#define NOBODY 65534
#define IFACE "org.importance.Test"

static const char *self_exe, *importanced_bin, *broker_root;

/* ------------------------------------------------------------------ */
/* the service                                                          */
/* ------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* where the busy loops write, so that they are not optimized away */
static volatile uint64_t sink;

static void burn(uint32_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		for (int i = 0; i < 10000; i++)
			sink += (uint64_t)i;
}

/* Work(u ms) -> u: CPU work for ms milliseconds. */
static int method_work(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	uint32_t ms;
	int r;

	(void)userdata;
	(void)err;
	if ((r = sd_bus_message_read(m, "u", &ms)) < 0)
		return r;
	burn(ms);
	return sd_bus_reply_method_return(m, "u", ms);
}

/* Relay(s name, u ms) -> u: calls name's Work(ms) and answers with it. */
static int method_relay(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	sd_bus_message *reply = NULL;
	const char *name;
	uint32_t ms, got = 0;
	int r;

	(void)userdata;
	if ((r = sd_bus_message_read(m, "su", &name, &ms)) < 0)
		return r;
	r = sd_bus_call_method(sd_bus_message_get_bus(m), name, "/w", IFACE, "Work", err, &reply, "u", ms);
	if (r >= 0)
		r = sd_bus_message_read(reply, "u", &got);
	sd_bus_message_unref(reply);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "u", got);
}

static const sd_bus_vtable service_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Work", "u", "u", method_work, 0),
	SD_BUS_METHOD("Relay", "su", "u", method_relay, 0),
	SD_BUS_VTABLE_END,
};

static int service_main(const char *address, const char *name)
{
	sd_bus *bus;

	if (setresuid(NOBODY, NOBODY, NOBODY) < 0 || setpriority(PRIO_PROCESS, 0, SERVICE_NICE) < 0)
		return 1;
	if (!(bus = buslaunch_connect(address)) ||
	    sd_bus_add_object_vtable(bus, NULL, "/w", IFACE, service_vtable, NULL) < 0 ||
	    sd_bus_request_name(bus, name, 0) < 0)
		return 1;
	for (;;) {
		int r = sd_bus_process(bus, NULL);

		if (r < 0)
			return 1;
		if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
			return 1;
	}
}

/* n asynchronous calls of Work(0) at once from one donor connection, and
 * n connections that each take a well-known name, call and go. */
static int on_flood_reply(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)m;
	(void)err;
	(*(unsigned *)userdata)++;
	return 0;
}

static int flood_main(const char *address, const char *name, unsigned n)
{
	unsigned done = 0;
	sd_bus *bus = buslaunch_connect(address);

	if (!bus)
		return 1;
	for (unsigned i = 0; i < n; i++)
		if (sd_bus_call_method_async(bus, NULL, name, "/w", IFACE, "Work", on_flood_reply, &done, "u", 0) < 0)
			return 1;
	while (done < n) {
		int r = sd_bus_process(bus, NULL);

		if (r < 0 || (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0))
			return 1;
	}
	sd_bus_flush_close_unref(bus);
	for (unsigned i = 0; i < n; i++) {
		char own[64];

		snprintf(own, sizeof(own), "org.importance.Flood%u", i % 16);
		if (!(bus = buslaunch_connect(address)) || sd_bus_request_name(bus, own, 0) < 0)
			return 1;
		/* a call left unanswered by the caller's going, every 4th */
		if (i % 4 == 0)
			sd_bus_call_method_async(bus, NULL, name, "/w", IFACE, "Work", NULL, NULL, "u", 0);
		sd_bus_flush_close_unref(bus);
	}
	return 0;
}

/* An importanced receiver at SERVICE_NICE as nobody, serving "stall.echo":
 * each request is answered with the nice value it was served at (its
 * voucher's boost held meanwhile). */
static int echo_main(const char *sock)
{
	impc_message m;
	uint64_t port;
	impc *c;

	if (setresuid(NOBODY, NOBODY, NOBODY) < 0 || setpriority(PRIO_PROCESS, 0, SERVICE_NICE) < 0 ||
	    impc_connect(sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
	    impc_register(c, "stall.echo", port) < 0 || impc_receive(c, port, -1, IMPC_RECV_VOUCHER, &m) < 0)
		return 1;
	for (;;) {
		int served = getpriority(PRIO_PROCESS, 0);
		impc_send_args reply = { m.reply_port, &served, sizeof(served), 0, 0, 0, NULL, 0 };
		uint64_t release = m.voucher;

		free(m.data);
		if (impc_send_receive(c, &reply, release, port, -1, IMPC_RECV_VOUCHER, &m) < 0)
			return 0;
	}
}

/* Traffic on the bus, as nobody: the driver asked GetId, one call at a
 * time, for ever; every call and reply is copied to importanced. */
static int traffic_main(const char *address)
{
	sd_bus *bus;

	if (setresuid(NOBODY, NOBODY, NOBODY) < 0 || !(bus = buslaunch_connect(address)))
		return 1;
	while (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
				  NULL, NULL, "") >= 0)
		;
	return 1;
}

/* ------------------------------------------------------------------ */
/* the harness                                                          */
/* ------------------------------------------------------------------ */

static pid_t kids[64];
static int n_kids;

static pid_t spawn(char *const argv[], uid_t uid)
{
	pid_t p = fork();

	assert_true(p >= 0);
	if (p == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(devnull, 1);
		if (uid && setresuid(uid, uid, uid) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (n_kids < (int)(sizeof(kids) / sizeof(kids[0])))
		kids[n_kids++] = p;
	return p;
}

static void reap(pid_t p, int sig)
{
	if (sig)
		kill(p, sig);
	waitpid(p, NULL, 0);
	for (int i = 0; i < n_kids; i++)
		if (kids[i] == p)
			kids[i] = kids[--n_kids];
}

/* waits for p; its exit status, or -1 if it did not end in time */
static int wait_exit(pid_t p, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	int status;

	while (now_ms() < end) {
		if (waitpid(p, &status, WNOHANG) == p) {
			for (int i = 0; i < n_kids; i++)
				if (kids[i] == p)
					kids[i] = kids[--n_kids];
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(5000);
	}
	return -1;
}

/* One bus and one importanced watching it. */
struct world {
	const char *kind; /* dbus-daemon or dbus-broker */
	char dir[64], address[160], sock[128], imp_sock[128];
	pid_t bus_pid, imp_pid;
	sd_bus *observer;
};

static struct world worlds[2] = { { .kind = "dbus-daemon" }, { .kind = "dbus-broker" } };

/* importanced watching w's bus, root a donor, with extra arguments
 * (space-separated, may be NULL); 0 once it answers. */
static int start_importanced(struct world *w, const char *extra)
{
	char *argv[32] = { (char *)importanced_bin, "--no-config", "--socket", w->imp_sock, "--backend", "nice",
			   "--donor-uid", "0", "--dbus", w->address, "--dbus-call-timeout", "8000", NULL };
	char words[256] = "", *save = NULL;
	int n = 12;

	snprintf(w->imp_sock, sizeof(w->imp_sock), "%s/imp.sock", w->dir);
	snprintf(words, sizeof(words), "%s", extra ? extra : "");
	for (char *word = strtok_r(words, " ", &save); word && n < 31; word = strtok_r(NULL, " ", &save))
		argv[n++] = word;
	argv[n] = NULL;
	w->imp_pid = fork();
	if (w->imp_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(importanced_bin, argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		impc *c;

		if (impc_connect(w->imp_sock, IMPC_MONITOR, &c, NULL) == 0) {
			impc_close(c);
			usleep(100000); /* its monitor attaches right after it listens */
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

/* Stops w's importanced: 0 when it exited cleanly (every boost undone,
 * nothing leaked under ASan). */
static int stop_importanced(struct world *w)
{
	int status;

	if (w->imp_pid <= 0)
		return 0;
	kill(w->imp_pid, SIGTERM);
	waitpid(w->imp_pid, &status, 0);
	w->imp_pid = 0;
	unlink(w->imp_sock);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "test-dbus: %s: importanced ended with status %d\n", w->kind, status);
		return -1;
	}
	return 0;
}

static int start_world(void **state)
{
	struct world *w = *state;
	char cfg[128], why[256];

	snprintf(w->dir, sizeof(w->dir), "/tmp/test-dbus.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	chmod(w->dir, 0755); /* the services run as nobody */
	snprintf(w->sock, sizeof(w->sock), "%s/bus", w->dir);
	snprintf(w->address, sizeof(w->address), "unix:path=%s", w->sock);
	snprintf(cfg, sizeof(cfg), "%s/bus.conf", w->dir);
	buslaunch_config(cfg, w->address);
	if (!strcmp(w->kind, "dbus-daemon")) {
		w->bus_pid = buslaunch_dbus_daemon(cfg, w->sock);
	} else {
		char launcher[300];

		snprintf(launcher, sizeof(launcher), "%s/usr/bin/dbus-broker-launch", broker_root ? broker_root : "");
		if (broker_root && access(launcher, X_OK) == 0)
			setenv("DBUS_BROKER_ROOT", broker_root, 1);
		w->bus_pid = buslaunch_dbus_broker(cfg, w->sock, w->address, why, sizeof(why));
		if (w->bus_pid < 0)
			fprintf(stderr, "test-dbus: dbus-broker: %s\n", why);
	}
	if (w->bus_pid < 0)
		return 0; /* its tests skip */
	if (start_importanced(w, NULL) < 0 || !(w->observer = buslaunch_connect(w->address)))
		return -1;
	return 0;
}

static int stop_world(void **state)
{
	struct world *w = *state;
	int e;

	sd_bus_flush_close_unref(w->observer);
	e = stop_importanced(w);
	if (w->bus_pid > 0) {
		kill(w->bus_pid, SIGTERM);
		waitpid(w->bus_pid, NULL, 0);
	}
	unlink(w->sock);
	{
		char cfg[128];

		snprintf(cfg, sizeof(cfg), "%s/bus.conf", w->dir);
		unlink(cfg);
	}
	rmdir(w->dir);
	return e;
}

static int kill_kids(void **state)
{
	(void)state;
	while (n_kids)
		reap(kids[0], SIGKILL);
	return 0;
}

static struct world *world_of(void **state)
{
	struct world *w = *state;

	if (w->bus_pid <= 0)
		skip();
	return w;
}

static int nice_of(pid_t pid)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, (id_t)pid);
}

/* true once pid's nice is want, within timeout_ms */
static bool reaches_nice(pid_t pid, int want, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	do {
		if (nice_of(pid) == want)
			return true;
		usleep(2000);
	} while (now_ms() < end);
	return false;
}

/* true if pid's nice stays want for ms */
static bool keeps_nice(pid_t pid, int want, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		if (nice_of(pid) != want)
			return false;
		usleep(5000);
	} while (now_ms() < end);
	return true;
}

/* A service owning name, once the bus says so. */
static pid_t start_service(struct world *w, const char *name)
{
	char *argv[] = { (char *)self_exe, "service", w->address, (char *)name, NULL };
	pid_t p = spawn(argv, 0);

	for (int i = 0; i < 500; i++) {
		if (sd_bus_get_name_creds(w->observer, name, 0, NULL) >= 0) {
			assert_true(reaches_nice(p, SERVICE_NICE, 1000));
			return p;
		}
		usleep(10000);
	}
	fail_msg("service %s did not appear", name);
	return -1;
}

static pid_t busctl_work(struct world *w, const char *name, const char *ms, uid_t uid)
{
	char *argv[] = { "busctl", "--address", w->address, "call", (char *)name, "/w", IFACE, "Work", "u", (char *)ms,
			 NULL };

	return spawn(argv, uid);
}

/* busctl calling A's Relay, which calls B's Work(ms) */
static pid_t busctl_relay(struct world *w, const char *ms, uid_t uid)
{
	char *argv[] = { "busctl", "--address", w->address, "call", "org.importance.A", "/w", IFACE, "Relay", "su",
			 "org.importance.B", (char *)ms, NULL };

	return spawn(argv, uid);
}

static impc_status engine(struct world *w)
{
	impc_status st = { 0 };
	impc *c;

	assert_int_equal(impc_connect(w->imp_sock, IMPC_MONITOR, &c, NULL), 0);
	assert_int_equal(impc_status_get(c, &st), 0);
	impc_close(c);
	return st;
}

static char *impctl_text(struct world *w, bool graph)
{
	char *text = NULL;
	impc *c;

	assert_int_equal(impc_connect(w->imp_sock, IMPC_MONITOR, &c, NULL), 0);
	assert_int_equal(graph ? impc_graph(c, &text) : impc_tasks(c, &text), 0);
	impc_close(c);
	return text;
}

/* No call is tracked any more; with no service left, no task either. */
static void assert_engine_idle(struct world *w, bool no_tasks)
{
	impc_status st = { 0 };

	for (int i = 0; i < 200; i++) {
		st = engine(w);
		if (st.messages == 0 && st.inherits == 0 && (!no_tasks || st.task_elems == 0))
			break;
		usleep(10000);
	}
	if (st.messages || st.inherits || (no_tasks && st.task_elems)) {
		char *tasks = impctl_text(w, false);

		fprintf(stderr, "%s: engine not idle: %llu tasks, %llu messages, %llu inherits\n%s", w->kind,
			(unsigned long long)st.task_elems, (unsigned long long)st.messages,
			(unsigned long long)st.inherits, tasks);
		free(tasks);
	}
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.inherits, 0);
	if (no_tasks)
		assert_int_equal(st.task_elems, 0);
}

static size_t count(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* ------------------------------------------------------------------ */
/* tests                                                                */
/* ------------------------------------------------------------------ */

static void test_busctl_boosts_while_pending(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	pid_t c = busctl_work(w, "org.importance.A", "1500", 0);
	char *tasks;

	assert_true(reaches_nice(s, BOOST_NICE, 1000));
	tasks = impctl_text(w, false);
	assert_non_null(strstr(tasks, "bus-recv"));
	free(tasks);
	assert_int_equal(wait_exit(c, 5000), 0);
	assert_true(reaches_nice(s, SERVICE_NICE, 1000));
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

static void test_gdbus_boosts_while_pending(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	char *argv[] = { "gdbus", "call", "--address", w->address, "--dest", "org.importance.A", "--object-path", "/w",
			 "--method", IFACE ".Work", "1500", NULL };
	pid_t c = spawn(argv, 0);

	assert_true(reaches_nice(s, BOOST_NICE, 1000));
	assert_int_equal(wait_exit(c, 5000), 0);
	assert_true(reaches_nice(s, SERVICE_NICE, 1000));
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

static void test_non_donor_boosts_nothing(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	pid_t c = busctl_work(w, "org.importance.A", "1000", NOBODY);

	assert_true(keeps_nice(s, SERVICE_NICE, 700));
	assert_int_equal(wait_exit(c, 5000), 0);
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

/* impctl donor on a bus caller: its pending call is raised, then not. */
static void test_impctl_donor_on_a_caller(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	pid_t c = busctl_work(w, "org.importance.A", "3000", NOBODY);
	impc *admin;

	assert_true(keeps_nice(s, SERVICE_NICE, 300));
	assert_int_equal(impc_connect(w->imp_sock, IMPC_MONITOR, &admin, NULL), 0);
	assert_int_equal(impc_donor(admin, c, true), 0);
	assert_true(reaches_nice(s, BOOST_NICE, 1000));
	assert_int_equal(impc_donor(admin, c, false), 0);
	assert_true(reaches_nice(s, SERVICE_NICE, 1000));
	impc_close(admin);
	assert_int_equal(wait_exit(c, 5000), 0);
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

static void test_caller_killed_mid_call(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	pid_t c = busctl_work(w, "org.importance.A", "4000", 0);

	assert_true(reaches_nice(s, BOOST_NICE, 1000));
	reap(c, SIGKILL);
	/* unboosted on the caller's disconnect, long before the work ends */
	assert_true(reaches_nice(s, SERVICE_NICE, 1000));
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

static void test_service_killed_mid_call(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	pid_t c = busctl_work(w, "org.importance.A", "4000", 0);

	assert_true(reaches_nice(s, BOOST_NICE, 1000));
	reap(s, SIGKILL);
	assert_true(wait_exit(c, 3000) > 0); /* busctl says the call failed */
	assert_engine_idle(w, true);
}

static void test_chain_boosts_both(void **state)
{
	struct world *w = world_of(state);
	pid_t a = start_service(w, "org.importance.A");
	pid_t b = start_service(w, "org.importance.B");
	pid_t c = busctl_relay(w, "1500", 0);
	char *graph;

	assert_true(reaches_nice(a, BOOST_NICE, 1000));
	assert_true(reaches_nice(b, BOOST_NICE, 1000));
	/* both calls are raised messages: client -> A, A -> B */
	graph = impctl_text(w, true);
	assert_int_equal(count(graph, "msg\\nraised"), 2);
	free(graph);
	assert_int_equal(wait_exit(c, 5000), 0);
	assert_true(reaches_nice(a, SERVICE_NICE, 1000));
	assert_true(reaches_nice(b, SERVICE_NICE, 1000));
	reap(a, SIGTERM);
	reap(b, SIGTERM);
	assert_engine_idle(w, true);
}

static void test_chain_from_non_donor_boosts_nothing(void **state)
{
	struct world *w = world_of(state);
	pid_t a = start_service(w, "org.importance.A");
	pid_t b = start_service(w, "org.importance.B");
	pid_t c = busctl_relay(w, "1000", NOBODY);

	assert_true(keeps_nice(b, SERVICE_NICE, 600));
	assert_int_equal(nice_of(a), SERVICE_NICE);
	assert_int_equal(wait_exit(c, 5000), 0);
	reap(a, SIGTERM);
	reap(b, SIGTERM);
	assert_engine_idle(w, true);
}

static void test_flood_leaves_nothing(void **state)
{
	struct world *w = world_of(state);
	pid_t s = start_service(w, "org.importance.A");
	char *argv[] = { (char *)self_exe, "flood", w->address, "org.importance.A", "300", NULL };
	pid_t f = spawn(argv, 0);

	assert_int_equal(wait_exit(f, 60000), 0);
	assert_true(reaches_nice(s, SERVICE_NICE, 2000));
	assert_engine_idle(w, false);
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

/* Only services owning a name under dbus-receiver-name accept boosts, a
 * bus tracks at most dbus-max-calls calls, and with dbus-batch-usec 0 each
 * message is handled as it comes.  importanced is restarted for it and
 * then again as the other tests have it. */
static void test_receiver_rules_and_bounds(void **state)
{
	struct world *w = world_of(state);
	pid_t a, b, c1, c2, c3;

	assert_int_equal(stop_importanced(w), 0);
	assert_int_equal(
		start_importanced(w, "--dbus-receiver-name org.importance.B --dbus-batch-usec 0 --dbus-max-calls 1"), 0);
	a = start_service(w, "org.importance.A");
	b = start_service(w, "org.importance.B");
	c1 = busctl_work(w, "org.importance.A", "800", 0);
	assert_true(keeps_nice(a, SERVICE_NICE, 500)); /* A accepts no boosts */
	assert_int_equal(wait_exit(c1, 5000), 0);
	c2 = busctl_work(w, "org.importance.B", "1200", 0);
	c3 = busctl_work(w, "org.importance.B", "1200", 0);
	assert_true(reaches_nice(b, BOOST_NICE, 1000));
	usleep(300000);
	assert_int_equal(engine(w).messages, 1); /* the second call is beyond the bound */
	assert_int_equal(wait_exit(c2, 5000), 0);
	assert_int_equal(wait_exit(c3, 5000), 0);
	assert_true(reaches_nice(b, SERVICE_NICE, 1000));
	reap(a, SIGTERM);
	reap(b, SIGTERM);
	assert_engine_idle(w, true);
	assert_int_equal(stop_importanced(w), 0);
	assert_int_equal(start_importanced(w, NULL), 0);
}

/* A bus not run by root is believed only about its owner's processes
 * (issue 15.1): on a dbus-daemon that nobody runs, root's call (root is a
 * donor) to nobody's service boosts nothing, where on root's bus it does
 * (test_busctl_boosts_while_pending). */
static void test_user_bus_believes_only_its_user(void **state)
{
	struct world *root_world = world_of(state), u = { .kind = "nobody's bus" };
	char cfg[128];
	pid_t bus, s, c;

	/* Once, in the dbus-daemon pass: its bus of nobody's is a dbus-daemon
	 * whatever the pass (dbus-broker's launcher needs root here; the rule
	 * is the bus's, not its kind's). */
	if (strcmp(root_world->kind, "dbus-daemon"))
		return;
	snprintf(u.dir, sizeof(u.dir), "/tmp/test-dbus-user.XXXXXX");
	assert_non_null(mkdtemp(u.dir));
	assert_int_equal(chown(u.dir, NOBODY, NOBODY), 0);
	snprintf(u.sock, sizeof(u.sock), "%s/bus", u.dir);
	snprintf(u.address, sizeof(u.address), "unix:path=%s", u.sock);
	snprintf(cfg, sizeof(cfg), "%s/bus.conf", u.dir);
	assert_non_null(buslaunch_config(cfg, u.address));
	bus = fork();
	assert_true(bus >= 0);
	if (bus == 0) {
		char arg[160];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(arg, sizeof(arg), "--config-file=%s", cfg);
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(126);
		execlp("dbus-daemon", "dbus-daemon", arg, "--nofork", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && access(u.sock, F_OK) < 0; i++)
		usleep(10000);
	assert_int_equal(access(u.sock, F_OK), 0);
	assert_int_equal(start_importanced(&u, NULL), 0);
	assert_non_null(u.observer = buslaunch_connect(u.address));
	s = start_service(&u, "org.importance.A");
	c = busctl_work(&u, "org.importance.A", "1200", 0);
	assert_true(keeps_nice(s, SERVICE_NICE, 900));
	assert_int_equal(wait_exit(c, 5000), 0);
	reap(s, SIGTERM);
	assert_engine_idle(&u, true);
	sd_bus_flush_close_unref(u.observer);
	assert_int_equal(stop_importanced(&u), 0);
	kill(bus, SIGTERM);
	waitpid(bus, NULL, 0);
	unlink(u.sock);
	unlink(cfg);
	rmdir(u.dir);
}

/* ------------------------------------------------------------------ */
/* a stalled bus                                                        */
/* ------------------------------------------------------------------ */

#define STALL_CYCLES 4
#define STALL_PHASE_MS 1000 /* each phase (healthy, stalled) lasts this */
/* a round trip is due this often: within importanced's real-time budget
 * (daemon-rt-budget-us), beyond which its loop runs at nice 19 */
#define STALL_PERIOD_US 5000
#define STALL_TRIPS_MAX (STALL_CYCLES * (STALL_PHASE_MS * 1000 / STALL_PERIOD_US + 1))
#define STALL_STOP_US 40000 /* a stalled bus is stopped this long, */
#define STALL_RUN_US 2000   /* then runs this long, and so on */
#define STALL_SLACK_US 1000 /* the stalled p99 may exceed the healthy one by this */
#define STALL_CALLERS 100 /* new connections calling the bus service as a stall begins */

static pid_t stalled_bus; /* SIGCONT in the teardown, whatever failed */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* sig to pid and every process under it (dbus-broker runs under its launcher) */
static void signal_tree(pid_t pid, int sig)
{
	char path[64], buf[512], *save = NULL;
	FILE *f;

	kill(pid, sig);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if (!(f = fopen(path, "r")))
		return;
	if (fgets(buf, sizeof(buf), f))
		for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
			signal_tree((pid_t)atoi(t), sig);
	fclose(f);
}

static int continue_bus(void **state)
{
	if (stalled_bus > 0)
		signal_tree(stalled_bus, SIGCONT);
	stalled_bus = 0;
	return kill_kids(state);
}

/* One round trip to stall.echo, due at due (us): from then to its reply,
 * in us (a trip that could not start on time counts from when it was due,
 * so that a loop held up shows in every trip it held up, not in one).  The
 * echo must have been served boosted (the request's voucher). */
static uint64_t echo_trip(impc *c, uint64_t to, uint64_t reply, uint64_t due)
{
	impc_send_args req = { to, "x", 1, 0, reply, 0, NULL, 0 };
	impc_message m;
	uint64_t now = now_us();
	int served = 0;

	if (now < due)
		usleep((useconds_t)(due - now));
	assert_int_equal(impc_send_receive(c, &req, 0, reply, 5000, 0, &m), 0);
	now = now_us();
	assert_int_equal(m.len, sizeof(served));
	memcpy(&served, m.data, sizeof(served));
	free(m.data);
	assert_int_equal(served, BOOST_NICE);
	return now - due;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t p99(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(n * 99) / 100];
}

static int on_stall_reply(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)m;
	(void)userdata;
	(void)err;
	return 0;
}

/* Round trips (each a boost and an unboost) on importanced's own socket
 * while the bus it watches is stalled: stopped with SIGSTOP for 40 ms at a
 * time and let run for 2 ms between, as STALL_CALLERS connections new to
 * importanced call the bus service, so that the look-ups of their callers
 * are asked of a bus that answers them late or not at all.  Healthy phases
 * (the bus running, quiet) and stalled ones alternate, side by side: the
 * stalled p99 is within 1 ms of the healthy one (a look-up waited for on
 * the loop would hold every round trip up for as long as the bus is
 * stopped).  Then the bus runs again and a call on it boosts. */
static void test_stalled_bus_stalls_no_client(void **state)
{
	struct world *w = world_of(state);
	char *echo_argv[] = { (char *)self_exe, "echo", w->imp_sock, NULL };
	uint64_t *healthy = calloc(STALL_TRIPS_MAX, sizeof(uint64_t)), *stalled = calloc(STALL_TRIPS_MAX, sizeof(uint64_t));
	uint64_t to = 0, reply = 0, ph = 0, ps = 0;
	sd_bus *callers[STALL_CALLERS];
	pid_t s, echo, call;
	impc *c = NULL;

	assert_non_null(healthy);
	assert_non_null(stalled);
	/* real time for all it does here: past its default budget (3 ms a
	 * 100 ms window, rt.h) a loop this busy would run at nice 19 on a
	 * loaded machine, and that, not the bus, would be measured */
	assert_int_equal(stop_importanced(w), 0);
	assert_int_equal(start_importanced(w, "--daemon-rt-budget-us 90000"), 0);
	s = start_service(w, "org.importance.A");
	echo = spawn(echo_argv, 0);
	assert_int_equal(impc_connect(w->imp_sock, 0, &c, NULL), 0);
	for (int i = 0; i < 500 && impc_lookup(c, "stall.echo", &to) < 0; i++)
		usleep(10000);
	assert_int_equal(impc_lookup(c, "stall.echo", &to), 0);
	assert_int_equal(impc_port_allocate(c, false, &reply), 0);
	/* a loaded machine can spoil one attempt; a loop that waits on the bus
	 * spoils every one */
	for (int attempt = 0; attempt < 3; attempt++) {
		size_t nh = 0, ns = 0;

		for (int cycle = 0; cycle < STALL_CYCLES; cycle++) {
			uint64_t due, flip;
			bool stopped = true;

			for (int i = 0; i < STALL_CALLERS; i++) {
				const char *unique = NULL;

				assert_non_null(callers[i] = buslaunch_connect(w->address));
				assert_true(sd_bus_get_unique_name(callers[i], &unique) >= 0); /* Hello answered */
			}
			usleep(300000); /* their arrival is through */
			due = now_us();
			for (uint64_t end = due + STALL_PHASE_MS * 1000; due < end; due += STALL_PERIOD_US)
				healthy[nh++] = echo_trip(c, to, reply, due);
			stalled_bus = w->bus_pid;
			signal_tree(w->bus_pid, SIGSTOP);
			for (int i = 0; i < STALL_CALLERS; i++) {
				assert_true(sd_bus_call_method_async(callers[i], NULL, "org.importance.A", "/w", IFACE, "Work",
								      on_stall_reply, NULL, "u", 0) >= 0);
				assert_true(sd_bus_flush(callers[i]) >= 0); /* into the stopped bus's socket */
			}
			flip = due = now_us();
			for (uint64_t end = due + STALL_PHASE_MS * 1000; due < end; due += STALL_PERIOD_US) {
				stalled[ns++] = echo_trip(c, to, reply, due);
				if (now_us() - flip >= (stopped ? STALL_STOP_US : STALL_RUN_US)) {
					signal_tree(w->bus_pid, stopped ? SIGCONT : SIGSTOP);
					stopped = !stopped;
					flip = now_us();
				}
			}
			signal_tree(w->bus_pid, SIGCONT);
			stalled_bus = 0;
			for (int i = 0; i < STALL_CALLERS; i++)
				sd_bus_close_unref(callers[i]);
		}
		ph = p99(healthy, nh);
		ps = p99(stalled, ns);
		fprintf(stderr, "test-dbus: %s: round trips with a boost, p99: healthy bus %llu us (%zu), stalled bus %llu us (%zu)\n",
			w->kind, (unsigned long long)ph, nh, (unsigned long long)ps, ns);
		if (ps <= ph + STALL_SLACK_US)
			break;
	}
	assert_true(ps <= ph + STALL_SLACK_US);
	free(healthy);
	free(stalled);
	/* the watcher is back: a donor's call boosts the service again */
	call = busctl_work(w, "org.importance.A", "1500", 0);
	assert_true(reaches_nice(s, BOOST_NICE, 2000));
	assert_int_equal(wait_exit(call, 5000), 0);
	assert_true(reaches_nice(s, SERVICE_NICE, 1000));
	impc_close(c);
	reap(echo, SIGTERM);
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
	assert_int_equal(stop_importanced(w), 0);
	assert_int_equal(start_importanced(w, NULL), 0);
}

/*
 * A busy bus: reading the monitor spends importanced's real-time budget
 * in every window.  Spent on the bus, it steps aside to SCHED_OTHER at its
 * own nice, never to nice 19 (where, on a loaded machine, it falls behind
 * the bus by seconds: rt.h), and a donor's call still boosts.
 */
static void test_busy_bus_steps_aside(void **state)
{
	struct world *w = world_of(state);
	char *argv[] = { (char *)self_exe, "traffic", w->address, NULL };
	pid_t s = start_service(w, "org.importance.A"), traffic[2], c;
	int aside = 0, lowered = 0, samples = 0;

	for (int i = 0; i < 2; i++)
		traffic[i] = spawn(argv, 0);
	for (uint64_t end = now_us() + 1500000; now_us() < end; samples++) {
		int policy = sched_getscheduler(w->imp_pid), nice;

		errno = 0;
		nice = getpriority(PRIO_PROCESS, (id_t)w->imp_pid);
		assert_true(policy >= 0 && errno == 0);
		if ((policy & ~SCHED_RESET_ON_FORK) == SCHED_OTHER)
			aside++;
		if (nice == 19)
			lowered++;
		usleep(1000);
	}
	fprintf(stderr, "test-dbus: %s: busy bus: importanced off real time in %d of %d samples, at nice 19 in %d\n",
		w->kind, aside, samples, lowered);
	assert_true(aside > 0);
	assert_int_equal(lowered, 0);
	/* the watcher keeps up (dbus-broker hands it a few messages per read:
	 * dbus.c's "behind"): a donor's call on the busy bus boosts, and the
	 * boost ends with the call */
	c = busctl_work(w, "org.importance.A", "3000", 0);
	assert_true(reaches_nice(s, BOOST_NICE, 2000));
	assert_int_equal(wait_exit(c, 5000), 0);
	assert_true(reaches_nice(s, SERVICE_NICE, 2000));
	for (int i = 0; i < 2; i++)
		reap(traffic[i], SIGKILL);
	reap(s, SIGTERM);
	assert_engine_idle(w, true);
}

#define WORLD_TESTS(w)                                                                        \
	cmocka_unit_test_prestate_setup_teardown(test_busctl_boosts_while_pending, NULL, kill_kids, w),  \
	cmocka_unit_test_prestate_setup_teardown(test_gdbus_boosts_while_pending, NULL, kill_kids, w),   \
	cmocka_unit_test_prestate_setup_teardown(test_non_donor_boosts_nothing, NULL, kill_kids, w),     \
	cmocka_unit_test_prestate_setup_teardown(test_impctl_donor_on_a_caller, NULL, kill_kids, w),     \
	cmocka_unit_test_prestate_setup_teardown(test_caller_killed_mid_call, NULL, kill_kids, w),       \
	cmocka_unit_test_prestate_setup_teardown(test_service_killed_mid_call, NULL, kill_kids, w),      \
	cmocka_unit_test_prestate_setup_teardown(test_chain_boosts_both, NULL, kill_kids, w),            \
	cmocka_unit_test_prestate_setup_teardown(test_chain_from_non_donor_boosts_nothing, NULL, kill_kids, w), \
	cmocka_unit_test_prestate_setup_teardown(test_flood_leaves_nothing, NULL, kill_kids, w),             \
	cmocka_unit_test_prestate_setup_teardown(test_receiver_rules_and_bounds, NULL, kill_kids, w),        \
	cmocka_unit_test_prestate_setup_teardown(test_user_bus_believes_only_its_user, NULL, kill_kids, w),     \
	cmocka_unit_test_prestate_setup_teardown(test_busy_bus_steps_aside, NULL, kill_kids, w),             \
	cmocka_unit_test_prestate_setup_teardown(test_stalled_bus_stalls_no_client, NULL, continue_bus, w)

int main(int argc, char **argv)
{
	const struct CMUnitTest daemon_tests[] = { WORLD_TESTS(&worlds[0]) };
	const struct CMUnitTest broker_tests[] = { WORLD_TESTS(&worlds[1]) };
	int failed = 0;

	if (argc >= 4 && !strcmp(argv[1], "service"))
		return service_main(argv[2], argv[3]);
	if (argc >= 5 && !strcmp(argv[1], "flood"))
		return flood_main(argv[2], argv[3], (unsigned)atoi(argv[4]));
	if (argc >= 3 && !strcmp(argv[1], "echo"))
		return echo_main(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "traffic"))
		return traffic_main(argv[2]);
	if (argc < 2) {
		fprintf(stderr, "usage: test-dbus IMPORTANCED [DBUS_BROKER_ROOT]\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("test-dbus: not root, skipped (boosts lower nice values; services run as another uid)\n");
		return 77;
	}
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	self_exe = "/proc/self/exe";
	importanced_bin = argv[1];
	broker_root = argc > 2 && argv[2][0] ? argv[2] : NULL;
	signal(SIGPIPE, SIG_IGN);
	{
		static char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (n > 0) {
			exe[n] = '\0';
			self_exe = exe;
		}
	}
	void *d = &worlds[0], *b = &worlds[1];

	if (start_world(&d) < 0)
		return 1;
	failed += cmocka_run_group_tests_name("dbus-daemon", daemon_tests, NULL, NULL);
	failed += stop_world(&d) < 0;
	if (start_world(&b) < 0)
		return 1;
	failed += cmocka_run_group_tests_name("dbus-broker", broker_tests, NULL, NULL);
	failed += stop_world(&b) < 0;
	return failed ? 1 : 0;
}

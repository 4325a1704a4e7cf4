/*
 * Attacks on importanced's D-Bus source from an unprivileged second uid
 * (impattack), against a real importanced (root, nice backend, a private
 * socket, no state dir) and real buses (docs/security.md, "D-Bus"):
 *
 *   - a fake bus: the attacker serves their own "bus" (sd-bus in server
 *     mode, this program) at the address importanced watches, in a
 *     directory the attacker owns, as a user's session bus is; it lies in
 *     GetConnectionCredentials (a root process and a process of another
 *     uid as services, with calls from donors to them) and, in another
 *     test, answers no look-up at all while it claims hundreds of
 *     connections;
 *   - a stale pid on root's real dbus-daemon (1.14: no ProcessFD): the
 *     attacker's connection outlives the process that connected, whose pid
 *     is then given (clone3 set_tid) to a root process and to a later
 *     process of the attacker's, and root says `impctl donor PID on`;
 *   - the shared tables: the attacker, no donor, fills the call and name
 *     tables of root's bus while root's call to another user's service must
 *     still boost it.
 *
 * A negative assertion waits NEGATIVE_MS (every one follows a positive
 * control that shows the same path boosting where the rule allows it).
 * Needs root; skips (77) without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "buslaunch.h"
#include "e2e.h"
#include "importance/client.h"

#define SERVICE_NICE 10
#define ROOT_NICE 5
#define BOOST_NICE -10 /* importanced's default boost-nice */
#define NOBODY 65534
#define IFACE "org.importance.Test"
#define DRIVER "org.freedesktop.DBus"
#define DRIVER_PATH "/org/freedesktop/DBus"
/* how long a negative assertion watches a nice value (after a positive
 * control has shown the same path boosting within POSITIVE_MS) */
#define NEGATIVE_MS 1500
#define POSITIVE_MS 5000

static uid_t auid;
static gid_t agid;
static char tmpdir[64];

/* processes that are no e2e_fork child of ours (grandchildren, clone3) */
static pid_t extra[16];
static int n_extra;

static int teardown(void **state)
{
	while (n_extra > 0) {
		pid_t p = extra[--n_extra];

		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	if (e2e_daemon_pid > 0) {
		kill(e2e_daemon_pid, SIGTERM);
		waitpid(e2e_daemon_pid, NULL, 0);
		e2e_daemon_pid = 0;
	}
	return e2e_teardown(state);
}

static bool keeps_nice(pid_t pid, int want, int ms)
{
	uint64_t end = e2e_now_ms() + (uint64_t)ms;

	do {
		if (e2e_nice(pid) != want)
			return false;
		usleep(5000);
	} while (e2e_now_ms() < end);
	return true;
}

/* A process that only waits, at nice, as uid (0: root). */
static pid_t sleeper(uid_t uid, gid_t gid, int nice)
{
	pid_t p = e2e_fork();

	assert_true(p >= 0);
	if (p == 0) {
		setpriority(PRIO_PROCESS, 0, nice);
		if (uid)
			e2e_become(uid, gid);
		for (;;)
			pause();
	}
	assert_true(e2e_wait_nice(p, nice, 2000) >= 0);
	return p;
}

/* A fresh state dir of root's for one importanced. */
static const char *state_dir(void)
{
	static char dir[128];
	static unsigned n;

	snprintf(dir, sizeof(dir), "%s/state.%u", tmpdir, n++);
	assert_int_equal(mkdir(dir, 0700), 0);
	return dir;
}

static impc_status engine(void)
{
	impc_status st = { 0 };
	impc *c;

	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL), 0);
	assert_int_equal(impc_status_get(c, &st), 0);
	impc_close(c);
	return st;
}

/* ------------------------------------------------------------------ */
/* the fake bus: the attacker's own server at the watched address       */
/* ------------------------------------------------------------------ */

/* What the fake bus says a connection is. */
struct claim {
	const char *unique;
	pid_t pid;
	uid_t uid;
};

struct fake {
	struct claim claims[8];
	int n_claims;
	struct {
		const char *from, *to;
	} calls[8];
	int n_calls;
	bool silent;     /* GetConnectionCredentials is never answered */
	bool mute;       /* BecomeMonitor is never answered */
	unsigned becomes; /* BecomeMonitor asked */
	struct claim fallback; /* what any other connection is (pid 0: none) */
	unsigned flood;  /* connections claimed, each calling :1.9, every FLOOD_MS */
	unsigned flood_max; /* in all (0: no end) */
	unsigned next;   /* the next flood connection's number */
	unsigned asked;  /* GetConnectionCredentials asked */
	char report[160]; /* where asked is written, every FLOOD_MS */
	sd_bus *monitor; /* importanced's monitor, once it asked */
	sd_event *ev;
	unsigned hellos;
};

#define FLOOD_MS 100

static void fake_signal(sd_bus *b, const char *name, const char *old, const char *new)
{
	sd_bus_message *m = NULL;

	if (sd_bus_message_new_signal(b, &m, DRIVER_PATH, DRIVER, "NameOwnerChanged") < 0 ||
	    sd_bus_message_set_sender(m, DRIVER) < 0 || sd_bus_message_append(m, "sss", name, old, new) < 0 ||
	    sd_bus_send(b, m, NULL) < 0)
		_exit(20);
	sd_bus_message_unref(m);
}

/* A method call from from to to, expecting a reply that never comes. */
static void fake_call(sd_bus *b, const char *from, const char *to)
{
	sd_bus_message *m = NULL;
	uint64_t cookie;

	if (sd_bus_message_new_method_call(b, &m, to, "/w", IFACE, "Work") < 0 ||
	    sd_bus_message_set_sender(m, from) < 0 || sd_bus_message_append(m, "u", 0) < 0 ||
	    sd_bus_send(b, m, &cookie) < 0)
		_exit(21);
	sd_bus_message_unref(m);
}

static void fake_report(struct fake *f)
{
	FILE *out = f->report[0] ? fopen(f->report, "w") : NULL;

	if (out) {
		fprintf(out, "%u %u %u\n", f->asked, f->next, f->becomes);
		fclose(out);
	}
}

static void fake_flood(struct fake *f)
{
	fake_report(f);
	for (unsigned i = 0; i < f->flood && (!f->flood_max || f->next < f->flood_max); i++) {
		char u[32];

		snprintf(u, sizeof(u), ":1.%u", 1000 + f->next++);
		fake_signal(f->monitor, u, "", u);
		fake_call(f->monitor, u, ":1.9");
	}
	sd_bus_flush(f->monitor);
}

static int on_flood_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct fake *f = userdata;

	fake_flood(f);
	sd_event_source_set_time(s, usec + FLOOD_MS * 1000);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT); /* a time source fires once unless set again */
	return 0;
}

/* Everything importanced's connections ask, answered as the attacker likes. */
static int on_fake_message(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct fake *f = userdata;
	sd_bus *b = sd_bus_message_get_bus(m);
	const char *member = sd_bus_message_get_member(m), *arg = NULL;
	sd_bus_message *reply = NULL;

	(void)err;
	if (!sd_bus_message_is_method_call(m, NULL, NULL) || !member)
		return 1;
	if (!strcmp(member, "Hello")) {
		char u[32];

		snprintf(u, sizeof(u), ":1.%u", 900 + f->hellos++);
		sd_bus_reply_method_return(m, "s", u);
	} else if (!strcmp(member, "BecomeMonitor")) {
		f->becomes++;
		if (f->mute) {
			fake_report(f);
			return 1;
		}
		sd_bus_reply_method_return(m, NULL);
		f->monitor = sd_bus_ref(b);
		for (int i = 0; i < f->n_claims; i++)
			fake_signal(b, f->claims[i].unique, "", f->claims[i].unique);
		for (int i = 0; i < f->n_calls; i++)
			fake_call(b, f->calls[i].from, f->calls[i].to);
		if (f->flood) {
			fake_flood(f);
			sd_event_add_time_relative(f->ev, NULL, CLOCK_MONOTONIC, FLOOD_MS * 1000, 1000, on_flood_timer, f);
		}
	} else if (!strcmp(member, "GetConnectionCredentials")) {
		const struct claim *c = NULL;

		f->asked++;
		if (f->silent)
			return 1; /* importanced waits for nothing */
		sd_bus_message_read(m, "s", &arg);
		for (int i = 0; arg && i < f->n_claims; i++)
			if (!strcmp(f->claims[i].unique, arg))
				c = &f->claims[i];
		if (!c && f->fallback.pid)
			c = &f->fallback;
		if (!c) {
			sd_bus_reply_method_errorf(m, "org.freedesktop.DBus.Error.NameHasNoOwner", "no %s", arg);
			return 1;
		}
		if (sd_bus_message_new_method_return(m, &reply) >= 0 &&
		    sd_bus_message_append(reply, "a{sv}", 2, "ProcessID", "u", (uint32_t)c->pid, "UnixUserID", "u",
					  (uint32_t)c->uid) >= 0)
			sd_bus_send(b, reply, NULL);
		sd_bus_message_unref(reply);
	} else if (!strcmp(member, "GetNameOwner")) {
		sd_bus_message_read(m, "s", &arg);
		sd_bus_reply_method_return(m, "s", arg && arg[0] == ':' ? arg : ":1.10");
	} else {
		sd_bus_reply_method_return(m, NULL);
	}
	return 1;
}

static int on_fake_accept(sd_event_source *s, int lfd, uint32_t revents, void *userdata)
{
	struct fake *f = userdata;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	sd_id128_t id;
	sd_bus *b = NULL;

	(void)s;
	(void)revents;
	if (fd < 0)
		return 0;
	if (sd_id128_randomize(&id) < 0 || sd_bus_new(&b) < 0 || sd_bus_set_fd(b, fd, fd) < 0 ||
	    sd_bus_set_server(b, 1, id) < 0 || sd_bus_set_anonymous(b, 1) < 0 || sd_bus_negotiate_fds(b, 1) < 0 ||
	    sd_bus_add_filter(b, NULL, on_fake_message, f) < 0 || sd_bus_attach_event(b, f->ev, 0) < 0 ||
	    sd_bus_start(b) < 0)
		_exit(22);
	return 0; /* the bus lives as long as the fake */
}

/* The attacker's fake bus at path, in a child of the attacker's uid. */
static pid_t fake_bus(struct fake *f, const char *path)
{
	pid_t p = e2e_fork();

	assert_true(p >= 0);
	if (p == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int lfd;

		e2e_become(auid, agid);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
		    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
		    sd_event_default(&f->ev) < 0 || sd_event_add_io(f->ev, NULL, lfd, EPOLLIN, on_fake_accept, f) < 0)
			_exit(23);
		sd_event_loop(f->ev);
		_exit(24);
	}
	for (int i = 0; i < 500 && access(path, F_OK) < 0; i++)
		usleep(10000);
	assert_int_equal(access(path, F_OK), 0);
	return p;
}


/* The fake bus's report: look-ups asked, connections claimed, BecomeMonitor
 * asked (field 0, 1, 2); -1 before it wrote. */
static long reported(const char *report, int field)
{
	FILE *in = fopen(report, "r");
	long v[3] = { -1, -1, -1 };

	if (in) {
		if (fscanf(in, "%ld %ld %ld", &v[0], &v[1], &v[2]) != 3)
			v[0] = v[1] = v[2] = -1;
		fclose(in);
	}
	return v[field];
}

static long asked(const char *report)
{
	return reported(report, 0);
}

static long claimed(const char *report)
{
	return reported(report, 1);
}

/* A directory of the attacker's with the fake bus's socket path in it. */
static void attacker_dir(char *dir, size_t dsize, char *sock, size_t ssize, const char *what)
{
	snprintf(dir, dsize, "%s/%s", tmpdir, what);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chown(dir, auid, agid), 0);
	snprintf(sock, ssize, "%s/bus", dir);
}

/* The attacker's fake bus claims a root process and a process of another
 * uid as services and calls to them from donors (root's and the
 * attacker's: both uids are donors here), and its own service with a call
 * from its own donor.  Only the last may boost (issue 15.1: a user's bus
 * makes only that user's processes donors or boosted). */
static void test_fake_bus_believed_only_about_its_owner(void **state)
{
	char dir[128], sock[160], args[512];
	pid_t root_svc, other_svc, own_svc, root_donor, own_donor;
	struct fake f = { 0 };

	(void)state;
	root_svc = sleeper(0, 0, ROOT_NICE);
	root_donor = sleeper(0, 0, 0);
	other_svc = sleeper(NOBODY, NOBODY, SERVICE_NICE);
	own_svc = sleeper(auid, agid, SERVICE_NICE);
	own_donor = sleeper(auid, agid, 0);
	f.claims[f.n_claims++] = (struct claim){ ":1.10", root_svc, 0 };
	f.claims[f.n_claims++] = (struct claim){ ":1.11", root_donor, 0 };
	f.claims[f.n_claims++] = (struct claim){ ":1.20", other_svc, NOBODY };
	f.claims[f.n_claims++] = (struct claim){ ":1.30", own_svc, auid };
	f.claims[f.n_claims++] = (struct claim){ ":1.31", own_donor, auid };
	/* the root process claimed with the attacker's uid, too */
	f.claims[f.n_claims++] = (struct claim){ ":1.12", root_svc, auid };
	f.calls[f.n_calls].from = ":1.11", f.calls[f.n_calls++].to = ":1.10";
	f.calls[f.n_calls].from = ":1.31", f.calls[f.n_calls++].to = ":1.10";
	f.calls[f.n_calls].from = ":1.31", f.calls[f.n_calls++].to = ":1.12";
	f.calls[f.n_calls].from = ":1.11", f.calls[f.n_calls++].to = ":1.20";
	f.calls[f.n_calls].from = ":1.31", f.calls[f.n_calls++].to = ":1.20";
	f.calls[f.n_calls].from = ":1.31", f.calls[f.n_calls++].to = ":1.30";
	attacker_dir(dir, sizeof(dir), sock, sizeof(sock), "fake");
	fake_bus(&f, sock);
	snprintf(args, sizeof(args), "--dbus unix:path=%s --donor-uid 0 --donor-uid %u --state-dir %s", sock,
		 (unsigned)auid, state_dir());
	e2e_start_daemon(args);
	/* the control: the attacker's own call to its own service boosts */
	assert_true(e2e_wait_nice(own_svc, BOOST_NICE, POSITIVE_MS) >= 0);
	assert_true(keeps_nice(root_svc, ROOT_NICE, NEGATIVE_MS));
	assert_int_equal(e2e_nice(other_svc), SERVICE_NICE);
	assert_int_equal(e2e_nice(root_donor), 0);
	e2e_stop_daemon();
	assert_int_equal(e2e_nice(own_svc), SERVICE_NICE);
}

/* The attacker's fake bus answers no look-up and claims FLOOD_BATCH new
 * connections, each with a call, every FLOOD_MS: another client's HELLO
 * on importanced's socket is still answered at once (the look-ups wait on
 * nothing; on main before issue 15 forty of them took it to 17.8 s) and
 * the daemon's descriptors stay few. */
#define FLOOD_BATCH 400
#define HELLO_MAX_MS 300
#define FDS_MAX 64

static void test_fake_bus_silent_lookups_hold_nothing(void **state)
{
	char dir[128], sock[160], args[512];
	struct fake f = { .silent = true, .flood = FLOOD_BATCH, .flood_max = 2 * FLOOD_BATCH };
	uint64_t worst = 0;
	int fds0, fds_worst = 0;

	(void)state;
	attacker_dir(dir, sizeof(dir), sock, sizeof(sock), "silent");
	snprintf(f.report, sizeof(f.report), "%s/asked", dir);
	snprintf(args, sizeof(args), "--state-dir %s", state_dir());
	e2e_start_daemon(args);
	fds0 = e2e_fd_count(e2e_daemon_pid);
	e2e_stop_daemon();
	fake_bus(&f, sock);
	snprintf(args, sizeof(args), "--dbus unix:path=%s --donor-uid %u --state-dir %s", sock, (unsigned)auid,
		 state_dir());
	e2e_start_daemon(args);
	usleep(500000); /* the flood is under way: its first look-ups time out */
	for (int i = 0; i < 30; i++) {
		uint64_t t0 = e2e_now_ms(), took;
		impc *c;
		int n;

		assert_int_equal(impc_connect(e2e_sock, 0, &c, NULL), 0);
		took = e2e_now_ms() - t0;
		impc_close(c);
		worst = took > worst ? took : worst;
		n = e2e_fd_count(e2e_daemon_pid);
		fds_worst = n > fds_worst ? n : fds_worst;
		usleep(100000);
	}
	fprintf(stderr,
		"test-attack-dbus: silent fake bus: %ld look-ups asked; worst HELLO %llu ms; fds %d at rest, %d at "
		"worst\n",
		asked(f.report), (unsigned long long)worst, fds0, fds_worst);
	assert_true(asked(f.report) >= 64); /* they were asked, and left unanswered */
	assert_true(worst < HELLO_MAX_MS);
	assert_true(fds_worst <= fds0 + FDS_MAX);
	e2e_stop_daemon();
}

/* ------------------------------------------------------------------ */
/* root's real bus                                                      */
/* ------------------------------------------------------------------ */

static char bus_sock[100], bus_address[120];
static pid_t bus_pid;

static void root_bus(void)
{
	char cfg[200];

	snprintf(bus_sock, sizeof(bus_sock), "%s/rootbus", tmpdir);
	snprintf(bus_address, sizeof(bus_address), "unix:path=%s", bus_sock);
	snprintf(cfg, sizeof(cfg), "%s/rootbus.conf", tmpdir);
	assert_non_null(buslaunch_config(cfg, bus_address));
	bus_pid = buslaunch_dbus_daemon(cfg, bus_sock);
	assert_true(bus_pid > 0);
}

/* The end of a test on root's bus: the daemon, then the bus. */
static void stop_all(void)
{
	e2e_stop_daemon();
	kill(bus_pid, SIGTERM);
	waitpid(bus_pid, NULL, 0);
	unlink(bus_sock);
}

/* The attacker's service on root's bus: owns name, at nice 10, and never
 * answers (its calls stay pending). */
static pid_t bus_service(uid_t uid, gid_t gid, const char *name)
{
	int pipefd[2];
	pid_t p;

	assert_int_equal(pipe(pipefd), 0);
	p = e2e_fork();
	assert_true(p >= 0);
	if (p == 0) {
		sd_bus *b;

		setpriority(PRIO_PROCESS, 0, SERVICE_NICE);
		e2e_become(uid, gid);
		if (!(b = buslaunch_connect(bus_address)) || sd_bus_request_name(b, name, 0) < 0)
			_exit(30);
		e2e_say(pipefd[1], 'u');
		for (;;)
			pause();
	}
	close(pipefd[1]);
	assert_int_equal(e2e_hear(pipefd[0], 5000), 'u');
	close(pipefd[0]);
	return p;
}

static int on_noop(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)m;
	(void)userdata;
	(void)err;
	return 0;
}

/* On an open bus b: n calls to name that expect a reply, kept pending. */
static void call_and_wait(sd_bus *b, const char *name, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (sd_bus_call_method_async(b, NULL, name, "/w", IFACE, "Work", on_noop, NULL, "u", 0) < 0)
			_exit(31);
	sd_bus_flush(b);
	for (;;) {
		if (sd_bus_process(b, NULL) < 0)
			_exit(32);
		sd_bus_wait(b, UINT64_MAX);
	}
}

/* A live caller of the attacker's: connects, then on 'c' calls name. */
static pid_t bus_caller(const char *name, int *cmd)
{
	int pipefd[2];
	pid_t p;

	assert_int_equal(pipe(pipefd), 0);
	p = e2e_fork();
	assert_true(p >= 0);
	if (p == 0) {
		sd_bus *b;

		close(pipefd[1]);
		e2e_become(auid, agid);
		if (!(b = buslaunch_connect(bus_address)) || e2e_hear(pipefd[0], 30000) != 'c')
			_exit(33);
		call_and_wait(b, name, 1);
	}
	close(pipefd[0]);
	*cmd = pipefd[1];
	return p;
}

/* Root's call to name on root's bus (busctl, waiting for the reply). */
static pid_t root_calls(const char *name)
{
	char *argv[] = { "busctl", "--address", bus_address, "call", (char *)name, "/w", IFACE, "Work", "u", "0", NULL };
	pid_t p = e2e_fork();

	assert_true(p >= 0);
	if (p == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

/* The attacker's stale connection: a process of the attacker's connects
 * (the bus takes its credentials then), hands the socket to its child and
 * exits; the child says Hello and, on 'c', calls name.  The exited
 * process's pid in *stale; the child is waited for by us (a subreaper). */
static pid_t stale_caller(const char *name, pid_t *stale, int *cmd)
{
	int pipefd[2], back[2];
	pid_t p, child = 0;

	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(pipe(back), 0);
	p = e2e_fork();
	assert_true(p >= 0);
	if (p == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd;

		close(pipefd[1]);
		close(back[0]);
		e2e_become(auid, agid);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", bus_sock);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(34);
		if ((child = fork()) < 0)
			_exit(35);
		if (child > 0) {
			if (write(back[1], &child, sizeof(child)) != sizeof(child))
				_exit(36);
			_exit(0);
		}
		{
			sd_bus *b = NULL;

			while (getppid() == p) /* ours once the connecting process is gone */
				usleep(1000);
			if (sd_bus_new(&b) < 0 || sd_bus_set_fd(b, fd, fd) < 0 || sd_bus_set_bus_client(b, 1) < 0 ||
			    sd_bus_start(b) < 0 || sd_bus_call_method(b, DRIVER, DRIVER_PATH, DRIVER, "GetId", NULL, NULL,
							      "") < 0)
				_exit(37);
			e2e_say(back[1], 'h');
			if (e2e_hear(pipefd[0], 30000) != 'c')
				_exit(38);
			call_and_wait(b, name, 1);
		}
	}
	close(pipefd[0]);
	close(back[1]);
	assert_int_equal(read(back[0], &child, sizeof(child)), (ssize_t)sizeof(child));
	assert_true(n_extra < 16);
	extra[n_extra++] = child;
	assert_int_equal(waitpid(p, NULL, 0), p);
	if (e2e_hear(back[0], 10000) != 'h') {
		int status = 0;

		waitpid(child, &status, WNOHANG);
		fail_msg("the stale connection's holder did not connect (status %d)", status);
	}
	close(back[0]);
	*stale = p;
	*cmd = pipefd[1];
	return child;
}

/* clone3's arguments, as far as set_tid (CLONE_ARGS_SIZE_VER1) */
struct clone_args_v1 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
};

/* A process of uid (0: root) at nice ROOT_NICE on exactly pid, which is
 * free: clone3 with set_tid (root may choose a pid). */
static pid_t on_pid(pid_t pid, uid_t uid, gid_t gid)
{
	pid_t want = pid;
	struct clone_args_v1 args = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&want, .set_tid_size = 1 };
	long p = syscall(SYS_clone3, &args, sizeof(args));

	if (p == 0) {
		setpriority(PRIO_PROCESS, 0, ROOT_NICE);
		if (uid && (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0))
			_exit(40);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(41);
	}
	if (p < 0)
		fail_msg("clone3 set_tid %d: %s", (int)pid, strerror(errno));
	assert_int_equal(p, pid);
	assert_true(n_extra < 16);
	extra[n_extra++] = (pid_t)p;
	assert_true(e2e_wait_nice((pid_t)p, ROOT_NICE, 2000) >= 0);
	return (pid_t)p;
}

static int admin_donor(pid_t pid, bool on)
{
	impc *c;
	int r;

	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL), 0);
	r = impc_donor(c, pid, on);
	impc_close(c);
	return r;
}

/* Issue 15.2 on root's dbus-daemon (no ProcessFD): the attacker's
 * connection outlives the process that connected; that pid is taken by a
 * root process, then by a later process of the attacker's, each after the
 * connection's first appearance; root says `impctl donor PID on`, and the
 * stale connection calls the attacker's service.  Neither process is
 * taken for the connection: the service is not boosted, the process on the
 * pid not reniced.  The control: the same steps from a live caller boost. */
static void test_stale_pid_is_not_the_connection(void **state)
{
	char args[512];
	pid_t svc, live, stale, reused;
	int cmd, r;

	(void)state;
	root_bus();
	snprintf(args, sizeof(args), "--dbus %s --state-dir %s --dbus-batch-usec 0", bus_address, state_dir());
	e2e_start_daemon(args);
	usleep(300000); /* its monitor attaches right after it listens */
	svc = bus_service(auid, agid, "org.importance.Atk");
	/* the control */
	live = bus_caller("org.importance.Atk", &cmd);
	usleep(200000);
	e2e_say(cmd, 'c');
	for (int i = 0; i < 100 && admin_donor(live, true) != 0; i++)
		usleep(50000); /* until its call made its connection known */
	assert_true(e2e_wait_nice(svc, BOOST_NICE, POSITIVE_MS) >= 0);
	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
	close(cmd);
	assert_true(e2e_wait_nice(svc, SERVICE_NICE, POSITIVE_MS) >= 0);

	/* the pid taken by root, then by the attacker's later process */
	for (int round = 0; round < 2; round++) {
		uid_t u = round ? auid : 0;

		stale_caller("org.importance.Atk", &stale, &cmd);
		/* later than its first appearance by more than a clock tick (the
		 * start time's resolution) */
		usleep(50000);
		reused = on_pid(stale, u, round ? agid : 0);
		e2e_say(cmd, 'c');
		usleep(300000); /* its call is seen and its connection asked about */
		r = admin_donor(reused, true);
		fprintf(stderr, "test-attack-dbus: round %d: stale pid %d (uid %u): impctl donor: %d\n", round, (int)stale, (unsigned)u, r);
		if (!keeps_nice(svc, SERVICE_NICE, NEGATIVE_MS)) {
			char *tasks = NULL;
			impc *c;

			if (impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL) == 0 && impc_tasks(c, &tasks) == 0)
				fprintf(stderr, "%s", tasks);
			fail_msg("round %d: the attacker's service went to nice %d", round, e2e_nice(svc));
		}
		assert_int_equal(e2e_nice(reused), ROOT_NICE);
		admin_donor(reused, false);
		close(cmd);
		kill(reused, SIGKILL);
	}
	(void)svc;
	stop_all();
}

/* Issue 15.5 on root's dbus-daemon: the attacker, no donor, leaves many
 * calls unanswered (to its own service) and owns many names; root's call
 * (a donor) to nobody's service still boosts it, and the calls the daemon
 * tracks stay within the attacker's share (1/4 of dbus-max-calls) plus
 * root's. */
#define MAX_CALLS 64
#define MAX_NAMES 64

static void test_shares_survive_a_non_donor(void **state)
{
	char args[512];
	pid_t svc, victim, flooder, namer;
	impc_status st;
	int cmd;

	(void)state;
	root_bus();
	snprintf(args, sizeof(args),
		 "--dbus %s --state-dir %s --donor-uid 0 --dbus-max-calls %d --dbus-max-names %d", bus_address,
		 state_dir(), MAX_CALLS, MAX_NAMES);
	e2e_start_daemon(args);
	usleep(300000);
	svc = bus_service(auid, agid, "org.importance.Atk");
	victim = bus_service(NOBODY, NOBODY, "org.importance.Victim");
	/* the attacker's names: as many as the whole table, on one connection */
	namer = e2e_fork();
	if (namer == 0) {
		sd_bus *b;

		e2e_become(auid, agid);
		if (!(b = buslaunch_connect(bus_address)))
			_exit(50);
		for (int i = 0; i < 2 * MAX_NAMES; i++) {
			char name[64];

			snprintf(name, sizeof(name), "org.importance.Squat%d", i);
			if (sd_bus_request_name(b, name, 0) < 0)
				_exit(51);
		}
		for (;;)
			pause();
	}
	/* the attacker's calls: twice the whole table, left pending */
	flooder = bus_caller("org.importance.Atk", &cmd);
	{
		pid_t p = e2e_fork();

		if (p == 0) {
			sd_bus *b;

			e2e_become(auid, agid);
			if (!(b = buslaunch_connect(bus_address)))
				_exit(52);
			call_and_wait(b, "org.importance.Atk", 2 * MAX_CALLS);
		}
	}
	e2e_say(cmd, 'c');
	usleep(1000000); /* the flood is seen */
	root_calls("org.importance.Victim");
	assert_true(e2e_wait_nice(victim, BOOST_NICE, POSITIVE_MS) >= 0);
	st = engine();
	fprintf(stderr, "test-attack-dbus: shares: %llu messages tracked (share %d)\n", (unsigned long long)st.messages,
		MAX_CALLS / 4);
	assert_true(st.messages <= MAX_CALLS / 4 + 1);
	assert_int_equal(e2e_nice(svc), SERVICE_NICE);
	(void)flooder;
	(void)namer;
	stop_all();
}

/* Issue 15 (bus descriptors): the attacker's fake bus claims thousands of
 * connections, each said to be the attacker's own process (so each is
 * believed and would hold a pidfd), with a call each.  They are counted in
 * the attacker's budget of bus connections (max-user-bus-connections):
 * the daemon's descriptors grow by at most that, and root's call on root's
 * bus, watched by the same daemon, to nobody's service still boosts it. */
#define CLAIMS 3000
#define USER_BUS_BUDGET 200

static void test_fake_bus_claims_cost_its_owner(void **state)
{
	char dir[128], sock[160], args[768];
	struct fake f = { .flood = 500, .flood_max = CLAIMS };
	pid_t own, victim;
	int fds0, fds_worst = 0;

	(void)state;
	root_bus();
	snprintf(args, sizeof(args), "--dbus %s --state-dir %s", bus_address, state_dir());
	e2e_start_daemon(args);
	usleep(300000);
	fds0 = e2e_fd_count(e2e_daemon_pid);
	e2e_stop_daemon();
	own = sleeper(auid, agid, 0);
	f.fallback = (struct claim){ NULL, own, auid };
	attacker_dir(dir, sizeof(dir), sock, sizeof(sock), "claims");
	snprintf(f.report, sizeof(f.report), "%s/asked", dir);
	fake_bus(&f, sock);
	snprintf(args, sizeof(args), "--dbus unix:path=%s --dbus %s --donor-uid 0 --max-user-bus-connections %d --state-dir %s",
		 sock, bus_address, USER_BUS_BUDGET, state_dir());
	e2e_start_daemon(args);
	for (int i = 0; i < 300 && claimed(f.report) < CLAIMS; i++) {
		int n = e2e_fd_count(e2e_daemon_pid);

		fds_worst = n > fds_worst ? n : fds_worst;
		usleep(50000);
	}
	assert_int_equal(claimed(f.report), CLAIMS);
	usleep(500000); /* the last ones are handled */
	victim = bus_service(NOBODY, NOBODY, "org.importance.Victim");
	root_calls("org.importance.Victim");
	assert_true(e2e_wait_nice(victim, BOOST_NICE, POSITIVE_MS) >= 0);
	for (int i = 0; i < 10; i++) {
		int n = e2e_fd_count(e2e_daemon_pid);

		fds_worst = n > fds_worst ? n : fds_worst;
		usleep(50000);
	}
	fprintf(stderr,
		"test-attack-dbus: %d connections claimed, %ld look-ups asked; fds %d with root's bus alone, %d at "
		"worst (budget %d)\n",
		CLAIMS, asked(f.report), fds0, fds_worst, USER_BUS_BUDGET);
	/* the control: the claims were believed up to the budget (pidfds held) */
	assert_true(fds_worst >= fds0 + USER_BUS_BUDGET / 2);
	assert_true(fds_worst <= fds0 + USER_BUS_BUDGET + 32);
	assert_true(asked(f.report) <= USER_BUS_BUDGET + 16);
	stop_all();
}

/* Issue 15 (BecomeMonitor): the attacker's fake bus accepts importanced's
 * connections and never answers BecomeMonitor.  Meanwhile another client's
 * HELLO on importanced's socket is answered at once (before, the call
 * waited up to 500 ms on the loop at every reconnection). */
static void test_fake_bus_mute_monitor_holds_nothing(void **state)
{
	char dir[128], sock[160], args[512];
	struct fake f = { .mute = true };
	uint64_t worst = 0;

	(void)state;
	attacker_dir(dir, sizeof(dir), sock, sizeof(sock), "mute");
	snprintf(f.report, sizeof(f.report), "%s/asked", dir);
	fake_bus(&f, sock);
	snprintf(args, sizeof(args), "--dbus unix:path=%s --state-dir %s", sock, state_dir());
	e2e_start_daemon(args);
	for (int i = 0; i < 300 && reported(f.report, 2) < 1; i++)
		usleep(10000);
	assert_true(reported(f.report, 2) >= 1); /* asked, and left unanswered */
	for (int i = 0; i < 40; i++) {
		uint64_t t0 = e2e_now_ms(), took;
		impc *c;

		assert_int_equal(impc_connect(e2e_sock, 0, &c, NULL), 0);
		took = e2e_now_ms() - t0;
		impc_close(c);
		worst = took > worst ? took : worst;
		usleep(100000);
	}
	fprintf(stderr, "test-attack-dbus: mute fake bus: BecomeMonitor asked %ld times; worst HELLO %llu ms\n",
		reported(f.report, 2), (unsigned long long)worst);
	assert_true(reported(f.report, 2) >= 2); /* asked again after the timeout: each ask was bounded */
	assert_true(worst < HELLO_MAX_MS);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fake_bus_believed_only_about_its_owner, teardown),
		cmocka_unit_test_teardown(test_fake_bus_silent_lookups_hold_nothing, teardown),
		cmocka_unit_test_teardown(test_stale_pid_is_not_the_connection, teardown),
		cmocka_unit_test_teardown(test_shares_survive_a_non_donor, teardown),
		cmocka_unit_test_teardown(test_fake_bus_claims_cost_its_owner, teardown),
		cmocka_unit_test_teardown(test_fake_bus_mute_monitor_holds_nothing, teardown),
	};
	int failed;

	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	if (argc < 2) {
		fprintf(stderr, "usage: test-attack-dbus IMPORTANCED\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("test-attack-dbus: not root, skipped (a second uid, nice values, clone3 set_tid)\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1); /* the stale connections' holders are ours */
	e2e_attacker(&auid, &agid);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-attack-dbus.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	chmod(tmpdir, 0755);
	failed = cmocka_run_group_tests_name("attack-dbus", tests, NULL, NULL);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			failed++;
	}
	return failed ? 1 : 0;
}

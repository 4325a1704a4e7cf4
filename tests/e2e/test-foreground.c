/*
 * The foreground decides who donates (docs/foreground.md), end to end: a
 * real Xvfb with a real window manager (openbox), real X client windows
 * (x11-window) claiming the pids of real importance clients, xdotool
 * switching focus, the session agent (importanced-agent, which runs the
 * X11 source) telling a real importanced (--donor-foreground yes) what is
 * in front, and a niced receiver whose nice value shows the boost.  The
 * agent runs as root and, as users have it, as a second uid outside the
 * apps' login session (as a user unit's process is), where it is believed
 * about that uid's processes only; X going away and coming back.
 *
 *   test-foreground IMPORTANCED IMPORTANCED-AGENT X11-WINDOW
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "e2e.h"
#include "importance/client.h"
#include "importance/importance.h"

#define NICE_SERVER 10
#define NICE_BOOST -10
#define DAEMON_ARGS "--donor-foreground yes --donor-uid root"

static const char *agent_bin, *window_bin;
static pid_t xvfb_pid, wm_pid;
static char display[32];
/* the display windows and focus changes go to */
static const char *cur_display = display;

/* ---- the X server and its window manager, for the whole run ---- */

static pid_t spawn_x(const char *const *argv, int out_fd)
{
	pid_t p = fork();

	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out_fd >= 0 && out_fd != 3) {
			dup2(out_fd, 3);
			close(out_fd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return p;
}

/* An Xvfb on disp (made: "" picks a free number, written back) and an
 * openbox on it, up; 0 or -1. */
static int x_up(char *disp, size_t size, pid_t *xvfb_out, pid_t *wm_out)
{
	const char *xvfb[] = { "Xvfb", "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "640x480x24", NULL, NULL };
	const char *wm[] = { "openbox", "--sm-disable", NULL };
	char buf[16] = { 0 }, cmd[160];
	int fds[2];
	ssize_t n;

	if (disp[0]) {
		xvfb[8] = disp; /* this number: -displayfd still says when it listens */
	}
	if (pipe(fds) < 0)
		return -1;
	*xvfb_out = spawn_x(xvfb, fds[1]);
	close(fds[1]);
	/* the display number and a newline, once it listens (two writes: the
	 * pipe stays open until both are read, or Xvfb dies of EPIPE) */
	for (size_t got = 0; got < sizeof(buf) - 1 && !strchr(buf, '\n'); got += (size_t)n)
		if ((n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) <= 0)
			break;
	n = (ssize_t)strlen(buf);
	close(fds[0]);
	if (n <= 0 || !strchr(buf, '\n')) {
		fprintf(stderr, "test-foreground: Xvfb %s did not start\n", disp);
		return -1;
	}
	buf[strcspn(buf, "\n")] = 0;
	snprintf(disp, size, ":%s", buf);
	setenv("DISPLAY", disp, 1);
	*wm_out = spawn_x(wm, -1);
	setenv("DISPLAY", display[0] ? display : disp, 1);
	/* openbox is up when it has set _NET_SUPPORTING_WM_CHECK */
	snprintf(cmd, sizeof(cmd), "DISPLAY=%s xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'",
		 disp);
	for (int i = 0; i < 200; i++) {
		if (system(cmd) == 0)
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "test-foreground: openbox did not come up on %s\n", disp);
	return -1;
}

static void x_down(pid_t *xvfb, pid_t *wm)
{
	if (*wm > 0 && kill(*wm, SIGTERM) == 0)
		waitpid(*wm, NULL, 0);
	if (*xvfb > 0 && kill(*xvfb, SIGTERM) == 0)
		waitpid(*xvfb, NULL, 0);
	*wm = *xvfb = 0;
}

static int start_x(void **state)
{
	(void)state;
	return x_up(display, sizeof(display), &xvfb_pid, &wm_pid);
}

static int stop_x(void **state)
{
	(void)state;
	x_down(&xvfb_pid, &wm_pid);
	return 0;
}

/* ---- children: a receiver and apps, driven by bytes ---- */

struct child {
	pid_t pid;
	int cmd, reply;
};

enum kind { SERVER, DENAP_SERVER, APP, SERVICE };

/* the cgroup (its cgroup.procs) the next spawned child joins first; "" none */
static char join_cgroup[256];

static void child_main(enum kind k, int cmd, int reply, uid_t uid, gid_t gid)
{
	unsigned flags = k == SERVER ? IMPC_RECEIVER : k == DENAP_SERVER ? IMPC_DENAP_RECEIVER : 0;
	uint64_t port = 0, peer = 0, voucher = 0;
	impc_message m;
	bool donor;
	impc *c;
	char op;

	if (k == APP) {
		/* a login session of its own, as pam_loginuid gives a login:
		 * the kernel hands out a fresh audit session id */
		FILE *f = fopen("/proc/self/loginuid", "w");

		if (!f || fprintf(f, "%u", (unsigned)uid) < 0 || fclose(f) != 0)
			_exit(3);
	}
	if (join_cgroup[0]) {
		FILE *f = fopen(join_cgroup, "w");

		if (!f || fprintf(f, "%d", (int)getpid()) < 0 || fclose(f) != 0)
			_exit(4);
	}
	if (uid)
		e2e_become(uid, gid);
	if (flags)
		setpriority(PRIO_PROCESS, 0, NICE_SERVER);
	if (impc_connect(e2e_sock, flags, &c, &donor) < 0)
		_exit(5);
	if (flags && (impc_port_allocate(c, true, &port) < 0 || impc_register(c, "svc", port) < 0))
		_exit(6);
	e2e_say(reply, donor ? 'D' : 'R');
	while ((op = e2e_hear(cmd, -1))) {
		int e = 0;

		switch (op) {
		case 's':
			if (!peer && (e = impc_lookup(c, "svc", &peer)) < 0)
				break;
			e = impc_send(c, peer, "work", 4, 0, 0, 0, NULL);
			break;
		case 'v':
			if ((e = impc_receive(c, port, 5000, IMPC_RECV_VOUCHER, &m)) < 0)
				break;
			free(m.data);
			voucher = m.voucher;
			break;
		case 'x':
			e = impc_voucher_release(c, voucher);
			break;
		case 'd': /* drop the boost it holds (external assertion) */
			e = impc_voucher_drop_external(c, voucher, 1, NULL) == IMP_KERN_SUCCESS ? 0 : -EINVAL;
			break;
		case 'q':
			impc_close(c);
			_exit(0);
		default:
			e = -EINVAL;
		}
		e2e_say(reply, e < 0 ? 'E' : 'K');
	}
	_exit(0);
}

/* want: 'D' a donor, 'R' not, 0 either; as uid (0: root) */
static struct child spawn_as(enum kind k, char want, uid_t uid, gid_t gid)
{
	int to[2], from[2];
	struct child ch;
	char hello;

	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	ch.pid = e2e_fork();
	assert_true(ch.pid >= 0);
	if (ch.pid == 0) {
		close(to[1]);
		close(from[0]);
		child_main(k, to[0], from[1], uid, gid);
	}
	close(to[0]);
	close(from[1]);
	ch.cmd = to[1];
	ch.reply = from[0];
	hello = e2e_hear(ch.reply, 10000);
	if (want ? hello != want : hello != 'D' && hello != 'R')
		fail_msg("child %d said '%c', not '%c'", (int)ch.pid, hello ? hello : '?', want);
	return ch;
}

static struct child spawn(enum kind k, char want)
{
	return spawn_as(k, want, 0, 0);
}

static void order(struct child *ch, char op)
{
	char c;

	e2e_say(ch->cmd, op);
	c = e2e_hear(ch->reply, 10000);
	if (c != 'K')
		fail_msg("child %d: '%c' answered '%c'", (int)ch->pid, op, c ? c : '?');
}

/* A window titled title claiming pid; waits until it is mapped. */
static void window(const char *title, pid_t pid)
{
	char pidstr[16], buf[16] = { 0 };
	int fds[2];
	pid_t p;

	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	assert_int_equal(pipe(fds), 0);
	p = e2e_fork();
	assert_true(p >= 0);
	if (p == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		setenv("DISPLAY", cur_display, 1);
		execl(window_bin, window_bin, title, pidstr, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (poll(&(struct pollfd){ .fd = fds[0], .events = POLLIN }, 1, 20000) != 1)
		fail_msg("window %s was not mapped within 20 s (openbox %s)", title,
			 kill(wm_pid, 0) == 0 ? "running" : "gone");
	assert_true(read(fds[0], buf, sizeof(buf) - 1) > 0);
	close(fds[0]);
	assert_string_equal(buf, "mapped\n");
}

static void activate(const char *title)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "DISPLAY=%s timeout 20 xdotool search --name '^%s$' windowactivate --sync >/dev/null 2>&1",
		 cur_display, title);
	if (system(cmd) != 0)
		fail_msg("xdotool could not activate window %s", title);
}

static char agent_log[64];

/* The session agent on disp as uid (0: root), its log in agent_log; it
 * has no bus here (the display works without one). */
static pid_t start_agent_flags(const char *disp, uid_t uid, gid_t gid, const char *flag)
{
	pid_t p;

	snprintf(agent_log, sizeof(agent_log), "/tmp/imp-fg-agent.%d.log", (int)getpid());
	unlink(agent_log);
	p = e2e_fork();
	assert_true(p >= 0);
	if (p == 0) {
		int null = open("/dev/null", O_WRONLY), log = open(agent_log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(null, 1);
		dup2(log, 2);
		if (uid)
			e2e_become(uid, gid);
		execl(agent_bin, agent_bin, "--socket", e2e_sock, "--display", disp, "--bus", "unix:path=/nonexistent",
		      "--verbose", flag, (char *)NULL);
		_exit(127);
	}
	return p;
}

static pid_t start_agent_as(const char *disp, uid_t uid, gid_t gid)
{
	return start_agent_flags(disp, uid, gid, NULL);
}

static void start_agent(void)
{
	start_agent_as(display, 0, 0);
}

/* Waits until the agent's log has a line containing what. */
static void agent_said(const char *what, int timeout_ms)
{
	char buf[16384];

	for (int t = 0; t < timeout_ms; t += 20) {
		FILE *f = fopen(agent_log, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = 0;
		if (strstr(buf, what))
			return;
		usleep(20000);
	}
	fail_msg("the agent did not say '%s' within %d ms; its log:\n%s", what, timeout_ms, buf);
}

/* The receiver's nice stays `want` for ms (the point: nothing boosts it). */
static void stays(pid_t pid, int want, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		assert_int_equal(e2e_nice(pid), want);
		usleep(20000);
	}
}

/* ---- tests ---- */

/* The focused app's request boosts the receiver, the unfocused one's does
 * not; focus switching while a request waits drops and restores it. */
static void test_focus_decides(void **state)
{
	struct child s, a, b;

	(void)state;
	e2e_start_daemon(DAEMON_ARGS);
	s = spawn(SERVER, 0);
	a = spawn(APP, 'D'); /* donors by rule: live only in front */
	b = spawn(APP, 'D');
	window("fg-app-a", a.pid);
	window("fg-app-b", b.pid);
	start_agent();

	activate("fg-app-a");
	order(&a, 's');
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	order(&s, 'v');
	order(&s, 'x');
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);

	order(&b, 's'); /* b is not in front: its request waits unboosted */
	stays(s.pid, NICE_SERVER, 600);
	activate("fg-app-b"); /* b comes to the front: its waiting request boosts */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	activate("fg-app-a"); /* and leaves it: the boost drops */
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	stays(s.pid, NICE_SERVER, 300);
	activate("fg-app-b"); /* back: it returns */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	order(&s, 'v');
	order(&s, 'x');
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	e2e_stop_daemon();
}

/* A de-nap receiver: the live-donor change itself drops at once, as the
 * reference's does (it propagates; it is not a voucher release), and
 * comes back with the focus; the receiver dropping the boost it holds
 * (its external assertion) is where the engine's 1.1 s hysteresis applies. */
static void test_denap_hysteresis(void **state)
{
	struct child s, a, b;
	uint64_t t0;
	long ms;

	(void)state;
	e2e_start_daemon(DAEMON_ARGS);
	s = spawn(DENAP_SERVER, 0);
	a = spawn(APP, 'D');
	b = spawn(APP, 'D');
	window("fg-nap-a", a.pid);
	window("fg-nap-b", b.pid);
	start_agent();
	activate("fg-nap-b");
	order(&b, 's');
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	order(&s, 'v'); /* working on it, voucher in hand */
	activate("fg-nap-a");
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	activate("fg-nap-b");
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	t0 = e2e_now_ms();
	order(&s, 'd');
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 8000) >= 0);
	ms = (long)(e2e_now_ms() - t0);
	if (ms < 1000)
		fail_msg("a de-nap receiver unboosted %ld ms after dropping its assertion", ms);
	e2e_stop_daemon();
}

/* A donor in no login session (a service) is not the desktop's to decide:
 * it donates whatever is in front; FOREGROUND none turns the session's
 * donors off; forget gives the static rules back. */
static void test_services_and_none(void **state)
{
	struct child s, a, svc;
	impc *root;

	(void)state;
	e2e_start_daemon(DAEMON_ARGS);
	s = spawn(SERVER, 0);
	a = spawn(APP, 'D');
	svc = spawn(SERVICE, 'D');
	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &root, NULL), 0);
	/* nothing said yet for uid 0: the static rules alone decide */
	order(&a, 's');
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	assert_int_equal(impc_foreground(root, 0, 0), 0); /* nothing in front */
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	order(&svc, 's'); /* the service still donates */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	for (int i = 0; i < 2; i++) { /* both served */
		order(&s, 'v');
		order(&s, 'x');
	}
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	order(&a, 's'); /* not live: waits unboosted */
	stays(s.pid, NICE_SERVER, 300);
	assert_int_equal(impc_foreground(root, a.pid, 0), 0);
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	assert_int_equal(impc_foreground(root, 0, 0), 0);
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	assert_int_equal(impc_foreground(root, 0, IMPC_FOREGROUND_FORGET), 0);
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	/* --cgroup: the app's whole cgroup (here the test's own) */
	assert_int_equal(impc_foreground(root, a.pid, IMPC_FOREGROUND_CGROUP), 0);
	stays(s.pid, NICE_BOOST, 200);
	/* bad input: a clear error */
	assert_int_equal(impc_foreground(root, 0, 8), -EINVAL);
	assert_int_equal(impc_foreground(root, a.pid, IMPC_FOREGROUND_FORGET), -EINVAL);
	assert_int_equal(impc_foreground(root, 0x7ffffff0, 0), -ESRCH);
	impc_close(root);
	e2e_stop_daemon();
}

/* The agent as users run it: a second uid's, outside the apps' login
 * session (as a systemd user unit's process is).  Focus moving from app A
 * to app B (both that uid's, in a login session) stops A's donations (its
 * waiting request's boost drops) and starts B's; a window claiming root's
 * app's pid is not believed: the daemon refuses the agent about another
 * uid's process, the agent says nothing of its user's is in front, and
 * root's waiting request stays unboosted. */
static void test_agent_as_user(void **state)
{
	struct child s, a, b, r;
	char line[64];
	impc *root;
	uid_t uid;
	gid_t gid;

	(void)state;
	e2e_attacker(&uid, &gid);
	e2e_start_daemon(DAEMON_ARGS " --donor-uid impattack");
	s = spawn(SERVER, 0);
	a = spawn_as(APP, 'D', uid, gid);
	b = spawn_as(APP, 'D', uid, gid);
	r = spawn(APP, 'D'); /* root's, in a session of its own */
	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &root, NULL), 0);
	assert_int_equal(impc_foreground(root, 0, 0), 0); /* nothing of root's in front */
	order(&r, 's');
	window("fg-user-a", a.pid);
	window("fg-user-b", b.pid);
	window("fg-user-lie", r.pid);
	activate("fg-user-a");
	start_agent_as(display, uid, gid);
	agent_said("watching the foreground", 10000);
	stays(s.pid, NICE_SERVER, 300); /* root's request: not live */

	order(&a, 's'); /* A is in front: its request boosts */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	activate("fg-user-b"); /* A's donations stop: its waiting request's boost drops */
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	stays(s.pid, NICE_SERVER, 300);
	order(&b, 's'); /* B's start */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);

	activate("fg-user-lie"); /* claims root's app: refused, and told as none */
	snprintf(line, sizeof(line), "claims pid %d: Operation not permitted", (int)r.pid);
	agent_said(line, 5000);
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0); /* B's stopped too */
	stays(s.pid, NICE_SERVER, 600); /* and root's app is still not live */
	activate("fg-user-a"); /* back to A: its waiting request boosts again */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	impc_close(root);
	e2e_stop_daemon();
}

/* X goes away and comes back: the agent keeps trying to connect (it was
 * started before the server), says "forget" when X goes (the static rules
 * decide again: a background app's waiting request boosts), and once X is
 * back tells the new active window. */
static void test_x_restart(void **state)
{
	char disp[32] = "";
	pid_t xvfb = 0, wm = 0;
	struct child s, a, b;

	(void)state;
	e2e_start_daemon(DAEMON_ARGS);
	s = spawn(SERVER, 0);
	a = spawn(APP, 'D');
	b = spawn(APP, 'D');
	order(&b, 's'); /* nothing said yet: the static rules let it boost */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	/* a number of its own, high above the lowest free ones that other
	 * tests' -displayfd picks, so nobody takes it while X is down */
	for (int n = 300 + (int)(getpid() % 300);; n++) {
		char lock[64];

		snprintf(lock, sizeof(lock), "/tmp/.X%d-lock", n);
		if (access(lock, F_OK) != 0) {
			snprintf(disp, sizeof(disp), ":%d", n);
			break;
		}
	}
	start_agent_as(disp, 0, 0);
	agent_said("cannot connect", 10000);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(x_up(disp, sizeof(disp), &xvfb, &wm), 0);
		cur_display = disp;
		window("fg-restart-a", a.pid);
		activate("fg-restart-a"); /* A in front: B's waiting request no longer boosts */
		assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 10000) >= 0);
		stays(s.pid, NICE_SERVER, 300);
		x_down(&xvfb, &wm); /* X gone: forget, the rules decide, B boosts */
		cur_display = display;
		assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	}
	e2e_stop_daemon();
}

/* --foreground-cgroup: the active window names its app's whole cgroup, so
 * that a helper process of the app (another process, the same app cgroup)
 * donates while the app is in front, and another app's cgroup does not. */
/* --no-foreground: the agent does not watch the display it has: the
 * focused app's waiting request stays unboosted. */
static void test_no_foreground(void **state)
{
	struct child s, a;
	char buf[16384];
	size_t n;
	impc *root;
	FILE *f;

	(void)state;
	e2e_start_daemon(DAEMON_ARGS);
	s = spawn(SERVER, 0);
	a = spawn(APP, 'D');
	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &root, NULL), 0);
	assert_int_equal(impc_foreground(root, 0, 0), 0); /* nothing of root's in front */
	order(&a, 's');
	window("fg-off-a", a.pid);
	activate("fg-off-a");
	start_agent_flags(display, 0, 0, "--no-foreground");
	agent_said("trying again every 2 s", 10000); /* up: its bus is not there */
	activate("fg-off-a");
	stays(s.pid, NICE_SERVER, 800);
	assert_non_null(f = fopen(agent_log, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (strstr(buf, "foreground"))
		fail_msg("the agent watched the foreground with --no-foreground:\n%s", buf);
	impc_close(root);
	e2e_stop_daemon();
}

static char cg_base[128];

/* the children killed, then their cgroups removed (passed or not) */
static int cgroup_teardown(void **state)
{
	char path[192];

	e2e_teardown(state);
	join_cgroup[0] = 0;
	if (!cg_base[0])
		return 0;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/app-%c", cg_base, "ab"[i]);
		for (int t = 0; t < 100 && rmdir(path) != 0 && errno == EBUSY; t++)
			usleep(20000);
	}
	rmdir(cg_base);
	cg_base[0] = 0;
	return 0;
}

static void test_foreground_cgroup(void **state)
{
	char *base = cg_base, path[192];
	struct child s, a, helper, b;
	const char *unified = access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0 ? "/sys/fs/cgroup/unified"
											  : "/sys/fs/cgroup";

	(void)state;
	snprintf(cg_base, sizeof(cg_base), "%s/imp-fg-test.%d", unified, (int)getpid());
	assert_int_equal(mkdir(base, 0755), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/app-%c", base, "ab"[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	e2e_start_daemon(DAEMON_ARGS);
	s = spawn(SERVER, 0);
	snprintf(join_cgroup, sizeof(join_cgroup), "%s/app-a/cgroup.procs", base);
	a = spawn(APP, 'D');
	helper = spawn(APP, 'D'); /* the app's other process: no window of its own */
	snprintf(join_cgroup, sizeof(join_cgroup), "%s/app-b/cgroup.procs", base);
	b = spawn(APP, 'D');
	join_cgroup[0] = 0;
	window("fg-cg-a", a.pid);
	window("fg-cg-b", b.pid);
	activate("fg-cg-b");
	start_agent_flags(display, 0, 0, "--foreground-cgroup");
	agent_said("foreground pid", 10000);
	order(&helper, 's'); /* app A is not in front: its helper's request waits unboosted */
	stays(s.pid, NICE_SERVER, 400);
	activate("fg-cg-a"); /* A in front, by its main process's window: the helper donates */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 5000) >= 0);
	activate("fg-cg-b"); /* and stops when B comes to the front */
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 5000) >= 0);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_focus_decides, e2e_teardown),
		cmocka_unit_test_teardown(test_denap_hysteresis, e2e_teardown),
		cmocka_unit_test_teardown(test_services_and_none, e2e_teardown),
		cmocka_unit_test_teardown(test_agent_as_user, e2e_teardown),
		cmocka_unit_test_teardown(test_x_restart, e2e_teardown),
		cmocka_unit_test_teardown(test_foreground_cgroup, cgroup_teardown),
		cmocka_unit_test_teardown(test_no_foreground, e2e_teardown),
	};
	int status;

	if (argc < 4) {
		fprintf(stderr, "usage: test-foreground IMPORTANCED IMPORTANCED-AGENT X11-WINDOW\n");
		return 2;
	}
	e2e_daemon_bin = argv[1];
	agent_bin = argv[2];
	window_bin = argv[3];
	if (geteuid() != 0) {
		printf("test-foreground: not root, skipped\n");
		return 77;
	}
	if (access("/proc/self/sessionid", R_OK) != 0) {
		fprintf(stderr, "test-foreground: this kernel has no audit session ids (/proc/self/sessionid)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	status = cmocka_run_group_tests(tests, start_x, stop_x);
	if (agent_log[0])
		unlink(agent_log);
	return status;
}

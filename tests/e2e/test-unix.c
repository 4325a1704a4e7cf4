/*
 * The Unix-socket source against the real kernel: importanced with
 * `--unix yes` (its BPF object loaded and attached), real servers
 * (redis-server as another uid at nice 10, small servers of the test's
 * own on stream, seqpacket and datagram sockets and socketpairs), real
 * clients (redis-cli).  Assertions are on what the kernel shows: nice
 * values, cgroups and autogroups, before, during and after a request.
 * Needs root; skips (77) without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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
#include "importance/client.h"

#define E2E_UNIX_NAME "e2e"
#include "e2e-unix.h"

/* ------------------------------------------------------------------ */

/* A donor's redis-cli request boosts redis-server while it runs; after
 * the reply the server is scheduled exactly as before. */
static void test_redis_boost(void **state)
{
	char sock[128], before[1024], after[1024];
	pid_t srv, cli;

	(void)state;
	make_dir();
	start_daemon("");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	assert_int_equal(e2e_nice(srv), BACKGROUND);
	sched_state(srv, before, sizeof(before));

	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1.5");
	assert_true(e2e_wait_nice(srv, BOOSTED, 1000) >= 0);
	{
		/* impctl why names the request's donor */
		char cmd[256], out[2048], want[96];
		size_t n;
		FILE *f;

		snprintf(cmd, sizeof(cmd), "%s/impctl --socket %s why %d",
			 getenv("IMPCTL_DIR") ? getenv("IMPCTL_DIR") : ".", e2e_sock, (int)srv);
		assert_non_null(f = popen(cmd, "r"));
		n = fread(out, 1, sizeof(out) - 1, f);
		out[n] = '\0';
		pclose(f);
		/* a message queued until redis reads it, then the voucher */
		snprintf(want, sizeof(want), ", from pid %d (uid %u, unix)", (int)cli, (unsigned)duid);
		assert_non_null(strstr(out, want));
	}
	assert_int_equal(reap(cli), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
	sched_state(srv, after, sizeof(after));
	assert_string_equal(before, after);

	/* and again on the next request: the boost is per request */
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1");
	assert_true(e2e_wait_nice(srv, BOOSTED, 800) >= 0);
	assert_int_equal(reap(cli), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
	e2e_stop_daemon();
}

/* A non-donor's request boosts nothing. */
static void test_nondonor(void **state)
{
	char sock[128];
	pid_t srv, cli;

	(void)state;
	make_dir();
	start_daemon("");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	cli = redis_cli(sock, auid, "DEBUG", "SLEEP", "1");
	assert_int_equal(e2e_wait_nice(srv, BOOSTED, 900), -1);
	assert_int_equal(reap(cli), 0);
	assert_int_equal(e2e_nice(srv), BACKGROUND);
	e2e_stop_daemon();
}

/* app -> A -> redis: both servers boosted while the request runs, both
 * back after. */
static void test_chain(void **state)
{
	char sock[128], a_path[128];
	struct server a = { .type = SOCK_STREAM, .listening = true, .answer = true, .ms = 300 };
	pid_t srv, sa, rq;
	int fd;

	(void)state;
	make_dir();
	start_daemon("");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	snprintf(a_path, sizeof(a_path), "%s/a.sock", dir);
	a.fd = listen_on(a_path, SOCK_STREAM);
	a.next = sock;
	sa = start_server(&a);
	close(a.fd);
	assert_true((fd = unix_connect(a_path, SOCK_STREAM)) >= 0);
	rq = request(fd, 5000);
	assert_true(e2e_wait_nice(sa, BOOSTED, 800) >= 0);
	assert_true(e2e_wait_nice(srv, BOOSTED, 800) >= 0);
	assert_int_equal(reap(rq), 0);
	assert_true(e2e_wait_nice(sa, BACKGROUND, 1000) >= 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
	close(fd);
	e2e_stop_daemon();
}

/* Whether pid sleeps in a socket read (accept done) within ms. */
static bool wait_blocked(pid_t pid, int ms)
{
	char path[64], wchan[64];

	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	for (uint64_t end = e2e_now_ms() + (uint64_t)ms; e2e_now_ms() < end; usleep(5000)) {
		FILE *f = fopen(path, "r");
		size_t n = 0;

		if (f) {
			n = fread(wchan, 1, sizeof(wchan) - 1, f);
			fclose(f);
		}
		wchan[n] = '\0';
		if (strstr(wchan, "unix_stream_data_wait") || strstr(wchan, "unix_stream_read"))
			return true;
	}
	return false;
}

/* A reader that never answers loses its boost after unix-answer-timeout. */
static void test_no_answer(void **state)
{
	char path[128];
	struct server sv = { .type = SOCK_STREAM, .listening = true, .answer = false, .ms = 0 };
	pid_t pid, rq;
	long boosted_for;
	uint64_t t0;
	int fd;

	(void)state;
	make_dir();
	start_daemon("--unix-answer-timeout 700");
	snprintf(path, sizeof(path), "%s/mute.sock", dir);
	sv.fd = listen_on(path, SOCK_STREAM);
	pid = start_server(&sv);
	close(sv.fd);
	assert_true((fd = unix_connect(path, SOCK_STREAM)) >= 0);
	/* the server has accepted and waits in its read before the request:
	 * this test is about the answer timeout (a request sent before the
	 * accept is test_killed's and test_chain's) */
	assert_true(wait_blocked(pid, 2000));
	rq = request(fd, 4000);
	assert_true(e2e_wait_nice(pid, BOOSTED, 800) >= 0);
	t0 = e2e_now_ms();
	assert_true(e2e_wait_nice(pid, BACKGROUND, 3000) >= 0);
	boosted_for = (long)(e2e_now_ms() - t0);
	assert_true(boosted_for < 2000);
	assert_int_equal(reap(rq), 2); /* the request itself got no answer */
	close(fd);
	e2e_stop_daemon();
}

/*
 * A reader that takes the request before the kernel reports the send:
 * the data is queued before sk_data_ready fires, and a reader polling on
 * the other CPU reads it in between.  The listener is the test's (root,
 * accepting boosts by path: the kernel's guess), the reader is a child
 * that polls, pre-fork style.  The reader must hold the boost, and the
 * guess must not keep it; each round is one request on a new connection.
 */
static void test_read_first(void **state)
{
	char path[128];
	int ready[2], go[2], lfd, fd, rounds = 40;
	pid_t pid, rq;
	cpu_set_t cpus;

	(void)state;
	make_dir();
	start_daemon("--unix-answer-timeout 5000");
	snprintf(path, sizeof(path), "%s/poll.sock", dir);
	lfd = listen_on(path, SOCK_STREAM);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = e2e_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[16], c;

		CPU_ZERO(&cpus);
		CPU_SET(1, &cpus);
		sched_setaffinity(0, sizeof(cpus), &cpus);
		setpriority(PRIO_PROCESS, 0, BACKGROUND);
		e2e_become(auid, agid);
		for (;;) {
			int conn = accept(lfd, NULL, NULL);

			if (conn < 0 || write(ready[1], "r", 1) != 1)
				_exit(1);
			while (recv(conn, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
				; /* polls: no sleep between, no wakeup needed */
			if (read(go[0], &c, 1) != 1)
				_exit(0);
			if (send(conn, "ok", 2, MSG_NOSIGNAL) != 2)
				_exit(1);
			close(conn);
		}
	}
	close(lfd);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	for (int i = 0; i < rounds; i++) {
		char c;

		assert_true((fd = unix_connect(path, SOCK_STREAM)) >= 0);
		assert_int_equal(read(ready[0], &c, 1), 1);
		rq = e2e_fork();
		assert_true(rq >= 0);
		if (rq == 0) {
			sched_setaffinity(0, sizeof(cpus), &cpus);
			e2e_become(duid, dgid);
			if (send(fd, "req", 3, MSG_NOSIGNAL) != 3 || recv(fd, &c, 1, 0) != 1)
				_exit(1);
			_exit(0);
		}
		if (e2e_wait_nice(pid, BOOSTED, 1500) < 0)
			fail_msg("round %d: the reader was not boosted (this process: nice %d)", i, e2e_nice(getpid()));
		/* the guess (this process) holds nothing */
		if (e2e_wait_nice(getpid(), 0, 1000) < 0)
			fail_msg("round %d: the listener kept the boost", i);
		assert_int_equal(e2e_nice(pid), BOOSTED);
		assert_int_equal(write(go[1], "g", 1), 1);
		assert_int_equal(reap(rq), 0);
		assert_true(e2e_wait_nice(pid, BACKGROUND, 1500) >= 0);
		close(fd);
	}
	close(go[1]);
	kill(pid, SIGKILL);
	reap(pid);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	e2e_stop_daemon();
}

/* A donor killed mid-request, or the reader killed, leaves nothing. */
static void test_killed(void **state)
{
	char sock[128], path[128], tasks[4096];
	struct server sv = { .type = SOCK_STREAM, .listening = true, .answer = true, .ms = 3000 };
	pid_t srv, cli, pid, rq;
	FILE *f;
	size_t n;
	int fd;

	(void)state;
	make_dir();
	start_daemon("");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "3");
	assert_true(e2e_wait_nice(srv, BOOSTED, 1000) >= 0);
	kill(cli, SIGKILL);
	reap(cli);
	/* redis still sleeps: the donor's exit, not the end of the work, ends it */
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);

	snprintf(path, sizeof(path), "%s/victim.sock", dir);
	sv.fd = listen_on(path, SOCK_STREAM);
	pid = start_server(&sv);
	close(sv.fd);
	assert_true((fd = unix_connect(path, SOCK_STREAM)) >= 0);
	rq = request(fd, 5000);
	assert_true(e2e_wait_nice(pid, BOOSTED, 800) >= 0);
	kill(pid, SIGKILL);
	reap(pid);
	assert_int_equal(reap(rq), 3); /* the end closed */
	close(fd);
	usleep(200000);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "%s/impctl --socket %s tasks", getenv("IMPCTL_DIR") ? getenv("IMPCTL_DIR") : ".",
			 e2e_sock);
		assert_non_null(f = popen(cmd, "r"));
		n = fread(tasks, 1, sizeof(tasks) - 1, f);
		tasks[n] = '\0';
		pclose(f);
	}
	/* neither the killed reader nor the killed donor has a row left */
	{
		char want[32];

		snprintf(want, sizeof(want), "\n%-8d", (int)pid);
		assert_null(strstr(tasks, want));
		snprintf(want, sizeof(want), "\n%-8d", (int)cli);
		assert_null(strstr(tasks, want));
		assert_null(strstr(tasks, "yes     ")); /* nothing boosted */
	}
	e2e_stop_daemon();
}

/* A donor's request on fd boosts srv within boost_ms, and srv is back
 * after the answer. */
static void boosted_request(int fd, pid_t srv, int boost_ms)
{
	pid_t rq = request(fd, 5000);

	assert_true(e2e_wait_nice(srv, BOOSTED, boost_ms) >= 0);
	assert_int_equal(reap(rq), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
}

/* A server like sv on one end of a new socketpair of sv's type; the
 * other end, the client's, in *client. */
static pid_t pair_server(struct server *sv, int *client)
{
	int sp[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, sv->type | SOCK_CLOEXEC, 0, sp), 0);
	sv->fd = sp[1];
	pid = start_server(sv);
	close(sp[1]);
	*client = sp[0];
	return pid;
}

/* Socketpairs and seqpacket and datagram sockets: the reader (the other
 * side of a socketpair is known at its first read; then at every send). */
static void pair_case(int type)
{
	struct server sv = { .type = type, .listening = false, .answer = true, .ms = 600 };
	int fd;
	pid_t pid, rq;

	pid = pair_server(&sv, &fd);
	/* the first request tells who reads: boosted from its read on */
	rq = request(fd, 5000);
	assert_true(e2e_wait_nice(pid, BOOSTED, 500) >= 0);
	assert_int_equal(reap(rq), 0);
	assert_true(e2e_wait_nice(pid, BACKGROUND, 1000) >= 0);
	/* the next boosts from the send */
	boosted_request(fd, pid, 300);
	close(fd);
}

static void test_socket_types(void **state)
{
	char path[128];
	struct server sv = { .type = SOCK_SEQPACKET, .listening = true, .answer = true, .ms = 600 };
	pid_t pid;
	int fd;

	(void)state;
	make_dir();
	start_daemon("--unix-receiver-uid impattack");
	pair_case(SOCK_STREAM);
	pair_case(SOCK_SEQPACKET);
	pair_case(SOCK_DGRAM);

	snprintf(path, sizeof(path), "%s/seq.sock", dir);
	sv.fd = listen_on(path, SOCK_SEQPACKET);
	pid = start_server(&sv);
	close(sv.fd);
	assert_true((fd = unix_connect(path, SOCK_SEQPACKET)) >= 0);
	boosted_request(fd, pid, 500);
	close(fd);
	e2e_stop_daemon();
}

/* With no receiver rule nothing is a receiver. */
static void test_no_rule_no_receiver(void **state)
{
	char sock[128];
	pid_t srv, cli;

	(void)state;
	make_dir();
	e2e_start_daemon("--unix yes --donor-uid impdonor");
	srv = start_redis("redis.sock", sock, sizeof(sock));
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1");
	assert_int_equal(e2e_wait_nice(srv, BOOSTED, 800), -1);
	assert_int_equal(reap(cli), 0);
	e2e_stop_daemon();
}

/* The boosts importanced applied so far. */
static uint64_t boosts_applied(void)
{
	impc_status st;
	impc *c;

	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL), 0);
	assert_int_equal(impc_status_get(c, &st), 0);
	impc_close(c);
	return st.boosts_applied;
}

/* A donor's requests answered within the batch window boost nothing, not
 * even the one in flight when the daemon reads its batch: its send is
 * kept for the next batch, where its answer is. */
static void test_fast_requests_unboosted(void **state)
{
	struct server sv = { .type = SOCK_STREAM, .listening = false, .answer = true, .ms = 0 };
	enum { N = 2000 };
	int fd, status;
	uint64_t before, boosts;
	pid_t srv, cl;

	(void)state;
	make_dir();
	start_daemon("--unix-receiver-uid impattack");
	srv = pair_server(&sv, &fd);
	usleep(100000);
	before = boosts_applied();
	cl = e2e_fork();
	assert_true(cl >= 0);
	if (cl == 0) {
		char buf[16];

		e2e_become(duid, dgid);
		for (int i = 0; i < N; i++)
			if (send(fd, "req", 3, MSG_NOSIGNAL) != 3 || recv(fd, buf, sizeof(buf), 0) <= 0)
				_exit(1);
		_exit(0);
	}
	assert_int_equal(waitpid(cl, &status, 0), cl);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	usleep(50000);
	boosts = boosts_applied() - before;
	print_message("%d requests answered at once: %llu boosts\n", N, (unsigned long long)boosts);
	/* only a request that took longer than the window (200 us) may be */
	assert_true(boosts < N / 50);
	assert_int_equal(e2e_nice(srv), BACKGROUND);
	close(fd);
	e2e_stop_daemon();
}

/* A flood that overflows the ring buffer (the daemon stopped meanwhile)
 * leaves no boost behind, and the daemon says so. */
static void test_overflow(void **state)
{
	char sock[128], log[128];
	pid_t srv, cli, bench;

	(void)state;
	make_dir();
	start_logged(start_daemon, "--unix-answer-timeout 60000", log, sizeof(log));
	srv = start_redis("redis.sock", sock, sizeof(sock));
	kill(e2e_daemon_pid, SIGSTOP);
	bench = e2e_fork();
	if (bench == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		e2e_become(duid, dgid);
		execlp("redis-benchmark", "redis-benchmark", "-s", sock, "-n", "20000", "-c", "4", "-q", "-t", "ping",
		       (char *)NULL);
		_exit(127);
	}
	assert_int_equal(reap(bench), 0);
	/* one request still running when the daemon reads again */
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1.5");
	usleep(300000);
	kill(e2e_daemon_pid, SIGCONT);
	assert_int_equal(reap(cli), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1500) >= 0);
	usleep(300000);
	assert_int_equal(e2e_nice(srv), BACKGROUND);
	assert_true(log_has(log, "events lost", "every Unix-socket boost dropped"));
	e2e_stop_daemon();
}

/* Where BPF cannot load (the daemon without CAP_BPF, CAP_PERFMON and
 * CAP_SYS_ADMIN in its bounding set, as a sandbox may start it), one
 * clear line, and the daemon's own socket and boosts work as before. */
static void test_no_bpf(void **state)
{
	char wrapper[128], log[128];
	const char *real = e2e_daemon_bin;
	FILE *f;

	(void)state;
	make_dir();
	snprintf(wrapper, sizeof(wrapper), "%s/importanced-nobpf", dir);
	assert_non_null(f = fopen(wrapper, "w"));
	fprintf(f, "#!/bin/sh\nexec setpriv --bounding-set=-bpf,-perfmon,-sys_admin --inh-caps=-all -- %s \"$@\"\n", real);
	fclose(f);
	chmod(wrapper, 0755);
	e2e_daemon_bin = wrapper;
	start_logged(e2e_start_daemon, "--unix yes --donor-uid 0 --unix-receiver-uid impattack", log, sizeof(log));
	e2e_daemon_bin = real;
	e2e_stop_daemon();
	assert_true(log_has(log, "importanced: unix: cannot load the BPF programs",
			    "Unix sockets boost nothing; the other sources run unchanged"));
	assert_true(log_has(log, "importanced: listening on", NULL));
}

/* A donor's request queued behind a non-donor's data not read yet (a
 * stream end, so one queue): the server is boosted from the donor's send
 * all the same, and back after. */
static void test_behind_nondonor(void **state)
{
	struct server sv = { .type = SOCK_STREAM, .listening = false, .answer = true, .ms = 700 };
	int fd;
	pid_t pid, rq;

	(void)state;
	make_dir();
	start_daemon("--unix-receiver-uid impattack");
	pid = pair_server(&sv, &fd);
	/* the test (root: no donor) sends twice; the server works on the
	 * first, unboosted, while the second waits in the queue */
	assert_int_equal(send(fd, "a", 1, 0), 1);
	usleep(200000);
	assert_int_equal(send(fd, "b", 1, 0), 1);
	assert_int_equal(e2e_nice(pid), BACKGROUND);
	rq = request(fd, 5000);
	assert_true(e2e_wait_nice(pid, BOOSTED, 400) >= 0);
	assert_int_equal(reap(rq), 0);
	assert_true(e2e_wait_nice(pid, BACKGROUND, 2500) >= 0);
	close(fd);
	e2e_stop_daemon();
}

/* A server that reads with splice() (no recvmsg: the kernel's read
 * tracepoint does not fire): boosted from the send, and back at its
 * answer, not at the answer bound (60 s here). */
static void test_splice_reader(void **state)
{
	char path[128];
	struct server sv = { .type = SOCK_STREAM, .listening = true, .answer = true, .ms = 600, .splice = true };
	pid_t pid;
	int fd;

	(void)state;
	make_dir();
	start_daemon("--unix-answer-timeout 60000");
	snprintf(path, sizeof(path), "%s/splice.sock", dir);
	/* the server makes its listening socket itself: the kernel names it
	 * as the connection's peer, and no read of its says otherwise */
	pid = e2e_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpriority(PRIO_PROCESS, 0, BACKGROUND);
		e2e_become(auid, agid);
		sv.fd = listen_on(path, SOCK_STREAM);
		for (;;) {
			int c = accept(sv.fd, NULL, NULL);

			if (c < 0)
				_exit(1);
			serve_one(&sv, c);
			close(c);
		}
	}
	fd = -1;
	for (int i = 0; i < 500 && (fd = unix_connect(path, SOCK_STREAM)) < 0; i++)
		usleep(10000);
	assert_true(fd >= 0);
	boosted_request(fd, pid, 500);
	boosted_request(fd, pid, 500);
	close(fd);
	e2e_stop_daemon();
}

/* The configuration file as text, then SIGHUP, then a request of the
 * donor uid's to redis: whether it boosted the server. */
static bool boosts_after_reload(const char *conf, const char *text, const char *sock, pid_t srv)
{
	FILE *f = fopen(conf, "w");
	pid_t cli;
	bool boosted;

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	kill(e2e_daemon_pid, SIGHUP);
	usleep(300000);
	assert_int_equal(kill(e2e_daemon_pid, 0), 0);
	cli = redis_cli(sock, 0, "DEBUG", "SLEEP", "1");
	boosted = e2e_wait_nice(srv, BOOSTED, 900) >= 0;
	assert_int_equal(reap(cli), 0);
	assert_true(e2e_wait_nice(srv, BACKGROUND, 1000) >= 0);
	return boosted;
}

/* SIGHUP loads the kernel's donor and receiver maps again: a donor rule
 * added takes effect, one removed stops; so do receiver rules, and an end
 * refused under the old rules is not refused under the new. */
static void test_reload(void **state)
{
	char sock[128], conf[128], arg[160], text[256];
	pid_t srv;
	FILE *f;

	(void)state;
	make_dir();
	snprintf(conf, sizeof(conf), "%s/importanced.conf", dir);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "unix yes\nunix-receiver-uid impattack\n");
	fclose(f);
	snprintf(arg, sizeof(arg), "--config %s", conf);
	e2e_start_daemon(arg);
	srv = start_redis("redis.sock", sock, sizeof(sock));
	/* no donor rule: nothing */
	assert_false(boosts_after_reload(conf, "unix yes\nunix-receiver-uid impattack\n", sock, srv));
	/* the donor's uid added */
	assert_true(boosts_after_reload(conf, "unix yes\nunix-receiver-uid impattack\ndonor-uid impdonor\n", sock, srv));
	/* the receiver rule removed: nothing, whoever sends */
	assert_false(boosts_after_reload(conf, "unix yes\ndonor-uid impdonor\n", sock, srv));
	/* a receiver rule by path this time (the kernel lets every peer
	 * through to the daemon) */
	snprintf(text, sizeof(text), "unix yes\ndonor-uid impdonor\nunix-receiver-path %s/*.sock\n", dir);
	assert_true(boosts_after_reload(conf, text, sock, srv));
	/* the donor rule removed: nothing */
	snprintf(text, sizeof(text), "unix yes\nunix-receiver-path %s/*.sock\n", dir);
	assert_false(boosts_after_reload(conf, text, sock, srv));
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_redis_boost, cleanup),
		cmocka_unit_test_teardown(test_nondonor, cleanup),
		cmocka_unit_test_teardown(test_no_rule_no_receiver, cleanup),
		cmocka_unit_test_teardown(test_chain, cleanup),
		cmocka_unit_test_teardown(test_no_answer, cleanup),
		cmocka_unit_test_teardown(test_read_first, cleanup),
		cmocka_unit_test_teardown(test_killed, cleanup),
		cmocka_unit_test_teardown(test_socket_types, cleanup),
		cmocka_unit_test_teardown(test_fast_requests_unboosted, cleanup),
		cmocka_unit_test_teardown(test_overflow, cleanup),
		cmocka_unit_test_teardown(test_no_bpf, cleanup),
		cmocka_unit_test_teardown(test_reload, cleanup),
		cmocka_unit_test_teardown(test_behind_nondonor, cleanup),
		cmocka_unit_test_teardown(test_splice_reader, cleanup),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-unix: needs root (BPF, a second uid): skipped\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
	e2e_attacker(&auid, &agid);
	donor_user();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

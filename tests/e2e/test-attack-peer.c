/*
 * Attacks on importanced's own connections from an unprivileged second uid
 * (impattack): what a connection that never reads its replies can cost.
 *
 * Needs root; skips (77) without it.  The assertions are on the daemon's
 * memory as the kernel shows it (VmRSS) and on what it answers others.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "e2e.h"
#include "importance/client.h"

static uid_t auid;
static gid_t agid;

#define CONNS 64 /* max-user-connections */

/* One connection that asks for 64 KiB replies (SEND_RECEIVE of 64 KiB to
 * its own port) and never reads one, for ms; 0 if the daemon closed it. */
static int never_read(uint64_t ms)
{
	static uint8_t frame[sizeof(struct impp_header) + sizeof(struct impp_req_send_receive) + IMPP_MAX_PAYLOAD];
	struct impp_req_hello hq = { IMPP_VERSION, 0 };
	struct impp_req_port_allocate pq = { 0 };
	struct impp_reply_port pr = { 0 };
	struct impp_req_send_receive q = { 0 };
	struct impp_header h;
	uint64_t end = e2e_now_ms() + ms;
	int fd = e2e_raw_connect();
	char c;

	if (fd < 0)
		return 10;
	e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq));
	e2e_raw_send(fd, IMPP_REQ_PORT_ALLOCATE, 2, &pq, sizeof(pq));
	if (e2e_raw_reply(fd, NULL, NULL, 0, 5000) != 0 || e2e_raw_reply(fd, NULL, &pr, sizeof(pr), 5000) != 0)
		return 11;
	q.send_port = q.recv_port = pr.port;
	q.len = IMPP_MAX_PAYLOAD;
	h = (struct impp_header){ IMPP_MAGIC, IMPP_REQ_SEND_RECEIVE, 0, 3, (uint32_t)(sizeof(q) + q.len) };
	memcpy(frame, &h, sizeof(h));
	memcpy(frame + sizeof(h), &q, sizeof(q));
	while (e2e_now_ms() < end) {
		struct pollfd p = { fd, POLLOUT, 0 };

		if (send(fd, frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return 0; /* let go */
			poll(&p, 1, 20);
			if (p.revents & (POLLHUP | POLLERR))
				return 0;
		}
	}
	/* closed by the daemon: what is queued on our end ends in end-of-file */
	while (recv(fd, frame, sizeof(frame), MSG_DONTWAIT) > 0)
		;
	return recv(fd, &c, 1, MSG_DONTWAIT) == 0 ? 0 : 1;
}

static int flood(void *arg)
{
	int closed = 0, status;

	(void)arg;
	for (int i = 0; i < CONNS; i++)
		if (fork() == 0)
			_exit(never_read(4000));
	while (wait(&status) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			closed++;
	return closed;
}

/* One uid's 64 connections that never read: the daemon's memory stays
 * within the uid's share of unread bytes (max-user-queued-bytes, 24 MiB),
 * not 64 times a connection's, the connections that pass it are let go,
 * and another uid is served throughout. */
static void test_unread_replies_bounded(void **state)
{
	long base, peak = 0, rss;
	int status, closed;
	pid_t pid;

	(void)state;
	e2e_start_daemon("");
	base = e2e_rss_kb(e2e_daemon_pid);
	pid = e2e_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(flood(NULL));
	}
	for (uint64_t end = e2e_now_ms() + 5000; e2e_now_ms() < end;) {
		impc *a;
		impc_status st;

		if ((rss = e2e_rss_kb(e2e_daemon_pid)) > peak)
			peak = rss;
		assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &a, NULL), 0);
		assert_int_equal(impc_status_get(a, &st), 0);
		impc_close(a);
		usleep(50000);
	}
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	closed = WEXITSTATUS(status);
	print_message("64 never-reading connections of one uid: daemon RSS %ld -> peak %ld KiB; %d of them let go\n",
		      base, peak, closed);
	/* 24 MiB of replies, the allocator's slack, and the rest */
	assert_true(peak - base < 64 * 1024);
	assert_true(closed > 0);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_unread_replies_bounded, e2e_teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-attack-peer: needs root (a second uid to attack from): skipped\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
#if IMP_SANITIZED
	{
		/* ASan keeps what is freed in a quarantine (256 MiB): the
		 * daemon's RSS would show that, not what it holds */
		static char opts[1024];
		const char *old = getenv("ASAN_OPTIONS");

		snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0", old ? old : "",
			 old && *old ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
#endif
	e2e_attacker(&auid, &agid);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * End-to-end tests of libimportance-client's asynchronous API, files in
 * messages, who-is-gone errors, a connection shared by threads and
 * reconnecting, against a real importanced (the binary given as argv[1])
 * on a socket of its own.  Peers that must die are forked processes.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "importance/client.h"
#include "importance/protocol.h"

static const char *importanced;
static char socket_path[108];
static pid_t daemon_pid = -1;
static pid_t child_pid = -1;

/* Runs importanced on socket_path with extra arguments (NULL-ended) and
 * waits until it answers. */
static void daemon_up(const char *const *extra)
{
	const char *argv[24] = { importanced, "--no-config", "--socket", socket_path, "--backend", "none" };
	size_t n = 6;

	while (extra && *extra && n < 23)
		argv[n++] = *extra++;
	argv[n] = NULL;
	daemon_pid = fork();
	assert_true(daemon_pid >= 0);
	if (daemon_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(importanced, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		impc *probe;

		if (impc_connect(socket_path, IMPC_MONITOR, &probe, NULL) == 0) {
			impc_close(probe);
			return;
		}
		usleep(10000);
	}
	fail_msg("importanced did not answer on %s", socket_path);
}

static void daemon_down(void)
{
	int status;

	if (daemon_pid <= 0)
		return;
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, &status, 0);
	daemon_pid = -1;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int setup(void **state)
{
	static unsigned run;

	(void)state;
	snprintf(socket_path, sizeof(socket_path), "/tmp/impc-test.%d.%u.sock", (int)getpid(), run++);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
		child_pid = -1;
	}
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = -1;
	}
	unlink(socket_path);
	return 0;
}

static impc *connect_as(unsigned flags)
{
	impc *c;

	assert_int_equal(impc_connect(socket_path, flags, &c, NULL), 0);
	return c;
}

/* Whether c's loop descriptor becomes readable within timeout_ms. */
static bool loop_ready(impc *c, int timeout_ms)
{
	struct pollfd p = { impc_fd(c), POLLIN, 0 };

	return poll(&p, 1, timeout_ms) == 1;
}

/* Waits, as an event loop would, for c's next completion. */
static void next_completion(impc *c, impc_completion *done)
{
	time_t end = time(NULL) + 5;

	while (time(NULL) < end) {
		if (impc_next_completion(c, done) == 0)
			return;
		if (loop_ready(c, 10))
			impc_process(c);
	}
	fail_msg("no completion came");
}

/* Waits, as an event loop would, for an event of kind. */
static void wait_event(impc *c, impc_event_kind kind, impc_event *ev)
{
	time_t end = time(NULL) + 5;

	while (time(NULL) < end) {
		while (impc_next_event(c, 0, ev) == 0)
			if (ev->kind == kind)
				return;
		if (loop_ready(c, 10))
			impc_process(c);
	}
	fail_msg("no event %d came", (int)kind);
}

/* Forks child_pid, a server process that registers name and then either
 * answers every request with its own text on its reply port (echo) or
 * waits to be killed; returns once it is serving. */
static void spawn_server(const char *name, bool echo)
{
	int ready[2];
	char x;

	assert_int_equal(pipe(ready), 0);
	child_pid = fork();
	assert_true(child_pid >= 0);
	if (child_pid == 0) {
		impc *s;
		uint64_t port;
		impc_message m;

		if (impc_connect(socket_path, IMPC_RECEIVER, &s, NULL) < 0 || impc_port_allocate(s, true, &port) < 0 ||
		    impc_register(s, name, port) < 0 || write(ready[1], "r", 1) != 1)
			_exit(1);
		while (echo && impc_receive(s, port, -1, 0, &m) == 0) {
			impc_send(s, m.reply_port, m.data, m.len, 0, 0, 0, NULL);
			impc_message_clear(&m);
		}
		pause();
		_exit(0);
	}
	assert_int_equal(read(ready[0], &x, 1), 1);
	close(ready[0]);
	close(ready[1]);
}

/* ------------------------------------------------------------------ */

/* Receives wait on three ports at once; the loop descriptor says when one
 * completes; the connection serves blocking calls meanwhile. */
static void test_async_several_ports(void **state)
{
	uint64_t ports[3], to[3], extra;
	impc *server, *sender;
	impc_completion done;
	impc_status st;

	(void)state;
	daemon_up(NULL);
	server = connect_as(IMPC_RECEIVER);
	sender = connect_as(0);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "svc.%d", i);
		assert_int_equal(impc_port_allocate(server, true, &ports[i]), 0);
		assert_int_equal(impc_register(server, name, ports[i]), 0);
		assert_int_equal(impc_lookup(sender, name, &to[i]), 0);
		assert_int_equal(impc_receive_async(server, ports[i], IMPC_RECV_VOUCHER, (void *)(intptr_t)(10 + i)), 0);
	}
	/* nothing arrived: nothing to do */
	assert_false(loop_ready(server, 50));
	assert_int_equal(impc_next_completion(server, &done), -EAGAIN);

	/* the connection is not held by the waiting receives */
	assert_int_equal(impc_port_allocate(server, true, &extra), 0);
	assert_int_equal(impc_status_get(server, &st), 0);
	assert_int_equal(st.clients, 2);

	/* a second receive on a port that has one waiting */
	assert_int_equal(impc_receive_async(server, ports[0], 0, (void *)99), 0);
	next_completion(server, &done);
	assert_int_equal(done.kind, IMPC_OP_RECEIVE);
	assert_int_equal(done.status, -EBUSY);
	assert_ptr_equal(done.userdata, (void *)99);

	/* the middle port's message completes the middle receive alone */
	assert_int_equal(impc_send(sender, to[1], "one", 3, 0, 0, 0, NULL), 0);
	assert_true(loop_ready(server, 2000));
	next_completion(server, &done);
	assert_int_equal(done.status, 0);
	assert_int_equal(done.kind, IMPC_OP_RECEIVE);
	assert_ptr_equal(done.userdata, (void *)11);
	assert_true(done.port == ports[1]);
	assert_int_equal(done.msg.len, 3);
	assert_memory_equal(done.msg.data, "one", 3);
	assert_int_equal(done.msg.sender_pid, getpid());
	if (done.msg.voucher)
		assert_int_equal(impc_voucher_release(server, done.msg.voucher), 0);
	impc_message_clear(&done.msg);
	assert_int_equal(impc_next_completion(server, &done), -EAGAIN);

	/* the loop descriptor is quiet again once everything is taken */
	impc_process(server);
	assert_false(loop_ready(server, 50));

	/* the last port, then an asynchronous send */
	{
		impc_send_args a = { to[2], "two", 3, 0, 0, 0, NULL, 0 };

		assert_int_equal(impc_send_async(sender, &a, (void *)7), 0);
		next_completion(sender, &done);
		assert_int_equal(done.kind, IMPC_OP_SEND);
		assert_int_equal(done.status, 0);
		assert_ptr_equal(done.userdata, (void *)7);
		assert_true(done.msg_id != 0);
	}
	next_completion(server, &done);
	assert_int_equal(done.status, 0);
	assert_ptr_equal(done.userdata, (void *)12);
	assert_memory_equal(done.msg.data, "two", 3);
	if (done.msg.voucher)
		impc_voucher_release(server, done.msg.voucher);
	impc_message_clear(&done.msg);

	/* destroying a port ends the receive waiting on it */
	assert_int_equal(impc_port_destroy(server, ports[0]), 0);
	next_completion(server, &done);
	assert_int_equal(done.status, -ECANCELED);
	assert_ptr_equal(done.userdata, (void *)10);

	/* a blocking receive with a timeout waits on its port only */
	{
		impc_message m;

		assert_int_equal(impc_receive(server, extra, 100, 0, &m), -ETIMEDOUT);
		assert_int_equal(impc_receive(server, extra, 0, 0, &m), -EAGAIN);
	}
	impc_close(sender);
	impc_close(server);
	daemon_down();
}

/* Files travel with messages, within the quota of files in flight. */
static void test_files_and_quota(void **state)
{
	static const char *const args[] = { "--max-inflight-fds", "4", "--max-user-inflight-fds", "6", NULL };
	int pipes[5][2], fds[5];
	impc *server, *sender, *second;
	uint64_t port, to, to2;
	impc_message m;
	char buf[16];

	(void)state;
	daemon_up(args);
	server = connect_as(IMPC_RECEIVER);
	sender = connect_as(0);
	second = connect_as(0);
	assert_int_equal(impc_port_allocate(server, true, &port), 0);
	assert_int_equal(impc_register(server, "files", port), 0);
	assert_int_equal(impc_lookup(sender, "files", &to), 0);
	assert_int_equal(impc_lookup(second, "files", &to2), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pipe(pipes[i]), 0);
		fds[i] = pipes[i][1];
	}

	impc_send_args three = { to, "3", 1, 0, 0, 0, fds, 3 };
	impc_send_args two = { to, "2", 1, 0, 0, 0, fds + 3, 2 };
	impc_send_args too_many = { to, "x", 1, 0, 0, 0, fds, IMPC_MAX_FDS + 1 };

	assert_int_equal(impc_send_message(sender, &too_many, NULL), -ETOOMANYREFS);
	assert_int_equal(impc_send_message(sender, &three, NULL), 0);
	/* 3 + 2 > 4 files in flight for the connection */
	assert_int_equal(impc_send_message(sender, &two, NULL), -EDQUOT);
	/* another connection of the uid: 3 + 3 <= 6 files of the uid, but
	 * one more is over the uid's 6 (within the connection's 4) */
	three.port = to2;
	assert_int_equal(impc_send_message(second, &three, NULL), 0);
	{
		impc_send_args one = { to2, "1", 1, 0, 0, 0, fds + 3, 1 };

		assert_int_equal(impc_send_message(second, &one, NULL), -EDQUOT);
	}

	/* received: the files are the receiver's, and the quota is free again */
	assert_int_equal(impc_receive(server, port, 1000, 0, &m), 0);
	assert_int_equal(m.n_fds, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(write(m.fds[i], &"abc"[i], 1), 1);
		assert_int_equal(read(pipes[i][0], buf, sizeof(buf)), 1);
		assert_int_equal(buf[0], "abc"[i]);
	}
	impc_message_clear(&m);
	two.port = to;
	assert_int_equal(impc_send_message(sender, &two, NULL), 0);
	assert_int_equal(impc_receive(server, port, 1000, 0, &m), 0); /* the second's three */
	assert_int_equal(m.n_fds, 3);
	impc_message_clear(&m);
	assert_int_equal(impc_receive(server, port, 1000, 0, &m), 0);
	assert_int_equal(m.n_fds, 2);
	assert_int_equal(write(m.fds[1], "z", 1), 1);
	assert_int_equal(read(pipes[4][0], buf, sizeof(buf)), 1);
	impc_message_clear(&m);

	/* a destroyed message's files are closed by the daemon: the pipe's
	 * reader sees its end once every write end is gone */
	{
		impc_send_args one = { to, "1", 1, 0, 0, 0, &pipes[0][1], 1 };

		assert_int_equal(impc_send_message(sender, &one, NULL), 0);
		close(pipes[0][1]);
		assert_int_equal(impc_port_destroy(server, port), 0);
		assert_int_equal(read(pipes[0][0], buf, sizeof(buf)), 0);
	}
	for (int i = 0; i < 5; i++) {
		close(pipes[i][0]);
		if (i)
			close(pipes[i][1]);
	}
	impc_close(second);
	impc_close(sender);
	impc_close(server);
	daemon_down();
}

/* One request on a raw connection, passing n_fds copies of fd; returns
 * the reply's status, its body (after the status) in out. */
static int32_t raw_request(int sock, uint16_t type, const void *body, size_t len, int fd, size_t n_fds, void *out,
			   size_t out_len)
{
	static uint32_t serial;
	struct impp_header h = { IMPP_MAGIC, type, 0, ++serial, (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)body, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	/* room for more files than a frame may pass, to pass them anyway */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * IMPP_MAX_FDS * sizeof(int))];
	} control;
	int copies[2 * IMPP_MAX_FDS];
	uint8_t reply[512];
	int32_t status;
	ssize_t n;

	assert_true(n_fds <= 2 * IMPP_MAX_FDS);
	for (size_t i = 0; i < n_fds; i++)
		copies[i] = fd;
	impp_attach_fds(&mh, control.buf, copies, n_fds);
	assert_true(sendmsg(sock, &mh, 0) == (ssize_t)(sizeof(h) + len));
	do { /* past events (serial 0) */
		n = recv(sock, reply, sizeof(reply), 0);
		assert_true(n >= (ssize_t)(sizeof(h) + sizeof(status)));
		memcpy(&h, reply, sizeof(h));
	} while (h.serial == 0);
	assert_int_equal(h.serial, serial);
	memcpy(&status, reply + sizeof(h), sizeof(status));
	if (out)
		memcpy(out, reply + sizeof(h) + sizeof(status), out_len);
	return status;
}

/* The daemon takes up to IMPP_MAX_FDS files a frame, for the requests
 * that carry them, as many as the request says. */
static void test_frames_with_files(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct impp_req_hello hello = { IMPP_VERSION, IMPP_HELLO_RECEIVER };
	struct impp_req_port_allocate alloc = { 0 };
	struct impp_req_send q = { 0, 0, 0, 0, 1, 1 };
	uint8_t send[sizeof(q) + 1], port_reply[12];
	uint64_t port;
	int sock, pipefd[2];

	(void)state;
	daemon_up(NULL);
	assert_int_equal(pipe(pipefd), 0);
	strcpy(sa.sun_path, socket_path);
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(raw_request(sock, IMPP_REQ_HELLO, &hello, sizeof(hello), -1, 0, NULL, 0), 0);
	assert_int_equal(raw_request(sock, IMPP_REQ_PORT_ALLOCATE, &alloc, sizeof(alloc), -1, 0, port_reply,
				     sizeof(port_reply)),
			 0);
	memcpy(&port, port_reply + 4, sizeof(port));
	q.port = port;
	send[sizeof(q)] = 'x';

	/* a request that takes no files */
	assert_int_equal(raw_request(sock, IMPP_REQ_STATUS, NULL, 0, pipefd[1], 1, NULL, 0), -EBADF);
	/* the count does not match the files passed */
	q.n_fds = 2;
	memcpy(send, &q, sizeof(q));
	assert_int_equal(raw_request(sock, IMPP_REQ_SEND, send, sizeof(send), pipefd[1], 1, NULL, 0), -EBADMSG);
	/* more files than a frame may carry */
	q.n_fds = IMPP_MAX_FDS + 1;
	memcpy(send, &q, sizeof(q));
	assert_int_equal(raw_request(sock, IMPP_REQ_SEND, send, sizeof(send), pipefd[1], IMPP_MAX_FDS + 1, NULL, 0),
			 -ETOOMANYREFS);
	/* as many as it may */
	q.n_fds = IMPP_MAX_FDS;
	memcpy(send, &q, sizeof(q));
	assert_int_equal(raw_request(sock, IMPP_REQ_SEND, send, sizeof(send), pipefd[1], IMPP_MAX_FDS, NULL, 0), 0);
	/* refused frames kept no file: once the message goes, only ours is left */
	assert_int_equal(raw_request(sock, IMPP_REQ_PORT_DESTROY, &port, sizeof(port), -1, 0, NULL, 0), 0);
	close(pipefd[1]);
	{
		char x;

		assert_int_equal(read(pipefd[0], &x, 1), 0);
	}
	close(pipefd[0]);
	close(sock);
	daemon_down();
}

/* FILELOCK passes its file as before: a donor waiting for a lock learns
 * which receiver holds it. */
static void test_filelock_passes_its_file(void **state)
{
	static const char *const donors[] = { "--donor-uid", "0", NULL };
	char path[] = "/tmp/impc-lock.XXXXXX";
	struct flock want = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int ready[2], fd;
	uint64_t wait;
	pid_t holder;
	bool donor;
	impc *c;
	char x;

	(void)state;
	daemon_up(donors);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(pipe(ready), 0);
	child_pid = fork();
	assert_true(child_pid >= 0);
	if (child_pid == 0) {
		struct flock hold = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		impc *r;

		if (impc_connect(socket_path, IMPC_RECEIVER, &r, NULL) < 0 || fcntl(fd, F_SETLK, &hold) < 0 ||
		    write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(ready[0], &x, 1), 1);
	assert_int_equal(impc_connect(socket_path, 0, &c, &donor), 0);
	assert_true(donor);
	assert_int_equal(impc_filelock_wait(c, fd, &want, &wait, &holder), 0);
	assert_int_equal(holder, child_pid);
	assert_int_equal(impc_filelock_done(c, wait), 0);
	impc_close(c);
	close(fd);
	unlink(path);
	close(ready[0]);
	close(ready[1]);
	daemon_down();
}

/* A policy event reports the nice value in force, negative too. */
static void test_negative_nice_reported(void **state)
{
	static const char *const args[] = { "--backend", "nice", "--boost-nice", "-5", "--donor-uid", "0", NULL };
	impc *monitor, *donor;
	impc_event ev;
	uint64_t to;

	(void)state;
	daemon_up(args); /* the later --backend wins */
	monitor = connect_as(IMPC_MONITOR);
	assert_int_equal(impc_monitor(monitor), 0);
	child_pid = fork();
	assert_true(child_pid >= 0);
	if (child_pid == 0) {
		impc *s;
		uint64_t port;

		setpriority(PRIO_PROCESS, 0, 10);
		if (impc_connect(socket_path, IMPC_RECEIVER, &s, NULL) < 0 || impc_port_allocate(s, true, &port) < 0 ||
		    impc_register(s, "niced", port) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	donor = connect_as(0);
	for (int i = 0; i < 200 && impc_lookup(donor, "niced", &to) < 0; i++)
		usleep(10000);
	assert_int_equal(impc_send(donor, to, "up", 2, 0, 0, 0, NULL), 0);
	do
		assert_int_equal(impc_next_event(monitor, 2000, &ev), 0);
	while (ev.kind != IMPC_EVENT_POLICY || ev.pid != child_pid || !ev.boosted);
	assert_int_equal(ev.applied, 0);
	assert_int_equal(ev.value, -5);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)child_pid), -5);
	impc_close(donor);
	impc_close(monitor);
	daemon_down();
}

/* -EPIPE when the peer is gone, -ECONNRESET then -ENOTCONN when the
 * daemon is. */
static void test_peer_gone_daemon_gone(void **state)
{
	impc_completion done;
	impc_event ev;
	uint64_t to;
	impc *c;

	(void)state;
	daemon_up(NULL);
	spawn_server("mortal", false);
	c = connect_as(0);
	assert_int_equal(impc_lookup(c, "mortal", &to), 0);
	assert_int_equal(impc_send(c, to, "hi", 2, 0, 0, 0, NULL), 0);
	kill(child_pid, SIGKILL);
	waitpid(child_pid, NULL, 0);
	child_pid = -1;
	/* the peer is gone: -EPIPE, and the connection goes on */
	for (int i = 0; i < 200 && impc_send(c, to, "hi", 2, 0, 0, 0, NULL) == 0; i++)
		usleep(10000);
	assert_int_equal(impc_send(c, to, "hi", 2, 0, 0, 0, NULL), -EPIPE);
	{
		impc_send_args a = { to, "hi", 2, 0, 0, 0, NULL, 0 };

		assert_int_equal(impc_send_async(c, &a, NULL), 0);
		next_completion(c, &done);
		assert_int_equal(done.status, -EPIPE);
	}
	assert_true(impc_connected(c));

	/* the daemon is gone: -ECONNRESET for what was in flight, then
	 * -ENOTCONN; an event says so */
	{
		uint64_t port;

		assert_int_equal(impc_port_allocate(c, true, &port), 0);
		assert_int_equal(impc_receive_async(c, port, 0, (void *)5), 0);
		daemon_down();
		next_completion(c, &done);
		assert_int_equal(done.status, -ECONNRESET);
		assert_ptr_equal(done.userdata, (void *)5);
	}
	wait_event(c, IMPC_EVENT_DISCONNECTED, &ev);
	assert_false(impc_connected(c));
	assert_int_equal(impc_send(c, to, "hi", 2, 0, 0, 0, NULL), -ENOTCONN);
	impc_close(c);
}

/* ------------------------------------------------------------------ */

#define THREADS 4
#define ROUNDS 300

struct worker {
	impc *c;
	uint64_t service;
	int index, failures;
};

/* One thread of four on one connection: requests to the echo child on a
 * reply port of its own; every answer must be its own. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t reply_port;

	if (impc_port_allocate(w->c, false, &reply_port) < 0) {
		w->failures++;
		return NULL;
	}
	for (int i = 0; i < ROUNDS; i++) {
		char text[32];
		impc_message m;
		impc_send_args req = { w->service, text, 0, 0, reply_port, 0, NULL, 0 };

		req.len = (size_t)snprintf(text, sizeof(text), "%d/%d", w->index, i);
		if (impc_send_receive(w->c, &req, 0, reply_port, 5000, 0, &m) < 0) {
			w->failures++;
			continue;
		}
		if (m.len != req.len || memcmp(m.data, text, m.len))
			w->failures++;
		impc_message_clear(&m);
		if (i % 50 == 0) {
			impc_status st;

			if (impc_status_get(w->c, &st) < 0)
				w->failures++;
		}
	}
	return NULL;
}

/* Four threads share one connection, blocking calls and asynchronous
 * ones together. */
static void test_threads_share_connection(void **state)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	uint64_t service;
	impc *c;

	(void)state;
	daemon_up(NULL);
	spawn_server("echo", true);
	c = connect_as(IMPC_RECEIVER);
	assert_int_equal(impc_lookup(c, "echo", &service), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ c, service, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	/* and asynchronous calls from this thread meanwhile */
	{
		uint64_t own;
		impc_completion done;

		assert_int_equal(impc_port_allocate(c, true, &own), 0);
		for (int i = 0; i < 50; i++) {
			impc_send_args a = { own, "self", 4, 0, 0, 0, NULL, 0 };

			assert_int_equal(impc_receive_async(c, own, 0, (void *)1), 0);
			assert_int_equal(impc_send_async(c, &a, (void *)2), 0);
			for (int got = 0; got < 2; got++) {
				next_completion(c, &done);
				assert_int_equal(done.status, 0);
				if (done.kind == IMPC_OP_RECEIVE)
					assert_memory_equal(done.msg.data, "self", 4);
				impc_message_clear(&done.msg);
			}
		}
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	impc_close(c);
	daemon_down();
}

/* ------------------------------------------------------------------ */

/* The daemon restarts: with IMPC_RECONNECT both sides come back, the
 * server's port (same handle) under its name with its receive waiting
 * again, the client's lookup (same handle) resolved again. */
static void test_reconnect(void **state)
{
	uint64_t port, service, reply_port, voucher;
	impc *server, *client;
	impc_completion done;
	impc_message m;
	impc_event ev;

	(void)state;
	daemon_up(NULL);
	server = connect_as(IMPC_RECEIVER | IMPC_RECONNECT);
	client = connect_as(IMPC_RECONNECT);
	assert_int_equal(impc_port_allocate(server, true, &port), 0);
	assert_int_equal(impc_register(server, "phoenix", port), 0);
	assert_int_equal(impc_lookup(client, "phoenix", &service), 0);
	assert_int_equal(impc_port_allocate(client, false, &reply_port), 0);
	assert_int_equal(impc_receive_async(server, port, IMPC_RECV_VOUCHER, (void *)1), 0);

	/* one round before */
	assert_int_equal(impc_send(client, service, "before", 6, 0, reply_port, 0, NULL), 0);
	next_completion(server, &done);
	assert_int_equal(done.status, 0);
	assert_memory_equal(done.msg.data, "before", 6);
	voucher = done.msg.voucher;
	assert_int_equal(impc_send_receive_async(server, &(impc_send_args){ done.msg.reply_port, "ok", 2 }, voucher, port,
						 IMPC_RECV_VOUCHER, (void *)1),
			 0);
	impc_message_clear(&done.msg);
	assert_int_equal(impc_receive(client, reply_port, 2000, 0, &m), 0);
	impc_message_clear(&m);

	/* the daemon restarts on the same socket */
	daemon_down();
	wait_event(server, IMPC_EVENT_DISCONNECTED, &ev);
	daemon_up(NULL);
	wait_event(server, IMPC_EVENT_RECONNECTED, &ev);
	assert_int_equal(ev.status, 0);
	assert_true(impc_connected(server));
	/* the send-receive that was waiting ended; the server waits again */
	next_completion(server, &done);
	assert_int_equal(done.kind, IMPC_OP_SEND_RECEIVE);
	assert_int_equal(done.status, -ECONNRESET);
	assert_int_equal(impc_receive_async(server, port, IMPC_RECV_VOUCHER, (void *)2), 0);

	/* the client: a blocking call reconnects it; same handles work */
	assert_int_equal(impc_lookup(client, "phoenix", &service), 0);
	assert_int_equal(impc_send(client, service, "after", 5, 0, reply_port, 0, NULL), 0);
	next_completion(server, &done);
	assert_int_equal(done.status, 0);
	assert_ptr_equal(done.userdata, (void *)2);
	assert_true(done.port == port);
	assert_memory_equal(done.msg.data, "after", 5);
	/* a voucher from before the restart is gone: releasing it is done */
	assert_int_equal(impc_voucher_release(server, voucher), 0);
	assert_int_equal(impc_send(server, done.msg.reply_port, "ok2", 3, 0, 0, 0, NULL), 0);
	if (done.msg.voucher)
		assert_int_equal(impc_voucher_release(server, done.msg.voucher), 0);
	impc_message_clear(&done.msg);
	assert_int_equal(impc_receive(client, reply_port, 2000, 0, &m), 0);
	assert_memory_equal(m.data, "ok2", 3);
	impc_message_clear(&m);

	impc_close(client);
	impc_close(server);
	daemon_down();
}

/* ------------------------------------------------------------------ */
/* a fake daemon that misbehaves                                        */
/* ------------------------------------------------------------------ */

/* What the fake daemon does with the first request after the handshake. */
enum fake_mode {
	FAKE_BAD_MAGIC,
	FAKE_BAD_LENGTH,
	FAKE_WRONG_TYPE,
	FAKE_SHORT,
	FAKE_BODY_SHORT,   /* status 0, but the body stops inside its fixed part */
	FAKE_TAIL_PAST,    /* status 0, a length in the body past the frame's end */
	FAKE_SILENT,
	FAKE_PORT_THEN_SILENT
};

static void fake_send(int fd, uint16_t type, uint32_t serial, const void *body, size_t len, uint32_t magic,
		      uint32_t length)
{
	uint8_t frame[256];
	struct impp_header h = { magic, type, 0, serial, length };

	memcpy(frame, &h, sizeof(h));
	memcpy(frame + sizeof(h), body, len);
	assert_true(send(fd, frame, sizeof(h) + len, MSG_NOSIGNAL) == (ssize_t)(sizeof(h) + len));
}

/* The next request on fd: its header (0), or -1 at end of file. */
static int fake_request(int fd, struct impp_header *h)
{
	uint8_t frame[IMPP_MAX_REQUEST];
	ssize_t n = recv(fd, frame, sizeof(frame), 0);

	if (n < (ssize_t)sizeof(*h))
		return -1;
	memcpy(h, frame, sizeof(*h));
	return 0;
}

/* In a child: a daemon on socket_path that answers HELLO and CONFIRM as
 * importanced does, then the next request as mode says, then waits for
 * the client to close the connection (and says so in its exit status:
 * 0 when it did). */
static void fake_daemon(enum fake_mode mode, int ready)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct impp_reply_hello r = { 0, IMPP_VERSION, (int32_t)getpid(), 0, 42 };
	struct impp_header h;
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0), fd;
	char c = 1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		_exit(3);
	if (write(ready, &c, 1) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
		_exit(4);
	if (fake_request(fd, &h) < 0 || h.type != IMPP_REQ_HELLO)
		_exit(5);
	fake_send(fd, IMPP_REPLY(h.type), h.serial, &r, sizeof(r), IMPP_MAGIC, sizeof(r));
	if (fake_request(fd, &h) < 0 || h.type != IMPP_REQ_CONFIRM)
		_exit(6);
	fake_send(fd, IMPP_REPLY(h.type), h.serial, &r, sizeof(r), IMPP_MAGIC, sizeof(r));
	if (fake_request(fd, &h) < 0)
		_exit(7);
	{
		struct impp_reply_stats st = { 0 };

		switch (mode) {
		case FAKE_BAD_MAGIC:
			fake_send(fd, IMPP_REPLY(h.type), h.serial, &st, sizeof(st), 0xdeadbeef, sizeof(st));
			break;
		case FAKE_BAD_LENGTH:
			fake_send(fd, IMPP_REPLY(h.type), h.serial, &st, sizeof(st), IMPP_MAGIC, sizeof(st) + 100);
			break;
		case FAKE_WRONG_TYPE:
			fake_send(fd, IMPP_REPLY(IMPP_REQ_GRAPH), h.serial, &st, sizeof(st), IMPP_MAGIC, sizeof(st));
			break;
		case FAKE_SHORT:
			fake_send(fd, IMPP_REPLY(h.type), h.serial, &st, 2, IMPP_MAGIC, 2);
			break;
		case FAKE_BODY_SHORT:
			fake_send(fd, IMPP_REPLY(h.type), h.serial, &st, 6, IMPP_MAGIC, 6);
			break;
		case FAKE_TAIL_PAST:
			if (h.type == IMPP_REQ_STATUS) {
				st.backends_len = 100; /* none follow */
				fake_send(fd, IMPP_REPLY(h.type), h.serial, &st, sizeof(st), IMPP_MAGIC, sizeof(st));
			} else {
				struct impp_reply_text t = { 0, 100 }; /* 10 follow */
				uint8_t b[sizeof(t) + 10] = { 0 };

				memcpy(b, &t, sizeof(t));
				fake_send(fd, IMPP_REPLY(h.type), h.serial, b, sizeof(b), IMPP_MAGIC, sizeof(b));
			}
			break;
		case FAKE_SILENT:
			break;
		case FAKE_PORT_THEN_SILENT: {
			struct impp_reply_port pr = { 0, 0, 5 };

			fake_send(fd, IMPP_REPLY(h.type), h.serial, &pr, sizeof(pr), IMPP_MAGIC, sizeof(pr));
			if (fake_request(fd, &h) < 0)
				_exit(9);
			break;
		}
		}
	}
	/* the client gives the connection up: end of file here */
	_exit(fake_request(fd, &h) < 0 ? 0 : 8);
}

static impc *connect_fake(enum fake_mode mode)
{
	int ready[2];
	char c;
	impc *cl;

	assert_int_equal(pipe(ready), 0);
	child_pid = fork();
	assert_true(child_pid >= 0);
	if (child_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fake_daemon(mode, ready[1]);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(impc_connect(socket_path, 0, &cl, NULL), 0);
	return cl;
}

/* The fake daemon saw the connection closed by the client. */
static void fake_saw_close(void)
{
	int status;

	assert_int_equal(waitpid(child_pid, &status, 0), child_pid);
	child_pid = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A malformed reply ends the call with -EPROTO (not a wait for ever) and
 * closes the connection: bad magic, a length that is not the frame's, a
 * reply of another type than the request's, one too short for a status;
 * and, with status 0, a body too short for its request's reply or whose
 * own length runs past the frame (a STATUS reply's backends, a TASKS
 * reply's text).  The DISCONNECTED event says -EPROTO. */
static void test_malformed_reply_is_eproto(void **state)
{
	static const struct {
		enum fake_mode mode;
		bool text;
	} cases[] = {
		{ FAKE_BAD_MAGIC, false }, { FAKE_BAD_LENGTH, false }, { FAKE_WRONG_TYPE, false }, { FAKE_SHORT, false },
		{ FAKE_BODY_SHORT, false }, { FAKE_TAIL_PAST, false }, { FAKE_BODY_SHORT, true }, { FAKE_TAIL_PAST, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		impc *cl = connect_fake(cases[i].mode);
		impc_status st;
		impc_event ev;
		char *text = NULL;

		if (cases[i].text) {
			assert_int_equal(impc_tasks(cl, &text), -EPROTO);
			assert_null(text);
		} else {
			assert_int_equal(impc_status_get(cl, &st), -EPROTO);
		}
		assert_false(impc_connected(cl));
		fake_saw_close();
		assert_int_equal(impc_next_event(cl, 0, &ev), 0);
		assert_int_equal(ev.kind, IMPC_EVENT_DISCONNECTED);
		assert_int_equal(ev.status, -EPROTO);
		/* later calls: not connected */
		assert_int_equal(impc_status_get(cl, &st), -ENOTCONN);
		impc_close(cl);
		unlink(socket_path);
		setup(state);
	}
}

/* A daemon that never answers: with a call timeout the call returns
 * -ETIMEDOUT after about that long and the connection is closed; a
 * receive's own wait is added to it. */
static void test_call_timeout(void **state)
{
	struct timespec t0, t1;
	impc_status st;
	impc *cl;
	long ms;

	(void)state;
	cl = connect_fake(FAKE_SILENT);
	assert_int_equal(impc_set_timeout(cl, -2), -EINVAL);
	assert_int_equal(impc_set_timeout(cl, 200), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(impc_status_get(cl, &st), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 190);
	assert_true(ms < 5000); /* a loaded machine: the bound is not the point */
	assert_false(impc_connected(cl));
	fake_saw_close();
	impc_close(cl);
}

/* A receive that waits 300 ms of its own, with a call timeout of 100 ms:
 * given up after the two together, not after the call timeout alone. */
static void test_receive_timeout_adds_wait(void **state)
{
	struct timespec t0, t1;
	impc_message m;
	uint64_t port;
	impc *cl;
	long ms;

	(void)state;
	cl = connect_fake(FAKE_PORT_THEN_SILENT);
	assert_int_equal(impc_port_allocate(cl, true, &port), 0);
	assert_int_equal(impc_set_timeout(cl, 100), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(impc_receive(cl, port, 300, 0, &m), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 390);
	assert_true(ms < 5000);
	assert_false(impc_connected(cl));
	fake_saw_close();
	impc_close(cl);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_async_several_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_and_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_with_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filelock_passes_its_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_nice_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_gone_daemon_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_reply_is_eproto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_timeout_adds_wait, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: test-client IMPORTANCED\n");
		return 2;
	}
	importanced = argv[1];
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Attacks on importanced from an unprivileged local user.
 *
 * Each test runs a real importanced as root and attacks it from a second
 * uid (impattack, made with useradd when missing), the way docs/security.md
 * says it must hold: raw frames, fork/exec tricks, a dead connection's
 * owner, floods, squatting, prying.  The assertions are on what the kernel
 * shows (nice values, the daemon's CPU time and memory) and on what the
 * daemon answers.  Needs root; skips (77) without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

#define BOOSTED -10 /* importanced's default boost-nice */

static uid_t auid;
static gid_t agid;

/* Runs fn as the attacker in a child; returns what it returned (0..255). */
static int as_attacker(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = e2e_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(fn(arg));
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

/* A receiver of root's at nice 10 serving "svc"; its pid. */
struct service {
	pid_t pid;
	int cmd, reply;
};

static struct service serve(const char *name, int nice_value)
{
	int to[2], from[2];
	struct service s;

	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	s.pid = e2e_fork();
	assert_true(s.pid >= 0);
	if (s.pid == 0) {
		impc *c;
		uint64_t port;
		impc_message m;
		char op;

		setpriority(PRIO_PROCESS, 0, nice_value);
		if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
		    (name && impc_register(c, name, port) < 0))
			_exit(5);
		e2e_say(from[1], 'R');
		while ((op = e2e_hear(to[0], -1))) {
			if (op == 'r' && impc_receive(c, port, 5000, IMPC_RECV_VOUCHER, &m) == 0) {
				free(m.data);
				e2e_say(from[1], 'K');
			} else if (op == 'q') {
				_exit(0);
			} else {
				e2e_say(from[1], 'E');
			}
		}
		_exit(0);
	}
	close(to[0]);
	close(from[1]);
	s.cmd = to[1];
	s.reply = from[0];
	assert_int_equal(e2e_hear(s.reply, 5000), 'R');
	return s;
}

/* ------------------------------------------------------------------ */
/* 1. nothing raises importance but the model                          */
/* ------------------------------------------------------------------ */

/* A non-donor receiver at nice 19 asks for file-lock assertions on itself
 * (the old FILELOCK request, a wrapping count, and the new one without a
 * lock held by anyone): refused every time. */
static int self_boost(void *arg)
{
	struct { uint32_t hold, count; } old = { 1, 1 }, wrap = { 1, 0xffffffffu };
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	uint64_t wait;
	impc *c;
	int fd, tmp;

	(void)arg;
	setpriority(PRIO_PROCESS, 0, 19);
	if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0)
		return 10;
	fd = impc_fd(c);
	e2e_raw_send(fd, IMPP_REQ_FILELOCK, 1, &old, sizeof(old));
	if (e2e_raw_reply(fd, NULL, NULL, 0, 2000) >= 0)
		return 11;
	e2e_raw_send(fd, IMPP_REQ_FILELOCK, 2, &wrap, sizeof(wrap));
	if (e2e_raw_reply(fd, NULL, NULL, 0, 2000) >= 0)
		return 12;
	tmp = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (tmp < 0)
		return 13;
	if (impc_filelock_wait(c, tmp, &lk, &wait, NULL) != -EPERM)
		return 14;
	usleep(100000);
	if (getpriority(PRIO_PROCESS, 0) != 19)
		return 15;
	impc_close(c);
	return 0;
}

static void test_no_self_boost(void **state)
{
	(void)state;
	e2e_start_daemon("");
	assert_int_equal(as_attacker(self_boost, NULL), 0);
	e2e_stop_daemon();
}

/* The model's file-lock boost: a donor waiting for a lock held by a
 * receiver boosts the holder while it waits; a non-donor's wait boosts
 * nobody. */
struct lockctx {
	const char *path;
	int result;
};

static int wait_as_nondonor(void *arg)
{
	struct lockctx *lc = arg;
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	uint64_t wait;
	impc *c;
	int fd = open(lc->path, O_RDWR);

	if (fd < 0 || impc_connect(e2e_sock, 0, &c, NULL) < 0)
		return 10;
	return impc_filelock_wait(c, fd, &lk, &wait, NULL) == -EPERM ? 0 : 11;
}

static void test_filelock_boosts_holder(void **state)
{
	char path[] = "/tmp/impd-lock-XXXXXX", cmd[64];
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct lockctx lc = { path, 0 };
	int fd = mkstemp(path), to[2], from[2];
	pid_t holder;
	uint64_t wait;
	pid_t boosted = 0;
	impc *donor;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0666), 0);
	snprintf(cmd, sizeof(cmd), "--donor-uid %u", (unsigned)getuid());
	e2e_start_daemon(cmd);
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	holder = e2e_fork();
	if (holder == 0) { /* a receiver at nice 10 that holds the lock */
		impc *c;
		int hfd = open(path, O_RDWR);

		setpriority(PRIO_PROCESS, 0, 10);
		if (hfd < 0 || impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || fcntl(hfd, F_SETLK, &lk) < 0)
			_exit(5);
		e2e_say(from[1], 'R');
		if (e2e_hear(to[0], -1) == 'u') {
			struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

			fcntl(hfd, F_SETLK, &un);
			e2e_say(from[1], 'K');
		}
		pause();
		_exit(0);
	}
	assert_int_equal(e2e_hear(from[0], 5000), 'R');
	assert_int_equal(e2e_nice(holder), 10);

	/* a non-donor (the attacker) boosts nobody */
	assert_int_equal(as_attacker(wait_as_nondonor, &lc), 0);
	assert_int_equal(e2e_wait_nice(holder, BOOSTED, 300), -1);

	/* a donor's wait, done */
	assert_int_equal(impc_connect(e2e_sock, 0, &donor, NULL), 0);
	{
		/* a file whose locks another server answers (here /proc) is refused */
		int pfd = open("/proc/self/status", O_RDONLY);

		assert_int_equal(impc_filelock_wait(donor, pfd, &lk, &wait, NULL), -EOPNOTSUPP);
		close(pfd);
	}
	assert_int_equal(impc_filelock_wait(donor, fd, &lk, &wait, &boosted), 0);
	assert_int_equal(boosted, holder);
	assert_true(e2e_wait_nice(holder, BOOSTED, 2000) >= 0);
	assert_int_equal(impc_filelock_done(donor, wait), 0);
	assert_true(e2e_wait_nice(holder, 10, 2000) >= 0);
	assert_int_equal(impc_filelock_done(donor, wait), -ENOENT);

	/* the waiter goes */
	assert_int_equal(impc_filelock_wait(donor, fd, &lk, &wait, NULL), 0);
	assert_true(e2e_wait_nice(holder, BOOSTED, 2000) >= 0);
	impc_close(donor);
	assert_true(e2e_wait_nice(holder, 10, 2000) >= 0);

	/* the holder lets the lock go: the boost goes with it */
	assert_int_equal(impc_connect(e2e_sock, 0, &donor, NULL), 0);
	assert_int_equal(impc_filelock_wait(donor, fd, &lk, &wait, NULL), 0);
	assert_true(e2e_wait_nice(holder, BOOSTED, 2000) >= 0);
	e2e_say(to[1], 'u');
	assert_int_equal(e2e_hear(from[0], 2000), 'K');
	assert_true(e2e_wait_nice(holder, 10, 2000) >= 0);
	/* and nobody holds it now */
	assert_int_equal(impc_filelock_wait(donor, fd, &lk, &wait, NULL), -ESRCH);
	impc_close(donor);
	close(fd);
	unlink(path);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	e2e_stop_daemon();
}

/* ------------------------------------------------------------------ */
/* 3. decisions about the process that asked                           */
/* ------------------------------------------------------------------ */

/* Connect, fork, exec the donor binary in the connecting process and say
 * HELLO from the child: refused, the child is not who connected. */
static void test_fork_exec_donor(void **state)
{
	int pipefd[2], status;
	pid_t pid;

	(void)state;
	e2e_start_daemon("--donor-exe /bin/sleep");
	assert_int_equal(pipe(pipefd), 0);
	pid = e2e_fork();
	if (pid == 0) {
		int fd, st;
		pid_t kid;
		struct impp_req_hello q = { IMPP_VERSION, IMPP_HELLO_RECEIVER };
		struct impp_reply_hello r = { 0 };

		e2e_become(auid, agid);
		if ((fd = e2e_raw_connect()) < 0)
			_exit(10);
		kid = fork();
		if (kid == 0) {
			usleep(150000); /* the parent runs the donor binary by now */
			e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &q, sizeof(q));
			st = e2e_raw_reply(fd, NULL, &r, sizeof(r), 2000);
			e2e_say(pipefd[1], st == -EPERM ? 'P' : r.donor ? 'D' : 'N');
			_exit(0);
		}
		execl("/bin/sleep", "sleep", "1", (char *)NULL); /* fd kept: no CLOEXEC */
		_exit(30);
	}
	assert_int_equal(e2e_hear(pipefd[0], 3000), 'P');
	waitpid(pid, &status, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	e2e_stop_daemon();
}

/* A frame says nothing of the program that wrote it.  The attacker queues
 * its requests (HELLO, a look-up and a send to its own receiver at nice
 * 19), then execs the donor program; the daemon, stopped meanwhile, reads
 * them only after the exec.  Variant 2 reads HELLO's challenge first and
 * queues CONFIRM just before the exec.  Neither becomes a donor, so the
 * receiver stays at 19. */
struct queued {
	int stage;  /* 1: queue everything, 2: HELLO first, then queue CONFIRM */
	int go[2];  /* the test says when the daemon is stopped */
	int ready[2];
	uint64_t port; /* the attacker's receiver's port */
};

static void put_frame(int fd, uint16_t type, uint32_t serial, const void *body, size_t len, const void *extra,
		      size_t extra_len)
{
	uint8_t frame[sizeof(struct impp_header) + 512];
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)(len + extra_len) };

	memcpy(frame, &h, sizeof(h));
	memcpy(frame + sizeof(h), body, len);
	if (extra_len)
		memcpy(frame + sizeof(h) + len, extra, extra_len);
	send(fd, frame, sizeof(h) + len + extra_len, MSG_NOSIGNAL);
}

static int exec_after_queueing(void *arg)
{
	struct queued *qd = arg;
	struct impp_req_hello hq = { IMPP_VERSION, 0 };
	struct impp_reply_hello hr = { 0 };
	struct impp_req_name nq = { 0, (uint16_t)strlen("impattack.rx") };
	struct impp_req_send sq = { 0 };
	int fd = e2e_raw_connect();

	if (fd < 0)
		return 10;
	if (qd->stage == 2) {
		put_frame(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq), NULL, 0);
		if (e2e_raw_reply(fd, NULL, &hr, sizeof(hr), 2000) != 0)
			return 11;
	}
	e2e_say(qd->ready[1], 'q');
	if (e2e_hear(qd->go[0], 5000) != 's') /* the daemon is stopped */
		return 12;
	if (qd->stage == 1)
		put_frame(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq), NULL, 0);
	else {
		struct impp_req_confirm cq = { hr.challenge };

		put_frame(fd, IMPP_REQ_CONFIRM, 2, &cq, sizeof(cq), NULL, 0);
	}
	put_frame(fd, IMPP_REQ_NAME_LOOKUP, 3, &nq, sizeof(nq), "impattack.rx", nq.len);
	sq.port = qd->port;
	put_frame(fd, IMPP_REQ_SEND, 4, &sq, sizeof(sq), NULL, 0);
	execl("/bin/sleep", "sleep", "3", (char *)NULL); /* the donor program; fd kept */
	return 13;
}

static void test_exec_after_queueing(void **state)
{
	(void)state;
	for (int stage = 1; stage <= 2; stage++) {
		struct queued qd = { .stage = stage };
		char exe[64], path[64];
		int to[2], from[2], status;
		pid_t rx, attacker;

		e2e_start_daemon("--donor-exe /bin/sleep");
		assert_int_equal(pipe(to), 0);
		assert_int_equal(pipe(from), 0);
		rx = e2e_fork();
		if (rx == 0) { /* the attacker's receiver, at nice 19 */
			impc *c;
			uint64_t port;

			e2e_become(auid, agid);
			setpriority(PRIO_PROCESS, 0, 19);
			if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
			    impc_register(c, "impattack.rx", port) < 0 || write(from[1], &port, sizeof(port)) != sizeof(port))
				_exit(5);
			pause();
			_exit(0);
		}
		assert_int_equal(read(from[0], &qd.port, sizeof(qd.port)), sizeof(qd.port));
		assert_int_equal(pipe(qd.go), 0);
		assert_int_equal(pipe(qd.ready), 0);
		attacker = e2e_fork();
		if (attacker == 0) {
			e2e_become(auid, agid);
			_exit(exec_after_queueing(&qd));
		}
		assert_int_equal(e2e_hear(qd.ready[0], 5000), 'q');
		kill(e2e_daemon_pid, SIGSTOP);
		e2e_say(qd.go[1], 's');
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)attacker);
		for (int i = 0; i < 2000; i++) {
			ssize_t n = readlink(path, exe, sizeof(exe) - 1);

			if (n > 0 && (exe[n] = '\0', strstr(exe, "sleep")))
				break;
			usleep(1000);
		}
		assert_non_null(strstr(exe, "sleep"));
		kill(e2e_daemon_pid, SIGCONT); /* it reads the frames now, after the exec */
		assert_int_equal(e2e_wait_nice(rx, BOOSTED, 500), -1);
		assert_int_equal(e2e_nice(rx), 19);
		kill(attacker, SIGKILL);
		waitpid(attacker, &status, 0);
		kill(rx, SIGKILL);
		waitpid(rx, &status, 0);
		e2e_stop_daemon();
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		close(qd.go[0]);
		close(qd.go[1]);
		close(qd.ready[0]);
		close(qd.ready[1]);
	}
}

/* The connecting process exits; a child holding its socket is not served
 * (and a pid reused later could not become it). */
static int orphan_speaks(void *arg)
{
	int *pipefd = arg;
	struct impp_req_hello q = { IMPP_VERSION, 0 };
	int fd = e2e_raw_connect();
	pid_t kid;

	if (fd < 0)
		return 10;
	kid = fork();
	if (kid == 0) {
		int st;

		usleep(200000); /* its parent, the owner, is gone */
		e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &q, sizeof(q));
		st = e2e_raw_reply(fd, NULL, NULL, 0, 2000);
		e2e_say(pipefd[1], st == -EPIPE ? 'C' : st == 0 ? 'S' : 'O');
		_exit(0);
	}
	return 0;
}

static void test_dead_owner(void **state)
{
	int pipefd[2];

	(void)state;
	e2e_start_daemon("");
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(as_attacker(orphan_speaks, pipefd), 0);
	{
		char verdict = e2e_hear(pipefd[0], 3000);

		if (verdict != 'C')
			fail_msg("the orphan's HELLO: '%c' (C: closed, S: served, O: other)", verdict ? verdict : '?');
	}
	close(pipefd[0]);
	close(pipefd[1]);
	e2e_stop_daemon();
}

/* In a user and pid namespace of its own the attacker may put any pid of
 * that namespace on a frame: B speaks for A, which connected and then
 * became the donor binary.  No rule makes a process in another namespace
 * a donor, so B gains nothing. */
static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		_exit(50);
	close(fd);
}

static int send_as(int fd, pid_t pid, const void *frame, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct ucred uc = { pid, getuid(), getgid() };
	struct iovec iov = { (void *)frame, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(uc));
	memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int forge_in_namespace(void *arg)
{
	int *verdict = arg, sp[2], fd = -1, status;
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	pid_t b;

	if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0)
		return 77; /* no unprivileged namespaces here */
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
	write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
	write_file("/proc/self/gid_map", map);
	b = fork();
	if (b == 0) { /* B, pid 1 of the namespace */
		struct {
			struct impp_header h;
			struct impp_req_hello q;
		} __attribute__((packed)) hello = { { IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) },
						    { IMPP_VERSION, 0 } };
		struct impp_reply_hello r = { 0 };
		char c, path[64], exe[64];
		struct iovec iov = { &c, 1 };
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int))];
		} control;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		pid_t a;
		int st;

		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) < 0)
			_exit(51);
		a = fork();
		if (a == 0) { /* A: connects, hands the socket to B, runs the donor binary */
			struct cmsghdr *cm;

			if ((fd = e2e_raw_connect()) < 0)
				_exit(52);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
			if (sendmsg(sp[1], &mh, 0) < 0)
				_exit(53);
			close(fd);
			execl("/bin/sleep", "sleep", "3", (char *)NULL);
			_exit(54);
		}
		if (recvmsg(sp[0], &mh, 0) < 0 || !CMSG_FIRSTHDR(&mh))
			_exit(55);
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(fd));
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)a);
		for (int i = 0; i < 1000; i++) {
			ssize_t n = readlink(path, exe, sizeof(exe) - 1);

			if (n > 0 && (exe[n] = '\0', strstr(exe, "sleep")))
				break;
			usleep(1000);
		}
		if (send_as(fd, a, &hello, sizeof(hello)) < 0)
			_exit(56);
		st = e2e_raw_reply(fd, NULL, &r, sizeof(r), 2000);
		if (st == 0) { /* the handshake's second half, still as A */
			struct {
				struct impp_header h;
				struct impp_req_confirm q;
			} __attribute__((packed)) confirm = {
				{ IMPP_MAGIC, IMPP_REQ_CONFIRM, 0, 2, sizeof(struct impp_req_confirm) }, { r.challenge }
			};

			if (send_as(fd, a, &confirm, sizeof(confirm)) < 0)
				_exit(57);
			st = e2e_raw_reply(fd, NULL, &r, sizeof(r), 2000);
		}
		kill(a, SIGKILL);
		_exit(st < 0 ? 0 : r.donor ? 1 : 0);
	}
	waitpid(b, &status, 0);
	*verdict = WIFEXITED(status) ? WEXITSTATUS(status) : 60;
	return *verdict;
}

static void test_userns_forge(void **state)
{
	int verdict = -1, r;

	(void)state;
	e2e_start_daemon("--donor-exe /bin/sleep");
	r = as_attacker(forge_in_namespace, &verdict);
	e2e_stop_daemon();
	if (r == 77)
		skip();
	assert_int_equal(r, 0); /* not a donor */
}

/* --donor-cgroup /X does not make /X-evil a donor. */
#define UNIFIED "/sys/fs/cgroup/unified"

static int hello_donor(void *arg)
{
	bool donor = true;
	impc *c;

	(void)arg;
	if (impc_connect(e2e_sock, 0, &c, &donor) < 0)
		return 10;
	impc_close(c);
	return donor ? 1 : 0;
}

static void test_donor_cgroup_prefix(void **state)
{
	char app[128], evil[140], arg[160], procs[200];
	struct stat st;
	FILE *f;
	int pipefd[2], status;
	pid_t pid;

	(void)state;
	if (stat(UNIFIED "/cgroup.procs", &st) < 0)
		skip();
	snprintf(app, sizeof(app), UNIFIED "/impd-attack-%d", (int)getpid());
	snprintf(evil, sizeof(evil), "%s-evil", app);
	assert_int_equal(mkdir(app, 0755), 0);
	assert_int_equal(mkdir(evil, 0755), 0);
	snprintf(arg, sizeof(arg), "--donor-cgroup %s", app + strlen(UNIFIED));
	e2e_start_daemon(arg);
	assert_int_equal(pipe(pipefd), 0);
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		e2e_hear(pipefd[0], 5000); /* moved by now */
		_exit(hello_donor(NULL));
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", evil);
	assert_non_null(f = fopen(procs, "w"));
	fprintf(f, "%d\n", (int)pid);
	assert_int_equal(fclose(f), 0);
	e2e_say(pipefd[1], 'g');
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0); /* not a donor */
	close(pipefd[0]);
	close(pipefd[1]);
	e2e_stop_daemon();
	usleep(20000);
	rmdir(evil);
	rmdir(app);
}

/* ------------------------------------------------------------------ */
/* 4. configuration                                                     */
/* ------------------------------------------------------------------ */

static void test_config_typos(void **state)
{
	char err[4096], conf[] = "/tmp/impd-conf-XXXXXX", file[] = "/tmp/impd-notasocket-XXXXXX";
	int cfd = mkstemp(conf), ffd = mkstemp(file);
	struct stat st;

	(void)state;
	assert_true(cfd >= 0 && ffd >= 0);
	{
		const char *a[] = { "--no-config", "--donor-uid", "bob-no-such-user", NULL };

		assert_int_equal(e2e_run_daemon(a, err, sizeof(err)), 2);
		assert_non_null(strstr(err, "donor-uid: 'bob-no-such-user' is neither a uid nor a user name"));
	}
	{
		const char *a[] = { "--no-config", "--boost-nice", "-21", NULL };

		assert_int_equal(e2e_run_daemon(a, err, sizeof(err)), 2);
		assert_non_null(strstr(err, "boost-nice: -21 is out of range (-20..19)"));
	}
	assert_int_equal(write(cfd, "donor-uid 1000\nbackend sometimes\n", 33), 33);
	{
		const char *a[] = { "--config", conf, NULL };

		assert_int_equal(e2e_run_daemon(a, err, sizeof(err)), 2);
		assert_non_null(strstr(err, ":2: backend: 'sometimes' is not one of auto, cgroup, cgroup-v2, cgroup-v1, autogroup, nice, none"));
	}
	assert_int_equal(write(ffd, "precious\n", 9), 9);
	{
		const char *a[] = { "--no-config", "--socket", file, NULL };

		assert_int_equal(e2e_run_daemon(a, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "not a socket: not replaced"));
		assert_int_equal(stat(file, &st), 0);
		assert_int_equal(st.st_size, 9);
	}
	close(cfd);
	close(ffd);
	unlink(conf);
	unlink(file);
}

/* ------------------------------------------------------------------ */
/* 5. starving the daemon or others                                     */
/* ------------------------------------------------------------------ */

static int open_many(void *arg)
{
	int *counts = arg, ok = 0, refused = 0;
	impc *c;

	for (int i = 0; i < counts[0]; i++) {
		int e = impc_connect(e2e_sock, 0, &c, NULL);

		if (e == 0)
			ok++; /* kept open until exit */
		else if (e == -EUSERS)
			refused++;
		else
			fprintf(stderr, "open_many: connection %d: %s\n", i, strerror(-e));
	}
	if (write(counts[1], &ok, sizeof(ok)) != sizeof(ok) || write(counts[1], &refused, sizeof(refused)) != sizeof(refused))
		return 10;
	return 0;
}

static void test_connection_limit(void **state)
{
	int pipefd[2], counts[2], ok = 0, refused = 0;
	impc *c;
	long cpu0;

	(void)state;
	e2e_start_daemon("--max-user-connections 16");
	assert_int_equal(pipe(pipefd), 0);
	counts[0] = 40;
	counts[1] = pipefd[1];
	assert_int_equal(as_attacker(open_many, counts), 0);
	assert_int_equal(read(pipefd[0], &ok, sizeof(ok)), sizeof(ok));
	assert_int_equal(read(pipefd[0], &refused, sizeof(refused)), sizeof(refused));
	assert_int_equal(ok, 16);
	assert_int_equal(refused, 24);
	/* someone else still gets in, and the daemon is idle */
	cpu0 = e2e_cpu_ms(e2e_daemon_pid);
	assert_int_equal(impc_connect(e2e_sock, 0, &c, NULL), 0);
	impc_close(c);
	usleep(300000);
	assert_true(e2e_cpu_ms(e2e_daemon_pid) - cpu0 < 50);
	close(pipefd[0]);
	close(pipefd[1]);
	e2e_stop_daemon();
}

/* Out of file descriptors, the daemon pauses accepting instead of
 * spinning on a listening socket that stays readable, and accepts again
 * once descriptors are back (its retry timer exists from the start). */
static int hold_raw(void *arg)
{
	int n = *(int *)arg;

	for (int i = 0; i < n; i++)
		if (e2e_raw_connect() < 0)
			break;
	sleep(2);
	return 0;
}

static void test_fd_exhaustion_no_spin(void **state)
{
	struct rlimit low;
	int n = 60, status, base;
	long cpu0, cpu1;
	pid_t pid;

	(void)state;
	e2e_start_daemon("");
	/* room for a few clients past what the daemon holds at rest (its
	 * listening socket, timers, BPF maps and links) */
	assert_true((base = e2e_fd_count(e2e_daemon_pid)) > 0);
	low.rlim_cur = low.rlim_max = (rlim_t)base + 8;
	assert_int_equal(prlimit(e2e_daemon_pid, RLIMIT_NOFILE, &low, NULL), 0);
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(hold_raw(&n));
	}
	usleep(300000);
	cpu0 = e2e_cpu_ms(e2e_daemon_pid);
	usleep(1000000);
	cpu1 = e2e_cpu_ms(e2e_daemon_pid);
	assert_true(cpu1 - cpu0 < 100); /* spinning: ~500 and more */
	waitpid(pid, &status, 0);
	/* the descriptors are back: accepting resumes, and a client is served
	 * (raw, so that a daemon that never accepts fails the test, not hangs it) */
	{
		struct impp_req_hello hq = { IMPP_VERSION, IMPP_HELLO_MONITOR };
		uint16_t type = 0;
		int fd = e2e_raw_connect();

		assert_true(fd >= 0);
		e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq));
		assert_int_equal(e2e_raw_reply(fd, &type, NULL, 0, 5000), 0);
		assert_int_equal(type, IMPP_REPLY(IMPP_REQ_HELLO));
		close(fd);
	}
	e2e_stop_daemon();
}

/* Many messages and pipelined GRAPH requests: the uid's limit on messages
 * in flight holds, and a bystander is answered promptly meanwhile. */
struct flood {
	int conns, per_conn, pipefd;
};

static int flood(void *arg)
{
	struct flood *fl = arg;
	impc *cs[64];
	uint64_t port = 0, peer;
	int sent = 0;

	for (int k = 0; k < fl->conns; k++) {
		if (impc_connect(e2e_sock, IMPC_RECEIVER, &cs[k], NULL) < 0)
			return 10;
		if (k == 0 && (impc_port_allocate(cs[0], true, &port) < 0 ||
			       impc_register(cs[0], "impattack.sink", port) < 0))
			return 11;
		if (impc_lookup(cs[k], "impattack.sink", &peer) < 0)
			return 12;
		for (int i = 0; i < fl->per_conn; i++)
			if (impc_send(cs[k], peer, "x", 1, 0, 0, 0, NULL) == 0)
				sent++;
	}
	if (write(fl->pipefd, &sent, sizeof(sent)) != sizeof(sent))
		return 13;
	/* now many graphs, not read */
	for (int k = 0; k < fl->conns; k++)
		for (int i = 0; i < 30; i++)
			e2e_raw_send(impc_fd(cs[k]), IMPP_REQ_GRAPH, 1000 + (uint32_t)i, NULL, 0);
	sleep(3);
	return 0;
}

static void test_flood_bounded(void **state)
{
	struct flood fl = { 20, 4096, -1 };
	int pipefd[2], sent = 0, status;
	uint64_t worst = 0;
	pid_t pid;

	(void)state;
	e2e_start_daemon("--max-user-inflight 20000");
	assert_int_equal(pipe(pipefd), 0);
	fl.pipefd = pipefd[1];
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(flood(&fl));
	}
	assert_int_equal(read(pipefd[0], &sent, sizeof(sent)), sizeof(sent));
	assert_int_equal(sent, 20000);
	for (int i = 0; i < 20; i++) {
		impc *a;
		impc_status st;
		uint64_t t0 = e2e_now_ms();

		assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &a, NULL), 0);
		assert_int_equal(impc_status_get(a, &st), 0);
		impc_close(a);
		if (e2e_now_ms() - t0 > worst)
			worst = e2e_now_ms() - t0;
		usleep(50000);
	}
	print_message("bystander's worst STATUS round trip while flooded: %llu ms\n", (unsigned long long)worst);
	assert_true(worst < 500);
	waitpid(pid, &status, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	e2e_stop_daemon();
}

/* One uid's many connections, each keeping the daemon busy with BATCHes
 * that send 512 messages to its own port and take them back (no quota is
 * ever reached): a bystander of another uid is still answered promptly,
 * because a uid past its share of time is served after everyone else. */
static int batch_flood(void *arg)
{
	int conns = *(int *)arg;

	for (int i = 0; i < conns; i++) {
		if (fork() == 0) {
			static uint8_t frame[sizeof(struct impp_header) + sizeof(struct impp_req_batch) +
					     512 * sizeof(struct impp_req_send)];
			struct impp_req_hello hq = { IMPP_VERSION, 0 };
			struct impp_req_port_allocate pq = { 0 };
			struct impp_reply_port pr = { 0 };
			struct impp_req_batch bq = { 0 };
			struct impp_header h;
			size_t off = sizeof(h);
			int fd = e2e_raw_connect(), inflight = 0;
			uint64_t end = e2e_now_ms() + 2500;

			if (fd < 0)
				_exit(10);
			e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq));
			e2e_raw_send(fd, IMPP_REQ_PORT_ALLOCATE, 2, &pq, sizeof(pq));
			if (e2e_raw_reply(fd, NULL, NULL, 0, 2000) != 0 || e2e_raw_reply(fd, NULL, &pr, sizeof(pr), 2000) != 0)
				_exit(11);
			bq.n_send = 512;
			bq.recv_port = pr.port;
			bq.recv_max = 512;
			memcpy(frame + off, &bq, sizeof(bq));
			off += sizeof(bq);
			for (int k = 0; k < 512; k++) {
				struct impp_req_send sq = { .port = pr.port };

				memcpy(frame + off, &sq, sizeof(sq));
				off += sizeof(sq);
			}
			h = (struct impp_header){ IMPP_MAGIC, IMPP_REQ_BATCH, 0, 3, (uint32_t)(off - sizeof(h)) };
			memcpy(frame, &h, sizeof(h));
			while (e2e_now_ms() < end) {
				while (inflight < 4 && send(fd, frame, off, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
					inflight++;
				if (e2e_raw_reply(fd, NULL, NULL, 0, 100) != -ETIMEDOUT)
					inflight--;
			}
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	return 0;
}

static void test_batch_flood_fair(void **state)
{
	int conns = 40, status;
	double best = 1e9;
	impc_status st;
	impc *a;
	pid_t pid;

	(void)state;
	e2e_start_daemon("");
	assert_int_equal(impc_connect(e2e_sock, 0, &a, NULL), 0);
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(batch_flood(&conns));
	}
	usleep(300000); /* the flood is on */
	/* Three windows of 600 ms; the best one is judged, so that a burst of
	 * the machine's other load in one window is not taken for the
	 * daemon's unfairness, which is in every window. */
	for (int w = 0; w < 3; w++) {
		uint64_t worst = 0, sum = 0;
		unsigned n = 0;

		for (uint64_t end = e2e_now_ms() + 600; e2e_now_ms() < end; n++) {
			uint64_t t0 = e2e_now_ms(), d;

			assert_int_equal(impc_status_get(a, &st), 0);
			d = e2e_now_ms() - t0;
			sum += d;
			if (d > worst)
				worst = d;
			usleep(20000);
		}
		print_message("bystander's STATUS under a BATCH flood of %d connections: mean %.1f ms, worst %llu ms\n",
			      conns, (double)sum / n, (unsigned long long)worst);
		if ((double)sum / n < best)
			best = (double)sum / n;
	}
	/* Without fairness between uids: mean 35-82 ms, worst 99-115 ms.  The
	 * worst case also holds this process's own wait for a CPU among the
	 * attacker's 40, which the daemon does not decide. */
	assert_true(best < 15);
	waitpid(pid, &status, 0);
	impc_close(a);
	e2e_stop_daemon();
}

/* Files passed in messages and received back, never read off the socket:
 * the daemon's queue of unread replies would hold them all.  They count
 * against the uid's files in flight, and the peer is let go past its
 * quota, so the daemon's descriptors stay bounded. */
static int fd_flood(void *arg)
{
	struct impp_req_hello hq = { IMPP_VERSION, 0 };
	struct impp_req_port_allocate pq = { 0 };
	struct impp_reply_port pr = { 0 };
	int fd = e2e_raw_connect(), files[IMPP_MAX_FDS];

	(void)arg;
	if (fd < 0)
		return 10;
	e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq));
	e2e_raw_send(fd, IMPP_REQ_PORT_ALLOCATE, 2, &pq, sizeof(pq));
	if (e2e_raw_reply(fd, NULL, NULL, 0, 2000) != 0 || e2e_raw_reply(fd, NULL, &pr, sizeof(pr), 2000) != 0)
		return 11;
	for (unsigned i = 0; i < IMPP_MAX_FDS; i++)
		files[i] = open("/dev/null", O_RDONLY);
	for (int i = 0; i < 20000; i++) {
		struct {
			struct impp_header h;
			struct impp_req_send q;
		} __attribute__((packed)) sf = { { IMPP_MAGIC, IMPP_REQ_SEND, 0, 3, sizeof(struct impp_req_send) },
						 { .port = pr.port, .n_fds = IMPP_MAX_FDS } };
		struct {
			struct impp_header h;
			struct impp_req_receive q;
		} __attribute__((packed)) rf = { { IMPP_MAGIC, IMPP_REQ_RECEIVE, 0, 4, sizeof(struct impp_req_receive) },
						 { .port = pr.port, .timeout_ms = 0 } };
		union {
			struct cmsghdr align;
			char buf[IMPP_FDS_CONTROL_SIZE];
		} control;
		struct iovec iov = { &sf, sizeof(sf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		impp_attach_fds(&mh, control.buf, files, IMPP_MAX_FDS);
		if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 || send(fd, &rf, sizeof(rf), MSG_NOSIGNAL) < 0)
			break; /* closed */
	}
	sleep(1);
	return 0;
}

static void test_fds_in_unread_replies(void **state)
{
	int most = 0, status;
	impc *c;
	pid_t pid;

	(void)state;
	e2e_start_daemon("");
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(fd_flood(NULL));
	}
	for (int i = 0; i < 100; i++) {
		int n = e2e_fd_count(e2e_daemon_pid);

		if (n > most)
			most = n;
		usleep(10000);
	}
	waitpid(pid, &status, 0);
	print_message("the daemon held at most %d descriptors\n", most);
	assert_true(most < 64 + 64); /* its own, and one peer's quota of files */
	assert_int_equal(impc_connect(e2e_sock, 0, &c, NULL), 0);
	impc_close(c);
	e2e_stop_daemon();
}

/* Send rights to ports that are gone do not pile up. */
static int churn_ports(void *arg)
{
	int n = *(int *)arg;
	uint64_t port;
	impc *c;

	if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0)
		return 10;
	for (int i = 0; i < n; i++)
		if (impc_port_allocate(c, true, &port) < 0 || impc_port_destroy(c, port) < 0)
			return 11;
	impc_close(c);
	return 0;
}

static void test_rights_bounded(void **state)
{
	int n = 60000;
	long rss0, rss1;

	(void)state;
	e2e_start_daemon("--max-send-rights 256");
	rss0 = e2e_rss_kb(e2e_daemon_pid);
	assert_int_equal(as_attacker(churn_ports, &n), 0);
	rss1 = e2e_rss_kb(e2e_daemon_pid);
	print_message("daemon RSS %ld kB -> %ld kB after %d ports made and destroyed\n", rss0, rss1, n);
#if IMP_SANITIZED
	/* the sanitizer's allocator keeps freed memory for a while: growth
	 * says nothing there (the plain build checks it; LSan checks leaks) */
	(void)rss0;
	(void)rss1;
#else
	assert_true(rss1 - rss0 < 1024);
#endif
	e2e_stop_daemon();
}

/* Requests of unknown types count as errors: the connection is closed. */
static int unknown_requests(void *arg)
{
	struct impp_req_hello q = { IMPP_VERSION, 0 };
	int fd = e2e_raw_connect(), answered = 0;

	(void)arg;
	e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &q, sizeof(q));
	if (e2e_raw_reply(fd, NULL, NULL, 0, 2000) != 0)
		return 10;
	for (int i = 0; i < 200; i++)
		e2e_raw_send(fd, 99, 2 + (uint32_t)i, NULL, 0);
	while (e2e_raw_reply(fd, NULL, NULL, 0, 1000) == -EOPNOTSUPP)
		answered++;
	return answered < 100 ? 0 : 11;
}

static void test_unknown_requests(void **state)
{
	(void)state;
	e2e_start_daemon("");
	assert_int_equal(as_attacker(unknown_requests, NULL), 0);
	e2e_stop_daemon();
}

/* ------------------------------------------------------------------ */
/* 6. names and introspection                                           */
/* ------------------------------------------------------------------ */

static int squat(void *arg)
{
	uint64_t port;
	impc *c;

	(void)arg;
	if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0)
		return 10;
	if (impc_register(c, "org.example.svc", port) != -EACCES)
		return 11;
	if (impc_register(c, "org.example.sub.x", port) != -EACCES)
		return 12;
	if (impc_register(c, "impattack.free", port) != 0)
		return 13;
	impc_close(c);
	return 0;
}

static void test_name_squatting(void **state)
{
	struct service s;

	(void)state;
	{
		char conf[] = "/tmp/impd-names-XXXXXX", arg[64];
		int fd = mkstemp(conf);

		assert_true(fd >= 0);
		dprintf(fd, "name-owner org.example.svc root\nname-owner org.example.sub.* root\n");
		close(fd);
		snprintf(arg, sizeof(arg), "--config %s", conf);
		e2e_start_daemon(arg);
		unlink(conf);
	}
	assert_int_equal(as_attacker(squat, NULL), 0);
	s = serve("org.example.svc", 0); /* root takes its name */
	e2e_say(s.cmd, 'q');
	e2e_stop_daemon();
}

struct pry {
	pid_t service;
	int pipefd;
};

static int pry(void *arg)
{
	struct pry *p = arg;
	char *text = NULL, needle[32];
	impc *c, *mon;
	impc_event ev;
	int r = 0;

	if (impc_connect(e2e_sock, 0, &c, NULL) < 0 || impc_connect(e2e_sock, IMPC_MONITOR, &mon, NULL) < 0 ||
	    impc_monitor(mon) < 0)
		return 10;
	snprintf(needle, sizeof(needle), "%d ", (int)p->service);
	if (impc_tasks(c, &text) < 0)
		return 11;
	if (strstr(text, needle))
		r = 12;
	free(text);
	snprintf(needle, sizeof(needle), "pid %d", (int)p->service);
	if (impc_graph(c, &text) != -EBUSY) /* one listing per interval */
		return 16;
	usleep(150000);
	if (impc_graph(c, &text) < 0)
		return 13;
	if (strstr(text, needle))
		r = 14;
	free(text);
	e2e_say(p->pipefd, 'M'); /* the monitor is on: boost the service now */
	if (impc_next_event(mon, 1000, &ev) == 0 && ev.pid == p->service)
		r = 15;
	return r;
}

static void test_introspection(void **state)
{
	int pipefd[2], status;
	struct pry p;
	struct service s;
	char cmd[64], *text = NULL, needle[32];
	uint64_t port;
	impc *donor, *root_mon;
	impc_event ev;
	pid_t pid;

	(void)state;
	snprintf(cmd, sizeof(cmd), "--donor-uid %u", (unsigned)getuid());
	e2e_start_daemon(cmd);
	s = serve("root.svc", 10);
	assert_int_equal(pipe(pipefd), 0);
	p.service = s.pid;
	p.pipefd = pipefd[1];
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(pry(&p));
	}
	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &root_mon, NULL), 0);
	assert_int_equal(impc_monitor(root_mon), 0);
	assert_int_equal(e2e_hear(pipefd[0], 5000), 'M');
	assert_int_equal(impc_connect(e2e_sock, 0, &donor, NULL), 0);
	assert_int_equal(impc_lookup(donor, "root.svc", &port), 0);
	assert_int_equal(impc_send(donor, port, "w", 1, 0, 0, 0, NULL), 0);
	assert_true(e2e_wait_nice(s.pid, BOOSTED, 2000) >= 0);
	/* root sees it all */
	assert_int_equal(impc_next_event(root_mon, 2000, &ev), 0);
	assert_int_equal(ev.pid, s.pid);
	assert_int_equal(impc_tasks(root_mon, &text), 0);
	snprintf(needle, sizeof(needle), "%d ", (int)s.pid);
	assert_non_null(strstr(text, needle));
	free(text);
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	impc_close(donor);
	impc_close(root_mon);
	e2e_say(s.cmd, 'q');
	close(pipefd[0]);
	close(pipefd[1]);
	e2e_stop_daemon();
}

/* Ids and counts say nothing of other users: port ids are random, a
 * sender's message ids count its own messages only, and STATUS shows a uid
 * other than root its own usage. */
struct idpry {
	int go[2], done[2];
};

static int pry_ids(void *arg)
{
	struct idpry *ip = arg;
	uint64_t p1, p2, m1, m2;
	impc_status st;
	impc *c;

	if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &p1) < 0 ||
	    impc_send(c, p1, "a", 1, 0, 0, 0, &m1) < 0)
		return 10;
	e2e_say(ip->done[1], 'a'); /* root makes ports and sends now */
	if (e2e_hear(ip->go[0], 5000) != 'g')
		return 11;
	if (impc_port_allocate(c, true, &p2) < 0 || impc_send(c, p2, "b", 1, 0, 0, 0, &m2) < 0)
		return 12;
	if ((p2 > p1 ? p2 - p1 : p1 - p2) < 1000)
		return 13; /* counted ports: the gap tells what root made */
	if (m2 != m1 + 1)
		return 14;
	if (impc_status_get(c, &st) < 0 || st.clients != 1 || st.ports != 2 || st.messages != 2)
		return 15;
	return 0;
}

static void test_ids_say_nothing(void **state)
{
	struct idpry ip;
	int status;
	uint64_t port;
	impc *root;
	pid_t pid;

	(void)state;
	e2e_start_daemon("");
	assert_int_equal(pipe(ip.go), 0);
	assert_int_equal(pipe(ip.done), 0);
	pid = e2e_fork();
	if (pid == 0) {
		e2e_become(auid, agid);
		_exit(pry_ids(&ip));
	}
	assert_int_equal(e2e_hear(ip.done[0], 5000), 'a');
	assert_int_equal(impc_connect(e2e_sock, IMPC_RECEIVER, &root, NULL), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(impc_port_allocate(root, true, &port), 0);
		assert_int_equal(impc_send(root, port, "r", 1, 0, 0, 0, NULL), 0);
	}
	e2e_say(ip.go[1], 'g');
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	impc_close(root);
	for (int i = 0; i < 2; i++) {
		close(ip.go[i]);
		close(ip.done[i]);
	}
	e2e_stop_daemon();
}

/* ------------------------------------------------------------------ */
/* 7. signals                                                           */
/* ------------------------------------------------------------------ */

static void test_sighup_reloads(void **state)
{
	char conf[] = "/tmp/impd-reload-XXXXXX", arg[64];
	int fd = mkstemp(conf);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(conf, 0644), 0);
	snprintf(arg, sizeof(arg), "--config %s", conf);
	e2e_start_daemon(arg);
	assert_int_equal(as_attacker(hello_donor, NULL), 0);
	/* then a good file, then a broken one: refused, what was in force stays */
	for (int round = 0; round < 2; round++) {
		assert_non_null(f = fopen(conf, "w"));
		fprintf(f, "donor-uid %u\n%s", (unsigned)auid, round ? "max-ports lots\n" : "");
		fclose(f);
		kill(e2e_daemon_pid, SIGHUP);
		usleep(200000);
		assert_int_equal(kill(e2e_daemon_pid, 0), 0); /* still there */
		assert_int_equal(as_attacker(hello_donor, NULL), 1);
	}
	unlink(conf);
	e2e_stop_daemon();
}

/*
 * Real time that cannot be held: one uid paces a flood so that the
 * daemon sleeps between bursts (RLIMIT_RTTIME alone never fires then).
 * The daemon and another uid's busy process share CPU 0, the flood runs
 * on CPU 1; the busy process keeps at least 90% of the throughput it had
 * with the daemon idle, measured before and after the flood.
 */
static int paced_flood(void *arg)
{
	int fds[8], n = 0;
	struct impp_req_hello hq = { IMPP_VERSION, IMPP_HELLO_MONITOR };
	uint64_t until = e2e_now_ms() + (uint64_t)*(int *)arg;
	uint8_t buf[4096];
	uint32_t serial = 10;

	for (int i = 0; i < 8; i++) {
		if ((fds[n] = e2e_raw_connect()) < 0)
			break;
		e2e_raw_send(fds[n], IMPP_REQ_HELLO, 1, &hq, sizeof(hq));
		if (recv(fds[n], buf, sizeof(buf), 0) <= 0)
			return 10;
		n++;
	}
	if (n == 0)
		return 11;
	while (e2e_now_ms() < until) {
		for (int i = 0; i < n; i++)
			for (int k = 0; k < 32; k++)
				e2e_raw_send(fds[i], IMPP_REQ_STATUS, serial++, NULL, 0);
		for (int i = 0; i < n; i++)
			for (int k = 0; k < 32; k++)
				if (recv(fds[i], buf, sizeof(buf), 0) <= 0)
					return 12;
		usleep(50);
	}
	return 0;
}

static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(sched_setaffinity(pid, sizeof(set), &set), 0);
}

/* The share of a CPU pid got over ms milliseconds from now. */
static double cpu_share(pid_t pid, int ms)
{
	long c0 = e2e_cpu_ms(pid);

	usleep((useconds_t)ms * 1000);
	return (double)(e2e_cpu_ms(pid) - c0) / ms;
}

/* One measurement: the victim's share of CPU 0 before, during and after
 * a paced flood from CPU 1, and the daemon's share during it. */
static void paced_measure(pid_t victim, int ms, double *kept, double *daemon_share)
{
	double before, during, after;
	int status;
	long d0;
	pid_t flooder;

	before = cpu_share(victim, ms);
	flooder = e2e_fork();
	assert_true(flooder >= 0);
	if (flooder == 0) {
		int flood_ms = ms + 400;

		pin(0, 1);
		e2e_become(auid, agid);
		_exit(paced_flood(&flood_ms));
	}
	usleep(200000);
	d0 = e2e_cpu_ms(e2e_daemon_pid);
	during = cpu_share(victim, ms);
	*daemon_share = (double)(e2e_cpu_ms(e2e_daemon_pid) - d0) / ms;
	waitpid(flooder, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	after = cpu_share(victim, ms);
	*kept = during / ((before + after) / 2);
	print_message("busy process beside a paced flood: %.0f%% of the CPU it had alone (%.2f, %.2f, %.2f); "
		      "the daemon: %.1f%% of that CPU\n", *kept * 100, before, during, after, *daemon_share * 100);
}

static void test_paced_flood_leaves_cpu(void **state)
{
	double kept = 0, daemon_share = 1;
	pid_t victim;

	(void)state;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		fail_msg("this test needs two CPUs");
	e2e_start_daemon("");
	/* a slow start (sanitizers) may spend the first window's budget: the
	 * daemon is back at real time when the window ends */
	for (int i = 0; i < 100 && (sched_getscheduler(e2e_daemon_pid) & ~SCHED_RESET_ON_FORK) != SCHED_FIFO; i++)
		usleep(20000);
	assert_int_equal(sched_getscheduler(e2e_daemon_pid) & ~SCHED_RESET_ON_FORK, SCHED_FIFO);
	pin(e2e_daemon_pid, 0);
	victim = e2e_fork();
	assert_true(victim >= 0);
	if (victim == 0) {
		pin(0, 0);
		setsid();
		e2e_become(65534, 65534);
		for (volatile unsigned long spin = 0;; spin++)
			;
	}
	usleep(200000);
	/* Up to three measurements: the machine's other load on CPU 0 moves
	 * the victim's share before and after, not only during; the daemon
	 * that held real time (88% of CPU 0, the victim at 12%) fails every
	 * one. */
	for (int i = 0; i < 3 && !(daemon_share <= 0.10 && kept >= 0.90); i++)
		paced_measure(victim, 1500, &kept, &daemon_share);
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	assert_true(daemon_share <= 0.10);
	assert_true(kept >= 0.90);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_no_self_boost, e2e_teardown),
		cmocka_unit_test_teardown(test_filelock_boosts_holder, e2e_teardown),
		cmocka_unit_test_teardown(test_fork_exec_donor, e2e_teardown),
		cmocka_unit_test_teardown(test_exec_after_queueing, e2e_teardown),
		cmocka_unit_test_teardown(test_dead_owner, e2e_teardown),
		cmocka_unit_test_teardown(test_userns_forge, e2e_teardown),
		cmocka_unit_test_teardown(test_donor_cgroup_prefix, e2e_teardown),
		cmocka_unit_test_teardown(test_config_typos, e2e_teardown),
		cmocka_unit_test_teardown(test_connection_limit, e2e_teardown),
		cmocka_unit_test_teardown(test_fd_exhaustion_no_spin, e2e_teardown),
		cmocka_unit_test_teardown(test_flood_bounded, e2e_teardown),
		cmocka_unit_test_teardown(test_batch_flood_fair, e2e_teardown),
		cmocka_unit_test_teardown(test_fds_in_unread_replies, e2e_teardown),
		cmocka_unit_test_teardown(test_rights_bounded, e2e_teardown),
		cmocka_unit_test_teardown(test_unknown_requests, e2e_teardown),
		cmocka_unit_test_teardown(test_name_squatting, e2e_teardown),
		cmocka_unit_test_teardown(test_introspection, e2e_teardown),
		cmocka_unit_test_teardown(test_ids_say_nothing, e2e_teardown),
		cmocka_unit_test_teardown(test_sighup_reloads, e2e_teardown),
		cmocka_unit_test_teardown(test_paced_flood_leaves_cpu, e2e_teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-attack: needs root (a second uid to attack from): skipped\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
	e2e_attacker(&auid, &agid);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

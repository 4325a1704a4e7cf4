/*
 * A donor's connection in another process's hands, from an unprivileged
 * second uid (impattack): the daemon knows who sent each frame from the
 * kernel (SCM_CREDENTIALS, docs/security.md), so a connection passed with
 * SCM_RIGHTS, or inherited across fork, does not carry the first
 * process's importance.  The same send from the donor itself boosts the
 * receiver: the refusals are the identity check's, not a broken send.
 *
 * Needs root; skips (77) without it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "e2e.h"
#include "importance/client.h"

#define BOOSTED -10 /* importanced's default boost-nice */

static uid_t auid;
static gid_t agid;

static void pass_fd(int over, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	assert_true(sendmsg(over, &mh, 0) == 1);
}

static int take_fd(int over)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(over, &mh, 0) != 1 || !(cm = CMSG_FIRSTHDR(&mh)) || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* A SEND to port on fd, as the calling process: the reply's status. */
static int raw_send(int fd, uint64_t port)
{
	struct {
		struct impp_header h;
		struct impp_req_send q;
	} __attribute__((packed)) f = { { IMPP_MAGIC, IMPP_REQ_SEND, 0, 77, sizeof(struct impp_req_send) },
					 { .port = port } };

	if (send(fd, &f, sizeof(f), MSG_NOSIGNAL) != sizeof(f))
		return -errno;
	return e2e_raw_reply(fd, NULL, NULL, 0, 2000);
}

/* A receiver of root's at nice 10 with a port named "handoff.rx" that
 * takes donations and is never read. */
static pid_t receiver(void)
{
	int ready[2];
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = e2e_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t port;
		impc *c;

		setpriority(PRIO_PROCESS, 0, 10);
		if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 || impc_port_allocate(c, true, &port) < 0 ||
		    impc_register(c, "handoff.rx", port) < 0)
			_exit(5);
		e2e_say(ready[1], 'R');
		pause();
		_exit(0);
	}
	assert_int_equal(e2e_hear(ready[0], 5000), 'R');
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(e2e_nice(pid), 10);
	return pid;
}

/* A donor's connection, made raw so that its socket can be handed over:
 * HELLO, CONFIRM (the donor rules decide), and a send right to
 * "handoff.rx"; the socket. */
static int donor_connect(uint64_t *port)
{
	struct impp_req_hello hq = { IMPP_VERSION, 0 };
	struct impp_reply_hello hr = { 0 };
	struct impp_req_confirm cq;
	struct impp_reply_port pr = { 0 };
	uint8_t lookup[sizeof(struct impp_req_name) + 16];
	struct impp_req_name nq = { 0, (uint16_t)strlen("handoff.rx") };
	int fd = e2e_raw_connect();

	assert_true(fd >= 0);
	e2e_raw_send(fd, IMPP_REQ_HELLO, 1, &hq, sizeof(hq));
	assert_int_equal(e2e_raw_reply(fd, NULL, &hr, sizeof(hr), 2000), 0);
	cq.challenge = hr.challenge;
	e2e_raw_send(fd, IMPP_REQ_CONFIRM, 2, &cq, sizeof(cq));
	assert_int_equal(e2e_raw_reply(fd, NULL, &hr, sizeof(hr), 2000), 0);
	assert_true(hr.donor);
	memcpy(lookup, &nq, sizeof(nq));
	memcpy(lookup + sizeof(nq), "handoff.rx", nq.len);
	e2e_raw_send(fd, IMPP_REQ_NAME_LOOKUP, 3, lookup, sizeof(nq) + nq.len);
	assert_int_equal(e2e_raw_reply(fd, NULL, &pr, sizeof(pr), 2000), 0);
	*port = pr.port;
	return fd;
}

static void exited_0(pid_t kid)
{
	int status;

	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_handed_connection_refused(void **state)
{
	char cmd[64];
	int sv[2], donor;
	uint64_t port;
	pid_t rx, kid;

	(void)state;
	snprintf(cmd, sizeof(cmd), "--donor-uid %u", (unsigned)getuid());
	e2e_start_daemon(cmd);
	rx = receiver();
	/* a donor (root, by the rule above), confirmed, with a send right */
	donor = donor_connect(&port);

	/* passed with SCM_RIGHTS to a process of the second uid */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	kid = e2e_fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		int fd;

		e2e_become(auid, agid);
		if ((fd = take_fd(sv[1])) < 0)
			_exit(10);
		{
			int st = raw_send(fd, port);

			if (st != -EPERM)
				fprintf(stderr, "passed connection: status %d\n", st);
			_exit(st == -EPERM ? 0 : 11);
		}
	}
	pass_fd(sv[0], donor);
	exited_0(kid);
	assert_int_equal(e2e_wait_nice(rx, BOOSTED, 300), -1);

	/* inherited across fork, the child then the second uid */
	kid = e2e_fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		e2e_become(auid, agid);
		_exit(raw_send(donor, port) == -EPERM ? 0 : 11);
	}
	exited_0(kid);
	/* inherited, still root (a donor itself, but not this connection's
	 * process) */
	kid = e2e_fork();
	assert_true(kid >= 0);
	if (kid == 0)
		_exit(raw_send(donor, port) == -EPERM ? 0 : 11);
	exited_0(kid);
	assert_int_equal(e2e_wait_nice(rx, BOOSTED, 300), -1);

	/* the donor's own send, the same frame: boosts */
	assert_int_equal(raw_send(donor, port), 0);
	assert_true(e2e_wait_nice(rx, BOOSTED, 2000) >= 0);

	close(sv[0]);
	close(sv[1]);
	close(donor);
	assert_true(e2e_wait_nice(rx, 10, 2000) >= 0);
	kill(rx, SIGKILL);
	waitpid(rx, NULL, 0);
	e2e_stop_daemon();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_handed_connection_refused, e2e_teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s IMPORTANCED\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test-attack-handoff: needs root (a second uid to attack from): skipped\n");
		return 77;
	}
	e2e_daemon_bin = argv[1];
	e2e_attacker(&auid, &agid);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

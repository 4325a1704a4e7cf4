/* libFuzzer target: the client library against a daemon that answers
 * anything.  A fake daemon (a thread of this process, on a socket in a
 * private directory) says HELLO properly, then answers each request the
 * library makes with the input's next reply: the right type and serial,
 * the body taken from the input (its status forced to 0 or left as it
 * comes), and before it, when the input says so, an unsolicited frame
 * (an event, an error, a reply to no request).  The input is a sequence
 * of [selector][length][body]; the selector also picks the library call
 * that the reply answers.  Nothing may crash or leak; a reply the library
 * cannot read must end the connection (every later call -ENOTCONN), never
 * leave it open. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "importance/client.h"
#include "importance/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS 32

struct step {
	uint8_t sel;
	size_t len;
	const uint8_t *body;
};

/* Written by the fuzzing thread before it connects, read by the fake
 * daemon while the connection is open (the socket orders the two). */
static struct step steps[MAX_STEPS];
static size_t n_steps;
static char path[108];
static int lfd = -1;

static void send_frame(int fd, uint16_t type, uint32_t serial, const void *body, size_t len)
{
	uint8_t frame[sizeof(struct impp_header) + 256];
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)len };

	memcpy(frame, &h, sizeof(h));
	memcpy(frame + sizeof(h), body, len);
	(void)send(fd, frame, sizeof(h) + len, MSG_NOSIGNAL);
}

/* One request; false at the end of the connection.  Files passed are closed. */
static bool read_request(int fd, struct impp_header *h)
{
	static uint8_t buf[IMPP_MAX_FRAME];
	char cbuf[CMSG_SPACE(sizeof(int) * IMPP_MAX_FDS)];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);

	if (n < (ssize_t)sizeof(*h))
		return false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				close(((int *)CMSG_DATA(cm))[i]);
	memcpy(h, buf, sizeof(*h));
	return true;
}

/* A status the daemon says may be any errno but the two the library
 * keeps for itself (a frame it could not read, a reply that did not come):
 * those the checks below look for. */
static void own_status(uint8_t *body, size_t len)
{
	int32_t st;

	if (len < sizeof(st))
		return;
	memcpy(&st, body, sizeof(st));
	if (st == -EPROTO || st == -ETIMEDOUT) {
		st = -EINVAL;
		memcpy(body, &st, sizeof(st));
	}
}

static void serve(int fd)
{
	struct impp_reply_hello hello = { 0, IMPP_VERSION, (int32_t)getpid(), 0, 42 };
	struct impp_header h;
	size_t i = 0;

	while (read_request(fd, &h)) {
		uint8_t body[256] = { 0 };
		size_t len = 4;

		if (h.type == IMPP_REQ_HELLO || h.type == IMPP_REQ_CONFIRM) {
			send_frame(fd, IMPP_REPLY(h.type), h.serial, &hello, sizeof(hello));
			continue;
		}
		if (i < n_steps) {
			const struct step *s = &steps[i++];

			memcpy(body, s->body, s->len);
			len = s->len;
			if (!(s->sel & 0x80) && len >= 4)
				memset(body, 0, 4); /* status 0: the body must be read */
			else
				own_status(body, len);
			if (s->sel & 0x10) {
				/* something before the reply, from bits 5-6 */
				static const uint16_t types[] = { IMPP_EVT_POLICY, IMPP_EVT_MSG_DESTROYED,
								  IMPP_EVT_AGENT_QUESTION, IMPP_EVT_ERROR };
				uint16_t t = types[(s->sel >> 5) & 3];
				uint8_t first[256];

				memcpy(first, s->body, s->len);
				own_status(first, s->len);
				send_frame(fd, t, t == IMPP_EVT_ERROR ? h.serial : 0, first, s->len);
			}
		} else {
			int32_t st = -EINVAL;

			memcpy(body, &st, sizeof(st));
		}
		send_frame(fd, IMPP_REPLY(h.type), h.serial, body, len);
	}
	close(fd);
}

static void *daemon_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0)
			serve(fd);
	}
	return NULL;
}

static void start(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/fuzz-client.XXXXXX";
	pthread_t t;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/sock", dir);
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0)
		abort();
	if (pthread_create(&t, NULL, daemon_thread, NULL))
		abort();
	pthread_detach(t);
}

static void drain(impc *c)
{
	impc_completion done;
	impc_agent_question q;
	impc_event ev;

	while (impc_next_event(c, 0, &ev) == 0)
		;
	while (impc_next_completion(c, &done) == 0)
		if (done.status == 0 && done.kind != IMPC_OP_SEND)
			impc_message_clear(&done.msg);
	while (impc_agent_next_question(c, &q) == 0)
		;
}

/* The library call a step's reply answers; port: a handle it may use. */
static int call(impc *c, uint8_t sel, uint64_t *port)
{
	impc_status st;
	impc_message msg;
	char *text = NULL, buf[64];
	uint64_t id = 0;
	uint32_t bus, remaining;
	int e;

	switch (sel & 0x0f) {
	case 0:
		return impc_status_get(c, &st);
	case 1:
		e = impc_tasks(c, &text);
		free(text);
		return e;
	case 2:
		e = impc_why(c, 1, &text);
		free(text);
		return e;
	case 3:
		return impc_port_allocate(c, true, port);
	case 4:
		return impc_lookup(c, "fuzz.name", port);
	case 5:
		return impc_send(c, *port ? *port : 1, "x", 1, 0, 0, 0, &id);
	case 6:
		e = impc_receive(c, *port ? *port : 1, 0, IMPC_RECV_VOUCHER, &msg);
		impc_message_clear(&msg);
		return e;
	case 7: {
		impc_send_args a = { *port ? *port : 1, "y", 1, 0, 0, 0, NULL, 0 };
		impc_message msgs[2];
		int send_status = 0;
		uint64_t msg_id = 0;
		impc_batch bt = { .send = &a, .n_send = 1, .recv_port = *port ? *port : 1, .msgs = msgs, .max_msgs = 2,
				  .send_status = &send_status, .msg_ids = &msg_id };

		e = impc_exchange(c, &bt);
		for (size_t i = 0; i < bt.n_msgs; i++)
			impc_message_clear(&msgs[i]);
		return e;
	}
	case 8:
		return impc_voucher_describe(c, *port ? *port : 1, buf, sizeof(buf));
	case 9:
		return impc_voucher_drop_external(c, *port ? *port : 1, 1, &remaining);
	case 10:
		return impc_legacy_complete(c);
	case 11: {
		struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		pid_t holder;
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		e = impc_filelock_wait(c, fd, &l, &id, &holder);
		close(fd);
		return e;
	}
	case 12:
		return impc_agent_attach(c, "unix:path=/fuzz", &bus);
	case 13:
		e = impc_send_receive(c, NULL, 0, *port ? *port : 1, 0, 0, &msg);
		impc_message_clear(&msg);
		return e;
	case 14: {
		/* asynchronous: its reply is read by impc_process */
		struct pollfd p = { impc_fd(c), POLLIN, 0 };

		if ((e = impc_receive_async(c, *port ? *port : 1, 0, NULL)) < 0)
			return e;
		for (int i = 0; i < 4 && poll(&p, 1, 50) > 0; i++)
			if (impc_process(c) < 0)
				break;
		return 0;
	}
	default:
		return impc_graph(c, &text) == 0 ? (free(text), 0) : -1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t port = 0;
	size_t off = 0;
	impc *c;

	if (lfd < 0)
		start();
	n_steps = 0;
	while (off + 2 <= size && n_steps < MAX_STEPS) {
		struct step *s = &steps[n_steps++];

		s->sel = data[off];
		s->len = data[off + 1];
		off += 2;
		if (s->len > size - off)
			s->len = size - off;
		s->body = data + off;
		off += s->len;
	}
	if (impc_connect(path, 0, &c, NULL) < 0)
		return 0;
	impc_set_timeout(c, 2000);
	for (size_t i = 0; i < n_steps; i++) {
		int e = call(c, steps[i].sel, &port);

		drain(c);
		if (e == -EPROTO && impc_connected(c))
			abort(); /* a reply the library could not read left the connection open */
		if (e == -ETIMEDOUT)
			abort(); /* every request is answered at once */
		if (!impc_connected(c))
			break;
	}
	impc_close(c);
	return 0;
}

/* receive.c: blocking receives answered now, parked, woken, timed out,
 * waiting on a port (ASYNC), and BATCH's deferred wake -- against a real
 * broker whose peers are real connections of this process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "broker.h"
#include "config.h"
#include "driver.h"
#include "peer.h"
#include "port.h"
#include "receive.h"

struct rig {
	char dir[64];
	sd_event *ev;
	struct broker *b;
	int client[2];       /* our ends */
	struct peer *peer[2]; /* the daemon's */
	struct port *port;   /* owned by peer 0; peer 1 may send to it */
};

static uint8_t frame[IMPP_MAX_FRAME];

/* The next frame on our end i: its header and body (length in *len), or
 * -EAGAIN when none is there. */
static int next_frame(struct rig *r, int i, struct impp_header *h, const uint8_t **body, size_t *len)
{
	ssize_t n = recv(r->client[i], frame, sizeof(frame), MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	assert_true((size_t)n >= sizeof(*h));
	memcpy(h, frame, sizeof(*h));
	*body = frame + sizeof(*h);
	*len = (size_t)n - sizeof(*h);
	return 0;
}

static void request(struct rig *r, int i, uint16_t type, uint32_t serial, const void *body, size_t len)
{
	uint8_t buf[512];
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)len };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	driver_frame(r->b, r->peer[i], buf, sizeof(h) + len, NULL, 0);
}

/* A SEND of "hi" from peer 1 to the port; its reply read and checked. */
static void send_hi(struct rig *r, uint32_t serial)
{
	uint8_t buf[sizeof(struct impp_req_send) + 2];
	struct impp_req_send q = { .port = r->port->id, .len = 2 };
	struct impp_header h;
	const uint8_t *body;
	size_t len;
	int32_t st;

	memcpy(buf, &q, sizeof(q));
	memcpy(buf + sizeof(q), "hi", 2);
	request(r, 1, IMPP_REQ_SEND, serial, buf, sizeof(buf));
	assert_int_equal(next_frame(r, 1, &h, &body, &len), 0);
	assert_int_equal(h.serial, serial);
	memcpy(&st, body, sizeof(st));
	assert_int_equal(st, 0);
}

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	struct broker_config cfg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct impp_req_hello hello = { IMPP_VERSION, 0 };
	struct peer *c;
	int lfd, i = 0;

	assert_non_null(r);
	strcpy(r->dir, "/tmp/test-receive.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", r->dir);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	config_defaults(&cfg);
	assert_int_equal(sd_event_new(&r->ev), 0);
	assert_int_equal(broker_new(r->ev, &cfg, lfd, &r->b), 0);
	for (int k = 0; k < 2; k++) {
		r->client[k] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(r->client[k], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(peer_accept(r->b, lfd), 0);
	}
	TAILQ_FOREACH(c, &r->b->peer_list, link)
		r->peer[i++] = c;
	assert_int_equal(i, 2);
	for (int k = 0; k < 2; k++) {
		struct impp_header h;
		const uint8_t *body;
		size_t len;

		request(r, k, IMPP_REQ_HELLO, 1, &hello, sizeof(hello));
		assert_int_equal(next_frame(r, k, &h, &body, &len), 0);
		assert_int_equal(h.type, IMPP_REPLY(IMPP_REQ_HELLO));
		assert_non_null(r->peer[k]->task);
	}
	assert_int_equal(port_new(r->b, r->peer[0], true, &r->port), 0);
	assert_int_equal(right_grant(r->b, r->peer[1], r->port->id), 0);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;
	char path[96];

	for (int k = 0; k < 2; k++) {
		peer_free(r->b, r->peer[k]);
		close(r->client[k]);
	}
	broker_free(r->b);
	sd_event_unref(r->ev);
	snprintf(path, sizeof(path), "%s/sock", r->dir);
	unlink(path);
	rmdir(r->dir);
	free(r);
	return 0;
}

/* A RECEIVE reply on our end 0: status, and the data when status is 0. */
static void expect_receive(struct rig *r, uint16_t type, uint32_t serial, int status)
{
	struct impp_header h;
	struct impp_reply_receive rr;
	const uint8_t *body;
	size_t len;

	assert_int_equal(next_frame(r, 0, &h, &body, &len), 0);
	assert_int_equal(h.type, IMPP_REPLY(type));
	assert_int_equal(h.serial, serial);
	assert_true(len >= sizeof(int32_t));
	memcpy(&rr.status, body, sizeof(rr.status));
	assert_int_equal(rr.status, status);
	if (status == 0) {
		assert_int_equal(len, sizeof(rr) + 2);
		memcpy(&rr, body, sizeof(rr));
		assert_int_equal(rr.len, 2);
		assert_int_equal(rr.sender_pid, getpid());
		assert_memory_equal(body + sizeof(rr), "hi", 2);
	}
}

static void nothing_on(struct rig *r, int i)
{
	struct impp_header h;
	const uint8_t *body;
	size_t len;

	assert_int_equal(next_frame(r, i, &h, &body, &len), -EAGAIN);
}

static void test_now(void **state)
{
	struct rig *r = *state;

	/* nothing queued, no wait */
	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 7, r->port->id, 0, 0), -EAGAIN);
	/* not its port, bad flags: nothing answered, for the dispatcher */
	assert_int_equal(receive_start(r->b, r->peer[1], IMPP_REQ_RECEIVE, 7, r->port->id, 0, 0), -ENOENT);
	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 7, r->port->id, 0, 0x80), -EINVAL);
	nothing_on(r, 0);
	send_hi(r, 2);
	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 8, r->port->id, 0, 0), 0);
	expect_receive(r, IMPP_REQ_RECEIVE, 8, 0);
	assert_true(TAILQ_EMPTY(&r->port->queue));
}

static void test_parked(void **state)
{
	struct rig *r = *state;

	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 9, r->port->id, -1, 0), 0);
	assert_true(r->peer[0]->park.on);
	assert_true(r->peer[0]->reading_paused);
	nothing_on(r, 0);
	send_hi(r, 3); /* wakes it */
	assert_false(r->peer[0]->park.on);
	assert_false(r->peer[0]->reading_paused);
	expect_receive(r, IMPP_REQ_RECEIVE, 9, 0);
}

static void test_timeout(void **state)
{
	struct rig *r = *state;

	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 10, r->port->id, 20, 0), 0);
	assert_non_null(r->peer[0]->park.timer);
	for (int i = 0; i < 100 && r->peer[0]->park.on; i++)
		assert_true(sd_event_run(r->ev, 50000) >= 0);
	assert_false(r->peer[0]->park.on);
	assert_null(r->peer[0]->park.timer);
	expect_receive(r, IMPP_REQ_RECEIVE, 10, -ETIMEDOUT);
}

static void test_async(void **state)
{
	struct rig *r = *state;

	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 11, r->port->id, -1, IMPP_RECV_ASYNC), 0);
	assert_false(r->peer[0]->park.on); /* the peer is still served */
	assert_non_null(r->port->waiter);
	/* one receive waits on a port at a time */
	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 12, r->port->id, -1, 0), -EBUSY);
	send_hi(r, 4);
	assert_null(r->port->waiter);
	expect_receive(r, IMPP_REQ_RECEIVE, 11, 0);
	/* a waiter whose port goes is told */
	assert_int_equal(receive_start(r->b, r->peer[0], IMPP_REQ_RECEIVE, 13, r->port->id, -1, IMPP_RECV_ASYNC), 0);
	receive_fail_waiter(r->b, r->port, -ECANCELED);
	assert_null(r->port->waiter);
	expect_receive(r, IMPP_REQ_RECEIVE, 13, -ECANCELED);
}

/* A parked BATCH receive woken by sends made while deferring gets them
 * all in one reply, after receive_flush and not before. */
static void test_batch_deferred(void **state)
{
	struct rig *r = *state;
	struct impp_reply_batch h0 = { 0 }, hb;
	struct impp_header h;
	const uint8_t *body;
	uint8_t *pre = malloc(sizeof(h0));
	size_t len;

	assert_non_null(pre);
	memcpy(pre, &h0, sizeof(h0));
	receive_batch(r->b, r->peer[0], 14, pre, sizeof(h0), r->port->id, 4, 0, -1);
	assert_true(r->peer[0]->park.on);
	receive_defer(r->b);
	send_hi(r, 5);
	send_hi(r, 6);
	nothing_on(r, 0);
	assert_true(r->peer[0]->park.on);
	receive_flush(r->b);
	assert_false(r->peer[0]->park.on);
	assert_int_equal(next_frame(r, 0, &h, &body, &len), 0);
	assert_int_equal(h.type, IMPP_REPLY(IMPP_REQ_BATCH));
	assert_int_equal(h.serial, 14);
	memcpy(&hb, body, sizeof(hb));
	assert_int_equal(hb.recv_status, 0);
	assert_int_equal(hb.n_recv, 2);
	assert_int_equal(len, sizeof(hb) + 2 * (sizeof(struct impp_reply_receive) + 2));
	/* not its port: answered, the receive status says so */
	pre = malloc(sizeof(h0));
	assert_non_null(pre);
	memcpy(pre, &h0, sizeof(h0));
	receive_batch(r->b, r->peer[1], 15, pre, sizeof(h0), r->port->id, 4, 0, -1);
	assert_int_equal(next_frame(r, 1, &h, &body, &len), 0);
	memcpy(&hb, body, sizeof(hb));
	assert_int_equal(hb.recv_status, -ENOENT);
	assert_int_equal(hb.n_recv, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_deferred, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

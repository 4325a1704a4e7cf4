/*
 * Blocking receives (receive.h).
 *
 * A receive is answered by receive_first's message (its voucher handle
 * and reply right made for the receiver), one per RECEIVE reply or as
 * many as fit in a BATCH reply.  A parked receive keeps its peer from
 * being read (peer_update_io looks at park.on); an ASYNC one lives on its
 * port.  Each has at most one timer, which ends it with -ETIMEDOUT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "broker.h"
#include "peer.h"
#include "port.h"
#include "receive.h"

/* Receives the first message of p for its owner c: fills r and returns
 * the message, which the caller frees once its data is copied out; NULL
 * with *err set when nothing changed. */
static struct message *receive_first(struct broker *b, struct peer *c, struct port *p, uint32_t flags,
				     struct impp_reply_receive *r, int *err)
{
	struct message *m = TAILQ_FIRST(&p->queue);
	bool with_voucher = flags & IMPP_RECV_VOUCHER;
	imp_voucher *v = NULL;
	uint64_t handle = 0;
	int e;

	memset(r, 0, sizeof(*r));
	if (with_voucher && c->n_vouchers >= b->cfg.limits.vouchers) {
		*err = -EDQUOT;
		return NULL;
	}
	if ((e = imp_msg_receive(m->msg, with_voucher ? IMP_RECV_VOUCHER : 0, with_voucher ? &v : NULL)) < 0) {
		*err = e; /* nothing changed (out of memory) */
		return NULL;
	}
	port_dequeue(b, p);
	if (peer_voucher_store(c, v, &handle) < 0)
		imp_voucher_release(v); /* no handle to give: the boost goes */
	r->voucher = handle;
	if (m->reply_port && port_by_id(b, m->reply_port) && right_grant(b, c, m->reply_port) == 0)
		r->reply_port = m->reply_port;
	r->msg_id = m->id;
	r->sender_pid = m->sender_pid;
	r->len = m->len;
	r->n_fds = m->n_fds;
	return m;
}

static int deliver(struct broker *b, struct peer *c, struct port *p, uint16_t type, uint32_t serial,
		   uint32_t flags)
{
	struct impp_reply_receive r;
	struct message *m;
	int e = 0;

	if (!(m = receive_first(b, c, p, flags, &r, &e)))
		return e;
	peer_send_fds(c, IMPP_REPLY(type), serial, &r, sizeof(r), m->data, m->len, m->fds, m->n_fds);
	m->n_fds = 0; /* passed on */
	message_free(m);
	return 0;
}

/* Sends a BATCH reply: the statuses (pre, prefix bytes), then as many of
 * p's queued messages as are wanted and fit, files included (none when p
 * is NULL), with
 * recv_status when there is none.  Built in b->outbuf: a send made by one
 * batch may complete another peer's parked batch, so the statuses of a
 * batch being processed live elsewhere. */
static void batch_reply(struct broker *b, struct peer *c, uint32_t serial, const uint8_t *pre, size_t prefix,
			struct port *p, uint32_t max, uint32_t flags, int recv_status)
{
	struct impp_reply_batch h;
	size_t len = prefix, n_fds = 0;
	int fds[IMPP_MAX_FDS];

	memcpy(b->outbuf, pre, prefix);
	memcpy(&h, pre, sizeof(h));
	h.n_recv = 0;
	while (p && h.n_recv < max && !TAILQ_EMPTY(&p->queue)) {
		struct message *m = TAILQ_FIRST(&p->queue);
		struct impp_reply_receive r;
		int e = 0;

		if (len + sizeof(r) + m->len > IMPP_MAX_BATCH - sizeof(struct impp_header) ||
		    n_fds + m->n_fds > IMPP_MAX_FDS)
			break; /* for the next batch */
		if (!(m = receive_first(b, c, p, flags, &r, &e))) {
			if (h.n_recv == 0)
				recv_status = e;
			break;
		}
		memcpy(b->outbuf + len, &r, sizeof(r));
		if (m->len)
			memcpy(b->outbuf + len + sizeof(r), m->data, m->len);
		len += sizeof(r) + m->len;
		h.n_recv++;
		if (m->n_fds)
			memcpy(fds + n_fds, m->fds, m->n_fds * sizeof(int));
		n_fds += m->n_fds;
		m->n_fds = 0; /* passed on */
		message_free(m);
	}
	h.recv_status = h.n_recv ? 0 : recv_status;
	memcpy(b->outbuf, &h, sizeof(h));
	peer_send_fds(c, IMPP_REPLY(IMPP_REQ_BATCH), serial, b->outbuf, len, NULL, 0, fds, n_fds);
}

static void unpark(struct peer *c)
{
	c->park.on = false;
	c->park.input = false;
	free(c->park.prefix);
	c->park.prefix = NULL;
	if (c->park.timer) {
		sd_event_source_unref(c->park.timer);
		c->park.timer = NULL;
	}
	peer_update_io(c);
}

/* Answers the receive k stands for with p's first messages. */
static void park_serve(struct broker *b, struct peer *c, struct port *p, const struct park *k)
{
	if (k->type == IMPP_REQ_BATCH) {
		batch_reply(b, c, k->serial, k->prefix, k->prefix_len, p, k->max, k->flags, 0);
	} else {
		int e = deliver(b, c, p, k->type, k->serial, k->flags);

		if (e < 0)
			peer_reply_status(c, k->type, k->serial, e);
	}
}

/* Answers the receive k stands for with status and no message. */
static void park_fail(struct peer *c, const struct park *k, int status)
{
	if (k->type == IMPP_REQ_BATCH)
		batch_reply(c->b, c, k->serial, k->prefix, k->prefix_len, NULL, 0, 0, status);
	else
		peer_reply_status(c, k->type, k->serial, status);
}

/* Takes p's ASYNC receive off it (the caller has answered it). */
static void waiter_free(struct port *p)
{
	struct park *k = p->waiter;

	p->waiter = NULL;
	if (k->timer)
		sd_event_source_unref(k->timer);
	free(k->prefix);
	free(k);
}

static void wake(struct broker *b, struct port *p)
{
	struct peer *c = p->owner;
	struct park *k = &c->park;

	if (TAILQ_EMPTY(&p->queue))
		return;
	if (p->waiter) {
		park_serve(b, c, p, p->waiter);
		waiter_free(p);
		return;
	}
	if (!k->on || k->port != p->id)
		return;
	park_serve(b, c, p, k);
	unpark(c);
}

void receive_fail_parked(struct peer *c, int status)
{
	park_fail(c, &c->park, status);
	unpark(c);
}

void receive_fail_waiter(struct broker *b, struct port *p, int status)
{
	(void)b;
	if (status)
		park_fail(p->owner, p->waiter, status);
	waiter_free(p);
}

static int on_waiter_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct port *p = userdata;

	(void)s;
	(void)usec;
	receive_fail_waiter(p->owner->b, p, -ETIMEDOUT);
	return 0;
}

static int on_receive_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	receive_fail_parked(userdata, -ETIMEDOUT);
	return 0;
}

/* Fills k for the receive rq asks on p, with its timer calling
 * on_timeout(userdata) when timeout_ms > 0. */
static void park_set(struct broker *b, struct park *k, uint16_t type, uint32_t serial, struct port *p, int32_t timeout_ms,
		     uint32_t flags, sd_event_time_handler_t on_timeout, void *userdata)
{
	b->waiting = true;
	k->on = true;
	k->type = type;
	k->serial = serial;
	k->port = p->id;
	k->flags = flags;
	if (timeout_ms > 0) {
		uint64_t now;

		sd_event_now(b->ev, CLOCK_MONOTONIC, &now);
		sd_event_add_time(b->ev, &k->timer, CLOCK_MONOTONIC, now + (uint64_t)timeout_ms * 1000, 1000,
				  on_timeout, userdata);
	}
}

/* No more requests are read from c until its receive on p is served. */
static void park(struct broker *b, struct peer *c, uint16_t type, uint32_t serial, struct port *p, int32_t timeout_ms,
		 uint32_t flags)
{
	park_set(b, &c->park, type, serial, p, timeout_ms, flags, on_receive_timeout, c);
	peer_update_io(c);
}

/* An ASYNC receive waits on p; c is served meanwhile.  A BATCH's prefix
 * (its statuses so far, max messages wanted) is the waiter's from here. */
static int wait_on_port(struct broker *b, uint16_t type, uint32_t serial, struct port *p, int32_t timeout_ms, uint32_t flags,
			uint8_t *prefix, size_t prefix_len, uint32_t max)
{
	struct park *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	park_set(b, k, type, serial, p, timeout_ms, flags, on_waiter_timeout, p);
	k->prefix = prefix;
	k->prefix_len = prefix_len;
	k->max = max;
	p->waiter = k;
	return 0;
}

int receive_start(struct broker *b, struct peer *c, uint16_t type, uint32_t serial, uint64_t port,
		      int32_t timeout_ms, uint32_t flags)
{
	struct port *p;

	if (flags & ~(IMPP_RECV_VOUCHER | IMPP_RECV_ASYNC))
		return -EINVAL;
	if (!(p = port_owned(b, c, port)))
		return -ENOENT;
	if (!TAILQ_EMPTY(&p->queue))
		return deliver(b, c, p, type, serial, flags);
	if (timeout_ms == 0)
		return -EAGAIN;
	if (p->waiter)
		return -EBUSY; /* one receive waits on a port at a time */
	if (flags & IMPP_RECV_ASYNC)
		return wait_on_port(b, type, serial, p, timeout_ms, flags, NULL, 0, 1);
	park(b, c, type, serial, p, timeout_ms, flags);
	return 0;
}

void receive_batch(struct broker *b, struct peer *c, uint32_t serial, uint8_t *statuses, size_t len,
		   uint64_t port, uint32_t max, uint32_t flags, int32_t timeout_ms)
{
	struct port *p = NULL;
	int recv_status = -EAGAIN;

	if (!port)
		recv_status = 0;
	else if (flags & ~(IMPP_RECV_VOUCHER | IMPP_RECV_ASYNC))
		recv_status = -EINVAL;
	else if (!(p = port_owned(b, c, port)))
		recv_status = -ENOENT;
	else if (TAILQ_EMPTY(&p->queue) && timeout_ms != 0 && p->waiter)
		recv_status = -EBUSY;
	else if (TAILQ_EMPTY(&p->queue) && timeout_ms != 0 && (flags & IMPP_RECV_ASYNC)) {
		/* wait on the port, keeping the statuses for the reply */
		if ((recv_status = wait_on_port(b, IMPP_REQ_BATCH, serial, p, timeout_ms, flags, statuses, len, max)) == 0)
			return;
	} else if (TAILQ_EMPTY(&p->queue) && timeout_ms != 0) {
		/* park, keeping the statuses for the reply */
		c->park.prefix = statuses;
		c->park.prefix_len = len;
		c->park.max = max;
		park(b, c, IMPP_REQ_BATCH, serial, p, timeout_ms, flags);
		return;
	}
	batch_reply(b, c, serial, statuses, len, p, max, flags, recv_status);
	free(statuses);
}

void receive_queued(struct broker *b, struct port *p)
{
	if (!b->deferring)
		wake(b, p);
	else if (!b->n_deferred || b->deferred[b->n_deferred - 1] != p->id)
		b->deferred[b->n_deferred++] = p->id; /* at most one per send */
}

void receive_defer(struct broker *b)
{
	b->deferring = true;
	b->n_deferred = 0;
}

void receive_flush(struct broker *b)
{
	b->deferring = false;
	for (size_t i = 0; i < b->n_deferred; i++) {
		struct port *p = port_by_id(b, b->deferred[i]);

		if (p)
			wake(b, p);
	}
	b->n_deferred = 0;
}

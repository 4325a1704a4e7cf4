/*
 * The broker.
 *
 * Every connected client is a task of one importance domain.  Ports are
 * receive rights owned by a client; a client may send to a port only when
 * it holds a send right for it (from a name lookup, from owning it, or
 * handed to it as the reply port of a message it received).  Messages keep
 * their data here and their importance in the engine; the engine's policy
 * callback is where a boost becomes real, through the policy backend.
 *
 * Donor status is never what a client says: it comes from the daemon's
 * policy (peer uid, executable, cgroup, all read from the kernel) and from
 * privileged DONOR requests.  Every task is a live donor, so a DONOR
 * request is a live-donor change that propagates.
 *
 * Nothing a client sends can stop the daemon: frames are checked before
 * they are read, quotas bound what one client can hold, replies that a
 * client does not read stop us reading its requests (back-pressure), and a
 * client that keeps sending garbage is disconnected.  A client that goes
 * away, however it goes, exits its task: its ports die, the messages queued
 * on them are destroyed (their senders told), and its vouchers go.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "importance/importance.h"
#include "importance/protocol.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

struct bclient;
struct bport;

struct bmsg {
	uint64_t id;
	imp_msg *msg;
	struct bport *port;
	uint64_t sender_id; /* client id; the client may be gone */
	int sender_pid;
	uint64_t reply_port;
	uint32_t len;
	uint8_t *data;
	TAILQ_ENTRY(bmsg) link;
};

struct bport {
	uint64_t id;
	imp_port *port;
	struct bclient *owner;
	TAILQ_HEAD(, bmsg) queue;
	size_t queued;
	char *name;
	TAILQ_ENTRY(bport) owner_link;
};

struct bvoucher {
	uint64_t handle;
	imp_voucher *voucher;
};

struct outframe {
	TAILQ_ENTRY(outframe) link;
	size_t len;
	uint8_t data[];
};

struct bclient {
	uint64_t id; /* first: the key of broker.clients_by_id */
	struct broker *b;
	int fd;
	sd_event_source *io;
	pid_t pid;
	uid_t uid;
	bool hello, monitor, receiver, denap, donor, dead;
	imp_task *task;
	struct backend_target target;
	void *send_rights;  /* tsearch of uint64_t* */
	void *vouchers;     /* tsearch of struct bvoucher* */
	unsigned n_vouchers, n_ports, n_inflight, n_names, errors;
	size_t inflight_bytes;
	uint64_t next_voucher;
	TAILQ_HEAD(, bport) ports;
	/* a blocking receive waiting for a message */
	bool parked;
	uint16_t parked_type; /* RECEIVE, SEND_RECEIVE or BATCH */
	uint32_t parked_serial;
	uint64_t parked_port;
	uint32_t parked_flags;
	bool parked_input;           /* it sent more while parked */
	uint32_t parked_max;         /* BATCH: messages wanted */
	uint8_t *parked_prefix;      /* BATCH: the reply's statuses so far */
	size_t parked_prefix_len;
	sd_event_source *parked_timer;
	/* replies the client has not read yet */
	TAILQ_HEAD(, outframe) out;
	size_t out_bytes;
	bool reading_paused;
	uint32_t io_events; /* as last given to sd-event */
	TAILQ_ENTRY(bclient) link;
};

struct broker {
	sd_event *ev;
	struct broker_config cfg;
	imp_domain *dom;
	int listen_fd;
	sd_event_source *listen_src, *timer_src;
	void *ports;  /* tsearch of struct bport* by id */
	void *names;  /* tsearch of struct bport* by name */
	void *clients_by_id; /* tsearch of struct bclient* by id */
	TAILQ_HEAD(, bclient) clients;
	unsigned n_clients;
	uint64_t next_client, next_port, next_msg;
	uint64_t boosts, unboosts, requests, protocol_errors;
	uint8_t *inbuf;  /* one request frame (IMPP_MAX_BATCH + 1) */
	uint8_t *outbuf; /* one BATCH reply body being built */
	/* While a BATCH sends, receivers are woken only once it is done, so
	 * that one parked on a port gets the batch's messages together rather
	 * than the first alone: the ids of the ports to wake. */
	bool deferring;
	size_t n_deferred;
	uint64_t deferred[IMPP_MAX_BATCH_ITEMS];
};

/* ------------------------------------------------------------------ */
/* small maps                                                           */
/* ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_port_name(const void *a, const void *b)
{
	return strcmp(((const struct bport *)a)->name, ((const struct bport *)b)->name);
}

static struct bport *port_by_id(struct broker *b, uint64_t id)
{
	void *r = tfind(&id, &b->ports, cmp_u64); /* bport starts with its id */

	return r ? *(struct bport **)r : NULL;
}

static bool has_send_right(struct bclient *c, uint64_t port)
{
	return tfind(&port, &c->send_rights, cmp_u64) != NULL;
}

static int grant_send_right(struct bclient *c, uint64_t port)
{
	uint64_t *key;

	if (has_send_right(c, port))
		return 0;
	key = malloc(sizeof(*key));
	if (!key)
		return -ENOMEM;
	*key = port;
	if (!tsearch(key, &c->send_rights, cmp_u64)) {
		free(key);
		return -ENOMEM;
	}
	return 0;
}

static struct bvoucher *voucher_by_handle(struct bclient *c, uint64_t h)
{
	void *r = tfind(&h, &c->vouchers, cmp_u64);

	return r ? *(struct bvoucher **)r : NULL;
}

/* ------------------------------------------------------------------ */
/* output                                                               */
/* ------------------------------------------------------------------ */

static void client_update_io(struct bclient *c);

static void client_send_frame(struct bclient *c, uint16_t type, uint32_t serial,
			      const void *body, size_t len, const void *extra, size_t extra_len)
{
	struct outframe *f;
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)(len + extra_len) };
	size_t total = sizeof(h) + len + extra_len;

	if (c->dead)
		return;
	if (TAILQ_EMPTY(&c->out)) {
		/* the usual case: straight to the socket, no copy */
		struct iovec iov[3] = { { &h, sizeof(h) }, { (void *)body, len }, { (void *)extra, extra_len } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
		ssize_t n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == (ssize_t)total)
			return;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			c->dead = true;
			return;
		}
	}
	f = malloc(sizeof(*f) + total);
	if (!f) {
		c->dead = true; /* cannot answer: better gone than silent */
		return;
	}
	f->len = total;
	memcpy(f->data, &h, sizeof(h));
	if (len)
		memcpy(f->data + sizeof(h), body, len);
	if (extra_len)
		memcpy(f->data + sizeof(h) + len, extra, extra_len);
	TAILQ_INSERT_TAIL(&c->out, f, link);
	c->out_bytes += f->len;
	/* Back-pressure stops us reading its requests, but events (monitors,
	 * destroyed messages) still come: a client that reads nothing at all
	 * is let go rather than allowed to grow our memory. */
	if (c->out_bytes > 4 * c->b->cfg.max_out_bytes) {
		c->dead = true;
		return;
	}
	client_update_io(c);
}

static void reply_status(struct bclient *c, uint16_t req, uint32_t serial, int status)
{
	struct impp_reply_status r = { status };

	client_send_frame(c, IMPP_REPLY(req), serial, &r, sizeof(r), NULL, 0);
}

static void flush_out(struct bclient *c)
{
	while (!TAILQ_EMPTY(&c->out)) {
		struct outframe *f = TAILQ_FIRST(&c->out);
		ssize_t n = send(c->fd, f->data, f->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			break;
		}
		TAILQ_REMOVE(&c->out, f, link);
		c->out_bytes -= f->len;
		free(f);
	}
	client_update_io(c);
}

/* ------------------------------------------------------------------ */
/* timers                                                               */
/* ------------------------------------------------------------------ */

static int on_engine_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* Keeps the sd-event timer on the engine's next delayed-drop deadline.
 * The engine's default clock is CLOCK_MONOTONIC, like this source. */
static void rearm_engine_timer(struct broker *b)
{
	uint64_t deadline;

	if (imp_domain_next_deadline(b->dom, &deadline) != 1) {
		if (b->timer_src)
			sd_event_source_set_enabled(b->timer_src, SD_EVENT_OFF);
		return;
	}
	if (!b->timer_src) {
		if (sd_event_add_time(b->ev, &b->timer_src, CLOCK_MONOTONIC, deadline / 1000 + 1,
				      1000, on_engine_timer, b) < 0)
			return;
	} else {
		sd_event_source_set_time(b->timer_src, deadline / 1000 + 1);
	}
	sd_event_source_set_enabled(b->timer_src, SD_EVENT_ONESHOT);
}

static int on_engine_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct broker *b = userdata;

	(void)s;
	(void)usec;
	imp_domain_run_timers(b->dom);
	rearm_engine_timer(b);
	return 0;
}

/* ------------------------------------------------------------------ */
/* engine callbacks                                                     */
/* ------------------------------------------------------------------ */

static void broadcast_policy(struct broker *b, const struct impp_evt_policy *ev)
{
	struct bclient *c;

	TAILQ_FOREACH(c, &b->clients, link)
		if (c->monitor)
			client_send_frame(c, IMPP_EVT_POLICY, 0, ev, sizeof(*ev), NULL, 0);
}

static void on_policy(const imp_policy_event *ev, void *ctx)
{
	struct broker *b = ctx;
	struct bclient *c = imp_task_get_userdata(ev->task);
	struct impp_evt_policy out = { 0 };

	if (!c)
		return;
	if (ev->boosted)
		b->boosts++;
	else
		b->unboosts++;
	out.pid = c->pid;
	out.boosted = ev->boosted;
	out.time_ns = ev->time_ns;
	{
		unsigned value = 0;

		out.applied = backend_apply(&b->cfg.backend, &c->target, ev->boosted, &value);
		out.value = value;
	}
	if (b->cfg.verbose || out.applied < 0)
		fprintf(stderr, "importanced: pid %d %s: %s (%s %u)\n", c->pid,
			ev->boosted ? "boost" : "unboost",
			out.applied < 0 ? strerror(-out.applied) : "applied",
			backend_name(c->target.kind), out.value);
	broadcast_policy(b, &out);
}

/* ------------------------------------------------------------------ */
/* ports and messages                                                   */
/* ------------------------------------------------------------------ */

static void free_msg(struct broker *b, struct bmsg *m)
{
	(void)b;
	imp_msg_unref(m->msg);
	free(m->data);
	free(m);
}

/* A message's sender, if still connected: looked up on every delivered
 * or destroyed message, so by id in a tree rather than by scanning. */
static struct bclient *client_by_id(struct broker *b, uint64_t id)
{
	void *r = tfind(&id, &b->clients_by_id, cmp_u64); /* bclient starts with its id */
	struct bclient *c = r ? *(struct bclient **)r : NULL;

	return c && !c->dead ? c : NULL;
}

/* The message will never be received: tell its sender. */
static void msg_destroyed(struct broker *b, struct bmsg *m)
{
	struct bclient *sender = client_by_id(b, m->sender_id);
	struct impp_evt_msg_destroyed ev = { m->id, m->port->id };

	if (sender) {
		sender->n_inflight--;
		sender->inflight_bytes -= m->len;
		client_send_frame(sender, IMPP_EVT_MSG_DESTROYED, 0, &ev, sizeof(ev), NULL, 0);
	}
}

/* Destroys a port we own (its owner left or asked). */
static void port_destroy(struct broker *b, struct bport *p, bool engine_too)
{
	struct bmsg *m;

	while ((m = TAILQ_FIRST(&p->queue))) {
		TAILQ_REMOVE(&p->queue, m, link);
		msg_destroyed(b, m);
		free_msg(b, m);
	}
	if (engine_too)
		imp_port_destroy(p->port); /* the engine drops the boosts */
	if (p->name) {
		tdelete(p, &b->names, cmp_port_name);
		p->owner->n_names--;
		free(p->name);
	}
	tdelete(&p->id, &b->ports, cmp_u64);
	TAILQ_REMOVE(&p->owner->ports, p, owner_link);
	p->owner->n_ports--;
	imp_port_unref(p->port);
	free(p);
}

/* The client gives a voucher handle back (its work is done). */
static int release_handle(struct bclient *c, uint64_t handle)
{
	struct bvoucher *bv = voucher_by_handle(c, handle);

	if (!bv)
		return -ENOENT;
	tdelete(bv, &c->vouchers, cmp_u64);
	c->n_vouchers--;
	imp_voucher_release(bv->voucher);
	free(bv);
	return 0;
}

static int voucher_store(struct bclient *c, imp_voucher *v, uint64_t *handle)
{
	struct bvoucher *bv;

	*handle = 0;
	if (!v)
		return 0;
	bv = malloc(sizeof(*bv));
	if (!bv)
		return -ENOMEM;
	bv->handle = ++c->next_voucher;
	bv->voucher = v;
	if (!tsearch(bv, &c->vouchers, cmp_u64)) {
		free(bv);
		return -ENOMEM;
	}
	c->n_vouchers++;
	*handle = bv->handle;
	return 0;
}

/* Receives the first message of p for its owner c: fills r and returns
 * the broker's message, which the caller frees once its data is copied
 * out; NULL with *err set when nothing changed. */
static struct bmsg *receive_first(struct broker *b, struct bclient *c, struct bport *p, uint32_t flags,
				  struct impp_reply_receive *r, int *err)
{
	struct bmsg *m = TAILQ_FIRST(&p->queue);
	imp_voucher *v = NULL;
	struct bclient *sender;
	uint64_t handle = 0;
	int e;

	memset(r, 0, sizeof(*r));
	if ((flags & IMPP_RECV_VOUCHER) && c->n_vouchers >= b->cfg.max_vouchers) {
		*err = -EDQUOT;
		return NULL;
	}
	e = imp_msg_receive(m->msg, (flags & IMPP_RECV_VOUCHER) ? IMP_RECV_VOUCHER : 0,
			    (flags & IMPP_RECV_VOUCHER) ? &v : NULL);
	if (e < 0) {
		*err = e; /* nothing changed (out of memory) */
		return NULL;
	}
	TAILQ_REMOVE(&p->queue, m, link);
	p->queued--;
	if (voucher_store(c, v, &handle) < 0)
		imp_voucher_release(v); /* no handle to give: the boost goes */
	r->voucher = handle;
	if (m->reply_port && port_by_id(b, m->reply_port) && grant_send_right(c, m->reply_port) == 0)
		r->reply_port = m->reply_port;
	r->msg_id = m->id;
	r->sender_pid = m->sender_pid;
	r->len = m->len;
	sender = client_by_id(b, m->sender_id);
	if (sender) {
		sender->n_inflight--;
		sender->inflight_bytes -= m->len;
	}
	return m;
}

/* Hands the first message of the port to its owner. */
static int deliver(struct broker *b, struct bclient *c, struct bport *p, uint16_t type,
		   uint32_t serial, uint32_t flags)
{
	struct impp_reply_receive r;
	struct bmsg *m;
	int e = 0;

	if (!(m = receive_first(b, c, p, flags, &r, &e)))
		return e;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), m->data, m->len);
	free_msg(b, m);
	return 0;
}

/* Sends a BATCH reply: the statuses (pre, prefix bytes), then as many of
 * p's queued messages as are wanted and fit (none when p is NULL), with
 * recv_status when there is none.  Built in b->outbuf: a send made by one
 * batch may complete another client's parked batch, so the statuses of a
 * batch being processed live elsewhere. */
static void batch_reply(struct broker *b, struct bclient *c, uint32_t serial, const uint8_t *pre,
			size_t prefix, struct bport *p, uint32_t max, uint32_t flags, int recv_status)
{
	struct impp_reply_batch h;
	size_t len = prefix;

	memcpy(b->outbuf, pre, prefix);
	memcpy(&h, pre, sizeof(h));
	h.n_recv = 0;
	while (p && h.n_recv < max && !TAILQ_EMPTY(&p->queue)) {
		struct bmsg *m = TAILQ_FIRST(&p->queue);
		struct impp_reply_receive r;
		int e = 0;

		if (len + sizeof(r) + m->len > IMPP_MAX_BATCH - sizeof(struct impp_header))
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
		free_msg(b, m);
	}
	h.recv_status = h.n_recv ? 0 : recv_status;
	memcpy(b->outbuf, &h, sizeof(h));
	client_send_frame(c, IMPP_REPLY(IMPP_REQ_BATCH), serial, b->outbuf, len, NULL, 0);
}

static void unpark(struct bclient *c)
{
	c->parked = false;
	c->parked_input = false;
	free(c->parked_prefix);
	c->parked_prefix = NULL;
	if (c->parked_timer) {
		sd_event_source_unref(c->parked_timer);
		c->parked_timer = NULL;
	}
	client_update_io(c);
}

/* A message arrived on p: a receive waiting on it completes. */
static void wake_receiver(struct broker *b, struct bport *p)
{
	struct bclient *c = p->owner;

	if (c->parked && c->parked_port == p->id && !TAILQ_EMPTY(&p->queue)) {
		if (c->parked_type == IMPP_REQ_BATCH) {
			batch_reply(b, c, c->parked_serial, c->parked_prefix, c->parked_prefix_len, p,
				    c->parked_max, c->parked_flags, 0);
		} else {
			int e = deliver(b, c, p, c->parked_type, c->parked_serial, c->parked_flags);

			if (e < 0)
				reply_status(c, c->parked_type, c->parked_serial, e);
		}
		unpark(c);
	}
}

/* A parked receive ends without a message: answered with status in the
 * form of the request that parked. */
static void fail_parked(struct bclient *c, int status)
{
	if (c->parked_type == IMPP_REQ_BATCH)
		batch_reply(c->b, c, c->parked_serial, c->parked_prefix, c->parked_prefix_len, NULL, 0, 0,
			    status);
	else
		reply_status(c, c->parked_type, c->parked_serial, status);
	unpark(c);
}

static int on_receive_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	fail_parked(userdata, -ETIMEDOUT);
	return 0;
}

/* ------------------------------------------------------------------ */
/* clients                                                              */
/* ------------------------------------------------------------------ */

static bool matches_policy(struct broker *b, struct bclient *c)
{
	char path[64], exe[PATH_MAX], cg[4096];
	ssize_t n;
	size_t i;
	FILE *f;

	for (i = 0; i < b->cfg.n_donor_uids; i++)
		if (b->cfg.donor_uids[i] == c->uid)
			return true;
	if (b->cfg.n_donor_exes) {
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)c->pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			for (i = 0; i < b->cfg.n_donor_exes; i++)
				if (!strcmp(exe, b->cfg.donor_exes[i]))
					return true;
		}
	}
	if (b->cfg.n_donor_cgroups) {
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)c->pid);
		f = fopen(path, "re");
		while (f && fgets(cg, sizeof(cg), f)) {
			if (strncmp(cg, "0::", 3))
				continue;
			cg[strcspn(cg, "\n")] = '\0';
			for (i = 0; i < b->cfg.n_donor_cgroups; i++)
				if (!strncmp(cg + 3, b->cfg.donor_cgroups[i], strlen(b->cfg.donor_cgroups[i])))
					return true;
		}
		if (f)
			fclose(f);
	}
	return false;
}

static void free_voucher_node(void *p)
{
	struct bvoucher *bv = p;

	imp_voucher_release(bv->voucher);
	free(bv);
}

static void client_free(struct broker *b, struct bclient *c)
{
	struct outframe *f;

	/* its task exits: ports die with their queued messages */
	while (!TAILQ_EMPTY(&c->ports))
		port_destroy(b, TAILQ_FIRST(&c->ports), false);
	if (c->task) {
		imp_task_exit(c->task);
		imp_task_set_userdata(c->task, NULL);
	}
	tdestroy(c->vouchers, free_voucher_node);
	tdestroy(c->send_rights, free);
	if (c->task)
		imp_task_unref(c->task);
	backend_detach(&b->cfg.backend, &c->target);
	if (c->target.pidfd >= 0)
		close(c->target.pidfd);
	if (c->parked_timer)
		sd_event_source_unref(c->parked_timer);
	free(c->parked_prefix);
	sd_event_source_unref(c->io);
	close(c->fd);
	while ((f = TAILQ_FIRST(&c->out))) {
		TAILQ_REMOVE(&c->out, f, link);
		free(f);
	}
	tdelete(&c->id, &b->clients_by_id, cmp_u64);
	TAILQ_REMOVE(&b->clients, c, link);
	b->n_clients--;
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: client pid %d gone\n", (int)c->pid);
	free(c);
	rearm_engine_timer(b);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void client_update_io(struct bclient *c)
{
	uint32_t events = 0;

	if (!c->io)
		return;
	c->reading_paused = c->parked || c->out_bytes > c->b->cfg.max_out_bytes;
	/* A parked client waits in its call and sends nothing, so its EPOLLIN
	 * is left on: turning it off and on again was two epoll_ctl() calls
	 * per round trip of a server.  If it sends anyway, on_client_io()
	 * notices (parked_input) and it is turned off then. */
	if (!c->reading_paused || (c->parked && !c->parked_input && c->out_bytes <= c->b->cfg.max_out_bytes))
		events |= EPOLLIN;
	if (!TAILQ_EMPTY(&c->out))
		events |= EPOLLOUT;
	if (events != c->io_events && sd_event_source_set_io_events(c->io, events) >= 0)
		c->io_events = events;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct broker *b = userdata;
	struct bclient *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int cfd, pidfd = -1;

	(void)s;
	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0;
	{
		/* A datagram larger than the send buffer cannot be sent at all,
		 * and the default (net.core.wmem_default, 208 KiB here) is below
		 * the largest frame we send, a 1 MiB text reply.  The kernel
		 * doubles the value asked for; past net.core.wmem_max only
		 * SO_SNDBUFFORCE (root) gets it. */
		int size = (int)IMPP_MAX_FRAME;

		if (setsockopt(cfd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	/* who it is, from the kernel */
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(cfd);
		return 0;
	}
	len = sizeof(pidfd);
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		pidfd = -1;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		if (pidfd >= 0)
			close(pidfd);
		return 0;
	}
	c->b = b;
	c->id = ++b->next_client;
	c->fd = cfd;
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->target.pid = cred.pid;
	c->target.pidfd = pidfd;
	TAILQ_INIT(&c->ports);
	TAILQ_INIT(&c->out);
	if (!tsearch(c, &b->clients_by_id, cmp_u64) ||
	    sd_event_add_io(b->ev, &c->io, cfd, EPOLLIN, on_client_io, c) < 0) {
		tdelete(&c->id, &b->clients_by_id, cmp_u64);
		close(cfd);
		if (pidfd >= 0)
			close(pidfd);
		free(c);
		return 0;
	}
	c->io_events = EPOLLIN;
	TAILQ_INSERT_TAIL(&b->clients, c, link);
	b->n_clients++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* requests                                                             */
/* ------------------------------------------------------------------ */

#define NEED(size)                                                           \
	do {                                                                 \
		if (len < (size)) {                                          \
			reply_status(c, type, serial, -EBADMSG);             \
			return;                                              \
		}                                                            \
	} while (0)

static void req_hello(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		      const uint8_t *body, uint32_t len)
{
	struct impp_req_hello q;
	struct impp_reply_hello r = { 0 };
	unsigned flags;
	int e;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (c->hello) {
		reply_status(c, type, serial, -EALREADY);
		return;
	}
	if (q.version != IMPP_VERSION) {
		reply_status(c, type, serial, -EPROTONOSUPPORT);
		return;
	}
	if ((q.flags & ~7u) || ((q.flags & IMPP_HELLO_RECEIVER) && (q.flags & IMPP_HELLO_DENAP_RECEIVER))) {
		reply_status(c, type, serial, -EINVAL);
		return;
	}
	c->monitor = q.flags & IMPP_HELLO_MONITOR;
	if (!c->monitor) {
		c->receiver = q.flags & IMPP_HELLO_RECEIVER;
		c->denap = q.flags & IMPP_HELLO_DENAP_RECEIVER;
		c->donor = matches_policy(b, c);
		flags = IMP_TASK_LIVE_DONOR | (c->donor ? IMP_TASK_DONOR : 0) |
			(c->receiver ? IMP_TASK_RECEIVER : 0) | (c->denap ? IMP_TASK_DENAP_RECEIVER : 0);
		if ((e = imp_task_create(b->dom, c->pid, flags, &c->task)) < 0) {
			reply_status(c, type, serial, e);
			return;
		}
		imp_task_set_userdata(c->task, c);
		if (c->receiver || c->denap)
			backend_attach(&b->cfg.backend, &c->target);
		else
			c->target.kind = BACKEND_NONE;
	}
	c->hello = true;
	r.version = IMPP_VERSION;
	r.pid = c->pid;
	r.donor = c->donor;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: hello pid %d uid %u%s%s%s%s\n", (int)c->pid,
			(unsigned)c->uid, c->receiver ? " receiver" : "", c->denap ? " denap" : "",
			c->donor ? " donor" : "", c->monitor ? " monitor" : "");
}

static void req_port_allocate(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			      const uint8_t *body, uint32_t len)
{
	struct impp_req_port_allocate q;
	struct impp_reply_port r = { 0 };
	struct bport *p;
	int e;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (c->n_ports >= b->cfg.max_ports) {
		reply_status(c, type, serial, -EDQUOT);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		reply_status(c, type, serial, -ENOMEM);
		return;
	}
	if ((e = imp_port_create(c->task, !(q.flags & IMPP_PORT_NO_DONATION), &p->port)) < 0) {
		free(p);
		reply_status(c, type, serial, e);
		return;
	}
	p->id = ++b->next_port;
	p->owner = c;
	TAILQ_INIT(&p->queue);
	if (!tsearch(p, &b->ports, cmp_u64) || grant_send_right(c, p->id) < 0) {
		tdelete(p, &b->ports, cmp_u64);
		imp_port_destroy(p->port);
		imp_port_unref(p->port);
		free(p);
		reply_status(c, type, serial, -ENOMEM);
		return;
	}
	TAILQ_INSERT_TAIL(&c->ports, p, owner_link);
	c->n_ports++;
	r.port = p->id;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

static struct bport *owned_port(struct broker *b, struct bclient *c, uint64_t id)
{
	struct bport *p = port_by_id(b, id);

	return p && p->owner == c ? p : NULL;
}

static void req_port_destroy(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			     const uint8_t *body, uint32_t len)
{
	struct impp_req_handle q;
	struct bport *p;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (!(p = owned_port(b, c, q.handle))) {
		reply_status(c, type, serial, -ENOENT);
		return;
	}
	/* (cannot happen today: a parked client's requests are not read) */
	if (c->parked && c->parked_port == p->id)
		fail_parked(c, -EPIPE);
	port_destroy(b, p, true);
	reply_status(c, type, serial, 0);
}

static int parse_name(const uint8_t *body, uint32_t len, struct impp_req_name *q, char *name)
{
	if (len < sizeof(*q))
		return -EBADMSG;
	memcpy(q, body, sizeof(*q));
	if (!q->len || q->len > IMPP_MAX_NAME || len != sizeof(*q) + q->len)
		return -EBADMSG;
	memcpy(name, body + sizeof(*q), q->len);
	name[q->len] = '\0';
	if (strlen(name) != q->len)
		return -EBADMSG;
	return 0;
}

static void req_name_register(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			      const uint8_t *body, uint32_t len)
{
	struct impp_req_name q;
	char name[IMPP_MAX_NAME + 1];
	struct bport key, *p;
	int e;

	if ((e = parse_name(body, len, &q, name)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	if (!(p = owned_port(b, c, q.port))) {
		reply_status(c, type, serial, -ENOENT);
		return;
	}
	key.name = name;
	if (p->name || tfind(&key, &b->names, cmp_port_name)) {
		reply_status(c, type, serial, -EEXIST);
		return;
	}
	if (c->n_names >= b->cfg.max_names) {
		reply_status(c, type, serial, -EDQUOT);
		return;
	}
	if (!(p->name = strdup(name)) || !tsearch(p, &b->names, cmp_port_name)) {
		free(p->name);
		p->name = NULL;
		reply_status(c, type, serial, -ENOMEM);
		return;
	}
	c->n_names++;
	reply_status(c, type, serial, 0);
}

static void req_name_lookup(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			    const uint8_t *body, uint32_t len)
{
	struct impp_req_name q;
	struct impp_reply_port r = { 0 };
	char name[IMPP_MAX_NAME + 1];
	struct bport key;
	void *found;
	int e;

	if ((e = parse_name(body, len, &q, name)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	key.name = name;
	found = tfind(&key, &b->names, cmp_port_name);
	if (!found) {
		reply_status(c, type, serial, -ENOENT);
		return;
	}
	r.port = (*(struct bport **)found)->id;
	if ((e = grant_send_right(c, r.port)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

/* The send half of SEND and SEND_RECEIVE: 0 or -errno, nothing changed
 * on error.  The message is queued and a waiting receiver woken. */
static int do_send(struct broker *b, struct bclient *c, uint64_t port, uint64_t voucher,
		   uint64_t reply_port, uint32_t options, const uint8_t *data, uint32_t len,
		   uint64_t *msg_id)
{
	struct bvoucher *bv = NULL;
	struct bport *p;
	struct bmsg *m;
	int e;

	if (len > IMPP_MAX_PAYLOAD)
		return -EMSGSIZE;
	/* no static boosts from clients: that would make anyone a donor */
	if (options & ~IMPP_SEND_NOIMPORTANCE)
		return -EPERM;
	if (!has_send_right(c, port))
		return -EACCES;
	if (!(p = port_by_id(b, port)))
		return -EPIPE; /* the receiver is gone */
	if (voucher && !(bv = voucher_by_handle(c, voucher)))
		return -ENOENT;
	if (reply_port && !has_send_right(c, reply_port))
		return -EACCES;
	if (c->n_inflight >= b->cfg.max_inflight || c->inflight_bytes + len > b->cfg.max_inflight_bytes)
		return -EDQUOT;
	m = calloc(1, sizeof(*m));
	if (!m || (len && !(m->data = malloc(len)))) {
		free(m);
		return -ENOMEM;
	}
	if (len)
		memcpy(m->data, data, len);
	m->len = len;
	if ((e = imp_msg_send(c->task, p->port, bv ? bv->voucher : NULL,
			      (options & IMPP_SEND_NOIMPORTANCE) ? IMP_SEND_NOIMPORTANCE : 0, &m->msg)) < 0) {
		free(m->data);
		free(m);
		return e;
	}
	m->id = ++b->next_msg;
	m->port = p;
	m->sender_id = c->id;
	m->sender_pid = c->pid;
	m->reply_port = reply_port;
	TAILQ_INSERT_TAIL(&p->queue, m, link);
	p->queued++;
	c->n_inflight++;
	c->inflight_bytes += len;
	*msg_id = m->id;
	if (!b->deferring)
		wake_receiver(b, p);
	else if (!b->n_deferred || b->deferred[b->n_deferred - 1] != p->id)
		b->deferred[b->n_deferred++] = p->id; /* at most one per send */
	return 0;
}

static void req_send(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		     const uint8_t *body, uint32_t len)
{
	struct impp_req_send q;
	struct impp_reply_send r = { 0 };
	uint64_t id = 0;
	int e;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (q.len <= IMPP_MAX_PAYLOAD && len != sizeof(q) + q.len) {
		reply_status(c, type, serial, -EBADMSG);
		return;
	}
	e = do_send(b, c, q.port, q.voucher, q.reply_port, q.options, body + sizeof(q), q.len, &id);
	if (e < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	r.msg_id = id;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

/* No more requests are read from c until its receive on p is served. */
static void park(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial, struct bport *p,
		 int32_t timeout_ms, uint32_t flags)
{
	c->parked = true;
	c->parked_type = type;
	c->parked_serial = serial;
	c->parked_port = p->id;
	c->parked_flags = flags;
	if (timeout_ms > 0) {
		uint64_t now;

		sd_event_now(b->ev, CLOCK_MONOTONIC, &now);
		sd_event_add_time(b->ev, &c->parked_timer, CLOCK_MONOTONIC,
				  now + (uint64_t)timeout_ms * 1000, 1000, on_receive_timeout, c);
	}
	client_update_io(c);
}

/* The receive half of RECEIVE and SEND_RECEIVE: replies now, or parks. */
static void do_receive(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		       uint64_t port, int32_t timeout_ms, uint32_t flags)
{
	struct bport *p;
	int e;

	if (flags & ~IMPP_RECV_VOUCHER) {
		reply_status(c, type, serial, -EINVAL);
		return;
	}
	if (!(p = owned_port(b, c, port))) {
		reply_status(c, type, serial, -ENOENT);
		return;
	}
	if (!TAILQ_EMPTY(&p->queue)) {
		if ((e = deliver(b, c, p, type, serial, flags)) < 0)
			reply_status(c, type, serial, e);
		return;
	}
	if (timeout_ms == 0) {
		reply_status(c, type, serial, -EAGAIN);
		return;
	}
	park(b, c, type, serial, p, timeout_ms, flags);
}

static void req_receive(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			const uint8_t *body, uint32_t len)
{
	struct impp_req_receive q;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	do_receive(b, c, type, serial, q.port, q.timeout_ms, q.flags);
}

static void req_send_receive(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			     const uint8_t *body, uint32_t len)
{
	struct impp_req_send_receive q;
	uint64_t id;
	int e;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (q.len > IMPP_MAX_PAYLOAD || len != sizeof(q) + q.len) {
		reply_status(c, type, serial, q.len > IMPP_MAX_PAYLOAD ? -EMSGSIZE : -EBADMSG);
		return;
	}
	if (q.release_voucher && (e = release_handle(c, q.release_voucher)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	if (q.send_port &&
	    (e = do_send(b, c, q.send_port, q.send_voucher, q.reply_port, q.options, body + sizeof(q), q.len, &id)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	do_receive(b, c, type, serial, q.recv_port, q.timeout_ms, q.recv_flags);
}

/* The frame's layout, checked before anything is done; 0 or -errno. */
static int batch_check(const struct impp_req_batch *q, const uint8_t *body, uint32_t len)
{
	size_t off = sizeof(*q) + (size_t)q->n_release * sizeof(uint64_t);

	if (q->n_release > IMPP_MAX_BATCH_ITEMS || q->n_send > IMPP_MAX_BATCH_ITEMS ||
	    q->recv_max > IMPP_MAX_BATCH_ITEMS)
		return -E2BIG;
	if (q->pad || (q->recv_port && !q->recv_max))
		return -EINVAL;
	for (uint32_t i = 0; i < q->n_send; i++) {
		struct impp_req_send sq;

		if (off + sizeof(sq) > len)
			return -EBADMSG;
		memcpy(&sq, body + off, sizeof(sq));
		if (sq.len > IMPP_MAX_PAYLOAD)
			return -EMSGSIZE;
		off += sizeof(sq) + sq.len;
	}
	return off == len ? 0 : -EBADMSG;
}

static void req_batch(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		      const uint8_t *body, uint32_t len)
{
	struct impp_req_batch q;
	struct impp_reply_batch h = { 0 };
	struct bport *p = NULL;
	size_t off, prefix;
	uint8_t *pre;
	int e, recv_status = -EAGAIN;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if ((e = batch_check(&q, body, len)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	h.n_release = q.n_release;
	h.n_send = q.n_send;
	prefix = sizeof(h) + (size_t)q.n_release * sizeof(int32_t) +
		 (size_t)q.n_send * sizeof(struct impp_reply_send);
	if (!(pre = malloc(prefix))) {
		reply_status(c, type, serial, -ENOMEM);
		return;
	}
	memcpy(pre, &h, sizeof(h));
	off = sizeof(q);
	for (uint32_t i = 0; i < q.n_release; i++) {
		uint64_t handle;
		int32_t st;

		memcpy(&handle, body + off, sizeof(handle));
		off += sizeof(handle);
		st = release_handle(c, handle);
		memcpy(pre + sizeof(h) + i * sizeof(st), &st, sizeof(st));
	}
	b->deferring = true;
	b->n_deferred = 0;
	for (uint32_t i = 0; i < q.n_send; i++) {
		struct impp_req_send sq;
		struct impp_reply_send rs = { 0 };
		uint64_t id = 0;

		memcpy(&sq, body + off, sizeof(sq));
		rs.status = do_send(b, c, sq.port, sq.voucher, sq.reply_port, sq.options,
				    body + off + sizeof(sq), sq.len, &id);
		rs.msg_id = rs.status < 0 ? 0 : id;
		off += sizeof(sq) + sq.len;
		memcpy(pre + sizeof(h) + q.n_release * sizeof(int32_t) + i * sizeof(rs), &rs, sizeof(rs));
	}
	b->deferring = false;
	for (size_t i = 0; i < b->n_deferred; i++) {
		struct bport *wp = port_by_id(b, b->deferred[i]);

		if (wp)
			wake_receiver(b, wp);
	}
	if (!q.recv_port)
		recv_status = 0;
	else if (q.recv_flags & ~IMPP_RECV_VOUCHER)
		recv_status = -EINVAL;
	else if (!(p = owned_port(b, c, q.recv_port)))
		recv_status = -ENOENT;
	else if (TAILQ_EMPTY(&p->queue) && q.timeout_ms != 0) {
		/* park, keeping the statuses for the reply */
		c->parked_prefix = pre;
		c->parked_prefix_len = prefix;
		c->parked_max = q.recv_max;
		park(b, c, type, serial, p, q.timeout_ms, q.recv_flags);
		return;
	}
	batch_reply(b, c, serial, pre, prefix, p, q.recv_max, q.recv_flags, recv_status);
	free(pre);
}

static void req_voucher_release(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
				const uint8_t *body, uint32_t len)
{
	struct impp_req_handle q;

	(void)b;
	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	reply_status(c, type, serial, release_handle(c, q.handle));
}

static void req_drop_external(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			      const uint8_t *body, uint32_t len)
{
	struct impp_req_drop_external q;
	struct impp_reply_code r = { 0 };
	struct bvoucher *bv;

	(void)b;
	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	bv = q.voucher ? voucher_by_handle(c, q.voucher) : NULL;
	if (q.voucher && !bv) {
		reply_status(c, type, serial, -ENOENT);
		return;
	}
	{
		uint32_t remaining = 0;

		r.code = imp_voucher_drop_external(bv ? bv->voucher : NULL, q.refs, &remaining);
		r.remaining = remaining;
	}
	if (r.code < 0)
		r.status = r.code;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

static void send_text(struct bclient *c, uint16_t type, uint32_t serial, const char *text, size_t n)
{
	struct impp_reply_text r = { 0, (uint32_t)n };

	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), text, n);
}

static void req_voucher_describe(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
				 const uint8_t *body, uint32_t len)
{
	struct impp_req_handle q;
	struct bvoucher *bv;
	char text[4096];

	(void)b;
	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (!(bv = voucher_by_handle(c, q.handle))) {
		reply_status(c, type, serial, -ENOENT);
		return;
	}
	imp_voucher_describe(bv->voucher, text, sizeof(text), NULL);
	send_text(c, type, serial, text, strlen(text));
}

static void req_legacy_complete(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
				const uint8_t *body, uint32_t len)
{
	struct impp_reply_code r = { 0 };

	(void)b;
	(void)body;
	(void)len;
	r.code = imp_task_drop_legacy_assertion(c->task, 1);
	if (r.code < 0)
		r.status = r.code;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

static void req_filelock(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			 const uint8_t *body, uint32_t len)
{
	struct impp_req_filelock q;
	struct impp_reply_code r = { 0 };

	(void)b;
	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	r.code = q.hold ? imp_task_hold_file_lock(c->task, q.count)
			: imp_task_drop_file_lock(c->task, q.count);
	if (r.code < 0)
		r.status = r.code;
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

static void req_status(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		       const uint8_t *body, uint32_t len)
{
	struct impp_reply_stats r = { 0 };
	imp_stats st;

	(void)body;
	(void)len;
	imp_domain_get_stats(b->dom, &st);
	r.clients = b->n_clients;
	r.task_elems = st.task_elems;
	r.inherits = st.inherits;
	r.vouchers = st.vouchers;
	r.ports = st.ports;
	r.messages = st.messages;
	r.delayed = st.delayed;
	r.boosts_applied = b->boosts;
	r.unboosts_applied = b->unboosts;
	r.requests = b->requests;
	r.protocol_errors = b->protocol_errors;
	snprintf(r.policy, sizeof(r.policy), "%s", backend_name(b->cfg.backend.kind));
	client_send_frame(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
}

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *nb = cap <= IMPP_MAX_TEXT ? realloc(t->buf, cap) : NULL;

		if (!nb) {
			t->failed = true;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

/* Sends a built text (or -ENOMEM if building it failed) and frees it. */
static void reply_text(struct bclient *c, uint16_t type, uint32_t serial, struct text *t)
{
	if (t->failed)
		reply_status(c, type, serial, -ENOMEM);
	else
		send_text(c, type, serial, t->buf, t->len);
	free(t->buf);
}

static void req_tasks(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		      const uint8_t *body, uint32_t len)
{
	struct text t = { 0 };
	struct bclient *x;

	(void)body;
	(void)len;
	text_add(&t, "%-8s %-6s %-9s %-5s %-7s %6s %6s %6s %5s %6s\n", "PID", "UID", "KIND", "DONOR",
		 "BOOSTED", "ASSERT", "EXTERN", "LEGACY", "PORTS", "POLICY");
	TAILQ_FOREACH(x, &b->clients, link) {
		imp_task_info ti;

		if (!x->task)
			continue;
		imp_task_get_info(x->task, &ti);
		text_add(&t, "%-8d %-6u %-9s %-5s %-7s %6u %6u %6u %5u %6s\n", (int)x->pid,
			 (unsigned)x->uid, x->receiver ? "receiver" : x->denap ? "denap" : "sender",
			 ti.is_donor ? "yes" : "no", ti.boosted ? "yes" : "no", ti.assertcnt,
			 ti.extern_boosts, ti.legacy_boosts, x->n_ports, backend_name(x->target.kind));
	}
	reply_text(c, type, serial, &t);
}

static void req_graph(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		      const uint8_t *body, uint32_t len)
{
	struct text t = { 0 };
	imp_graph *g;
	size_t i, j;
	int e;

	(void)body;
	(void)len;
	if ((e = imp_domain_graph(b->dom, &g)) < 0) {
		reply_status(c, type, serial, e);
		return;
	}
	text_add(&t, "digraph importanced {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
	for (i = 0; i < g->n_tasks; i++) {
		const imp_graph_task *gt = &g->tasks[i];

		text_add(&t, "  e%llu [shape=box, style=\"rounded,filled\", fillcolor=%s, label=\"pid %d%s\\nassert %u extern %u\"];\n",
			 (unsigned long long)gt->elem_id,
			 gt->boosted ? "tomato" : gt->donor ? "gold" : gt->active ? "lightblue" : "grey85",
			 gt->pid, gt->receiver ? " receiver" : gt->denap ? " denap" : "", gt->assertcnt,
			 gt->extern_boosts);
	}
	for (i = 0; i < g->n_msgs; i++) {
		const imp_graph_msg *m = &g->msgs[i];

		for (j = 0; j < g->n_tasks; j++)
			if (g->tasks[j].task == imp_port_owner(m->port))
				text_add(&t, "  m%zu [shape=note, label=\"msg%s\"];\n  m%zu -> e%llu;\n", i,
					 m->raised ? " raised" : "", i, (unsigned long long)g->tasks[j].elem_id);
		if (m->linked_elem_id)
			text_add(&t, "  e%llu -> m%zu [color=%s];\n", (unsigned long long)m->linked_elem_id,
				 i, m->raised ? "red" : "black");
	}
	for (i = 0; i < g->n_inherits; i++) {
		const imp_graph_inherit *in = &g->inherits[i];

		text_add(&t, "  e%llu [shape=ellipse, label=\"inherit %u/%u%s\"];\n  e%llu -> e%llu;\n  e%llu -> e%llu [color=%s];\n",
			 (unsigned long long)in->elem_id, in->externcnt - in->externdrop, in->externcnt,
			 in->donating ? " donating" : "", (unsigned long long)in->from_elem_id,
			 (unsigned long long)in->elem_id, (unsigned long long)in->elem_id,
			 (unsigned long long)in->to_elem_id, in->donating ? "red" : "black");
	}
	text_add(&t, "}\n");
	imp_graph_free(b->dom, g);
	reply_text(c, type, serial, &t);
}

static void req_monitor(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
			const uint8_t *body, uint32_t len)
{
	(void)b;
	(void)body;
	(void)len;
	c->monitor = true;
	reply_status(c, type, serial, 0);
}

static void req_donor(struct broker *b, struct bclient *c, uint16_t type, uint32_t serial,
		      const uint8_t *body, uint32_t len)
{
	struct impp_req_donor q;
	struct bclient *x;
	int e = -ESRCH;

	NEED(sizeof(q));
	memcpy(&q, body, sizeof(q));
	if (c->uid != 0 && c->uid != geteuid()) {
		reply_status(c, type, serial, -EPERM);
		return;
	}
	TAILQ_FOREACH(x, &b->clients, link) {
		if (x->pid != q.pid || !x->task || x->dead)
			continue;
		x->donor = q.on;
		e = imp_task_set_live_donor(x->task, q.on);
	}
	reply_status(c, type, serial, e < 0 ? e : 0);
}

typedef void (*handler_fn)(struct broker *, struct bclient *, uint16_t, uint32_t, const uint8_t *,
			   uint32_t);

static const struct {
	handler_fn fn;
	bool needs_task; /* monitors may not use it */
} handlers[IMPP_REQ_MAX_] = {
	[IMPP_REQ_HELLO] = { req_hello, false },
	[IMPP_REQ_PORT_ALLOCATE] = { req_port_allocate, true },
	[IMPP_REQ_PORT_DESTROY] = { req_port_destroy, true },
	[IMPP_REQ_NAME_REGISTER] = { req_name_register, true },
	[IMPP_REQ_NAME_LOOKUP] = { req_name_lookup, true },
	[IMPP_REQ_SEND] = { req_send, true },
	[IMPP_REQ_RECEIVE] = { req_receive, true },
	[IMPP_REQ_VOUCHER_RELEASE] = { req_voucher_release, true },
	[IMPP_REQ_VOUCHER_DROP_EXTERNAL] = { req_drop_external, true },
	[IMPP_REQ_VOUCHER_DESCRIBE] = { req_voucher_describe, true },
	[IMPP_REQ_LEGACY_COMPLETE] = { req_legacy_complete, true },
	[IMPP_REQ_FILELOCK] = { req_filelock, true },
	[IMPP_REQ_STATUS] = { req_status, false },
	[IMPP_REQ_TASKS] = { req_tasks, false },
	[IMPP_REQ_GRAPH] = { req_graph, false },
	[IMPP_REQ_MONITOR] = { req_monitor, false },
	[IMPP_REQ_DONOR] = { req_donor, false },
	[IMPP_REQ_SEND_RECEIVE] = { req_send_receive, true },
	[IMPP_REQ_BATCH] = { req_batch, true },
};

static void protocol_error(struct broker *b, struct bclient *c, uint32_t serial, int err)
{
	struct impp_reply_status r = { err };

	b->protocol_errors++;
	client_send_frame(c, IMPP_EVT_ERROR, serial, &r, sizeof(r), NULL, 0);
	if (++c->errors >= b->cfg.max_errors)
		c->dead = true;
}

static void handle_frame(struct broker *b, struct bclient *c, const uint8_t *buf, size_t n)
{
	struct impp_header h;

	if (n < sizeof(h)) {
		protocol_error(b, c, 0, -EBADMSG);
		return;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != IMPP_MAGIC || h.flags || h.length != n - sizeof(h)) {
		protocol_error(b, c, h.serial, -EBADMSG);
		return;
	}
	if (n > IMPP_MAX_REQUEST && h.type != IMPP_REQ_BATCH) {
		protocol_error(b, c, h.serial, -EMSGSIZE);
		return;
	}
	if (h.type == 0 || h.type >= IMPP_REQ_MAX_ || !handlers[h.type].fn) {
		reply_status(c, h.type, h.serial, -EOPNOTSUPP);
		b->protocol_errors++;
		return;
	}
	if (!c->hello && h.type != IMPP_REQ_HELLO) {
		reply_status(c, h.type, h.serial, -EPROTO);
		return;
	}
	if (handlers[h.type].needs_task && !c->task) {
		reply_status(c, h.type, h.serial, -EPERM);
		return;
	}
	b->requests++;
	handlers[h.type].fn(b, c, h.type, h.serial, buf + sizeof(h), h.length);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct bclient *c = userdata;
	struct broker *b = c->b;
	int budget = 64; /* frames per wakeup: one client cannot starve others */

	(void)s;
	if (revents & EPOLLOUT)
		flush_out(c);
	if (c->parked && (revents & EPOLLIN) && !c->parked_input) {
		c->parked_input = true; /* read it once served */
		client_update_io(c);
	}
	while (!c->dead && !c->reading_paused && budget-- > 0 && (revents & (EPOLLIN | EPOLLHUP))) {
		ssize_t n = recv(fd, b->inbuf, IMPP_MAX_BATCH + 1, MSG_DONTWAIT | MSG_TRUNC);

		if (n == 0) {
			c->dead = true;
			break;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->dead = true;
			break;
		}
		if ((size_t)n > IMPP_MAX_BATCH) {
			protocol_error(b, c, 0, -EMSGSIZE);
			continue;
		}
		handle_frame(b, c, b->inbuf, (size_t)n);
	}
	if (!c->dead && (revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
		c->dead = true;
	if (c->dead)
		client_free(b, c);
	else
		rearm_engine_timer(b);
	return 0;
}

/* ------------------------------------------------------------------ */
/* setup                                                                */
/* ------------------------------------------------------------------ */

void broker_config_defaults(struct broker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	backend_config_defaults(&cfg->backend);
	cfg->max_ports = 256;
	cfg->max_inflight = 4096;
	cfg->max_inflight_bytes = 16u << 20;
	cfg->max_vouchers = 4096;
	cfg->max_names = 64;
	cfg->max_out_bytes = 4u << 20;
	cfg->max_errors = 64;
}

int broker_config_load(struct broker_config *cfg, const char *path, unsigned *lineno)
{
	FILE *f = fopen(path, "re");
	char line[512], key[64], value[400];
	int set;

	*lineno = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		(*lineno)++;
		line[strcspn(line, "#\n")] = '\0';
		if (sscanf(line, "%63s %399s", key, value) != 2) {
			if (sscanf(line, "%63s", key) == 1)
				goto bad;
			continue;
		}
		if (!strcmp(key, "donor-uid") && cfg->n_donor_uids < IMPD_MAX_MATCH)
			cfg->donor_uids[cfg->n_donor_uids++] = (uid_t)strtoul(value, NULL, 10);
		else if (!strcmp(key, "donor-exe") && cfg->n_donor_exes < IMPD_MAX_MATCH)
			snprintf(cfg->donor_exes[cfg->n_donor_exes++], 256, "%.255s", value);
		else if (!strcmp(key, "donor-cgroup") && cfg->n_donor_cgroups < IMPD_MAX_MATCH)
			snprintf(cfg->donor_cgroups[cfg->n_donor_cgroups++], 256, "%.255s", value);
		else if ((set = backend_config_set(&cfg->backend, key, value)) != -ENOENT) {
			if (set < 0)
				goto bad;
		} else if (!strcmp(key, "max-ports"))
			cfg->max_ports = (unsigned)strtoul(value, NULL, 10);
		else if (!strcmp(key, "max-inflight"))
			cfg->max_inflight = (unsigned)strtoul(value, NULL, 10);
		else if (!strcmp(key, "max-vouchers"))
			cfg->max_vouchers = (unsigned)strtoul(value, NULL, 10);
		else
			goto bad;
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	return -EINVAL;
}

int broker_new(sd_event *ev, const struct broker_config *cfg, int listen_fd, struct broker **out)
{
	imp_domain_config dc = { 0 };
	struct broker *b;
	int e;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->inbuf = malloc(IMPP_MAX_BATCH + 1);
	b->outbuf = malloc(IMPP_MAX_BATCH);
	if (!b->inbuf || !b->outbuf) {
		free(b->inbuf);
		free(b->outbuf);
		free(b);
		return -ENOMEM;
	}
	b->ev = sd_event_ref(ev);
	b->cfg = *cfg;
	b->listen_fd = listen_fd;
	TAILQ_INIT(&b->clients);
	dc.policy = on_policy;
	dc.policy_ctx = b;
	if ((e = imp_domain_new(&dc, &b->dom)) < 0)
		goto fail;
	if ((e = sd_event_add_io(ev, &b->listen_src, listen_fd, EPOLLIN, on_accept, b)) < 0)
		goto fail;
	*out = b;
	return 0;
fail:
	broker_free(b);
	return e;
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	while (!TAILQ_EMPTY(&b->clients))
		client_free(b, TAILQ_FIRST(&b->clients));
	sd_event_source_unref(b->listen_src);
	sd_event_source_unref(b->timer_src);
	imp_domain_free(b->dom);
	sd_event_unref(b->ev);
	free(b->inbuf);
	free(b->outbuf);
	free(b);
}

int broker_engine_stats(struct broker *b, imp_stats *stats)
{
	return imp_domain_get_stats(b->dom, stats);
}

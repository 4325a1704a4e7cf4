/*
 * libimportance-client (client.h): requests to importanced over its
 * SOCK_SEQPACKET socket (include/importance/protocol.h).
 *
 * The core is asynchronous.  Every request is an `op` with a serial,
 * listed as pending until its reply comes.  Whoever reads the socket
 * matches a reply to its op: a blocking call's op is marked done (its
 * thread, waiting on the condition variable, takes the reply), an
 * asynchronous one becomes a completion, queued for
 * impc_next_completion().  One thread at a time reads (`reading`); the
 * others wait for their op or for the reader's turn.  Blocking receives
 * are ASYNC on the daemon (they wait on the port, not the connection), so
 * a thread waiting for a message never holds up another's request.
 *
 * impc_fd() is an epoll descriptor over the socket, an eventfd raised
 * while completions or events are queued (a blocking call may have read
 * the frame that completed an asynchronous one) and a timerfd for the
 * next reconnect attempt: one descriptor for an event loop, the same
 * across reconnects.
 *
 * Handles.  The daemon numbers ports, vouchers and messages per run, from
 * 1 again after a restart, so the handles given to the application carry
 * the connection's generation in their top 16 bits (0 for the first
 * connection: then a handle is the daemon's number).  A handle of an
 * older generation means nothing to the daemon now, except those the
 * library restored after a reconnect (struct remap: ports it allocated or
 * looked up by name), which it maps to their new numbers both ways.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "importance/client.h"
#include "importance/importance.h"
#include "importance/protocol.h"

#define IMPC_EVENTS 256
/* the daemon's questions kept for an agent (twice what it asks at once) */
#define IMPC_QUESTIONS (2 * IMPP_AGENT_QUESTIONS_MAX)
#define GEN_SHIFT 48
#define ID_MASK ((UINT64_C(1) << GEN_SHIFT) - 1)
#define RETRY_FIRST_MS 20
#define RETRY_MAX_MS 1000
/* frames impc_process() takes at most per call, so that one busy
 * connection cannot hold a loop */
#define PROCESS_BUDGET 64

_Static_assert(IMPC_MAX_FDS == IMPP_MAX_FDS, "files per message and per frame agree");

/* A request sent and not yet answered, or an answer not yet collected. */
struct op {
	struct op *next;
	uint32_t serial;
	uint16_t type;
	impc_op_kind kind; /* 0: a blocking call's */
	bool done;
	int status;
	/* a blocking call's reply: the body and the files passed with it */
	uint8_t *body;
	size_t len;
	size_t n_fds;
	int fds[IMPP_MAX_FDS];
	/* an asynchronous call's (its userdata is in result) */
	uint64_t port;   /* handle: received on, or sent to */
	unsigned flags;  /* receive flags, to wait again after a reconnect */
	impc_completion result;
};

/* A port the library restores after a reconnect (IMPC_RECONNECT). */
struct remap {
	uint64_t handle;  /* what the application holds */
	uint64_t current; /* that port's handle now; 0: not restored */
	bool owned, donate;
	char **names;     /* owned: names registered; looked up: the one name */
	size_t n_names;
};

struct impc {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int sock;             /* -1 while disconnected */
	int epfd, evfd, tfd;
	char path[108];
	unsigned hello_flags;
	bool reconnect, monitor, reading, signalled;
	int call_timeout_ms;  /* impc_set_timeout(): -1 none */
	int call_wait_ms;     /* the blocking receive being sent: its own wait */
	uint16_t gen;
	unsigned retry_ms;
	uint32_t serial;
	uint8_t *buf;         /* the reader's: one frame */
	struct op *pending;   /* sent, not answered */
	struct op *rearm;     /* receives to wait again once reconnected */
	struct op *done_head, *done_tail; /* completions */
	impc_event events[IMPC_EVENTS];
	unsigned ev_head, ev_count;
	impc_agent_question *questions; /* IMPC_QUESTIONS, made at the first */
	uint8_t *agent_frame; /* impc_agent_events' records (EVENTS_ROOM), made at the first; NULL while in use */
	unsigned q_head, q_count;
	struct remap *remaps;
	size_t n_remaps, cap_remaps;
};

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* ------------------------------------------------------------------ */
/* handles                                                              */
/* ------------------------------------------------------------------ */

static uint64_t make_handle(const impc *c, uint64_t id)
{
	return id ? ((uint64_t)c->gen << GEN_SHIFT) | (id & ID_MASK) : 0;
}

static struct remap *remap_by_handle(impc *c, uint64_t h)
{
	for (size_t i = 0; i < c->n_remaps; i++)
		if (c->remaps[i].handle == h)
			return &c->remaps[i];
	return NULL;
}

/* The daemon's port id -> the application's handle. */
static uint64_t port_in(impc *c, uint64_t id)
{
	uint64_t h = make_handle(c, id);

	for (size_t i = 0; i < c->n_remaps; i++)
		if (h && c->remaps[i].current == h)
			return c->remaps[i].handle;
	return h;
}

/* The application's port handle -> the daemon's id (0 for 0); -EPIPE
 * for a port of an earlier connection that was not restored (its receiver
 * is gone as far as we can tell). */
static int64_t port_out(impc *c, uint64_t h)
{
	struct remap *r;

	if (!h)
		return 0;
	if ((r = remap_by_handle(c, h))) {
		if (!r->current)
			return -EPIPE;
		h = r->current;
	}
	if (h >> GEN_SHIFT != c->gen)
		return -EPIPE;
	return (int64_t)(h & ID_MASK);
}

/* A voucher handle -> the daemon's; -ENOENT for one of an earlier
 * connection (its boost went with the daemon). */
static int64_t voucher_out(const impc *c, uint64_t h)
{
	if (!h)
		return 0;
	if (h >> GEN_SHIFT != c->gen)
		return -ENOENT;
	return (int64_t)(h & ID_MASK);
}

/* Stores a translated handle (or fails with its error) into a request
 * field, which may be unaligned in its packed struct: 0 or -errno. */
static int store_id(void *dst, int64_t v)
{
	uint64_t id = (uint64_t)v;

	if (v < 0)
		return (int)v;
	memcpy(dst, &id, sizeof(id));
	return 0;
}

static int remap_add(impc *c, uint64_t handle, bool owned, bool donate, struct remap **out)
{
	struct remap *r;

	if (c->n_remaps == c->cap_remaps) {
		size_t cap = c->cap_remaps ? 2 * c->cap_remaps : 8;

		if (!(r = realloc(c->remaps, cap * sizeof(*r))))
			return -ENOMEM;
		c->remaps = r;
		c->cap_remaps = cap;
	}
	r = &c->remaps[c->n_remaps++];
	*r = (struct remap){ handle, handle, owned, donate, NULL, 0 };
	*out = r;
	return 0;
}

static int remap_add_name(struct remap *r, const char *name)
{
	char **names = realloc(r->names, (r->n_names + 1) * sizeof(*names));

	if (!names)
		return -ENOMEM;
	r->names = names;
	if (!(names[r->n_names] = strdup(name)))
		return -ENOMEM;
	r->n_names++;
	return 0;
}

static void remap_remove(impc *c, struct remap *r)
{
	for (size_t i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	*r = c->remaps[--c->n_remaps];
}

/* ------------------------------------------------------------------ */
/* the queues and the loop descriptor                                   */
/* ------------------------------------------------------------------ */

/* Keeps the eventfd raised exactly while something is queued. */
static void update_signal(impc *c)
{
	bool want = c->done_head || c->ev_count || c->q_count;
	uint64_t v = 1;

	if (want && !c->signalled)
		c->signalled = write(c->evfd, &v, sizeof(v)) == sizeof(v);
	else if (!want && c->signalled)
		c->signalled = !(read(c->evfd, &v, sizeof(v)) == sizeof(v));
}

static void queue_event(impc *c, const impc_event *ev)
{
	if (c->ev_count == IMPC_EVENTS) { /* keep the newest */
		c->ev_head = (c->ev_head + 1) % IMPC_EVENTS;
		c->ev_count--;
	}
	c->events[(c->ev_head + c->ev_count++) % IMPC_EVENTS] = *ev;
	update_signal(c);
}

static void queue_done(impc *c, struct op *op)
{
	op->next = NULL;
	if (c->done_tail)
		c->done_tail->next = op;
	else
		c->done_head = op;
	c->done_tail = op;
	update_signal(c);
}

static void op_free(struct op *op)
{
	if (!op)
		return;
	close_fds(op->fds, op->n_fds);
	free(op->body);
	impc_message_clear(&op->result.msg);
	free(op);
}

static struct op *op_new(impc_op_kind kind, uint16_t type)
{
	struct op *op = calloc(1, sizeof(*op));

	if (op) {
		op->kind = kind;
		op->type = type;
		op->result.kind = kind;
	}
	return op;
}

/* An asynchronous call's op: its completion will carry userdata and
 * port; flags are a receive's. */
static struct op *async_op(impc_op_kind kind, uint16_t type, uint64_t port, unsigned flags, void *userdata)
{
	struct op *op = op_new(kind, type);

	if (op) {
		op->result.userdata = userdata;
		op->port = op->result.port = port;
		op->flags = flags;
	}
	return op;
}

static void unlink_op(struct op **list, struct op *op)
{
	for (struct op **p = list; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			return;
		}
}

/* Ends op with status: a blocking call's is marked done, an asynchronous
 * one becomes a completion. */
static void finish(impc *c, struct op *op, int status)
{
	op->status = status;
	op->done = true;
	op->result.status = status;
	if (op->kind)
		queue_done(c, op);
}

static void retry_later(impc *c)
{
	struct itimerspec t = { { 0, 0 }, { c->retry_ms / 1000, (long)(c->retry_ms % 1000) * 1000000L } };

	timerfd_settime(c->tfd, 0, &t, NULL);
	c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
}

/* The connection is gone, or given up with status (-EPROTO: the daemon
 * sent what is not this protocol; -ETIMEDOUT: a call's reply did not
 * come in time), the caller reading the socket or nobody doing so.  Calls
 * in flight end with status, except receives that wait again after a
 * reconnect. */
static void drop_connection(impc *c, int status)
{
	impc_event ev = { .kind = IMPC_EVENT_DISCONNECTED, .status = status };
	struct op *op;

	if (c->sock < 0)
		return;
	close(c->sock); /* leaves the epoll set with it */
	c->sock = -1;
	while ((op = c->pending)) {
		c->pending = op->next;
		if (c->reconnect && op->kind == IMPC_OP_RECEIVE) {
			op->next = c->rearm;
			c->rearm = op;
		} else {
			finish(c, op, status);
		}
	}
	queue_event(c, &ev);
	if (c->reconnect) {
		c->retry_ms = RETRY_FIRST_MS;
		retry_later(c);
	}
	pthread_cond_broadcast(&c->cond);
}

static void lose_connection(impc *c)
{
	drop_connection(c, -ECONNRESET);
}

/* ------------------------------------------------------------------ */
/* frames                                                               */
/* ------------------------------------------------------------------ */

/* Sends one frame with its files on fd; 0 or -errno.  Called with the
 * lock held: while the socket is full it is released, so that the reader
 * can take the replies the daemon waits to send. */
static int send_frame(impc *c, int fd, uint16_t type, uint32_t serial, const void *req, size_t len,
		      const void *extra, size_t extra_len, const int *fds, size_t n_fds)
{
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)(len + extra_len) };
	struct iovec iov[3] = { { &h, sizeof(h) }, { (void *)req, len }, { (void *)extra, extra_len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	union {
		struct cmsghdr align;
		char buf[IMPP_FDS_CONTROL_SIZE];
	} control;

	if (n_fds > IMPP_MAX_FDS)
		return -ETOOMANYREFS;
	impp_attach_fds(&mh, control.buf, fds, n_fds);
	for (;;) {
		struct pollfd pfd = { fd, POLLOUT, 0 };

		if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ? -ECONNRESET : -errno;
		pthread_mutex_unlock(&c->lock);
		poll(&pfd, 1, -1);
		pthread_mutex_lock(&c->lock);
		if (c->sock != fd)
			return -ECONNRESET;
	}
}

/* Receives one frame from fd into c->buf, with its files; its length,
 * -EAGAIN when none waits, or -ECONNRESET. */
static ssize_t recv_frame(impc *c, int fd, int *fds, size_t *n_fds, bool wait)
{
	union {
		struct cmsghdr align;
		char buf[IMPP_FDS_CONTROL_SIZE];
	} control;
	struct iovec iov = { c->buf, IMPP_MAX_FRAME };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	ssize_t n;

	*n_fds = 0;
	do
		n = recvmsg(fd, &mh, (wait ? 0 : MSG_DONTWAIT) | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -ECONNRESET;
	if (n == 0)
		return -ECONNRESET;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int x;

			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*n_fds < IMPP_MAX_FDS)
				fds[(*n_fds)++] = x;
			else
				close(x);
		}
	}
	if ((size_t)n > IMPP_MAX_FRAME || (size_t)n < sizeof(struct impp_header)) {
		close_fds(fds, *n_fds);
		*n_fds = 0;
		return -EPROTO; /* not this protocol: no way to go on */
	}
	return n;
}

/* The length of the message record at body (a struct impp_reply_receive
 * and its data), or 0 when the len bytes there cannot hold it. */
static size_t message_length(const uint8_t *body, size_t len)
{
	struct impp_reply_receive r;

	if (len < sizeof(r))
		return 0;
	memcpy(&r, body, sizeof(r));
	return r.len <= len - sizeof(r) ? sizeof(r) + r.len : 0;
}

/* A BATCH reply's shape: its header, the statuses and the records the
 * header counts, and nothing after them. */
static bool batch_fits(const uint8_t *body, size_t len)
{
	struct impp_reply_batch h;
	size_t off, n;

	if (len < sizeof(h))
		return false;
	memcpy(&h, body, sizeof(h));
	if (h.n_release > IMPP_MAX_BATCH_ITEMS || h.n_send > IMPP_MAX_BATCH_ITEMS || h.n_recv > IMPP_MAX_BATCH_ITEMS)
		return false;
	off = sizeof(h) + (size_t)h.n_release * sizeof(int32_t) + (size_t)h.n_send * sizeof(struct impp_reply_send);
	for (uint32_t i = 0; i < h.n_recv && off <= len; i++, off += n)
		if (!(n = message_length(body + off, len - off)))
			return false;
	return off == len;
}

/* Whether the body of a reply with status 0 to a request of this type
 * has the shape protocol.h gives it: its fixed part, and what its lengths
 * say follows.  Every reply is checked here before anything reads it
 * (dispatch, call_direct), so the parsers below take what fits; one that
 * does not is a frame that is not this protocol, and ends the connection. */
static bool reply_fits(uint16_t type, const uint8_t *body, size_t len)
{
	struct impp_reply_text t;
	struct impp_reply_stats st;
	struct impp_reply_code code;

	switch (type) {
	case IMPP_REQ_HELLO:
	case IMPP_REQ_CONFIRM:
		return len >= sizeof(struct impp_reply_hello);
	case IMPP_REQ_PORT_ALLOCATE:
	case IMPP_REQ_NAME_LOOKUP:
		return len >= sizeof(struct impp_reply_port);
	case IMPP_REQ_SEND:
		return len >= sizeof(struct impp_reply_send);
	case IMPP_REQ_RECEIVE:
	case IMPP_REQ_SEND_RECEIVE:
		return message_length(body, len) == len;
	case IMPP_REQ_BATCH:
		return batch_fits(body, len);
	case IMPP_REQ_VOUCHER_DROP_EXTERNAL:
	case IMPP_REQ_LEGACY_COMPLETE:
		if (len < sizeof(code))
			return false;
		memcpy(&code, body, sizeof(code));
		return code.code >= 0; /* an IMP_KERN_* code, never an errno */
	case IMPP_REQ_FILELOCK:
		return len >= sizeof(struct impp_reply_filelock);
	case IMPP_REQ_AGENT_ATTACH:
		return len >= sizeof(struct impp_reply_agent_attach);
	case IMPP_REQ_VOUCHER_DESCRIBE:
	case IMPP_REQ_TASKS:
	case IMPP_REQ_GRAPH:
	case IMPP_REQ_WHY:
		if (len < sizeof(t))
			return false;
		memcpy(&t, body, sizeof(t));
		return t.len == len - sizeof(t);
	case IMPP_REQ_STATUS:
		if (len < sizeof(st))
			return false;
		memcpy(&st, body, sizeof(st));
		return st.backends_len <= len - sizeof(st);
	default:
		return true; /* a status alone */
	}
}

/* Takes an event frame; returns 1 if it was one. */
static int take_event(impc *c, const struct impp_header *h, const uint8_t *body)
{
	impc_event ev = { 0 };

	if (h->type == IMPP_EVT_POLICY && h->length >= sizeof(struct impp_evt_policy)) {
		struct impp_evt_policy p;

		memcpy(&p, body, sizeof(p));
		ev.kind = IMPC_EVENT_POLICY;
		ev.pid = p.pid;
		ev.boosted = p.boosted;
		ev.applied = p.applied;
		ev.value = p.value;
		ev.time_ns = p.time_ns;
		queue_event(c, &ev);
		return 1;
	}
	if (h->type == IMPP_EVT_MSG_DESTROYED && h->length >= sizeof(struct impp_evt_msg_destroyed)) {
		struct impp_evt_msg_destroyed d;

		memcpy(&d, body, sizeof(d));
		ev.kind = IMPC_EVENT_MSG_DESTROYED;
		ev.msg_id = make_handle(c, d.msg_id);
		ev.port = port_in(c, d.port);
		queue_event(c, &ev);
		return 1;
	}
	if (h->type == IMPP_EVT_AGENT_QUESTION && h->length >= sizeof(struct impp_evt_agent_question)) {
		struct impp_evt_agent_question q;
		impc_agent_question *slot;

		memcpy(&q, body, sizeof(q));
		if (q.len == 0 || q.len > h->length - sizeof(q))
			return 1;
		if (!c->questions && !(c->questions = calloc(IMPC_QUESTIONS, sizeof(*c->questions))))
			return 1; /* unanswered: the daemon takes it as unknown */
		if (c->q_count == IMPC_QUESTIONS)
			return 1;
		slot = &c->questions[(c->q_head + c->q_count++) % IMPC_QUESTIONS];
		slot->bus = q.bus;
		slot->what = q.what;
		memcpy(slot->name, body + sizeof(q), q.len);
		slot->name[q.len] = 0;
		update_signal(c);
		return 1;
	}
	return 0;
}

/* Parses one received message (a struct impp_reply_receive and its data,
 * its shape checked by reply_fits) into msg, taking its files from
 * fds[*fd_at...]. */
static int take_message(impc *c, const uint8_t *body, int *fds, size_t n_fds, size_t *fd_at, impc_message *msg)
{
	struct impp_reply_receive r;

	memset(msg, 0, sizeof(*msg));
	memcpy(&r, body, sizeof(r));
	msg->data = malloc(r.len ? r.len : 1);
	if (!msg->data)
		return -ENOMEM;
	memcpy(msg->data, body + sizeof(r), r.len);
	msg->len = r.len;
	msg->msg_id = make_handle(c, r.msg_id);
	msg->sender_pid = r.sender_pid;
	msg->voucher = make_handle(c, r.voucher);
	msg->reply_port = port_in(c, r.reply_port);
	for (uint32_t i = 0; i < r.n_fds && *fd_at < n_fds; i++) {
		msg->fds[msg->n_fds++] = fds[*fd_at];
		fds[(*fd_at)++] = -1;
	}
	return 0;
}

/* An asynchronous op's reply (status 0, its shape checked) into its
 * completion. */
static void complete_async(impc *c, struct op *op, const uint8_t *body, int *fds, size_t n_fds)
{
	size_t at = 0;
	int e = 0;

	if (op->kind == IMPC_OP_SEND) {
		struct impp_reply_send r;

		memcpy(&r, body, sizeof(r));
		op->result.msg_id = make_handle(c, r.msg_id);
	} else {
		e = take_message(c, body, fds, n_fds, &at, &op->result.msg);
	}
	finish(c, op, e);
}

/* A frame read from the daemon (lock held): an event, or the reply to a
 * pending op.  The files passed with it are taken or closed.  0, or
 * -EPROTO when the frame is malformed (a bad header, a reply of another
 * type than its request's, one too short for its status or not of its
 * request's shape, an error event that is no error): the op ends with
 * -EPROTO and the caller gives the connection up. */
static int dispatch(impc *c, size_t n, int *fds, size_t n_fds)
{
	struct impp_header h;
	const uint8_t *body = c->buf + sizeof(h);
	struct op *op;
	int32_t status;
	int e = 0;

	memcpy(&h, c->buf, sizeof(h));
	if (h.magic != IMPP_MAGIC || h.flags || h.length != n - sizeof(h)) {
		e = -EPROTO;
		goto out;
	}
	if (take_event(c, &h, body))
		goto out;
	for (op = c->pending; op && op->serial != h.serial; op = op->next)
		;
	if (!op)
		goto out; /* not a request of ours */
	if ((h.type != IMPP_REPLY(op->type) && h.type != IMPP_EVT_ERROR) || h.length < sizeof(status)) {
		e = -EPROTO;
		goto out;
	}
	memcpy(&status, body, sizeof(status));
	if ((h.type == IMPP_EVT_ERROR && status >= 0) || (status >= 0 && !reply_fits(op->type, body, h.length))) {
		e = -EPROTO;
		goto out;
	}
	unlink_op(&c->pending, op);
	if (status < 0) {
		finish(c, op, status);
	} else if (op->kind) {
		complete_async(c, op, body, fds, n_fds);
	} else {
		if (!(op->body = malloc(h.length ? h.length : 1))) {
			finish(c, op, -ENOMEM);
			goto out;
		}
		memcpy(op->body, body, h.length);
		op->len = h.length;
		memcpy(op->fds, fds, n_fds * sizeof(int));
		op->n_fds = n_fds;
		n_fds = 0;
		finish(c, op, 0);
	}
	pthread_cond_broadcast(&c->cond);
out:
	close_fds(fds, n_fds);
	return e;
}

/* Reads one frame as the reader, waiting up to timeout_ms (-1: no limit)
 * for it with the lock released; 1 when one was taken, -EAGAIN or
 * -ETIMEDOUT when none came, -ECONNRESET when the connection is gone.
 * Lock held, c->reading false. */
static int read_one(impc *c, int timeout_ms)
{
	int fds[IMPP_MAX_FDS], fd = c->sock, e;
	size_t n_fds = 0;
	ssize_t n;

	if (fd < 0)
		return -ENOTCONN;
	if (!c->buf && !(c->buf = malloc(IMPP_MAX_FRAME)))
		return -ENOMEM;
	c->reading = true;
	if (timeout_ms < 0) {
		/* no limit: the read itself waits (one system call, not a poll
		 * and a read); as the reader, c->buf is ours meanwhile, and a
		 * thread that must end the connection shuts it down, which ends
		 * the read */
		pthread_mutex_unlock(&c->lock);
		n = recv_frame(c, fd, fds, &n_fds, true);
		pthread_mutex_lock(&c->lock);
	} else if (timeout_ms != 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int r;

		pthread_mutex_unlock(&c->lock);
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		pthread_mutex_lock(&c->lock);
		if (r == 0) {
			c->reading = false;
			pthread_cond_broadcast(&c->cond);
			return -ETIMEDOUT;
		}
	}
	if (timeout_ms >= 0)
		n = recv_frame(c, fd, fds, &n_fds, false);
	c->reading = false;
	if (n > 0 && (e = dispatch(c, (size_t)n, fds, n_fds)) < 0)
		n = e;
	if (n == -ECONNRESET || n == -EPROTO)
		drop_connection(c, (int)n);
	pthread_cond_broadcast(&c->cond);
	return n < 0 ? (int)n : 1;
}

/* ------------------------------------------------------------------ */
/* connecting                                                           */
/* ------------------------------------------------------------------ */

/* One request and its reply on a connection no one else uses yet (the
 * handshake, restoring after a reconnect); events met are queued.  The
 * reply's body is left in c->buf; its status is returned. */
static int call_direct(impc *c, int fd, uint16_t type, const void *req, size_t len, const void *extra,
		       size_t extra_len, const uint8_t **body, size_t *body_len)
{
	uint32_t serial = ++c->serial;
	bool reset = false;
	int e;

	if (!c->buf && !(c->buf = malloc(IMPP_MAX_FRAME)))
		return -ENOMEM;
	/* A daemon that refuses the connection (limits) says why in an
	 * EVT_ERROR frame and closes it, possibly before our request went out
	 * or was read: the kernel then reports a reset once, and the frame
	 * may still be waiting behind it. */
	if ((e = send_frame(c, fd, type, serial, req, len, extra, extra_len, NULL, 0)) == -ECONNRESET)
		reset = true;
	else if (e < 0)
		return e;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		struct impp_header h;
		int fds[IMPP_MAX_FDS];
		size_t n_fds;
		int32_t status;
		ssize_t n;

		if (poll(&pfd, 1, reset ? 0 : 5000) <= 0)
			return reset ? -ECONNRESET : -ETIMEDOUT;
		n = recv_frame(c, fd, fds, &n_fds, false);
		if (n == -EAGAIN && !reset)
			continue;
		if (n == -ECONNRESET && !reset) {
			reset = true;
			continue;
		}
		if (n < 0)
			return n == -EAGAIN ? -ECONNRESET : (int)n;
		close_fds(fds, n_fds);
		memcpy(&h, c->buf, sizeof(h));
		if (h.magic != IMPP_MAGIC || h.flags || h.length != (size_t)n - sizeof(h))
			return -EPROTO;
		if (take_event(c, &h, c->buf + sizeof(h)))
			continue;
		if (h.serial != serial && h.type != IMPP_EVT_ERROR)
			continue;
		if (h.length < sizeof(status) || (h.type != IMPP_REPLY(type) && h.type != IMPP_EVT_ERROR))
			return -EPROTO;
		memcpy(&status, c->buf + sizeof(h), sizeof(status));
		if (h.type == IMPP_EVT_ERROR)
			return status < 0 ? status : -EPROTO;
		if (status >= 0 && !reply_fits(type, c->buf + sizeof(h), h.length))
			return -EPROTO;
		if (body) {
			*body = c->buf + sizeof(h);
			*body_len = h.length;
		}
		return status;
	}
}

/* Opens a connection and says hello: the socket, or -errno. */
static int open_connection(impc *c, bool *donor)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct impp_req_hello q = { IMPP_VERSION, c->hello_flags };
	struct impp_reply_hello r;
	const uint8_t *body;
	size_t len;
	int fd, e;

	strcpy(sa.sun_path, c->path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	if ((e = call_direct(c, fd, IMPP_REQ_HELLO, &q, sizeof(q), NULL, 0, &body, &len)) < 0) {
		close(fd);
		return e;
	}
	memcpy(&r, body, sizeof(r));
	if (!(c->hello_flags & IMPC_MONITOR)) {
		/* the handshake's second half: only now is donor status decided */
		struct impp_req_confirm cq = { r.challenge };

		if ((e = call_direct(c, fd, IMPP_REQ_CONFIRM, &cq, sizeof(cq), NULL, 0, &body, &len)) < 0) {
			close(fd);
			return e;
		}
		memcpy(&r, body, sizeof(r));
	}
	if (donor)
		*donor = r.donor;
	return fd;
}

/* Restores a remembered port on the new connection (fd, generation
 * already advanced); 0 or the first error. */
static int restore(impc *c, int fd, struct remap *r)
{
	const uint8_t *body;
	struct impp_reply_port rp;
	size_t len;
	int e, first = 0;

	r->current = 0;
	if (r->owned) {
		struct impp_req_port_allocate q = { r->donate ? 0 : IMPP_PORT_NO_DONATION };

		if ((e = call_direct(c, fd, IMPP_REQ_PORT_ALLOCATE, &q, sizeof(q), NULL, 0, &body, &len)) < 0)
			return e;
		memcpy(&rp, body, sizeof(rp));
		r->current = make_handle(c, rp.port);
		for (size_t i = 0; i < r->n_names; i++) {
			struct impp_req_name qn = { rp.port, (uint16_t)strlen(r->names[i]) };

			e = call_direct(c, fd, IMPP_REQ_NAME_REGISTER, &qn, sizeof(qn), r->names[i], qn.len, NULL, NULL);
			if (e < 0 && !first)
				first = e;
		}
		return first;
	}
	/* looked up: its server may not be back yet (then -ENOENT, and the
	 * next impc_lookup() of the name tries again) */
	if (r->n_names) {
		struct impp_req_name qn = { 0, (uint16_t)strlen(r->names[0]) };

		if ((e = call_direct(c, fd, IMPP_REQ_NAME_LOOKUP, &qn, sizeof(qn), r->names[0], qn.len, &body, &len)) < 0)
			return e;
		memcpy(&rp, body, sizeof(rp));
		r->current = make_handle(c, rp.port);
	}
	return 0;
}

static int submit_locked(impc *c, struct op *op, const void *req, size_t len, const void *extra, size_t extra_len,
			 const int *fds, size_t n_fds);

/* Connects again and restores what IMPC_RECONNECT promises.  Lock held,
 * c->reading false, disconnected. */
static int reconnect_now(impc *c)
{
	impc_event ev = { .kind = IMPC_EVENT_RECONNECTED };
	struct op *op;
	int fd, e;

	c->reading = true; /* nobody else reads while we restore */
	fd = open_connection(c, NULL);
	if (fd < 0) {
		c->reading = false;
		retry_later(c);
		return -ENOTCONN;
	}
	c->gen++;
	for (size_t i = 0; i < c->n_remaps; i++)
		if ((e = restore(c, fd, &c->remaps[i])) < 0 && !ev.status)
			ev.status = e;
	if (c->monitor && (e = call_direct(c, fd, IMPP_REQ_MONITOR, NULL, 0, NULL, 0, NULL, NULL)) < 0 && !ev.status)
		ev.status = e;
	c->sock = fd;
	struct epoll_event ee = { .events = EPOLLIN, .data.fd = fd };
	epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ee);
	c->reading = false;
	/* the receives that were waiting wait again */
	while ((op = c->rearm)) {
		struct impp_req_receive q = { 0, -1, op->flags | IMPP_RECV_ASYNC };

		c->rearm = op->next;
		if ((e = store_id(&q.port, port_out(c, op->port))) < 0 ||
		    (e = submit_locked(c, op, &q, sizeof(q), NULL, 0, NULL, 0)) < 0)
			finish(c, op, e);
	}
	queue_event(c, &ev);
	pthread_cond_broadcast(&c->cond);
	return 0;
}

/* Waits to be the reader (lock held).  false when timeout_ms passed. */
static bool become_free_reader(impc *c, const struct timespec *deadline)
{
	while (c->reading)
		if (!deadline)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock, deadline) == ETIMEDOUT)
			return false;
	return true;
}

/* Connected, or -ENOTCONN (trying once to reconnect when allowed).  Lock
 * held.  With IMPC_RECONNECT, what the daemon sent is taken first (one
 * non-blocking read, when no other thread reads): a connection that
 * ended while nobody was reading is found here, and replaced, rather
 * than by the request about to be sent. */
static int ensure_connected(impc *c)
{
	if (c->sock >= 0 && c->reconnect && !c->reading)
		while (read_one(c, 0) == 1)
			;
	if (c->sock >= 0)
		return 0;
	if (!c->reconnect)
		return -ENOTCONN;
	become_free_reader(c, NULL);
	if (c->sock >= 0)
		return 0;
	return reconnect_now(c);
}

int impc_connect(const char *path, unsigned flags, impc **out, bool *donor)
{
	struct epoll_event ee = { .events = EPOLLIN };
	impc *c;
	int fd;

	if (!out || (flags & ~(IMPC_RECEIVER | IMPC_DENAP_RECEIVER | IMPC_MONITOR | IMPC_RECONNECT)))
		return -EINVAL;
	*out = NULL;
	if (!path)
		path = getenv("IMPORTANCED_SOCKET");
	if (!path)
		path = IMPP_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	strcpy(c->path, path);
	c->hello_flags = flags & (IMPC_RECEIVER | IMPC_DENAP_RECEIVER | IMPC_MONITOR);
	c->reconnect = flags & IMPC_RECONNECT;
	c->call_timeout_ms = -1;
	c->sock = c->epfd = c->evfd = c->tfd = -1;
	pthread_mutex_init(&c->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->epfd < 0 || c->evfd < 0 || c->tfd < 0) {
		fd = -errno;
		goto fail;
	}
	ee.data.fd = c->evfd;
	epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ee);
	ee.data.fd = c->tfd;
	epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->tfd, &ee);
	pthread_mutex_lock(&c->lock);
	fd = open_connection(c, donor);
	pthread_mutex_unlock(&c->lock);
	if (fd < 0)
		goto fail;
	c->sock = fd;
	ee.data.fd = fd;
	epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ee);
	*out = c;
	return 0;
fail:
	impc_close(c);
	return fd;
}

void impc_close(impc *c)
{
	struct op *op;

	if (!c)
		return;
	if (c->sock >= 0)
		close(c->sock);
	while ((op = c->pending)) {
		c->pending = op->next;
		op_free(op);
	}
	while ((op = c->rearm)) {
		c->rearm = op->next;
		op_free(op);
	}
	while ((op = c->done_head)) {
		c->done_head = op->next;
		op_free(op);
	}
	while (c->n_remaps)
		remap_remove(c, &c->remaps[0]);
	free(c->remaps);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->evfd >= 0)
		close(c->evfd);
	if (c->tfd >= 0)
		close(c->tfd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c->buf);
	free(c->questions);
	free(c->agent_frame);
	free(c);
}

/* ------------------------------------------------------------------ */
/* requests                                                             */
/* ------------------------------------------------------------------ */

/* Sends op's request (lock held, connected).  0: the op is pending, or
 * already ended (the connection went while it was being sent); else
 * -errno and the op is the caller's again. */
static int submit_locked(impc *c, struct op *op, const void *req, size_t len, const void *extra, size_t extra_len,
			 const int *fds, size_t n_fds)
{
	int e;

	if (c->sock < 0)
		return -ENOTCONN;
	op->serial = ++c->serial;
	op->next = c->pending;
	c->pending = op;
	e = send_frame(c, c->sock, op->type, op->serial, req, len, extra, extra_len, fds, n_fds);
	if (e == 0 || op->done)
		return 0;
	unlink_op(&c->pending, op);
	if (e == -ECONNRESET && c->sock >= 0) {
		/* the reader, if any, sees the end; else we are it */
		if (c->reading)
			shutdown(c->sock, SHUT_RDWR);
		else
			lose_connection(c);
	}
	return e;
}

struct reply {
	uint8_t *body;
	size_t len;
	size_t n_fds;
	int fds[IMPP_MAX_FDS];
};

static void reply_free(struct reply *rep)
{
	close_fds(rep->fds, rep->n_fds);
	rep->n_fds = 0;
	free(rep->body);
	rep->body = NULL;
}

static struct timespec deadline_in(int timeout_ms);
static int ms_until(const struct timespec *t);

/* A blocking request (lock held, connected): sends it and waits for its
 * reply, reading the socket for every thread while it is our turn.  0
 * with the reply in *rep (may be NULL), or the reply's error.  With a call
 * timeout (impc_set_timeout) it waits that long at most, plus the
 * daemon's own wait for a receive (c->call_wait_ms; a receive that waits
 * for ever is not timed); past it the call ends with -ETIMEDOUT and the
 * connection is given up, its late reply having no call to go to. */
static int call_locked(impc *c, uint16_t type, const void *req, size_t len, const void *extra, size_t extra_len,
		       const int *fds, size_t n_fds, struct reply *rep)
{
	struct op *op = op_new(0, type);
	bool timed = c->call_timeout_ms >= 0 && c->call_wait_ms >= 0;
	struct timespec deadline = deadline_in(timed ? c->call_timeout_ms + c->call_wait_ms : 0);
	int e;

	if (rep)
		memset(rep, 0, sizeof(*rep));
	if (!op)
		return -ENOMEM;
	if ((e = submit_locked(c, op, req, len, extra, extra_len, fds, n_fds)) < 0) {
		op_free(op);
		return e;
	}
	while (!op->done) {
		if (timed && ms_until(&deadline) <= 0) {
			unlink_op(&c->pending, op);
			finish(c, op, -ETIMEDOUT);
			if (c->sock >= 0) {
				if (c->reading)
					shutdown(c->sock, SHUT_RDWR); /* the reader gives it up */
				else
					drop_connection(c, -ETIMEDOUT);
			}
			break;
		}
		if (c->reading) {
			if (!timed)
				pthread_cond_wait(&c->cond, &c->lock);
			else
				pthread_cond_timedwait(&c->cond, &c->lock, &deadline);
			continue;
		}
		e = read_one(c, timed ? ms_until(&deadline) : -1);
		if (e < 0 && e != -EAGAIN && e != -ETIMEDOUT && !op->done) {
			/* no reply can be read for it */
			unlink_op(&c->pending, op);
			finish(c, op, e);
		}
	}
	e = op->status;
	if (e >= 0 && rep) {
		rep->body = op->body;
		rep->len = op->len;
		rep->n_fds = op->n_fds;
		memcpy(rep->fds, op->fds, op->n_fds * sizeof(int));
		op->body = NULL;
		op->n_fds = 0;
	}
	op_free(op);
	return e;
}

/* Takes the fixed part of a reply (its first size bytes, which
 * reply_fits made sure it has) into out and frees the reply. */
static void take_fixed(struct reply *rep, void *out, size_t size)
{
	memcpy(out, rep->body, size);
	reply_free(rep);
}

/* call_locked() from outside the lock, for requests naming no handle. */
static int transact(impc *c, uint16_t type, const void *req, size_t len, const void *extra, size_t extra_len,
		    struct reply *rep)
{
	int e;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0)
		e = call_locked(c, type, req, len, extra, extra_len, NULL, 0, rep);
	pthread_mutex_unlock(&c->lock);
	return e;
}

static struct timespec deadline_in(int timeout_ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += timeout_ms / 1000;
	t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static int ms_until(const struct timespec *t)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

int impc_fd(const impc *c)
{
	return c ? c->epfd : -1;
}

bool impc_connected(impc *c)
{
	bool up;

	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	up = c->sock >= 0;
	pthread_mutex_unlock(&c->lock);
	return up;
}

int impc_set_timeout(impc *c, int timeout_ms)
{
	if (!c || timeout_ms < -1)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	c->call_timeout_ms = timeout_ms;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int impc_process(impc *c)
{
	uint64_t ticks;
	int n = 0, e = 0;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->reading) {
		/* another thread reads: what it takes is queued for us.  The
		 * loop woke for a frame that thread is about to take, so give
		 * it a moment rather than return to a descriptor still ready. */
		struct timespec soon = deadline_in(1);

		pthread_cond_timedwait(&c->cond, &c->lock, &soon);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (read(c->tfd, &ticks, sizeof(ticks)) == sizeof(ticks) && c->sock < 0 && c->reconnect)
		reconnect_now(c);
	while (c->sock >= 0 && n < PROCESS_BUDGET && !c->reading) {
		if ((e = read_one(c, 0)) < 0)
			break;
		n++;
	}
	if (c->sock < 0 && !n)
		e = e == -ECONNRESET || e == -EPROTO ? e : -ENOTCONN;
	else
		e = 0;
	pthread_mutex_unlock(&c->lock);
	return e < 0 ? e : n;
}

void impc_message_clear(impc_message *m)
{
	if (!m)
		return;
	free(m->data);
	m->data = NULL;
	close_fds(m->fds, m->n_fds);
	m->n_fds = 0;
}

int impc_next_completion(impc *c, impc_completion *out)
{
	struct op *op;

	if (!c || !out)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if ((op = c->done_head)) {
		c->done_head = op->next;
		if (!c->done_head)
			c->done_tail = NULL;
		update_signal(c);
	}
	pthread_mutex_unlock(&c->lock);
	if (!op)
		return -EAGAIN;
	*out = op->result;
	op->result.msg.data = NULL; /* the caller's now */
	op->result.msg.n_fds = 0;
	op_free(op);
	return 0;
}

int impc_next_event(impc *c, int timeout_ms, impc_event *ev)
{
	struct timespec deadline = deadline_in(timeout_ms > 0 ? timeout_ms : 0);
	int e = 0;

	if (!c || !ev)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	while (!c->ev_count) {
		if (c->sock < 0) {
			e = -ENOTCONN;
			break;
		}
		if (c->reading) {
			if (timeout_ms == 0) {
				e = -EAGAIN;
				break;
			}
			if (!become_free_reader(c, timeout_ms > 0 ? &deadline : NULL)) {
				e = -ETIMEDOUT;
				break;
			}
			continue;
		}
		e = read_one(c, timeout_ms < 0 ? -1 : ms_until(&deadline));
		if (e == -EAGAIN || e == -ETIMEDOUT) {
			if (timeout_ms < 0 || ms_until(&deadline) > 0)
				continue;
			e = timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
		}
		if (e < 0 && !c->ev_count)
			break;
		e = 0;
	}
	if (c->ev_count) {
		*ev = c->events[c->ev_head];
		c->ev_head = (c->ev_head + 1) % IMPC_EVENTS;
		c->ev_count--;
		update_signal(c);
		e = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* ------------------------------------------------------------------ */
/* ports and names                                                      */
/* ------------------------------------------------------------------ */

static uint64_t reply_port_id(const struct reply *rep)
{
	struct impp_reply_port r;

	memcpy(&r, rep->body, sizeof(r));
	return r.port;
}

int impc_port_allocate(impc *c, bool donate, uint64_t *port)
{
	struct impp_req_port_allocate q = { donate ? 0 : IMPP_PORT_NO_DONATION };
	struct reply rep;
	struct remap *r;
	int e;

	if (!c || !port)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 &&
	    (e = call_locked(c, IMPP_REQ_PORT_ALLOCATE, &q, sizeof(q), NULL, 0, NULL, 0, &rep)) == 0) {
		*port = make_handle(c, reply_port_id(&rep));
		if (c->reconnect && remap_add(c, *port, true, donate, &r) < 0)
			e = -ENOMEM; /* the port exists, but could not be restored */
		reply_free(&rep);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

int impc_port_destroy(impc *c, uint64_t port)
{
	struct impp_req_handle q;
	struct remap *r;
	int e;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (e = store_id(&q.handle, port_out(c, port))) == -EPIPE)
		e = -ENOENT;
	if (e == 0)
		e = call_locked(c, IMPP_REQ_PORT_DESTROY, &q, sizeof(q), NULL, 0, NULL, 0, NULL);
	if (e == 0 && (r = remap_by_handle(c, port)) && r->owned)
		remap_remove(c, r);
	pthread_mutex_unlock(&c->lock);
	return e;
}

static int check_name(const char *name)
{
	size_t n;

	return !name || !(n = strlen(name)) || n > IMPP_MAX_NAME ? -EINVAL : 0;
}

int impc_register(impc *c, const char *name, uint64_t port)
{
	struct impp_req_name q;
	struct remap *r;
	int e;

	if (!c || check_name(name) < 0)
		return -EINVAL;
	q.len = (uint16_t)strlen(name);
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (e = store_id(&q.port, port_out(c, port))) == -EPIPE)
		e = -ENOENT;
	if (e == 0)
		e = call_locked(c, IMPP_REQ_NAME_REGISTER, &q, sizeof(q), name, q.len, NULL, 0, NULL);
	if (e == 0 && (r = remap_by_handle(c, port)) && r->owned && remap_add_name(r, name) < 0)
		e = -ENOMEM; /* registered, but would not be again after a reconnect */
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* The remembered lookup of name, if any. */
static struct remap *remap_by_lookup(impc *c, const char *name)
{
	for (size_t i = 0; i < c->n_remaps; i++)
		if (!c->remaps[i].owned && c->remaps[i].n_names && !strcmp(c->remaps[i].names[0], name))
			return &c->remaps[i];
	return NULL;
}

int impc_lookup(impc *c, const char *name, uint64_t *port)
{
	struct impp_req_name q = { 0, 0 };
	struct reply rep;
	struct remap *r;
	uint64_t id;
	int e;

	if (!c || !port || check_name(name) < 0)
		return -EINVAL;
	q.len = (uint16_t)strlen(name);
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 &&
	    (e = call_locked(c, IMPP_REQ_NAME_LOOKUP, &q, sizeof(q), name, q.len, NULL, 0, &rep)) == 0) {
		id = reply_port_id(&rep);
		*port = port_in(c, id);
		if (c->reconnect) {
			/* the name's handle stays what it was first */
			if ((r = remap_by_lookup(c, name))) {
				r->current = make_handle(c, id);
				*port = r->handle;
			} else if (remap_add(c, *port, false, false, &r) == 0 && remap_add_name(r, name) < 0) {
				remap_remove(c, r);
			}
		}
		reply_free(&rep);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* ------------------------------------------------------------------ */
/* messages                                                             */
/* ------------------------------------------------------------------ */

static int check_send(const impc_send_args *a)
{
	if (a->len > IMPP_MAX_PAYLOAD)
		return -EMSGSIZE;
	if ((a->len && !a->data) || (a->n_fds && !a->fds))
		return -EINVAL;
	return a->n_fds > IMPP_MAX_FDS ? -ETOOMANYREFS : 0;
}

/* a's handles for the daemon into q (lock held). */
static int send_request(impc *c, const impc_send_args *a, struct impp_req_send *q)
{
	int e;

	memset(q, 0, sizeof(*q));
	if ((e = check_send(a)) < 0 || (e = store_id(&q->port, port_out(c, a->port))) < 0 ||
	    (e = store_id(&q->voucher, voucher_out(c, a->voucher))) < 0 || (e = store_id(&q->reply_port, port_out(c, a->reply_port))) < 0)
		return e;
	q->options = a->options;
	q->len = (uint32_t)a->len;
	q->n_fds = (uint32_t)a->n_fds;
	return 0;
}

int impc_send_message(impc *c, const impc_send_args *a, uint64_t *msg_id)
{
	struct impp_req_send q;
	struct impp_reply_send r;
	struct reply rep;
	int e;

	if (!c || !a)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (e = send_request(c, a, &q)) == 0 &&
	    (e = call_locked(c, IMPP_REQ_SEND, &q, sizeof(q), a->data, a->len, a->fds, a->n_fds, &rep)) == 0) {
		take_fixed(&rep, &r, sizeof(r));
		if (msg_id)
			*msg_id = make_handle(c, r.msg_id);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

int impc_send(impc *c, uint64_t port, const void *data, size_t len, uint64_t voucher, uint64_t reply_port,
	      unsigned options, uint64_t *msg_id)
{
	impc_send_args a = { port, data, len, voucher, reply_port, options, NULL, 0 };

	return impc_send_message(c, &a, msg_id);
}

/* SEND_RECEIVE's request (lock held).  The receive waits on the port
 * (ASYNC) unless it only polls. */
static int send_receive_request(impc *c, const impc_send_args *send, uint64_t release_voucher, uint64_t recv_port,
				int timeout_ms, unsigned flags, struct impp_req_send_receive *q)
{
	struct impp_req_send sq;
	int e;

	memset(q, 0, sizeof(*q));
	if (flags & ~IMPC_RECV_VOUCHER)
		return -EINVAL;
	if ((e = store_id(&q->release_voucher, voucher_out(c, release_voucher))) < 0) {
		if (e != -ENOENT)
			return e;
		q->release_voucher = 0; /* gone with an earlier connection */
	}
	if (send) {
		if ((e = send_request(c, send, &sq)) < 0)
			return e;
		q->send_port = sq.port;
		q->send_voucher = sq.voucher;
		q->reply_port = sq.reply_port;
		q->options = sq.options;
		q->len = sq.len;
		q->n_fds = sq.n_fds;
	}
	if ((e = store_id(&q->recv_port, port_out(c, recv_port))) < 0)
		return e == -EPIPE ? -ENOENT : e;
	q->timeout_ms = timeout_ms;
	q->recv_flags = flags | (timeout_ms != 0 ? IMPP_RECV_ASYNC : 0);
	return 0;
}

static int take_reply_message(impc *c, struct reply *rep, impc_message *msg)
{
	size_t at = 0;
	int e = take_message(c, rep->body, rep->fds, rep->n_fds, &at, msg);

	reply_free(rep);
	return e;
}

int impc_send_receive(impc *c, const impc_send_args *send, uint64_t release_voucher, uint64_t recv_port,
		      int timeout_ms, unsigned flags, impc_message *msg)
{
	struct impp_req_send_receive q;
	struct reply rep;
	int e;

	if (!c || !msg)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 &&
	    (e = send_receive_request(c, send, release_voucher, recv_port, timeout_ms, flags, &q)) == 0) {
		c->call_wait_ms = recv_port ? timeout_ms : 0;
		e = call_locked(c, IMPP_REQ_SEND_RECEIVE, &q, sizeof(q), send ? send->data : NULL, send ? send->len : 0,
				send ? send->fds : NULL, send ? send->n_fds : 0, &rep);
		c->call_wait_ms = 0;
		if (e == 0)
			e = take_reply_message(c, &rep, msg);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

int impc_receive(impc *c, uint64_t port, int timeout_ms, unsigned flags, impc_message *msg)
{
	struct impp_req_receive q = { 0, timeout_ms, flags | (timeout_ms != 0 ? IMPP_RECV_ASYNC : 0) };
	struct reply rep;
	int e;

	if (!c || !msg || (flags & ~IMPC_RECV_VOUCHER))
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (e = store_id(&q.port, port_out(c, port))) == -EPIPE)
		e = -ENOENT;
	if (e == 0) {
		c->call_wait_ms = timeout_ms;
		e = call_locked(c, IMPP_REQ_RECEIVE, &q, sizeof(q), NULL, 0, NULL, 0, &rep);
		c->call_wait_ms = 0;
		if (e == 0)
			e = take_reply_message(c, &rep, msg);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* ------------------------------------------------------------------ */
/* asynchronous calls                                                   */
/* ------------------------------------------------------------------ */

int impc_send_async(impc *c, const impc_send_args *a, void *userdata)
{
	struct impp_req_send q;
	struct op *op;
	int e;

	if (!c || !a)
		return -EINVAL;
	if (!(op = async_op(IMPC_OP_SEND, IMPP_REQ_SEND, a->port, 0, userdata)))
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (e = send_request(c, a, &q)) == 0)
		e = submit_locked(c, op, &q, sizeof(q), a->data, a->len, a->fds, a->n_fds);
	pthread_mutex_unlock(&c->lock);
	if (e < 0)
		op_free(op);
	return e;
}

int impc_receive_async(impc *c, uint64_t port, unsigned flags, void *userdata)
{
	struct impp_req_receive q = { 0, -1, flags | IMPP_RECV_ASYNC };
	struct op *op;
	int e;

	if (!c || (flags & ~IMPC_RECV_VOUCHER))
		return -EINVAL;
	if (!(op = async_op(IMPC_OP_RECEIVE, IMPP_REQ_RECEIVE, port, flags, userdata)))
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if (c->sock < 0 && c->reconnect) {
		/* waits from when the daemon is back */
		op->next = c->rearm;
		c->rearm = op;
		op = NULL;
		e = 0;
	} else if ((e = ensure_connected(c)) == 0 && (e = store_id(&q.port, port_out(c, port))) == -EPIPE) {
		e = -ENOENT;
	}
	if (op && e == 0)
		e = submit_locked(c, op, &q, sizeof(q), NULL, 0, NULL, 0);
	pthread_mutex_unlock(&c->lock);
	if (e < 0)
		op_free(op);
	return e;
}

int impc_send_receive_async(impc *c, const impc_send_args *send, uint64_t release_voucher, uint64_t recv_port,
			    unsigned flags, void *userdata)
{
	struct impp_req_send_receive q;
	struct op *op;
	int e;

	if (!c)
		return -EINVAL;
	if (!(op = async_op(IMPC_OP_SEND_RECEIVE, IMPP_REQ_SEND_RECEIVE, recv_port, flags, userdata)))
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 &&
	    (e = send_receive_request(c, send, release_voucher, recv_port, -1, flags, &q)) == 0)
		e = submit_locked(c, op, &q, sizeof(q), send ? send->data : NULL, send ? send->len : 0,
				  send ? send->fds : NULL, send ? send->n_fds : 0);
	pthread_mutex_unlock(&c->lock);
	if (e < 0)
		op_free(op);
	return e;
}

/* ------------------------------------------------------------------ */
/* batches                                                              */
/* ------------------------------------------------------------------ */

/* Lays out a BATCH request body (lock held) and gathers the sends' files
 * into fds; returns it (malloc'd) or NULL with *err set. */
static uint8_t *batch_request(impc *c, const impc_batch *bt, size_t *len, int *fds, size_t *n_fds, int *err)
{
	struct impp_req_batch q = { (uint32_t)bt->n_release, (uint32_t)bt->n_send, 0,
				    bt->timeout_ms, bt->recv_flags, (uint32_t)bt->max_msgs, 0 };
	size_t n = sizeof(q) + bt->n_release * sizeof(uint64_t);
	uint8_t *buf, *at;

	*n_fds = 0;
	if ((*err = store_id(&q.recv_port, port_out(c, bt->recv_port))) < 0) {
		*err = *err == -EPIPE ? -ENOENT : *err;
		return NULL;
	}
	if (bt->recv_port && bt->timeout_ms != 0)
		q.recv_flags |= IMPP_RECV_ASYNC;
	for (size_t i = 0; i < bt->n_send; i++) {
		n += sizeof(struct impp_req_send) + bt->send[i].len;
		if ((*n_fds += bt->send[i].n_fds) > IMPP_MAX_FDS) {
			*err = -ETOOMANYREFS;
			return NULL;
		}
	}
	if (n > IMPP_MAX_BATCH - sizeof(struct impp_header)) {
		*err = -E2BIG;
		return NULL;
	}
	if (!(buf = malloc(n))) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(buf, &q, sizeof(q));
	at = buf + sizeof(q);
	for (size_t i = 0; i < bt->n_release; i++) {
		uint64_t id;

		if (store_id(&id, voucher_out(c, bt->release[i])) < 0)
			id = UINT64_MAX; /* of an earlier connection: the daemon says -ENOENT */
		memcpy(at, &id, sizeof(id));
		at += sizeof(id);
	}
	*n_fds = 0;
	for (size_t i = 0; i < bt->n_send; i++) {
		const impc_send_args *a = &bt->send[i];
		struct impp_req_send sq;

		if ((*err = send_request(c, a, &sq)) < 0) {
			free(buf);
			return NULL;
		}
		memcpy(at, &sq, sizeof(sq));
		if (a->len)
			memcpy(at + sizeof(sq), a->data, a->len);
		at += sizeof(sq) + a->len;
		if (a->n_fds)
			memcpy(fds + *n_fds, a->fds, a->n_fds * sizeof(int));
		*n_fds += a->n_fds;
	}
	*len = n;
	return buf;
}

/* Takes a BATCH reply's statuses and messages into bt (lock held; its
 * shape checked by reply_fits).  A reply that answers another batch than
 * bt (its counts differ) is not this protocol: the connection is given up
 * and -EPROTO returned. */
static int batch_take(impc *c, impc_batch *bt, struct reply *rep)
{
	const uint8_t *body = rep->body;
	size_t off, fd_at = 0;
	struct impp_reply_batch h;

	memcpy(&h, body, sizeof(h));
	if (h.n_release != bt->n_release || h.n_send != bt->n_send || h.n_recv > bt->max_msgs) {
		drop_connection(c, -EPROTO);
		return -EPROTO;
	}
	off = sizeof(h) + (size_t)h.n_release * sizeof(int32_t) + (size_t)h.n_send * sizeof(struct impp_reply_send);
	for (size_t i = 0; i < bt->n_release; i++) {
		int32_t st;

		memcpy(&st, body + sizeof(h) + i * sizeof(st), sizeof(st));
		if (bt->release_status)
			bt->release_status[i] = st;
	}
	for (size_t i = 0; i < bt->n_send; i++) {
		struct impp_reply_send rs;

		memcpy(&rs, body + sizeof(h) + h.n_release * sizeof(int32_t) + i * sizeof(rs), sizeof(rs));
		if (bt->send_status)
			bt->send_status[i] = rs.status;
		if (bt->msg_ids)
			bt->msg_ids[i] = make_handle(c, rs.msg_id);
	}
	for (uint32_t i = 0; i < h.n_recv; i++) {
		int e = take_message(c, body + off, rep->fds, rep->n_fds, &fd_at, &bt->msgs[i]);

		if (e < 0) {
			/* the messages were received: hand over those we could */
			bt->recv_status = e;
			return 0;
		}
		off += message_length(body + off, rep->len - off);
		bt->n_msgs++;
	}
	bt->recv_status = h.n_recv ? 0 : h.recv_status;
	return 0;
}

int impc_exchange(impc *c, impc_batch *bt)
{
	int fds[IMPP_MAX_FDS];
	size_t len, n_fds;
	struct reply rep;
	uint8_t *req = NULL;
	int e;

	if (!c || !bt || bt->n_release > IMPC_BATCH_MAX || bt->n_send > IMPC_BATCH_MAX ||
	    bt->max_msgs > IMPC_BATCH_MAX || (bt->n_release && !bt->release) ||
	    (bt->n_send && !bt->send) || (bt->recv_port && (!bt->max_msgs || !bt->msgs)) ||
	    (bt->recv_flags & ~IMPC_RECV_VOUCHER))
		return -EINVAL;
	bt->n_msgs = 0;
	bt->recv_status = 0;
	for (size_t i = 0; i < bt->n_send; i++)
		if ((e = check_send(&bt->send[i])) < 0)
			return e;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (req = batch_request(c, bt, &len, fds, &n_fds, &e))) {
		c->call_wait_ms = bt->recv_port ? bt->timeout_ms : 0;
		e = call_locked(c, IMPP_REQ_BATCH, req, len, NULL, 0, fds, n_fds, &rep);
		c->call_wait_ms = 0;
		if (e == 0) {
			e = batch_take(c, bt, &rep);
			reply_free(&rep);
		}
	}
	pthread_mutex_unlock(&c->lock);
	free(req);
	return e;
}

/* ------------------------------------------------------------------ */
/* vouchers, file locks, diagnostics                                    */
/* ------------------------------------------------------------------ */

/* A request naming one voucher (lock taken here). */
static int voucher_call(impc *c, uint16_t type, uint64_t voucher, const void *tail, size_t tail_len,
			struct reply *rep)
{
	uint8_t req[sizeof(uint64_t) + 16];
	uint64_t id;
	int e;

	if (!c || tail_len > 16)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0 && (e = store_id(&id, voucher_out(c, voucher))) == 0) {
		memcpy(req, &id, sizeof(id));
		if (tail_len)
			memcpy(req + sizeof(id), tail, tail_len);
		e = call_locked(c, type, req, sizeof(id) + tail_len, NULL, 0, NULL, 0, rep);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

int impc_voucher_release(impc *c, uint64_t voucher)
{
	int e;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	e = voucher >> GEN_SHIFT != c->gen;
	pthread_mutex_unlock(&c->lock);
	if (e)
		return 0; /* of an earlier connection: gone with it */
	return voucher_call(c, IMPP_REQ_VOUCHER_RELEASE, voucher, NULL, 0, NULL);
}

static int take_code(struct reply *rep, uint32_t *remaining)
{
	struct impp_reply_code r;

	take_fixed(rep, &r, sizeof(r));
	if (remaining)
		*remaining = r.remaining;
	return r.code;
}

int impc_voucher_drop_external(impc *c, uint64_t voucher, uint32_t refs, uint32_t *remaining)
{
	struct reply rep;
	int e;

	if ((e = voucher_call(c, IMPP_REQ_VOUCHER_DROP_EXTERNAL, voucher, &refs, sizeof(refs), &rep)) < 0)
		return e;
	return take_code(&rep, remaining);
}

int impc_legacy_complete(impc *c)
{
	struct reply rep;
	int e;

	if ((e = transact(c, IMPP_REQ_LEGACY_COMPLETE, NULL, 0, NULL, 0, &rep)) < 0)
		return e;
	return take_code(&rep, NULL);
}

static int take_text(struct reply *rep, char **text)
{
	struct impp_reply_text r;
	int e = 0;

	memcpy(&r, rep->body, sizeof(r));
	if (!(*text = malloc(r.len + 1))) {
		e = -ENOMEM;
	} else {
		memcpy(*text, rep->body + sizeof(r), r.len);
		(*text)[r.len] = '\0';
	}
	reply_free(rep);
	return e;
}

int impc_voucher_describe(impc *c, uint64_t voucher, char *buf, size_t size)
{
	struct reply rep;
	char *text = NULL;
	int e;

	if (!buf || !size)
		return -EINVAL;
	if ((e = voucher_call(c, IMPP_REQ_VOUCHER_DESCRIBE, voucher, NULL, 0, &rep)) < 0 ||
	    (e = take_text(&rep, &text)) < 0)
		return e;
	strncpy(buf, text, size - 1);
	buf[size - 1] = '\0';
	free(text);
	return 0;
}

int impc_filelock_wait(impc *c, int fd, const struct flock *lock, uint64_t *wait, pid_t *holder)
{
	struct impp_req_filelock q = { IMPP_FILELOCK_WAIT, 0, 0, 0, 0, 0 };
	struct impp_reply_filelock r;
	struct reply rep;
	int e;

	if (!c || !lock || !wait || fd < 0 || lock->l_whence != SEEK_SET)
		return -EINVAL;
	q.type = lock->l_type;
	q.start = lock->l_start;
	q.len = lock->l_len;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0)
		e = call_locked(c, IMPP_REQ_FILELOCK, &q, sizeof(q), NULL, 0, &fd, 1, &rep);
	pthread_mutex_unlock(&c->lock);
	if (e < 0)
		return e;
	take_fixed(&rep, &r, sizeof(r));
	*wait = r.id;
	if (holder)
		*holder = r.holder_pid;
	return 0;
}

int impc_filelock_done(impc *c, uint64_t wait)
{
	struct impp_req_filelock q = { IMPP_FILELOCK_DONE, 0, 0, 0, 0, wait };

	return transact(c, IMPP_REQ_FILELOCK, &q, sizeof(q), NULL, 0, NULL);
}

/* A request (body req of len bytes, or none) whose reply is a text. */
static int get_text(impc *c, uint16_t type, const void *req, size_t len, char **text)
{
	struct reply rep;
	int e;

	if (!text)
		return -EINVAL;
	*text = NULL;
	if ((e = transact(c, type, req, len, NULL, 0, &rep)) < 0)
		return e;
	return take_text(&rep, text);
}

int impc_tasks(impc *c, char **text)
{
	return get_text(c, IMPP_REQ_TASKS, NULL, 0, text);
}

int impc_graph(impc *c, char **text)
{
	return get_text(c, IMPP_REQ_GRAPH, NULL, 0, text);
}

int impc_why(impc *c, int pid, char **text)
{
	struct impp_req_why q = { pid, 0 };

	if (pid <= 0)
		return -EINVAL;
	return get_text(c, IMPP_REQ_WHY, &q, sizeof(q), text);
}

int impc_status_get(impc *c, impc_status *st)
{
	struct impp_reply_stats r;
	struct reply rep;
	size_t n;
	int e;

	if (!st)
		return -EINVAL;
	if ((e = transact(c, IMPP_REQ_STATUS, NULL, 0, NULL, 0, &rep)) < 0)
		return e;
	memcpy(&r, rep.body, sizeof(r));
	n = r.backends_len < sizeof(st->backends) - 1 ? r.backends_len : sizeof(st->backends) - 1;
	memcpy(st->backends, rep.body + sizeof(r), n);
	st->backends[n] = '\0';
	take_fixed(&rep, &r, sizeof(r));
	st->clients = r.clients;
	st->task_elems = r.task_elems;
	st->inherits = r.inherits;
	st->vouchers = r.vouchers;
	st->ports = r.ports;
	st->messages = r.messages;
	st->delayed = r.delayed;
	st->boosts_applied = r.boosts_applied;
	st->unboosts_applied = r.unboosts_applied;
	st->requests = r.requests;
	st->protocol_errors = r.protocol_errors;
	memcpy(st->policy, r.policy, sizeof(st->policy));
	st->policy[sizeof(st->policy) - 1] = '\0';
	return 0;
}

int impc_foreground(impc *c, int pid, unsigned flags)
{
	struct impp_req_foreground q = { pid, flags };

	return transact(c, IMPP_REQ_FOREGROUND, &q, sizeof(q), NULL, 0, NULL);
}

int impc_donor(impc *c, int pid, bool on)
{
	struct impp_req_donor q = { pid, on };

	return transact(c, IMPP_REQ_DONOR, &q, sizeof(q), NULL, 0, NULL);
}

int impc_monitor(impc *c)
{
	int e = transact(c, IMPP_REQ_MONITOR, NULL, 0, NULL, 0, NULL);

	if (e == 0) {
		pthread_mutex_lock(&c->lock);
		c->monitor = true;
		pthread_mutex_unlock(&c->lock);
	}
	return e;
}

/* ------------------------------------------------------------------ */
/* the session agent                                                    */
/* ------------------------------------------------------------------ */

static size_t name_len(const char *s)
{
	return s ? strnlen(s, 256) : 0;
}

int impc_agent_attach(impc *c, const char *address, uint32_t *bus)
{
	struct impp_req_agent_attach q;
	struct impp_reply_agent_attach r;
	struct reply rep;
	size_t n = name_len(address);
	int e;

	if (!bus || !n || n > IMPP_AGENT_ADDRESS_MAX)
		return -EINVAL;
	q.len = (uint16_t)n;
	if ((e = transact(c, IMPP_REQ_AGENT_ATTACH, &q, sizeof(q), address, n, &rep)) < 0)
		return e;
	take_fixed(&rep, &r, sizeof(r));
	*bus = r.bus;
	return 0;
}

int impc_agent_detach(impc *c, uint32_t bus)
{
	struct impp_req_agent_bus q = { bus };

	return transact(c, IMPP_REQ_AGENT_DETACH, &q, sizeof(q), NULL, 0, NULL);
}

/* One message as a record and its strings at out (room enough); its size,
 * or 0 when a string is too long. */
static size_t put_message(uint8_t *out, const impc_bus_message *m)
{
	const char *s[IMPP_AGENT_STRINGS] = { m->sender, m->destination, m->interface, m->member,
					      m->args[0], m->args[1], m->args[2] };
	struct impp_agent_event r = { .type = (uint8_t)m->type, .flags = m->expect_reply ? IMPP_AGENT_EXPECT_REPLY : 0,
				      .serial = m->serial, .reply_serial = m->reply_serial };
	size_t off = sizeof(r);

	for (unsigned k = 0; k < IMPP_AGENT_STRINGS; k++) {
		size_t n = name_len(s[k]);

		if (n > 255)
			return 0;
		r.len[k] = (uint8_t)n;
		if (n)
			memcpy(out + off, s[k], n);
		off += n;
	}
	memcpy(out, &r, sizeof(r));
	return off;
}

/* a frame's room for records: a request's largest body less the header */
#define EVENTS_ROOM (IMPP_MAX_REQUEST - sizeof(struct impp_header) - sizeof(struct impp_req_agent_events))
#define RECORD_MAX (sizeof(struct impp_agent_event) + IMPP_AGENT_STRINGS * 255)

/* The records go in the handle's frame buffer, taken out of the handle
 * while a batch is built and sent (the lock is let go while a frame waits
 * to be sent): a batch of another thread meanwhile makes its own. */
int impc_agent_events(impc *c, uint32_t bus, const impc_bus_message *m, size_t n)
{
	uint8_t *buf;
	int e = 0;

	if (!c || (n && !m))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	buf = c->agent_frame;
	c->agent_frame = NULL;
	pthread_mutex_unlock(&c->lock);
	if (!buf && !(buf = malloc(EVENTS_ROOM)))
		return -ENOMEM;
	for (size_t i = 0; i < n && e == 0;) {
		struct impp_req_agent_events q = { bus, 0 };
		size_t used = 0, k;

		while (i < n && q.n < IMPP_AGENT_EVENTS_MAX && EVENTS_ROOM - used >= RECORD_MAX) {
			if (!(k = put_message(buf + used, &m[i]))) {
				e = -EINVAL;
				break;
			}
			used += k;
			q.n++;
			i++;
		}
		if (e == 0 && q.n)
			e = transact(c, IMPP_REQ_AGENT_EVENTS, &q, sizeof(q), buf, used, NULL);
	}
	pthread_mutex_lock(&c->lock);
	if (!c->agent_frame) { /* kept for the next batch */
		c->agent_frame = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(buf);
	return e;
}

int impc_agent_next_question(impc *c, impc_agent_question *q)
{
	int e = -EAGAIN;

	if (!c || !q)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->q_count) {
		*q = c->questions[c->q_head];
		c->q_head = (c->q_head + 1) % IMPC_QUESTIONS;
		c->q_count--;
		update_signal(c);
		e = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

int impc_agent_identity(impc *c, uint32_t bus, const char *unique, int pid, unsigned uid, int pidfd)
{
	struct impp_req_agent_identity q = { .bus = bus, .pid = pid, .uid = uid };
	size_t n = name_len(unique);
	int e;

	if (!c || !n || n > 255)
		return -EINVAL;
	q.len = (uint8_t)n;
	pthread_mutex_lock(&c->lock);
	if ((e = ensure_connected(c)) == 0)
		e = call_locked(c, IMPP_REQ_AGENT_IDENTITY, &q, sizeof(q), unique, n, &pidfd, pidfd >= 0, NULL);
	pthread_mutex_unlock(&c->lock);
	return e;
}

int impc_agent_unknown(impc *c, uint32_t bus, const char *unique, int error)
{
	struct impp_req_agent_unknown q = { .bus = bus, .error = error };
	size_t n = name_len(unique);

	if (!n || n > 255)
		return -EINVAL;
	q.len = (uint8_t)n;
	return transact(c, IMPP_REQ_AGENT_UNKNOWN, &q, sizeof(q), unique, n, NULL);
}

int impc_agent_owner(impc *c, uint32_t bus, const char *name, const char *owner)
{
	struct impp_req_agent_owner q = { .bus = bus };
	size_t n = name_len(name), o = name_len(owner);
	char names[512];

	if (!n || n > 255 || o > 255)
		return -EINVAL;
	q.len = (uint8_t)n;
	q.len_owner = (uint8_t)o;
	memcpy(names, name, n);
	if (o)
		memcpy(names + n, owner, o);
	return transact(c, IMPP_REQ_AGENT_OWNER, &q, sizeof(q), names, n + o, NULL);
}

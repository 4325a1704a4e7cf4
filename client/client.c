/* libimportance-client: synchronous requests to importanced over its
 * SOCK_SEQPACKET socket (include/importance/protocol.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "importance/client.h"
#include "importance/importance.h"
#include "importance/protocol.h"

#define IMPC_EVENTS 256

struct impc {
	int fd;
	uint32_t serial;
	uint8_t *buf;
	size_t cap;
	impc_event events[IMPC_EVENTS];
	unsigned ev_head, ev_count;
};

int impc_fd(const impc *c)
{
	return c ? c->fd : -1;
}

static void queue_event(impc *c, const impc_event *ev)
{
	if (c->ev_count == IMPC_EVENTS) { /* keep the newest */
		c->ev_head = (c->ev_head + 1) % IMPC_EVENTS;
		c->ev_count--;
	}
	c->events[(c->ev_head + c->ev_count++) % IMPC_EVENTS] = *ev;
}

/*
 * Reads one frame into c->buf; returns its length or -errno.  The buffer
 * has room for the largest frame the daemon sends (IMPP_MAX_FRAME), so one
 * recv() takes a frame: waiting with poll() and sizing with MSG_PEEK first
 * were two more system calls per reply, a third of a round trip's calls.
 * (The pages of the buffer a small reply does not reach are never touched.)
 */
static ssize_t read_frame(impc *c, int timeout_ms)
{
	ssize_t n;

	if (!c->buf) {
		if (!(c->buf = malloc(IMPP_MAX_FRAME)))
			return -ENOMEM;
		c->cap = IMPP_MAX_FRAME;
	}
	for (;;) {
		if (timeout_ms >= 0) {
			struct pollfd pfd = { c->fd, POLLIN, 0 };
			int r = poll(&pfd, 1, timeout_ms);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
		}
		n = recv(c->fd, c->buf, c->cap, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		if ((size_t)n > c->cap)
			return -EMSGSIZE; /* not a frame of this protocol */
		if ((size_t)n < sizeof(struct impp_header))
			return -EBADMSG;
		return n;
	}
}

/* The daemon closed the connection with a request of ours unread (the
 * kernel reports ECONNRESET once): a frame it sent before closing, such as
 * why it refused us, may still be queued. */
static ssize_t read_after_reset(impc *c)
{
	ssize_t n = read_frame(c, 0);

	if (n == -ECONNRESET)
		n = read_frame(c, 0);
	return n < 0 ? -ECONNRESET : n;
}

/* Takes an event frame; returns 1 if it was one. */
static int take_event(impc *c, const struct impp_header *h, size_t n)
{
	impc_event ev = { 0 };

	if (h->type == IMPP_EVT_POLICY && n >= sizeof(*h) + sizeof(struct impp_evt_policy)) {
		struct impp_evt_policy p;

		memcpy(&p, c->buf + sizeof(*h), sizeof(p));
		ev.kind = IMPC_EVENT_POLICY;
		ev.pid = p.pid;
		ev.boosted = p.boosted;
		ev.applied = p.applied;
		ev.value = p.value;
		ev.time_ns = p.time_ns;
		queue_event(c, &ev);
		return 1;
	}
	if (h->type == IMPP_EVT_MSG_DESTROYED && n >= sizeof(*h) + sizeof(struct impp_evt_msg_destroyed)) {
		struct impp_evt_msg_destroyed d;

		memcpy(&d, c->buf + sizeof(*h), sizeof(d));
		ev.kind = IMPC_EVENT_MSG_DESTROYED;
		ev.msg_id = d.msg_id;
		ev.port = d.port;
		queue_event(c, &ev);
		return 1;
	}
	return 0;
}

/* Sends a request (with file descriptor fd, unless it is -1) and waits
 * for its reply; *body points into c->buf. */
static int transact_fd(impc *c, uint16_t type, const void *req, size_t len, const void *extra,
		       size_t extra_len, int fd, const uint8_t **body, size_t *body_len)
{
	struct impp_header h = { IMPP_MAGIC, type, 0, 0, (uint32_t)(len + extra_len) };
	struct iovec iov[3] = { { &h, sizeof(h) }, { (void *)req, len }, { (void *)extra, extra_len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	int32_t status;

	if (!c)
		return -EINVAL;
	h.serial = ++c->serial;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) < 0) {
		int e = -errno;

		/* refused at connect: the daemon said why before closing */
		if ((e == -EPIPE || e == -ECONNRESET) && read_after_reset(c) >= (ssize_t)(sizeof(struct impp_header) + sizeof(status))) {
			struct impp_header rh;

			memcpy(&rh, c->buf, sizeof(rh));
			memcpy(&status, c->buf + sizeof(rh), sizeof(status));
			if (rh.type == IMPP_EVT_ERROR && status < 0)
				return status;
		}
		return e;
	}
	for (;;) {
		ssize_t n = read_frame(c, -1);
		struct impp_header rh;

		if (n == -ECONNRESET)
			n = read_after_reset(c);

		if (n < 0)
			return (int)n;
		memcpy(&rh, c->buf, sizeof(rh));
		if (rh.magic != IMPP_MAGIC || rh.length != (size_t)n - sizeof(rh))
			return -EBADMSG;
		if (take_event(c, &rh, (size_t)n))
			continue;
		if (rh.type == IMPP_EVT_ERROR && rh.serial == 0 && rh.length >= sizeof(status)) {
			/* the daemon refuses the connection (limits): it says why */
			memcpy(&status, c->buf + sizeof(rh), sizeof(status));
			return status < 0 ? status : -EPROTO;
		}
		if (rh.serial != h.serial)
			continue; /* not ours (cannot happen: one request at a time) */
		if (rh.type != IMPP_REPLY(type) && rh.type != IMPP_EVT_ERROR)
			return -EBADMSG;
		if (rh.length < sizeof(status))
			return -EBADMSG;
		memcpy(&status, c->buf + sizeof(rh), sizeof(status));
		if (status < 0 || rh.type == IMPP_EVT_ERROR)
			return status < 0 ? status : -EBADMSG;
		if (body) {
			*body = c->buf + sizeof(rh);
			*body_len = rh.length;
		}
		return 0;
	}
}

static int transact(impc *c, uint16_t type, const void *req, size_t len, const void *extra,
		    size_t extra_len, const uint8_t **body, size_t *body_len)
{
	return transact_fd(c, type, req, len, extra, extra_len, -1, body, body_len);
}

int impc_connect(const char *path, unsigned flags, impc **out, bool *donor)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct impp_req_hello q = { IMPP_VERSION, flags };
	struct impp_reply_hello r;
	const uint8_t *body;
	size_t len;
	impc *c;
	int e;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path)
		path = getenv("IMPORTANCED_SOCKET");
	if (!path)
		path = IMPP_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = -errno;
		impc_close(c);
		return e;
	}
	if ((e = transact(c, IMPP_REQ_HELLO, &q, sizeof(q), NULL, 0, &body, &len)) < 0 ||
	    (len < sizeof(r) && (e = -EBADMSG))) {
		impc_close(c);
		return e;
	}
	memcpy(&r, body, sizeof(r));
	if (donor)
		*donor = r.donor;
	*out = c;
	return 0;
}

void impc_close(impc *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

static int get_port(impc *c, uint16_t type, const void *q, size_t qlen, const void *extra,
		    size_t extra_len, uint64_t *port)
{
	struct impp_reply_port r;
	const uint8_t *body;
	size_t len;
	int e;

	if (!port)
		return -EINVAL;
	if ((e = transact(c, type, q, qlen, extra, extra_len, &body, &len)) < 0)
		return e;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
	*port = r.port;
	return 0;
}

int impc_port_allocate(impc *c, bool donate, uint64_t *port)
{
	struct impp_req_port_allocate q = { donate ? 0 : IMPP_PORT_NO_DONATION };

	return get_port(c, IMPP_REQ_PORT_ALLOCATE, &q, sizeof(q), NULL, 0, port);
}

int impc_port_destroy(impc *c, uint64_t port)
{
	struct impp_req_handle q = { port };

	return transact(c, IMPP_REQ_PORT_DESTROY, &q, sizeof(q), NULL, 0, NULL, NULL);
}

static int name_request(impc *c, uint16_t type, const char *name, uint64_t port, uint64_t *out)
{
	struct impp_req_name q;
	size_t n;

	if (!name || !(n = strlen(name)) || n > IMPP_MAX_NAME)
		return -EINVAL;
	q.port = port;
	q.len = (uint16_t)n;
	if (out)
		return get_port(c, type, &q, sizeof(q), name, n, out);
	return transact(c, type, &q, sizeof(q), name, n, NULL, NULL);
}

int impc_register(impc *c, const char *name, uint64_t port)
{
	return name_request(c, IMPP_REQ_NAME_REGISTER, name, port, NULL);
}

int impc_lookup(impc *c, const char *name, uint64_t *port)
{
	if (!port)
		return -EINVAL;
	return name_request(c, IMPP_REQ_NAME_LOOKUP, name, 0, port);
}

int impc_send(impc *c, uint64_t port, const void *data, size_t len, uint64_t voucher,
	      uint64_t reply_port, unsigned options, uint64_t *msg_id)
{
	struct impp_req_send q = { port, voucher, reply_port, options, (uint32_t)len };
	struct impp_reply_send r;
	const uint8_t *body;
	size_t blen;
	int e;

	if (len > IMPP_MAX_PAYLOAD || (len && !data))
		return len > IMPP_MAX_PAYLOAD ? -EMSGSIZE : -EINVAL;
	if ((e = transact(c, IMPP_REQ_SEND, &q, sizeof(q), data, len, &body, &blen)) < 0)
		return e;
	if (blen < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
	if (msg_id)
		*msg_id = r.msg_id;
	return 0;
}

/* Parses a RECEIVE (or SEND_RECEIVE) reply into msg. */
static int take_message(const uint8_t *body, size_t len, impc_message *msg)
{
	struct impp_reply_receive r;

	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
	if (len != sizeof(r) + r.len)
		return -EBADMSG;
	msg->data = malloc(r.len ? r.len : 1);
	if (!msg->data)
		return -ENOMEM;
	memcpy(msg->data, body + sizeof(r), r.len);
	msg->len = r.len;
	msg->msg_id = r.msg_id;
	msg->sender_pid = r.sender_pid;
	msg->voucher = r.voucher;
	msg->reply_port = r.reply_port;
	return 0;
}

int impc_receive(impc *c, uint64_t port, int timeout_ms, unsigned flags, impc_message *msg)
{
	struct impp_req_receive q = { port, timeout_ms, flags };
	const uint8_t *body;
	size_t len;
	int e;

	if (!msg)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	if ((e = transact(c, IMPP_REQ_RECEIVE, &q, sizeof(q), NULL, 0, &body, &len)) < 0)
		return e;
	return take_message(body, len, msg);
}

int impc_send_receive(impc *c, const impc_send_args *send, uint64_t release_voucher,
		      uint64_t recv_port, int timeout_ms, unsigned flags, impc_message *msg)
{
	struct impp_req_send_receive q = { 0 };
	const uint8_t *body;
	size_t len;
	int e;

	if (!msg || (send && ((send->len && !send->data) || send->len > IMPP_MAX_PAYLOAD)))
		return send && send->len > IMPP_MAX_PAYLOAD ? -EMSGSIZE : -EINVAL;
	memset(msg, 0, sizeof(*msg));
	q.release_voucher = release_voucher;
	if (send) {
		q.send_port = send->port;
		q.send_voucher = send->voucher;
		q.reply_port = send->reply_port;
		q.options = send->options;
		q.len = (uint32_t)send->len;
	}
	q.recv_port = recv_port;
	q.timeout_ms = timeout_ms;
	q.recv_flags = flags;
	if ((e = transact(c, IMPP_REQ_SEND_RECEIVE, &q, sizeof(q), send ? send->data : NULL,
			  send ? send->len : 0, &body, &len)) < 0)
		return e;
	return take_message(body, len, msg);
}

/* Lays out a BATCH request body; returns it (malloc'd) or NULL. */
static uint8_t *batch_request(const impc_batch *bt, size_t *len)
{
	struct impp_req_batch q = { (uint32_t)bt->n_release, (uint32_t)bt->n_send, bt->recv_port,
				    bt->timeout_ms, bt->recv_flags, (uint32_t)bt->max_msgs, 0 };
	size_t n = sizeof(q) + bt->n_release * sizeof(uint64_t);
	uint8_t *buf, *at;

	for (size_t i = 0; i < bt->n_send; i++)
		n += sizeof(struct impp_req_send) + bt->send[i].len;
	if (n > IMPP_MAX_BATCH - sizeof(struct impp_header)) {
		errno = E2BIG;
		return NULL;
	}
	if (!(buf = malloc(n)))
		return NULL;
	memcpy(buf, &q, sizeof(q));
	at = buf + sizeof(q);
	if (bt->n_release) {
		memcpy(at, bt->release, bt->n_release * sizeof(uint64_t));
		at += bt->n_release * sizeof(uint64_t);
	}
	for (size_t i = 0; i < bt->n_send; i++) {
		const impc_send_args *a = &bt->send[i];
		struct impp_req_send sq = { a->port, a->voucher, a->reply_port, a->options, (uint32_t)a->len };

		memcpy(at, &sq, sizeof(sq));
		if (a->len)
			memcpy(at + sizeof(sq), a->data, a->len);
		at += sizeof(sq) + a->len;
	}
	*len = n;
	return buf;
}

/* Takes a BATCH reply's statuses and messages into bt. */
static int batch_take(impc_batch *bt, const uint8_t *body, size_t len)
{
	struct impp_reply_batch h;
	size_t off;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, body, sizeof(h));
	off = sizeof(h) + (size_t)h.n_release * sizeof(int32_t) + (size_t)h.n_send * sizeof(struct impp_reply_send);
	if (h.n_release != bt->n_release || h.n_send != bt->n_send || h.n_recv > bt->max_msgs || off > len)
		return -EBADMSG;
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
			bt->msg_ids[i] = rs.msg_id;
	}
	for (uint32_t i = 0; i < h.n_recv; i++) {
		struct impp_reply_receive r;
		int e;

		if (off + sizeof(r) > len)
			e = -EBADMSG;
		else {
			memcpy(&r, body + off, sizeof(r));
			e = off + sizeof(r) + r.len > len ? -EBADMSG
							  : take_message(body + off, sizeof(r) + r.len, &bt->msgs[i]);
		}
		if (e < 0) {
			/* the messages were received: hand over those we could */
			bt->recv_status = e;
			return 0;
		}
		off += sizeof(r) + r.len;
		bt->n_msgs++;
	}
	bt->recv_status = h.n_recv ? 0 : h.recv_status;
	return off == len ? 0 : -EBADMSG;
}

int impc_exchange(impc *c, impc_batch *bt)
{
	const uint8_t *body;
	uint8_t *req;
	size_t len, blen;
	int e;

	if (!c || !bt || bt->n_release > IMPC_BATCH_MAX || bt->n_send > IMPC_BATCH_MAX ||
	    bt->max_msgs > IMPC_BATCH_MAX || (bt->n_release && !bt->release) ||
	    (bt->n_send && !bt->send) || (bt->recv_port && (!bt->max_msgs || !bt->msgs)))
		return -EINVAL;
	bt->n_msgs = 0;
	bt->recv_status = 0;
	for (size_t i = 0; i < bt->n_send; i++)
		if (bt->send[i].len > IMPP_MAX_PAYLOAD || (bt->send[i].len && !bt->send[i].data))
			return bt->send[i].len > IMPP_MAX_PAYLOAD ? -EMSGSIZE : -EINVAL;
	if (!(req = batch_request(bt, &len)))
		return -errno;
	e = transact(c, IMPP_REQ_BATCH, req, len, NULL, 0, &body, &blen);
	free(req);
	if (e < 0)
		return e;
	return batch_take(bt, body, blen);
}

int impc_voucher_release(impc *c, uint64_t voucher)
{
	struct impp_req_handle q = { voucher };

	return transact(c, IMPP_REQ_VOUCHER_RELEASE, &q, sizeof(q), NULL, 0, NULL, NULL);
}

static int get_code(impc *c, uint16_t type, const void *q, size_t qlen, uint32_t *remaining)
{
	struct impp_reply_code r;
	const uint8_t *body;
	size_t len;
	int e;

	if ((e = transact(c, type, q, qlen, NULL, 0, &body, &len)) < 0)
		return e;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
	if (remaining)
		*remaining = r.remaining;
	return r.code;
}

int impc_voucher_drop_external(impc *c, uint64_t voucher, uint32_t refs, uint32_t *remaining)
{
	struct impp_req_drop_external q = { voucher, refs };

	return get_code(c, IMPP_REQ_VOUCHER_DROP_EXTERNAL, &q, sizeof(q), remaining);
}

int impc_legacy_complete(impc *c)
{
	return get_code(c, IMPP_REQ_LEGACY_COMPLETE, NULL, 0, NULL);
}

int impc_filelock_wait(impc *c, int fd, const struct flock *lock, uint64_t *wait, pid_t *holder)
{
	struct impp_req_filelock q = { IMPP_FILELOCK_WAIT, 0, 0, 0, 0, 0 };
	struct impp_reply_filelock r;
	const uint8_t *body;
	size_t len;
	int e;

	if (!lock || !wait || fd < 0 || lock->l_whence != SEEK_SET)
		return -EINVAL;
	q.type = lock->l_type;
	q.start = lock->l_start;
	q.len = lock->l_len;
	if ((e = transact_fd(c, IMPP_REQ_FILELOCK, &q, sizeof(q), NULL, 0, fd, &body, &len)) < 0)
		return e;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
	*wait = r.id;
	if (holder)
		*holder = r.holder_pid;
	return 0;
}

int impc_filelock_done(impc *c, uint64_t wait)
{
	struct impp_req_filelock q = { IMPP_FILELOCK_DONE, 0, 0, 0, 0, wait };

	return transact(c, IMPP_REQ_FILELOCK, &q, sizeof(q), NULL, 0, NULL, NULL);
}

static int get_text(impc *c, uint16_t type, const void *q, size_t qlen, char **text)
{
	struct impp_reply_text r;
	const uint8_t *body;
	size_t len;
	int e;

	if (!text)
		return -EINVAL;
	*text = NULL;
	if ((e = transact(c, type, q, qlen, NULL, 0, &body, &len)) < 0)
		return e;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
	if (len != sizeof(r) + r.len)
		return -EBADMSG;
	*text = malloc(r.len + 1);
	if (!*text)
		return -ENOMEM;
	memcpy(*text, body + sizeof(r), r.len);
	(*text)[r.len] = '\0';
	return 0;
}

int impc_voucher_describe(impc *c, uint64_t voucher, char *buf, size_t size)
{
	struct impp_req_handle q = { voucher };
	char *text;
	int e;

	if (!buf || !size)
		return -EINVAL;
	if ((e = get_text(c, IMPP_REQ_VOUCHER_DESCRIBE, &q, sizeof(q), &text)) < 0)
		return e;
	strncpy(buf, text, size - 1);
	buf[size - 1] = '\0';
	free(text);
	return 0;
}

int impc_tasks(impc *c, char **text)
{
	return get_text(c, IMPP_REQ_TASKS, NULL, 0, text);
}

int impc_graph(impc *c, char **text)
{
	return get_text(c, IMPP_REQ_GRAPH, NULL, 0, text);
}

int impc_status_get(impc *c, impc_status *st)
{
	struct impp_reply_stats r;
	const uint8_t *body;
	size_t len;
	int e;

	if (!st)
		return -EINVAL;
	if ((e = transact(c, IMPP_REQ_STATUS, NULL, 0, NULL, 0, &body, &len)) < 0)
		return e;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, body, sizeof(r));
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

int impc_donor(impc *c, int pid, bool on)
{
	struct impp_req_donor q = { pid, on };

	return transact(c, IMPP_REQ_DONOR, &q, sizeof(q), NULL, 0, NULL, NULL);
}

int impc_monitor(impc *c)
{
	return transact(c, IMPP_REQ_MONITOR, NULL, 0, NULL, 0, NULL, NULL);
}

int impc_next_event(impc *c, int timeout_ms, impc_event *ev)
{
	if (!c || !ev)
		return -EINVAL;
	while (!c->ev_count) {
		ssize_t n = read_frame(c, timeout_ms);
		struct impp_header h;

		if (n < 0)
			return (int)n;
		memcpy(&h, c->buf, sizeof(h));
		if (h.magic != IMPP_MAGIC || h.length != (size_t)n - sizeof(h) || !take_event(c, &h, (size_t)n))
			return -EBADMSG;
	}
	*ev = c->events[c->ev_head];
	c->ev_head = (c->ev_head + 1) % IMPC_EVENTS;
	c->ev_count--;
	return 0;
}

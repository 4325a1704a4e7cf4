/*
 * The driver (driver.h): requests and replies.
 *
 * Who may do what:
 *   - anyone: HELLO (once), STATUS, TASKS, GRAPH, WHY, MONITOR (what they show
 *     is limited to one's own tasks unless root: diag.c);
 *   - a peer with a task (not a monitor): ports, names (within the name
 *     policy), sends to ports it holds a send right for, receives on its
 *     own ports, its own vouchers, LEGACY_COMPLETE of its own assertion,
 *     FILELOCK waits when it is a donor;
 *   - root or the daemon's uid: DONOR;
 *   - anyone: FOREGROUND about processes of its own effective uid (root and
 *     the daemon's uid: about anyone's).
 * Donor status is never what a peer says: it is decided at HELLO from the
 * donor rules, about the process that sent the HELLO (which must be the
 * one that connected), and changed only by DONOR.  Sends never carry a
 * static boost from a peer.
 *
 * Blocking receives are receive.c's.  Messages may carry files: the
 * sender is charged for them, per connection and per uid, until they are
 * received (passed on with the reply) or destroyed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "bus.h"
#include "diag.h"
#include "donor.h"
#include "driver.h"
#include "filelock.h"
#include "agent.h"
#include "foreground.h"
#include "name.h"
#include "peer.h"
#include "port.h"
#include "process.h"
#include "receive.h"
#include "unix.h"
#include "user.h"

struct request {
	uint16_t type;
	uint32_t serial;
	const uint8_t *body;
	uint32_t len;
	int *fds;       /* files passed with it; a handler that keeps one sets it to -1 */
	uint32_t n_fds;
};

#define NEED(q)                                   \
	do {                                      \
		if (rq->len < sizeof(q))          \
			return -EBADMSG;          \
		memcpy(&(q), rq->body, sizeof(q)); \
	} while (0)

/* The send half of SEND, SEND_RECEIVE and BATCH: 0 or -errno, nothing
 * changed on error.  The message is queued (with the n_fds files fds
 * holds, which are then its own: fds[i] becomes -1) and a waiting
 * receiver woken. */
static int do_send(struct broker *b, struct peer *c, uint64_t port, uint64_t voucher, uint64_t reply_port,
		   uint32_t options, const uint8_t *data, uint32_t len, int *fds, uint32_t n_fds, uint64_t *msg_id)
{
	struct voucher *bv = NULL;
	struct message *m;
	struct port *p;
	int e;

	if (len > IMPP_MAX_PAYLOAD)
		return -EMSGSIZE;
	/* no static boosts from peers: that would make anyone a donor */
	if (options & ~IMPP_SEND_NOIMPORTANCE)
		return -EPERM;
	if (!right_has(c, port))
		return -EACCES;
	if (!(p = port_by_id(b, port)))
		return -EPIPE; /* the receiver is gone */
	if (voucher && !(bv = peer_voucher(c, voucher)))
		return -ENOENT;
	if (reply_port && !right_has(c, reply_port))
		return -EACCES;
	if (c->n_inflight >= b->cfg.limits.inflight || c->inflight_bytes + len > b->cfg.limits.inflight_bytes ||
	    (n_fds && c->n_inflight_fds + n_fds > b->cfg.limits.inflight_fds))
		return -EDQUOT;
	if ((e = user_charge(b, c->user, USAGE_INFLIGHT, 1)) < 0)
		return e;
	if ((e = user_charge(b, c->user, USAGE_BYTES, len)) < 0) {
		user_uncharge(b, c->user, USAGE_INFLIGHT, 1);
		return e;
	}
	if ((e = user_charge(b, c->user, USAGE_FDS, n_fds)) < 0) {
		user_uncharge(b, c->user, USAGE_INFLIGHT, 1);
		user_uncharge(b, c->user, USAGE_BYTES, len);
		return e;
	}
	m = calloc(1, sizeof(*m));
	if (!m || (len && !(m->data = malloc(len))) || (n_fds && !(m->fds = malloc(n_fds * sizeof(int))))) {
		e = -ENOMEM;
		goto fail;
	}
	if (len)
		memcpy(m->data, data, len);
	m->len = len;
	if ((e = imp_msg_send(c->task, p->port, bv ? bv->voucher : NULL,
			      (options & IMPP_SEND_NOIMPORTANCE) ? IMP_SEND_NOIMPORTANCE : 0, &m->msg)) < 0)
		goto fail;
	/* the charge taken above is the message's from here on */
	m->id = c->msg_base + ++c->msg_seq;
	m->reply_port = reply_port;
	for (uint32_t i = 0; i < n_fds; i++) {
		m->fds[i] = fds[i];
		fds[i] = -1;
	}
	m->n_fds = n_fds;
	port_enqueue(b, p, m, c);
	*msg_id = m->id;
	receive_queued(b, p);
	return 0;
fail:
	if (m) {
		free(m->data);
		free(m->fds);
	}
	free(m);
	user_uncharge(b, c->user, USAGE_INFLIGHT, 1);
	user_uncharge(b, c->user, USAGE_BYTES, len);
	user_uncharge(b, c->user, USAGE_FDS, n_fds);
	return e;
}

/* ------------------------------------------------------------------ */
/* requests                                                             */
/* ------------------------------------------------------------------ */

static void log_hello(struct broker *b, struct peer *c, const char *what)
{
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: %s pid %d uid %u%s%s%s%s\n", what, (int)c->actor.pid,
			(unsigned)c->actor.uid, c->receiver ? " receiver" : "", c->denap ? " denap" : "",
			c->donor ? " donor" : "", c->monitor ? " monitor" : "");
}

/* HELLO: the task is made, not a donor (CONFIRM decides that). */
static int req_hello(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_hello q;
	struct impp_reply_hello r = { 0 };
	struct ident who;
	struct stat exe;
	unsigned flags;
	int e;

	NEED(q);
	if (c->hello)
		return -EALREADY;
	if (q.version != IMPP_VERSION)
		return -EPROTONOSUPPORT;
	if ((q.flags & ~7u) || ((q.flags & IMPP_HELLO_RECEIVER) && (q.flags & IMPP_HELLO_DENAP_RECEIVER)))
		return -EINVAL;
	if ((e = process_ident(c->pidfd, &who)) < 0)
		return e;
	if (!(q.flags & IMPP_HELLO_MONITOR)) {
		bool receiver = q.flags & IMPP_HELLO_RECEIVER, denap = q.flags & IMPP_HELLO_DENAP_RECEIVER;

		if ((e = process_exe(c->pidfd, who.pid, &exe)) < 0)
			return e;
		if (getrandom(&c->challenge, sizeof(c->challenge), 0) != sizeof(c->challenge))
			return -EAGAIN;
		flags = IMP_TASK_LIVE_DONOR | (receiver ? IMP_TASK_RECEIVER : 0) | (denap ? IMP_TASK_DENAP_RECEIVER : 0);
		if ((receiver || denap) && (e = process_get(b, c->pidfd, &who, &c->actor.process)) < 0)
			return e;
		if ((e = imp_task_create(b->dom, c->actor.pid, flags, &c->task)) < 0) {
			process_put(b, c->actor.process);
			c->actor.process = NULL;
			return e;
		}
		imp_task_set_userdata(c->task, &c->actor);
		c->receiver = receiver;
		c->denap = denap;
		c->exe_dev = exe.st_dev;
		c->exe_ino = exe.st_ino;
		c->hello_euid = who.uid;
		r.challenge = c->challenge;
	} else {
		c->monitor = true;
	}
	c->hello = true;
	r.version = IMPP_VERSION;
	r.pid = c->actor.pid;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	log_hello(b, c, "hello");
	return 0;
}

/* CONFIRM: HELLO's challenge back; now the donor rules decide. */
static int req_confirm(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_confirm q;
	struct impp_reply_hello r = { 0 };
	struct ident who;
	struct stat exe;
	int e;

	NEED(q);
	if (c->confirmed)
		return -EALREADY;
	if (q.challenge != c->challenge)
		return -EACCES;
	if ((e = process_ident(c->pidfd, &who)) < 0 || (e = process_exe(c->pidfd, who.pid, &exe)) < 0)
		return e;
	c->confirmed = true;
	/* the program that read HELLO's reply is the one running now */
	if (exe.st_dev == c->exe_dev && exe.st_ino == c->exe_ino && who.uid == c->hello_euid &&
	    donor_match(&b->cfg.donors, c->pidfd, &who)) {
		c->donor = true;
		c->live = foreground_live(b, c->pidfd, &who);
		if ((e = imp_task_set_live_donor(c->task, c->live)) < 0)
			return e;
	}
	r.version = IMPP_VERSION;
	r.pid = c->actor.pid;
	r.donor = c->donor;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	log_hello(b, c, "confirm");
	return 0;
}

static int req_port_allocate(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_port_allocate q;
	struct impp_reply_port r = { 0 };
	struct port *p;
	int e;

	NEED(q);
	if (q.flags & ~IMPP_PORT_NO_DONATION)
		return -EINVAL;
	if ((e = port_new(b, c, !(q.flags & IMPP_PORT_NO_DONATION), &p)) < 0)
		return e;
	r.port = p->id;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	return 0;
}

static int req_port_destroy(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_handle q;
	struct port *p;

	NEED(q);
	if (!(p = port_owned(b, c, q.handle)))
		return -ENOENT;
	port_destroy(b, p, true);
	peer_reply_status(c, rq->type, rq->serial, 0);
	return 0;
}

static int parse_name(struct request *rq, char *name)
{
	struct impp_req_name q;

	if (rq->len < sizeof(q))
		return -EBADMSG;
	memcpy(&q, rq->body, sizeof(q));
	if (!q.len || q.len > IMPP_MAX_NAME || rq->len != sizeof(q) + q.len)
		return -EBADMSG;
	memcpy(name, rq->body + sizeof(q), q.len);
	name[q.len] = '\0';
	if (strlen(name) != q.len)
		return -EBADMSG;
	return 0;
}

static int req_name_register(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_name q;
	char name[IMPP_MAX_NAME + 1];
	struct port *p;
	int e;

	if ((e = parse_name(rq, name)) < 0)
		return e;
	memcpy(&q, rq->body, sizeof(q));
	if (!(p = port_owned(b, c, q.port)))
		return -ENOENT;
	if ((e = name_register(b, p, name)) < 0)
		return e;
	peer_reply_status(c, rq->type, rq->serial, 0);
	return 0;
}

static int req_name_lookup(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_reply_port r = { 0 };
	char name[IMPP_MAX_NAME + 1];
	struct port *p;
	int e;

	if ((e = parse_name(rq, name)) < 0)
		return e;
	if (!(p = name_lookup(b, name)))
		return -ENOENT;
	if ((e = right_grant(b, c, p->id)) < 0)
		return e;
	r.port = p->id;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	return 0;
}

static int req_send(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_send q;
	struct impp_reply_send r = { 0 };
	uint64_t id = 0;
	int e;

	NEED(q);
	if ((q.len <= IMPP_MAX_PAYLOAD && rq->len != sizeof(q) + q.len) || q.n_fds != rq->n_fds)
		return -EBADMSG;
	if ((e = do_send(b, c, q.port, q.voucher, q.reply_port, q.options, rq->body + sizeof(q), q.len, rq->fds,
			 q.n_fds, &id)) < 0)
		return e;
	r.msg_id = id;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	return 0;
}

static int req_receive(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_receive q;

	NEED(q);
	return receive_start(b, c, rq->type, rq->serial, q.port, q.timeout_ms, q.flags);
}

static int req_send_receive(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_send_receive q;
	uint64_t id;
	int e;

	NEED(q);
	if (q.len > IMPP_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (rq->len != sizeof(q) + q.len || q.n_fds != rq->n_fds || (q.n_fds && !q.send_port))
		return -EBADMSG;
	if (q.release_voucher && (e = peer_voucher_release(c, q.release_voucher)) < 0)
		return e;
	if (q.send_port && (e = do_send(b, c, q.send_port, q.send_voucher, q.reply_port, q.options,
					rq->body + sizeof(q), q.len, rq->fds, q.n_fds, &id)) < 0)
		return e;
	return receive_start(b, c, rq->type, rq->serial, q.recv_port, q.timeout_ms, q.recv_flags);
}

/* The frame's layout, checked before anything is done (the sends' files
 * adding up to the n_fds passed); 0 or -errno. */
static int batch_check(const struct impp_req_batch *q, const uint8_t *body, uint32_t len, uint32_t n_fds)
{
	size_t off = sizeof(*q) + (size_t)q->n_release * sizeof(uint64_t), fds = 0;

	if (q->n_release > IMPP_MAX_BATCH_ITEMS || q->n_send > IMPP_MAX_BATCH_ITEMS || q->recv_max > IMPP_MAX_BATCH_ITEMS)
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
		fds += sq.n_fds;
		if (fds > n_fds)
			return -EBADMSG;
	}
	return off == len && fds == n_fds ? 0 : -EBADMSG;
}

static int req_batch(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_batch q;
	struct impp_reply_batch h = { 0 };
	size_t off, prefix, fd_off = 0;
	uint8_t *pre;
	int e;

	NEED(q);
	if ((e = batch_check(&q, rq->body, rq->len, rq->n_fds)) < 0)
		return e;
	h.n_release = q.n_release;
	h.n_send = q.n_send;
	prefix = sizeof(h) + (size_t)q.n_release * sizeof(int32_t) + (size_t)q.n_send * sizeof(struct impp_reply_send);
	if (!(pre = malloc(prefix)))
		return -ENOMEM;
	memcpy(pre, &h, sizeof(h));
	off = sizeof(q);
	for (uint32_t i = 0; i < q.n_release; i++) {
		uint64_t handle;
		int32_t st;

		memcpy(&handle, rq->body + off, sizeof(handle));
		off += sizeof(handle);
		st = peer_voucher_release(c, handle);
		memcpy(pre + sizeof(h) + i * sizeof(st), &st, sizeof(st));
	}
	receive_defer(b);
	for (uint32_t i = 0; i < q.n_send; i++) {
		struct impp_req_send sq;
		struct impp_reply_send rs = { 0 };
		uint64_t id = 0;

		memcpy(&sq, rq->body + off, sizeof(sq));
		/* a failed send's files stay in rq->fds, closed with the frame */
		rs.status = do_send(b, c, sq.port, sq.voucher, sq.reply_port, sq.options, rq->body + off + sizeof(sq),
				    sq.len, rq->fds + fd_off, sq.n_fds, &id);
		fd_off += sq.n_fds;
		rs.msg_id = rs.status < 0 ? 0 : id;
		off += sizeof(sq) + sq.len;
		memcpy(pre + sizeof(h) + q.n_release * sizeof(int32_t) + i * sizeof(rs), &rs, sizeof(rs));
	}
	receive_flush(b);
	receive_batch(b, c, rq->serial, pre, prefix, q.recv_port, q.recv_max, q.recv_flags, q.timeout_ms);
	return 0;
}

static int req_voucher_release(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_handle q;
	int e;

	(void)b;
	NEED(q);
	if ((e = peer_voucher_release(c, q.handle)) < 0)
		return e;
	peer_reply_status(c, rq->type, rq->serial, 0);
	return 0;
}

static int req_drop_external(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_drop_external q;
	struct impp_reply_code r = { 0 };
	struct voucher *bv = NULL;
	uint32_t remaining = 0;

	(void)b;
	NEED(q);
	if (q.voucher && !(bv = peer_voucher(c, q.voucher)))
		return -ENOENT;
	r.code = imp_voucher_drop_external(bv ? bv->voucher : NULL, q.refs, &remaining);
	r.remaining = remaining;
	if (r.code < 0)
		return r.code;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	return 0;
}

static int req_voucher_describe(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_handle q;
	struct impp_reply_text r = { 0, 0 };
	struct voucher *bv;
	char text[4096];

	(void)b;
	NEED(q);
	if (!(bv = peer_voucher(c, q.handle)))
		return -ENOENT;
	imp_voucher_describe(bv->voucher, text, sizeof(text), NULL);
	r.len = (uint32_t)strlen(text);
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), text, r.len);
	return 0;
}

static int req_legacy_complete(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_reply_code r = { 0 };

	(void)b;
	r.code = imp_task_drop_legacy_assertion(c->task, 1);
	if (r.code < 0)
		return r.code;
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	return 0;
}

static int req_filelock(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_filelock q;
	struct impp_reply_filelock r = { 0 };
	int e, fd = rq->n_fds == 1 ? rq->fds[0] : -1; /* one file, no more */

	if (rq->len != sizeof(q))
		return -EBADMSG;
	memcpy(&q, rq->body, sizeof(q));
	if (q.op == IMPP_FILELOCK_WAIT) {
		uint64_t id;
		int32_t holder;

		if ((e = filelock_wait(b, c, fd, &q, &id, &holder)) < 0)
			return e;
		r.id = id;
		r.holder_pid = holder;
		/* the wait keeps the file */
		rq->fds[0] = -1;
	} else if (q.op == IMPP_FILELOCK_DONE) {
		if ((e = filelock_done(b, c, q.id)) < 0)
			return e;
	} else {
		return -EINVAL;
	}
	peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	return 0;
}

static int req_status(struct broker *b, struct peer *c, struct request *rq)
{
	return diag_status(b, c, rq->type, rq->serial);
}

static int req_tasks(struct broker *b, struct peer *c, struct request *rq)
{
	return diag_tasks(b, c, rq->type, rq->serial);
}

static int req_graph(struct broker *b, struct peer *c, struct request *rq)
{
	return diag_graph(b, c, rq->type, rq->serial);
}

static int req_why(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_why q;

	NEED(q);
	if (q.flags || q.pid <= 0)
		return -EINVAL;
	return diag_why(b, c, rq->type, rq->serial, q.pid);
}

static int req_monitor(struct broker *b, struct peer *c, struct request *rq)
{
	(void)b;
	c->monitor = true;
	peer_reply_status(c, rq->type, rq->serial, 0);
	return 0;
}

/* Root names a process: every peer and bus connection of that pid whose
 * process is the one alive now (its pidfd says so) becomes a live donor,
 * or stops being one. */
static int req_donor(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_donor q;
	struct peer *x;
	int e = -ESRCH;

	NEED(q);
	if (c->actor.uid != 0 && c->actor.uid != geteuid())
		return -EPERM;
	if (q.pid <= 0 || q.on > 1)
		return -EINVAL;
	TAILQ_FOREACH(x, &b->peer_list, link) {
		if (x->actor.pid != q.pid || !x->task || x->dead || process_alive(x->pidfd) < 0)
			continue;
		struct ident who;

		x->donor = q.on;
		x->live = q.on && process_ident(x->pidfd, &who) == 0 && foreground_live(b, x->pidfd, &who);
		e = imp_task_set_live_donor(x->task, x->live);
	}
	if (bus_set_donor(b, q.pid, q.on) == 0 && e == -ESRCH)
		e = 0;
	if (unix_set_donor(b, q.pid, q.on) == 0 && e == -ESRCH)
		e = 0;
	if (e < 0)
		return e;
	peer_reply_status(c, rq->type, rq->serial, 0);
	return 0;
}

/* A process (or its cgroup) of the caller's own uid is in front, or
 * nothing of its uid is.  The target is held by a pidfd from here on, and
 * its uid read through it: a pid reused before the pidfd was opened can
 * only name another process of the caller's uid. */
static int req_foreground(struct broker *b, struct peer *c, struct request *rq)
{
	struct impp_req_foreground q;
	struct ident who;
	bool privileged = c->actor.uid == 0 || c->actor.uid == geteuid();
	int fd, e;

	NEED(q);
	if (q.flags & ~(IMPP_FOREGROUND_CGROUP | IMPP_FOREGROUND_FORGET) || q.pid < 0 ||
	    ((q.flags & IMPP_FOREGROUND_FORGET) && (q.pid || (q.flags & IMPP_FOREGROUND_CGROUP))))
		return -EINVAL;
	if ((e = process_alive(c->pidfd)) < 0)
		return e;
	if (q.pid == 0) {
		if (q.flags & IMPP_FOREGROUND_FORGET)
			foreground_forget(b, c->actor.uid);
		else if ((e = foreground_set_none(b, c->actor.uid)) < 0)
			return e;
		peer_reply_status(c, rq->type, rq->serial, 0);
		return 0;
	}
	if ((fd = (int)syscall(SYS_pidfd_open, (pid_t)q.pid, 0)) < 0)
		return errno == EINVAL ? -ESRCH : -errno;
	if ((e = process_ident(fd, &who)) < 0)
		goto out;
	if ((e = process_in_our_namespaces(fd, who.pid)) <= 0) {
		e = e < 0 ? e : -EPERM;
		goto out;
	}
	if (!privileged && who.uid != c->actor.uid) {
		e = -EPERM;
		goto out;
	}
	if ((e = foreground_set_process(b, who.uid, fd, &who, q.flags & IMPP_FOREGROUND_CGROUP)) < 0)
		goto out;
	peer_reply_status(c, rq->type, rq->serial, 0);
out:
	close(fd);
	return e;
}

/* The session agent's requests (agent.h). */
static int req_agent(struct broker *b, struct peer *c, struct request *rq)
{
	uint32_t bus = 0;
	int e = agent_request(b, c, rq->type, rq->body, rq->len, rq->fds, rq->n_fds, &bus);

	if (e < 0)
		return e;
	if (rq->type == IMPP_REQ_AGENT_ATTACH) {
		struct impp_reply_agent_attach r = { 0, bus };

		peer_send(c, IMPP_REPLY(rq->type), rq->serial, &r, sizeof(r), NULL, 0);
	} else {
		peer_reply_status(c, rq->type, rq->serial, 0);
	}
	return 0;
}

typedef int (*handler_fn)(struct broker *, struct peer *, struct request *);

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
	[IMPP_REQ_CONFIRM] = { req_confirm, true },
	[IMPP_REQ_WHY] = { req_why, false },
	[IMPP_REQ_FOREGROUND] = { req_foreground, false },
	[IMPP_REQ_AGENT_ATTACH] = { req_agent, false },
	[IMPP_REQ_AGENT_EVENTS] = { req_agent, false },
	[IMPP_REQ_AGENT_IDENTITY] = { req_agent, false },
	[IMPP_REQ_AGENT_UNKNOWN] = { req_agent, false },
	[IMPP_REQ_AGENT_OWNER] = { req_agent, false },
	[IMPP_REQ_AGENT_DETACH] = { req_agent, false },
};

void driver_protocol_error(struct broker *b, struct peer *c, uint32_t serial, int status)
{
	struct impp_reply_status r = { status };

	b->protocol_errors++;
	peer_send(c, IMPP_EVT_ERROR, serial, &r, sizeof(r), NULL, 0);
	if (++c->errors >= b->cfg.limits.errors)
		c->dead = true;
}

void driver_refuse(struct broker *b, struct peer *c, const uint8_t *buf, size_t n, int status)
{
	struct impp_header h;

	if (n < sizeof(h)) {
		driver_protocol_error(b, c, 0, status);
		return;
	}
	memcpy(&h, buf, sizeof(h));
	b->protocol_errors++;
	peer_reply_status(c, h.type, h.serial, status);
	if (++c->errors >= b->cfg.limits.errors)
		c->dead = true;
}

/* The requests that may pass files. */
static bool takes_fds(uint16_t type)
{
	return type == IMPP_REQ_FILELOCK || type == IMPP_REQ_SEND || type == IMPP_REQ_SEND_RECEIVE ||
	       type == IMPP_REQ_BATCH || type == IMPP_REQ_AGENT_IDENTITY;
}

void driver_frame(struct broker *b, struct peer *c, const uint8_t *buf, size_t n, int *fds, size_t n_fds)
{
	struct impp_header h;
	struct request rq;
	int e;

	if (n < sizeof(h)) {
		driver_protocol_error(b, c, 0, -EBADMSG);
		goto out;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != IMPP_MAGIC || h.flags || h.length != n - sizeof(h)) {
		driver_protocol_error(b, c, h.serial, -EBADMSG);
		goto out;
	}
	if (n > IMPP_MAX_REQUEST && h.type != IMPP_REQ_BATCH) {
		driver_protocol_error(b, c, h.serial, -EMSGSIZE);
		goto out;
	}
	if (h.type == 0 || h.type >= IMPP_REQ_MAX_ || !handlers[h.type].fn) {
		driver_refuse(b, c, buf, n, -EOPNOTSUPP);
		goto out;
	}
	if (n_fds && !takes_fds(h.type)) {
		driver_refuse(b, c, buf, n, -EBADF);
		goto out;
	}
	if ((!c->hello && h.type != IMPP_REQ_HELLO) || (handlers[h.type].needs_task && !c->task)) {
		driver_refuse(b, c, buf, n, !c->hello ? -EPROTO : -EPERM);
		goto out;
	}
	b->requests++;
	rq = (struct request){ h.type, h.serial, buf + sizeof(h), h.length, fds, (uint32_t)n_fds };
	e = handlers[h.type].fn(b, c, &rq);
	if (e < 0)
		peer_reply_status(c, h.type, h.serial, e);
out:
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * Peers (peer.h): accepting, reading requests with the sender's
 * credentials, writing replies with back-pressure, and letting go.
 *
 * Nothing a peer sends can stop the daemon: frames are checked before
 * they are read, a peer's replies that it does not read stop us reading
 * its requests (and past four times the limit it is disconnected), a peer
 * that keeps sending garbage is disconnected, and a peer gets a fixed
 * number of frames per wakeup so that one cannot starve the others.
 * Connections are limited per uid and in all; past the limit a connection
 * is told why (-EUSERS) and closed, and when the daemon runs out of file
 * descriptors it stops accepting for a moment rather than spin.
 */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "driver.h"
#include "filelock.h"
#include "peer.h"
#include "agent.h"
#include "port.h"
#include "process.h"
#include "rt.h"
#include "user.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* what one peer's requests may take of a wakeup before the others' turn */
#define IO_BUDGET_USEC 2000
/* a turn of a uid past its share (below): frames, time */
#define BACKGROUND_FRAMES 8
#define BACKGROUND_USEC 250
/* what one uid's requests may take of a window of time: past it, its
 * connections are served only when nobody else's requests wait */
#define USER_WINDOW_USEC 20000
#define USER_SHARE_USEC 4000

/* Sets the priority of every connection of u's. */
static void user_priority(struct broker *b, struct user *u, int64_t priority)
{
	struct peer *x;

	TAILQ_FOREACH(x, &b->peer_list, link)
		if (x->user == u && x->io)
			sd_event_source_set_priority(x->io, priority);
}

/*
 * Fairness between uids.  A peer yields after IO_BUDGET_USEC, but one uid
 * with many connections would still get a turn per connection: each uid's
 * time is counted over a window, and a uid past its share has its
 * connections served after everyone else's (a lower sd-event priority)
 * until a window in which it is served starts afresh.
 */
static void user_spent(struct broker *b, struct user *u, uint64_t start, uint64_t now)
{
	if (now - u->window_start >= USER_WINDOW_USEC) {
		u->window_start = now;
		u->spent = 0;
		if (u->demoted) {
			u->demoted = false;
			user_priority(b, u, SD_EVENT_PRIORITY_NORMAL);
		}
	}
	u->spent += now - start;
	if (!u->demoted && u->spent > USER_SHARE_USEC) {
		u->demoted = true;
		user_priority(b, u, SD_EVENT_PRIORITY_IDLE);
	}
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct peer *peer_by_id(struct broker *b, uint64_t id)
{
	void *r = tfind(&id, &b->peers, cmp_u64);
	struct peer *c = r ? *(struct peer **)r : NULL;

	return c && !c->dead ? c : NULL;
}

/* ------------------------------------------------------------------ */
/* output                                                               */
/* ------------------------------------------------------------------ */

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Sends iov as one frame with n_fds files: what sendmsg() returned. */
static ssize_t send_frame(int fd, struct iovec *iov, size_t n_iov, const int *fds, size_t n_fds)
{
	union {
		struct cmsghdr align;
		char buf[IMPP_FDS_CONTROL_SIZE];
	} control;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n_iov };

	impp_attach_fds(&mh, control.buf, fds, n_fds);
	return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void peer_send(struct peer *c, uint16_t type, uint32_t serial, const void *body, size_t len,
	       const void *extra, size_t extra_len)
{
	peer_send_fds(c, type, serial, body, len, extra, extra_len, NULL, 0);
}

void peer_send_fds(struct peer *c, uint16_t type, uint32_t serial, const void *body, size_t len,
		   const void *extra, size_t extra_len, int *fds, size_t n_fds)
{
	struct outframe *f;
	struct impp_header h = { IMPP_MAGIC, type, 0, serial, (uint32_t)(len + extra_len) };
	size_t total = sizeof(h) + len + extra_len;

	if (c->dead || n_fds > IMPP_MAX_FDS) {
		close_fds(fds, n_fds);
		return;
	}
	if (TAILQ_EMPTY(&c->out)) {
		/* the usual case: straight to the socket, no copy */
		struct iovec iov[3] = { { &h, sizeof(h) }, { (void *)body, len }, { (void *)extra, extra_len } };
		ssize_t n = send_frame(c->fd, iov, 3, fds, n_fds);

		if (n == (ssize_t)total) {
			close_fds(fds, n_fds); /* the receiver has its own */
			return;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			close_fds(fds, n_fds);
			c->dead = true;
			return;
		}
	}
	/* Files waiting in the queue are the daemon's descriptors: they count
	 * against the peer's uid and everyone's files in flight, and a peer
	 * that leaves more than its own quota unread is let go. */
	if (n_fds && (c->out_fds + n_fds > c->b->cfg.limits.inflight_fds ||
		      user_charge(c->b, c->user, USAGE_FDS, n_fds) < 0)) {
		close_fds(fds, n_fds);
		c->dead = true;
		return;
	}
	/* Its bytes count against its uid and everyone: a uid whose
	 * connections do not read cannot grow our memory past its share; the
	 * connection that would pass it is let go. */
	if (user_charge(c->b, c->user, USAGE_OUT_BYTES, total) < 0) {
		user_uncharge(c->b, c->user, USAGE_FDS, n_fds);
		close_fds(fds, n_fds);
		c->dead = true;
		return;
	}
	f = malloc(sizeof(*f) + total);
	if (!f) {
		user_uncharge(c->b, c->user, USAGE_OUT_BYTES, total);
		user_uncharge(c->b, c->user, USAGE_FDS, n_fds);
		close_fds(fds, n_fds);
		c->dead = true; /* cannot answer: better gone than silent */
		return;
	}
	c->out_fds += n_fds;
	f->n_fds = n_fds;
	if (n_fds)
		memcpy(f->fds, fds, n_fds * sizeof(int));
	f->len = total;
	memcpy(f->data, &h, sizeof(h));
	if (len)
		memcpy(f->data + sizeof(h), body, len);
	if (extra_len)
		memcpy(f->data + sizeof(h) + len, extra, extra_len);
	TAILQ_INSERT_TAIL(&c->out, f, link);
	c->out_bytes += f->len;
	/* Back-pressure stops us reading its requests, but events (monitors,
	 * destroyed messages) still come: a peer that reads nothing at all
	 * is let go rather than allowed to grow our memory. */
	if (c->out_bytes > 4 * c->b->cfg.limits.out_bytes) {
		c->dead = true;
		return;
	}
	peer_update_io(c);
}

/* A queued frame is sent or given up: its bytes and files are no longer
 * charged, its files closed. */
static void drop_frame(struct peer *c, struct outframe *f)
{
	user_uncharge(c->b, c->user, USAGE_OUT_BYTES, f->len);
	if (f->n_fds) {
		user_uncharge(c->b, c->user, USAGE_FDS, f->n_fds);
		c->out_fds -= f->n_fds;
	}
	close_fds(f->fds, f->n_fds);
	free(f);
}

void peer_reply_status(struct peer *c, uint16_t req, uint32_t serial, int status)
{
	struct impp_reply_status r = { status };

	peer_send(c, IMPP_REPLY(req), serial, &r, sizeof(r), NULL, 0);
}

static void flush_out(struct peer *c)
{
	while (!TAILQ_EMPTY(&c->out)) {
		struct outframe *f = TAILQ_FIRST(&c->out);
		struct iovec iov = { f->data, f->len };
		ssize_t n = send_frame(c->fd, &iov, 1, f->fds, f->n_fds);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			break;
		}
		TAILQ_REMOVE(&c->out, f, link);
		c->out_bytes -= f->len;
		drop_frame(c, f);
	}
	peer_update_io(c);
}

void peer_update_io(struct peer *c)
{
	size_t limit = c->b->cfg.limits.out_bytes;
	uint32_t events = 0;

	if (!c->io)
		return;
	c->reading_paused = c->park.on || c->out_bytes > limit;
	/* A parked peer waits in its call and sends nothing, so its EPOLLIN
	 * is left on: turning it off and on again was two epoll_ctl() calls
	 * per round trip of a server.  If it sends anyway, on_io() notices
	 * (park.input) and it is turned off then. */
	if (!c->reading_paused || (c->park.on && !c->park.input && c->out_bytes <= limit))
		events |= EPOLLIN;
	if (!TAILQ_EMPTY(&c->out))
		events |= EPOLLOUT;
	if (events != c->io_events && sd_event_source_set_io_events(c->io, events) >= 0)
		c->io_events = events;
}

/* ------------------------------------------------------------------ */
/* vouchers                                                             */
/* ------------------------------------------------------------------ */

struct voucher *peer_voucher(struct peer *c, uint64_t h)
{
	void *r = tfind(&h, &c->vouchers, cmp_u64);

	return r ? *(struct voucher **)r : NULL;
}

int peer_voucher_store(struct peer *c, imp_voucher *v, uint64_t *handle)
{
	struct voucher *bv;

	*handle = 0;
	if (!v)
		return 0;
	if (!(bv = malloc(sizeof(*bv))))
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

int peer_voucher_release(struct peer *c, uint64_t handle)
{
	struct voucher *bv = peer_voucher(c, handle);

	if (!bv)
		return -ENOENT;
	tdelete(bv, &c->vouchers, cmp_u64);
	c->n_vouchers--;
	imp_voucher_release(bv->voucher);
	free(bv);
	return 0;
}

static void free_voucher_node(void *p)
{
	struct voucher *bv = p;

	imp_voucher_release(bv->voucher);
	free(bv);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */
/* ------------------------------------------------------------------ */

void peer_free(struct broker *b, struct peer *c)
{
	struct outframe *f;

	/* its task exits: ports die with their queued messages */
	while (!TAILQ_EMPTY(&c->ports))
		port_destroy(b, TAILQ_FIRST(&c->ports), false);
	filelock_peer_gone(b, c);
	agent_peer_gone(b, c);
	if (c->task) {
		imp_task_exit(c->task);
		imp_task_set_userdata(c->task, NULL);
	}
	tdestroy(c->vouchers, free_voucher_node);
	right_free_all(c);
	if (c->task)
		imp_task_unref(c->task);
	if (c->actor.process)
		process_put(b, c->actor.process);
	if (c->park.timer)
		sd_event_source_unref(c->park.timer);
	free(c->park.prefix);
	sd_event_source_unref(c->io);
	sd_event_source_unref(c->exit_watch);
	close(c->fd);
	close(c->pidfd);
	while ((f = TAILQ_FIRST(&c->out))) {
		TAILQ_REMOVE(&c->out, f, link);
		drop_frame(c, f);
	}
	tdelete(&c->id, &b->peers, cmp_u64);
	TAILQ_REMOVE(&b->peer_list, c, link);
	user_uncharge(b, c->user, USAGE_CONNECTIONS, 1);
	user_put(b, c->user);
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: peer pid %d gone\n", (int)c->actor.pid);
	free(c);
}

/* Reads up to 64 frames; each must come from the peer's own process and
 * carry at most IMPP_MAX_FDS files. */
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct peer *c = userdata;
	struct broker *b = c->b;
	int budget = 64;
	uint64_t start = now_usec(), io_budget = IO_BUDGET_USEC;
	bool background = c->user->demoted && start - c->user->window_start < USER_WINDOW_USEC;

	(void)s;
	/* A uid past its share is served below everyone else's work (rt.h),
	 * in short turns: another uid's request waits for one turn at most. */
	rt_background(background);
	if (background) {
		budget = BACKGROUND_FRAMES;
		io_budget = BACKGROUND_USEC;
	}
	if (revents & EPOLLOUT)
		flush_out(c);
	if (c->park.on && (revents & EPOLLIN) && !c->park.input) {
		c->park.input = true; /* read it once served */
		peer_update_io(c);
	}
	while (!c->dead && !c->reading_paused && budget-- > 0 && (revents & (EPOLLIN | EPOLLHUP))) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct ucred)) + IMPP_FDS_CONTROL_SIZE];
		} control;
		struct iovec iov = { b->inbuf, IMPP_MAX_BATCH + 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		struct ucred cred = { 0 };
		bool have_cred = false;
		int fds[IMPP_MAX_FDS];
		size_t n_fds = 0;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);

		if (n == 0) {
			c->dead = true;
			break;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->dead = true;
			break;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET)
				continue;
			if (cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof(cred))) {
				memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
				have_cred = true;
			} else if (cm->cmsg_type == SCM_RIGHTS) {
				size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (size_t i = 0; i < k; i++) {
					int x;

					memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
					if (n_fds < IMPP_MAX_FDS)
						fds[n_fds++] = x;
					else
						close(x);
				}
			}
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			/* more files than a frame may carry (the kernel closed
			 * those that did not fit) */
			close_fds(fds, n_fds);
			driver_refuse(b, c, b->inbuf, (size_t)n, -ETOOMANYREFS);
			continue;
		}
		if ((size_t)n > IMPP_MAX_BATCH) {
			close_fds(fds, n_fds);
			driver_protocol_error(b, c, 0, -EMSGSIZE);
			continue;
		}
		/* a request from any process but the one that connected */
		if (!have_cred || cred.pid != c->actor.pid) {
			close_fds(fds, n_fds);
			driver_refuse(b, c, b->inbuf, (size_t)n, -EPERM);
			continue;
		}
		b->waiting = false;
		driver_frame(b, c, b->inbuf, (size_t)n, fds, n_fds);
		if (b->waiting || now_usec() - start > io_budget)
			break; /* the others' turn; the socket is still readable */
	}
	if (!c->dead && (revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
		c->dead = true;
	user_spent(b, c->user, start, now_usec());
	rt_background(false);
	if (c->dead)
		peer_free(b, c);
	return 0;
}

/* The peer's process exited: it goes, whoever still holds its socket. */
static int on_exit_watch(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct peer *c = userdata;

	(void)s;
	(void)fd;
	(void)revents;
	peer_free(c->b, c);
	return 0;
}

/* Tells a connection why it is not served, and closes it. */
static void refuse(int fd, int status)
{
	struct {
		struct impp_header h;
		struct impp_reply_status r;
	} __attribute__((packed)) f = { { IMPP_MAGIC, IMPP_EVT_ERROR, 0, 0, sizeof(struct impp_reply_status) },
					 { status } };

	send(fd, &f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

int peer_accept(struct broker *b, int listen_fd)
{
	struct peer *c;
	struct ident who;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int cfd, pidfd = -1, on = 1, e;
	int size = (int)IMPP_MAX_FRAME;

	cfd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return -errno;
	/* A datagram larger than the send buffer cannot be sent at all, and
	 * the default (net.core.wmem_default) is below the largest frame we
	 * send; past net.core.wmem_max only SO_SNDBUFFORCE gets it. */
	if (setsockopt(cfd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    setsockopt(cfd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		refuse(cfd, -EPROTO);
		return 0;
	}
	len = sizeof(pidfd);
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		pidfd = -errno;
	if (pidfd == -EMFILE || pidfd == -ENFILE) {
		/* out of descriptors for the pidfd: the caller pauses accepting */
		refuse(cfd, pidfd);
		return pidfd;
	}
	if (pidfd < 0) {
		/* no decision can be made about a process we cannot pin down */
		refuse(cfd, -EPROTONOSUPPORT);
		return 0;
	}
	if (process_ident(pidfd, &who) < 0 || who.pid != cred.pid) {
		close(pidfd);
		refuse(cfd, -ESRCH); /* it is gone already */
		return 0;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		close(pidfd);
		refuse(cfd, -ENOMEM);
		return 0;
	}
	c->b = b;
	c->fd = cfd;
	c->pidfd = pidfd;
	c->actor.pid = cred.pid;
	c->actor.source = "ipc";
	c->actor.uid = cred.uid;
	TAILQ_INIT(&c->ports);
	TAILQ_INIT(&c->out);
	LIST_INIT(&c->lockwaits);
	LIST_INIT(&c->lockheld);
	if ((e = user_get(b, c->actor.uid, &c->user)) < 0)
		goto fail;
	if ((e = user_charge(b, c->user, USAGE_CONNECTIONS, 1)) < 0) {
		user_put(b, c->user);
		goto fail;
	}
	c->id = ++b->next_peer;
	if (getrandom(&c->msg_base, sizeof(c->msg_base), 0) != sizeof(c->msg_base))
		c->msg_base = c->id << 32;
	c->msg_base &= (UINT64_C(1) << 47) - 1;
	if (!tsearch(c, &b->peers, cmp_u64)) {
		e = -ENOMEM;
		goto fail_charged;
	}
	if ((e = sd_event_add_io(b->ev, &c->io, cfd, EPOLLIN, on_io, c)) < 0 ||
	    (e = sd_event_add_io(b->ev, &c->exit_watch, pidfd, EPOLLIN, on_exit_watch, c)) < 0) {
		sd_event_source_unref(c->io);
		tdelete(&c->id, &b->peers, cmp_u64);
		goto fail_charged;
	}
	if (c->user->demoted)
		sd_event_source_set_priority(c->io, SD_EVENT_PRIORITY_IDLE);
	/* a peer that exits is gone before any request it sent is read */
	sd_event_source_set_priority(c->exit_watch, SD_EVENT_PRIORITY_IMPORTANT);
	c->io_events = EPOLLIN;
	TAILQ_INSERT_TAIL(&b->peer_list, c, link);
	return 0;
fail_charged:
	user_uncharge(b, c->user, USAGE_CONNECTIONS, 1);
	user_put(b, c->user);
fail:
	close(pidfd);
	free(c);
	refuse(cfd, e);
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: connection of pid %d uid %u refused: %s\n", (int)cred.pid,
			(unsigned)cred.uid, strerror(-e));
	return 0;
}

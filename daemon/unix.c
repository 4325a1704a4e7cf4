/* Unix sockets (unix.h): the model, in the engine's terms. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "donor.h"
#include "process.h"
#include "unix.h"
#include "user.h"

struct uconn;

/* A process seen sending or reading, by tgid. */
struct utask {
	uint64_t tgid; /* first: the key of unix_source.tasks */
	uint64_t start; /* start_boottime, in clock ticks */
	struct actor actor;
	struct ident who;
	int pidfd;
	struct user *user;
	imp_task *task;
	bool receiver, donor, live;
	unsigned held; /* vouchers it holds as a reader */
	LIST_HEAD(, uconn) reading; /* connections it reads */
	LIST_ENTRY(utask) link;
};

/* A connection's receiving end and what a donor sent on it. */
struct uconn {
	uint64_t end; /* first: the key of unix_source.conns */
	struct utask *reader;
	imp_port *port;
	struct utask *sender; /* of msg, or of held */
	imp_voucher *sent_with; /* the voucher msg carries (a reference) */
	imp_msg *msg;         /* queued: sent, not read */
	imp_voucher *held;    /* read, not answered: the reader's boost */
	uint64_t deadline;    /* CLOCK_MONOTONIC usec; idle: when it is forgotten */
	pid_t peer;           /* the sender's pid, as the listing shows it */
	bool named;           /* held went to the reader a send event named, whose own
	                         read the kernel may still report */
	char path[UNIX_PATH_MAX + 1];
	LIST_ENTRY(uconn) reader_link;
	LIST_ENTRY(uconn) link;
};

struct unix_source {
	struct broker *b;
	struct unix_kernel k;
	void *tasks, *conns;
	size_t n_tasks, n_conns;
	LIST_HEAD(, utask) task_list;
	LIST_HEAD(, uconn) conn_list;
	uint64_t lost, messages, refused, served;
	long ticks; /* sysconf(_SC_CLK_TCK) */
};

/* ------------------------------------------------------------------ */
/* processes                                                            */
/* ------------------------------------------------------------------ */

static struct utask *task_find(struct unix_source *s, uint32_t tgid)
{
	uint64_t key = tgid;
	void *found = tfind(&key, &s->tasks, cmp_u64);

	return found ? *(struct utask **)found : NULL;
}

/* When the process of pidfd started, in ticks since boot: /proc/PID/stat's
 * field 22 (the kernel's start_boottime in clock ticks).  0 when gone. */
static uint64_t start_ticks(int pidfd, pid_t pid)
{
	char buf[1024], *p;
	unsigned long long ticks = 0;
	int dir, fd, field;
	ssize_t n;

	if ((dir = process_procdir(pidfd, pid)) < 0)
		return 0;
	fd = openat(dir, "stat", O_RDONLY | O_CLOEXEC);
	close(dir);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')))
		return 0;
	/* the 20th space after the ")" ending field 2 comes before field 22 */
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return 0;
	return ticks;
}

static uint64_t ns_to_ticks(const struct unix_source *s, uint64_t ns)
{
	return ns / (1000000000ull / (uint64_t)s->ticks);
}

static void conn_end(struct unix_source *s, struct uconn *c);

static void task_free(struct unix_source *s, struct utask *t)
{
	while (!LIST_EMPTY(&t->reading))
		conn_end(s, LIST_FIRST(&t->reading));
	/* connections it sent on: their messages and boosts were its */
	for (struct uconn *c = LIST_FIRST(&s->conn_list), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->sender == t)
			conn_end(s, c);
	}
	if (t->task) {
		imp_task_exit(t->task);
		imp_task_unref(t->task);
	}
	if (t->actor.process)
		process_put(s->b, t->actor.process);
	user_put(s->b, t->user);
	s->k.sender(s->k.ctx, (uint32_t)t->tgid, false);
	s->k.track(s->k.ctx, (uint32_t)t->tgid, false);
	tdelete(t, &s->tasks, cmp_u64);
	LIST_REMOVE(t, link);
	s->n_tasks--;
	if (t->pidfd >= 0)
		close(t->pidfd);
	free(t);
}

/* The process tgid that started at start (clock ticks since boot), made
 * on first use; NULL when it is gone (or its pid names another process
 * now) or beyond the bound. */
static struct utask *task_get_ticks(struct unix_source *s, uint32_t tgid, uint64_t start)
{
	struct utask *t = task_find(s, tgid);
	int pidfd;

	if (t && t->start == start)
		return t;
	if (t)
		task_free(s, t); /* its exit was not heard: that pid is another process now */
	if (!tgid || s->n_tasks >= UNIX_MAX_TASKS)
		return NULL;
	if ((pidfd = (int)syscall(SYS_pidfd_open, (pid_t)tgid, 0)) < 0)
		return NULL;
	if (!(t = calloc(1, sizeof(*t))))
		goto fail;
	t->tgid = tgid;
	t->start = start;
	t->pidfd = pidfd;
	LIST_INIT(&t->reading);
	if (process_ident(pidfd, &t->who) < 0 || t->who.pid != (pid_t)tgid || start_ticks(pidfd, (pid_t)tgid) != start)
		goto fail;
	if (user_get(s->b, t->who.uid, &t->user) < 0)
		goto fail;
	t->actor.pid = t->who.pid;
	t->actor.source = "unix";
	t->actor.uid = t->who.uid;
	if (imp_task_create(s->b->dom, t->who.pid, IMP_TASK_LIVE_DONOR, &t->task) < 0) {
		user_put(s->b, t->user);
		goto fail;
	}
	imp_task_set_userdata(t->task, &t->actor);
	if (!tsearch(t, &s->tasks, cmp_u64)) {
		imp_task_exit(t->task);
		imp_task_unref(t->task);
		user_put(s->b, t->user);
		goto fail;
	}
	LIST_INSERT_HEAD(&s->task_list, t, link);
	s->n_tasks++;
	s->k.track(s->k.ctx, tgid, true);
	return t;
fail:
	free(t);
	close(pidfd);
	return NULL;
}

/* The same, start given as the kernel's start_boottime (ns). */
static struct utask *task_get(struct unix_source *s, uint32_t tgid, uint64_t start_ns)
{
	return task_get_ticks(s, tgid, ns_to_ticks(s, start_ns));
}

/* t gives importance from now on (donor rules, impctl donor). */
static void task_donate(struct utask *t, bool on)
{
	if (t->donor == on)
		return;
	t->donor = on;
	imp_task_set_live_donor(t->task, on);
}

/* t accepts boosts from now on: a receiver under the backend.  0 or -errno. */
static int task_accept(struct unix_source *s, struct utask *t)
{
	int e;

	if (t->receiver)
		return 0;
	if ((e = imp_task_mark_receiver(t->task, true)) < 0)
		return e;
	if (!t->actor.process && (e = process_get(s->b, t->pidfd, &t->who, &t->actor.process)) < 0) {
		imp_task_mark_receiver(t->task, false);
		return e;
	}
	t->receiver = true;
	return 0;
}

static void task_held(struct unix_source *s, struct utask *t, int delta)
{
	t->held += (unsigned)delta;
	if (t->held == (delta > 0 ? 1u : 0u) && !t->live && !t->donor)
		s->k.sender(s->k.ctx, (uint32_t)t->tgid, delta > 0);
}

/* ------------------------------------------------------------------ */
/* receivers                                                            */
/* ------------------------------------------------------------------ */

static bool path_accepted(const struct unix_config *u, const char *path)
{
	for (size_t i = 0; i < u->n_paths; i++)
		if (fnmatch(u->paths[i], path, 0) == 0)
			return true;
	return false;
}

/* Whether reader t of a connection to path accepts boosts. */
static bool accepts(struct unix_source *s, struct utask *t, const char *path)
{
	const struct unix_config *u = &s->b->cfg.unix_sockets;

	/* the daemon's own sockets are its business, not a request's */
	if (t->pidfd < 0 || t->who.pid == getpid() || process_alive(t->pidfd) < 0)
		return false;
	if (path[0] && path_accepted(u, path))
		return true;
	return donor_match(&u->receivers, t->pidfd, &t->who);
}

/* ------------------------------------------------------------------ */
/* connections                                                          */
/* ------------------------------------------------------------------ */

static struct uconn *conn_find(struct unix_source *s, uint64_t end)
{
	void *found = tfind(&end, &s->conns, cmp_u64);

	return found ? *(struct uconn **)found : NULL;
}

static void msg_drop(struct unix_source *s, struct uconn *c)
{
	if (!c->msg)
		return;
	imp_msg_destroy(c->msg);
	imp_msg_unref(c->msg);
	c->msg = NULL;
	imp_voucher_release(c->sent_with);
	c->sent_with = NULL;
	user_uncharge(s->b, c->sender->user, USAGE_INFLIGHT, 1);
}

/* The reader is done with what it read: its boost from it goes. */
static void held_drop(struct unix_source *s, struct uconn *c)
{
	if (!c->held)
		return;
	imp_voucher_release(c->held);
	c->held = NULL;
	task_held(s, c->reader, -1);
}

static void conn_idle_deadline(struct unix_source *s, struct uconn *c, uint64_t now)
{
	c->deadline = now + (uint64_t)s->b->cfg.unix_sockets.answer_timeout_ms * 1000;
}

static void conn_end(struct unix_source *s, struct uconn *c)
{
	msg_drop(s, c);
	held_drop(s, c);
	if (c->port) {
		imp_port_destroy(c->port);
		imp_port_unref(c->port);
	}
	s->k.unwatch(s->k.ctx, c->end);
	tdelete(c, &s->conns, cmp_u64);
	if (c->reader)
		LIST_REMOVE(c, reader_link);
	LIST_REMOVE(c, link);
	s->n_conns--;
	free(c);
}

/* The port of c on reader t (the one there was goes, with its message). */
static int conn_port(struct unix_source *s, struct uconn *c, struct utask *t)
{
	imp_port *port;
	int e;

	if ((e = task_accept(s, t)) < 0 || (e = imp_port_create(t->task, true, &port)) < 0)
		return e;
	msg_drop(s, c);
	held_drop(s, c);
	if (c->port) {
		imp_port_destroy(c->port);
		imp_port_unref(c->port);
		LIST_REMOVE(c, reader_link);
	}
	c->port = port;
	c->reader = t;
	LIST_INSERT_HEAD(&t->reading, c, reader_link);
	return 0;
}

/* The peer's address of send event ev, as text: the path; '@' and the
 * name up to its first NUL for an abstract one; "" for none. */
static void event_path(const struct unix_event *ev, char path[UNIX_PATH_MAX + 1])
{
	size_t n = ev->path_len < UNIX_PATH_MAX ? ev->path_len : UNIX_PATH_MAX;

	memcpy(path, ev->path, n);
	path[n] = '\0';
	if (n > 1 && !path[0])
		path[0] = '@';
}

static struct uconn *conn_new(struct unix_source *s, const struct unix_event *ev, struct utask *reader)
{
	struct uconn *c;

	if (s->n_conns >= UNIX_MAX_CONNS || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->end = ev->end;
	event_path(ev, c->path);
	LIST_INSERT_HEAD(&s->conn_list, c, link);
	if (!tsearch(c, &s->conns, cmp_u64)) {
		LIST_REMOVE(c, link);
		free(c);
		return NULL;
	}
	s->n_conns++;
	if (reader && conn_port(s, c, reader) < 0) {
		tdelete(c, &s->conns, cmp_u64);
		LIST_REMOVE(c, link);
		s->n_conns--;
		free(c);
		return NULL;
	}
	return c;
}

/* The voucher t's sends carry: the last one it holds as a reader. */
static imp_voucher *task_voucher(struct utask *t)
{
	struct uconn *c;

	LIST_FOREACH(c, &t->reading, reader_link)
		if (c->held)
			return c->held;
	return NULL;
}

/* sender sends on c: a message queued on c's port, from now until read.
 * A connection whose reader is not known yet (a socketpair, whose peer the
 * kernel records as the process that made it) keeps the sender until the
 * first read says who reads. */
static void conn_send(struct unix_source *s, struct uconn *c, struct utask *sender, uint64_t now)
{
	imp_voucher *v = task_voucher(sender);

	if (!c->reader) {
		c->sender = sender;
		c->peer = sender->who.pid;
		conn_idle_deadline(s, c, now);
		return;
	}
	if (c->msg || sender == c->reader || user_charge(s->b, sender->user, USAGE_INFLIGHT, 1) < 0)
		return;
	if (imp_msg_send(sender->task, c->port, v, 0, &c->msg) < 0) {
		c->msg = NULL;
		user_uncharge(s->b, sender->user, USAGE_INFLIGHT, 1);
		return;
	}
	held_drop(s, c); /* a new request: the last one is over */
	c->sender = sender;
	c->sent_with = imp_voucher_ref(v);
	c->peer = sender->who.pid;
	s->messages++;
	conn_idle_deadline(s, c, now);
}

/* c's reader read its message: the boost becomes the reader's voucher. */
static void conn_receive(struct unix_source *s, struct uconn *c)
{
	imp_voucher *v = NULL;

	if (!c->msg || imp_msg_receive(c->msg, IMP_RECV_VOUCHER, &v) < 0)
		return;
	imp_msg_unref(c->msg);
	c->msg = NULL;
	imp_voucher_release(c->sent_with);
	c->sent_with = NULL;
	user_uncharge(s->b, c->sender->user, USAGE_INFLIGHT, 1);
	held_drop(s, c);
	c->held = v; /* NULL when nothing was raised: then nothing is held */
	if (v)
		task_held(s, c->reader, 1);
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ */
/* events                                                               */
/* ------------------------------------------------------------------ */

static void on_send(struct unix_source *s, const struct unix_event *ev)
{
	struct utask *sender, *reader;
	struct uconn *c = conn_find(s, ev->end);
	uint64_t now = now_usec();
	bool by_rule = ev->by & (UNIX_BY_UID | UNIX_BY_EXE | UNIX_BY_CGROUP);

	if ((pid_t)ev->tgid == getpid() || !(sender = task_get(s, ev->tgid, ev->start)))
		goto unwatch;
	/* the kernel judged the sender at the send: by a donor rule, or as a
	 * process we let through (a live donor, a boosted reader) */
	if (by_rule && !sender->donor && process_in_our_namespaces(sender->pidfd, sender->who.pid) == 1)
		task_donate(sender, true);
	if (!sender->donor && !sender->live && !sender->held) {
		s->k.sender(s->k.ctx, (uint32_t)sender->tgid, false); /* let through on a read: not boosted */
		goto unwatch;
	}
	if (!c) {
		char path[UNIX_PATH_MAX + 1];

		event_path(ev, path);
		if ((pid_t)ev->peer_tgid == getpid())
			goto refuse;
		/* The kernel recorded who made the listening socket (or the
		 * pair): most often the reader, but a socket handed down (a
		 * pre-forking server, socket activation) is read by another
		 * process.  A guess that does not accept boosts, or none, waits
		 * for the first read to say who reads; that read refuses the end
		 * if its reader does not accept them either. */
		reader = task_get(s, ev->peer_tgid, ev->peer_start);
		if (!reader || reader == sender || !accepts(s, reader, path))
			reader = NULL;
		if (!(c = conn_new(s, ev, reader)))
			goto unwatch;
	}
	/* The end's last reader (the kernel records every read) is a better
	 * guess than who listened; when the data was read before this event
	 * (the reader took it on another CPU before the send was seen), the
	 * kernel did not report that read, and the reader it names read it. */
	reader = ev->reader_tgid && (pid_t)ev->reader_tgid != getpid() ? task_get(s, ev->reader_tgid, ev->reader_start)
									 : NULL;
	if (reader && reader != c->reader && reader != sender && accepts(s, reader, c->path))
		conn_port(s, c, reader);
	if (ev->read && reader && reader != c->reader) {
		/* read by a process that does not accept boosts */
		if (!c->reader) {
			s->refused++;
			s->k.refuse(s->k.ctx, c->end);
		}
		conn_end(s, c);
		return;
	}
	conn_send(s, c, sender, now);
	if (ev->read && reader && c->msg) {
		conn_receive(s, c);
		c->named = true;
	}
	return;
refuse:
	s->refused++;
	s->k.refuse(s->k.ctx, ev->end);
unwatch:
	if (!c)
		s->k.unwatch(s->k.ctx, ev->end);
}

static void on_recv_end(struct unix_source *s, const struct unix_event *ev);

/* The kernel lets a reader's sends through from its read on; unless it
 * holds a boost now (or donates anyway), that is taken back. */
static void on_recv(struct unix_source *s, const struct unix_event *ev)
{
	struct utask *t;

	on_recv_end(s, ev);
	if (ev->ret > 0 && (pid_t)ev->tgid != getpid()) {
		t = task_find(s, ev->tgid);
		if (!t || (!t->held && !t->live && !t->donor))
			s->k.sender(s->k.ctx, ev->tgid, false);
	}
}

static void on_recv_end(struct unix_source *s, const struct unix_event *ev)
{
	struct uconn *c = conn_find(s, ev->end);
	struct utask *t;

	if (!c) {
		s->k.unwatch(s->k.ctx, ev->end);
		return;
	}
	if (ev->ret == 0 || ev->ret == -ECONNRESET || ev->ret == -EPIPE) {
		conn_end(s, c); /* the other end is closed */
		return;
	}
	if (ev->ret < 0) {
		if (ev->ret == -EAGAIN && !c->msg)
			held_drop(s, c); /* it waits again and nothing is queued */
		return;
	}
	if (c->named && !c->msg) {
		/* the read of the message a send event said was read, by whom
		 * it named or by another process: that one holds it */
		c->named = false;
		if (!c->held || !c->sender || !(t = task_get(s, ev->tgid, ev->start)) || t == c->reader ||
		    t == c->sender || !accepts(s, t, c->path) || conn_port(s, c, t) < 0)
			return;
		conn_send(s, c, c->sender, now_usec());
		conn_receive(s, c);
		return;
	}
	c->named = false;
	if (!c->msg && (c->reader || !c->sender))
		return;
	if (!(t = task_get(s, ev->tgid, ev->start))) {
		if (s->b->cfg.verbose)
			fprintf(stderr, "importanced: unix: the reader pid %u of %s is not known (gone, or not the process "
				"that started then): not boosted\n", ev->tgid, c->path[0] ? c->path : "(unnamed)");
		return;
	}
	if (t != c->reader) {
		/* another process reads this end (a pre-forked server, a
		 * socketpair's other side): the message goes to its port
		 * instead, when it accepts boosts */
		struct utask *sender = c->sender;

		if (!sender || t == sender || !accepts(s, t, c->path) || conn_port(s, c, t) < 0) {
			if (!c->reader) {
				s->refused++;
				s->k.refuse(s->k.ctx, c->end);
			}
			conn_end(s, c);
			return;
		}
		conn_send(s, c, sender, now_usec());
		if (!c->msg)
			return;
	}
	conn_receive(s, c);
}

static void on_answer(struct unix_source *s, const struct unix_event *ev)
{
	struct uconn *c = conn_find(s, ev->end);

	if (!c) {
		s->k.unwatch(s->k.ctx, ev->end);
		return;
	}
	held_drop(s, c);
	/* answered with nothing left queued: the message was read by a read
	 * the kernel does not report (splice()) and is over with its answer */
	if (ev->read && c->msg)
		msg_drop(s, c);
}

static void on_exit_event(struct unix_source *s, const struct unix_event *ev)
{
	struct utask *t = task_find(s, ev->tgid);

	if (t && t->start == ns_to_ticks(s, ev->start))
		task_free(s, t);
}

void unix_handle(struct unix_source *s, const struct unix_event *ev)
{
	switch (ev->kind) {
	case UNIX_EV_SEND:
		on_send(s, ev);
		break;
	case UNIX_EV_RECV:
		on_recv(s, ev);
		break;
	case UNIX_EV_ANSWER:
		on_answer(s, ev);
		break;
	case UNIX_EV_EXIT:
		on_exit_event(s, ev);
		break;
	default:
		break;
	}
}

/* Whether the send evs[i] is answered within the next UNIX_LOOKAHEAD
 * events, before another send to the same end. */
static bool answered_in(const struct unix_event *evs, size_t i, size_t n)
{
	size_t last = n - i > UNIX_LOOKAHEAD ? i + UNIX_LOOKAHEAD : n;

	for (size_t j = i + 1; j < last; j++) {
		if (evs[j].end != evs[i].end)
			continue;
		if (evs[j].kind == UNIX_EV_ANSWER)
			return true;
		if (evs[j].kind == UNIX_EV_SEND)
			return false;
	}
	return false;
}

size_t unix_handle_batch(struct unix_source *s, const struct unix_event *evs, size_t n, uint64_t young_after)
{
	for (size_t i = 0; i < n; i++) {
		if (evs[i].kind == UNIX_EV_SEND && answered_in(evs, i, n)) {
			s->served++;
			continue;
		}
		if (evs[i].kind == UNIX_EV_SEND && evs[i].time > young_after)
			return i;
		unix_handle(s, &evs[i]);
	}
	return n;
}

void unix_lost(struct unix_source *s, uint64_t count)
{
	struct utask *t, *next;

	if (!count)
		return;
	s->lost += count;
	fprintf(stderr,
		"importanced: unix: %llu events lost (ring buffer full; %llu in all): every Unix-socket boost dropped, "
		"processes re-checked\n",
		(unsigned long long)count, (unsigned long long)s->lost);
	while (!LIST_EMPTY(&s->conn_list))
		conn_end(s, LIST_FIRST(&s->conn_list));
	s->k.unwatch_all(s->k.ctx);
	for (t = LIST_FIRST(&s->task_list); t; t = next) {
		next = LIST_NEXT(t, link);
		if (process_alive(t->pidfd) < 0)
			task_free(s, t);
	}
}

uint64_t unix_expire(struct unix_source *s, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (struct uconn *c = LIST_FIRST(&s->conn_list), *n; c; c = n) {
		n = LIST_NEXT(c, link);
		if (c->deadline && c->deadline <= now) {
			if (s->b->cfg.verbose && (c->msg || c->held))
				fprintf(stderr, "importanced: unix: pid %d did not answer on %s within %u ms: unboosted\n",
					(int)c->reader->who.pid, c->path[0] ? c->path : "(unnamed)",
					s->b->cfg.unix_sockets.answer_timeout_ms);
			conn_end(s, c);
		} else if (c->deadline && c->deadline < next)
			next = c->deadline;
	}
	return next;
}

void unix_source_reload(struct unix_source *s)
{
	for (struct uconn *c = LIST_FIRST(&s->conn_list), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->reader && !accepts(s, c->reader, c->path))
			conn_end(s, c);
	}
	for (struct utask *t = LIST_FIRST(&s->task_list); t; t = LIST_NEXT(t, link))
		if (t->donor && !t->live && !donor_match(&s->b->cfg.donors, t->pidfd, &t->who))
			task_donate(t, false);
}

int unix_source_set_donor(struct unix_source *s, pid_t pid, bool on)
{
	struct utask *t = task_find(s, (uint32_t)pid);

	if (!t || process_alive(t->pidfd) < 0) {
		/* not seen yet: known from now on, by its start time now */
		int fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
		uint64_t start = fd >= 0 ? start_ticks(fd, pid) : 0;

		if (fd >= 0)
			close(fd);
		if (!on || !start || !(t = task_get_ticks(s, (uint32_t)pid, start)))
			return -ESRCH;
	}
	t->live = on;
	task_donate(t, on);
	s->k.sender(s->k.ctx, (uint32_t)t->tgid, on || t->held);
	return 0;
}

int unix_source_new(struct broker *b, const struct unix_kernel *kernel, struct unix_source **out)
{
	struct unix_source *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->b = b;
	s->k = *kernel;
	s->ticks = sysconf(_SC_CLK_TCK);
	if (s->ticks <= 0)
		s->ticks = 100;
	LIST_INIT(&s->task_list);
	LIST_INIT(&s->conn_list);
	*out = s;
	return 0;
}

void unix_source_free(struct unix_source *s)
{
	if (!s)
		return;
	while (!LIST_EMPTY(&s->conn_list))
		conn_end(s, LIST_FIRST(&s->conn_list));
	while (!LIST_EMPTY(&s->task_list))
		task_free(s, LIST_FIRST(&s->task_list));
	free(s);
}

void unix_source_counts(const struct unix_source *s, struct unix_counts *out)
{
	const struct uconn *c;

	memset(out, 0, sizeof(*out));
	out->tasks = s->n_tasks;
	out->conns = s->n_conns;
	LIST_FOREACH(c, &s->conn_list, link) {
		out->queued += c->msg != NULL;
		out->held += c->held != NULL;
	}
	out->lost = s->lost;
	out->messages = s->messages;
	out->refused = s->refused;
	out->served = s->served;
}

void unix_source_foreach(const struct unix_source *s, unix_task_fn *fn, void *ctx)
{
	const struct utask *t;

	LIST_FOREACH(t, &s->task_list, link) {
		const struct uconn *c = LIST_FIRST(&t->reading);

		fn(ctx, &t->actor, t->task, t->receiver, c ? c->path : "", c ? c->peer : 0);
	}
}

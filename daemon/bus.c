/* bus (bus.h): a watched bus's connections, names and calls, on the engine. */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "bus.h"
#include "donor.h"
#include "foreground.h"
#include "process.h"
#include "user.h"

#define DRIVER "org.freedesktop.DBus"
/* the longest bus name the specification allows */
#define MAX_NAME 255
/* the share bucket of what belongs to no known uid yet */
#define NOBODY ((uid_t)-1)

struct bus_call;

enum conn_state {
	CONN_SEEN,      /* announced by the bus; nobody asked who it is yet */
	CONN_RESOLVING, /* asked */
	CONN_KNOWN,     /* its identity is believed */
	CONN_OPAQUE,    /* there, but its process cannot be told or is not the bus's to tell */
};

/* A connection on the bus, by unique name, and the process behind it. */
struct bus_conn {
	char *unique; /* first: the key of bus.conns */
	struct bus *bus;
	enum conn_state state;
	uint64_t first_seen; /* CLOCK_BOOTTIME usec: its appearance, or our attach */
	struct actor actor;
	struct ident who;
	int pidfd;
	struct user *user;
	/* whose budget of bus connections it is counted in (USAGE_BUS_CONNECTIONS;
	 * NULL: only the global one) */
	struct user *payer;
	imp_task *task; /* donors and receivers; NULL: it can neither boost nor be boosted */
	imp_port *port; /* receivers: where calls to it queue */
	bool donor, receiver;
	bool live; /* a donor that is a live donor now (foreground.h) */
	bool accept; /* owns a name that dbus-receiver-name accepts (decided once known) */
	unsigned undecided; /* of calls_out */
	LIST_HEAD(, bus_call) calls_out, calls_in;
	LIST_ENTRY(bus_conn) link;
};

/* A well-known name and its owner now ("" while asked). */
struct bus_name {
	char *name; /* first: the key of bus.names */
	char owner[MAX_NAME + 1];
	bool resolving;
	uid_t share; /* the bucket it is counted in */
	LIST_HEAD(, bus_call) waiting; /* calls to it, until its owner is known */
};

/* A method call waiting for its reply. */
struct bus_call {
	struct bus_conn *caller; /* first two: the key of bus.calls */
	uint64_t serial;
	struct bus_conn *callee; /* NULL while via's owner is asked */
	struct bus_name *via;    /* the name it was addressed to, while asked */
	bool accepted_name;      /* addressed to a name dbus-receiver-name accepts */
	imp_msg *msg;            /* NULL: undecided */
	uid_t share;             /* the bucket it is counted in */
	uint64_t deadline;       /* CLOCK_MONOTONIC, usec */
	LIST_ENTRY(bus_call) out_link, in_link, wait_link;
	TAILQ_ENTRY(bus_call) deadline_link;
};

/* One uid's part of the call and name tables. */
struct bus_share {
	uid_t uid; /* first: the key of bus.shares */
	size_t calls, names;
};

struct bus {
	struct broker *b;
	struct bus *next;
	char where[IMPD_RULE_LEN];
	const struct bus_ops *ops;
	void *ctx;
	uid_t owner;
	uint64_t attached_at; /* CLOCK_BOOTTIME usec */
	sd_event_source *deadline_src;
	void *conns, *calls, *names, *shares; /* tsearch trees */
	size_t n_conns, n_calls, n_names, n_undecided, n_resolving, n_pidfds;
	LIST_HEAD(, bus_conn) conn_list;
	TAILQ_HEAD(bus_call_queue, bus_call) by_deadline;
};

/* ------------------------------------------------------------------ */
/* keys, names and shares                                               */
/* ------------------------------------------------------------------ */

static int cmp_string_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_call(const void *a, const void *b)
{
	const struct bus_call *x = a, *y = b;

	if (x->caller != y->caller)
		return x->caller < y->caller ? -1 : 1;
	return x->serial < y->serial ? -1 : x->serial > y->serial;
}

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

static bool valid_name(const char *s)
{
	return s && s[0] && strnlen(s, MAX_NAME + 1) <= MAX_NAME;
}

static bool valid_unique(const char *s)
{
	return valid_name(s) && s[0] == ':';
}

static bool is_driver(const char *s)
{
	return s && !strcmp(s, DRIVER);
}

/* pattern: a name, or a prefix ending in '*' */
static bool name_matches(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, name, n - 1);
	return !strcmp(pattern, name);
}

static bool no_receiver_rules(const struct dbus_config *d)
{
	return !d->receivers.n_uids && !d->receivers.n_exes && !d->receivers.n_cgroups && !d->n_receiver_names;
}

static bool name_accepted(const struct dbus_config *d, const char *name)
{
	for (size_t i = 0; i < d->n_receiver_names; i++)
		if (name_matches(d->receiver_names[i], name))
			return true;
	return false;
}

static size_t share_of(unsigned table)
{
	size_t s = table / BUS_SHARE_DIVISOR;

	return s ? s : 1;
}

static struct bus_share *share_find(struct bus *bus, uid_t uid)
{
	void *found = tfind(&uid, &bus->shares, cmp_uid);

	return found ? *(struct bus_share **)found : NULL;
}

/* Counts one call (calls) or name (!calls) for uid within its share: 0,
 * or -EDQUOT. */
static int share_take(struct bus *bus, uid_t uid, bool calls)
{
	struct bus_share *s = share_find(bus, uid);
	const struct dbus_config *d = &bus->b->cfg.dbus;

	if (s && (calls ? s->calls >= share_of(d->max_calls) : s->names >= share_of(d->max_names)))
		return -EDQUOT;
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))))
			return -ENOMEM;
		s->uid = uid;
		if (!tsearch(s, &bus->shares, cmp_uid)) {
			free(s);
			return -ENOMEM;
		}
	}
	if (calls)
		s->calls++;
	else
		s->names++;
	return 0;
}

static void share_give(struct bus *bus, uid_t uid, bool calls)
{
	struct bus_share *s = share_find(bus, uid);

	if (!s)
		return;
	if (calls)
		s->calls--;
	else
		s->names--;
	if (!s->calls && !s->names) {
		tdelete(s, &bus->shares, cmp_uid);
		free(s);
	}
}

/* ------------------------------------------------------------------ */
/* calls                                                                */
/* ------------------------------------------------------------------ */

/* The deadline timer is armed at or before the first call's deadline, or
 * off when no call waits.  It is not moved when calls end: it fires, finds
 * nothing due and is set again, which costs less than setting it on every
 * call. */
static void deadline_rearm(struct bus *bus)
{
	struct bus_call *first = TAILQ_FIRST(&bus->by_deadline);

	if (!bus->deadline_src)
		return;
	if (!first) {
		sd_event_source_set_enabled(bus->deadline_src, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(bus->deadline_src, first->deadline);
	sd_event_source_set_enabled(bus->deadline_src, SD_EVENT_ONESHOT);
}

/* The call is over: its message goes, and with it the boost it gave. */
static void call_end(struct bus *bus, struct bus_call *c)
{
	tdelete(c, &bus->calls, cmp_call);
	bus->n_calls--;
	LIST_REMOVE(c, out_link);
	if (c->callee)
		LIST_REMOVE(c, in_link);
	if (c->via)
		LIST_REMOVE(c, wait_link);
	TAILQ_REMOVE(&bus->by_deadline, c, deadline_link);
	if (c->msg) {
		imp_msg_destroy(c->msg);
		imp_msg_unref(c->msg);
		user_uncharge(bus->b, c->caller->user, USAGE_INFLIGHT, 1);
	} else {
		c->caller->undecided--;
		bus->n_undecided--;
	}
	share_give(bus, c->share, true);
	free(c);
}

static struct bus_call *call_find(struct bus *bus, struct bus_conn *caller, uint64_t serial)
{
	struct bus_call key = { .caller = caller, .serial = serial };
	void *found = tfind(&key, &bus->calls, cmp_call);

	return found ? *(struct bus_call **)found : NULL;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bus *bus = userdata;
	struct bus_call *c;

	(void)s;
	sd_event_now(bus->b->ev, CLOCK_MONOTONIC, &usec);
	while ((c = TAILQ_FIRST(&bus->by_deadline)) && c->deadline <= usec)
		call_end(bus, c);
	deadline_rearm(bus);
	return 0;
}

/* Queues c by its deadline: from the end, where a new call belongs unless
 * the timeout was shortened by a reload. */
static void deadline_insert(struct bus *bus, struct bus_call *c)
{
	struct bus_call *x = TAILQ_LAST(&bus->by_deadline, bus_call_queue);
	int on = SD_EVENT_OFF;
	uint64_t armed = 0;

	while (x && x->deadline > c->deadline)
		x = TAILQ_PREV(x, bus_call_queue, deadline_link);
	if (x)
		TAILQ_INSERT_AFTER(&bus->by_deadline, x, c, deadline_link);
	else
		TAILQ_INSERT_HEAD(&bus->by_deadline, c, deadline_link);
	if (!bus->deadline_src) {
		if (sd_event_add_time(bus->b->ev, &bus->deadline_src, CLOCK_MONOTONIC, c->deadline, 10000, on_deadline,
				      bus) < 0)
			bus->deadline_src = NULL; /* the call still ends with its reply or a disconnect */
		return;
	}
	sd_event_source_get_enabled(bus->deadline_src, &on);
	sd_event_source_get_time(bus->deadline_src, &armed);
	if (on == SD_EVENT_OFF || armed > c->deadline)
		deadline_rearm(bus);
}

static int conn_accept(struct bus *bus, struct bus_conn *x);

/* An undecided call whose ends may both be known now: it becomes an
 * engine message when the callee accepts boosts and the caller has a task,
 * else it ends (it boosts nothing).  Charged to the caller's uid. */
static void call_decide(struct bus *bus, struct bus_call *c)
{
	struct broker *b = bus->b;
	struct bus_conn *caller = c->caller, *callee = c->callee;

	if (c->msg || !callee || caller->state < CONN_KNOWN || callee->state < CONN_KNOWN)
		return;
	if (!callee->receiver && c->accepted_name)
		conn_accept(bus, callee);
	if (!callee->receiver || !caller->task)
		goto end;
	/* from the bucket of the undecided to the caller's own */
	if (share_take(bus, caller->who.uid, true) < 0)
		goto end;
	share_give(bus, c->share, true);
	c->share = caller->who.uid;
	if (user_charge(b, caller->user, USAGE_INFLIGHT, 1) < 0)
		goto end;
	if (imp_msg_send(caller->task, callee->port, NULL, 0, &c->msg) < 0) {
		c->msg = NULL;
		user_uncharge(b, caller->user, USAGE_INFLIGHT, 1);
		goto end;
	}
	caller->undecided--;
	bus->n_undecided--;
	return;
end:
	call_end(bus, c);
}

/* ------------------------------------------------------------------ */
/* connections                                                          */
/* ------------------------------------------------------------------ */

static struct bus_conn *conn_find(struct bus *bus, const char *unique)
{
	void *found = valid_name(unique) ? tfind(&unique, &bus->conns, cmp_string_key) : NULL;

	return found ? *(struct bus_conn **)found : NULL;
}

static void conn_free(struct bus *bus, struct bus_conn *x)
{
	while (!LIST_EMPTY(&x->calls_out))
		call_end(bus, LIST_FIRST(&x->calls_out));
	while (!LIST_EMPTY(&x->calls_in))
		call_end(bus, LIST_FIRST(&x->calls_in));
	if (x->port) {
		imp_port_destroy(x->port);
		imp_port_unref(x->port);
	}
	if (x->task) {
		imp_task_exit(x->task);
		imp_task_unref(x->task);
	}
	process_put(bus->b, x->actor.process);
	user_put(bus->b, x->user);
	user_uncharge(bus->b, x->payer, USAGE_BUS_CONNECTIONS, 1);
	user_put(bus->b, x->payer);
	tdelete(x, &bus->conns, cmp_string_key);
	LIST_REMOVE(x, link);
	bus->n_conns--;
	if (x->state == CONN_RESOLVING)
		bus->n_resolving--;
	if (x->pidfd >= 0) {
		close(x->pidfd);
		bus->n_pidfds--;
	}
	free(x->unique);
	free(x);
}

static int conn_task(struct broker *b, struct bus_conn *x, unsigned flags)
{
	int e = imp_task_create(b->dom, x->actor.pid,
				IMP_TASK_LIVE_DONOR | (x->live ? IMP_TASK_DONOR : 0) | flags, &x->task);

	if (e < 0)
		return e;
	imp_task_set_userdata(x->task, &x->actor);
	return 0;
}

/* x accepts boosts from now on: a receiver task, its process under the
 * backend and the port its calls queue on.  0 or -errno. */
static int conn_accept(struct bus *bus, struct bus_conn *x)
{
	struct broker *b = bus->b;
	int e;

	if (x->receiver)
		return 0;
	if (x->state != CONN_KNOWN)
		return -ESRCH; /* its process is not one we may boost */
	if (!x->task)
		e = conn_task(b, x, IMP_TASK_RECEIVER);
	else
		e = imp_task_mark_receiver(x->task, true);
	if (e < 0)
		return e;
	if (!x->actor.process && (e = process_get(b, x->pidfd, &x->who, &x->actor.process)) < 0)
		return e;
	if ((e = imp_port_create(x->task, true, &x->port)) < 0)
		return e;
	x->receiver = true;
	return 0;
}

/* Who pays for a connection the bus announces, before it is known: on a
 * user's bus that user (everything on it is theirs to answer for); on
 * root's, nobody yet (the global budget), until the bus says whose it is.
 * 0 or -errno; *out NULL or a reference. */
static int conn_payer(struct bus *bus, struct user **out)
{
	*out = NULL;
	if (bus->owner == 0 || bus->owner == NOBODY)
		return 0;
	return user_get(bus->b, bus->owner, out);
}

/* x is counted in to's budget from now on (to: a new reference, taken
 * over; NULL: the global one only).  0, or -EDQUOT when to's budget is
 * full: then x stays where it was and to's reference is dropped. */
static int conn_pay(struct bus *bus, struct bus_conn *x, struct user *to)
{
	struct broker *b = bus->b;
	int e;

	if (to == x->payer) {
		user_put(b, to);
		return 0;
	}
	user_uncharge(b, x->payer, USAGE_BUS_CONNECTIONS, 1);
	if ((e = user_charge(b, to, USAGE_BUS_CONNECTIONS, 1)) < 0) {
		user_charge(b, x->payer, USAGE_BUS_CONNECTIONS, 1); /* the room it just gave back */
		user_put(b, to);
		return e;
	}
	user_put(b, x->payer);
	x->payer = to;
	return 0;
}

/* A record of unique (not asked about yet), within the bus's bound and the
 * budget of its payer (conn_payer); NULL when there is no room.
 * first_seen: when the bus announced it, or for one it did not announce
 * while we watched, our attach (it was there before). */
static struct bus_conn *conn_new(struct bus *bus, const char *unique, uint64_t first_seen)
{
	struct bus_conn *x;
	struct user *payer;

	if (!valid_unique(unique) || bus->n_conns >= bus->b->cfg.dbus.max_connections)
		return NULL;
	if (conn_payer(bus, &payer) < 0)
		return NULL;
	if (user_charge(bus->b, payer, USAGE_BUS_CONNECTIONS, 1) < 0) {
		user_put(bus->b, payer);
		return NULL;
	}
	if (!(x = calloc(1, sizeof(*x))) || !(x->unique = strdup(unique))) {
		free(x);
		user_uncharge(bus->b, payer, USAGE_BUS_CONNECTIONS, 1);
		user_put(bus->b, payer);
		return NULL;
	}
	x->payer = payer;
	x->bus = bus;
	x->pidfd = -1;
	x->state = CONN_SEEN;
	x->first_seen = first_seen;
	LIST_INIT(&x->calls_out);
	LIST_INIT(&x->calls_in);
	if (!tsearch(x, &bus->conns, cmp_string_key)) {
		user_uncharge(bus->b, payer, USAGE_BUS_CONNECTIONS, 1);
		user_put(bus->b, payer);
		free(x->unique);
		free(x);
		return NULL;
	}
	LIST_INSERT_HEAD(&bus->conn_list, x, link);
	bus->n_conns++;
	return x;
}

/* The connection of unique, asked about on first use; NULL when there is
 * no room or it cannot be asked about now (too many look-ups at once, the
 * feeder not connected).  Then a connection seen appearing stays seen, with
 * its first appearance, and is asked about the next time it matters; one
 * met only now is forgotten. */
static struct bus_conn *conn_get(struct bus *bus, const char *unique)
{
	struct bus_conn *x = conn_find(bus, unique);
	bool made = !x;

	if (!x && !(x = conn_new(bus, unique, bus->attached_at)))
		return NULL;
	if (x->state != CONN_SEEN)
		return x;
	x->state = CONN_RESOLVING;
	bus->n_resolving++;
	if (bus->ops->resolve(bus->ctx, x->unique) < 0) {
		if (made) {
			conn_free(bus, x);
		} else {
			x->state = CONN_SEEN;
			bus->n_resolving--;
		}
		return NULL;
	}
	return x;
}

/* The process's start, CLOCK_BOOTTIME usec (rounded down to a clock
 * tick), read through its pidfd.  0 or -errno. */
static int process_start(int pidfd, pid_t pid, uint64_t *usec)
{
	char buf[1024], *p;
	unsigned long long ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);
	int n = process_read(pidfd, pid, "stat", buf, sizeof(buf));

	if (n < 0)
		return n;
	if (n == 0 || hz <= 0)
		return -EIO;
	/* the name may hold anything: the fields after it follow its last ')' */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &ticks) != 1)
		return -EIO;
	*usec = ticks * (1000000ULL / (unsigned long long)hz);
	return 0;
}

/* Whether the bus's word about x's process may be believed: a pidfd of it
 * in *pidfd (ours) and what the kernel says in *who, or -errno. */
static int identity_check(struct bus *bus, struct bus_conn *x, const struct bus_identity *id, int *pidfd,
			  struct ident *who)
{
	uint64_t start;
	int fd = id->pidfd, e;

	if (bus->owner == NOBODY)
		return -EPERM;
	if (fd < 0) {
		if (id->pid <= 0)
			return -ESRCH;
		if ((fd = (int)syscall(SYS_pidfd_open, id->pid, 0)) < 0)
			return -errno;
	}
	if ((e = process_ident(fd, who)) < 0)
		goto fail;
	e = -ESRCH;
	if (id->pid > 0 && who->pid != id->pid)
		goto fail;
	if (id->pidfd < 0) {
		/* a pid alone: the process now on it must have the uid the bus
		 * recorded and have been there when the connection appeared */
		if (who->uid != id->uid || process_start(fd, who->pid, &start) < 0 || start > x->first_seen)
			goto fail;
	}
	/* a bus not run by root is believed only about its owner's processes */
	e = -EPERM;
	if (bus->owner != 0 && (who->uid != bus->owner || id->uid != bus->owner))
		goto fail;
	*pidfd = fd;
	return 0;
fail:
	close(fd);
	return e;
}

/* ------------------------------------------------------------------ */
/* names                                                                */
/* ------------------------------------------------------------------ */

static struct bus_name *name_find(struct bus *bus, const char *name)
{
	void *found = valid_name(name) ? tfind(&name, &bus->names, cmp_string_key) : NULL;

	return found ? *(struct bus_name **)found : NULL;
}

static void name_forget(struct bus *bus, struct bus_name *n)
{
	while (!LIST_EMPTY(&n->waiting))
		call_end(bus, LIST_FIRST(&n->waiting));
	tdelete(n, &bus->names, cmp_string_key);
	bus->n_names--;
	share_give(bus, n->share, false);
	free(n->name);
	free(n);
}

/* The bucket a name owned by owner is counted in. */
static uid_t name_share(struct bus *bus, const char *owner)
{
	struct bus_conn *x = conn_find(bus, owner);

	return x && x->state == CONN_KNOWN ? x->who.uid : NOBODY;
}

/* A record of name, within the bounds; NULL when there is none. */
static struct bus_name *name_new(struct bus *bus, const char *name, uid_t share)
{
	struct bus_name *n;

	if (!valid_name(name) || name[0] == ':' || bus->n_names >= bus->b->cfg.dbus.max_names ||
	    share_take(bus, share, false) < 0)
		return NULL;
	if (!(n = calloc(1, sizeof(*n))) || !(n->name = strdup(name)))
		goto fail;
	n->share = share;
	LIST_INIT(&n->waiting);
	if (!tsearch(n, &bus->names, cmp_string_key))
		goto fail;
	bus->n_names++;
	return n;
fail:
	if (n)
		free(n->name);
	free(n);
	share_give(bus, share, false);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* events                                                               */
/* ------------------------------------------------------------------ */

void bus_conn_appeared(struct bus *bus, const char *unique, uint64_t now)
{
	if (!conn_find(bus, unique))
		conn_new(bus, unique, now);
}

void bus_conn_identity(struct bus *bus, const char *unique, const struct bus_identity *id)
{
	struct broker *b = bus->b;
	struct bus_conn *x = conn_find(bus, unique);
	struct bus_call *c, *next;
	struct user *payer = NULL;
	int fd = -1, e;

	if (!x || x->state != CONN_RESOLVING) {
		if (id->pidfd >= 0)
			close(id->pidfd);
		return;
	}
	bus->n_resolving--;
	x->state = CONN_OPAQUE;
	/* known, it is counted in its own uid's budget, pidfd and all (on a
	 * user's bus that is the owner's already) */
	if ((e = identity_check(bus, x, id, &fd, &x->who)) < 0 || (e = user_get(b, x->who.uid, &payer)) < 0 ||
	    (e = conn_pay(bus, x, payer)) < 0 || (e = user_get(b, x->who.uid, &x->user)) < 0) {
		if (fd >= 0)
			close(fd);
		if (b->cfg.verbose)
			fprintf(stderr, "importanced: dbus %s: %s (pid %d uid %u): %s: not boosted, boosts nothing\n",
				bus->where, unique, (int)id->pid, (unsigned)id->uid,
				e == -EDQUOT ? "its uid's bus connections are at max-user-bus-connections" : strerror(-e));
	} else {
		x->state = CONN_KNOWN;
		x->pidfd = fd;
		bus->n_pidfds++;
		x->actor.pid = x->who.pid;
		x->actor.source = "dbus";
		x->actor.uid = x->who.uid;
		/* Bytes on a bus socket do not say which program wrote them: a
		 * process may connect and then exec a setuid program, or hand the
		 * socket to a child.  Only a process whose uid is still the one it
		 * connected with can be a donor. */
		x->donor = id->uid == x->who.uid && donor_match(&b->cfg.donors, fd, &x->who);
		x->live = x->donor && foreground_live(b, fd, &x->who);
		if (x->accept || no_receiver_rules(&b->cfg.dbus) || donor_match(&b->cfg.dbus.receivers, fd, &x->who))
			conn_accept(bus, x); /* on failure it takes no boosts, and still may give them */
		else if (x->donor)
			conn_task(b, x, 0);
		if (!x->task)
			x->donor = false; /* no task to give boosts with */
		if (b->cfg.verbose)
			fprintf(stderr, "importanced: dbus %s: %s is pid %d uid %u%s%s\n", bus->where, unique,
				(int)x->who.pid, (unsigned)x->who.uid, x->donor ? " donor" : "",
				x->receiver ? " receiver" : "");
	}
	for (c = LIST_FIRST(&x->calls_out); c; c = next) {
		next = LIST_NEXT(c, out_link);
		call_decide(bus, c);
	}
	for (c = LIST_FIRST(&x->calls_in); c; c = next) {
		next = LIST_NEXT(c, in_link);
		call_decide(bus, c);
	}
}

void bus_conn_unknown(struct bus *bus, const char *unique, int error)
{
	struct bus_conn *x = conn_find(bus, unique);

	if (!x || x->state != CONN_RESOLVING)
		return;
	if (bus->b->cfg.verbose)
		fprintf(stderr, "importanced: dbus %s: %s: %s\n", bus->where, unique, strerror(-error));
	if (error == -ESRCH || error == -ENXIO) {
		conn_free(bus, x); /* gone */
		return;
	}
	/* not answered in time (a slow or stalled bus): seen again, with its
	 * first appearance, and asked about the next time it matters; anything
	 * else: there, but what it is cannot be told, so it stays without a
	 * task until it disconnects.  Either way its calls end. */
	bus->n_resolving--;
	x->state = error == -ETIMEDOUT ? CONN_SEEN : CONN_OPAQUE;
	while (!LIST_EMPTY(&x->calls_out))
		call_end(bus, LIST_FIRST(&x->calls_out));
	while (!LIST_EMPTY(&x->calls_in))
		call_end(bus, LIST_FIRST(&x->calls_in));
}

void bus_conn_gone(struct bus *bus, const char *unique)
{
	struct bus_conn *x = conn_find(bus, unique);

	if (x)
		conn_free(bus, x);
}

void bus_name_owner(struct bus *bus, const char *name, const char *owner)
{
	struct bus_name *n = name_find(bus, name);
	struct bus_conn *x;
	struct bus_call *c;

	if (!valid_name(name) || name[0] == ':')
		return;
	if (!valid_unique(owner)) {
		if (n)
			name_forget(bus, n); /* no owner, or one we cannot keep */
		return;
	}
	if (n && name_share(bus, owner) != NOBODY && n->share != name_share(bus, owner)) {
		LIST_HEAD(, bus_call) moved = LIST_HEAD_INITIALIZER(moved);

		/* counted in the new owner's bucket: made again, its waiting
		 * calls carried over */
		while ((c = LIST_FIRST(&n->waiting))) {
			LIST_REMOVE(c, wait_link);
			LIST_INSERT_HEAD(&moved, c, wait_link);
		}
		c = NULL;
		tdelete(n, &bus->names, cmp_string_key);
		bus->n_names--;
		share_give(bus, n->share, false);
		free(n->name);
		free(n);
		n = name_new(bus, name, name_share(bus, owner));
		while ((c = LIST_FIRST(&moved))) {
			LIST_REMOVE(c, wait_link);
			if (n) {
				LIST_INSERT_HEAD(&n->waiting, c, wait_link);
				c->via = n;
			} else {
				c->via = NULL;
				call_end(bus, c);
			}
		}
	} else if (!n) {
		/* a name nothing waits for is kept only when dbus-receiver-name
		 * accepts it (a call to another name asks who owns it) */
		if (!name_accepted(&bus->b->cfg.dbus, name))
			return;
		n = name_new(bus, name, name_share(bus, owner));
	}
	if (!n)
		return;
	snprintf(n->owner, sizeof(n->owner), "%s", owner);
	n->resolving = false;
	if (name_accepted(&bus->b->cfg.dbus, name) && (x = conn_find(bus, owner))) {
		x->accept = true;
		conn_accept(bus, x); /* not known yet: when it is */
	}
	/* the calls that waited for this owner go to it */
	while ((c = LIST_FIRST(&n->waiting))) {
		LIST_REMOVE(c, wait_link);
		c->via = NULL;
		if (!strcmp(owner, c->caller->unique) || !(x = conn_get(bus, owner))) {
			call_end(bus, c);
			continue;
		}
		c->callee = x;
		LIST_INSERT_HEAD(&x->calls_in, c, in_link);
		call_decide(bus, c);
	}
}

void bus_call(struct bus *bus, const char *sender, const char *destination, uint64_t serial, uint64_t now)
{
	struct broker *b = bus->b;
	struct bus_conn *caller, *callee = NULL;
	struct bus_name *via = NULL;
	struct bus_call *c;
	uint64_t mono;

	(void)now;
	if (!valid_unique(sender) || !valid_name(destination) || is_driver(destination) || !strcmp(sender, destination))
		return;
	if (destination[0] != ':') {
		if (!(via = name_find(bus, destination))) {
			/* asked once; calls to it wait for the answer.  Counted
			 * in the share of the caller, when it is known. */
			struct bus_conn *known = conn_find(bus, sender);

			if (!(via = name_new(bus, destination,
					     known && known->state == CONN_KNOWN ? known->who.uid : NOBODY)))
				return;
			via->resolving = true;
			if (bus->ops->resolve_name(bus->ctx, destination) < 0) {
				name_forget(bus, via);
				return;
			}
		}
		if (!via->resolving) {
			if (!strcmp(via->owner, sender))
				return;
			destination = via->owner;
			via = NULL;
		}
	}
	if (!via) {
		if (!(callee = conn_get(bus, destination)) || callee->state == CONN_OPAQUE)
			return;
		if (callee->state == CONN_KNOWN && !callee->receiver && !name_accepted(&b->cfg.dbus, destination) &&
		    !callee->accept)
			return; /* boosts nothing, and needs no record */
	}
	if (!(caller = conn_get(bus, sender)) || caller->state == CONN_OPAQUE ||
	    (caller->state == CONN_KNOWN && !caller->task) || call_find(bus, caller, serial))
		return;
	if (bus->n_calls >= b->cfg.dbus.max_calls || caller->undecided >= BUS_UNDECIDED_MAX ||
	    share_take(bus, NOBODY, true) < 0)
		return;
	if (!(c = calloc(1, sizeof(*c)))) {
		share_give(bus, NOBODY, true);
		return;
	}
	c->caller = caller;
	c->serial = serial;
	c->share = NOBODY;
	c->accepted_name = name_accepted(&b->cfg.dbus, destination);
	if (!tsearch(c, &bus->calls, cmp_call)) {
		share_give(bus, NOBODY, true);
		free(c);
		return;
	}
	bus->n_calls++;
	bus->n_undecided++;
	caller->undecided++;
	LIST_INSERT_HEAD(&caller->calls_out, c, out_link);
	if (via) {
		c->via = via;
		LIST_INSERT_HEAD(&via->waiting, c, wait_link);
	} else {
		c->callee = callee;
		LIST_INSERT_HEAD(&callee->calls_in, c, in_link);
	}
	sd_event_now(b->ev, CLOCK_MONOTONIC, &mono);
	c->deadline = mono + (uint64_t)b->cfg.dbus.call_timeout_ms * 1000;
	deadline_insert(bus, c);
	call_decide(bus, c);
}

/* A reply or an error ends the call it answers, when it comes from the
 * service called or from the bus itself (no reply, the service gone); a
 * call whose service was not known yet ends at any reply for it. */
void bus_reply(struct bus *bus, const char *sender, const char *destination, uint64_t reply_serial)
{
	struct bus_conn *caller;
	struct bus_call *c;

	if (!valid_name(sender) || !(caller = conn_find(bus, destination)) ||
	    !(c = call_find(bus, caller, reply_serial)))
		return;
	if (c->callee && strcmp(sender, c->callee->unique) && !is_driver(sender))
		return;
	call_end(bus, c);
}

const char *bus_known_owner(struct bus *bus, const char *name)
{
	struct bus_name *n = name_find(bus, name);

	return n && !n->resolving ? n->owner : NULL;
}

/* ------------------------------------------------------------------ */
/* the bus                                                              */
/* ------------------------------------------------------------------ */

static void free_share(void *p)
{
	free(p);
}

/* Everything known about the bus goes: calls, connections, names. */
static void bus_forget(struct bus *bus)
{
	while (!LIST_EMPTY(&bus->conn_list))
		conn_free(bus, LIST_FIRST(&bus->conn_list));
	while (bus->names)
		name_forget(bus, *(struct bus_name **)bus->names);
	tdestroy(bus->shares, free_share);
	bus->shares = NULL;
}

void bus_attached(struct bus *bus, uid_t owner, uint64_t now)
{
	bus_forget(bus);
	bus->owner = owner;
	bus->attached_at = now;
}

int bus_new(struct broker *b, const char *where, uid_t owner, const struct bus_ops *ops, void *ctx,
	    struct bus **out)
{
	struct bus *bus = calloc(1, sizeof(*bus));
	struct timespec ts;

	if (!bus)
		return -ENOMEM;
	bus->b = b;
	snprintf(bus->where, sizeof(bus->where), "%s", where);
	bus->ops = ops;
	bus->ctx = ctx;
	bus->owner = owner;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	bus->attached_at = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	LIST_INIT(&bus->conn_list);
	TAILQ_INIT(&bus->by_deadline);
	bus->next = b->dbus_buses;
	b->dbus_buses = bus;
	*out = bus;
	return 0;
}

void bus_free(struct bus *bus)
{
	struct bus **p;

	if (!bus)
		return;
	for (p = &bus->b->dbus_buses; *p; p = &(*p)->next)
		if (*p == bus) {
			*p = bus->next;
			break;
		}
	bus_forget(bus);
	sd_event_source_disable_unref(bus->deadline_src);
	free(bus);
}

const char *bus_where(const struct bus *bus)
{
	return bus->where;
}

void bus_counts(const struct bus *bus, struct bus_counts *out)
{
	out->connections = bus->n_conns;
	out->names = bus->n_names;
	out->calls = bus->n_calls;
	out->undecided = bus->n_undecided;
	out->resolving = bus->n_resolving;
	out->pidfds = bus->n_pidfds;
}

/* for bus_check: the shares counted again from the calls and names */
struct recount {
	const struct bus *bus;
	size_t calls, names, bad;
};
static struct recount *recounting;

static void recount_share(const void *node, VISIT v, int depth)
{
	const struct bus_share *s = *(struct bus_share *const *)node;
	const struct dbus_config *d = &recounting->bus->b->cfg.dbus;

	(void)depth;
	if (v != postorder && v != leaf)
		return;
	recounting->calls += s->calls;
	recounting->names += s->names;
	if ((!s->calls && !s->names) || s->calls > share_of(d->max_calls) || s->names > share_of(d->max_names))
		recounting->bad++;
}

/* Whether x is counted in the budget conn_payer, then conn_pay, gave it. */
static bool payer_right(const struct bus *bus, const struct bus_conn *x)
{
	if (bus->owner != 0 && bus->owner != NOBODY)
		return x->payer && x->payer->uid == bus->owner;
	if (x->state == CONN_KNOWN)
		return x->payer && x->payer->uid == x->who.uid;
	return !x->payer || x->state == CONN_OPAQUE; /* known, but then no record of its uid */
}

int bus_check(const struct bus *bus)
{
	const struct dbus_config *d = &bus->b->cfg.dbus;
	const struct bus_conn *x;
	struct recount r = { .bus = bus };
	size_t conns = 0, calls = 0, undecided = 0, resolving = 0, pidfds = 0;

	LIST_FOREACH(x, &bus->conn_list, link) {
		const struct bus_call *c;
		unsigned mine = 0;

		conns++;
		resolving += x->state == CONN_RESOLVING;
		pidfds += x->pidfd >= 0;
		if ((x->pidfd >= 0) != (x->state == CONN_KNOWN) || (x->receiver && !x->port) ||
		    ((x->donor || x->receiver) && !x->task) || (x->task && x->state != CONN_KNOWN))
			return -EUCLEAN;
		if (!payer_right(bus, x))
			return -EUCLEAN;
		LIST_FOREACH(c, &x->calls_out, out_link) {
			calls++;
			if (!c->msg) {
				mine++;
				undecided++;
			} else if (!c->callee || !c->callee->receiver || c->via || c->share != x->who.uid) {
				return -EUCLEAN;
			}
			if (!c->callee == !c->via)
				return -EUCLEAN;
		}
		if (mine != x->undecided || mine > BUS_UNDECIDED_MAX)
			return -EUCLEAN;
	}
	recounting = &r;
	twalk(bus->shares, recount_share);
	recounting = NULL;
	if (conns != bus->n_conns || calls != bus->n_calls || undecided != bus->n_undecided ||
	    resolving != bus->n_resolving || pidfds != bus->n_pidfds || r.calls != calls || r.names != bus->n_names ||
	    r.bad || conns > d->max_connections || calls > d->max_calls || bus->n_names > d->max_names)
		return -EUCLEAN;
	return 0;
}

int bus_set_donor(struct broker *b, pid_t pid, bool on)
{
	int e = -ESRCH;

	for (struct bus *bus = b->dbus_buses; bus; bus = bus->next) {
		struct bus_conn *x;

		LIST_FOREACH(x, &bus->conn_list, link) {
			if (x->state != CONN_KNOWN || x->actor.pid != pid || process_alive(x->pidfd) < 0)
				continue;
			if (!x->task && (e = conn_task(b, x, 0)) < 0)
				return e;
			x->donor = on;
			x->live = on && foreground_live(b, x->pidfd, &x->who);
			if ((e = imp_task_set_live_donor(x->task, x->live)) < 0)
				return e;
		}
	}
	return e;
}

void bus_foreground_apply(struct broker *b)
{
	for (struct bus *bus = b->dbus_buses; bus; bus = bus->next) {
		struct bus_conn *x;

		LIST_FOREACH(x, &bus->conn_list, link) {
			bool live;

			if (!x->donor || !x->task || x->pidfd < 0)
				continue;
			live = foreground_live(b, x->pidfd, &x->who);
			if (live != x->live) {
				x->live = live;
				imp_task_set_live_donor(x->task, live);
			}
		}
	}
}

void bus_foreach_task(struct broker *b, bus_task_fn *fn, void *ctx)
{
	for (struct bus *bus = b->dbus_buses; bus; bus = bus->next) {
		struct bus_conn *x;

		LIST_FOREACH(x, &bus->conn_list, link)
			if (x->task)
				fn(ctx, &x->actor, x->task, x->receiver, bus->where, x->unique);
	}
}

/* D-Bus (dbus.h): the buses watched, their connections and calls. */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "dbus.h"
#include "donor.h"
#include "foreground.h"
#include "process.h"
#include "user.h"

#define DRIVER "org.freedesktop.DBus"
#define DRIVER_PATH "/org/freedesktop/DBus"
/* the longest bus name the specification allows */
#define MAX_NAME 255
/* a bus that cannot be reached is tried again this often */
#define RETRY_USEC (2 * 1000 * 1000)
/* look-ups block the loop: they must not wait long on a stuck bus */
#define LOOKUP_USEC (500 * 1000)
/* messages read from the monitor before they are handled together */
#define BATCH_MAX 256

struct bus_call;

/* A connection on the bus, by unique name, and the process behind it. */
struct bus_conn {
	char *unique; /* first: the key of dbus_bus.conns */
	struct dbus_bus *bus;
	struct actor actor;
	struct ident who;
	int pidfd;
	struct user *user;
	imp_task *task; /* donors and receivers; NULL: it can neither boost nor be boosted */
	imp_port *port; /* receivers: where calls to it queue */
	bool donor, receiver;
	bool live; /* a donor that is a live donor now (foreground.h) */
	LIST_HEAD(, bus_call) calls_out, calls_in;
	LIST_ENTRY(bus_conn) link;
};

/* A method call waiting for its reply. */
struct bus_call {
	struct bus_conn *caller; /* first two: the key of dbus_bus.calls */
	uint64_t serial;
	struct bus_conn *callee;
	imp_msg *msg;
	uint64_t deadline; /* CLOCK_MONOTONIC, usec */
	LIST_ENTRY(bus_call) out_link, in_link;
	TAILQ_ENTRY(bus_call) deadline_link;
};

/* A well-known name and its owner now. */
struct bus_name {
	char *name; /* first: the key of dbus_bus.names */
	char owner[MAX_NAME + 1];
};

struct dbus_bus {
	struct broker *b;
	struct dbus_bus *next;
	char where[IMPD_RULE_LEN]; /* system, session or an address, as configured */
	const struct dbus_lookup *lookup;
	sd_bus *monitor, *lookups;
	sd_event_source *deadline_src, *retry_src;
	sd_event_source *monitor_io, *batch_timer; /* reading the monitor (see monitor_drain) */
	sd_bus_message *batch[BATCH_MAX];          /* read, not handled yet */
	size_t n_batch;
	bool warned;
	void *conns, *calls, *names; /* tsearch trees */
	size_t n_conns, n_calls, n_names;
	LIST_HEAD(, bus_conn) conn_list;
	TAILQ_HEAD(bus_call_queue, bus_call) by_deadline;
};

/* ------------------------------------------------------------------ */
/* keys and names                                                       */
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

static bool valid_name(const char *s)
{
	return s && s[0] && strnlen(s, MAX_NAME + 1) <= MAX_NAME;
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

/* ------------------------------------------------------------------ */
/* well-known names                                                     */
/* ------------------------------------------------------------------ */

static struct bus_name *name_find(struct dbus_bus *bus, const char *name)
{
	void *found = tfind(&name, &bus->names, cmp_string_key);

	return found ? *(struct bus_name **)found : NULL;
}

static void name_forget(struct dbus_bus *bus, const char *name)
{
	struct bus_name *n = name_find(bus, name);

	if (!n)
		return;
	tdelete(n, &bus->names, cmp_string_key);
	bus->n_names--;
	free(n->name);
	free(n);
}

/* Records that owner owns name now (within the bound; 0 or -errno). */
static int name_set(struct dbus_bus *bus, const char *name, const char *owner)
{
	struct bus_name *n = name_find(bus, name);

	if (strlen(owner) > MAX_NAME)
		return -EINVAL;
	if (!n) {
		if (bus->n_names >= bus->b->cfg.dbus.max_names)
			return -EDQUOT;
		if (!(n = calloc(1, sizeof(*n))) || !(n->name = strdup(name))) {
			free(n);
			return -ENOMEM;
		}
		if (!tsearch(n, &bus->names, cmp_string_key)) {
			free(n->name);
			free(n);
			return -ENOMEM;
		}
		bus->n_names++;
	}
	snprintf(n->owner, sizeof(n->owner), "%s", owner);
	return 0;
}

/* The unique name that owns name: known from NameOwnerChanged, else asked
 * (names owned before we attached) and remembered. */
static const char *name_owner(struct dbus_bus *bus, const char *name)
{
	struct bus_name *n = name_find(bus, name);
	char owner[MAX_NAME + 1];

	if (n)
		return n->owner;
	if (bus->lookup->owner(bus, name, owner, sizeof(owner)) < 0 || !valid_name(owner) || owner[0] != ':')
		return NULL;
	if (name_set(bus, name, owner) < 0)
		return NULL;
	return name_find(bus, name)->owner;
}

static void free_name(void *p)
{
	struct bus_name *n = p;

	free(n->name);
	free(n);
}

/* ------------------------------------------------------------------ */
/* calls                                                                */
/* ------------------------------------------------------------------ */

/* The deadline timer is armed at or before the first call's deadline, or
 * off when no call waits.  It is not moved when calls end: it fires, finds
 * nothing due and is set again, which costs less than setting it on every
 * call. */
static void deadline_rearm(struct dbus_bus *bus)
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
static void call_end(struct dbus_bus *bus, struct bus_call *c)
{
	tdelete(c, &bus->calls, cmp_call);
	bus->n_calls--;
	LIST_REMOVE(c, out_link);
	LIST_REMOVE(c, in_link);
	TAILQ_REMOVE(&bus->by_deadline, c, deadline_link);
	imp_msg_destroy(c->msg);
	imp_msg_unref(c->msg);
	user_uncharge(bus->b, c->caller->user, USAGE_INFLIGHT, 1);
	free(c);
}

static struct bus_call *call_find(struct dbus_bus *bus, struct bus_conn *caller, uint64_t serial)
{
	struct bus_call key = { .caller = caller, .serial = serial };
	void *found = tfind(&key, &bus->calls, cmp_call);

	return found ? *(struct bus_call **)found : NULL;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dbus_bus *bus = userdata;
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
static void deadline_insert(struct dbus_bus *bus, struct bus_call *c)
{
	struct bus_call *x = TAILQ_LAST(&bus->by_deadline, bus_call_queue);

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
	{
		int on = SD_EVENT_OFF;
		uint64_t armed = 0;

		sd_event_source_get_enabled(bus->deadline_src, &on);
		sd_event_source_get_time(bus->deadline_src, &armed);
		if (on == SD_EVENT_OFF || armed > c->deadline)
			deadline_rearm(bus);
	}
}

/* ------------------------------------------------------------------ */
/* connections                                                          */
/* ------------------------------------------------------------------ */

static struct bus_conn *conn_find(struct dbus_bus *bus, const char *unique)
{
	void *found = tfind(&unique, &bus->conns, cmp_string_key);

	return found ? *(struct bus_conn **)found : NULL;
}

static void conn_free(struct dbus_bus *bus, struct bus_conn *x)
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
	tdelete(x, &bus->conns, cmp_string_key);
	LIST_REMOVE(x, link);
	bus->n_conns--;
	if (x->pidfd >= 0)
		close(x->pidfd);
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
static int conn_accept(struct dbus_bus *bus, struct bus_conn *x)
{
	struct broker *b = bus->b;
	int e;

	if (x->receiver)
		return 0;
	if (x->pidfd < 0)
		return -ESRCH; /* its process could not be told */
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

/* The connection of unique name, made on first use: who it is, read
 * through the bus and the kernel; NULL when it is gone or beyond the
 * bound.  One that exists but whose process cannot be told is kept as
 * such (it neither gives nor takes boosts) until it disconnects, so that
 * its calls do not each cost a look-up. */
static struct bus_conn *conn_get(struct dbus_bus *bus, const char *unique)
{
	struct broker *b = bus->b;
	struct bus_conn *x = conn_find(bus, unique);
	pid_t pid = 0;
	uid_t connect_uid = (uid_t)-1;
	int pidfd = -1, e;

	if (x)
		return x;
	if (unique[0] != ':' || bus->n_conns >= b->cfg.dbus.max_connections)
		return NULL;
	e = bus->lookup->creds(bus, unique, &pid, &pidfd, &connect_uid);
	/* no such connection (any more), or an answer that may come next time */
	if (e == -ENXIO || e == -ESRCH || e == -ETIMEDOUT || e == -ENOTCONN || e == -ECONNRESET || e == -ENOMEM) {
		if (b->cfg.verbose)
			fprintf(stderr, "importanced: dbus %s: %s: %s\n", bus->where, unique, strerror(-e));
		return NULL;
	}
	if (!(x = calloc(1, sizeof(*x))) || !(x->unique = strdup(unique))) {
		free(x);
		if (pidfd >= 0)
			close(pidfd);
		return NULL;
	}
	x->bus = bus;
	x->pidfd = -1;
	LIST_INIT(&x->calls_out);
	LIST_INIT(&x->calls_in);
	if (e == 0 && (process_ident(pidfd, &x->who) < 0 || x->who.pid != pid || user_get(b, x->who.uid, &x->user) < 0)) {
		close(pidfd);
		free(x->unique);
		free(x);
		return NULL;
	}
	if (!tsearch(x, &bus->conns, cmp_string_key)) {
		user_put(b, x->user);
		if (pidfd >= 0)
			close(pidfd);
		free(x->unique);
		free(x);
		return NULL;
	}
	LIST_INSERT_HEAD(&bus->conn_list, x, link);
	bus->n_conns++;
	if (e < 0) {
		if (b->cfg.verbose)
			fprintf(stderr, "importanced: dbus %s: %s: %s: not boosted, boosts nothing\n", bus->where, unique,
				strerror(-e));
		return x;
	}
	x->pidfd = pidfd;
	x->actor.pid = x->who.pid;
	x->actor.uid = x->who.uid;
	/* Bytes on a bus socket do not say which program wrote them: a process
	 * may connect and then exec a setuid program, or hand the socket to a
	 * child.  Only a process whose uid is still the one it connected with
	 * can be a donor. */
	x->donor = connect_uid == x->who.uid && donor_match(&b->cfg.donors, pidfd, &x->who);
	x->live = x->donor && foreground_live(b, pidfd, &x->who);
	if (no_receiver_rules(&b->cfg.dbus) || donor_match(&b->cfg.dbus.receivers, pidfd, &x->who))
		conn_accept(bus, x); /* on failure it takes no boosts, and still may give them */
	else if (x->donor)
		conn_task(b, x, 0);
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: dbus %s: %s is pid %d uid %u%s%s\n", bus->where, unique, (int)x->who.pid,
			(unsigned)x->who.uid, x->donor ? " donor" : "", x->receiver ? " receiver" : "");
	return x;
}

/* ------------------------------------------------------------------ */
/* the handler                                                          */
/* ------------------------------------------------------------------ */

static void on_method_call(struct dbus_bus *bus, const struct dbus_event *ev)
{
	struct broker *b = bus->b;
	struct bus_conn *caller, *callee;
	struct bus_call *c;
	const char *unique;
	uint64_t now;

	if (!ev->expect_reply || !valid_name(ev->sender) || ev->sender[0] != ':' || !valid_name(ev->destination) ||
	    is_driver(ev->destination))
		return;
	unique = ev->destination[0] == ':' ? ev->destination : name_owner(bus, ev->destination);
	if (!unique || !strcmp(unique, ev->sender))
		return;
	if (!(callee = conn_get(bus, unique)))
		return;
	if (!callee->receiver && ev->destination[0] != ':' && name_accepted(&b->cfg.dbus, ev->destination))
		conn_accept(bus, callee);
	if (!callee->receiver)
		return;
	if (!(caller = conn_get(bus, ev->sender)) || !caller->task || call_find(bus, caller, ev->serial))
		return;
	if (bus->n_calls >= b->cfg.dbus.max_calls || user_charge(b, caller->user, USAGE_INFLIGHT, 1) < 0)
		return;
	if (!(c = calloc(1, sizeof(*c))))
		goto fail;
	c->caller = caller;
	c->serial = ev->serial;
	c->callee = callee;
	if (imp_msg_send(caller->task, callee->port, NULL, 0, &c->msg) < 0)
		goto fail;
	if (!tsearch(c, &bus->calls, cmp_call)) {
		imp_msg_destroy(c->msg);
		imp_msg_unref(c->msg);
		goto fail;
	}
	bus->n_calls++;
	LIST_INSERT_HEAD(&caller->calls_out, c, out_link);
	LIST_INSERT_HEAD(&callee->calls_in, c, in_link);
	sd_event_now(b->ev, CLOCK_MONOTONIC, &now);
	c->deadline = now + (uint64_t)b->cfg.dbus.call_timeout_ms * 1000;
	deadline_insert(bus, c);
	return;
fail:
	free(c);
	user_uncharge(b, caller->user, USAGE_INFLIGHT, 1);
}

/* A reply or an error ends the call it answers, when it comes from the
 * service called or from the bus itself (no reply, the service gone). */
static void on_reply(struct dbus_bus *bus, const struct dbus_event *ev)
{
	struct bus_conn *caller;
	struct bus_call *c;

	if (!valid_name(ev->sender) || !valid_name(ev->destination) || !(caller = conn_find(bus, ev->destination)) ||
	    !(c = call_find(bus, caller, ev->reply_serial)))
		return;
	if (strcmp(ev->sender, c->callee->unique) && !is_driver(ev->sender))
		return;
	call_end(bus, c);
}

static void on_name_owner_changed(struct dbus_bus *bus, const struct dbus_event *ev)
{
	const char *name = ev->args[0], *now = ev->args[2];
	struct bus_conn *x;

	if (!valid_name(name) || !ev->args[1] || !now)
		return;
	if (name[0] == ':') {
		if (!now[0] && (x = conn_find(bus, name)))
			conn_free(bus, x);
		return;
	}
	if (!now[0]) {
		name_forget(bus, name);
		return;
	}
	if (now[0] != ':' || name_set(bus, name, now) < 0) {
		name_forget(bus, name); /* an owner we cannot keep is no owner we know */
		return;
	}
	if (name_accepted(&bus->b->cfg.dbus, name) && (x = conn_find(bus, now)))
		conn_accept(bus, x);
}

void dbus_handle(struct dbus_bus *bus, const struct dbus_event *ev)
{
	switch (ev->type) {
	case SD_BUS_MESSAGE_METHOD_CALL:
		on_method_call(bus, ev);
		break;
	case SD_BUS_MESSAGE_METHOD_RETURN:
	case SD_BUS_MESSAGE_METHOD_ERROR:
		on_reply(bus, ev);
		break;
	case SD_BUS_MESSAGE_SIGNAL:
		if (is_driver(ev->sender) && ev->interface && !strcmp(ev->interface, DRIVER) && ev->member &&
		    !strcmp(ev->member, "NameOwnerChanged"))
			on_name_owner_changed(bus, ev);
		break;
	default:
		break;
	}
}

/* Whether reply (a return or an error) answers call: to its caller, for
 * its serial, from the connection the call went to as far as we know now
 * (a well-known name by the owner we know; none known: not decided). */
static bool answers(struct dbus_bus *bus, const struct dbus_event *call, const struct dbus_event *reply)
{
	const struct bus_name *n;

	if ((reply->type != SD_BUS_MESSAGE_METHOD_RETURN && reply->type != SD_BUS_MESSAGE_METHOD_ERROR) ||
	    reply->reply_serial != call->serial || !valid_name(reply->sender) || !valid_name(reply->destination) ||
	    strcmp(reply->destination, call->sender))
		return false;
	if (call->destination[0] == ':')
		return !strcmp(reply->sender, call->destination);
	n = name_find(bus, call->destination);
	return n && !strcmp(n->owner, reply->sender);
}

void dbus_handle_batch(struct dbus_bus *bus, const struct dbus_event *evs, size_t n)
{
	bool skip[BATCH_MAX] = { false };

	if (n > BATCH_MAX) {
		dbus_handle_batch(bus, evs, BATCH_MAX);
		dbus_handle_batch(bus, evs + BATCH_MAX, n - BATCH_MAX);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dbus_event *c = &evs[i];

		if (skip[i] || c->type != SD_BUS_MESSAGE_METHOD_CALL || !c->expect_reply || !valid_name(c->sender) ||
		    !valid_name(c->destination))
			continue;
		for (size_t j = i + 1; j < n; j++)
			if (!skip[j] && answers(bus, c, &evs[j])) {
				skip[i] = skip[j] = true;
				break;
			}
	}
	for (size_t i = 0; i < n; i++)
		if (!skip[i])
			dbus_handle(bus, &evs[i]);
}

int dbus_event_from_message(sd_bus_message *m, struct dbus_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (sd_bus_message_get_type(m, &ev->type) < 0)
		return -EBADMSG;
	ev->sender = sd_bus_message_get_sender(m);
	ev->destination = sd_bus_message_get_destination(m);
	ev->interface = sd_bus_message_get_interface(m);
	ev->member = sd_bus_message_get_member(m);
	if (sd_bus_message_get_cookie(m, &ev->serial) < 0)
		return -EBADMSG;
	switch (ev->type) {
	case SD_BUS_MESSAGE_METHOD_CALL:
		ev->expect_reply = sd_bus_message_get_expect_reply(m) > 0;
		break;
	case SD_BUS_MESSAGE_METHOD_RETURN:
	case SD_BUS_MESSAGE_METHOD_ERROR:
		if (sd_bus_message_get_reply_cookie(m, &ev->reply_serial) < 0)
			return -EBADMSG;
		break;
	case SD_BUS_MESSAGE_SIGNAL:
		if (is_driver(ev->sender) && sd_bus_message_has_signature(m, "sss") &&
		    sd_bus_message_read(m, "sss", &ev->args[0], &ev->args[1], &ev->args[2]) < 0)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* look-ups through the bus driver                                      */
/* ------------------------------------------------------------------ */

/* A pidfd of pid, and the bus asked again that unique still is that pid:
 * so the pid had not been reused when the pidfd was opened. */
static int pidfd_checked(struct dbus_bus *bus, const char *unique, pid_t pid)
{
	sd_bus_message *reply = NULL;
	uint32_t again = 0;
	int fd, r;

	if ((fd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
		return -errno;
	r = sd_bus_call_method(bus->lookups, DRIVER, DRIVER_PATH, DRIVER, "GetConnectionUnixProcessID", NULL, &reply,
			       "s", unique);
	if (r >= 0)
		r = sd_bus_message_read(reply, "u", &again);
	sd_bus_message_unref(reply);
	if (r < 0 || again != (uint32_t)pid) {
		close(fd);
		return r < 0 ? r : -ESRCH;
	}
	return fd;
}

static int driver_creds(struct dbus_bus *bus, const char *unique, pid_t *pid, int *pidfd, uid_t *uid)
{
	sd_bus_message *reply = NULL;
	uint32_t p = 0, u = (uint32_t)-1;
	int fd = -1, r;

	r = sd_bus_call_method(bus->lookups, DRIVER, DRIVER_PATH, DRIVER, "GetConnectionCredentials", NULL, &reply, "s",
			       unique);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		const char *key;

		if ((r = sd_bus_message_read(reply, "s", &key)) < 0)
			break;
		if (!strcmp(key, "ProcessID"))
			r = sd_bus_message_read(reply, "v", "u", &p);
		else if (!strcmp(key, "UnixUserID"))
			r = sd_bus_message_read(reply, "v", "u", &u);
		else if (!strcmp(key, "ProcessFD") && fd < 0) {
			int given;

			if ((r = sd_bus_message_read(reply, "v", "h", &given)) >= 0 &&
			    (fd = fcntl(given, F_DUPFD_CLOEXEC, 3)) < 0)
				r = -errno;
		} else
			r = sd_bus_message_skip(reply, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	sd_bus_message_unref(reply);
	if (r >= 0 && !p)
		r = -ESRCH;
	if (r >= 0 && fd < 0 && (fd = pidfd_checked(bus, unique, (pid_t)p)) < 0)
		r = fd;
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	*pid = (pid_t)p;
	*pidfd = fd;
	*uid = (uid_t)u;
	return 0;
}

static int driver_owner(struct dbus_bus *bus, const char *name, char *unique, size_t size)
{
	sd_bus_message *reply = NULL;
	const char *owner;
	int r;

	r = sd_bus_call_method(bus->lookups, DRIVER, DRIVER_PATH, DRIVER, "GetNameOwner", NULL, &reply, "s", name);
	if (r >= 0 && (r = sd_bus_message_read(reply, "s", &owner)) >= 0)
		snprintf(unique, size, "%s", owner);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static const struct dbus_lookup driver_lookup = { driver_creds, driver_owner };

/* ------------------------------------------------------------------ */
/* attaching                                                            */
/* ------------------------------------------------------------------ */

static int bus_open(const char *where, bool monitor, sd_bus **out)
{
	char address[IMPD_RULE_LEN + 64];
	sd_bus *bus = NULL;
	int r;

	if (!strcmp(where, "system")) {
		const char *e = getenv("DBUS_SYSTEM_BUS_ADDRESS");

		snprintf(address, sizeof(address), "%s", e ? e : "unix:path=/run/dbus/system_bus_socket");
	} else if (!strcmp(where, "session")) {
		const char *e = getenv("DBUS_SESSION_BUS_ADDRESS"), *rt = getenv("XDG_RUNTIME_DIR");

		if (e)
			snprintf(address, sizeof(address), "%s", e);
		else if (rt)
			snprintf(address, sizeof(address), "unix:path=%s/bus", rt);
		else
			return -ENOMEDIUM; /* no session bus known to us */
	} else {
		snprintf(address, sizeof(address), "%s", where);
	}
	if ((r = sd_bus_new(&bus)) < 0)
		return r;
	if ((r = sd_bus_set_address(bus, address)) < 0 || (r = sd_bus_set_bus_client(bus, 1)) < 0 ||
	    (r = sd_bus_set_monitor(bus, monitor)) < 0 || (r = sd_bus_negotiate_fds(bus, !monitor)) < 0 ||
	    (r = sd_bus_set_method_call_timeout(bus, LOOKUP_USEC)) < 0 || (r = sd_bus_start(bus)) < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*out = bus;
	return 0;
}

static void bus_schedule_retry(struct dbus_bus *bus, uint64_t usec);

/* Handles the messages read so far, in order, and lets them go. */
static void batch_run(struct dbus_bus *bus)
{
	struct dbus_event evs[BATCH_MAX];
	size_t n = 0;

	for (size_t i = 0; i < bus->n_batch; i++)
		if (dbus_event_from_message(bus->batch[i], &evs[n]) == 0)
			n++;
	dbus_handle_batch(bus, evs, n);
	for (size_t i = 0; i < bus->n_batch; i++)
		sd_bus_message_unref(bus->batch[i]);
	bus->n_batch = 0;
}

static int on_monitored(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct dbus_bus *bus = userdata;

	(void)err;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0) {
		fprintf(stderr, "importanced: dbus %s: disconnected: every call's boost is dropped\n", bus->where);
		bus_schedule_retry(bus, 0);
		return 1;
	}
	if (bus->n_batch == BATCH_MAX)
		batch_run(bus);
	bus->batch[bus->n_batch++] = sd_bus_message_ref(m);
	/* handled: sd-bus would otherwise answer the method calls it sees with
	 * errors of its own, and a monitor that sends is disconnected */
	return 1;
}

/* Reading the monitor.  Every message the bus routes is copied to us, and
 * waking for each one costs the bus's callers more than the rest of our
 * work (a context switch per message on a busy CPU).  So after the
 * monitor becomes readable we wait dbus-batch-usec (not watching it
 * meanwhile), then read everything there is and handle it together: a call
 * answered within that window is not boosted at all (its boost would
 * begin after its end); every other call's boost begins at most that much
 * after the bus routed it.  With dbus-batch-usec 0 each message is handled
 * as it comes. */
static void monitor_drain(struct dbus_bus *bus)
{
	unsigned budget = 4 * BATCH_MAX;
	int r = 0;

	while (budget-- && (r = sd_bus_process(bus->monitor, NULL)) > 0)
		;
	batch_run(bus);
	if (r < 0) {
		bus_schedule_retry(bus, 0);
		return;
	}
	if (r > 0) /* more is buffered: go on in the next iteration */
		sd_event_source_set_enabled(bus->batch_timer, SD_EVENT_ONESHOT);
}

static int on_batch_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dbus_bus *bus = userdata;

	(void)s;
	(void)usec;
	sd_event_source_set_enabled(bus->monitor_io, SD_EVENT_ON);
	monitor_drain(bus);
	return 0;
}

static int on_monitor_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dbus_bus *bus = userdata;
	uint64_t now;

	(void)fd;
	(void)revents;
	if (!bus->b->cfg.dbus.batch_usec) {
		monitor_drain(bus);
		return 0;
	}
	sd_event_source_set_enabled(s, SD_EVENT_OFF);
	sd_event_now(bus->b->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(bus->batch_timer, now + bus->b->cfg.dbus.batch_usec);
	sd_event_source_set_enabled(bus->batch_timer, SD_EVENT_ONESHOT);
	return 0;
}

static int on_lookups(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)err;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0)
		bus_schedule_retry(userdata, 0);
	return 0;
}

/* Everything known about the bus goes: calls, connections, names. */
static void bus_forget(struct dbus_bus *bus)
{
	while (!LIST_EMPTY(&bus->conn_list))
		conn_free(bus, LIST_FIRST(&bus->conn_list));
	tdestroy(bus->names, free_name);
	bus->names = NULL;
	bus->n_names = 0;
}

static void bus_close(struct dbus_bus *bus)
{
	for (size_t i = 0; i < bus->n_batch; i++)
		sd_bus_message_unref(bus->batch[i]);
	bus->n_batch = 0;
	bus_forget(bus);
	bus->monitor_io = sd_event_source_disable_unref(bus->monitor_io);
	bus->batch_timer = sd_event_source_disable_unref(bus->batch_timer);
	bus->monitor = sd_bus_close_unref(bus->monitor);
	bus->lookups = sd_bus_close_unref(bus->lookups);
}

static int bus_connect(struct dbus_bus *bus)
{
	/* what the handler needs: calls, replies, errors and the owner changes */
	static const char *const rules[] = {
		"type='method_call'", "type='method_return'", "type='error'",
		"type='signal',sender='" DRIVER "',interface='" DRIVER "',member='NameOwnerChanged'",
	};
	sd_bus_error err = SD_BUS_ERROR_NULL;
	int r;

	if ((r = bus_open(bus->where, false, &bus->lookups)) < 0 || (r = bus_open(bus->where, true, &bus->monitor)) < 0)
		goto fail;
	r = sd_bus_call_method(bus->monitor, DRIVER, DRIVER_PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
			       &err, NULL, "asu", 4, rules[0], rules[1], rules[2], rules[3], 0);
	if (r < 0)
		goto fail;
	/* the look-ups' connection is sd-bus's to drive; the monitor is read
	 * by monitor_drain (it only ever reads) */
	if ((r = sd_bus_add_filter(bus->monitor, NULL, on_monitored, bus)) < 0 ||
	    (r = sd_bus_add_filter(bus->lookups, NULL, on_lookups, bus)) < 0 ||
	    (r = sd_bus_attach_event(bus->lookups, bus->b->ev, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
	    (r = sd_event_add_io(bus->b->ev, &bus->monitor_io, sd_bus_get_fd(bus->monitor), EPOLLIN,
				 on_monitor_readable, bus)) < 0 ||
	    /* accuracy 1 us: sd-event would otherwise let it slip by up to 250 ms */
	    (r = sd_event_add_time(bus->b->ev, &bus->batch_timer, CLOCK_MONOTONIC, 0, 1, on_batch_timer, bus)) < 0)
		goto fail;
	/* what came with BecomeMonitor's reply is already buffered: the batch
	 * timer, made enabled for time 0, reads it in the next iteration */
	fprintf(stderr, "importanced: dbus %s: monitoring\n", bus->where);
	bus->warned = false;
	return 0;
fail:
	if (!bus->warned)
		fprintf(stderr, "importanced: dbus %s: %s%s%s (trying again every %d s)\n", bus->where, strerror(-r),
			err.message ? ": " : "", err.message ? err.message : "", RETRY_USEC / 1000000);
	bus->warned = true;
	sd_bus_error_free(&err);
	bus_close(bus);
	return r;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dbus_bus *bus = userdata;

	(void)s;
	(void)usec;
	bus_close(bus);
	if (bus_connect(bus) < 0)
		bus_schedule_retry(bus, RETRY_USEC);
	return 0;
}

/* Closes and connects again after usec, from the loop (a connection is not
 * closed from inside its own callback). */
static void bus_schedule_retry(struct dbus_bus *bus, uint64_t usec)
{
	uint64_t now;

	sd_event_now(bus->b->ev, CLOCK_MONOTONIC, &now);
	if (!bus->retry_src) {
		if (sd_event_add_time(bus->b->ev, &bus->retry_src, CLOCK_MONOTONIC, now + usec, 100000, on_retry, bus) < 0)
			return;
	} else {
		sd_event_source_set_time(bus->retry_src, now + usec);
	}
	sd_event_source_set_enabled(bus->retry_src, SD_EVENT_ONESHOT);
}

static int bus_new(struct broker *b, const char *where, const struct dbus_lookup *lookup, struct dbus_bus **out)
{
	struct dbus_bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return -ENOMEM;
	bus->b = b;
	snprintf(bus->where, sizeof(bus->where), "%s", where);
	bus->lookup = lookup;
	LIST_INIT(&bus->conn_list);
	TAILQ_INIT(&bus->by_deadline);
	bus->next = b->dbus_buses;
	b->dbus_buses = bus;
	*out = bus;
	return 0;
}

int dbus_bus_new_detached(struct broker *b, const struct dbus_lookup *lookup, struct dbus_bus **out)
{
	return bus_new(b, "detached", lookup, out);
}

void dbus_bus_free(struct dbus_bus *bus)
{
	struct dbus_bus **p;

	if (!bus)
		return;
	for (p = &bus->b->dbus_buses; *p; p = &(*p)->next)
		if (*p == bus) {
			*p = bus->next;
			break;
		}
	bus_close(bus);
	sd_event_source_unref(bus->deadline_src);
	sd_event_source_unref(bus->retry_src);
	free(bus);
}

int dbus_start(struct broker *b)
{
	for (size_t i = 0; i < b->cfg.dbus.n_buses; i++) {
		struct dbus_bus *bus;
		int e;

		if ((e = bus_new(b, b->cfg.dbus.buses[i], &driver_lookup, &bus)) < 0)
			return e;
		if (bus_connect(bus) < 0)
			bus_schedule_retry(bus, RETRY_USEC);
	}
	return 0;
}

void dbus_stop(struct broker *b)
{
	while (b->dbus_buses)
		dbus_bus_free(b->dbus_buses);
}

void dbus_bus_counts(const struct dbus_bus *bus, struct dbus_counts *out)
{
	out->connections = bus->n_conns;
	out->names = bus->n_names;
	out->calls = bus->n_calls;
}

int dbus_set_donor(struct broker *b, pid_t pid, bool on)
{
	int e = -ESRCH;

	for (struct dbus_bus *bus = b->dbus_buses; bus; bus = bus->next) {
		struct bus_conn *x;

		LIST_FOREACH(x, &bus->conn_list, link) {
			if (x->pidfd < 0 || x->actor.pid != pid || process_alive(x->pidfd) < 0)
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

void dbus_foreground_apply(struct broker *b)
{
	for (struct dbus_bus *bus = b->dbus_buses; bus; bus = bus->next) {
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

void dbus_foreach_task(struct broker *b, dbus_task_fn *fn, void *ctx)
{
	for (struct dbus_bus *bus = b->dbus_buses; bus; bus = bus->next) {
		struct bus_conn *x;

		LIST_FOREACH(x, &bus->conn_list, link)
			if (x->task)
				fn(ctx, &x->actor, x->task, x->receiver, bus->where, x->unique);
	}
}

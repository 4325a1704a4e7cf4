/* dbus (dbus.h): the sd-bus attachment of a watched bus. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "bus.h"
#include "dbus-wire.h"
#include "dbus.h"
#include "rt.h"

/* the longest bus name the specification allows */
#define MAX_NAME 255
/* a bus that cannot be reached is tried again this often */
#define RETRY_USEC (2 * 1000 * 1000)
/* a look-up the bus does not answer in this time is taken as unknown */
#define LOOKUP_USEC (500 * 1000)
/* messages handled together at most (dbus_handle_batch) */
#define BATCH_MAX DBUS_WIRE_BATCH
/* reads of the monitor before the loop's other work has its turn */
#define DRAIN_READS 4
/* messages in one read that say the bus may be ahead of us: dbus-broker
 * hands a monitor 16 at a time, the next 16 once they are read */
#define REFILL_MESSAGES 16
/* reads of a window of dbus-batch-usec made as soon as there is something */
#define DBUS_PROMPT_READS 2

/* One watched bus: its connections and the model they feed. */
struct dbus_bus {
	struct broker *b;
	struct dbus_bus *next;
	struct bus *model;
	sd_bus *monitor, *lookups;
	sd_bus_slot *becoming; /* BecomeMonitor asked, not answered */
	uid_t owner;           /* the bus's owner, given to the model once monitoring */
	sd_event_source *retry_src;
	sd_event_source *monitor_io, *batch_timer; /* reading the monitor (see monitor_drain) */
	struct dbus_wire in;  /* the monitor's bytes read, cut into messages */
	uint64_t batch_since; /* CLOCK_BOOTTIME usec: the read being handled began */
	uint64_t window_start; /* CLOCK_MONOTONIC usec: the window of prompt reads */
	unsigned prompt_reads; /* of that window */
	unsigned n_lookups;   /* asked, not answered */
	TAILQ_HEAD(, lookup) queued; /* to ask when one of them is answered */
	unsigned n_queued;
	bool closing;         /* the look-ups' connection is being closed: nothing more is asked */
	bool warned;
};

static uint64_t boottime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static bool valid_name(const char *s)
{
	return s && s[0] && strnlen(s, MAX_NAME + 1) <= MAX_NAME;
}

/* ------------------------------------------------------------------ */
/* monitored messages as the model's events                             */
/* ------------------------------------------------------------------ */

static void on_name_owner_changed(struct bus *bus, const struct dbus_event *ev, uint64_t now)
{
	const char *name = ev->args[0], *old = ev->args[1], *new = ev->args[2];

	if (!valid_name(name) || !old || !new)
		return;
	if (name[0] != ':') {
		bus_name_owner(bus, name, new);
		return;
	}
	if (!old[0] && !strcmp(new, name))
		bus_conn_appeared(bus, name, now);
	else if (!new[0])
		bus_conn_gone(bus, name);
}

void dbus_handle(struct bus *bus, const struct dbus_event *ev, uint64_t now)
{
	switch (ev->type) {
	case SD_BUS_MESSAGE_METHOD_CALL:
		if (ev->expect_reply)
			bus_call(bus, ev->sender, ev->destination, ev->serial, now);
		break;
	case SD_BUS_MESSAGE_METHOD_RETURN:
	case SD_BUS_MESSAGE_METHOD_ERROR:
		bus_reply(bus, ev->sender, ev->destination, ev->reply_serial);
		break;
	case SD_BUS_MESSAGE_SIGNAL:
		if (dbus_event_is_owner_change(ev))
			on_name_owner_changed(bus, ev, now);
		break;
	default:
		break;
	}
}

/* Whether reply (a return or an error) answers call: to its caller, for
 * its serial, from the connection the call went to as far as we know now
 * (a well-known name by the owner we know; none known: not decided). */
static bool answers(struct bus *bus, const struct dbus_event *call, const struct dbus_event *reply)
{
	const char *owner;

	if ((reply->type != SD_BUS_MESSAGE_METHOD_RETURN && reply->type != SD_BUS_MESSAGE_METHOD_ERROR) ||
	    reply->reply_serial != call->serial || !valid_name(reply->sender) || !valid_name(reply->destination) ||
	    strcmp(reply->destination, call->sender))
		return false;
	if (call->destination[0] == ':')
		return !strcmp(reply->sender, call->destination);
	owner = bus_known_owner(bus, call->destination);
	return owner && !strcmp(owner, reply->sender);
}

void dbus_handle_batch(struct bus *bus, const struct dbus_event *evs, size_t n, uint64_t now)
{
	bool skip[BATCH_MAX] = { false };

	if (n > BATCH_MAX) {
		dbus_handle_batch(bus, evs, BATCH_MAX, now);
		dbus_handle_batch(bus, evs + BATCH_MAX, n - BATCH_MAX, now);
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
			dbus_handle(bus, &evs[i], now);
}

/* ------------------------------------------------------------------ */
/* look-ups through the bus driver, asynchronous                        */
/* ------------------------------------------------------------------ */

/* One look-up: for which bus and which name, asked or waiting its turn. */
struct lookup {
	struct dbus_bus *w;
	const char *method;
	sd_bus_message_handler_t fn;
	TAILQ_ENTRY(lookup) link; /* while queued */
	char name[MAX_NAME + 1];
};

static int lookup_send(struct lookup *l);
static int on_creds(sd_bus_message *m, void *userdata, sd_bus_error *err);

/* A look-up that will not be asked: answered as not answered in time (the
 * model asks again when it matters). */
static void lookup_unanswered(struct lookup *l)
{
	if (l->fn == on_creds)
		bus_conn_unknown(l->w->model, l->name, -ETIMEDOUT);
	else
		bus_name_owner(l->w->model, l->name, NULL);
}

/* Asks the queued look-ups while there is room among the asked. */
static void lookups_pump(struct dbus_bus *w)
{
	struct lookup *l;

	while (!w->closing && w->n_lookups < DBUS_LOOKUPS_MAX && (l = TAILQ_FIRST(&w->queued))) {
		TAILQ_REMOVE(&w->queued, l, link);
		w->n_queued--;
		if (lookup_send(l) < 0) {
			lookup_unanswered(l);
			free(l);
		}
	}
}

static void lookup_done(void *userdata)
{
	struct lookup *l = userdata;
	struct dbus_bus *w = l->w;

	w->n_lookups--;
	free(l);
	lookups_pump(w);
}

static int on_creds(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct lookup *l = userdata;
	struct bus_identity id;
	int r;

	(void)err;
	if (sd_bus_message_is_method_error(m, NULL))
		r = dbus_reply_errno(m);
	else
		r = dbus_read_creds(m, &id);
	if (r < 0)
		bus_conn_unknown(l->w->model, l->name, r);
	else
		bus_conn_identity(l->w->model, l->name, &id);
	return 1;
}

static int on_owner(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct lookup *l = userdata;
	const char *owner = NULL;

	(void)err;
	if (sd_bus_message_is_method_error(m, NULL) || sd_bus_message_read(m, "s", &owner) < 0)
		owner = NULL;
	bus_name_owner(l->w->model, l->name, owner);
	return 1;
}

/* Sends l (its reply comes to l->fn, within the connection's call
 * timeout); from then l is the slot's.  0 or -errno (l is still ours). */
static int lookup_send(struct lookup *l)
{
	struct dbus_bus *w = l->w;
	sd_bus_slot *slot = NULL;
	int r;

	if (!w->lookups)
		return -ENOTCONN;
	r = sd_bus_call_method_async(w->lookups, &slot, DBUS_DRIVER, DBUS_DRIVER_PATH, DBUS_DRIVER, l->method, l->fn, l,
				     "s", l->name);
	if (r < 0)
		return r;
	w->n_lookups++;
	/* the slot is the connection's from now: l goes with it, answered or
	 * not (a connection closed drops what it waited for) */
	sd_bus_slot_set_destroy_callback(slot, lookup_done);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
	return 0;
}

/* Asks the driver method about name, now or, with DBUS_LOOKUPS_MAX asked,
 * when one of them is answered (at most DBUS_QUEUED_MAX wait); the reply
 * comes to fn.  0, or -errno: it will not be asked. */
static int ask(struct dbus_bus *w, const char *method, const char *name, sd_bus_message_handler_t fn)
{
	struct lookup *l;
	int r;

	if (!w->lookups)
		return -ENOTCONN;
	if (w->n_lookups >= DBUS_LOOKUPS_MAX && w->n_queued >= DBUS_QUEUED_MAX)
		return -EBUSY;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->w = w;
	l->method = method;
	l->fn = fn;
	snprintf(l->name, sizeof(l->name), "%s", name);
	if (w->n_lookups >= DBUS_LOOKUPS_MAX) {
		TAILQ_INSERT_TAIL(&w->queued, l, link);
		w->n_queued++;
		return 0;
	}
	if ((r = lookup_send(l)) < 0)
		free(l);
	return r;
}

static int resolve(void *ctx, const char *unique)
{
	return ask(ctx, "GetConnectionCredentials", unique, on_creds);
}

static int resolve_name(void *ctx, const char *name)
{
	return ask(ctx, "GetNameOwner", name, on_owner);
}

static const struct bus_ops driver_ops = { resolve, resolve_name };

/* ------------------------------------------------------------------ */
/* attaching                                                            */
/* ------------------------------------------------------------------ */

static void watch_schedule_retry(struct dbus_bus *w, uint64_t usec);

/* Reading the monitor.  Every message the bus routes is copied to us, and
 * waking for each one would cost the bus's callers more than the rest of
 * our work (a context switch per message on a busy CPU).  So the monitor
 * is read in two ways:
 *   - quiet: it is watched, and read the moment it has something, for the
 *     first DBUS_PROMPT_READS reads of a window of dbus-batch-usec (a
 *     donor's call on a bus that is not busy boosts at once: its caller's
 *     previous reply and the call itself, a call and the call it makes);
 *   - traffic: past those, the monitor is not watched; it is read at the
 *     window's end, everything there is handled together, and again a
 *     window later, until a read finds nothing, when it is quiet again;
 *   - behind: a read that found REFILL_MESSAGES or more reads the next as
 *     soon as it comes.  dbus-broker hands a monitor its messages a few at
 *     a time, the next few once those are read, so a reader that waits a
 *     window between reads falls behind a bus busier than that, until
 *     dbus-broker drops it; a bus that is not ahead of us hands over less.
 * Under traffic importanced wakes once a window however many messages
 * there are, and a call answered within one window is not boosted at all
 * (its boost would begin after its end); any other call's boost begins at
 * most a window after the bus routed it.  With dbus-batch-usec 0 each
 * message is handled as it comes.  A batch's messages are taken as seen
 * when the read began (for the model's first appearances: at most a
 * window after they were).  A read takes all the socket holds, up to
 * DBUS_WIRE_IN bytes, cut into messages by dbus-wire.h: a system call for
 * hundreds of messages on a busy bus, where sd-bus makes two for each. */

/* what a read of the monitor found */
enum drained {
	DRAINED_NOTHING,
	DRAINED_SOME,
	DRAINED_BEHIND, /* a refill's worth or more, and no more for now: read the next as it comes */
	DRAINED_MORE,   /* read again at once */
	DRAINED_LOST,
};

static void monitor_lost(struct dbus_bus *w, const char *why)
{
	fprintf(stderr, "importanced: dbus %s: %s: every call's boost is dropped\n", bus_where(w->model), why);
	watch_schedule_retry(w, 0);
}

static void on_batch(void *ctx, const struct dbus_event *evs, size_t n)
{
	struct dbus_bus *w = ctx;

	dbus_handle_batch(w->model, evs, n, w->batch_since);
}

/* Reads the monitor in bulk: up to DRAIN_READS reads, each cut into
 * messages and handled. */
static enum drained monitor_drain(struct dbus_bus *w)
{
	int fd = sd_bus_get_fd(w->monitor), cut = 0, r;
	bool read = false;

	w->batch_since = boottime_usec();
	rt_bus_read();
	for (int i = 0; i < DRAIN_READS; i++) {
		size_t room;
		uint8_t *to = dbus_wire_room(&w->in, &room);
		ssize_t got = recv(fd, to, room, MSG_DONTWAIT);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (got <= 0) {
			monitor_lost(w, got ? strerror(errno) : "disconnected");
			return DRAINED_LOST;
		}
		read = true;
		if ((r = dbus_wire_feed(&w->in, (size_t)got, on_batch, w)) < 0) {
			monitor_lost(w, "a message it routed is not D-Bus");
			return DRAINED_LOST;
		}
		cut += r;
		if ((size_t)got < room)
			break; /* the socket is empty */
		if (i == DRAIN_READS - 1)
			return DRAINED_MORE;
	}
	if (!read)
		return DRAINED_NOTHING;
	return cut >= REFILL_MESSAGES ? DRAINED_BEHIND : DRAINED_SOME;
}

/* After a read: read again at once when more is buffered; watched (quiet)
 * when it found nothing, without a window, or while the window has prompt
 * reads left; else read again at the window's end, or a window later. */
static void monitor_next(struct dbus_bus *w, enum drained d, bool prompt)
{
	uint64_t now, at;

	if (d == DRAINED_LOST) { /* not read again: the retry closes it */
		sd_event_source_set_enabled(w->monitor_io, SD_EVENT_OFF);
		return;
	}
	sd_event_now(w->b->ev, CLOCK_MONOTONIC, &now);
	if (d == DRAINED_NOTHING || d == DRAINED_BEHIND || !w->b->cfg.dbus.batch_usec ||
	    (d == DRAINED_SOME && prompt && w->prompt_reads < DBUS_PROMPT_READS)) {
		if (d == DRAINED_NOTHING && !prompt) { /* quiet again: a window anew */
			w->prompt_reads = 0;
			w->window_start = now;
		}
		sd_event_source_set_enabled(w->monitor_io, SD_EVENT_ON);
		return;
	}
	sd_event_source_set_enabled(w->monitor_io, SD_EVENT_OFF);
	if (d == DRAINED_MORE)
		at = 0;
	else if (prompt)
		at = w->window_start + w->b->cfg.dbus.batch_usec;
	else
		at = now + w->b->cfg.dbus.batch_usec;
	sd_event_source_set_time(w->batch_timer, at);
	sd_event_source_set_enabled(w->batch_timer, SD_EVENT_ONESHOT);
}

static int on_batch_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dbus_bus *w = userdata;

	(void)s;
	(void)usec;
	monitor_next(w, monitor_drain(w), false);
	return 0;
}

static int on_monitor_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dbus_bus *w = userdata;
	uint64_t now;

	(void)s;
	(void)fd;
	(void)revents;
	sd_event_now(w->b->ev, CLOCK_MONOTONIC, &now);
	if (now - w->window_start >= w->b->cfg.dbus.batch_usec) {
		w->window_start = now;
		w->prompt_reads = 0;
	}
	w->prompt_reads++;
	monitor_next(w, monitor_drain(w), true);
	return 0;
}

static int on_lookups(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)err;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0)
		watch_schedule_retry(userdata, 0);
	return 0;
}

static void watch_close(struct dbus_bus *w)
{
	struct lookup *l;

	dbus_wire_reset(&w->in);
	bus_attached(w->model, (uid_t)-1, boottime_usec()); /* everything known goes */
	while ((l = TAILQ_FIRST(&w->queued))) {
		TAILQ_REMOVE(&w->queued, l, link);
		free(l);
	}
	w->n_queued = 0;
	w->closing = true;
	w->becoming = sd_bus_slot_unref(w->becoming);
	w->monitor_io = sd_event_source_disable_unref(w->monitor_io);
	w->batch_timer = sd_event_source_disable_unref(w->batch_timer);
	/* closed, not flushed: sd_bus_flush() waits (without bound) for a bus
	 * that has not answered Hello or reads nothing, and nothing queued on
	 * the look-ups' connection is worth waiting for */
	w->monitor = sd_bus_close_unref(w->monitor);
	w->lookups = sd_bus_close_unref(w->lookups);
	w->closing = false;
}

static void watch_failed(struct dbus_bus *w, int r, const char *message)
{
	if (!w->warned)
		fprintf(stderr, "importanced: dbus %s: %s%s%s (trying again every %d s)\n", bus_where(w->model),
			strerror(-r), message ? ": " : "", message ? message : "", RETRY_USEC / 1000000);
	w->warned = true;
}

/* BecomeMonitor's answer: from now the monitor's socket is read by
 * monitor_drain (it only ever reads), no longer by sd-bus.  sd-bus reads a
 * message's bytes and no further once authenticated, and the bus routes
 * nothing to a monitor before this answer: what follows it on the socket
 * is all still there (and were sd-bus ever to have read on, the watcher
 * says so and starts again). */
static int on_became_monitor(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct dbus_bus *w = userdata;
	const char *where = bus_where(w->model);
	uint64_t queued = 0;
	int r;

	(void)ret_error;
	if (sd_bus_message_is_method_error(m, NULL)) {
		watch_failed(w, -sd_bus_message_get_errno(m) ?: -EIO, sd_bus_message_get_error(m)->message);
		watch_schedule_retry(w, RETRY_USEC);
		return 1;
	}
	if ((r = sd_bus_get_n_queued_read(w->monitor, &queued)) >= 0 && queued)
		r = -EPROTO;
	if (r < 0 || (r = sd_bus_detach_event(w->monitor)) < 0 ||
	    (r = sd_event_add_io(w->b->ev, &w->monitor_io, sd_bus_get_fd(w->monitor), EPOLLIN, on_monitor_readable,
				 w)) < 0 ||
	    /* accuracy 1 us: sd-event would otherwise let it slip by up to 250 ms */
	    (r = sd_event_add_time(w->b->ev, &w->batch_timer, CLOCK_MONOTONIC, 0, 1, on_batch_timer, w)) < 0) {
		watch_failed(w, r, NULL);
		watch_schedule_retry(w, RETRY_USEC);
		return 1;
	}
	/* the batch timer, made enabled for time 0, reads in the next
	 * iteration what came right after the answer */
	bus_attached(w->model, w->owner, boottime_usec());
	if (w->owner == (uid_t)-1)
		fprintf(stderr, "importanced: dbus %s: monitoring; its owner cannot be told: nobody on it is believed\n",
			where);
	else
		fprintf(stderr, "importanced: dbus %s: monitoring (owner uid %u%s)\n", where, (unsigned)w->owner,
			w->owner ? ": only its processes are believed" : "");
	w->warned = false;
	return 1;
}

/* Opens both connections and asks BecomeMonitor, without waiting: the
 * answer comes to on_became_monitor through the loop (within the calls'
 * timeout), so a bus that never answers costs the loop nothing.  0, or
 * -errno when the bus cannot be reached now. */
static int watch_connect(struct dbus_bus *w)
{
	const char *where = bus_where(w->model);
	sd_bus_message *call = NULL;
	int r;

	if ((r = dbus_open(where, false, LOOKUP_USEC, &w->lookups)) < 0 ||
	    (r = dbus_open(where, true, LOOKUP_USEC, &w->monitor)) < 0)
		goto fail;
	/* one bus behind both: the owner of the look-ups' must be the monitor's */
	if ((w->owner = dbus_owner(w->lookups)) != dbus_owner(w->monitor))
		w->owner = (uid_t)-1;
	/* the look-ups' connection is sd-bus's to drive; so is the monitor
	 * until BecomeMonitor is answered */
	if ((r = sd_bus_add_filter(w->lookups, NULL, on_lookups, w)) < 0 ||
	    (r = sd_bus_attach_event(w->lookups, w->b->ev, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
	    (r = sd_bus_attach_event(w->monitor, w->b->ev, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
	    (r = dbus_become_monitor_call(w->monitor, &call)) < 0 ||
	    (r = sd_bus_call_async(w->monitor, &w->becoming, call, on_became_monitor, w, 0)) < 0)
		goto fail;
	sd_bus_message_unref(call);
	return 0;
fail:
	sd_bus_message_unref(call);
	watch_failed(w, r, NULL);
	watch_close(w);
	return r;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dbus_bus *w = userdata;

	(void)s;
	(void)usec;
	watch_close(w);
	if (watch_connect(w) < 0)
		watch_schedule_retry(w, RETRY_USEC);
	return 0;
}

/* Closes and connects again after usec, from the loop (a connection is not
 * closed from inside its own callback). */
static void watch_schedule_retry(struct dbus_bus *w, uint64_t usec)
{
	uint64_t now;

	sd_event_now(w->b->ev, CLOCK_MONOTONIC, &now);
	if (!w->retry_src) {
		if (sd_event_add_time(w->b->ev, &w->retry_src, CLOCK_MONOTONIC, now + usec, 100000, on_retry, w) < 0)
			return;
	} else {
		sd_event_source_set_time(w->retry_src, now + usec);
	}
	sd_event_source_set_enabled(w->retry_src, SD_EVENT_ONESHOT);
}

static void watch_free(struct dbus_bus *w)
{
	struct dbus_bus **p;

	for (p = &w->b->dbus_watchers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	watch_close(w);
	bus_free(w->model);
	sd_event_source_disable_unref(w->retry_src);
	free(w);
}

int dbus_start(struct broker *b)
{
	for (size_t i = 0; i < b->cfg.dbus.n_buses; i++) {
		struct dbus_bus *w = calloc(1, sizeof(*w));
		int e;

		if (!w)
			return -ENOMEM;
		w->b = b;
		TAILQ_INIT(&w->queued);
		if ((e = bus_new(b, b->cfg.dbus.buses[i], (uid_t)-1, &driver_ops, w, &w->model)) < 0) {
			free(w);
			return e;
		}
		w->next = b->dbus_watchers;
		b->dbus_watchers = w;
		if (watch_connect(w) < 0)
			watch_schedule_retry(w, RETRY_USEC);
	}
	return 0;
}

void dbus_stop(struct broker *b)
{
	while (b->dbus_watchers)
		watch_free(b->dbus_watchers);
}

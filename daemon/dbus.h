/*
 * D-Bus: importance for the method calls of existing bus services.
 *
 * importanced watches each configured bus (config key `dbus`) through two
 * sd-bus connections: a monitor (org.freedesktop.DBus.Monitoring.
 * BecomeMonitor), which sees every message the bus routes, in the bus's
 * order, and an ordinary connection for look-ups (who owns a name, whose
 * process a connection is).  Nothing is sent to the services or their
 * callers, and they need no change.
 *
 * The model is the engine's, one bus connection one task:
 *   - A method call that expects a reply, routed to a service that accepts
 *     boosts (dbus-receiver-* rules), is an engine message sent from the
 *     caller's task to the service's port.  It stays queued until the
 *     service's reply or error for it (or the bus's own error in its
 *     place), the caller's or the service's disconnect, or the call
 *     timeout (dbus-call-timeout): a message the service has read but not
 *     answered is work it still does for the caller, and the monitor cannot
 *     see a read anyway.  From a donor the message is raised and the
 *     service boosted for that whole time.
 *   - Transitive: a service that is boosted (it has a raised call queued)
 *     is a donor for what it sends, so a call it makes while it serves
 *     raises the next service, and drops when its own boost drops (the
 *     reference's rule: a boosted receiver donates; its messages are linked
 *     to it).
 *   - Calls that expect no reply, signals and broadcasts boost nothing:
 *     nothing on the bus says when they have been handled, and a broadcast
 *     from a donor would boost every subscriber.
 *   - The monitor is read in batches (dbus-batch-usec): a call's boost
 *     starts at most that long after the bus routed it, and a call
 *     answered within one batch boosts nothing (dbus.c, monitor_drain).
 * A connection is known by its unique name; its process is read from the
 * bus (GetConnectionCredentials: ProcessFD where the bus gives one, else a
 * pidfd opened from ProcessID and then checked by asking the bus again that
 * the connection still has that pid), so a reused pid is never boosted.
 * Donor status comes from the daemon's donor rules, about that process.
 * Well-known names are resolved through the bus once and then kept
 * current from NameOwnerChanged, which also ends a disconnected
 * connection's calls.
 *
 * Bounds: per bus, connections, names and calls tracked (dbus-max-*); each
 * call is also a message in flight of its caller's uid (user.h), against
 * the per-uid and global limits.  What does not fit is not tracked: it
 * boosts nothing.
 */
#ifndef IMPD_DBUS_H
#define IMPD_DBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "importance/importance.h"

struct actor;
struct broker;
struct dbus_bus;

/* Attaches to every bus of b->cfg.dbus (a bus that cannot be reached now
 * is tried again every few seconds).  0 or -errno. */
int dbus_start(struct broker *b);

/* Detaches from every bus: every call's boost is dropped. */
void dbus_stop(struct broker *b);

/* How a bus answers look-ups.  The daemon's are calls to the bus driver;
 * the fuzzer gives its own. */
struct dbus_lookup {
	/* The process of unique name: its pid, a pidfd of it (the caller's
	 * to close) and the uid the bus recorded when it connected.  0 or
	 * -errno (-ESRCH: no such connection). */
	int (*creds)(struct dbus_bus *bus, const char *unique, pid_t *pid, int *pidfd, uid_t *uid);
	/* The unique name owning well-known name now.  0 or -errno. */
	int (*owner)(struct dbus_bus *bus, const char *name, char *unique, size_t size);
};

/* A bus watched with lookup instead of the bus driver, and no connection
 * (the fuzzer feeds it events).  0 or -errno. */
int dbus_bus_new_detached(struct broker *b, const struct dbus_lookup *lookup, struct dbus_bus **out);
void dbus_bus_free(struct dbus_bus *bus);

/* What the monitor's handler uses of a message. */
struct dbus_event {
	uint8_t type;          /* SD_BUS_MESSAGE_* */
	bool expect_reply;     /* method calls */
	const char *sender, *destination, *interface, *member; /* may be NULL */
	uint64_t serial, reply_serial;
	const char *args[3];   /* NameOwnerChanged: name, old owner, new owner */
};

/* Fills ev from m (strings borrowed from m).  0, or -EBADMSG for what the
 * handler cannot use. */
int dbus_event_from_message(sd_bus_message *m, struct dbus_event *ev);

/* The monitor's handler: one routed message, in the bus's order.  Any
 * input is safe; what it cannot use it ignores. */
void dbus_handle(struct dbus_bus *bus, const struct dbus_event *ev);

/* Messages read together, in order: a call and its reply both among them
 * are neither (the call was over before we knew of it); the rest as
 * dbus_handle.  Any input is safe. */
void dbus_handle_batch(struct dbus_bus *bus, const struct dbus_event *evs, size_t n);

/* Counts of one bus (tests, fuzzers and diagnostics). */
struct dbus_counts {
	size_t connections, names, calls;
};
void dbus_bus_counts(const struct dbus_bus *bus, struct dbus_counts *out);

/* impctl donor: every bus connection of the process alive now as pid
 * becomes a live donor, or stops being one.  0, or -ESRCH when there is
 * none. */
int dbus_set_donor(struct broker *b, pid_t pid, bool on);

/* The foreground changed (foreground.h): every donor connection's live
 * state is decided again. */
void dbus_foreground_apply(struct broker *b);

/* Calls fn for every bus connection that has a task. */
typedef void dbus_task_fn(void *ctx, const struct actor *actor, imp_task *task, bool receiver, const char *bus,
			  const char *unique);
void dbus_foreach_task(struct broker *b, dbus_task_fn *fn, void *ctx);

#endif

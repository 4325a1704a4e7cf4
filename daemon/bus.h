/*
 * bus: the model of one watched D-Bus bus, fed events, calling no bus.
 *
 * Whoever watches a bus (the sd-bus attachment in dbus.c: a monitor
 * connection and look-ups; later a session agent's reports) turns what it
 * sees into the events below, in the bus's order.  The model maps them on
 * the engine, one bus connection one task:
 *   - A method call that expects a reply, routed to a service that accepts
 *     boosts (dbus-receiver-* rules), is an engine message from the caller's
 *     task to the service's port, queued until its reply or error (from the
 *     service, or the bus in its place), either end's disconnect, or the
 *     call timeout (dbus-call-timeout).  From a donor it is raised.
 *   - A boosted service is a donor for what it sends (its messages are
 *     linked to it): client -> A -> B boosts A and B, and drops in order.
 *   - Calls that expect no reply, signals and broadcasts boost nothing.
 *
 * Identity.  The model knows a connection by its unique name and asks the
 * feeder who it is (bus_ops.resolve); the answer comes later
 * (bus_conn_identity or bus_conn_unknown).  Meanwhile its calls are held
 * undecided: each is decided when both ends are known, and one that ends
 * before that leaves nothing.  An identity is believed only when it is
 * certain and the bus may tell it:
 *   - certain: a ProcessFD from the bus, or else a pidfd the model opens
 *     from the pid, whose process has the uid the bus gave and started no
 *     later than the connection's first appearance on the bus (its
 *     NameOwnerChanged; for a connection that was there before we attached,
 *     the attach), so a process that took a dead connection's pid later is
 *     never taken for it.  The pidfd is then held: every later decision
 *     about the connection (donor, receiver, impctl donor, chains) is about
 *     that process, or nothing once it has gone;
 *   - the bus may tell it: a bus owned by root (the uid at the other end of
 *     the bus socket, bus_new's owner) is believed about every process; any
 *     other bus only about processes of its owner's uid.  A user can serve
 *     anything at their own bus's address; it gets them nothing they could
 *     not get from importanced's own socket.
 * A connection not believed is kept as such (it neither gives nor takes
 * boosts) until it disconnects, so that it costs one look-up.
 *
 * Bounds, per bus: connections, names and calls tracked (dbus-max-*); of
 * the calls and names, one uid holds at most a share (BUS_SHARE_DIVISOR-th
 * of the table), so that a uid that is no donor cannot fill them for the
 * others; each decided call is a message in flight of its caller's uid
 * (user.h); a connection whose identity is not known yet holds at most
 * BUS_UNDECIDED_MAX calls.  What does not fit is not tracked: it boosts
 * nothing.
 *
 * Budgets across buses (user.h, USAGE_BUS_CONNECTIONS): each connection
 * tracked, with the pidfd it holds once known, is charged to one uid and to
 * the global budget.  On a user's bus that uid is its owner, for everything
 * the bus announces (its word about whose a connection is buys nothing);
 * on root's bus it is the connection's uid once believed, and until then
 * the global budget alone.  A connection over its uid's budget is kept
 * without a pidfd, as one not believed.
 *
 * Ownership: a bus is created by its feeder and freed by it; the strings
 * passed to the events are borrowed for the call; a pidfd in an identity
 * becomes the model's.
 */
#ifndef IMPD_BUS_H
#define IMPD_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "importance/importance.h"

struct actor;
struct broker;
struct bus;

/* one uid's share of a bus's call and name tables: 1/BUS_SHARE_DIVISOR */
#define BUS_SHARE_DIVISOR 4
/* calls a connection may have waiting for its identity */
#define BUS_UNDECIDED_MAX 64

/* What the model asks of its feeder.  Each returns 0 when the answer will
 * come as an event, or -errno (then the model takes it as unknown now). */
struct bus_ops {
	/* who unique is: answered by bus_conn_identity / bus_conn_unknown */
	int (*resolve)(void *ctx, const char *unique);
	/* who owns name: answered by bus_name_owner */
	int (*resolve_name)(void *ctx, const char *name);
};

/* What the bus says about a connection's process. */
struct bus_identity {
	pid_t pid;
	uid_t uid;  /* the uid the bus recorded when it connected */
	int pidfd;  /* the bus's ProcessFD, or -1 */
};

/* A bus watched at where (for messages), owned by owner (the peer uid of
 * the bus socket; (uid_t)-1 when unknown: then nobody is believed).
 * 0 or -errno. */
int bus_new(struct broker *b, const char *where, uid_t owner, const struct bus_ops *ops, void *ctx,
	    struct bus **out);
/* Everything it holds goes (every boost from it drops), then the bus. */
void bus_free(struct bus *bus);
const char *bus_where(const struct bus *bus);

/* --- events, in the bus's order; any input is safe --- */

/* The feeder is watching from now (times: CLOCK_BOOTTIME usec), owned by
 * owner; what was known before is forgotten (every boost dropped). */
void bus_attached(struct bus *bus, uid_t owner, uint64_t now);
/* The bus announced a new connection (NameOwnerChanged with no old owner). */
void bus_conn_appeared(struct bus *bus, const char *unique, uint64_t now);
/* The answer to resolve. */
void bus_conn_identity(struct bus *bus, const char *unique, const struct bus_identity *id);
/* resolve failed: -ESRCH/-ENXIO the connection is gone; -ETIMEDOUT not
 * answered in time (it is asked about again the next time it matters);
 * anything else: it cannot be told (it neither gives nor takes boosts until
 * it disconnects).  Its calls end. */
void bus_conn_unknown(struct bus *bus, const char *unique, int error);
/* The connection disconnected: its calls end. */
void bus_conn_gone(struct bus *bus, const char *unique);
/* name is owned by owner now (NULL or "": by nobody); a change or the
 * answer to resolve_name. */
void bus_name_owner(struct bus *bus, const char *name, const char *owner);
/* A method call expecting a reply, from sender to destination (a unique
 * or well-known name), routed at now. */
void bus_call(struct bus *bus, const char *sender, const char *destination, uint64_t serial, uint64_t now);
/* A method return or error from sender to destination for reply_serial. */
void bus_reply(struct bus *bus, const char *sender, const char *destination, uint64_t reply_serial);

/* The owner the bus knows now of name (NULL: not known).  For the feeder. */
const char *bus_known_owner(struct bus *bus, const char *name);

/* Counts of one bus (tests, fuzzers and diagnostics).  undecided: calls
 * waiting for an identity or an owner; resolving: look-ups asked. */
struct bus_counts {
	size_t connections, names, calls, undecided, resolving, pidfds;
};
void bus_counts(const struct bus *bus, struct bus_counts *out);

/* Checks the model's invariants (tests); 0 or -EUCLEAN. */
int bus_check(const struct bus *bus);

/* impctl donor: every bus connection of the process alive now as pid (the
 * process its identity was matched to) becomes a live donor, or stops
 * being one.  0, or -ESRCH when there is none. */
int bus_set_donor(struct broker *b, pid_t pid, bool on);

/* The foreground changed (foreground.h): every donor connection's live
 * state is decided again. */
void bus_foreground_apply(struct broker *b);

/* Calls fn for every bus connection that has a task. */
typedef void bus_task_fn(void *ctx, const struct actor *actor, imp_task *task, bool receiver, const char *bus,
			 const char *unique);
void bus_foreach_task(struct broker *b, bus_task_fn *fn, void *ctx);

#endif

/*
 * The broker: importanced's state, one importance domain and everything
 * around it, driven by an sd-event loop.
 *
 * The daemon is a flow: sources turn what they see into the engine's
 * terms (tasks, ports, messages, vouchers, live donors), the one engine
 * decides who is boosted, and its policy callback hands each edge to the
 * process (process.h) and its boost backend.  After every dispatch of any
 * source, before it waits again, the loop re-arms the engine's timer
 * (broker_rearm_timer).
 *
 * Sources, each a module with its unit test:
 *   peer, driver, receive   importanced's own socket: connections and their
 *            identity, requests and the one dispatcher that replies,
 *            blocking receives (parked, waiting on a port, woken, timed out)
 *   port, name, filelock    its ports, messages and send rights; the name
 *            registry; file-lock boosts
 *   bus, dbus  a watched D-Bus bus: the model (calls as engine messages)
 *            and its sd-bus attachment (the monitor, asynchronous look-ups)
 *   unix, unix-bpf  Unix sockets seen by the kernel: the model and its
 *            libbpf half (bpf/unix.bpf.c)
 *   foreground, foreground-bus, logind  what is in front per uid, which
 *            decides which donors are live (FOREGROUND, a bus interface,
 *            systemd-logind; the X11 source is agent/x11.c)
 * Around them:
 *   config   the keys, from the command line, the file and its drop-ins
 *   donor    donor rules
 *   user     per-uid and global limits
 *   diag     status, listings, graph, monitors
 *   rt       importanced's own real-time priority, on a budget
 * Sinks:
 *   process  processes held by pidfd, under the backend
 *   backend  the boost backends (nice, autogroup, cgroup v1/v2)
 */
#ifndef IMPD_BROKER_H
#define IMPD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "importance/importance.h"
#include "importance/protocol.h"
#include "user.h"

struct bus;
struct dbus_bus;
struct agent_bus;
struct foreground;
struct foreground_bus;
struct logind;
struct peer;
struct unix_tracer;

struct broker {
	sd_event *ev;
	struct broker_config cfg;
	imp_domain *dom;
	int listen_fd;
	sd_event_source *listen_src, *timer_src, *accept_retry;
	sd_event_source *prepare_src; /* before every wait: broker_rearm_timer */
	void *peers;     /* tsearch of struct peer* by id */
	void *ports;     /* tsearch of struct port* by id */
	void *names;     /* tsearch of struct port* by name */
	void *users;     /* tsearch of struct user* by uid */
	void *processes; /* tsearch of struct process* by pidfd inode */
	TAILQ_HEAD(, peer) peer_list;
	struct bus *dbus_buses;      /* the watched buses' models, a list (bus.h) */
	struct dbus_bus *dbus_watchers; /* their sd-bus attachments, a list (dbus.h) */
	struct unix_tracer *unix_tracer; /* Unix sockets (unix-bpf.h); NULL: off */
	struct foreground *fg; /* foreground.h */
	struct foreground_bus *fg_bus; /* foreground-bus.h; NULL: none */
	struct logind *logind; /* logind.h; NULL: not followed */
	struct agent_bus *agent_buses; /* buses session agents watch, a list (agent.h) */
	uint32_t next_agent_bus;
	struct usage usage; /* everyone together */
	uint64_t next_peer; /* peer ids never leave the daemon */
	uint64_t boosts, unboosts, requests, protocol_errors;
	uint8_t *inbuf;  /* one request frame (IMPP_MAX_BATCH + 1) */
	uint8_t *outbuf; /* one BATCH reply body being built */
	/* While a BATCH sends, receivers are woken only once it is done, so
	 * that one parked on a port gets the batch's messages together rather
	 * than the first alone: the ids of the ports to wake. */
	bool deferring;
	/* The request just handled left a receive waiting: its sender most
	 * likely waits for the reply and sends nothing more for now, so its
	 * socket is not read again in this wakeup (a read would only say
	 * EAGAIN; anything it did send is read at the next one). */
	bool waiting;
	size_t n_deferred;
	uint64_t deferred[IMPP_MAX_BATCH_ITEMS];
};

int broker_new(sd_event *ev, const struct broker_config *cfg, int listen_fd, struct broker **out);
void broker_free(struct broker *b);

/* A new configuration (SIGHUP): donor rules, name rules, limits and
 * verbosity take effect for what comes next, donor-foreground at once;
 * the backend, the socket, foreground-bus and logind stay as they were (a
 * restart changes them). */
void broker_reload(struct broker *b, const struct broker_config *cfg);

/* Keeps the loop's timer on the engine's next delayed-drop deadline.  The
 * loop calls it before every wait, after any source's dispatch (a prepare
 * callback), so sources need not. */
void broker_rearm_timer(struct broker *b);

/* tsearch()'s compare for the daemon's trees keyed by a uint64_t their
 * objects start with: peers, ports, processes, vouchers, send rights. */
int cmp_u64(const void *a, const void *b);

/* The engine's counts (tests and fuzzers check that nothing is left). */
int broker_engine_stats(struct broker *b, imp_stats *stats);

#endif

/*
 * dbus: the sd-bus attachment of a watched bus (its model is bus.h).
 *
 * importanced watches each configured bus (config key `dbus`) through two
 * sd-bus connections: a monitor (org.freedesktop.DBus.Monitoring.
 * BecomeMonitor), which sees every message the bus routes, in the bus's
 * order, and an ordinary connection for look-ups (who owns a name, whose
 * process a connection is).  Nothing is sent to the services or their
 * callers, and they need no change.  What the monitor reads becomes the
 * model's events (dbus_handle); the model's questions become asynchronous
 * calls to the bus driver (GetConnectionCredentials, GetNameOwner), whose
 * replies come back through the loop as events: nothing here waits on the
 * bus, BecomeMonitor included (asked asynchronously at every connection;
 * the monitor is read as below once it is answered).  At most
 * DBUS_LOOKUPS_MAX look-ups are asked at once per bus, each bounded by a
 * timeout; up to DBUS_QUEUED_MAX more wait their turn, and what does not
 * fit either is taken as unknown (asked again when it next matters).
 *
 * The bus's owner is the uid at the other end of the look-up connection's
 * socket (SO_PEERCRED), given to the model, which believes a bus not run by
 * root only about its owner's processes (bus.h).
 *
 * The monitor is read in batches (dbus-batch-usec): a call's boost starts
 * at most that long after the bus routed it, and a call answered within
 * one batch boosts nothing (dbus.c, monitor_drain).
 */
#ifndef IMPD_DBUS_H
#define IMPD_DBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "dbus-event.h"

struct broker;
struct bus;

/* look-ups asked at once, per bus, and waiting their turn beyond those */
#define DBUS_LOOKUPS_MAX 64
#define DBUS_QUEUED_MAX 1024

/* Attaches to every bus of b->cfg.dbus (a bus that cannot be reached now
 * is tried again every few seconds).  0 or -errno. */
int dbus_start(struct broker *b);

/* Detaches from every bus: every call's boost is dropped. */
void dbus_stop(struct broker *b);

/* One routed message, in the bus's order, as the model's event; now: when
 * it was read (CLOCK_BOOTTIME usec).  Any input is safe. */
void dbus_handle(struct bus *bus, const struct dbus_event *ev, uint64_t now);

/* Messages read together, in order: a call and its reply both among them
 * are neither (the call was over before we knew of it); the rest as
 * dbus_handle.  Any input is safe. */
void dbus_handle_batch(struct bus *bus, const struct dbus_event *evs, size_t n, uint64_t now);

#endif

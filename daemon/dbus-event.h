/*
 * dbus-event: what importanced reads of a D-Bus bus through sd-bus: a
 * routed message as an event, a connection's credentials, the bus's
 * owner; and how a watcher opens its connections.  No state of its own;
 * linked by the daemon (dbus.c, which feeds the model in bus.h) and by the
 * session agent (agent/importanced-agent.c, which sends the same events
 * and answers to the daemon).
 */
#ifndef IMPD_DBUS_EVENT_H
#define IMPD_DBUS_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "bus.h"

#define DBUS_DRIVER "org.freedesktop.DBus"
#define DBUS_DRIVER_PATH "/org/freedesktop/DBus"
/* the longest bus address a watcher takes */
#define DBUS_ADDRESS_MAX 576

/* What the handler uses of a monitored message. */
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

/* Whether ev is the bus driver's NameOwnerChanged. */
bool dbus_event_is_owner_change(const struct dbus_event *ev);

/* Opens a connection to where ("system", "session": the environment's
 * address or $XDG_RUNTIME_DIR/bus; or an address), as a monitor or for
 * calls, whose method calls time out after call_usec.  0 or -errno
 * (-ENOMEDIUM: no session bus is known). */
int dbus_open(const char *where, bool monitor, uint64_t call_usec, sd_bus **out);

/* The BecomeMonitor call a watcher sends on its monitor connection: for
 * what the handler needs (calls, returns, errors and the driver's
 * NameOwnerChanged).  0 or -errno. */
int dbus_become_monitor_call(sd_bus *monitor, sd_bus_message **out);

/* The uid at the other end of the bus's socket: its owner.  (uid_t)-1
 * where the kernel cannot say (a bus over TCP). */
uid_t dbus_owner(sd_bus *bus);

/* Reads GetConnectionCredentials' answer into id (with a ProcessFD: a
 * copy of it, the caller's).  0 or -errno (-ESRCH: it names no process). */
int dbus_read_creds(sd_bus_message *reply, struct bus_identity *id);

/* A driver's error reply as an errno: no such connection or name is
 * -ESRCH. */
int dbus_reply_errno(sd_bus_message *m);

#endif

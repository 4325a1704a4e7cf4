/*
 * dbus-event: what importanced uses of a routed D-Bus message, read from
 * sd-bus's message.  Pure: no state, no bus; linked by the daemon (dbus.c
 * hands events to the model) and by the session agent (which sends them
 * to the daemon, agent/agent.c).
 */
#ifndef IMPD_DBUS_EVENT_H
#define IMPD_DBUS_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#define DBUS_DRIVER "org.freedesktop.DBus"
#define DBUS_DRIVER_PATH "/org/freedesktop/DBus"

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

#endif

/* dbus-event (dbus-event.h): what importanced reads of a bus. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dbus-event.h"

static bool is_driver(const char *s)
{
	return s && !strcmp(s, DBUS_DRIVER);
}

bool dbus_event_is_owner_change(const struct dbus_event *ev)
{
	return ev->type == SD_BUS_MESSAGE_SIGNAL && is_driver(ev->sender) && ev->interface &&
	       !strcmp(ev->interface, DBUS_DRIVER) && ev->member && !strcmp(ev->member, "NameOwnerChanged");
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

int dbus_read_creds(sd_bus_message *reply, struct bus_identity *id)
{
	uint32_t p = 0, u = (uint32_t)-1;
	int r = sd_bus_message_enter_container(reply, 'a', "{sv}");

	id->pidfd = -1;
	while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		const char *key;

		if ((r = sd_bus_message_read(reply, "s", &key)) < 0)
			break;
		if (!strcmp(key, "ProcessID"))
			r = sd_bus_message_read(reply, "v", "u", &p);
		else if (!strcmp(key, "UnixUserID"))
			r = sd_bus_message_read(reply, "v", "u", &u);
		else if (!strcmp(key, "ProcessFD") && id->pidfd < 0) {
			int given;

			if ((r = sd_bus_message_read(reply, "v", "h", &given)) >= 0 &&
			    (id->pidfd = fcntl(given, F_DUPFD_CLOEXEC, 3)) < 0)
				r = -errno;
		} else
			r = sd_bus_message_skip(reply, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	if (r >= 0 && !p && id->pidfd < 0)
		r = -ESRCH;
	if (r < 0) {
		if (id->pidfd >= 0)
			close(id->pidfd);
		id->pidfd = -1;
		return r;
	}
	id->pid = (pid_t)p;
	id->uid = (uid_t)u;
	return 0;
}

int dbus_reply_errno(sd_bus_message *m)
{
	const sd_bus_error *e = sd_bus_message_get_error(m);

	if (sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.NameHasNoOwner"))
		return -ESRCH;
	return -sd_bus_message_get_errno(m) ?: -EIO;
}

int dbus_open(const char *where, bool monitor, uint64_t call_usec, sd_bus **out)
{
	char address[DBUS_ADDRESS_MAX];
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
	    (r = sd_bus_set_method_call_timeout(bus, call_usec)) < 0 || (r = sd_bus_start(bus)) < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*out = bus;
	return 0;
}

uid_t dbus_owner(sd_bus *bus)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sd_bus_get_fd(bus), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return (uid_t)-1;
	return cred.uid;
}

int dbus_become_monitor_call(sd_bus *monitor, sd_bus_message **out)
{
	sd_bus_message *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(monitor, &m, DBUS_DRIVER, DBUS_DRIVER_PATH, "org.freedesktop.DBus.Monitoring",
					   "BecomeMonitor");
	if (r >= 0)
		r = sd_bus_message_append(m, "asu", 4, "type='method_call'", "type='method_return'", "type='error'",
					  "type='signal',sender='" DBUS_DRIVER "',interface='" DBUS_DRIVER
					  "',member='NameOwnerChanged'",
					  0);
	if (r < 0) {
		sd_bus_message_unref(m);
		return r;
	}
	*out = m;
	return 0;
}

/* dbus-event (dbus-event.h): a routed message as what importanced uses. */
#include <errno.h>
#include <string.h>

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

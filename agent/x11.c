/*
 * The X11 foreground source (x11.h).
 *
 * One chain of two requests answers "who is in front": GetProperty of
 * _NET_ACTIVE_WINDOW on the root window, then GetProperty of _NET_WM_PID on
 * the window it names.  At most one chain is in flight; a PropertyNotify
 * for _NET_ACTIVE_WINDOW that arrives meanwhile marks it stale, and when it
 * ends a new one starts, so a burst of focus changes costs two round trips
 * and the last one wins.  Replies are taken with xcb_poll_for_reply in the
 * io handler, after xcb_poll_for_event has read what the socket had: the
 * loop never waits on the server.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xcb/xcb.h>
#include <xcb/xcbext.h> /* xcb_poll_for_reply */

#include "x11.h"

enum step { STEP_IDLE, STEP_ACTIVE, STEP_PID };

struct x11_source {
	sd_event *ev;
	sd_event_source *io;
	xcb_connection_t *conn;
	xcb_window_t root;
	xcb_atom_t active_atom, pid_atom;
	enum step step;
	unsigned int seq; /* of the request in flight */
	bool stale;       /* the active window changed while a chain ran */
	pid_t last;       /* last reported; -2: none yet */
	x11_active_fn *on_active;
	void *ud;
};

static void report(struct x11_source *s, pid_t pid)
{
	if (pid == s->last)
		return;
	s->last = pid;
	s->on_active(pid, s->ud);
}

static void start_chain(struct x11_source *s)
{
	xcb_get_property_cookie_t ck =
		xcb_get_property(s->conn, 0, s->root, s->active_atom, XCB_ATOM_WINDOW, 0, 1);

	s->step = STEP_ACTIVE;
	s->seq = ck.sequence;
	s->stale = false;
	xcb_flush(s->conn);
}

/* 32-bit property value, or 0 */
static uint32_t value32(xcb_get_property_reply_t *r)
{
	uint32_t v = 0;

	if (r && r->format == 32 && xcb_get_property_value_length(r) >= 4)
		memcpy(&v, xcb_get_property_value(r), 4);
	return v;
}

/* Takes the reply of the request in flight if it is there: true if the
 * chain moved. */
static bool advance(struct x11_source *s)
{
	xcb_generic_error_t *err = NULL;
	void *reply = NULL;
	uint32_t v;

	if (s->step == STEP_IDLE || !xcb_poll_for_reply(s->conn, s->seq, &reply, &err))
		return false;
	v = value32(reply); /* an error (the window went away): 0 */
	free(reply);
	free(err);
	if (s->step == STEP_ACTIVE && v && !s->stale) {
		xcb_get_property_cookie_t ck = xcb_get_property(s->conn, 0, v, s->pid_atom, XCB_ATOM_CARDINAL, 0, 1);

		s->step = STEP_PID;
		s->seq = ck.sequence;
		xcb_flush(s->conn);
		return true;
	}
	s->step = STEP_IDLE;
	if (s->stale) {
		start_chain(s);
		return true;
	}
	report(s, (pid_t)(v > 0x7fffffffu ? 0 : v));
	return true;
}

static void lost(struct x11_source *s)
{
	sd_event_source_set_enabled(s->io, SD_EVENT_OFF);
	s->step = STEP_IDLE;
	s->last = -2;
	report(s, -1);
}

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *ud)
{
	struct x11_source *s = ud;
	xcb_generic_event_t *ev;
	bool moved;

	(void)src;
	(void)fd;
	(void)revents;
	do {
		while ((ev = xcb_poll_for_event(s->conn))) {
			if ((ev->response_type & 0x7f) == XCB_PROPERTY_NOTIFY) {
				xcb_property_notify_event_t *pn = (xcb_property_notify_event_t *)ev;

				if (pn->window == s->root && pn->atom == s->active_atom) {
					if (s->step == STEP_IDLE)
						start_chain(s);
					else
						s->stale = true;
				}
			}
			free(ev);
		}
		if (xcb_connection_has_error(s->conn)) {
			lost(s);
			return 0;
		}
		moved = advance(s);
	} while (moved);
	return 0;
}

static xcb_atom_t atom(xcb_connection_t *c, const char *name)
{
	xcb_intern_atom_reply_t *r = xcb_intern_atom_reply(c, xcb_intern_atom(c, 0, (uint16_t)strlen(name), name), NULL);
	xcb_atom_t a = r ? r->atom : XCB_ATOM_NONE;

	free(r);
	return a;
}

int x11_source_new(sd_event *e, const char *display, x11_active_fn *on_active, void *ud, struct x11_source **out)
{
	uint32_t mask = XCB_EVENT_MASK_PROPERTY_CHANGE;
	struct x11_source *s;
	const xcb_setup_t *setup;
	xcb_screen_iterator_t it;
	int screen = 0, r;

	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->last = -2;
	s->on_active = on_active;
	s->ud = ud;
	s->conn = xcb_connect(display, &screen);
	if (xcb_connection_has_error(s->conn)) {
		r = -ECONNREFUSED;
		goto fail;
	}
	setup = xcb_get_setup(s->conn);
	it = xcb_setup_roots_iterator(setup);
	for (int i = 0; i < screen && it.rem; i++)
		xcb_screen_next(&it);
	if (!it.rem) {
		r = -ENODEV;
		goto fail;
	}
	s->root = it.data->root;
	s->active_atom = atom(s->conn, "_NET_ACTIVE_WINDOW");
	s->pid_atom = atom(s->conn, "_NET_WM_PID");
	if (s->active_atom == XCB_ATOM_NONE || s->pid_atom == XCB_ATOM_NONE) {
		r = -EPROTO;
		goto fail;
	}
	xcb_change_window_attributes(s->conn, s->root, XCB_CW_EVENT_MASK, &mask);
	s->ev = sd_event_ref(e);
	if ((r = sd_event_add_io(e, &s->io, xcb_get_file_descriptor(s->conn), EPOLLIN, on_io, s)) < 0)
		goto fail;
	start_chain(s); /* what is in front now */
	*out = s;
	return 0;
fail:
	x11_source_free(s);
	return r;
}

void x11_source_free(struct x11_source *s)
{
	if (!s)
		return;
	sd_event_source_disable_unref(s->io);
	if (s->conn)
		xcb_disconnect(s->conn);
	sd_event_unref(s->ev);
	free(s);
}

/*
 * The X11 foreground source (x11.h).
 *
 * Connecting: a detached thread makes the connection, reads the server's
 * setup for the screen's root window and interns the two atoms, all of
 * which wait on the server, then wakes the loop through an eventfd.  What
 * it made is in a `struct attempt` that the thread and the source share,
 * counted: whichever lets go last frees it, so a source freed while the
 * server has not answered simply lets go of it, and the thread, when it
 * ends, disconnects what it made.
 *
 * Watching: one chain of two requests answers "who is in front":
 * GetProperty of _NET_ACTIVE_WINDOW on the root window, then GetProperty
 * of _NET_WM_PID on the window it names.  At most one chain is in flight;
 * a PropertyNotify for _NET_ACTIVE_WINDOW that arrives meanwhile marks it
 * stale, and when it ends a new one starts, so a burst of focus changes
 * costs two round trips and the last one wins.  Replies are taken with
 * xcb_poll_for_reply in the io handler, after xcb_poll_for_event has read
 * what the socket had: the loop never waits on the server.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xcb/xcb.h>
#include <xcb/xcbext.h> /* xcb_poll_for_reply */

#include "x11.h"

enum step { STEP_IDLE, STEP_ACTIVE, STEP_PID };

/* One connection being made; the thread's and the source's, counted. */
struct attempt {
	atomic_int refs;
	int done; /* eventfd: written once the thread is through */
	char display[256];
	/* the thread's result, read by the source after `done` */
	int error;
	xcb_connection_t *conn;
	xcb_window_t root;
	xcb_atom_t active_atom, pid_atom;
};

struct x11_source {
	sd_event *ev;
	sd_event_source *io;
	struct attempt *attempt; /* while connecting */
	xcb_connection_t *conn;
	xcb_window_t root;
	xcb_atom_t active_atom, pid_atom;
	enum step step;
	unsigned int seq; /* of the request in flight */
	bool stale;       /* the active window changed while a chain ran */
	bool over;        /* -1 reported */
	pid_t last;       /* last reported; -2: none yet */
	x11_active_fn *on_active;
	void *ud;
};

static void attempt_unref(struct attempt *t)
{
	if (atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	if (t->conn)
		xcb_disconnect(t->conn);
	close(t->done);
	free(t);
}

static xcb_atom_t atom(xcb_connection_t *c, const char *name)
{
	xcb_intern_atom_reply_t *r = xcb_intern_atom_reply(c, xcb_intern_atom(c, 0, (uint16_t)strlen(name), name), NULL);
	xcb_atom_t a = r ? r->atom : XCB_ATOM_NONE;

	free(r);
	return a;
}

/* The thread: everything that waits on the server before watching. */
static void *connect_thread(void *arg)
{
	struct attempt *t = arg;
	xcb_screen_iterator_t it;
	int screen = 0;

	t->conn = xcb_connect(t->display, &screen);
	if (xcb_connection_has_error(t->conn)) {
		t->error = -ECONNREFUSED;
		goto out;
	}
	it = xcb_setup_roots_iterator(xcb_get_setup(t->conn));
	for (int i = 0; i < screen && it.rem; i++)
		xcb_screen_next(&it);
	if (!it.rem) {
		t->error = -ENODEV;
		goto out;
	}
	t->root = it.data->root;
	t->active_atom = atom(t->conn, "_NET_ACTIVE_WINDOW");
	t->pid_atom = atom(t->conn, "_NET_WM_PID");
	if (t->active_atom == XCB_ATOM_NONE || t->pid_atom == XCB_ATOM_NONE)
		t->error = xcb_connection_has_error(t->conn) ? -ECONNRESET : -EPROTO;
out:
	if (eventfd_write(t->done, 1) < 0)
		abort(); /* a fresh eventfd cannot be full */
	attempt_unref(t);
	return NULL;
}

static void report(struct x11_source *s, pid_t pid)
{
	if (pid == s->last || s->over)
		return;
	s->last = pid;
	s->over = pid < 0;
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

/* whether the property exists (an error: the window went away) */
static bool present(xcb_get_property_reply_t *r)
{
	return r && r->type != XCB_ATOM_NONE;
}

/* Takes the reply of the request in flight if it is there: true if the
 * chain moved. */
static bool advance(struct x11_source *s)
{
	xcb_generic_error_t *err = NULL;
	void *reply = NULL;
	bool set;
	uint32_t v;

	if (s->step == STEP_IDLE || !xcb_poll_for_reply(s->conn, s->seq, &reply, &err))
		return false;
	v = value32(reply); /* an error (the window went away): 0 */
	set = present(reply);
	free(reply);
	free(err);
	if (s->step == STEP_ACTIVE && !set && !s->stale) {
		s->step = STEP_IDLE; /* no window manager says yet */
		return true;
	}
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

/* The thread is through: watch what it made, or report that it failed. */
static int on_connected(sd_event_source *src, int fd, uint32_t revents, void *ud)
{
	uint32_t mask = XCB_EVENT_MASK_PROPERTY_CHANGE;
	struct x11_source *s = ud;
	struct attempt *t = s->attempt;
	int r;

	(void)src;
	(void)fd;
	(void)revents;
	s->io = sd_event_source_disable_unref(s->io);
	s->attempt = NULL;
	if (t->error == 0) {
		s->conn = t->conn; /* the source's from now on */
		t->conn = NULL;
		s->root = t->root;
		s->active_atom = t->active_atom;
		s->pid_atom = t->pid_atom;
	}
	attempt_unref(t);
	if (!s->conn)
		goto fail;
	xcb_change_window_attributes(s->conn, s->root, XCB_CW_EVENT_MASK, &mask);
	if ((r = sd_event_add_io(s->ev, &s->io, xcb_get_file_descriptor(s->conn), EPOLLIN, on_io, s)) < 0)
		goto fail;
	start_chain(s); /* what is in front now */
	return 0;
fail:
	report(s, -1);
	return 0;
}

int x11_source_new(sd_event *e, const char *display, x11_active_fn *on_active, void *ud, struct x11_source **out)
{
	struct x11_source *s;
	struct attempt *t;
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t th;
	int r;

	if (!display)
		display = getenv("DISPLAY");
	if (!display || !display[0])
		return -ENXIO;
	if (strlen(display) >= sizeof(t->display))
		return -ENAMETOOLONG;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->last = -2;
	s->on_active = on_active;
	s->ud = ud;
	s->ev = sd_event_ref(e);
	if (!(t = calloc(1, sizeof(*t)))) {
		r = -ENOMEM;
		goto fail;
	}
	strcpy(t->display, display);
	atomic_init(&t->refs, 1);
	s->attempt = t;
	if ((t->done = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = sd_event_add_io(e, &s->io, t->done, EPOLLIN, on_connected, s)) < 0)
		goto fail;
	/* the thread takes no signal: the loop's signalfd gets them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	atomic_fetch_add(&t->refs, 1);
	if ((r = pthread_attr_init(&attr)) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		r = pthread_create(&th, &attr, connect_thread, t);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		atomic_fetch_sub(&t->refs, 1);
		r = -r;
		goto fail;
	}
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
	if (s->attempt)
		attempt_unref(s->attempt);
	if (s->conn)
		xcb_disconnect(s->conn);
	sd_event_unref(s->ev);
	free(s);
}

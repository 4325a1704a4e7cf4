/*
 * libimportance-client in a GLib main loop (header only: include it in a
 * program that links glib-2.0).
 *
 *   GSource *source = impc_glib_source_new(c, on_ready, data);
 *   g_source_attach(source, context);      (NULL: the default context)
 *   ...
 *   g_source_destroy(source); g_source_unref(source);   then impc_close(c)
 *
 * Whenever the connection has something to do (impc_fd() readable), the
 * context calls impc_process(c) and then on_ready(c, data), which
 * collects what is there with impc_next_completion() and
 * impc_next_event().  The source works across reconnects
 * (IMPC_RECONNECT): the descriptor is the same.  Use it from the thread
 * that runs the context.
 */
#ifndef IMPORTANCE_CLIENT_GLIB_H
#define IMPORTANCE_CLIENT_GLIB_H

#include <glib-unix.h>
#include <glib.h>

#include "importance/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*impc_glib_ready_fn)(impc *c, void *userdata);

/* What the source's callback carries; freed with the source. */
struct impc_glib_watch_ {
	impc *c;
	impc_glib_ready_fn ready;
	void *userdata;
};

static inline gboolean impc_glib_on_fd_(gint fd, GIOCondition condition, gpointer data)
{
	struct impc_glib_watch_ *w = (struct impc_glib_watch_ *)data;

	(void)fd;
	(void)condition;
	impc_process(w->c);
	w->ready(w->c, w->userdata);
	return G_SOURCE_CONTINUE;
}

/* A source watching c, not attached yet; NULL on a bad argument. */
static inline GSource *impc_glib_source_new(impc *c, impc_glib_ready_fn ready, void *userdata)
{
	struct impc_glib_watch_ *w;
	GSource *s;

	if (!c || !ready)
		return NULL;
	w = g_new(struct impc_glib_watch_, 1);
	w->c = c;
	w->ready = ready;
	w->userdata = userdata;
	s = g_unix_fd_source_new(impc_fd(c), G_IO_IN);
	g_source_set_callback(s, (GSourceFunc)(void (*)(void))impc_glib_on_fd_, w, g_free);
	return s;
}

#ifdef __cplusplus
}
#endif

#endif

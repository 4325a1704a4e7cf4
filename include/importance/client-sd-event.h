/*
 * libimportance-client in an sd-event loop (header only: include it in a
 * program that links libsystemd).
 *
 *   impc_sd_event_attach(c, event, on_ready, data, &source);
 *
 * Whenever the connection has something to do (impc_fd() readable), the
 * loop calls impc_process(c) and then on_ready(c, data), which collects
 * what is there with impc_next_completion() and impc_next_event().  The
 * source works across reconnects (IMPC_RECONNECT) as the descriptor is
 * the same.  Stop with sd_event_source_disable_unref(source) before
 * impc_close(c).  Call both from the loop's thread.
 */
#ifndef IMPORTANCE_CLIENT_SD_EVENT_H
#define IMPORTANCE_CLIENT_SD_EVENT_H

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>

#include "importance/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*impc_sd_event_ready_fn)(impc *c, void *userdata);

/* What the source carries; freed with the source. */
struct impc_sd_event_watch_ {
	impc *c;
	impc_sd_event_ready_fn ready;
	void *userdata;
};

static inline int impc_sd_event_on_io_(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct impc_sd_event_watch_ *w = (struct impc_sd_event_watch_ *)userdata;

	(void)s;
	(void)fd;
	(void)revents;
	impc_process(w->c);
	w->ready(w->c, w->userdata);
	return 0;
}

/* Watches c on e; *out (may be NULL: then the loop owns the source, which
 * goes with it) gets the source.  0 or a negative errno. */
static inline int impc_sd_event_attach(impc *c, sd_event *e, impc_sd_event_ready_fn ready, void *userdata,
				       sd_event_source **out)
{
	struct impc_sd_event_watch_ *w;
	sd_event_source *s;
	int r;

	if (!c || !e || !ready)
		return -EINVAL;
	if (!(w = (struct impc_sd_event_watch_ *)malloc(sizeof(*w))))
		return -ENOMEM;
	w->c = c;
	w->ready = ready;
	w->userdata = userdata;
	if ((r = sd_event_add_io(e, &s, impc_fd(c), EPOLLIN, impc_sd_event_on_io_, w)) < 0) {
		free(w);
		return r;
	}
	sd_event_source_set_destroy_callback(s, free);
	if (out) {
		*out = s;
	} else {
		sd_event_source_set_floating(s, 1);
		sd_event_source_unref(s);
	}
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif

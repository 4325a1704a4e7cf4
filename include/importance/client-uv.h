/*
 * libimportance-client in a libuv loop (header only: include it in a
 * program that links libuv).
 *
 *   impc_uv watch;
 *   impc_uv_start(loop, &watch, c, on_ready, data);
 *   ...
 *   impc_uv_stop(&watch, on_closed);    then impc_close(c) in on_closed
 *
 * As libuv's own handles: the impc_uv is the caller's and must stay valid
 * until the close callback.  Whenever the connection has something to do
 * (impc_fd() readable), the loop calls impc_process(c) and then
 * on_ready(c, data), which collects what is there with
 * impc_next_completion() and impc_next_event().  The watch works across
 * reconnects (IMPC_RECONNECT): the descriptor is the same.  Call from the
 * loop's thread.
 */
#ifndef IMPORTANCE_CLIENT_UV_H
#define IMPORTANCE_CLIENT_UV_H

#include <uv.h>

#include "importance/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*impc_uv_ready_fn)(impc *c, void *userdata);

typedef struct impc_uv {
	uv_poll_t poll; /* first: the handle libuv sees */
	impc *c;
	impc_uv_ready_fn ready;
	void *userdata;
} impc_uv;

static inline void impc_uv_on_poll_(uv_poll_t *p, int status, int events)
{
	impc_uv *w = (impc_uv *)p->data;

	(void)status;
	(void)events;
	impc_process(w->c);
	w->ready(w->c, w->userdata);
}

/* Starts watching c on loop: 0 or a negative libuv error. */
static inline int impc_uv_start(uv_loop_t *loop, impc_uv *w, impc *c, impc_uv_ready_fn ready, void *userdata)
{
	int r;

	if (!loop || !w || !c || !ready)
		return UV_EINVAL;
	w->c = c;
	w->ready = ready;
	w->userdata = userdata;
	if ((r = uv_poll_init(loop, &w->poll, impc_fd(c))) < 0)
		return r;
	w->poll.data = w;
	if ((r = uv_poll_start(&w->poll, UV_READABLE, impc_uv_on_poll_)) < 0)
		uv_close((uv_handle_t *)&w->poll, NULL);
	return r;
}

/* Stops watching; closed (the impc_uv free to go) when closed runs (may
 * be NULL). */
static inline void impc_uv_stop(impc_uv *w, uv_close_cb closed)
{
	uv_poll_stop(&w->poll);
	uv_close((uv_handle_t *)&w->poll, closed);
}

#ifdef __cplusplus
}
#endif

#endif

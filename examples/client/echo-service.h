/*
 * The echo service of the example servers: it serves names, one port
 * each, answering every request on the request's reply port with
 * "NAME:" and the request's text (and writing the same into the first
 * file the request carried, if any).  It runs on libimportance-client's
 * asynchronous calls; echo-server-sd-event.c and echo-server-uv.c put it
 * in an event loop.  It reconnects when importanced restarts: its ports
 * and names come back, and its receives wait again.
 */
#ifndef ECHO_SERVICE_H
#define ECHO_SERVICE_H

#include <importance/client.h>

#define ECHO_MAX_NAMES 8

struct echo_service {
	impc *c;
	size_t n;
	const char *names[ECHO_MAX_NAMES];
	uint64_t ports[ECHO_MAX_NAMES];
	unsigned served, peers_gone, reconnects;
};

/* Connects (socket: $IMPORTANCED_SOCKET), serves names[0..n-1] and
 * prints "ready".  0 or a negative errno. */
int echo_service_start(struct echo_service *s, char **names, size_t n);

/* What the loop calls when the connection is ready (the glue's
 * callback): answers the requests that came and takes the events. */
void echo_service_ready(impc *c, void *userdata);

#endif

/*
 * The echo service (echo-service.h) in a GLib main loop:
 *   echo-server-glib NAME...
 * serves each NAME until SIGTERM or SIGINT, then prints what it did.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <glib.h>
#include <importance/client-glib.h>

#include "echo-service.h"

static gboolean stop(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	struct echo_service s;
	GMainLoop *loop;
	GSource *watch;
	int e;

	if (argc < 2) {
		fprintf(stderr, "usage: echo-server-glib NAME...\n");
		return 2;
	}
	if ((e = echo_service_start(&s, argv + 1, (size_t)argc - 1)) < 0) {
		fprintf(stderr, "echo-server-glib: %s\n", strerror(-e));
		return 1;
	}
	loop = g_main_loop_new(NULL, FALSE);
	watch = impc_glib_source_new(s.c, echo_service_ready, &s);
	g_source_attach(watch, NULL);
	g_unix_signal_add(SIGTERM, stop, loop);
	g_unix_signal_add(SIGINT, stop, loop);
	g_main_loop_run(loop);
	printf("served %u peers-gone %u reconnects %u\n", s.served, s.peers_gone, s.reconnects);
	g_source_destroy(watch);
	g_source_unref(watch);
	impc_close(s.c);
	g_main_loop_unref(loop);
	return 0;
}

/*
 * The echo service (echo-service.h) in an sd-event loop:
 *   echo-server-sd-event NAME...
 * serves each NAME until SIGTERM or SIGINT, then prints what it did.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <importance/client-sd-event.h>
#include <systemd/sd-event.h>

#include "echo-service.h"

int main(int argc, char **argv)
{
	struct echo_service s;
	sd_event_source *watch;
	sd_event *loop;
	sigset_t stop;
	int e;

	if (argc < 2) {
		fprintf(stderr, "usage: echo-server-sd-event NAME...\n");
		return 2;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	if ((e = sd_event_default(&loop)) < 0 || (e = echo_service_start(&s, argv + 1, (size_t)argc - 1)) < 0 ||
	    (e = impc_sd_event_attach(s.c, loop, echo_service_ready, &s, &watch)) < 0 ||
	    (e = sd_event_add_signal(loop, NULL, SIGTERM, NULL, NULL)) < 0 ||
	    (e = sd_event_add_signal(loop, NULL, SIGINT, NULL, NULL)) < 0) {
		fprintf(stderr, "echo-server-sd-event: %s\n", strerror(-e));
		return 1;
	}
	e = sd_event_loop(loop);
	printf("served %u peers-gone %u reconnects %u\n", s.served, s.peers_gone, s.reconnects);
	sd_event_source_disable_unref(watch);
	impc_close(s.c);
	sd_event_unref(loop);
	return e < 0 ? 1 : 0;
}

/*
 * The echo service (echo-service.h) in a libuv loop:
 *   echo-server-uv NAME...
 * serves each NAME until SIGTERM or SIGINT, then prints what it did.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <importance/client-uv.h>
#include <uv.h>

#include "echo-service.h"

static impc_uv watch;
static uv_signal_t on_term, on_int;

static void stop(uv_signal_t *sig, int signum)
{
	(void)sig;
	(void)signum;
	impc_uv_stop(&watch, NULL);
	uv_close((uv_handle_t *)&on_term, NULL);
	uv_close((uv_handle_t *)&on_int, NULL);
}

int main(int argc, char **argv)
{
	struct echo_service s;
	uv_loop_t *loop = uv_default_loop();
	int e;

	if (argc < 2) {
		fprintf(stderr, "usage: echo-server-uv NAME...\n");
		return 2;
	}
	if ((e = echo_service_start(&s, argv + 1, (size_t)argc - 1)) < 0) {
		fprintf(stderr, "echo-server-uv: %s\n", strerror(-e));
		return 1;
	}
	if ((e = impc_uv_start(loop, &watch, s.c, echo_service_ready, &s)) < 0 ||
	    (e = uv_signal_init(loop, &on_term)) < 0 || (e = uv_signal_start(&on_term, stop, SIGTERM)) < 0 ||
	    (e = uv_signal_init(loop, &on_int)) < 0 || (e = uv_signal_start(&on_int, stop, SIGINT)) < 0) {
		fprintf(stderr, "echo-server-uv: %s\n", uv_strerror(e));
		return 1;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	printf("served %u peers-gone %u reconnects %u\n", s.served, s.peers_gone, s.reconnects);
	impc_close(s.c);
	uv_loop_close(loop);
	return 0;
}

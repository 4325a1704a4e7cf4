/*
 * A client of the echo service, with blocking calls:
 *   echo-client NAME COUNT [DELAY_MS]
 * sends COUNT requests to NAME, one at a time, DELAY_MS apart, each with
 * a reply port and a pipe's write end; checks the answer that comes on
 * the reply port and the one written into the pipe.  It rides out
 * importanced restarting (IMPC_RECONNECT): a request that fails because
 * the daemon or the server went is sent again once the name is back.
 * Prints "ok COUNT" and exits 0 when every request was answered.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <importance/client.h>

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* One request and both its answers: 0, or the error to retry on. */
static int ask(impc *c, uint64_t service, uint64_t reply_port, const char *name, int i)
{
	char text[64], want[320], got[320];
	int pipefd[2], e;
	impc_message m;
	ssize_t n;

	snprintf(text, sizeof(text), "request %d", i);
	snprintf(want, sizeof(want), "%s:%s", name, text);
	if (pipe(pipefd) < 0)
		return -errno;
	impc_send_args req = { service, text, strlen(text), 0, reply_port, 0, &pipefd[1], 1 };
	e = impc_send_receive(c, &req, 0, reply_port, 5000, 0, &m);
	close(pipefd[1]);
	if (e == 0) {
		if (m.len != strlen(want) || memcmp(m.data, want, m.len)) {
			fprintf(stderr, "echo-client: answer '%.*s', not '%s'\n", (int)m.len, (char *)m.data, want);
			e = -EBADMSG;
		} else if (poll(&(struct pollfd){ pipefd[0], POLLIN, 0 }, 1, 5000) != 1) {
			e = -ETIMEDOUT; /* the server kept the pipe and wrote nothing: ask again */
		} else if ((n = read(pipefd[0], got, sizeof(got))) != (ssize_t)strlen(want) || memcmp(got, want, (size_t)n)) {
			fprintf(stderr, "echo-client: the pipe said '%.*s', not '%s'\n", (int)(n > 0 ? n : 0), got, want);
			e = -EBADMSG;
		}
		impc_message_clear(&m);
	}
	close(pipefd[0]);
	return e;
}

int main(int argc, char **argv)
{
	uint64_t service = 0, reply_port;
	int count, delay, e = 0;
	impc *c;

	if (argc < 3) {
		fprintf(stderr, "usage: echo-client NAME COUNT [DELAY_MS]\n");
		return 2;
	}
	count = atoi(argv[2]);
	delay = argc > 3 ? atoi(argv[3]) : 0;
	if ((e = impc_connect(NULL, IMPC_RECONNECT, &c, NULL)) < 0 || (e = impc_port_allocate(c, false, &reply_port)) < 0) {
		fprintf(stderr, "echo-client: %s\n", strerror(-e));
		return 1;
	}
	for (int i = 0, tries = 0; i < count;) {
		if (!service && (e = impc_lookup(c, argv[1], &service)) < 0)
			service = 0;
		else
			e = ask(c, service, reply_port, argv[1], i);
		if (e == 0) {
			i++;
			tries = 0;
			if (delay)
				sleep_ms(delay);
			continue;
		}
		/* a server may take a while to be back after the daemon restarts
		 * (its reconnect timer, a slow machine): half a minute */
		if (e == -EBADMSG || ++tries > 600) {
			fprintf(stderr, "echo-client: request %d: %s\n", i, strerror(-e));
			impc_close(c);
			return 1;
		}
		/* the daemon (-ECONNRESET, -ENOTCONN) or the server (-EPIPE,
		 * -ENOENT, -ETIMEDOUT) is away: look the name up again */
		if (e == -EPIPE || e == -ENOENT)
			service = 0;
		sleep_ms(50);
	}
	printf("ok %d\n", count);
	impc_close(c);
	return 0;
}

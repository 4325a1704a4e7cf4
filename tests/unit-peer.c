/*
 * A client of importanced driven by bytes, for the shell tests that run
 * the daemon as its shipped unit would (test-unit-sandbox.sh): they start
 * it as whichever uid and nice value they want (setpriv, nice) and talk to
 * it through a pipe or fifo.
 *
 *   unit-peer SOCKET receive NAME   a receiver: a port that accepts
 *                                   boosts, registered as NAME
 *   unit-peer SOCKET send NAME      a sender to the port named NAME
 *
 * Once connected it writes one line, "D" if the daemon took it for a
 * donor and "R" if not, then reads one command byte at a time from
 * standard input and answers each with a line: "K" done, "E errno" failed.
 *
 *   s  send one message to NAME (looked up the first time)
 *   v  receive one message with its voucher (waits up to 10 s)
 *   x  release that voucher: the work is done
 *   f  fork a holder: a child that keeps the connection open (its copy of
 *      the socket) and does nothing else until it is killed or 60 s pass;
 *      answered "K PID"
 *   q  close the connection and exit 0 (end of input does the same)
 *   k  exit at once, the connection left to the kernel to close
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "importance/client.h"

static void answer(int e)
{
	if (e < 0)
		printf("E %d\n", -e);
	else if (e > 0)
		printf("K %d\n", e);
	else
		printf("K\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t port = 0, peer = 0, voucher = 0;
	bool receiver, donor = false;
	impc_message m;
	impc *c;
	int e, op;

	if (argc != 4 || (strcmp(argv[2], "receive") && strcmp(argv[2], "send"))) {
		fprintf(stderr, "usage: unit-peer SOCKET receive|send NAME\n");
		return 2;
	}
	receiver = !strcmp(argv[2], "receive");
	if ((e = impc_connect(argv[1], receiver ? IMPC_RECEIVER : 0, &c, &donor)) < 0) {
		fprintf(stderr, "unit-peer: connect %s: %s\n", argv[1], strerror(-e));
		return 1;
	}
	if (receiver && ((e = impc_port_allocate(c, true, &port)) < 0 || (e = impc_register(c, argv[3], port)) < 0)) {
		fprintf(stderr, "unit-peer: a port named %s: %s\n", argv[3], strerror(-e));
		return 1;
	}
	printf("%s\n", donor ? "D" : "R");
	fflush(stdout);
	while ((op = getchar()) != EOF) {
		switch (op) {
		case 's':
			e = peer ? 0 : impc_lookup(c, argv[3], &peer);
			if (e == 0)
				e = impc_send(c, peer, "work", 4, 0, 0, 0, NULL);
			break;
		case 'v':
			if ((e = impc_receive(c, port, 10000, IMPC_RECV_VOUCHER, &m)) == 0) {
				voucher = m.voucher;
				impc_message_clear(&m);
			}
			break;
		case 'x':
			e = impc_voucher_release(c, voucher);
			voucher = 0;
			break;
		case 'f':
			if ((e = fork()) == 0) {
				sleep(60);
				_exit(0);
			}
			if (e < 0)
				e = -errno;
			break;
		case 'q':
			impc_close(c);
			return 0;
		case 'k':
			_exit(0);
		case '\n':
			continue;
		default:
			e = -EINVAL;
		}
		answer(e);
	}
	impc_close(c);
	return 0;
}

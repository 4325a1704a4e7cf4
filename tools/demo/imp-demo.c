/*
 * imp-demo — the two sides of the importanced demo.
 *
 *   imp-demo server NAME [--busy-ms N] [--work-ms N] [--cpu-ms N] [--requests N]
 *       a background service: runs at nice 10, serves NAME, and is busy
 *       with its own work before it gets to each request; --cpu-ms: each
 *       request costs that much CPU time (else it sleeps --work-ms).
 *   imp-demo client NAME [--uid UID] [--requests N] [--interval-ms N] [--times]
 *       a foreground app: sends requests and waits for the replies;
 *       --times: prints only each request's time in ms, one a line.
 *   imp-demo load
 *       a busy loop in a session of its own, until killed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "importance/client.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool flag(int argc, char **argv, const char *name)
{
	for (int i = 3; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile unsigned long spin_sink;

/* Runs on the CPU until it has used ms of CPU time (not wall time: under
 * load that takes longer, which is the point). */
static void use_cpu(int ms)
{
	double end = cpu_s() + ms / 1e3;

	while (cpu_s() < end)
		for (int i = 0; i < 10000; i++)
			spin_sink = spin_sink * 31 + 7;
}

static int opt(int argc, char **argv, const char *name, int def)
{
	for (int i = 3; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return atoi(argv[i + 1]);
	return def;
}

static int die(const char *what, int e)
{
	fprintf(stderr, "imp-demo: %s: %s\n", what, strerror(-e));
	return 1;
}

static int server(const char *name, int argc, char **argv)
{
	int busy = opt(argc, argv, "--busy-ms", 1500), work = opt(argc, argv, "--work-ms", 1000);
	int requests = opt(argc, argv, "--requests", 2), cpu = opt(argc, argv, "--cpu-ms", 0);
	uint64_t port;
	impc *c;
	int e;

	setpriority(PRIO_PROCESS, 0, 10);
	if ((e = impc_connect(NULL, IMPC_RECEIVER, &c, NULL)) < 0)
		return die("connect", e);
	if ((e = impc_port_allocate(c, true, &port)) < 0 || (e = impc_register(c, name, port)) < 0)
		return die("register", e);
	if (!cpu) {
		printf("server: pid %d serving \"%s\" at nice %d\n", (int)getpid(), name,
		       getpriority(PRIO_PROCESS, 0));
		fflush(stdout);
	}
	for (int i = 0; i < requests; i++) {
		impc_message m;

		sleep_ms(busy); /* its own background work first */
		if ((e = impc_receive(c, port, -1, IMPC_RECV_VOUCHER, &m)) < 0)
			return die("receive", e);
		if (cpu) {
			use_cpu(cpu);
		} else {
			printf("server: took request \"%.*s\" from pid %d, working %d ms\n", (int)m.len,
			       (char *)m.data, m.sender_pid, work);
			fflush(stdout);
			sleep_ms(work);
		}
		if (m.reply_port)
			impc_send(c, m.reply_port, "done", 4, 0, 0, 0, NULL);
		impc_voucher_release(c, m.voucher); /* the work is done: the boost goes */
		free(m.data);
	}
	impc_close(c);
	return 0;
}

static int client(const char *name, int argc, char **argv)
{
	int uid = opt(argc, argv, "--uid", -1), requests = opt(argc, argv, "--requests", 2);
	int interval = opt(argc, argv, "--interval-ms", 3000);
	bool times = flag(argc, argv, "--times");
	uint64_t peer, reply;
	bool donor;
	impc *c;
	int e;

	if (uid >= 0 && setuid((uid_t)uid) < 0)
		return die("setuid", -errno);
	if ((e = impc_connect(NULL, 0, &c, &donor)) < 0)
		return die("connect", e);
	if ((e = impc_lookup(c, name, &peer)) < 0 || (e = impc_port_allocate(c, false, &reply)) < 0)
		return die("lookup", e);
	if (!times) {
		printf("client: pid %d (%s)\n", (int)getpid(), donor ? "a donor: foreground app" : "not a donor");
		fflush(stdout);
	}
	for (int i = 0; i < requests; i++) {
		char req[32];
		impc_message m;
		double t0 = now_s();

		snprintf(req, sizeof(req), "request %d", i + 1);
		if ((e = impc_send(c, peer, req, strlen(req), 0, reply, 0, NULL)) < 0)
			return die("send", e);
		if (!times) {
			printf("client: sent \"%s\"\n", req);
			fflush(stdout);
		}
		if ((e = impc_receive(c, reply, -1, 0, &m)) < 0)
			return die("reply", e);
		if (times)
			printf("%.1f\n", (now_s() - t0) * 1e3);
		else
			printf("client: reply after %.2f s\n", now_s() - t0);
		fflush(stdout);
		free(m.data);
		if (i + 1 < requests)
			sleep_ms(interval);
	}
	impc_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "server"))
		return server(argv[2], argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "client"))
		return client(argv[2], argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "load")) {
		setsid();
		for (;;)
			use_cpu(1000);
	}
	fprintf(stderr, "usage: imp-demo server|client NAME [options] | imp-demo load\n");
	return 2;
}

/*
 * impctl — look into importanced and steer donors.
 *
 *   impctl [--socket PATH] status | tasks | graph | monitor [--count N] | donor PID on|off
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "importance/client.h"

static int usage(void)
{
	fprintf(stderr, "usage: impctl [--socket PATH] status | tasks | graph | monitor [--count N] | donor PID on|off\n");
	return 2;
}

static int fail(const char *what, int e)
{
	fprintf(stderr, "impctl: %s: %s\n", what, strerror(-e));
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *cmd;
	impc *c;
	char *text;
	int i = 1, e;

	if (argc > 2 && !strcmp(argv[1], "--socket")) {
		path = argv[2];
		i = 3;
	}
	if (i >= argc)
		return usage();
	cmd = argv[i++];
	if ((e = impc_connect(path, IMPC_MONITOR, &c, NULL)) < 0)
		return fail("connect", e);
	if (!strcmp(cmd, "status") && i == argc) {
		impc_status st;

		if ((e = impc_status_get(c, &st)) < 0)
			return fail("status", e);
		printf("policy %s\nclients %u\ntask_elements %llu\ninherits %llu\nvouchers %llu\nports %llu\n"
		       "messages %llu\ndelayed_drops %llu\nboosts_applied %llu\nunboosts_applied %llu\n"
		       "requests %llu\nprotocol_errors %llu\n",
		       st.policy, st.clients, (unsigned long long)st.task_elems,
		       (unsigned long long)st.inherits, (unsigned long long)st.vouchers,
		       (unsigned long long)st.ports, (unsigned long long)st.messages,
		       (unsigned long long)st.delayed, (unsigned long long)st.boosts_applied,
		       (unsigned long long)st.unboosts_applied, (unsigned long long)st.requests,
		       (unsigned long long)st.protocol_errors);
	} else if ((!strcmp(cmd, "tasks") || !strcmp(cmd, "graph")) && i == argc) {
		e = !strcmp(cmd, "tasks") ? impc_tasks(c, &text) : impc_graph(c, &text);
		if (e < 0)
			return fail(cmd, e);
		fputs(text, stdout);
		free(text);
	} else if (!strcmp(cmd, "monitor")) {
		long count = -1;
		impc_event ev;

		if (i + 1 < argc && !strcmp(argv[i], "--count"))
			count = strtol(argv[i + 1], NULL, 10);
		else if (i != argc)
			return usage();
		if ((e = impc_monitor(c)) < 0)
			return fail("monitor", e);
		setvbuf(stdout, NULL, _IOLBF, 0);
		while (count != 0 && (e = impc_next_event(c, -1, &ev)) == 0) {
			if (ev.kind != IMPC_EVENT_POLICY)
				continue;
			if (ev.applied < 0)
				printf("%llu.%03llu pid %d %s (not applied: %s)\n",
				       (unsigned long long)(ev.time_ns / 1000000000ull),
				       (unsigned long long)(ev.time_ns / 1000000ull % 1000), ev.pid,
				       ev.boosted ? "boost" : "unboost", strerror(-ev.applied));
			else
				printf("%llu.%03llu pid %d %s (now %d)\n",
				       (unsigned long long)(ev.time_ns / 1000000000ull),
				       (unsigned long long)(ev.time_ns / 1000000ull % 1000), ev.pid,
				       ev.boosted ? "boost" : "unboost", (int)ev.value);
			if (count > 0)
				count--;
		}
		if (e < 0 && e != -ECONNRESET && e != -ENOTCONN && count != 0)
			return fail("monitor", e); /* the daemon stopped */
	} else if (!strcmp(cmd, "donor") && i + 2 == argc) {
		bool on = !strcmp(argv[i + 1], "on");

		if (!on && strcmp(argv[i + 1], "off"))
			return usage();
		if ((e = impc_donor(c, atoi(argv[i]), on)) < 0)
			return fail("donor", e);
	} else {
		impc_close(c);
		return usage();
	}
	impc_close(c);
	return 0;
}

/*
 * impctl — look into importanced and steer donors.
 *
 *   impctl [--socket PATH] status | tasks | graph | monitor [--count N] | donor PID on|off
 *          | foreground PID [--cgroup] | foreground none|forget | why PID
 *   impctl --help | --version
 *
 * The command line is checked in full before connecting, so a wrong
 * invocation says what was wrong whether or not the daemon runs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "importance/client.h"
#include "importance/importance.h"
#include "importance/protocol.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: impctl [--socket PATH] COMMAND\n"
		"       impctl --help | --version\n"
		"Commands:\n"
		"  status             the daemon's counters\n"
		"  tasks              its clients, their donor and boost state\n"
		"  graph              the donation graph as Graphviz DOT\n"
		"  monitor [--count N] print policy updates as they happen (N of them; default: until stopped)\n"
		"  donor PID on|off   make a client a donor or not (root)\n"
		"  foreground PID [--cgroup]  PID (with --cgroup: its whole cgroup) is in front for its uid\n"
		"                     (yours only, unless root); none: nothing of yours; forget: stop saying\n"
		"  why PID            what boosts PID's tasks now: who sent what it has not read, whose vouchers it holds\n"
		"--socket PATH: the daemon's socket (default: $IMPORTANCED_SOCKET, else %s).\n",
		IMPP_DEFAULT_SOCKET);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("impctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'impctl --help'.\n", stderr);
	exit(EXIT_USAGE);
}

static int fail(const char *what, int e)
{
	fprintf(stderr, "impctl: %s: %s\n", what, strerror(-e));
	return EXIT_FAILED;
}

/* A whole decimal number in [min, max], or a usage error naming what. */
static long parse_number(const char *what, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		usage_error("%s takes a number from %ld to %ld, not '%s'", what, min, max, s);
	return v;
}

enum command { CMD_STATUS, CMD_TASKS, CMD_GRAPH, CMD_MONITOR, CMD_DONOR, CMD_FOREGROUND, CMD_WHY };

struct invocation {
	const char *socket; /* NULL: the client library's default */
	enum command cmd;
	long count;         /* monitor: events to print, -1 until stopped */
	int pid;            /* donor, foreground, why */
	bool on;            /* donor */
	unsigned fg_flags;  /* foreground */
};

static void parse(int argc, char **argv, struct invocation *inv)
{
	const char *cmd;
	int i = 1;

	inv->count = -1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(argv[i], "--version")) {
			printf("impctl (importance) %s\n", IMP_VERSION_STRING);
			exit(0);
		} else if (!strcmp(argv[i], "--socket")) {
			if (++i == argc)
				usage_error("--socket needs the path of importanced's socket");
			inv->socket = argv[i];
		} else {
			usage_error("unknown option '%s'", argv[i]);
		}
	}
	if (i == argc)
		usage_error("no command given: status, tasks, graph, monitor, donor, foreground or why");
	cmd = argv[i++];
	if (!strcmp(cmd, "status") || !strcmp(cmd, "tasks") || !strcmp(cmd, "graph")) {
		inv->cmd = !strcmp(cmd, "status") ? CMD_STATUS : !strcmp(cmd, "tasks") ? CMD_TASKS : CMD_GRAPH;
		if (i != argc)
			usage_error("%s takes no arguments, '%s' given", cmd, argv[i]);
	} else if (!strcmp(cmd, "monitor")) {
		inv->cmd = CMD_MONITOR;
		for (; i < argc; i++) {
			if (strcmp(argv[i], "--count"))
				usage_error("monitor takes only --count N, not '%s'", argv[i]);
			if (++i == argc)
				usage_error("--count needs a number of events");
			inv->count = parse_number("--count", argv[i], 0, 1000000000L);
		}
	} else if (!strcmp(cmd, "donor")) {
		inv->cmd = CMD_DONOR;
		if (argc - i != 2)
			usage_error("donor takes a pid and on or off (donor PID on|off)");
		inv->pid = (int)parse_number("donor's PID", argv[i], 1, 0x7fffffffL);
		inv->on = !strcmp(argv[i + 1], "on");
		if (!inv->on && strcmp(argv[i + 1], "off"))
			usage_error("donor takes on or off after the pid, not '%s'", argv[i + 1]);
	} else if (!strcmp(cmd, "foreground")) {
		inv->cmd = CMD_FOREGROUND;
		if (i == argc)
			usage_error("foreground takes a pid, none or forget (foreground PID [--cgroup])");
		if (!strcmp(argv[i], "none") || !strcmp(argv[i], "forget")) {
			inv->fg_flags = !strcmp(argv[i], "forget") ? IMPC_FOREGROUND_FORGET : 0;
			if (++i != argc)
				usage_error("foreground %s takes nothing after it, '%s' given", argv[i - 1], argv[i]);
		} else {
			inv->pid = (int)parse_number("foreground's PID", argv[i++], 1, 0x7fffffffL);
			if (i < argc && !strcmp(argv[i], "--cgroup")) {
				inv->fg_flags = IMPC_FOREGROUND_CGROUP;
				i++;
			}
			if (i != argc)
				usage_error("foreground takes only --cgroup after the pid, not '%s'", argv[i]);
		}
	} else if (!strcmp(cmd, "why")) {
		inv->cmd = CMD_WHY;
		if (argc - i != 1)
			usage_error("why takes one pid (why PID)");
		inv->pid = (int)parse_number("why's PID", argv[i], 1, 0x7fffffffL);
	} else {
		usage_error("unknown command '%s': the commands are status, tasks, graph, monitor, donor, foreground "
			    "and why",
			    cmd);
	}
}

static int connect_daemon(const struct invocation *inv, impc **c)
{
	const char *path = inv->socket;
	int e;

	if (!path)
		path = getenv("IMPORTANCED_SOCKET");
	if (!path)
		path = IMPP_DEFAULT_SOCKET;
	if ((e = impc_connect(path, IMPC_MONITOR, c, NULL)) < 0) {
		fprintf(stderr,
			"impctl: cannot connect to importanced at %s: %s (is importanced running? --socket PATH)\n",
			path, strerror(-e));
		return EXIT_FAILED;
	}
	return 0;
}

static void print_status(const impc_status *st)
{
	printf("backend %s\nclients %u\ntask_elements %llu\ninherits %llu\nvouchers %llu\nports %llu\n"
	       "messages %llu\ndelayed_drops %llu\nboosts_applied %llu\nunboosts_applied %llu\n"
	       "requests %llu\nprotocol_errors %llu\n",
	       st->policy, st->clients, (unsigned long long)st->task_elems,
	       (unsigned long long)st->inherits, (unsigned long long)st->vouchers,
	       (unsigned long long)st->ports, (unsigned long long)st->messages,
	       (unsigned long long)st->delayed, (unsigned long long)st->boosts_applied,
	       (unsigned long long)st->unboosts_applied, (unsigned long long)st->requests,
	       (unsigned long long)st->protocol_errors);
	if (st->backends[0]) {
		/* the backend in use and why not the others, indented */
		fputs("backends:\n", stdout);
		for (const char *p = st->backends; *p;) {
			size_t n = strcspn(p, "\n");

			printf("  %.*s\n", (int)n, p);
			p += n + (p[n] == '\n');
		}
	}
}

static int monitor(impc *c, long count)
{
	impc_event ev;
	int e;

	if ((e = impc_monitor(c)) < 0)
		return fail("monitor", e);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (count != 0 && (e = impc_next_event(c, -1, &ev)) == 0) {
		unsigned long long s = ev.time_ns / 1000000000ull, ms = ev.time_ns / 1000000ull % 1000;

		if (ev.kind != IMPC_EVENT_POLICY)
			continue;
		if (ev.applied < 0)
			printf("%llu.%03llu pid %d %s (not applied: %s)\n", s, ms, ev.pid,
			       ev.boosted ? "boost" : "unboost", strerror(-ev.applied));
		else
			printf("%llu.%03llu pid %d %s (now %d)\n", s, ms, ev.pid,
			       ev.boosted ? "boost" : "unboost", (int)ev.value);
		if (count > 0)
			count--;
	}
	if (e < 0 && e != -ECONNRESET && e != -ENOTCONN && count != 0)
		return fail("monitor", e); /* the daemon stopped */
	return 0;
}

int main(int argc, char **argv)
{
	struct invocation inv = { 0 };
	impc_status st;
	impc *c;
	char *text;
	int e, status = 0;

	parse(argc, argv, &inv);
	if ((status = connect_daemon(&inv, &c)) != 0)
		return status;
	switch (inv.cmd) {
	case CMD_STATUS:
		if ((e = impc_status_get(c, &st)) < 0)
			status = fail("status", e);
		else
			print_status(&st);
		break;
	case CMD_TASKS:
	case CMD_GRAPH:
		e = inv.cmd == CMD_TASKS ? impc_tasks(c, &text) : impc_graph(c, &text);
		if (e < 0) {
			status = fail(inv.cmd == CMD_TASKS ? "tasks" : "graph", e);
		} else {
			fputs(text, stdout);
			free(text);
		}
		break;
	case CMD_MONITOR:
		status = monitor(c, inv.count);
		break;
	case CMD_DONOR:
		if ((e = impc_donor(c, inv.pid, inv.on)) < 0)
			status = fail("donor", e);
		break;
	case CMD_FOREGROUND:
		if ((e = impc_foreground(c, inv.pid, inv.fg_flags)) < 0)
			status = fail("foreground", e);
		break;
	case CMD_WHY:
		if ((e = impc_why(c, inv.pid, &text)) == -ESRCH) {
			fprintf(stderr, "impctl: why: importanced has no task of pid %d that you may see\n", inv.pid);
			status = EXIT_FAILED;
		} else if (e < 0) {
			status = fail("why", e);
		} else {
			fputs(text, stdout);
			free(text);
		}
		break;
	}
	impc_close(c);
	return status;
}

/*
 * imp — runs importance scenarios and draws the donation graph.
 *
 *   imp run [--json] [--verify] FILE|-
 *   imp graph [--until LINE] FILE|-
 *   imp --help | --version
 *
 * A wrong invocation says what was wrong on standard error and exits 2.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "importance/importance.h"
#include "sim.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: imp run [--json] [--verify] FILE|-\n"
		"       imp graph [--until LINE] FILE|-\n"
		"       imp --help | --version\n"
		"Runs an importance scenario (docs/scenarios.md) and prints its trace,\n"
		"or prints the donation graph after LINE as Graphviz DOT.\n"
		"  --json        the trace as JSON lines\n"
		"  --verify      check every invariant after every line (exit 3 on a violation)\n"
		"  --until LINE  draw the graph as it is after line LINE (default: the end)\n"
		"Exit status: 0 ran to the end, 2 scenario error or wrong invocation, 3 invariant violated.\n");
}

/* A wrong invocation: what was wrong, and where to read what is right. */
static void usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "imp%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'imp --help'.\n");
	exit(EXIT_USAGE);
}

static unsigned parse_line_number(const char *cmd, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || *s == '-' || errno || !v || v > 100000000ul)
		usage_error(cmd, "--until takes a line number from 1 to 100000000, not '%s'", s);
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	struct imp_sim_options opt = { 0 };
	const char *file = NULL, *cmd;
	struct stat st;
	FILE *in;
	int i, status;

	if (argc < 2)
		usage_error(NULL, "no command given: run or graph");
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("imp (importance) %s\n", imp_version_string());
		return 0;
	}
	if (!strcmp(cmd, "graph"))
		opt.graph = true;
	else if (strcmp(cmd, "run"))
		usage_error(NULL, "unknown %s '%s': the commands are run and graph",
			    cmd[0] == '-' ? "option" : "command", cmd);
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!opt.graph && !strcmp(a, "--json")) {
			opt.json = true;
		} else if (!opt.graph && !strcmp(a, "--verify")) {
			opt.verify = true;
		} else if (opt.graph && !strcmp(a, "--until")) {
			if (i + 1 == argc)
				usage_error(cmd, "--until needs a line number");
			opt.until = parse_line_number(cmd, argv[++i]);
		} else if (a[0] == '-' && strcmp(a, "-")) {
			usage_error(cmd, "unknown option '%s' for %s", a, cmd);
		} else if (file) {
			usage_error(cmd, "one scenario at a time: '%s' and '%s' given", file, a);
		} else {
			file = a;
		}
	}
	if (!file)
		usage_error(cmd, "no scenario given: name a file, or - for standard input");
	in = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!in) {
		fprintf(stderr, "imp %s: cannot open %s: %s\n", cmd, file, strerror(errno));
		return EXIT_USAGE;
	}
	if (fstat(fileno(in), &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "imp %s: %s is a directory: name a scenario file in it\n", cmd, file);
		fclose(in);
		return EXIT_USAGE;
	}
	opt.err = stderr;
	status = imp_sim_run(in, file, &opt);
	if (in != stdin)
		fclose(in);
	return status;
}

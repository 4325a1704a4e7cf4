/*
 * imp — runs importance scenarios and draws the donation graph.
 *
 *   imp run [--json] [--verify] FILE|-
 *   imp graph [--until LINE] FILE|-
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: imp run [--json] [--verify] FILE|-\n"
		"       imp graph [--until LINE] FILE|-\n"
		"Runs an importance scenario (docs/scenarios.md) and prints its trace,\n"
		"or prints the donation graph after LINE as Graphviz DOT.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct imp_sim_options opt = { 0 };
	const char *file = NULL;
	FILE *in;
	int i, status;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "graph"))
		opt.graph = true;
	else if (strcmp(argv[1], "run"))
		usage();
	for (i = 2; i < argc; i++) {
		if (!opt.graph && !strcmp(argv[i], "--json")) {
			opt.json = true;
		} else if (!opt.graph && !strcmp(argv[i], "--verify")) {
			opt.verify = true;
		} else if (opt.graph && !strcmp(argv[i], "--until") && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*end || !v || v > 100000000ul)
				usage();
			opt.until = (unsigned)v;
		} else if (!file && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) {
			file = argv[i];
		} else {
			usage();
		}
	}
	if (!file)
		usage();
	in = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!in) {
		fprintf(stderr, "imp: %s: %s\n", file, strerror(errno));
		return 2;
	}
	opt.err = stderr;
	status = imp_sim_run(in, file, &opt);
	if (in != stdin)
		fclose(in);
	return status;
}

/* The scenario interpreter behind `imp`, as a library for the CLI, the
 * fuzzers and the benchmarks. */
#ifndef IMP_SIM_H
#define IMP_SIM_H

#include <stdbool.h>
#include <stdio.h>

struct imp_sim_options {
	bool json;      /* trace as JSON lines */
	bool verify;    /* check every invariant after every line (exit 3) */
	bool graph;     /* no trace; print Graphviz DOT at the end */
	unsigned until; /* stop after this line (0: run to the end) */
	FILE *out;      /* trace or graph (NULL: stdout) */
	FILE *err;      /* "imp: FILE:LINE: REASON" (NULL: not printed) */
};

/* Runs one scenario read from `in` (`name` is used in messages).  Returns
 * 0, 2 for a scenario error, 3 for an invariant violation. */
int imp_sim_run(FILE *in, const char *name, const struct imp_sim_options *opt);

#endif

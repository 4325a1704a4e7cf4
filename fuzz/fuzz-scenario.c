/* libFuzzer target: the scenario parser and interpreter, and the DOT
 * renderer on the graph a clean run leaves.  Any input must end in a clean
 * run or a scenario error; an invariant violation (status 3), a crash, a
 * sanitizer report or a leak is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	struct imp_sim_options opt = { 0 };
	FILE *in;
	int status;

	if (!sink)
		sink = fopen("/dev/null", "w");
	if (!size)
		return 0;
	in = fmemopen((void *)data, size, "r");
	if (!in)
		return 0;
	opt.verify = true;
	opt.out = sink;
	status = imp_sim_run(in, "fuzz", &opt);
	if (status == 0) {
		/* the same scenario again, drawn */
		rewind(in);
		opt.graph = true;
		status = imp_sim_run(in, "fuzz", &opt);
	}
	fclose(in);
	if (status != 0 && status != 2)
		abort();
	return 0;
}

/* A large generated scenario through the interpreter: time and peak
 * memory.   bench-scenario [OPS] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "scenario-gen.h"
#include "sim.h"

int main(int argc, char **argv)
{
	unsigned ops = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000000;
	char *text = NULL;
	size_t len = 0, lines = 0;
	FILE *gen = open_memstream(&text, &len), *in, *sink = fopen("/dev/null", "w");
	struct imp_sim_options opt = { 0 };
	struct timespec t0, t1;
	struct rusage ru;
	long rss_before;
	int status;

	imp_gen_scenario(gen, 7, ops, 2000);
	fclose(gen);
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	getrusage(RUSAGE_SELF, &ru);
	rss_before = ru.ru_maxrss;
	in = fmemopen(text, len, "r");
	opt.out = sink;
	opt.err = stderr;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	status = imp_sim_run(in, "generated", &opt);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("| %u generated operations (%zu lines, %.1f MB of text) | %.2f s | %.0f lines/s | %ld MB peak RSS (%ld MB before the run: the text) | exit %d |\n",
	       ops, lines, (double)len / 1e6,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (double)lines / ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9),
	       ru.ru_maxrss / 1024, rss_before / 1024, status);
	fclose(in);
	free(text);
	return status;
}

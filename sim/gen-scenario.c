/* gen-scenario SEED [OPS [MAX_TASKS]]: prints a generated valid scenario. */
#include <stdlib.h>

#include "scenario-gen.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: gen-scenario SEED [OPS [MAX_TASKS]]\n");
		return 2;
	}
	imp_gen_scenario(stdout, strtoull(argv[1], NULL, 10),
			 argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 300,
			 argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 12);
	return 0;
}

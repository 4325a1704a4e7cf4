#ifndef IMP_SCENARIO_GEN_H
#define IMP_SCENARIO_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Writes a valid scenario of about `ops` operations, the same for the same
 * seed, over at most max_tasks tasks, ending with everything released. */
void imp_gen_scenario(FILE *out, uint64_t seed, unsigned ops, unsigned max_tasks);

#endif

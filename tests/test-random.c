/* Thousands of generated scenarios run in-process with the verifier after
 * every line: each must run to the end (exit 0) and, once everything is
 * released and every task has exited, leave no object behind. */
#include <stdlib.h>
#include <string.h>

#include "scenario-gen.h"
#include "sim.h"
#include "testutil.h"

static void run_seed(uint64_t seed, unsigned ops, unsigned max_tasks)
{
	char *text = NULL, *trace = NULL, *last;
	size_t text_len = 0, trace_len = 0;
	FILE *gen = open_memstream(&text, &text_len);
	FILE *in, *out;
	struct imp_sim_options opt = { 0 };
	int status;

	assert_non_null(gen);
	imp_gen_scenario(gen, seed, ops, max_tasks);
	fclose(gen);
	in = fmemopen(text, text_len, "r");
	out = open_memstream(&trace, &trace_len);
	assert_non_null(in);
	assert_non_null(out);
	opt.verify = true;
	opt.out = out;
	opt.err = stderr;
	status = imp_sim_run(in, "generated", &opt);
	fclose(in);
	fclose(out);
	if (status != 0)
		print_error("seed %llu failed with status %d\n", (unsigned long long)seed, status);
	assert_int_equal(status, 0);
	assert_true(trace_len > 0);
	trace[trace_len - 1] = '\0';
	last = strrchr(trace, '\n');
	last = last ? last + 1 : trace;
	if (strcmp(last, "stats tasks=0 inherits=0 vouchers=0"))
		print_error("seed %llu left: %s\n", (unsigned long long)seed, last);
	assert_string_equal(last, "stats tasks=0 inherits=0 vouchers=0");
	free(text);
	free(trace);
}

static void test_many_small(void **state)
{
	const char *env = getenv("IMP_RANDOM_SEEDS");
	unsigned n = env ? (unsigned)strtoul(env, NULL, 10) : 3000;

	(void)state;
	for (unsigned seed = 1; seed <= n; seed++)
		run_seed(seed, 200 + seed % 300, 3 + seed % 10);
}

static void test_few_large(void **state)
{
	(void)state;
	for (unsigned seed = 100001; seed <= 100004; seed++)
		run_seed(seed, 20000, 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_small),
		cmocka_unit_test(test_few_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

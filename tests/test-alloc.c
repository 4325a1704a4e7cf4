/* Allocation failure: fail the Nth allocation for every N a workload
 * makes.  Each failure must be an -ENOMEM return with nothing changed,
 * the invariants must hold, and nothing may leak. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

#define TRY(expr)                                       \
	do {                                            \
		int r_ = (expr);                        \
		if (r_ == -ENOMEM) {                    \
			failures++;                     \
			goto out;                       \
		}                                       \
		assert_true(r_ >= 0);                   \
	} while (0)

static long failures;

static uint64_t clock_ns;

static uint64_t test_clock(void *ctx)
{
	(void)ctx;
	return clock_ns;
}

/* Returns true when the whole workload ran. */
static bool workload(void)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	imp_domain *d = NULL;
	imp_task *don = NULL, *r = NULL, *c = NULL;
	imp_port *pr = NULL, *pc = NULL;
	imp_msg *m1 = NULL, *m2 = NULL, *m3 = NULL;
	imp_voucher *v1 = NULL, *v2 = NULL, *vs = NULL, *vr = NULL;
	imp_graph *g = NULL;
	bool complete = false;

	cfg.allocator = &tu_allocator;
	cfg.clock_now = test_clock;
	clock_ns = 0;
	cfg.verify_each_step = true;
	TRY(imp_domain_new(&cfg, &d));
	TRY(imp_task_create(d, 1, IMP_TASK_DONOR, &don));
	TRY(imp_task_create(d, 2, IMP_TASK_RECEIVER, &r));
	TRY(imp_task_create(d, 3, IMP_TASK_DENAP_RECEIVER, &c));
	TRY(imp_port_create(r, true, &pr));
	TRY(imp_port_create(c, true, &pc));
	TRY(imp_msg_send(don, pr, NULL, 0, &m1));
	{
		int rr = imp_msg_receive(m1, IMP_RECV_VOUCHER, &v1);

		if (rr == -ENOMEM) {
			/* nothing happened: still queued, still boosting */
			assert_int_equal(tu_msg_info(m1).state, IMP_MSG_QUEUED);
			assert_int_equal(tu_port_info(pr).impcount, 1);
		}
		TRY(rr);
	}
	TRY(imp_msg_send(r, pc, v1, 0, &m2));
	TRY(imp_msg_receive(m2, IMP_RECV_VOUCHER, &v2));
	TRY(imp_voucher_self(don, &vs));
	TRY(imp_voucher_redeem(v2, &vr));
	TRY(imp_msg_send(don, pc, vs, IMP_SEND_IMPORTANCE, &m3));
	TRY(imp_domain_graph(d, &g));
	TRY(imp_voucher_drop_external(v2, 1, NULL));
	TRY(imp_task_exit(r));
	complete = true;
out:
	if (d) {
		assert_int_equal(imp_domain_verify(d), 0);
		assert_false(imp_domain_broken(d));
		imp_graph_free(d, g);
		imp_voucher_release(v1);
		imp_voucher_release(v2);
		imp_voucher_release(vs);
		imp_voucher_release(vr);
		imp_msg_unref(m1);
		imp_msg_unref(m2);
		imp_msg_unref(m3);
		imp_port_unref(pr);
		imp_port_unref(pc);
		if (don)
			imp_task_exit(don);
		if (r)
			imp_task_exit(r); /* -ESRCH when the workload did it */
		if (c)
			imp_task_exit(c);
		imp_task_unref(don);
		imp_task_unref(r);
		imp_task_unref(c);
		/* the delayed-drop queue holds the de-nap task until its call */
		clock_ns = 2 * IMP_DENAP_DROP_DELAY_NS;
		imp_domain_run_timers(d);
		{
			imp_stats st;

			assert_int_equal(imp_domain_get_stats(d, &st), 0);
			assert_int_equal(st.task_elems + st.inherits + st.vouchers + st.tasks +
						 st.ports + st.messages,
					 0);
		}
		imp_domain_free(d);
	}
	assert_int_equal(tu_allocs, tu_frees);
	return complete;
}

static void test_fail_every_allocation(void **state)
{
	long n;

	(void)state;
	for (n = 1;; n++) {
		tu_fail_at = n;
		tu_alloc_count = 0;
		if (workload())
			break;
		assert_true(n < 1000);
	}
	/* every allocation the workload makes was failed once */
	print_message("%ld allocations failed in turn, each an -ENOMEM with nothing changed or leaked\n", failures);
	assert_int_equal(failures, n - 1);
	assert_true(n > 10);
	tu_fail_at = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fail_every_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

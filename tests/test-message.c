/* Messages: send options, linking and raising, legacy and voucher
 * receives, failed copy-out, destroy, and the misuse errors. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

struct world {
	struct tctx c;
	imp_task *d, *n, *r, *q;
	imp_port *p, *pn, *pq;
};

static void world_init(struct world *w)
{
	tctx_init(&w->c);
	w->d = tu_task(&w->c, 1, IMP_TASK_DONOR);
	w->n = tu_task(&w->c, 2, 0);
	w->r = tu_task(&w->c, 3, IMP_TASK_RECEIVER);
	w->q = tu_task(&w->c, 4, 0);
	w->p = tu_port(w->r, true);
	w->pn = tu_port(w->r, false);
	w->pq = tu_port(w->q, true);
}

static void test_send_options(void **state)
{
	struct world w;
	imp_msg *m1, *m2, *m3, *m4, *m5, *bad = (imp_msg *)1;

	(void)state;
	world_init(&w);
	/* a static boost works even from a never-donor */
	m1 = tu_send(w.n, w.p, NULL, IMP_SEND_IMPORTANCE);
	assert_true(tu_msg_info(m1).raised);
	assert_false(tu_msg_info(m1).linked);
	assert_string_equal(tctx_events(&w.c), "3+");
	/* but never through a port that takes no donations */
	m2 = tu_send(w.d, w.pn, NULL, IMP_SEND_IMPORTANCE);
	assert_false(tu_msg_info(m2).raised);
	assert_int_equal(tu_port_info(w.pn).impcount, 0);
	/* noimportance */
	m3 = tu_send(w.d, w.p, NULL, IMP_SEND_NOIMPORTANCE);
	assert_false(tu_msg_info(m3).raised);
	assert_false(tu_msg_info(m3).linked);
	/* a never-donor links nothing */
	m4 = tu_send(w.n, w.p, NULL, 0);
	assert_false(tu_msg_info(m4).linked);
	/* a port of a non-receiver counts the boost, no task changes */
	m5 = tu_send(w.d, w.pq, NULL, 0);
	assert_true(tu_msg_info(m5).raised);
	assert_int_equal(tu_port_info(w.pq).impcount, 1);
	assert_int_equal(tu_info(w.q).assertcnt, 0);
	assert_int_equal(tu_port_info(w.p).queued, 3);
	assert_int_equal(tu_port_info(w.p).impcount, 1);
	assert_ptr_equal(imp_port_peek(w.p), m1);
	assert_ptr_equal(imp_port_owner(w.p), w.r);

	assert_int_equal(imp_msg_send(w.d, w.p, NULL, IMP_SEND_IMPORTANCE | IMP_SEND_NOIMPORTANCE, &bad), -EINVAL);
	assert_null(bad);
	assert_int_equal(imp_msg_send(w.d, w.p, NULL, 1u << 7, &bad), -EINVAL);
	assert_int_equal(imp_msg_send(NULL, w.p, NULL, 0, &bad), -EINVAL);
	assert_int_equal(imp_msg_send(w.d, w.p, NULL, 0, NULL), -EINVAL);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	imp_msg_unref(m3);
	imp_msg_unref(m4);
	imp_msg_unref(m5);
	tctx_fini(&w.c);
}

static void test_cross_domain(void **state)
{
	struct world w;
	struct tctx other;
	imp_task *t;
	imp_msg *m = NULL;

	(void)state;
	world_init(&w);
	tctx_init(&other);
	t = tu_task(&other, 9, IMP_TASK_DONOR);
	assert_int_equal(imp_msg_send(t, w.p, NULL, 0, &m), -EXDEV);
	assert_null(m);
	tctx_fini(&other);
	tctx_fini(&w.c);
}

static void test_legacy_receive(void **state)
{
	struct world w;
	imp_msg *m1, *m2, *m3;
	imp_task_info i;

	(void)state;
	world_init(&w);
	m1 = tu_send(w.d, w.p, NULL, 0);
	assert_string_equal(tctx_events(&w.c), "3+");
	assert_int_equal(imp_msg_receive(m1, 0, NULL), 0);
	assert_true(tu_msg_info(m1).raised);
	assert_int_equal(tu_msg_info(m1).state, IMP_MSG_RECEIVED);
	assert_int_equal(tu_port_info(w.p).impcount, 0);
	i = tu_info(w.r);
	assert_int_equal(i.assertcnt, 1);
	assert_int_equal(i.legacy_boosts, 1);
	/* receiving twice is refused */
	assert_int_equal(imp_msg_receive(m1, 0, NULL), -EALREADY);
	assert_non_null(strstr(imp_last_error(), "already received"));
	assert_int_equal(imp_msg_destroy(m1), -EALREADY);
	/* a non-receiver cannot take legacy responsibility: the bit clears */
	m2 = tu_send(w.d, w.pq, NULL, 0);
	assert_int_equal(imp_msg_receive(m2, 0, NULL), 0);
	assert_false(tu_msg_info(m2).raised);
	assert_int_equal(tu_port_info(w.pq).impcount, 0);
	/* a failed copy-out gives the legacy boost back */
	m3 = tu_send(w.d, w.p, NULL, 0);
	assert_int_equal(imp_msg_receive(m3, IMP_RECV_COPYOUT_FAILED, NULL), 0);
	assert_false(tu_msg_info(m3).raised);
	assert_int_equal(tu_info(w.r).legacy_boosts, 1);
	assert_int_equal(imp_task_drop_legacy_assertion(w.r, 1), IMP_KERN_SUCCESS);
	assert_string_equal(tctx_events(&w.c), "3-");
	assert_int_equal(imp_msg_receive(NULL, 0, NULL), -EINVAL);
	assert_int_equal(imp_msg_receive(m3, IMP_RECV_VOUCHER, NULL), -EINVAL);
	assert_int_equal(imp_msg_receive(m3, 1u << 6, NULL), -EINVAL);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	imp_msg_unref(m3);
	tctx_fini(&w.c);
}

static void test_voucher_receive(void **state)
{
	struct world w;
	imp_msg *m1, *m2, *m3;
	imp_voucher *v1, *v2, *v3, *vf = (imp_voucher *)1;
	imp_task_info i;

	(void)state;
	world_init(&w);
	m1 = tu_send(w.d, w.p, NULL, 0);
	m2 = tu_send(w.d, w.p, NULL, 0);
	v1 = tu_recv_voucher(m1);
	v2 = tu_recv_voucher(m2);
	/* the same donor and receiver reuse one inherit, so one voucher */
	assert_ptr_equal(v1, v2);
	assert_int_equal(tu_stats(&w.c).inherits, 1);
	assert_string_equal(tu_describe(v1), "Importance for pid 3 (2 of 2 boosts) donated from pid 1");
	i = tu_info(w.r);
	assert_int_equal(i.assertcnt, 2);
	assert_int_equal(i.extern_boosts, 2);
	assert_int_equal(tu_port_info(w.p).impcount, 0);
	/* a non-receiver gets the null voucher, the port count drops */
	m3 = tu_send(w.d, w.pq, NULL, 0);
	v3 = tu_recv_voucher(m3);
	assert_null(v3);
	assert_int_equal(tu_port_info(w.pq).impcount, 0);
	imp_voucher_release(v1);
	assert_string_equal(tctx_events(&w.c), "3+");
	imp_voucher_release(v2);
	assert_string_equal(tctx_events(&w.c), "3-");
	assert_int_equal(tu_stats(&w.c).inherits, 0);
	assert_int_equal(tu_stats(&w.c).vouchers, 0);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	imp_msg_unref(m3);

	/* a failed copy-out drops the inherit made for it */
	m1 = tu_send(w.d, w.p, NULL, 0);
	assert_int_equal(imp_msg_receive(m1, IMP_RECV_VOUCHER | IMP_RECV_COPYOUT_FAILED, &vf), 0);
	assert_null(vf);
	assert_string_equal(tctx_events(&w.c), "3+ 3-");
	assert_int_equal(tu_stats(&w.c).inherits, 0);
	imp_msg_unref(m1);
	tctx_fini(&w.c);
}

static void test_destroy(void **state)
{
	struct world w;
	imp_msg *m1, *m2;
	imp_voucher *v;

	(void)state;
	world_init(&w);
	assert_int_equal(imp_voucher_self(w.d, &v), 0);
	m1 = tu_send(w.d, w.p, v, 0);
	m2 = tu_send(w.n, w.p, NULL, IMP_SEND_IMPORTANCE);
	imp_voucher_release(v); /* the message keeps the voucher alive */
	assert_int_equal(tu_stats(&w.c).vouchers, 1);
	assert_int_equal(imp_msg_destroy(m1), 0);
	assert_int_equal(tu_stats(&w.c).vouchers, 0);
	assert_int_equal(tu_msg_info(m1).state, IMP_MSG_DESTROYED);
	assert_false(tu_msg_info(m1).raised);
	assert_string_equal(tctx_events(&w.c), "3+");
	assert_int_equal(imp_msg_destroy(m2), 0);
	assert_string_equal(tctx_events(&w.c), "3-");
	assert_int_equal(tu_port_info(w.p).impcount, 0);
	assert_int_equal(imp_msg_destroy(m2), -EALREADY);
	assert_int_equal(imp_msg_destroy(NULL), -EINVAL);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	tctx_fini(&w.c);
}

static void test_port_destroy(void **state)
{
	struct world w;
	imp_msg *m1, *m2;
	imp_port *extra;

	(void)state;
	world_init(&w);
	m1 = tu_send(w.d, w.p, NULL, 0);
	m2 = tu_send(w.d, w.p, NULL, 0);
	assert_int_equal(tu_info(w.r).assertcnt, 2);
	assert_int_equal(imp_port_destroy(w.p), 0);
	assert_string_equal(tctx_events(&w.c), "3+ 3-");
	assert_int_equal(tu_info(w.r).assertcnt, 0);
	assert_int_equal(tu_msg_info(m1).state, IMP_MSG_DESTROYED);
	assert_int_equal(tu_msg_info(m2).state, IMP_MSG_DESTROYED);
	assert_int_equal(imp_port_destroy(w.p), -EPIPE);
	assert_int_equal(imp_port_destroy(NULL), -EINVAL);
	assert_int_equal(imp_port_create(NULL, true, &extra), -EINVAL);
	extra = imp_port_ref(w.pq);
	imp_port_set_userdata(extra, &w);
	assert_ptr_equal(imp_port_get_userdata(w.pq), &w);
	imp_port_unref(extra);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	tctx_fini(&w.c);
}

static void test_self_send(void **state)
{
	struct world w;
	imp_port *p2;
	imp_msg *m1, *m2;
	imp_voucher *v1, *v2;

	(void)state;
	world_init(&w);
	p2 = tu_port(w.r, true);
	m1 = tu_send(w.d, w.p, NULL, 0);
	v1 = tu_recv_voucher(m1);
	/* a receiver passing its own inherit on to itself reuses it */
	m2 = tu_send(w.r, p2, v1, 0);
	assert_true(tu_msg_info(m2).linked);
	v2 = tu_recv_voucher(m2);
	assert_ptr_equal(v1, v2);
	assert_string_equal(tu_describe(v2), "Importance for pid 3 (2 of 2 boosts) donated from pid 1");
	/* sending to oneself directly never inherits from oneself */
	imp_voucher_release(v1);
	imp_voucher_release(v2);
	assert_string_equal(tctx_events(&w.c), "3+ 3-");
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	assert_int_equal(imp_task_hold_assertion(w.r, 1), 0);
	m1 = tu_send(w.r, p2, NULL, 0);
	assert_true(tu_msg_info(m1).raised);
	v1 = tu_recv_voucher(m1);
	assert_null(v1);
	assert_int_equal(tu_info(w.r).assertcnt, 1);
	assert_int_equal(tu_stats(&w.c).inherits, 0);
	imp_msg_unref(m1);
	imp_port_unref(p2);
	tctx_fini(&w.c);
}

static void test_static_boost_voucher_receive(void **state)
{
	struct world w;
	imp_msg *m;
	imp_voucher *v;

	(void)state;
	world_init(&w);
	/* SPEC corner 1: the reference dereferences a null element here; we
	 * let the receiver hold the static boost through a self inherit */
	m = tu_send(w.n, w.p, NULL, IMP_SEND_IMPORTANCE);
	v = tu_recv_voucher(m);
	assert_non_null(v);
	assert_int_equal(tu_info(w.r).extern_boosts, 1);
	imp_voucher_release(v);
	assert_string_equal(tctx_events(&w.c), "3+ 3-");
	assert_int_equal(tu_stats(&w.c).inherits, 0);
	imp_msg_unref(m);
	tctx_fini(&w.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_options),
		cmocka_unit_test(test_cross_domain),
		cmocka_unit_test(test_legacy_receive),
		cmocka_unit_test(test_voucher_receive),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_port_destroy),
		cmocka_unit_test(test_self_send),
		cmocka_unit_test(test_static_boost_voucher_receive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

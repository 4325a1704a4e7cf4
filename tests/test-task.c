/* Tasks: creation and marks, assertions, legacy and file-lock assertions,
 * live donors, reset, exit, introspection. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

static void test_create_flags(void **state)
{
	struct tctx c;
	imp_task *t = (imp_task *)1;
	imp_task_info i;

	(void)state;
	tctx_init(&c);
	assert_int_equal(imp_task_create(c.d, 1, IMP_TASK_RECEIVER | IMP_TASK_DENAP_RECEIVER, &t), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(imp_last_error(), "not both"));
	assert_int_equal(imp_task_create(c.d, 1, 1u << 9, &t), -EINVAL);
	assert_int_equal(imp_task_create(NULL, 1, 0, &t), -EINVAL);
	assert_int_equal(imp_task_create(c.d, 1, 0, NULL), -EINVAL);

	t = tu_task(&c, 42, IMP_TASK_DONOR | IMP_TASK_LIVE_DONOR);
	i = tu_info(t);
	assert_int_equal(i.pid, 42);
	assert_true(i.active && i.connected && i.donor_marked && i.live_donor_marked);
	assert_true(i.live_donor_state); /* starts equal to the donor flag */
	assert_true(i.is_donor);
	assert_int_equal(i.transitions, 1); /* marking a donor counts a transition */
	assert_int_equal(tu_stats(&c).task_elems, 1);
	assert_int_equal(imp_task_pid(t), 42);
	imp_task_set_userdata(t, &c);
	assert_ptr_equal(imp_task_get_userdata(t), &c);
	imp_task_unref(t); /* an active task stays alive */
	assert_int_equal(tu_stats(&c).tasks, 1);
	tctx_fini(&c);
}

static void test_marks(void **state)
{
	struct tctx c;
	imp_task *r, *n, *q;

	(void)state;
	tctx_init(&c);
	r = tu_task(&c, 1, IMP_TASK_RECEIVER);
	n = tu_task(&c, 2, IMP_TASK_DENAP_RECEIVER);
	q = tu_task(&c, 3, 0);
	/* the two receiver kinds exclude each other */
	assert_int_equal(imp_task_mark_denap_receiver(r, true), -EINVAL);
	assert_int_equal(imp_task_mark_receiver(n, true), -EINVAL);
	/* (un)marking with pending boosts: the reference panics, we refuse */
	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	assert_int_equal(imp_task_mark_receiver(r, false), -EBUSY);
	assert_int_equal(imp_task_hold_assertion(n, 1), 0);
	assert_int_equal(imp_task_mark_denap_receiver(n, false), -EBUSY);
	assert_string_equal(tctx_events(&c), "1+ 2+");
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	assert_int_equal(imp_task_drop_assertion(n, 1), 0);
	assert_int_equal(imp_task_mark_receiver(r, false), 0);
	assert_false(tu_info(r).receiver);
	assert_int_equal(imp_task_mark_denap_receiver(n, false), 0);
	assert_int_equal(imp_task_mark_receiver(q, true), 0);
	assert_true(tu_info(q).receiver);
	assert_int_equal(imp_task_mark_live_donor(q, true), 0);
	assert_true(tu_info(q).live_donor_marked);
	assert_int_equal(imp_task_mark_donor(q, true), 0);
	assert_int_equal(imp_task_mark_donor(q, true), 0);
	assert_int_equal(tu_info(q).transitions, 1);
	assert_int_equal(imp_task_mark_donor(q, false), 0);
	assert_false(tu_info(q).donor_marked);
	assert_int_equal(imp_task_mark_receiver(NULL, true), -EINVAL);
	tctx_fini(&c);
}

static void test_internal_assertions(void **state)
{
	struct tctx c;
	imp_task *r, *q;
	imp_task_info i;

	(void)state;
	tctx_init(&c);
	r = tu_task(&c, 1, IMP_TASK_RECEIVER);
	q = tu_task(&c, 2, 0);
	assert_int_equal(imp_task_hold_assertion(q, 5), 0); /* not a receiver: nothing */
	assert_int_equal(tu_info(q).assertcnt, 0);
	assert_int_equal(imp_task_hold_assertion(r, 0), 0);
	assert_string_equal(tctx_events(&c), "");
	assert_int_equal(imp_task_hold_assertion(r, 2), 0);
	assert_string_equal(tctx_events(&c), "1+");
	i = tu_info(r);
	assert_true(i.boosted && i.is_donor);
	assert_int_equal(i.assertcnt, 2);
	assert_int_equal(i.transitions, 1);
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	assert_string_equal(tctx_events(&c), "");
	/* an over-release is absorbed and traced, never wraps */
	assert_int_equal(imp_task_drop_assertion(r, 7), 0);
	assert_string_equal(tctx_events(&c), "1-");
	assert_int_equal(tu_info(r).assertcnt, 0);
	assert_true(tu_has_trace(&c, IMP_TRACE_OVER_RELEASE));
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	assert_int_equal(tu_info(r).assertcnt, 0);
	assert_string_equal(tctx_events(&c), "");
	tctx_fini(&c);
}

static void test_file_locks(void **state)
{
	struct tctx c;
	imp_task *r, *q;

	(void)state;
	tctx_init(&c);
	r = tu_task(&c, 1, IMP_TASK_RECEIVER);
	q = tu_task(&c, 2, 0);
	assert_int_equal(imp_task_hold_file_lock(r, 2), IMP_KERN_SUCCESS);
	assert_int_equal(tu_info(r).filelocks, 2);
	assert_int_equal(imp_task_drop_file_lock(r, 3), IMP_KERN_INVALID_ARGUMENT);
	assert_int_equal(tu_info(r).filelocks, 2);
	assert_int_equal(imp_task_drop_file_lock(r, 2), IMP_KERN_SUCCESS);
	assert_string_equal(tctx_events(&c), "1+ 1-");
	/* non-receivers accept both without effect */
	assert_int_equal(imp_task_hold_file_lock(q, 3), IMP_KERN_SUCCESS);
	assert_int_equal(imp_task_drop_file_lock(q, 5), IMP_KERN_SUCCESS);
	assert_int_equal(tu_info(q).filelocks, 0);
	/* the count is the reference's 24-bit field */
	assert_int_equal(imp_task_hold_file_lock(r, 0xffffff), IMP_KERN_SUCCESS);
	assert_int_equal(imp_task_hold_file_lock(r, 2), IMP_KERN_SUCCESS);
	assert_int_equal(tu_info(r).filelocks, 1);
	assert_int_equal(tu_info(r).assertcnt, 0x1000001);
	tctx_fini(&c);
}

static void test_legacy_assertions(void **state)
{
	struct tctx c;
	imp_task *d, *r;
	imp_port *p;
	imp_msg *m;
	imp_task_info i;

	(void)state;
	tctx_init(&c);
	d = tu_task(&c, 1, IMP_TASK_DONOR);
	r = tu_task(&c, 2, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	assert_int_equal(imp_task_hold_legacy_assertion(r, 1), IMP_KERN_FAILURE);
	assert_true(tu_has_trace(&c, IMP_TRACE_LEGACY_MISUSE));
	assert_int_equal(imp_task_drop_legacy_assertion(r, 1), IMP_KERN_FAILURE);
	assert_int_equal(imp_task_drop_legacy_assertion(r, 2), IMP_KERN_INVALID_ARGUMENT);
	m = tu_send(d, p, NULL, 0);
	assert_int_equal(imp_msg_receive(m, 0, NULL), 0);
	i = tu_info(r);
	assert_int_equal(i.assertcnt, 1);
	assert_int_equal(i.legacy_boosts, 1);
	assert_int_equal(i.extern_boosts, 1);
	assert_int_equal(imp_task_hold_legacy_assertion(r, 2), IMP_KERN_SUCCESS);
	i = tu_info(r);
	assert_int_equal(i.assertcnt, 3);
	assert_int_equal(i.legacy_boosts, 3);
	assert_int_equal(imp_task_drop_legacy_assertion(r, 0), IMP_KERN_SUCCESS);
	assert_int_equal(imp_task_drop_legacy_assertion(r, 1), IMP_KERN_SUCCESS);
	assert_int_equal(imp_task_drop_legacy_assertion(r, 1), IMP_KERN_SUCCESS);
	assert_string_equal(tctx_events(&c), "2+");
	assert_int_equal(imp_task_drop_legacy_assertion(r, 1), IMP_KERN_SUCCESS);
	assert_string_equal(tctx_events(&c), "2-");
	i = tu_info(r);
	assert_int_equal(i.assertcnt, 0);
	assert_int_equal(i.externcnt, 0);
	assert_int_equal(i.legacy_externcnt, 0);
	assert_int_equal(imp_task_drop_legacy_assertion(r, 1), IMP_KERN_FAILURE);
	imp_msg_unref(m);
	tctx_fini(&c);
}

static void test_reset(void **state)
{
	struct tctx c;
	imp_task *d, *r, *k;
	imp_port *p, *pk;
	imp_msg *m1, *m2, *m3;
	imp_task_info i;

	(void)state;
	tctx_init(&c);
	d = tu_task(&c, 1, IMP_TASK_DONOR);
	r = tu_task(&c, 2, IMP_TASK_RECEIVER);
	k = tu_task(&c, 3, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	pk = tu_port(k, true);
	m1 = tu_send(d, p, NULL, 0);
	assert_int_equal(imp_msg_receive(m1, 0, NULL), 0);
	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	assert_int_equal(imp_task_reset(r), 0);
	i = tu_info(r);
	assert_int_equal(i.assertcnt, 1);
	assert_int_equal(i.legacy_boosts, 0);
	assert_true(i.boosted);
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	assert_string_equal(tctx_events(&c), "2+ 2-");

	/* losing donor status on reset propagates downstream only */
	m2 = tu_send(d, p, NULL, 0);
	assert_int_equal(imp_msg_receive(m2, 0, NULL), 0);
	m3 = tu_send(r, pk, NULL, 0);
	assert_string_equal(tctx_events(&c), "2+ 3+");
	assert_int_equal(imp_task_reset(r), 0);
	assert_string_equal(tctx_events(&c), "3-");
	assert_true(tu_info(r).boosted);
	assert_false(tu_msg_info(m3).raised);
	/* the donor bit survives a reset */
	assert_int_equal(imp_task_reset(d), 0);
	assert_true(tu_info(d).donor_marked);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	imp_msg_unref(m3);
	tctx_fini(&c);
}

static void test_live_donor(void **state)
{
	struct tctx c;
	imp_task *l, *r, *x;
	imp_port *p;
	imp_msg *m;

	(void)state;
	tctx_init(&c);
	l = tu_task(&c, 1, IMP_TASK_LIVE_DONOR);
	r = tu_task(&c, 2, IMP_TASK_RECEIVER);
	x = tu_task(&c, 3, IMP_TASK_DONOR);
	p = tu_port(r, true);
	m = tu_send(l, p, NULL, 0);
	assert_false(tu_msg_info(m).raised);
	assert_true(tu_msg_info(m).linked);
	assert_int_equal(imp_task_set_live_donor(l, true), 0);
	assert_string_equal(tctx_events(&c), "2+");
	assert_true(tu_msg_info(m).raised);
	assert_int_equal(tu_info(l).transitions, 1);
	assert_int_equal(imp_task_set_live_donor(l, true), 0);
	assert_string_equal(tctx_events(&c), "");
	assert_int_equal(imp_task_set_live_donor(l, false), 0);
	assert_string_equal(tctx_events(&c), "2-");
	assert_false(tu_info(l).live_donor_state);
	/* not marked live donor: the state is recorded, the donor bit stays */
	assert_int_equal(imp_task_set_live_donor(x, false), 0);
	assert_true(tu_info(x).is_donor);
	assert_false(tu_info(x).live_donor_state);
	imp_msg_unref(m);
	tctx_fini(&c);
}

static void test_exit(void **state)
{
	struct tctx c;
	imp_task *d, *r, *k;
	imp_port *p, *p2, *pk;
	imp_msg *m1, *m2, *m3, *scratch_msg;
	imp_port *scratch_port;
	imp_voucher *v = NULL;
	imp_task_info i;

	(void)state;
	tctx_init(&c);
	d = tu_task(&c, 1, IMP_TASK_DONOR);
	r = tu_task(&c, 2, IMP_TASK_RECEIVER);
	k = tu_task(&c, 3, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	p2 = tu_port(r, true);
	pk = tu_port(k, true);
	m1 = tu_send(d, p, NULL, 0);
	m2 = tu_send(d, p2, NULL, 0);
	m3 = tu_send(r, pk, NULL, 0);
	assert_string_equal(tctx_events(&c), "2+ 3+");
	assert_int_equal(imp_task_exit(r), 0);
	/* no policy for the exiting task itself; downstream drops */
	assert_string_equal(tctx_events(&c), "3-");
	assert_false(tu_port_info(p).active);
	assert_false(tu_port_info(p2).active);
	assert_int_equal(tu_msg_info(m1).state, IMP_MSG_DESTROYED);
	assert_int_equal(tu_msg_info(m2).state, IMP_MSG_DESTROYED);
	i = tu_info(r);
	assert_false(i.active);
	assert_false(i.connected);
	assert_true(i.boosted);
	/* an exited task is refused as an actor */
	assert_int_equal(imp_task_exit(r), -ESRCH);
	assert_int_equal(imp_task_hold_assertion(r, 1), -ESRCH);
	assert_int_equal(imp_task_reset(r), -ESRCH);
	assert_int_equal(imp_task_set_live_donor(r, true), -ESRCH);
	assert_int_equal(imp_task_hold_file_lock(r, 1), -ESRCH);
	assert_int_equal(imp_task_drop_legacy_assertion(r, 1), -ESRCH);
	assert_int_equal(imp_task_mark_donor(r, true), -ESRCH);
	assert_int_equal(imp_port_create(r, true, &scratch_port), -ESRCH);
	assert_null(scratch_port);
	assert_int_equal(imp_msg_send(r, pk, NULL, 0, &scratch_msg), -ESRCH);
	assert_int_equal(imp_msg_send(d, p2, NULL, 0, &scratch_msg), -EPIPE);
	assert_null(scratch_msg);
	assert_int_equal(imp_port_destroy(p2), -EPIPE);
	assert_int_equal(imp_voucher_self(r, &v), 0);
	assert_null(v);
	assert_int_equal(imp_task_donating_pids(r, (int[4]){ 0 }, 4), 0);
	/* M3 still holds the element: it is alive, and disconnected */
	assert_int_equal(tu_stats(&c).task_elems, 3);
	assert_int_equal(imp_msg_destroy(m3), 0);
	assert_int_equal(tu_stats(&c).task_elems, 2);
	/* the values the element had when it was freed remain visible */
	i = tu_info(r);
	assert_int_equal(i.assertcnt, 0);
	assert_int_equal(i.transitions, 1);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	imp_msg_unref(m3);
	imp_port_unref(p);
	imp_port_unref(p2);
	imp_task_unref(r);
	assert_int_equal(imp_task_exit(d), 0);
	assert_int_equal(imp_task_exit(k), 0);
	imp_task_unref(d);
	imp_task_unref(k);
	imp_port_unref(pk);
	assert_int_equal(tu_stats(&c).task_elems, 0);
	assert_int_equal(tu_stats(&c).tasks, 0);
	assert_int_equal(tu_stats(&c).ports, 0);
	assert_int_equal(tu_stats(&c).messages, 0);
	tctx_fini(&c);
}

static void test_donating_pids(void **state)
{
	struct tctx c;
	imp_task *d, *r, *s;
	imp_port *p, *ps;
	imp_msg *m[5];
	imp_voucher *v1;
	int pids[8];

	(void)state;
	tctx_init(&c);
	d = tu_task(&c, 7, IMP_TASK_DONOR);
	r = tu_task(&c, 8, IMP_TASK_RECEIVER);
	s = tu_task(&c, 9, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	ps = tu_port(s, true);
	m[0] = tu_send(d, p, NULL, 0);
	v1 = tu_recv_voucher(m[0]);
	m[1] = tu_send(d, ps, NULL, 0);
	m[2] = tu_send(d, p, NULL, IMP_SEND_NOIMPORTANCE);
	assert_int_equal(imp_task_donating_pids(d, pids, 8), 2);
	assert_int_equal(pids[0], 8); /* the inherit's to-task */
	assert_int_equal(pids[1], 7); /* a message sent directly: its own pid */
	assert_int_equal(imp_task_donating_pids(d, pids, 1), 1);
	assert_int_equal(imp_task_donating_pids(d, pids, 0), 0);
	assert_int_equal(imp_task_donating_pids(d, NULL, 3), -EINVAL);
	imp_voucher_release(v1);
	for (int i = 0; i < 3; i++)
		imp_msg_unref(m[i]);
	tctx_fini(&c);
}

static int reentry_result;
static imp_task *reentry_task;

static void reentrant_policy(const imp_policy_event *ev, void *ctx)
{
	imp_task_info i;

	(void)ctx;
	reentry_result = imp_task_hold_assertion(reentry_task, 1);
	/* getters work from inside the callback */
	assert_int_equal(imp_task_get_info(ev->task, &i), 0);
}

static void test_policy_reentry(void **state)
{
	struct tctx c;
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	imp_task *r;

	(void)state;
	cfg.policy = reentrant_policy;
	tctx_init_cfg(&c, &cfg);
	r = tu_task(&c, 1, IMP_TASK_RECEIVER);
	reentry_task = r;
	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	assert_int_equal(reentry_result, -EDEADLK);
	assert_int_equal(tu_info(r).assertcnt, 1);
	tctx_fini(&c);
}

static void test_without_policy_callback(void **state)
{
	imp_domain *d;
	imp_task *r;
	imp_task_info i;

	(void)state;
	/* no callback: updates are still decided and recorded */
	assert_int_equal(imp_domain_new(NULL, &d), 0);
	assert_int_equal(imp_task_create(d, 1, IMP_TASK_RECEIVER, &r), 0);
	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	assert_int_equal(imp_task_get_info(r, &i), 0);
	assert_true(i.boosted);
	assert_int_equal(i.transitions, 1);
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	assert_int_equal(imp_task_get_info(r, &i), 0);
	assert_false(i.boosted);
	assert_int_equal(imp_domain_verify(d), 0);
	imp_domain_free(d);
}

static void test_unmark_with_inherits(void **state)
{
	struct tctx c;
	imp_task *s, *r;
	imp_port *p;
	imp_msg *m;
	imp_voucher *v;

	(void)state;
	tctx_init(&c);
	s = tu_task(&c, 1, IMP_TASK_RECEIVER);
	r = tu_task(&c, 2, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	m = tu_send(s, p, NULL, 0); /* S is not boosted: linked, not donating */
	v = tu_recv_voucher(m);
	assert_int_equal(imp_voucher_drop_external(v, 1, NULL), IMP_KERN_SUCCESS);
	assert_int_equal(tu_info(r).assertcnt, 0);
	assert_int_equal(tu_info(r).extern_boosts, 0);
	/* no counts, but an inherit still targets R: it must stay a receiver */
	assert_int_equal(imp_task_mark_receiver(r, false), -EBUSY);
	assert_non_null(strstr(imp_last_error(), "inherits still target"));
	imp_voucher_release(v);
	assert_int_equal(imp_task_mark_receiver(r, false), 0);
	imp_msg_unref(m);
	tctx_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_flags),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_internal_assertions),
		cmocka_unit_test(test_file_locks),
		cmocka_unit_test(test_legacy_assertions),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_live_donor),
		cmocka_unit_test(test_exit),
		cmocka_unit_test(test_donating_pids),
		cmocka_unit_test(test_policy_reentry),
		cmocka_unit_test(test_without_policy_callback),
		cmocka_unit_test(test_unmark_with_inherits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

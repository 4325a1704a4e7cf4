/* Propagation: transitive boosts and drops through messages and inherits,
 * the order policy updates are applied in, the de-nap hysteresis and its
 * timer (virtual and real), and a donor going to background and back. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

struct chain {
	struct tctx c;
	imp_task *a, *b, *cc, *e;
	imp_port *pb, *pc, *pe;
	imp_msg *m1, *m2, *m3;
	imp_voucher *vb, *vc;
};

static void chain_init(struct chain *ch)
{
	tctx_init(&ch->c);
	ch->a = tu_task(&ch->c, 1, IMP_TASK_DONOR | IMP_TASK_LIVE_DONOR);
	ch->b = tu_task(&ch->c, 2, IMP_TASK_RECEIVER);
	ch->cc = tu_task(&ch->c, 3, IMP_TASK_RECEIVER);
	ch->e = tu_task(&ch->c, 4, IMP_TASK_RECEIVER);
	ch->pb = tu_port(ch->b, true);
	ch->pc = tu_port(ch->cc, true);
	ch->pe = tu_port(ch->e, true);
	ch->m1 = tu_send(ch->a, ch->pb, NULL, 0);
	ch->vb = tu_recv_voucher(ch->m1);
	ch->m2 = tu_send(ch->b, ch->pc, ch->vb, 0);
	ch->vc = tu_recv_voucher(ch->m2);
	ch->m3 = tu_send(ch->cc, ch->pe, ch->vc, 0); /* in flight */
}

static void chain_fini(struct chain *ch)
{
	imp_voucher_release(ch->vb);
	imp_voucher_release(ch->vc);
	imp_msg_unref(ch->m1);
	imp_msg_unref(ch->m2);
	imp_msg_unref(ch->m3);
	tctx_fini(&ch->c);
}

static void test_chain_live_donor(void **state)
{
	struct chain ch;

	(void)state;
	chain_init(&ch);
	assert_string_equal(tctx_events(&ch.c), "2+ 3+ 4+");
	/* the donor goes to background: drops apply downstream first */
	assert_int_equal(imp_task_set_live_donor(ch.a, false), 0);
	assert_string_equal(tctx_events(&ch.c), "4- 3- 2-");
	assert_false(tu_msg_info(ch.m3).raised);
	assert_string_equal(tu_describe(ch.vc),
			    "Importance for pid 3 (1 of 1 boosts) linked from pid 2 (1 of 1 boosts) linked from pid 1");
	/* and back to foreground: boosts apply upstream first */
	assert_int_equal(imp_task_set_live_donor(ch.a, true), 0);
	assert_string_equal(tctx_events(&ch.c), "2+ 3+ 4+");
	assert_true(tu_msg_info(ch.m3).raised);
	assert_int_equal(tu_info(ch.b).transitions, 2);
	chain_fini(&ch);
}

static void test_chain_release(void **state)
{
	struct chain ch;

	(void)state;
	chain_init(&ch);
	tctx_events(&ch.c);
	/* Releasing B's voucher releases B's inherit value: B loses its
	 * boost and with it everything it passed on, downstream first. */
	imp_voucher_release(ch.vb);
	ch.vb = NULL;
	assert_string_equal(tctx_events(&ch.c), "4- 3- 2-");
	assert_int_equal(tu_stats(&ch.c).inherits, 2); /* C's still holds B's */
	assert_int_equal(imp_msg_destroy(ch.m3), 0);
	imp_voucher_release(ch.vc);
	ch.vc = NULL;
	assert_string_equal(tctx_events(&ch.c), "");
	assert_int_equal(tu_stats(&ch.c).inherits, 0);
	chain_fini(&ch);
}

static void test_donor_exit(void **state)
{
	struct chain ch;

	(void)state;
	chain_init(&ch);
	tctx_events(&ch.c);
	assert_int_equal(imp_task_exit(ch.a), 0);
	assert_string_equal(tctx_events(&ch.c), "4- 3- 2-");
	assert_string_equal(tu_describe(ch.vb), "Importance for pid 2 (1 of 1 boosts) linked from pid -1");
	chain_fini(&ch);
}

struct nap {
	struct tctx c;
	imp_task *d, *n;
	imp_port *pn;
	imp_msg *m[4];
	imp_voucher *v[4];
};

static void nap_init(struct nap *w, int boosts)
{
	tctx_init(&w->c);
	w->d = tu_task(&w->c, 1, IMP_TASK_DONOR);
	w->n = tu_task(&w->c, 2, IMP_TASK_DENAP_RECEIVER);
	w->pn = tu_port(w->n, true);
	for (int i = 0; i < boosts; i++) {
		imp_task *donor = tu_task(&w->c, 10 + i, IMP_TASK_DONOR);

		w->m[i] = tu_send(donor, w->pn, NULL, 0);
		w->v[i] = tu_recv_voucher(w->m[i]);
	}
	assert_string_equal(tctx_events(&w->c), "2+");
}

static void nap_fini(struct nap *w, int boosts)
{
	for (int i = 0; i < boosts; i++) {
		imp_voucher_release(w->v[i]);
		imp_msg_unref(w->m[i]);
	}
	tctx_fini(&w->c);
}

static void test_denap_hysteresis(void **state)
{
	struct nap w;
	uint64_t deadline = 0;
	imp_msg *again;

	(void)state;
	nap_init(&w, 1);
	assert_int_equal(imp_domain_next_deadline(w.c.d, &deadline), 0);
	tctx_advance_ms(&w.c, 100);
	assert_int_equal(imp_voucher_drop_external(w.v[0], 1, NULL), IMP_KERN_SUCCESS);
	assert_string_equal(tctx_events(&w.c), "");
	assert_true(tu_info(w.n).delayed_drop_pending);
	assert_int_equal(tu_stats(&w.c).delayed, 1);
	assert_int_equal(imp_domain_next_deadline(w.c.d, &deadline), 1);
	assert_int_equal(deadline, 1200ull * 1000000ull);
	assert_true(tu_has_trace(&w.c, IMP_TRACE_DELAYED_QUEUE));
	/* not yet due */
	assert_int_equal(imp_domain_run_timers(w.c.d), 0);
	tctx_advance_ms(&w.c, 1099);
	assert_string_equal(tctx_events(&w.c), "");
	tctx_advance_ms(&w.c, 1);
	assert_string_equal(tctx_events(&w.c), "2-");
	assert_int_equal(tu_stats(&w.c).delayed, 0);
	assert_int_equal(imp_domain_next_deadline(w.c.d, &deadline), 0);

	/* a boost that comes back within the delay cancels the drop */
	again = tu_send(w.d, w.pn, NULL, 0);
	assert_string_equal(tctx_events(&w.c), "2+");
	imp_msg_unref(again);
	nap_fini(&w, 1);
}

static void test_denap_reboost(void **state)
{
	struct nap w;
	imp_msg *again;

	(void)state;
	nap_init(&w, 1);
	assert_int_equal(imp_voucher_drop_external(w.v[0], 1, NULL), IMP_KERN_SUCCESS);
	tctx_advance_ms(&w.c, 500);
	again = tu_send(w.d, w.pn, NULL, 0);
	tctx_advance_ms(&w.c, 600); /* the call runs, finds N boosted */
	assert_string_equal(tctx_events(&w.c), "");
	assert_true(tu_info(w.n).boosted);
	assert_int_equal(imp_msg_destroy(again), 0); /* an ordinary drop is immediate */
	assert_string_equal(tctx_events(&w.c), "2-");
	imp_msg_unref(again);
	nap_fini(&w, 1);
}

static void test_denap_requeue(void **state)
{
	struct nap w;

	(void)state;
	nap_init(&w, 2);
	tctx_advance_ms(&w.c, 10);
	assert_int_equal(imp_voucher_drop_external(w.v[0], 1, NULL), IMP_KERN_SUCCESS);
	tctx_advance_ms(&w.c, 500);
	assert_int_equal(imp_voucher_drop_external(w.v[1], 1, NULL), IMP_KERN_SUCCESS);
	/* the call keeps the first deadline and takes the later entry too */
	tctx_advance_ms(&w.c, 599);
	assert_string_equal(tctx_events(&w.c), "");
	tctx_advance_ms(&w.c, 1);
	assert_string_equal(tctx_events(&w.c), "2-");
	nap_fini(&w, 2);
}

static void test_denap_exit_while_waiting(void **state)
{
	struct nap w;

	(void)state;
	nap_init(&w, 1);
	assert_int_equal(imp_voucher_drop_external(w.v[0], 1, NULL), IMP_KERN_SUCCESS);
	assert_int_equal(imp_task_exit(w.n), 0);
	assert_int_equal(tu_stats(&w.c).delayed, 1);
	tctx_advance_ms(&w.c, 2000);
	assert_string_equal(tctx_events(&w.c), "");
	assert_int_equal(tu_stats(&w.c).delayed, 0);
	nap_fini(&w, 1);
}

struct real_clock {
	int events;
	uint64_t at_ns;
};

static void real_policy(const imp_policy_event *ev, void *ctx)
{
	struct real_clock *rc = ctx;

	if (!ev->boosted) {
		rc->at_ns = ev->time_ns;
		__atomic_add_fetch(&rc->events, 1, __ATOMIC_SEQ_CST);
	}
}

static void test_timer_thread(void **state)
{
	imp_domain *d;
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	struct real_clock rc = { 0 };
	imp_task *don, *n;
	imp_port *p;
	imp_msg *m;
	imp_voucher *v;
	uint64_t start;
	int i;

	(void)state;
	cfg.policy = real_policy;
	cfg.policy_ctx = &rc;
	assert_int_equal(imp_domain_new(&cfg, &d), 0);
	assert_int_equal(imp_domain_timer_thread_start(d), 0);
	assert_int_equal(imp_domain_timer_thread_start(d), -EALREADY);
	assert_int_equal(imp_task_create(d, 1, IMP_TASK_DONOR, &don), 0);
	assert_int_equal(imp_task_create(d, 2, IMP_TASK_DENAP_RECEIVER, &n), 0);
	assert_int_equal(imp_port_create(n, true, &p), 0);
	assert_int_equal(imp_msg_send(don, p, NULL, 0, &m), 0);
	assert_int_equal(imp_msg_receive(m, IMP_RECV_VOUCHER, &v), 0);
	start = imp_domain_now(d);
	assert_int_equal(imp_voucher_drop_external(v, 1, NULL), IMP_KERN_SUCCESS);
	for (i = 0; i < 300 && !__atomic_load_n(&rc.events, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(rc.events, 1);
	assert_true(rc.at_ns - start >= IMP_DENAP_DROP_DELAY_NS);
	imp_domain_timer_thread_stop(d);
	imp_domain_timer_thread_stop(d);
	imp_voucher_release(v);
	imp_msg_unref(m);
	imp_domain_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_live_donor),
		cmocka_unit_test(test_chain_release),
		cmocka_unit_test(test_donor_exit),
		cmocka_unit_test(test_denap_hysteresis),
		cmocka_unit_test(test_denap_reboost),
		cmocka_unit_test(test_denap_requeue),
		cmocka_unit_test(test_denap_exit_while_waiting),
		cmocka_unit_test(test_timer_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Concurrency: several threads doing random operations on one domain with
 * a real clock and the timer thread running; policy callbacks must see
 * every task's updates in an order that ends in its true state, and at
 * quiescence every invariant holds and, once all is released, nothing is
 * left.  Meant for the TSan build too. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define THREADS 4
#define TASKS 12
#define OPS 50000

static imp_domain *dom;
static imp_task *tasks[TASKS];
static imp_port *ports[TASKS];
static int boosted_seen[TASKS];
static long policy_events;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void policy(const imp_policy_event *ev, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&seen_lock);
	boosted_seen[ev->pid] = ev->boosted;
	policy_events++;
	pthread_mutex_unlock(&seen_lock);
}

struct worker {
	unsigned seed;
	imp_msg *msgs[64];
	unsigned nmsgs;
	imp_voucher *vouchers[32];
	unsigned nvouchers;
	unsigned holds[TASKS];
};

static unsigned rnd(struct worker *w, unsigned n)
{
	return (unsigned)rand_r(&w->seed) % n;
}

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < OPS; i++) {
		unsigned t = rnd(w, TASKS), op = rnd(w, 10);
		imp_msg *m;
		imp_voucher *v;

		switch (op) {
		case 0:
		case 1:
			if (w->nmsgs < 3) {
				v = w->nvouchers ? w->vouchers[rnd(w, w->nvouchers)] : NULL;
				assert_int_equal(imp_msg_send(tasks[t], ports[rnd(w, TASKS)], v,
							      rnd(w, 8) == 0 ? IMP_SEND_IMPORTANCE : 0, &m), 0);
				w->msgs[w->nmsgs++] = m;
			}
			break;
		case 2:
		case 3:
			if (w->nmsgs) {
				unsigned k = rnd(w, w->nmsgs);

				m = w->msgs[k];
				if (w->nvouchers < 6 && rnd(w, 2)) {
					assert_int_equal(imp_msg_receive(m, IMP_RECV_VOUCHER, &v), 0);
					if (v)
						w->vouchers[w->nvouchers++] = v;
				} else if (rnd(w, 2)) {
					assert_int_equal(imp_msg_receive(m, 0, NULL), 0);
				} else {
					assert_int_equal(imp_msg_destroy(m), 0);
				}
				imp_msg_unref(m);
				w->msgs[k] = w->msgs[--w->nmsgs];
			}
			break;
		case 4:
			if (w->nvouchers) {
				unsigned k = rnd(w, w->nvouchers);

				imp_voucher_release(w->vouchers[k]);
				w->vouchers[k] = w->vouchers[--w->nvouchers];
			}
			break;
		case 5:
			/* legacy boosts are dropped by whoever took them: anyone */
			if (w->nvouchers && rnd(w, 2))
				imp_voucher_drop_external(w->vouchers[rnd(w, w->nvouchers)], 1, NULL);
			else
				imp_task_drop_legacy_assertion(tasks[t], 1);
			break;
		case 6:
			assert_int_equal(imp_task_set_live_donor(tasks[t], rnd(w, 2)), 0);
			break;
		case 7:
			if (w->holds[t]) {
				assert_int_equal(imp_task_drop_assertion(tasks[t], 1), 0);
				w->holds[t]--;
			} else {
				assert_int_equal(imp_task_hold_assertion(tasks[t], 1), 0);
				w->holds[t]++;
			}
			break;
		case 8:
			if (w->nvouchers < 6 && imp_voucher_self(tasks[t], &v) == 0 && v)
				w->vouchers[w->nvouchers++] = v;
			break;
		default:
			imp_domain_run_timers(dom);
			break;
		}
	}
	return NULL;
}

static void test_stress(void **state)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	imp_stats st;
	int i, j;

	(void)state;
	cfg.policy = policy;
	assert_int_equal(imp_domain_new(&cfg, &dom), 0);
	assert_int_equal(imp_domain_timer_thread_start(dom), 0);
	for (i = 0; i < TASKS; i++) {
		unsigned flags = i % 3 == 0 ? IMP_TASK_DONOR | IMP_TASK_LIVE_DONOR :
				 i % 3 == 1 ? IMP_TASK_RECEIVER : IMP_TASK_DENAP_RECEIVER;

		assert_int_equal(imp_task_create(dom, i, flags, &tasks[i]), 0);
		assert_int_equal(imp_port_create(tasks[i], i % 4 != 3, &ports[i]), 0);
	}
	memset(w, 0, sizeof(w));
	for (i = 0; i < THREADS; i++) {
		w[i].seed = 1234u + (unsigned)i;
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);

	/* the run did boost and unboost, many times */
	print_message("policy events: %ld\n", policy_events);
	assert_true(policy_events > 50); /* a run that boosts and unboosts; the count depends on scheduling */

	/* quiescence */
	assert_int_equal(imp_domain_verify(dom), 0);
	for (i = 0; i < TASKS; i++) {
		imp_task_info ti;

		assert_int_equal(imp_task_get_info(tasks[i], &ti), 0);
		/* the last update a callback saw is the task's state */
		assert_int_equal(boosted_seen[i], ti.boosted);
	}

	/* release everything: nothing may be left */
	for (i = 0; i < THREADS; i++) {
		for (j = 0; j < (int)w[i].nmsgs; j++)
			imp_msg_unref(w[i].msgs[j]);
		for (j = 0; j < (int)w[i].nvouchers; j++)
			imp_voucher_release(w[i].vouchers[j]);
	}
	for (i = 0; i < TASKS; i++) {
		assert_int_equal(imp_task_exit(tasks[i]), 0);
		imp_port_unref(ports[i]);
		imp_task_unref(tasks[i]);
	}
	imp_domain_timer_thread_stop(dom);
	/* entries left on the delayed queue by exited tasks go with the call */
	{
		uint64_t dl;

		while (imp_domain_next_deadline(dom, &dl) == 1) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			imp_domain_run_timers(dom);
		}
	}
	assert_int_equal(imp_domain_verify(dom), 0);
	assert_int_equal(imp_domain_get_stats(dom, &st), 0);
	assert_int_equal(st.task_elems, 0);
	assert_int_equal(st.inherits, 0);
	assert_int_equal(st.vouchers, 0);
	assert_int_equal(st.tasks, 0);
	assert_int_equal(st.ports, 0);
	assert_int_equal(st.messages, 0);
	imp_domain_free(dom);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

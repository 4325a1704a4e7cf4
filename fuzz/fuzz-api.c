/* libFuzzer target: sequences of API calls, valid or not, on one domain.
 * Every byte pair is an operation on a small pool of handles.  After each
 * call the invariants must hold; at the end, with everything released and
 * every task exited, nothing may be left and nothing may leak. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "importance/importance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NT 6
#define NP 6
#define NM 24
#define NV 12

static uint64_t now_ns;

static uint64_t fuzz_clock(void *ctx)
{
	(void)ctx;
	return now_ns;
}

static void check(imp_domain *d)
{
	if (imp_domain_broken(d) || imp_domain_verify(d) != 0) {
		fprintf(stderr, "invariant: %s\n", imp_last_error());
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	imp_domain *d;
	imp_task *t[NT] = { 0 };
	imp_port *p[NP] = { 0 };
	imp_msg *m[NM] = { 0 };
	imp_voucher *v[NV] = { 0 };
	imp_stats st;
	size_t i;
	int k;

	now_ns = 0;
	cfg.clock_now = fuzz_clock;
	cfg.verify_each_step = true;
	if (imp_domain_new(&cfg, &d) != 0)
		return 0;
	for (i = 0; i + 1 < size; i += 2) {
		unsigned op = data[i] % 20, a = data[i + 1], x = a % NT, y = (a / NT) % NT;
		unsigned mi = a % NM, vi = a % NV, n = a % 4;
		imp_voucher *got = NULL;
		uint32_t left;
		char buf[64];

		switch (op) {
		case 0:
			if (!t[x])
				imp_task_create(d, (int)x, a >> 4, &t[x]);
			break;
		case 1:
			if (t[x] && !p[y])
				imp_port_create(t[x], a & 1, &p[y]);
			break;
		case 2:
			if (t[x] && p[y] && !m[mi])
				imp_msg_send(t[x], p[y], v[(a >> 3) % NV], (a >> 6) & 3, &m[mi]);
			break;
		case 3:
			if (m[mi]) {
				unsigned flags = (a >> 5) & 3;

				if (imp_msg_receive(m[mi], flags, (flags & IMP_RECV_VOUCHER) ? &got : NULL) == 0 && got) {
					if (v[vi])
						imp_voucher_release(v[vi]);
					v[vi] = got;
				}
			}
			break;
		case 4:
			if (m[mi])
				imp_msg_destroy(m[mi]);
			break;
		case 5:
			imp_msg_unref(m[mi]);
			m[mi] = NULL;
			break;
		case 6:
			if (t[x] && imp_voucher_self(t[x], &got) == 0) {
				imp_voucher_release(v[vi]);
				v[vi] = got;
			}
			break;
		case 7:
			if (imp_voucher_redeem(v[vi], &got) == 0) {
				imp_voucher_release(v[(vi + 1) % NV]);
				v[(vi + 1) % NV] = got;
			}
			break;
		case 8:
			imp_voucher_release(v[vi]);
			v[vi] = NULL;
			break;
		case 9:
			imp_voucher_drop_external(v[vi], n, &left);
			imp_voucher_describe(v[vi], buf, a % sizeof(buf), NULL);
			break;
		case 10:
			if (t[x])
				(n & 1 ? imp_task_drop_assertion : imp_task_hold_assertion)(t[x], a >> 4);
			break;
		case 11:
			if (t[x])
				(n & 1 ? imp_task_drop_file_lock : imp_task_hold_file_lock)(t[x], a >> 5);
			break;
		case 12:
			if (t[x])
				(n & 1 ? imp_task_drop_legacy_assertion : imp_task_hold_legacy_assertion)(t[x], a >> 6);
			break;
		case 13:
			if (t[x])
				imp_task_set_live_donor(t[x], a & 1);
			break;
		case 14:
			if (t[x])
				imp_task_reset(t[x]);
			break;
		case 15:
			if (t[x])
				imp_task_exit(t[x]);
			break;
		case 16:
			if (p[y])
				imp_port_destroy(p[y]);
			break;
		case 17:
			if (t[x]) {
				switch (n) {
				case 0: imp_task_mark_receiver(t[x], a & 16); break;
				case 1: imp_task_mark_denap_receiver(t[x], a & 16); break;
				case 2: imp_task_mark_donor(t[x], a & 16); break;
				default: imp_task_mark_live_donor(t[x], a & 16); break;
				}
			}
			break;
		case 18:
			now_ns += (uint64_t)a * 10 * 1000000ull;
			while (imp_domain_run_timers(d) == 1)
				;
			break;
		default: {
			int pids[8];

			if (t[x])
				imp_task_donating_pids(t[x], pids, n * 2);
			break;
		}
		}
		check(d);
	}
	/* teardown: nothing may remain */
	for (k = 0; k < NV; k++)
		imp_voucher_release(v[k]);
	for (k = 0; k < NM; k++)
		imp_msg_unref(m[k]);
	for (k = 0; k < NT; k++)
		if (t[k])
			imp_task_exit(t[k]);
	for (k = 0; k < NP; k++)
		imp_port_unref(p[k]);
	for (k = 0; k < NT; k++)
		imp_task_unref(t[k]);
	now_ns += 10ull * IMP_DENAP_DROP_DELAY_NS;
	while (imp_domain_run_timers(d) == 1)
		;
	check(d);
	imp_domain_get_stats(d, &st);
	if (st.task_elems || st.inherits || st.vouchers || st.tasks || st.ports || st.messages)
		abort();
	imp_domain_free(d);
	return 0;
}

/* Test harness: a domain on a virtual clock, with every policy update
 * recorded, the invariant checker on after every step, and a counting
 * allocator that can be told to fail the Nth allocation. */
#ifndef IMP_TESTUTIL_H
#define IMP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "importance/importance.h"

struct tctx {
	imp_domain *d;
	uint64_t now_ns;
	char events[8192]; /* "pid+ pid- ..." */
	size_t len;
	unsigned n_events;
	imp_trace_event traces[256];
	unsigned n_traces;
	long counts[2]; /* this domain's allocations and frees */
	imp_allocator allocator;
};

/* Allocation accounting shared by every domain of the test process. */
extern long tu_allocs, tu_frees, tu_fail_at, tu_alloc_count;
extern const imp_allocator tu_allocator;

void tctx_init(struct tctx *c);
void tctx_init_cfg(struct tctx *c, imp_domain_config *cfg);
/* Checks the invariants and frees the domain. */
void tctx_fini(struct tctx *c);
/* The events recorded since the last call, then forgets them. */
const char *tctx_events(struct tctx *c);
void tctx_advance_ms(struct tctx *c, uint64_t ms);

imp_task *tu_task(struct tctx *c, int pid, unsigned flags);
imp_port *tu_port(imp_task *owner, bool donate);
imp_msg *tu_send(imp_task *from, imp_port *to, imp_voucher *v, unsigned options);
imp_voucher *tu_recv_voucher(imp_msg *m);
imp_task_info tu_info(imp_task *t);
/* The task element's references and made references (internal counts). */
uint32_t tu_elem_refs(imp_task *t);
uint32_t tu_elem_made(imp_task *t);
imp_port_info tu_port_info(imp_port *p);
imp_msg_info tu_msg_info(imp_msg *m);
imp_stats tu_stats(struct tctx *c);
const char *tu_describe(imp_voucher *v);
bool tu_has_trace(struct tctx *c, imp_trace_kind kind);

#endif

/*
 * The invariant checker: recomputes, from the object graph, every count
 * the engine keeps incrementally, and reports the first disagreement.
 * Run after every mutating call when verify_each_step is set, and by
 * imp_domain_verify().  Linear in the number of objects.
 */
#include "internal.h"

#define FAIL(...) return imp__error(-EUCLEAN, __VA_ARGS__)

static uint32_t imp__count_msgs_linked(imp_domain *d, const struct imp__elem *e)
{
	const struct imp_msg *m;
	uint32_t n = 0;

	TAILQ_FOREACH(m, &d->msgs, link)
		if (m->importance == e)
			n++;
	return n;
}

static int imp__verify_voucher(imp_domain *d, struct imp__elem *e, size_t *n)
{
	struct imp_voucher *v = e->voucher;
	const struct imp_msg *m;
	uint32_t carried = 0;

	if (!v)
		return 0;
	(*n)++;
	if (v != imp__voucher_slot(e) || v->value != e)
		FAIL("voucher object and its value disagree");
	if (!v->refs || !v->made)
		FAIL("live voucher with no references or no made count");
	TAILQ_FOREACH(m, &d->msgs, link)
		carried += m->voucher == v;
	if (carried > v->refs)
		FAIL("voucher carried by more messages than its references");
	return 0;
}

int imp__verify_locked(imp_domain *d)
{
	struct imp__task_elem *t;
	struct imp__inherit *i;
	struct imp_msg *m;
	struct imp_port *p;
	struct imp_task *task;
	size_t n;
	int e;

	/* object counts */
	n = 0;
	TAILQ_FOREACH(t, &d->all_task_elems, all_link)
		n++;
	if (n != d->n_task_elems)
		FAIL("task element count %zu, list holds %zu", d->n_task_elems, n);
	n = 0;
	TAILQ_FOREACH(i, &d->all_inherits, all_link)
		n++;
	if (n != d->n_inherits)
		FAIL("inherit count %zu, list holds %zu", d->n_inherits, n);
	/* dormant inherits: nothing but their place on the lists */
	n = 0;
	TAILQ_FOREACH(i, &d->all_inherits, all_link) {
		if (!i->dormant)
			continue;
		n++;
		if (i->elem.refs || i->elem.made || i->elem.voucher || i->externcnt || i->externdrop ||
		    i->donating)
			FAIL("dormant inherit to pid %d holds references or counts", imp__elem_pid(&i->elem));
		if (!i->from_elem || i->from_elem->type != IMP__ELEM_TASK || i->to_task->dormant != i)
			FAIL("dormant inherit not its to-task's, or not from a task element");
	}
	if (n != d->n_dormant)
		FAIL("dormant inherit count %zu, list holds %zu", d->n_dormant, n);
	n = 0;
	TAILQ_FOREACH(t, &d->delayed_queue, update_link)
		n++;
	if (n != d->n_delayed)
		FAIL("delayed count %zu, queue holds %zu", d->n_delayed, n);

	/* messages: links and ports */
	TAILQ_FOREACH(m, &d->msgs, link) {
		if (m->importance && m->state != IMP_MSG_QUEUED)
			FAIL("message not queued but linked");
		if (m->raised && m->state == IMP_MSG_QUEUED && !m->port->donate)
			FAIL("raised message on a port that does not take donations");
	}
	TAILQ_FOREACH(p, &d->ports, link) {
		uint32_t raised = 0;
		size_t queued = 0;

		TAILQ_FOREACH(m, &p->queue, queue_link) {
			if (m->state != IMP_MSG_QUEUED || m->port != p)
				FAIL("message on a port queue is not queued there");
			queued++;
			raised += m->raised;
		}
		if (queued != p->queued)
			FAIL("port queue length %zu, counted %zu", p->queued, queued);
		if (!p->active && (p->impcount || queued))
			FAIL("dead port holds boosts or messages");
		if (p->active && p->impcount != raised)
			FAIL("port impcount %u but %u raised messages queued", p->impcount, raised);
	}

	/* task elements */
	TAILQ_FOREACH(t, &d->all_task_elems, all_link) {
		uint32_t refs = (t->task ? 1 : 0) + (t->elem.made ? 1 : 0) + (t->updateq ? 1 : 0);
		uint64_t ext_cnt = 0, ext_drop = 0;

		refs += imp__count_msgs_linked(d, &t->elem);
		if (t->dormant && (!t->dormant->dormant || t->dormant->to_task != t))
			FAIL("task element pid %d: its dormant inherit is not", t->task ? t->task->pid : -1);
		TAILQ_FOREACH(i, &d->all_inherits, all_link) {
			if (i->dormant)
				continue;
			refs += (i->from_elem == &t->elem) + (i->to_task == t);
			if (i->to_task == t && i->donating) {
				ext_cnt += i->externcnt;
				ext_drop += i->externdrop;
			}
		}
		if (refs != t->elem.refs)
			FAIL("task element pid %d: %u references, %u found",
			     t->task ? t->task->pid : -1, t->elem.refs, refs);
		if (t->elem.made != (t->elem.voucher ? t->elem.voucher->made : 0))
			FAIL("task element made %u, voucher layer says %u", t->elem.made,
			     t->elem.voucher ? t->elem.voucher->made : 0);
		if (t->task && t->task->imp != t)
			FAIL("task and element disagree");
		if (t->receiver && t->denap)
			FAIL("task element is both kinds of receiver");
		if (t->filelocks > IMP__FILELOCK_MASK)
			FAIL("file-lock count exceeds 24 bits");
		if (IMP__TASK_LEGACY(t) > IMP__TASK_EXTERN(t) ||
		    t->legacy_externdrop > t->legacy_externcnt || t->externdrop > t->externcnt)
			FAIL("task element pid %d: external counts out of order",
			     t->task ? t->task->pid : -1);
		if ((uint64_t)(t->externcnt - t->legacy_externcnt) != ext_cnt ||
		    (uint64_t)(t->externdrop - t->legacy_externdrop) != ext_drop)
			FAIL("task element pid %d: extern %u/%u, donating inherits give %lu/%lu",
			     t->task ? t->task->pid : -1, t->externcnt - t->legacy_externcnt,
			     t->externdrop - t->legacy_externdrop, (unsigned long)ext_cnt,
			     (unsigned long)ext_drop);
		if (!imp__is_any_receiver(t) && (t->assertcnt || t->externcnt))
			FAIL("a task that is not a receiver holds assertions");
		if (t->updateq && t->updateq != &d->delayed_queue)
			FAIL("task element left on a private update queue");
		if (t->on_prop || t->updatepolicy)
			FAIL("task element left marked for propagation");
		TAILQ_FOREACH(m, &t->kmsgs, imp_link)
			if (!m->importance || imp__elem_link_task(m->importance) != t)
				FAIL("message on the wrong propagation list");
		n = 0;
		TAILQ_FOREACH(i, &t->inherits, link) {
			if (imp__elem_link_task(i->from_elem) != t)
				FAIL("inherit on the wrong propagation list");
			n++;
		}
		if (n != t->n_inherits)
			FAIL("inherit list length %u, counted %zu", t->n_inherits, n);
		n = 0;
		TAILQ_FOREACH(i, &t->inbound, to_link) {
			if (i->to_task != t)
				FAIL("inherit on the wrong inbound list");
			n++;
		}
		if (n != t->n_inbound)
			FAIL("inbound list length %u, counted %zu", t->n_inbound, n);
	}

	/* inherits */
	TAILQ_FOREACH(i, &d->all_inherits, all_link) {
		uint32_t refs = (i->elem.made ? 1 : 0) + imp__count_msgs_linked(d, &i->elem);
		struct imp__inherit *j;

		if (i->dormant)
			continue;
		TAILQ_FOREACH(j, &d->all_inherits, all_link)
			refs += j->from_elem == &i->elem;
		if (refs != i->elem.refs)
			FAIL("inherit to pid %d: %u references, %u found",
			     imp__elem_pid(&i->elem), i->elem.refs, refs);
		if (i->elem.made != (i->elem.voucher ? i->elem.voucher->made : 0))
			FAIL("inherit made %u, voucher layer says %u", i->elem.made,
			     i->elem.voucher ? i->elem.voucher->made : 0);
		if (i->externdrop > i->externcnt)
			FAIL("inherit dropped more than it holds");
		if (i->donating && IMP__INHERIT_EXTERN(i) == 0)
			FAIL("inherit donates nothing");
		if (!i->from_elem || !imp__is_any_receiver(i->to_task))
			FAIL("inherit without source or to a non-receiver");
	}

	/* vouchers: each lives in its value */
	n = 0;
	TAILQ_FOREACH(t, &d->all_task_elems, all_link)
		if ((e = imp__verify_voucher(d, &t->elem, &n)) < 0)
			return e;
	TAILQ_FOREACH(i, &d->all_inherits, all_link)
		if ((e = imp__verify_voucher(d, &i->elem, &n)) < 0)
			return e;
	if (n != d->n_vouchers)
		FAIL("voucher count %zu, values hold %zu", d->n_vouchers, n);

	/* tasks */
	TAILQ_FOREACH(task, &d->tasks, link) {
		if (!task->refs)
			FAIL("task with no references still listed");
		if (task->active && !task->imp)
			FAIL("active task without an element");
	}
	return 0;
}

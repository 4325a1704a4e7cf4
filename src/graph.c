/* A consistent copy of the donation graph, for drawing and inspection. */
#include <string.h>

#include "internal.h"

int imp_domain_graph(imp_domain *d, imp_graph **out)
{
	imp_graph *g;
	struct imp__task_elem *t;
	struct imp__inherit *i;
	struct imp_task *task;
	struct imp_port *p;
	struct imp_msg *m;
	size_t nt = 0, np = 0, nm = 0, ni = 0;

	IMP__CHECK_ARG(d && out, "imp_domain_graph: NULL argument");
	*out = NULL;
	imp__lock_any(d);
	TAILQ_FOREACH(task, &d->tasks, link)
		nt++;
	TAILQ_FOREACH(t, &d->all_task_elems, all_link)
		if (!t->task && !t->owner)
			nt++; /* an element that outlived its task object */
	np = d->n_ports;
	TAILQ_FOREACH(m, &d->msgs, link)
		nm += m->state == IMP_MSG_QUEUED;
	ni = d->n_inherits - d->n_dormant;

	g = imp__alloc(d, sizeof(*g));
	if (g) {
		g->tasks = imp__alloc(d, sizeof(*g->tasks) * (nt + 1));
		g->ports = imp__alloc(d, sizeof(*g->ports) * (np + 1));
		g->msgs = imp__alloc(d, sizeof(*g->msgs) * (nm + 1));
		g->inherits = imp__alloc(d, sizeof(*g->inherits) * (ni + 1));
	}
	if (!g || !g->tasks || !g->ports || !g->msgs || !g->inherits) {
		pthread_mutex_unlock(&d->lock);
		imp_graph_free(d, g);
		return imp__error(-ENOMEM, "imp_domain_graph: out of memory");
	}

	TAILQ_FOREACH(task, &d->tasks, link) {
		imp_graph_task *gt = &g->tasks[g->n_tasks++];
		struct imp__task_elem *e = task->imp ? task->imp : task->former_imp;

		gt->task = task;
		gt->pid = task->pid;
		gt->active = task->active;
		gt->boosted = atomic_load(&task->boosted);
		if (e) {
			gt->elem_id = e->elem.id;
			gt->receiver = e->receiver;
			gt->denap = e->denap;
			gt->donor = imp__is_donor(e);
			gt->assertcnt = e->assertcnt;
			gt->extern_boosts = IMP__TASK_EXTERN(e);
			gt->legacy_boosts = IMP__TASK_LEGACY(e);
		}
	}
	TAILQ_FOREACH(t, &d->all_task_elems, all_link) {
		imp_graph_task *gt;

		if (t->task || t->owner)
			continue;
		gt = &g->tasks[g->n_tasks++];
		gt->pid = -1;
		gt->elem_id = t->elem.id;
		gt->receiver = t->receiver;
		gt->denap = t->denap;
		gt->assertcnt = t->assertcnt;
		gt->extern_boosts = IMP__TASK_EXTERN(t);
	}
	TAILQ_FOREACH(p, &d->ports, link) {
		imp_graph_port *gp = &g->ports[g->n_ports++];

		gp->port = p;
		gp->owner = p->owner;
		gp->active = p->active;
		gp->donate = p->donate;
		gp->impcount = p->impcount;
	}
	TAILQ_FOREACH(m, &d->msgs, link) {
		imp_graph_msg *gm;

		if (m->state != IMP_MSG_QUEUED)
			continue;
		gm = &g->msgs[g->n_msgs++];
		gm->msg = m;
		gm->port = m->port;
		gm->sender = m->sender;
		gm->raised = m->raised;
		gm->linked_elem_id = m->importance ? m->importance->id : 0;
	}
	TAILQ_FOREACH(i, &d->all_inherits, all_link) {
		imp_graph_inherit *gi;

		if (i->dormant)
			continue;
		gi = &g->inherits[g->n_inherits++];

		gi->elem_id = i->elem.id;
		gi->from_elem_id = i->from_elem ? i->from_elem->id : 0;
		gi->to_elem_id = i->to_task->elem.id;
		gi->externcnt = i->externcnt;
		gi->externdrop = i->externdrop;
		gi->made = i->elem.made;
		gi->depth = i->depth;
		gi->donating = i->donating;
	}
	pthread_mutex_unlock(&d->lock);
	*out = g;
	return 0;
}

void imp_graph_free(imp_domain *d, imp_graph *g)
{
	if (!d || !g)
		return;
	imp__free(d, g->tasks);
	imp__free(d, g->ports);
	imp__free(d, g->msgs);
	imp__free(d, g->inherits);
	imp__free(d, g);
}

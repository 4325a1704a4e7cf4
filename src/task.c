/*
 * Tasks and their importance elements: creation and marks, assertions,
 * live-donor updates, exec reset, exit, and introspection.
 */
#include <string.h>

#include "internal.h"

#define IMP__TASK_FLAGS \
	(IMP_TASK_RECEIVER | IMP_TASK_DENAP_RECEIVER | IMP_TASK_DONOR | IMP_TASK_LIVE_DONOR)

void imp__task_unref_locked(imp_domain *d, struct imp_task *task)
{
	if (--task->refs > 0)
		return;
	/* Only an exited task gets here: an active one keeps a reference. */
	if (task->former_imp)
		task->former_imp->owner = NULL;
	TAILQ_REMOVE(&d->tasks, task, link);
	d->n_tasks--;
	imp__free(d, task);
}

imp_task *imp_task_ref(imp_task *task)
{
	if (task) {
		imp__lock_any(task->domain);
		task->refs++;
		pthread_mutex_unlock(&task->domain->lock);
	}
	return task;
}

void imp_task_unref(imp_task *task)
{
	imp_domain *d;

	if (!task)
		return;
	d = task->domain;
	imp__lock_any(d);
	imp__task_unref_locked(d, task);
	pthread_mutex_unlock(&d->lock);
}

int imp_task_pid(const imp_task *task)
{
	return task ? task->pid : -1;
}

void imp_task_set_userdata(imp_task *task, void *userdata)
{
	if (task)
		task->userdata = userdata;
}

void *imp_task_get_userdata(const imp_task *task)
{
	return task ? task->userdata : NULL;
}

/* Locks the domain and returns the task's connected element, or fails
 * (with the lock released) for an exited task. */
static int imp__task_begin(imp_task *task, const char *what, struct imp__task_elem **out)
{
	int r;

	IMP__CHECK_ARG(task, "%s: NULL task", what);
	if ((r = imp__lock(task->domain)) < 0)
		return r;
	if (!task->active || !task->imp) {
		imp__unlock(task->domain);
		return imp__error(-ESRCH, "%s: task pid %d has exited", what, task->pid);
	}
	*out = task->imp;
	return 0;
}

static int imp__mark_receiver_locked(struct imp__task_elem *t, bool on, const char *what)
{
	if (on) {
		if (t->denap)
			return imp__error(-EINVAL, "%s: task is a de-nap receiver", what);
		if (t->assertcnt || t->externcnt || t->externdrop)
			return imp__error(-EBUSY, "%s: task holds assertions", what);
		t->receiver = 1;
	} else if (t->receiver) {
		if (t->assertcnt || IMP__TASK_EXTERN(t))
			return imp__error(-EBUSY, "%s: task has pending importance boosts", what);
		/* an inherit to it, even one not donating now, could donate
		 * again later: it needs a receiver at its end (found by
		 * fuzz-api; the reference only checks the counts) */
		if (imp__live_inbound(t))
			return imp__error(-EBUSY, "%s: %u inherits still target the task", what,
					  imp__live_inbound(t));
		t->receiver = 0;
	}
	return 0;
}

static int imp__mark_denap_locked(struct imp__task_elem *t, bool on, const char *what)
{
	if (on) {
		if (t->receiver)
			return imp__error(-EINVAL, "%s: task is an importance receiver", what);
		if (t->assertcnt || t->externcnt)
			return imp__error(-EBUSY, "%s: task holds assertions", what);
		t->denap = 1;
	} else if (t->denap) {
		if (t->assertcnt || IMP__TASK_EXTERN(t))
			return imp__error(-EBUSY, "%s: task has pending de-nap boosts", what);
		if (imp__live_inbound(t))
			return imp__error(-EBUSY, "%s: %u inherits still target the task", what,
					  imp__live_inbound(t));
		t->denap = 0;
	}
	return 0;
}

static void imp__mark_donor_locked(struct imp__task_elem *t, bool on)
{
	bool was = t->donor;

	t->donor = on;
	if (on && !was)
		t->transitions++;
}

int imp_task_create(imp_domain *d, int pid, unsigned flags, imp_task **out)
{
	imp_task *task;
	struct imp__task_elem *t = NULL;
	int r;

	IMP__CHECK_ARG(d && out, "imp_task_create: NULL argument");
	*out = NULL;
	IMP__CHECK_ARG(!(flags & ~IMP__TASK_FLAGS), "imp_task_create: unknown flags 0x%x", flags);
	IMP__CHECK_ARG((flags & (IMP_TASK_RECEIVER | IMP_TASK_DENAP_RECEIVER)) !=
			       (IMP_TASK_RECEIVER | IMP_TASK_DENAP_RECEIVER),
		       "imp_task_create: a task is a receiver or a de-nap receiver, not both");
	task = imp__alloc(d, sizeof(*task));
	if (!task)
		return imp__error(-ENOMEM, "imp_task_create: out of memory");
	if ((r = imp__lock(d)) < 0) {
		imp__free(d, task);
		return r;
	}
	t = imp__task_elem_new(d, task);
	if (!t) {
		imp__unlock(d);
		imp__free(d, task);
		return imp__error(-ENOMEM, "imp_task_create: out of memory");
	}
	task->domain = d;
	task->refs = 2; /* the caller's and the one an active task keeps */
	task->pid = pid;
	task->active = true;
	task->imp = t;
	TAILQ_INIT(&task->ports);
	TAILQ_INSERT_TAIL(&d->tasks, task, link);
	d->n_tasks++;

	if (flags & IMP_TASK_RECEIVER)
		t->receiver = 1;
	if (flags & IMP_TASK_DENAP_RECEIVER)
		t->denap = 1;
	if (flags & IMP_TASK_DONOR)
		imp__mark_donor_locked(t, true);
	if (flags & IMP_TASK_LIVE_DONOR)
		t->live_donor = 1;
	task->live_donor_state = (flags & IMP_TASK_DONOR) != 0;
	imp__unlock(d);
	*out = task;
	return 0;
}

int imp_task_mark_receiver(imp_task *task, bool on)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_mark_receiver", &t)) < 0)
		return r;
	r = imp__mark_receiver_locked(t, on, "imp_task_mark_receiver");
	imp__unlock(task->domain);
	return r;
}

int imp_task_mark_denap_receiver(imp_task *task, bool on)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_mark_denap_receiver", &t)) < 0)
		return r;
	r = imp__mark_denap_locked(t, on, "imp_task_mark_denap_receiver");
	imp__unlock(task->domain);
	return r;
}

int imp_task_mark_donor(imp_task *task, bool on)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_mark_donor", &t)) < 0)
		return r;
	imp__mark_donor_locked(t, on);
	imp__unlock(task->domain);
	return 0;
}

int imp_task_mark_live_donor(imp_task *task, bool on)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_mark_live_donor", &t)) < 0)
		return r;
	t->live_donor = on;
	imp__unlock(task->domain);
	return 0;
}

int imp_task_set_live_donor(imp_task *task, bool on)
{
	struct imp__task_elem *t = NULL;
	bool before;
	int r;

	if ((r = imp__task_begin(task, "imp_task_set_live_donor", &t)) < 0)
		return r;
	task->live_donor_state = on;
	if (t->live_donor) {
		before = t->donor;
		t->donor = on;
		if (before != on) {
			/* The task's own policy is not what changes here: what
			 * it donates downstream does. */
			if (on)
				t->transitions++;
			imp__propagate(task->domain, t, on, false);
		}
	}
	imp__unlock(task->domain);
	return 0;
}

int imp_task_hold_assertion(imp_task *task, uint32_t count)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_hold_assertion", &t)) < 0)
		return r;
	if (imp__is_any_receiver(t))
		imp__hold_internal_locked(task->domain, t, count);
	imp__unlock(task->domain);
	return 0;
}

int imp_task_drop_assertion(imp_task *task, uint32_t count)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_drop_assertion", &t)) < 0)
		return r;
	if (imp__is_any_receiver(t))
		imp__drop_internal_locked(task->domain, t, count);
	imp__unlock(task->domain);
	return 0;
}

int imp_task_hold_file_lock(imp_task *task, uint32_t count)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_hold_file_lock", &t)) < 0)
		return r;
	if (imp__is_any_receiver(t)) {
		imp__hold_internal_locked(task->domain, t, count);
		t->filelocks = (t->filelocks + count) & IMP__FILELOCK_MASK;
	}
	imp__unlock(task->domain);
	return IMP_KERN_SUCCESS;
}

int imp_task_drop_file_lock(imp_task *task, uint32_t count)
{
	struct imp__task_elem *t = NULL;
	int r = IMP_KERN_SUCCESS;

	if ((r = imp__task_begin(task, "imp_task_drop_file_lock", &t)) < 0)
		return r;
	if (imp__is_any_receiver(t)) {
		if (count <= t->filelocks) {
			t->filelocks -= count;
			imp__drop_internal_locked(task->domain, t, count);
		} else {
			r = IMP_KERN_INVALID_ARGUMENT;
		}
	}
	imp__unlock(task->domain);
	return r;
}

int imp_task_hold_legacy_assertion(imp_task *task, uint32_t count)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_hold_legacy_assertion", &t)) < 0)
		return r;
	if (IMP__TASK_LEGACY(t) == 0) {
		/* only a task holding a legacy boost may take more */
		imp__trace(task->domain, IMP_TRACE_LEGACY_MISUSE, task->pid, -1, count, 0);
		r = IMP_KERN_FAILURE;
	} else {
		t->assertcnt += count;
		t->externcnt += count;
		t->legacy_externcnt += count;
	}
	imp__unlock(task->domain);
	return r;
}

int imp_task_drop_legacy_assertion(imp_task *task, uint32_t count)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_drop_legacy_assertion", &t)) < 0)
		return r;
	if (count > 1)
		r = IMP_KERN_INVALID_ARGUMENT;
	else
		r = imp__drop_legacy_locked(task->domain, t, count);
	imp__unlock(task->domain);
	return r;
}

int imp_task_reset(imp_task *task)
{
	struct imp__task_elem *t = NULL;
	int r;

	if ((r = imp__task_begin(task, "imp_task_reset", &t)) < 0)
		return r;
	imp__reset_locked(task->domain, t, false);
	imp__unlock(task->domain);
	return 0;
}

int imp_task_exit(imp_task *task)
{
	imp_domain *d;
	struct imp__task_elem *t = NULL;
	struct imp_port *p, *next;
	int r;

	if ((r = imp__task_begin(task, "imp_task_exit", &t)) < 0)
		return r;
	d = task->domain;
	task->active = false;

	/* Ports go first, in creation order.  Each is held across its
	 * destruction, which may let other threads in. */
	for (p = TAILQ_FIRST(&task->ports); p; p = next) {
		p->refs++;
		if (p->active)
			imp__port_destroy_locked(d, p);
		next = TAILQ_NEXT(p, owner_link);
		imp__port_unref_locked(d, p);
	}

	/* Disconnect: the element forgets the task, what the task itself
	 * held (donor bit, legacy boosts) is reset, and the task's reference
	 * goes.  Upstream boosts keep flowing through what is still linked. */
	t = task->imp;
	if (t) {
		t->task = NULL;
		task->imp = NULL;
		task->former_imp = t;
		imp__reset_locked(d, t, true);
		imp__elem_release(d, &t->elem);
	}
	imp__task_unref_locked(d, task); /* the reference an active task keeps */
	imp__unlock(d);
	return 0;
}

int imp_task_get_info(imp_task *task, imp_task_info *info)
{
	struct imp__task_elem *t = NULL;

	IMP__CHECK_ARG(task && info, "imp_task_get_info: NULL argument");
	imp__lock_any(task->domain);
	memset(info, 0, sizeof(*info));
	t = task->imp ? task->imp : task->former_imp;
	if (t) {
		imp__task_elem_fill_info(t, info);
		info->delayed_drop_pending = t->updateq == &task->domain->delayed_queue;
	} else if (task->has_snapshot) {
		*info = task->snapshot;
	}
	info->pid = task->pid;
	info->active = task->active;
	info->connected = task->imp != NULL;
	info->live_donor_state = task->live_donor_state;
	info->boosted = atomic_load(&task->boosted);
	pthread_mutex_unlock(&task->domain->lock);
	return 0;
}

void imp__task_elem_counts(imp_task *task, uint32_t *refs, uint32_t *made)
{
	struct imp__task_elem *t;

	imp__lock_any(task->domain);
	t = task->imp ? task->imp : task->former_imp;
	*refs = t ? t->elem.refs : 0;
	*made = t ? t->elem.made : 0;
	pthread_mutex_unlock(&task->domain->lock);
}

int imp_task_donating_pids(imp_task *task, int *pids, size_t max)
{
	struct imp__task_elem *t = NULL;
	struct imp__inherit *i;
	struct imp_msg *m;
	size_t n = 0;

	IMP__CHECK_ARG(task && (pids || max == 0), "imp_task_donating_pids: NULL argument");
	imp__lock_any(task->domain);
	t = task->imp;
	if (!t || max < 1) {
		pthread_mutex_unlock(&task->domain->lock);
		return 0;
	}
	TAILQ_FOREACH(i, &t->inherits, link) {
		if (n >= max)
			break;
		if (i->donating && i->to_task->task)
			pids[n++] = i->to_task->task->pid;
	}
	TAILQ_FOREACH(m, &t->kmsgs, imp_link) {
		int pid;

		if (n >= max)
			break;
		if (!m->raised)
			continue;
		/* A message linked here is linked to this task's element or to
		 * an inherit whose to-task is this task: either way the pid
		 * listed is this task's (a quirk of the reference). */
		pid = imp__elem_pid(m->importance);
		if (pid != -1)
			pids[n++] = pid;
	}
	pthread_mutex_unlock(&task->domain->lock);
	return (int)n;
}

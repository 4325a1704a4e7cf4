/*
 * The domain: locks, clock, allocation hook, trace ring, timer thread,
 * statistics and teardown.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static _Thread_local bool imp__policy_callback_active;

bool imp__in_policy_callback(void)
{
	return imp__policy_callback_active;
}

void imp__set_in_policy_callback(bool on)
{
	imp__policy_callback_active = on;
}

static void *imp__default_alloc(size_t size, void *ctx)
{
	(void)ctx;
	return malloc(size);
}

static void imp__default_free(void *p, void *ctx)
{
	(void)ctx;
	free(p);
}

static uint64_t imp__monotonic_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void *imp__alloc(imp_domain *d, size_t size)
{
	void *p = d->allocator.alloc(size, d->allocator.ctx);

	if (p)
		memset(p, 0, size);
	return p;
}

void imp__free(imp_domain *d, void *p)
{
	if (p)
		d->allocator.free(p, d->allocator.ctx);
}

/*
 * A free list for inherits.  Every voucher receive makes one and the common
 * pattern (receive, work, release) frees it again right away, so up to
 * IMP__CACHE_MAX freed inherits are kept for reuse instead of going back
 * to the allocation hook.  Taken and given back under the domain lock;
 * what does not fit goes back to the hook.
 */
void *imp__cache_get(imp_domain *d, struct imp__cache *c)
{
	void *p = c->head;

	(void)d;
	if (!p)
		return NULL;
	memcpy(&c->head, p, sizeof(void *));
	c->n--;
	return p;
}

/* An object from c or, when c is empty, a fresh one allocated with the
 * domain lock dropped meanwhile: the caller must not have changed anything
 * yet.  Lock held on entry and on return; NULL when out of memory. */
void *imp__cache_take(imp_domain *d, struct imp__cache *c)
{
	void *p = imp__cache_get(d, c);

	if (p)
		return p;
	pthread_mutex_unlock(&d->lock);
	p = imp__alloc(d, c->size);
	pthread_mutex_lock(&d->lock);
	return p;
}

void imp__cache_put(imp_domain *d, struct imp__cache *c, void *p)
{
	if (!p)
		return;
	if (c->n >= IMP__CACHE_MAX) {
		imp__free(d, p);
		return;
	}
	memcpy(p, &c->head, sizeof(void *));
	c->head = p;
	c->n++;
}

static void imp__cache_drain(imp_domain *d, struct imp__cache *c)
{
	void *p;

	while ((p = c->head)) {
		memcpy(&c->head, p, sizeof(void *));
		imp__free(d, p);
	}
	c->n = 0;
}

uint64_t imp__now(imp_domain *d)
{
	return d->clock_now(d->clock_ctx);
}

uint64_t imp_domain_now(imp_domain *domain)
{
	return domain ? imp__now(domain) : 0;
}

int imp__lock(imp_domain *d)
{
	if (imp__in_policy_callback())
		return imp__error(-EDEADLK, "importance state cannot change from inside a policy callback");
	pthread_mutex_lock(&d->lock);
	return 0;
}

void imp__lock_any(imp_domain *d)
{
	pthread_mutex_lock(&d->lock);
}

void imp__trace_record(imp_domain *d, imp_trace_kind kind, int pid, int other_pid,
		       uint32_t value, uint32_t value2)
{
	imp_trace_event *ev;

	if (d->trace_count == IMP__TRACE_RING) {
		d->trace_lost++;
		return;
	}
	ev = &d->trace_ring[(d->trace_head + d->trace_count) % IMP__TRACE_RING];
	d->trace_count++;
	ev->kind = kind;
	ev->time_ns = imp__now(d);
	ev->pid = pid;
	ev->other_pid = other_pid;
	ev->value = value;
	ev->value2 = value2;
}

/* Delivers buffered trace events without the domain lock.  Only one thread
 * delivers at a time so the order is kept; a thread that finds another one
 * delivering leaves its events to it.  Called by imp__unlock when the
 * domain has a trace callback; out of line, so that the unlock inlined in
 * every call stays small. */
static void __attribute__((noinline)) imp__trace_flush(imp_domain *d)
{
	imp_trace_event batch[32];
	unsigned n, i;

	while (pthread_mutex_trylock(&d->trace_lock) == 0) {
		for (;;) {
			pthread_mutex_lock(&d->lock);
			n = 0;
			if (d->trace_lost && d->trace_count < IMP__TRACE_RING) {
				imp__trace_record(d, IMP_TRACE_LOST, -1, -1, d->trace_lost, 0);
				d->trace_lost = 0;
			}
			while (n < 32 && d->trace_count) {
				batch[n++] = d->trace_ring[d->trace_head];
				d->trace_head = (d->trace_head + 1) % IMP__TRACE_RING;
				d->trace_count--;
			}
			pthread_mutex_unlock(&d->lock);
			if (!n)
				break;
			for (i = 0; i < n; i++)
				d->trace(&batch[i], d->trace_ctx);
		}
		pthread_mutex_unlock(&d->trace_lock);
		pthread_mutex_lock(&d->lock);
		n = d->trace_count;
		pthread_mutex_unlock(&d->lock);
		if (!n)
			break;
	}
}

void imp__unlock(imp_domain *d)
{
	if (d->verify_each_step && !d->broken && !d->unsettled && imp__verify_locked(d) != 0)
		d->broken = true;
	pthread_mutex_unlock(&d->lock);
	/* tested here, so that a domain without a trace callback does not
	 * call it at every unlock */
	if (d->trace)
		imp__trace_flush(d);
}

void imp_domain_config_init(imp_domain_config *cfg)
{
	if (cfg)
		*cfg = (imp_domain_config)IMP_DOMAIN_CONFIG_INIT;
}

/* The struct's size in the first version: every caller's knows these. */
#define IMP__DOMAIN_CONFIG_SIZE_V0 (offsetof(imp_domain_config, verify_each_step) + sizeof(bool))

int imp_domain_new(const imp_domain_config *caller_cfg, imp_domain **out)
{
	imp_domain_config defaults = IMP_DOMAIN_CONFIG_INIT, copy = IMP_DOMAIN_CONFIG_INIT;
	const imp_domain_config *cfg = caller_cfg ? &copy : &defaults;
	const imp_allocator *a;
	pthread_condattr_t ca;
	imp_domain *d;

	IMP__CHECK_ARG(out, "imp_domain_new: out is NULL");
	*out = NULL;
	if (caller_cfg) {
		/* The fields the caller knows; the rest keep their defaults. */
		IMP__CHECK_ARG(caller_cfg->size >= IMP__DOMAIN_CONFIG_SIZE_V0,
			       "imp_domain_new: cfg->size is %zu: start from IMP_DOMAIN_CONFIG_INIT "
			       "or imp_domain_config_init()", caller_cfg->size);
		memcpy(&copy, caller_cfg, caller_cfg->size < sizeof(copy) ? caller_cfg->size : sizeof(copy));
	}
	a = cfg->allocator;
	IMP__CHECK_ARG(!a || (a->alloc && a->free), "imp_domain_new: allocator needs alloc and free");
	d = a ? a->alloc(sizeof(*d), a->ctx) : malloc(sizeof(*d));
	if (!d)
		return imp__error(-ENOMEM, "imp_domain_new: out of memory");
	memset(d, 0, sizeof(*d));
	if (a) {
		d->allocator = *a;
	} else {
		d->allocator.alloc = imp__default_alloc;
		d->allocator.free = imp__default_free;
	}
	d->clock_now = cfg->clock_now ? cfg->clock_now : imp__monotonic_ns;
	d->clock_ctx = cfg->clock_ctx;
	d->policy = cfg->policy;
	d->policy_ctx = cfg->policy_ctx;
	d->trace = cfg->trace;
	d->trace_ctx = cfg->trace_ctx;
	d->verify_each_step = cfg->verify_each_step;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->apply_lock, NULL);
	pthread_mutex_init(&d->trace_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	TAILQ_INIT(&d->delayed_queue);
	TAILQ_INIT(&d->all_task_elems);
	TAILQ_INIT(&d->all_inherits);
	TAILQ_INIT(&d->tasks);
	TAILQ_INIT(&d->ports);
	TAILQ_INIT(&d->msgs);
	d->next_elem_id = 1;
	d->inherit_cache.size = sizeof(struct imp__inherit);
	*out = d;
	return 0;
}

void imp_domain_free(imp_domain *d)
{
	imp_allocator a;

	if (!d)
		return;
	imp_domain_timer_thread_stop(d);
	/* Teardown ignores the model: every object simply goes. */
	while (!TAILQ_EMPTY(&d->msgs)) {
		imp_msg *m = TAILQ_FIRST(&d->msgs);
		TAILQ_REMOVE(&d->msgs, m, link);
		imp__free(d, m);
	}
	while (!TAILQ_EMPTY(&d->ports)) {
		imp_port *p = TAILQ_FIRST(&d->ports);
		TAILQ_REMOVE(&d->ports, p, link);
		imp__free(d, p);
	}
	while (!TAILQ_EMPTY(&d->tasks)) {
		imp_task *t = TAILQ_FIRST(&d->tasks);
		TAILQ_REMOVE(&d->tasks, t, link);
		imp__free(d, t);
	}
	/* voucher objects live in their values: freed with them */
	while (!TAILQ_EMPTY(&d->all_inherits)) {
		struct imp__inherit *i = TAILQ_FIRST(&d->all_inherits);
		TAILQ_REMOVE(&d->all_inherits, i, all_link);
		imp__free(d, i);
	}
	while (!TAILQ_EMPTY(&d->all_task_elems)) {
		struct imp__task_elem *t = TAILQ_FIRST(&d->all_task_elems);
		TAILQ_REMOVE(&d->all_task_elems, t, all_link);
		imp__free(d, t);
	}
	imp__cache_drain(d, &d->inherit_cache);
	pthread_cond_destroy(&d->timer_cond);
	pthread_mutex_destroy(&d->trace_lock);
	pthread_mutex_destroy(&d->apply_lock);
	pthread_mutex_destroy(&d->lock);
	a = d->allocator;
	a.free(d, a.ctx);
}

int imp_domain_get_stats(imp_domain *d, imp_stats *s)
{
	IMP__CHECK_ARG(d && s, "imp_domain_get_stats: NULL argument");
	imp__lock_any(d);
	s->task_elems = d->n_task_elems;
	s->inherits = d->n_inherits - d->n_dormant;
	s->vouchers = d->n_vouchers;
	s->tasks = d->n_tasks;
	s->ports = d->n_ports;
	s->messages = d->n_msgs;
	s->delayed = d->n_delayed;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int imp_domain_verify(imp_domain *d)
{
	int r;

	IMP__CHECK_ARG(d, "imp_domain_verify: NULL domain");
	imp__lock_any(d);
	if (d->unsettled)
		r = imp__error(-EAGAIN, "imp_domain_verify: operations are in flight");
	else
		r = imp__verify_locked(d);
	pthread_mutex_unlock(&d->lock);
	return r;
}

bool imp_domain_broken(imp_domain *d)
{
	bool b;

	if (!d)
		return false;
	imp__lock_any(d);
	b = d->broken;
	pthread_mutex_unlock(&d->lock);
	return b;
}

int imp_domain_next_deadline(imp_domain *d, uint64_t *deadline)
{
	int armed;

	IMP__CHECK_ARG(d && deadline, "imp_domain_next_deadline: NULL argument");
	imp__lock_any(d);
	armed = d->delayed_requested;
	if (armed)
		*deadline = d->delayed_deadline;
	pthread_mutex_unlock(&d->lock);
	return armed;
}

static void *imp__timer_main(void *arg)
{
	imp_domain *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->timer_stop) {
		if (d->delayed_requested) {
			uint64_t now = imp__now(d);

			if (now >= d->delayed_deadline) {
				pthread_mutex_unlock(&d->lock);
				imp_domain_run_timers(d);
				pthread_mutex_lock(&d->lock);
				continue;
			}
			/* The domain clock may not be CLOCK_MONOTONIC: wait for
			 * the remaining interval measured on the monotonic clock. */
			uint64_t wait = d->delayed_deadline - now;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t abs = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + wait;
			ts.tv_sec = (time_t)(abs / 1000000000ull);
			ts.tv_nsec = (long)(abs % 1000000000ull);
			pthread_cond_timedwait(&d->timer_cond, &d->lock, &ts);
		} else {
			pthread_cond_wait(&d->timer_cond, &d->lock);
		}
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int imp_domain_timer_thread_start(imp_domain *d)
{
	int r;

	IMP__CHECK_ARG(d, "imp_domain_timer_thread_start: NULL domain");
	pthread_mutex_lock(&d->lock);
	if (d->timer_running) {
		pthread_mutex_unlock(&d->lock);
		return imp__error(-EALREADY, "timer thread already running");
	}
	d->timer_stop = false;
	r = pthread_create(&d->timer_thread, NULL, imp__timer_main, d);
	if (r == 0)
		d->timer_running = true;
	pthread_mutex_unlock(&d->lock);
	return r ? imp__error(-r, "pthread_create failed") : 0;
}

void imp_domain_timer_thread_stop(imp_domain *d)
{
	bool running;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	running = d->timer_running;
	d->timer_stop = true;
	pthread_cond_broadcast(&d->timer_cond);
	pthread_mutex_unlock(&d->lock);
	if (running) {
		pthread_join(d->timer_thread, NULL);
		pthread_mutex_lock(&d->lock);
		d->timer_running = false;
		pthread_mutex_unlock(&d->lock);
	}
}

/* The broker (broker.h): setup, the engine's callbacks, accepting. */
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "dbus.h"
#include "foreground-bus.h"
#include "foreground.h"
#include "logind.h"
#include "diag.h"
#include "peer.h"
#include "process.h"
#include "unix.h"

/* how long accepting pauses when the daemon is out of file descriptors */
#define ACCEPT_PAUSE_USEC (100 * 1000)

static int on_engine_timer(sd_event_source *s, uint64_t usec, void *userdata);

/*
 * The engine's next delayed drop, as the loop's timer.  The timer source
 * exists from start-up (broker_new), so re-arming it never needs a
 * descriptor or memory; the engine's default clock is CLOCK_MONOTONIC,
 * like this source.
 */
void broker_rearm_timer(struct broker *b)
{
	uint64_t deadline;

	if (imp_domain_next_deadline(b->dom, &deadline) != 1) {
		sd_event_source_set_enabled(b->timer_src, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(b->timer_src, deadline / 1000 + 1);
	sd_event_source_set_enabled(b->timer_src, SD_EVENT_ONESHOT);
}

static int on_engine_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct broker *b = userdata;

	(void)s;
	(void)usec;
	imp_domain_run_timers(b->dom);
	return 0;
}

/*
 * Before the loop waits, after whatever any source (peers, buses, timers,
 * signals) did to the engine: the timer follows.  A prepare callback on a
 * source that never fires, rather than a post source: a pending post
 * source made every wakeup two epoll_wait() calls (sd-event polls once
 * more, without waiting, before dispatching it).
 */
static int on_prepare(sd_event_source *s, void *userdata)
{
	(void)s;
	broker_rearm_timer(userdata);
	return 0;
}

/* the source above: a descriptor that is never ready */
static int on_never(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s;
	(void)fd;
	(void)revents;
	(void)userdata;
	return 0;
}

/* A source that never fires and is never turned off, for on_prepare: an
 * eventfd nobody writes, watched for no event.  (The listening socket's
 * source is turned off while accepting pauses.) */
static int add_prepare(struct broker *b)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), e;

	if (fd < 0)
		return -errno;
	if ((e = sd_event_add_io(b->ev, &b->prepare_src, fd, 0, on_never, b)) < 0) {
		close(fd);
		return e;
	}
	sd_event_source_set_io_fd_own(b->prepare_src, true);
	return sd_event_source_set_prepare(b->prepare_src, on_prepare);
}

/* The engine's policy callback: a task's boost changed. */
static void on_policy(const imp_policy_event *ev, void *ctx)
{
	struct broker *b = ctx;
	struct actor *a = imp_task_get_userdata(ev->task);
	struct impp_evt_policy out = { 0 };
	int applied = 0, value = 0;

	if (!a)
		return;
	if (ev->boosted)
		b->boosts++;
	else
		b->unboosts++;
	out.pid = a->pid;
	out.boosted = ev->boosted;
	out.time_ns = ev->time_ns;
	if (a->process && process_boost(b, a->process, ev->boosted, &applied, &value)) {
		out.applied = applied;
		out.value = (uint32_t)value;
		if (b->cfg.verbose || applied < 0)
			diag_boost_log(b, a, ev->task, ev->boosted, applied, backend_name(a->process->target.kind), value);
	}
	diag_boost_event(b, a, &out);
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct broker *b = userdata;

	(void)s;
	(void)usec;
	sd_event_source_set_enabled(b->listen_src, SD_EVENT_ON);
	return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct broker *b = userdata;
	int e;

	(void)s;
	(void)revents;
	e = peer_accept(b, fd);
	if (e == -EMFILE || e == -ENFILE || e == -ENOBUFS || e == -ENOMEM) {
		/* Out of descriptors: the pending connection stays readable and
		 * would wake us at once; pause instead of spinning. */
		uint64_t now;

		fprintf(stderr, "importanced: accept: %s: pausing\n", strerror(-e));
		sd_event_source_set_enabled(b->listen_src, SD_EVENT_OFF);
		sd_event_now(b->ev, CLOCK_MONOTONIC, &now);
		sd_event_source_set_time(b->accept_retry, now + ACCEPT_PAUSE_USEC);
		sd_event_source_set_enabled(b->accept_retry, SD_EVENT_ONESHOT);
	}
	return 0;
}

int broker_new(sd_event *ev, const struct broker_config *cfg, int listen_fd, struct broker **out)
{
	imp_domain_config dc = IMP_DOMAIN_CONFIG_INIT;
	struct broker *b;
	int e;

	if (!(b = calloc(1, sizeof(*b))))
		return -ENOMEM;
	b->inbuf = malloc(IMPP_MAX_BATCH + 1);
	b->outbuf = malloc(IMPP_MAX_BATCH);
	if (!b->inbuf || !b->outbuf) {
		free(b->inbuf);
		free(b->outbuf);
		free(b);
		return -ENOMEM;
	}
	b->ev = sd_event_ref(ev);
	b->cfg = *cfg;
	b->listen_fd = listen_fd;
	TAILQ_INIT(&b->peer_list);
	dc.policy = on_policy;
	dc.policy_ctx = b;
	if ((e = foreground_new(&b->fg)) < 0 || (e = imp_domain_new(&dc, &b->dom)) < 0)
		goto fail;
	/* Every timer the broker itself can need is made now, disabled:
	 * out of descriptors or memory later, it can still be armed (a
	 * paused accept always resumes). */
	if ((e = sd_event_add_io(ev, &b->listen_src, listen_fd, EPOLLIN, on_accept, b)) < 0 ||
	    (e = sd_event_add_time(ev, &b->timer_src, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_engine_timer, b)) < 0 ||
	    (e = sd_event_add_time(ev, &b->accept_retry, CLOCK_MONOTONIC, UINT64_MAX, 10000, on_accept_retry, b)) < 0 ||
	    (e = add_prepare(b)) < 0 ||
	    (e = dbus_start(b)) < 0 || (e = unix_start(b)) < 0 || (e = foreground_bus_start(b)) < 0 ||
	    (e = logind_start(b)) < 0)
		goto fail;
	sd_event_source_set_enabled(b->timer_src, SD_EVENT_OFF);
	sd_event_source_set_enabled(b->accept_retry, SD_EVENT_OFF);
	*out = b;
	return 0;
fail:
	broker_free(b);
	return e;
}

void broker_reload(struct broker *b, const struct broker_config *cfg)
{
	struct backend_config backend = b->cfg.backend;
	char socket_path[sizeof(b->cfg.socket_path)];
	char old_bus[sizeof(b->cfg.foreground_bus)];

	memcpy(socket_path, b->cfg.socket_path, sizeof(socket_path));
	memcpy(old_bus, b->cfg.foreground_bus, sizeof(old_bus));
	b->cfg = *cfg;
	b->cfg.backend = backend;
	memcpy(b->cfg.socket_path, socket_path, sizeof(socket_path));
	/* the buses followed stay as started; donor-foreground takes effect now */
	b->cfg.logind = b->logind != NULL;
	if (b->fg_bus)
		memcpy(b->cfg.foreground_bus, old_bus, sizeof(old_bus));
	else
		b->cfg.foreground_bus[0] = 0;
	unix_reload(b);
	foreground_apply(b);
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	logind_stop(b);
	foreground_bus_stop(b);
	dbus_stop(b);
	unix_stop(b);
	while (!TAILQ_EMPTY(&b->peer_list))
		peer_free(b, TAILQ_FIRST(&b->peer_list));
	sd_event_source_unref(b->listen_src);
	sd_event_source_unref(b->timer_src);
	sd_event_source_unref(b->accept_retry);
	sd_event_source_unref(b->prepare_src);
	imp_domain_free(b->dom);
	foreground_free(b->fg);
	sd_event_unref(b->ev);
	free(b->inbuf);
	free(b->outbuf);
	free(b);
}

int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int broker_engine_stats(struct broker *b, imp_stats *stats)
{
	return imp_domain_get_stats(b->dom, stats);
}

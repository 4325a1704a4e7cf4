/* importanced's own CPU priority (rt.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define NS_PER_US 1000ull
#define NS_PER_S 1000000000ull
#define BACKGROUND_NICE 19

/*
 * The state, shared with the signal handlers; both signals go to the loop
 * thread and interrupt only it, and neither handler runs inside the other
 * (each blocks the other's signal), so plain statics suffice.
 */
static struct {
	int priority;
	unsigned long long budget_ns, window_ns;
	timer_t spent;          /* on the loop thread's CPU clock: the budget is spent */
	timer_t window;         /* on CLOCK_MONOTONIC: the window ends */
	bool ticking;           /* the window timer runs (the loop is busy) */
	/* what is asked for */
	bool exhausted;         /* the window's budget is spent */
	bool bus_read;          /* the loop read a bus monitor in this window (rt_bus_read) */
	bool background;        /* serving a uid past its share (rt_background) */
	/* what is applied */
	bool down;              /* at SCHED_OTHER */
	bool lowered;           /* at nice 19 (and the autogroup too, when ours) */
	unsigned long long cpu_at_window; /* the loop's CPU time when the window began */
	int nice_saved, autogroup_saved;
	int autogroup_fd;       /* /proc/self/autogroup when the daemon leads a session; else -1 */
} rt = { .autogroup_fd = -1 };

static unsigned long long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (unsigned long long)ts.tv_sec * NS_PER_S + (unsigned long long)ts.tv_nsec;
}

static void arm(timer_t t, unsigned long long first_ns, unsigned long long interval_ns)
{
	struct itimerspec it = {
		.it_value = { (time_t)(first_ns / NS_PER_S), (long)(first_ns % NS_PER_S) },
		.it_interval = { (time_t)(interval_ns / NS_PER_S), (long)(interval_ns % NS_PER_S) },
	};

	timer_settime(t, 0, &it, NULL);
}

/* "/autogroup-42 nice 0": the last number; INT_MIN-ish when unreadable */
static int autogroup_nice(void)
{
	char buf[96];
	ssize_t n = pread(rt.autogroup_fd, buf, sizeof(buf) - 1, 0);
	int v = 0, sign = 1;
	char *p;

	if (n <= 0)
		return -100;
	buf[n] = 0;
	if (!(p = strstr(buf, "nice ")))
		return -100;
	p += 5;
	if (*p == '-') {
		sign = -1;
		p++;
	}
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return sign * v;
}

static void set_autogroup_nice(int v)
{
	char buf[8];
	int n = 0;

	if (v < 0) {
		buf[n++] = '-';
		v = -v;
	}
	if (v >= 10)
		buf[n++] = (char)('0' + v / 10);
	buf[n++] = (char)('0' + v % 10);
	if (write(rt.autogroup_fd, buf, (size_t)n) < 0) { /* the file takes no pwrite */
		/* nothing to do: the window ends all the same */
	}
}

/* Off real time: for the rest of a spent window, or while a uid past its
 * share is served. */
static bool want_down(void)
{
	return rt.exhausted || rt.background;
}

/* Below everything else, unless the window went on reading a bus
 * monitor (rt.h). */
static bool want_lowered(void)
{
	return rt.background || (rt.exhausted && !rt.bus_read);
}

static bool applied(void)
{
	return rt.down == want_down() && rt.lowered == want_lowered();
}

/* Makes what is applied what is asked for.  A nice value that is no
 * longer the one we set is someone else's, and kept. */
static void apply(void)
{
	struct sched_param other = { .sched_priority = 0 }, fifo = { .sched_priority = rt.priority };

	if (want_down() && !rt.down) {
		sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &other);
		rt.down = true;
	}
	if (want_lowered() && !rt.lowered) {
		errno = 0;
		rt.nice_saved = getpriority(PRIO_PROCESS, 0);
		if (errno == 0)
			setpriority(PRIO_PROCESS, 0, BACKGROUND_NICE);
		if (rt.autogroup_fd >= 0 && (rt.autogroup_saved = autogroup_nice()) != -100)
			set_autogroup_nice(BACKGROUND_NICE);
		rt.lowered = true;
	}
	if (!want_lowered() && rt.lowered) {
		errno = 0;
		if (getpriority(PRIO_PROCESS, 0) == BACKGROUND_NICE && errno == 0)
			setpriority(PRIO_PROCESS, 0, rt.nice_saved);
		if (rt.autogroup_fd >= 0 && rt.autogroup_saved != -100 && autogroup_nice() == BACKGROUND_NICE)
			set_autogroup_nice(rt.autogroup_saved);
		rt.lowered = false;
	}
	if (!want_down() && rt.down) {
		sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &fifo);
		rt.down = false;
	}
}

/* The budget is spent (the CPU timer, or the kernel's RLIMIT_RTTIME).
 * While idle, the CPU timer stands for a quarter of the budget and says
 * the loop got busy: a window starts, charged with that quarter. */
static void on_spent(int sig)
{
	int saved = errno;

	(void)sig;
	if (!rt.ticking) {
		rt.ticking = true;
		rt.cpu_at_window = thread_cpu_ns() - rt.budget_ns / 4;
		arm(rt.window, rt.window_ns, rt.window_ns);
		arm(rt.spent, rt.budget_ns - rt.budget_ns / 4, 0);
	} else {
		rt.exhausted = true;
		apply();
	}
	errno = saved;
}

/* A window ends: up again, a new budget; or, after a window in which the
 * loop hardly ran, no more windows until it is busy again. */
static void on_window(int sig)
{
	int saved = errno;
	unsigned long long now = thread_cpu_ns(), used = now - rt.cpu_at_window;

	(void)sig;
	rt.exhausted = false;
	rt.bus_read = false;
	apply();
	rt.cpu_at_window = now;
	if (used < rt.budget_ns / 16) {
		rt.ticking = false;
		arm(rt.window, 0, 0);
		arm(rt.spent, rt.budget_ns / 4, 0);
	} else {
		arm(rt.spent, rt.budget_ns, 0);
	}
	errno = saved;
}

int rt_start(int priority, unsigned long budget_us, unsigned long window_us, char *why, size_t size)
{
	struct sched_param sp = { .sched_priority = priority };
	struct rlimit lim = { budget_us, RLIM_INFINITY };
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID };
	struct sigaction sa;
	int e;

	if (priority <= 0)
		return 0;
	if (budget_us > window_us) {
		snprintf(why, size, "daemon-rt-budget-us %lu is more than daemon-rt-window-us %lu", budget_us,
			 window_us);
		return -EINVAL;
	}
	rt.priority = priority;
	rt.budget_ns = budget_us * NS_PER_US;
	rt.window_ns = window_us * NS_PER_US;
	if (getsid(0) == getpid())
		rt.autogroup_fd = open("/proc/self/autogroup", O_RDWR | O_CLOEXEC);

	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGXCPU);
	sigaddset(&sa.sa_mask, SIGALRM);
	sa.sa_handler = on_spent;
	sigaction(SIGXCPU, &sa, NULL);
	sa.sa_handler = on_window;
	sigaction(SIGALRM, &sa, NULL);

	sev.sigev_notify_thread_id = gettid();
	sev.sigev_signo = SIGXCPU;
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &rt.spent) < 0)
		goto fail;
	sev.sigev_signo = SIGALRM;
	if (timer_create(CLOCK_MONOTONIC, &sev, &rt.window) < 0) {
		timer_delete(rt.spent);
		goto fail;
	}
	if (setrlimit(RLIMIT_RTTIME, &lim) < 0 || sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0) {
		timer_delete(rt.spent);
		timer_delete(rt.window);
		goto fail;
	}
	arm(rt.spent, rt.budget_ns / 4, 0);
	return 0;
fail:
	e = errno;
	snprintf(why, size, "cannot run at SCHED_FIFO %d: %s", priority, strerror(e));
	if (rt.autogroup_fd >= 0)
		close(rt.autogroup_fd);
	rt.autogroup_fd = -1;
	signal(SIGXCPU, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	return -e;
}

/* After a flag of what is asked changed, where the handlers see it: apply
 * it, with the handlers held off; nothing when what is applied already
 * matches (the common case, without touching the signal mask). */
static void settle(void)
{
	sigset_t block, old;

	atomic_signal_fence(memory_order_seq_cst);
	if (applied())
		return;
	sigemptyset(&block);
	sigaddset(&block, SIGXCPU);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &old);
	apply();
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* The broker flips this on every read for a uid past its share: a flip
 * that changes nothing (already down, or down for the budget and lifted
 * at the window's end) costs no system call. */
void rt_background(bool on)
{
	if (rt.priority <= 0 || rt.background == on)
		return;
	rt.background = on;
	settle();
}

void rt_bus_read(void)
{
	if (rt.priority <= 0 || rt.bus_read)
		return;
	rt.bus_read = true;
	settle();
}

/*
 * importanced's own CPU priority: real time, on a budget.
 *
 * The daemon's event loop runs at SCHED_FIFO so that a boost is applied
 * the moment the message that causes it arrives, whatever load the
 * machine has.  Real time is lent, not given: in every window of
 * `window_us` of wall-clock time the loop may run `budget_us` of CPU at
 * real-time priority.  Past that it steps down for the rest of the
 * window below everything else (SCHED_OTHER at nice 19, and its own
 * autogroup at nice 19 when it leads a session), and is lifted when the
 * next window starts.  However a flood paces its requests, importanced
 * then takes at most budget/window of a CPU ahead of other work, and what
 * nice 19 gets beside it.  RLIMIT_RTTIME (the budget without sleeping)
 * stays as the kernel's backstop.
 *
 * One exception: in a window in which the loop read a bus monitor
 * (rt_bus_read), a spent budget steps down to SCHED_OTHER at the daemon's
 * own nice, not to nice 19.  What a monitor carries is everyone's traffic
 * on the bus, routed by a bus that runs at an ordinary nice itself; read
 * at nice 19 on a loaded machine, the monitor falls behind the bus by
 * seconds (until the bus drops it), and every D-Bus boost with it.
 * Stepped aside, the daemon competes as any process of its nice does.
 *
 * Accounting costs nothing per request: a POSIX timer on the loop
 * thread's CPU clock fires when the budget is spent, and a wall-clock
 * timer ends the window.  An idle daemon has no timer running: the
 * window timer stops after a window in which the loop used next to no
 * CPU, and the CPU timer starts it again.
 *
 * The budget is for everyone; a uid that used its share of the daemon's
 * time (peer.c's fairness) is served stepped down whatever the budget,
 * so that one uid's flood runs below the machine's other work while
 * another uid's requests are still served at real time.
 *
 * A nice value or autogroup nice that someone else set while the daemon
 * was stepped down is theirs: lifting restores only what is still ours.
 * Everything here runs in the loop thread or in its signal handlers,
 * which make system calls only.
 */
#ifndef IMPD_RT_H
#define IMPD_RT_H

#include <stdbool.h>
#include <stddef.h>

/* Starts real time for the calling thread (the loop); priority 0 does
 * nothing.  Returns 0 or -errno, with what failed in why. */
int rt_start(int priority, unsigned long budget_us, unsigned long window_us, char *why, size_t size);

/* The loop serves a uid past its share (on), or is done with it (off):
 * stepped down meanwhile, whatever the budget.  Cheap when unchanged. */
void rt_background(bool on);

/* The loop reads a bus monitor: until the window ends, a spent budget
 * steps down to SCHED_OTHER, not to nice 19.  Cheap after the window's
 * first call. */
void rt_bus_read(void);

#endif

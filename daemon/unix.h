/*
 * Unix sockets: importance for the requests of unmodified programs, seen
 * in the kernel's own socket traffic.
 *
 * The kernel half (bpf/unix.bpf.c, loaded by unix-bpf.c) reports sends
 * from donors and boosted readers to a peer that may be a receiver, and
 * what happens next on that peer's end; this module turns them into the
 * engine's terms, one process one task:
 *   - A connection's receiving end (a struct sock, by the kernel's id) is a port
 *     of the process that reads it.  A donor's send on the other end is a
 *     message from the donor's task to that port, raised when the reader
 *     accepts boosts (unix-receiver-* rules; with none, no reader does):
 *     the reader is boosted from the send on.
 *   - The reader's read receives it, with a voucher: the boost becomes
 *     the reader's, held until it answers on that end (a send from it),
 *     reads it again and finds nothing (EAGAIN) with nothing queued, the
 *     connection ends (a read of 0, an exit) or unix-answer-timeout
 *     passes, whichever first.
 *   - A reader holding a voucher is a donor for what it sends: its sends
 *     carry the voucher it holds, so app -> A -> B boosts both, and B's
 *     boost drops in the reference's order (B's message or voucher holds
 *     the inherit until B is done).
 *   - One message per connection at a time: a second send before the
 *     read changes nothing (the reader is boosted already).
 * The kernel decides who is a donor from its own view of the sending task
 * at the moment of the send (effective uid, executable, unified cgroup);
 * impctl donor adds live donors.  A process is known by pid and start
 * time, held by a pidfd opened and then checked against that start time,
 * so a reused pid is never boosted.  The reader of a first send is the
 * process the kernel recorded as the peer (who listened or connected);
 * the one that actually reads is boosted instead when another process
 * reads (a pre-forked server).
 *
 * Lost events (a full ring buffer) cannot be told apart: every
 * connection's boost is dropped and the processes re-checked, and the log
 * says so.  Bounds: UNIX_MAX_TASKS processes, UNIX_MAX_CONNS connections;
 * each message is a message in flight of its sender's uid (user.h).
 */
#ifndef IMPD_UNIX_H
#define IMPD_UNIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf/unix.h"
#include "importance/importance.h"

#define UNIX_MAX_TASKS 4096
#define UNIX_MAX_CONNS 16384

struct actor;
struct broker;
struct unix_source;

/* What the model asks of the kernel half: its maps.  ctx is the kernel
 * half's; tests give a recorder. */
struct unix_kernel {
	void *ctx;
	/* tgid's sends pass the filter as a donor's (or not any more) */
	void (*sender)(void *ctx, uint32_t tgid, bool on);
	/* tgid's exit and forks are reported (or not any more) */
	void (*track)(void *ctx, uint32_t tgid, bool on);
	/* the receiving end is followed no more */
	void (*unwatch)(void *ctx, uint64_t end);
	/* sends to end from the socket that sent ev are not reported again
	 * (not a receiver) */
	void (*refuse)(void *ctx, uint64_t end);
	/* every end is followed no more (after lost events) */
	void (*unwatch_all)(void *ctx);
};

/* The model for broker b, attached to kernel (copied).  0 or -errno. */
int unix_source_new(struct broker *b, const struct unix_kernel *kernel, struct unix_source **out);
/* Every connection's boost dropped, every task gone. */
void unix_source_free(struct unix_source *s);

/* One event from the kernel half, in the ring buffer's order.  Any input
 * is safe. */
void unix_handle(struct unix_source *s, const struct unix_event *ev);

/* Events as one read of the ring buffer brought them, in its order.  A
 * send whose answer on the same end is in the batch too (the reader
 * answered before the daemon read the send: the daemon is behind) is a
 * request already served: it is passed over, and costs no engine or
 * backend work; the reads and the answer are handled as always.  So the
 * further behind the daemon falls, the less each request costs it.
 *
 * A send not answered in the batch and made after young_after (the
 * events' clock: CLOCK_MONOTONIC, ns) is not handled yet: its request
 * may still be answered within the batch window (unix-batch-usec), and
 * then it is never boosted.  The batch is handled up to the first such
 * send, whose index is returned (n: all of it); the caller hands the rest
 * again, with the events read since, once the window after that send has
 * passed.  UINT64_MAX: every event is handled. */
#define UNIX_LOOKAHEAD 256
size_t unix_handle_batch(struct unix_source *s, const struct unix_event *evs, size_t n, uint64_t young_after);

/* count events were lost: every boost this source gave is dropped, and
 * processes that exited meanwhile are forgotten. */
void unix_lost(struct unix_source *s, uint64_t count);

/* Ends what unix-answer-timeout ended by now (CLOCK_MONOTONIC usec); the
 * next deadline, or UINT64_MAX when none. */
uint64_t unix_expire(struct unix_source *s, uint64_t now);

/* The rules changed (b->cfg): a process made a donor by a rule that no
 * rule covers now is a donor no more, its messages' boosts dropped (live
 * donors, impctl donor, stay); connections whose reader no rule accepts
 * now end. */
void unix_source_reload(struct unix_source *s);

/* impctl donor: pid becomes a live donor for its socket sends, or stops
 * being one.  0 or -ESRCH (no such process). */
int unix_source_set_donor(struct unix_source *s, pid_t pid, bool on);

struct unix_counts {
	size_t tasks, conns, queued, held;
	uint64_t lost, messages, refused;
	uint64_t served; /* sends passed over: answered within their batch */
};
void unix_source_counts(const struct unix_source *s, struct unix_counts *out);

/* Calls fn for every task, with one of its connections' address and peer
 * when it has any (path "" otherwise; '@' first for abstract). */
typedef void unix_task_fn(void *ctx, const struct actor *actor, imp_task *task, bool receiver, const char *path,
			  pid_t peer);
void unix_source_foreach(const struct unix_source *s, unix_task_fn *fn, void *ctx);

/* The broker's source: started from broker_new when unix is on (in
 * unix-bpf.c: where BPF cannot load, one line says why and the other
 * sources run), stopped from broker_free.  0 or -errno. */
int unix_start(struct broker *b);
void unix_stop(struct broker *b);
/* SIGHUP (broker_reload), the new rules in b->cfg: the kernel's donor
 * and receiver maps loaded again, the ends it refused forgotten; in the
 * model, donors by a rule judged again at their next send, connections
 * whose reader accepts boosts no more ended.  The source itself stays on
 * or off as it started. */
void unix_reload(struct broker *b);
int unix_set_donor(struct broker *b, pid_t pid, bool on);
void unix_foreach_task(struct broker *b, unix_task_fn *fn, void *ctx);

#endif

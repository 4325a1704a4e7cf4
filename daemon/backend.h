/*
 * Boost backends: make a receiver's boost real for the scheduler.
 *
 * One backend moves the CPU priority (cgroup v2 cpu.weight, cgroup v1
 * cpu.shares, the session's autogroup nice, or the nice value of every
 * thread); on top of any of them a boost lifts a held-back receiver's I/O
 * priority and timer slack.  What was applied is recorded in a state
 * directory so that a daemon started after a crash puts it back.
 * docs/backends.md says how each works and when it is chosen.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum backend_kind {
	BACKEND_NONE,
	BACKEND_NICE,
	BACKEND_AUTOGROUP,
	BACKEND_CGROUP_V1,
	BACKEND_CGROUP_V2,
	BACKEND_CGROUP, /* asked for: v2 if it can work here, else v1 */
	BACKEND_AUTO,   /* asked for: the best one this machine has */
};
#define BACKEND_N_REAL 5 /* NONE .. CGROUP_V2: the kinds a process can be under */

struct backend_config {
	enum backend_kind kind; /* asked for; after backend_init, the one in use */
	enum backend_kind asked;
	int boost_nice;            /* nice backend: a boosted thread's nice, -20..19 */
	int autogroup_nice;        /* autogroup backend: a boosted group's nice, -20..19 */
	unsigned boost_weight;     /* cgroup v2: a boosted receiver's cpu.weight, 1..10000 */
	unsigned boost_shares;     /* cgroup v1: a boosted receiver's cpu.shares, 2..262144 */
	int boost_io_level;        /* best-effort level given to held-back threads, 0..7; -1: off */
	unsigned long boost_timerslack_ns; /* slack given to a held-back receiver; 0: off */
	unsigned max_threads;      /* threads touched per process per boost, 1..65536 */
	unsigned leaf_linger_ms;   /* cgroup kinds: unboosted, stay that long in the leaf where that
				    * is the same as being back (0: never), 0..10000 */
	unsigned leaf_delay_ms;    /* cgroup kinds: a receiver in the cpu root sharing its autogroup
				    * is boosted through nice at once, and moved into its leaf only
				    * when the boost lasts this long (0: moved at once), 0..10000 */
	bool background;           /* unboosted receivers sit in the background band */
	bool background_ruled;     /* some receiver-background-* rule picks receivers for it */
	int background_nice;       /* that band's nice (threads, or a lone autogroup), 1..19 */
	int daemon_rt_priority;    /* SCHED_FIFO priority of importanced itself, 0 (off)..99 */
	unsigned long daemon_rt_budget_us; /* real-time CPU per window (rt.h), 1000..10000000 */
	unsigned long daemon_rt_window_us; /* that window, 10000..10000000 */
	char cgroup_root[512];     /* a cgroup directory we own (created if missing) */
	char state_dir[256];       /* where applied boosts are recorded ("" : nowhere) */
	/* found by backend_init */
	char cgroup_mount[256];    /* the hierarchy cgroup_root is in */
	char why_not[BACKEND_N_REAL][160]; /* why each kind is not the one in use */
	int state_lock_fd;
	int state_dir_fd;          /* the state directory, opened without following a link; -1: none */
};

/* What a boost changed on one thread, to put it back. */
struct backend_saved_thread {
	pid_t tid;
	uint64_t start;      /* start time (clock ticks after boot): the thread's identity */
	int nice;            /* before the boost */
	int ioprio;          /* before the boost */
	bool nice_changed, ioprio_changed;
};

/* Per-process state kept by the backends, embedded in the broker's client. */
struct backend_target {
	pid_t pid;
	int pidfd;               /* taken at connect; -1 if unavailable (then nothing is touched) */
	uint64_t start;          /* the process's start time: pid + start is its identity */
	int record_fd;           /* its record in the state directory, once written */
	bool attached, boosted;
	enum backend_kind kind;  /* the backend in force for this process */
	struct backend_saved_thread *saved;
	size_t n_saved, cap_saved;
	uint64_t boost_start;    /* the clock (ticks) when the boost began */
	bool forks_followed;     /* the fork tracker records this boost's forks (backend-fork.c) */
	int floor_nice;          /* the best nice any thread had before the boost */
	int floor_ioprio;        /* likewise for the I/O priority (encoded) */
	unsigned long slack_orig; /* main thread's timer slack before the boost; 0: untouched */
	int autogroup_orig;      /* the group's nice before the boost */
	/* the values the boost set, to tell ours from a change made since */
	int nice_boosted, ioprio_boosted, autogroup_boosted;
	unsigned long slack_boosted;
	/* cgroup kinds: how the current (or last) boost went: through the
	 * leaf (the kind itself), the receiver's own autogroup, or nice (a
	 * limit on its cgroup) */
	enum backend_kind via;
	bool autogroup_alone;    /* alone in its autogroup, in the cpu root, at attach */
	bool in_leaf;            /* the receiver is in cgroup_leaf, or will be once its move is done */
	uint64_t move_seq;       /* its last move asked of the mover thread (0: none) */
	unsigned weight_idle;    /* the leaf's weight while it stays there unboosted
				  * (someone else's value, the band's, or its own
				  * cgroup's); 0: it goes back at the unboost */
	bool idle_same;          /* weight_idle is its own cgroup's: lingering (leaf_linger_ms) */
	uint64_t linger_id;      /* its move back waiting for the linger's end, or its move in
				  * waiting for leaf_delay_ms (leaf_later) (0: none) */
	bool leaf_later;         /* boosted through nice, its move into the leaf due later */
	char cgroup_leaf[600];   /* our cgroup for it (cgroup backends) */
	char cgroup_orig[600];   /* where it was at the boost, relative to the hierarchy's mount */
	char cgroup_mount[256];  /* that hierarchy's mount */
	/* the background band (cfg->background), entered at attach, left at
	 * detach: what it changed, to put back */
	bool background;         /* set before attach: a receiver-background-* rule
				  * puts it in the band (cfg->background: all are) */
	bool band_on;
	bool band_autogroup;     /* through the autogroup's nice, else the threads' */
	int band_nice;           /* the band's nice when it was entered */
	int band_autogroup_from; /* the group's nice before */
	int band_floor;          /* the best nice a thread had before */
	uint64_t band_start;     /* the clock (ticks) when the band began */
	struct backend_saved_thread *band;
	size_t n_band, cap_band;
};

void backend_config_defaults(struct backend_config *cfg);
/* Checks every value's range; -EINVAL with a message in err. */
int backend_config_check(const struct backend_config *cfg, char *err, size_t size);
/* "auto", "cgroup", "cgroup-v1", "cgroup-v2", "autogroup", "nice", "none". */
int backend_kind_parse(const char *name, enum backend_kind *out);
const char *backend_name(enum backend_kind kind);

/*
 * Finds what the machine has and picks the backend: the one asked for, or
 * with AUTO the first of cgroup-v2, cgroup-v1, autogroup, nice that can
 * work.  A backend asked for by name that cannot work is refused: -errno
 * and the reason in why.  Also puts back what a previous daemon recorded
 * in the state directory, and raises importanced's own priority.  A state
 * directory that is a link, or that another uid owns or may write, is
 * refused (-EPERM, why says which).
 */
int backend_init(struct backend_config *cfg, char *why, size_t why_size);
/* The backend in use and why each other one was not chosen, one per line. */
int backend_describe(const struct backend_config *cfg, char *buf, size_t size);

/* A receiver process comes under the backend.  Never fatal: a process the
 * cgroup or autogroup backend cannot take is boosted through nice.  With
 * cfg->background, or t->background (set by the caller: a rule matched
 * it), it enters the background band: nice background_nice on
 * its autogroup when it is alone in one (autogroup, or a cgroup kind in
 * the cpu root), else on its threads; values already worse are kept. */
void backend_attach(const struct backend_config *cfg, struct backend_target *t);

/* Applies a boost or an unboost; returns 0 or -errno, *value the nice,
 * weight or shares now in force. */
int backend_apply(const struct backend_config *cfg, struct backend_target *t, bool boost,
		  unsigned *value);

/* Waits until every cgroup move asked for so far is done: moves are made
 * by a thread of their own, off the caller's loop (docs/backends.md). */
void backend_settle(void);

/* The process left: restore what we changed (if it is still alive), the
 * background band included, free. */
void backend_detach(const struct backend_config *cfg, struct backend_target *t);

/* Called by backend_init; exposed for tests: restores every process
 * recorded in cfg->state_dir and removes the records.  Returns how many. */
int backend_restore_recorded(const struct backend_config *cfg);

#endif

/* Shared by the backend-*.c files; not part of the backend's API. */
#ifndef BACKEND_INTERNAL_H
#define BACKEND_INTERNAL_H

#include "backend.h"

/* files; the _at forms relative to a directory handle */
int bk_read_at(int dfd, const char *path, char *buf, size_t size);
int bk_write_at(int dfd, const char *path, const char *text);
int bk_read_text(const char *path, char *buf, size_t size);
int bk_write_text(const char *path, const char *text);
int bk_read_ulong(const char *path, unsigned long *out);
int bk_write_ulong(const char *path, unsigned long value);

/* processes and threads (backend-proc.c) */
int bk_start_time(pid_t pid, pid_t tid, uint64_t *start);
uint64_t bk_now_ticks(void);
bool bk_target_alive(const struct backend_target *t);
int bk_verify_target(struct backend_target *t);
int bk_threads_boost(const struct backend_config *cfg, struct backend_target *t, bool nice);
int bk_threads_restore(const struct backend_config *cfg, struct backend_target *t, bool nice);
/* t exited while boosted: puts back the processes it forked during the
 * boost (as bk_threads_restore does when it is alive) */
int bk_threads_orphans(const struct backend_config *cfg, struct backend_target *t, bool nice);
int bk_slack_boost(const struct backend_config *cfg, struct backend_target *t);
int bk_slack_restore(const struct backend_config *cfg, struct backend_target *t);
int bk_autogroup_probe(char *why, size_t size);
int bk_autogroup_attach(const struct backend_config *cfg, struct backend_target *t, char *why, size_t size);
int bk_autogroup_set(const struct backend_config *cfg, struct backend_target *t, bool boost);
int bk_nice_weight(int nice);
/* appends s to the growing array *v (*n used, *cap allocated); -ENOMEM */
int bk_saved_push(struct backend_saved_thread **v, size_t *n, size_t *cap, const struct backend_saved_thread *s);
/* the background band: entered at attach, left at detach */
int bk_band_enter(const struct backend_config *cfg, struct backend_target *t);
void bk_band_leave(const struct backend_config *cfg, struct backend_target *t);

/* processes forked during a boost (backend-fork.c, daemon/bpf/fork.bpf.c) */
struct bk_born {
	pid_t pid;
	uint64_t start;  /* its start time in clock ticks, as /proc/PID/stat has it */
	uid_t uid, euid; /* its credentials at the fork */
};
/* Loads the kernel half once; -errno and why if it cannot (then the
 * backend walks /proc children instead). */
int bk_fork_open(char *why, size_t size);
/* t's boost begins: its forks are recorded from now on; false if they
 * cannot be (no tracker, or FORK_MAX_BOOSTED receivers boosted) */
bool bk_fork_boost(const struct backend_target *t);
/* ...and ends: no more are; *lost, how many could not be recorded */
void bk_fork_unboost(const struct backend_target *t, unsigned *lost);
/* Takes out the records of processes born from t's boost, at most max of
 * them, into out; returns how many. */
size_t bk_fork_take(const struct backend_target *t, struct bk_born *out, size_t max);

/* cgroups (backend-cgroup.c) */
/* From the text of /proc/PID/cgroup, the process's path in the hierarchy
 * of kind (CGROUP_V2: the "0::" line; CGROUP_V1: the line with "cpu"). */
int bk_cgroup_path(char *proc_cgroup, enum backend_kind kind, char *out, size_t size);
bool bk_cgroup_v2_has_cpu(void);
int bk_cgroup_probe(struct backend_config *cfg, enum backend_kind kind, char *why, size_t size);
unsigned bk_cgroup_sweep(const struct backend_config *cfg);
int bk_cgroup_attach(const struct backend_config *cfg, struct backend_target *t, char *why, size_t size);
int bk_cgroup_set(const struct backend_config *cfg, struct backend_target *t, bool boost, unsigned *value);
void bk_cgroup_detach(const struct backend_config *cfg, struct backend_target *t);
void bk_cgroup_settle(void);
/* after restoring a previous daemon's records: none of theirs count */
void bk_cgroup_forget_weights(void);

/* records of what was applied (backend.c) */
void bk_record(const struct backend_config *cfg, struct backend_target *t);
void bk_record_remove(const struct backend_config *cfg, struct backend_target *t);

#endif

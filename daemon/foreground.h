/*
 * The foreground: which process or app cgroup of each uid is in front,
 * and the live-donor change it causes in the engine.
 *
 * The reference's live donor is the foreground app: when an app leaves
 * the foreground its task's live-donor state goes off and every boost it
 * caused drops (imp_task_set_live_donor); when it comes back they return.
 * Here the donor rules (donor.h) still say who may donate at all; with
 * `donor-foreground yes` a donor is a live donor only when
 *   - it is not in a login session (its audit session id is unset:
 *     services, daemons, cron jobs; the desktop says nothing about them), or
 *   - no source has yet said what is in front for its uid (then the static
 *     rules alone decide, as without the key), or
 *   - it is that uid's foreground: the process named (the very process,
 *     by pidfd inode, not its pid number) or a process in the cgroup named
 *     (that cgroup or below it, on the unified hierarchy);
 * and, whatever the above, never while its login session is inactive or
 * locked (a source such as logind says so, by audit session id).
 *
 * Who may say what (driver.c, foreground-bus.c): root and the daemon's uid
 * about anyone; any other uid only about its own processes.  An entry of
 * uid U only ever makes processes whose effective uid is U live, so even a
 * cgroup shared with other users, or a lying window (_NET_WM_PID is set by
 * the client), can at most make another process of the same user live.
 *
 * Bounds: one entry per uid (FOREGROUND_MAX_UIDS) and FOREGROUND_MAX_SESSIONS
 * inactive sessions; past them -EDQUOT.  A data module: it calls the
 * engine and the peers/bus lists, nothing above the broker.
 */
#ifndef IMPD_FOREGROUND_H
#define IMPD_FOREGROUND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "process.h"

struct broker;

#define FOREGROUND_MAX_UIDS 1024
#define FOREGROUND_MAX_SESSIONS 1024
/* the audit session id of a process in no session */
#define FOREGROUND_NO_SESSION 4294967295u

struct foreground;

int foreground_new(struct foreground **out);
void foreground_free(struct foreground *f);

/* uid's foreground is now the process of pidfd (who read from it), or,
 * with whole_cgroup, every process of uid in that process's cgroup.  The
 * caller has checked that it may say so.  Live donors are updated. */
int foreground_set_process(struct broker *b, uid_t uid, int pidfd, const struct ident *who, bool whole_cgroup);
/* uid's foreground is every process of uid in cgroup path (unified
 * hierarchy, absolute) or below it. */
int foreground_set_cgroup(struct broker *b, uid_t uid, const char *path);
/* Nothing of uid is in front now (its donors stop being live). */
int foreground_set_none(struct broker *b, uid_t uid);
/* Forgets uid: the static rules alone decide again. */
void foreground_forget(struct broker *b, uid_t uid);

/* Audit session id `session` is active (unlocked, in front on its seat) or
 * not.  Live donors are updated. */
int foreground_session(struct broker *b, uint32_t session, bool active);

/* Whether a donor (pidfd, who) is a live donor now. Without
 * donor-foreground: always. */
bool foreground_live(struct broker *b, int pidfd, const struct ident *who);

/* Re-decides every donor's live state (peers and bus connections) and
 * runs the engine's live-donor change for those that changed. */
void foreground_apply(struct broker *b);

/* What is in front for uid, for logs and tests: "none", "pid N", "cgroup
 * PATH", or NULL when no source has spoken for it. */
const char *foreground_describe(struct broker *b, uid_t uid, char *buf, size_t size);

#endif

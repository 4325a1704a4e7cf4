/*
 * The foreground (foreground.h).
 *
 * The model is small: per uid one entry saying what is in front for that
 * uid (a process, a cgroup, or nothing), and a set of audit session ids
 * that are not active.  Deciding whether a donor is live reads what the
 * kernel says about it now, through its pidfd: its audit session id
 * (/proc/PID/sessionid, which pam_loginuid and logind set and an ordinary
 * process cannot change), its uid, its pidfd inode and its cgroup.  A
 * change of the model re-decides every donor (foreground_apply) and the
 * engine's live-donor update does the rest: a donor going background
 * withdraws what it donated along every message and voucher, a de-nap
 * receiver keeps its boost for the engine's delay, and going foreground
 * again gives it all back.  Donors are few (connections and bus peers
 * that matched a donor rule), so the walk is over the peer and bus lists;
 * nothing here blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "bus.h"
#include "donor.h"
#include "foreground.h"
#include "peer.h"

enum front { FRONT_NONE, FRONT_PROCESS, FRONT_CGROUP };

struct entry {
	uid_t uid;
	enum front front;
	uint64_t ino; /* FRONT_PROCESS: the pidfd inode */
	pid_t pid;    /* for logs */
	char cgroup[IMPD_RULE_LEN]; /* FRONT_CGROUP */
};

struct foreground {
	struct entry *entries;
	size_t n_entries, cap_entries;
	uint32_t *inactive; /* audit session ids */
	size_t n_inactive, cap_inactive;
};

int foreground_new(struct foreground **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return -ENOMEM;
	return 0;
}

void foreground_free(struct foreground *f)
{
	if (!f)
		return;
	free(f->entries);
	free(f->inactive);
	free(f);
}

static struct entry *find(struct foreground *f, uid_t uid)
{
	for (size_t i = 0; i < f->n_entries; i++)
		if (f->entries[i].uid == uid)
			return &f->entries[i];
	return NULL;
}

static int grow(void **v, size_t *cap, size_t n, size_t each, size_t max)
{
	size_t c;
	void *p;

	if (n < *cap)
		return 0;
	if (n >= max)
		return -EDQUOT;
	c = *cap ? *cap * 2 : 8;
	if (c > max)
		c = max;
	if (!(p = realloc(*v, c * each)))
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static int entry_of(struct foreground *f, uid_t uid, struct entry **out)
{
	struct entry *x = find(f, uid);
	int e;

	if (!x) {
		if ((e = grow((void **)&f->entries, &f->cap_entries, f->n_entries, sizeof(*x), FOREGROUND_MAX_UIDS)) < 0)
			return e;
		x = &f->entries[f->n_entries++];
		memset(x, 0, sizeof(*x));
		x->uid = uid;
	}
	*out = x;
	return 0;
}

int foreground_set_process(struct broker *b, uid_t uid, int pidfd, const struct ident *who, bool whole_cgroup)
{
	char cg[IMPD_RULE_LEN];
	struct entry *x;
	int e;

	if (whole_cgroup) {
		if ((e = process_cgroup(pidfd, who->pid, cg, sizeof(cg))) < 0)
			return e;
		return foreground_set_cgroup(b, uid, cg);
	}
	if ((e = entry_of(b->fg, uid, &x)) < 0)
		return e;
	x->front = FRONT_PROCESS;
	x->ino = who->ino;
	x->pid = who->pid;
	x->cgroup[0] = 0;
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: foreground of uid %u: pid %d\n", (unsigned)uid, (int)who->pid);
	foreground_apply(b);
	return 0;
}

int foreground_set_cgroup(struct broker *b, uid_t uid, const char *path)
{
	struct entry *x;
	size_t n = strlen(path);
	int e;

	if (path[0] != '/' || n >= IMPD_RULE_LEN || strstr(path, "/../") || (n >= 3 && !strcmp(path + n - 3, "/..")))
		return -EINVAL;
	if ((e = entry_of(b->fg, uid, &x)) < 0)
		return e;
	x->front = FRONT_CGROUP;
	x->ino = 0;
	x->pid = 0;
	memcpy(x->cgroup, path, n + 1);
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: foreground of uid %u: cgroup %s\n", (unsigned)uid, path);
	foreground_apply(b);
	return 0;
}

int foreground_set_none(struct broker *b, uid_t uid)
{
	struct entry *x;
	int e;

	if ((e = entry_of(b->fg, uid, &x)) < 0)
		return e;
	x->front = FRONT_NONE;
	x->ino = 0;
	x->pid = 0;
	x->cgroup[0] = 0;
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: foreground of uid %u: none\n", (unsigned)uid);
	foreground_apply(b);
	return 0;
}

void foreground_forget(struct broker *b, uid_t uid)
{
	struct foreground *f = b->fg;
	struct entry *x = find(f, uid);

	if (!x)
		return;
	*x = f->entries[--f->n_entries];
	foreground_apply(b);
}

int foreground_session(struct broker *b, uint32_t session, bool active)
{
	struct foreground *f = b->fg;
	size_t i;
	int e;

	for (i = 0; i < f->n_inactive && f->inactive[i] != session; i++)
		;
	if (active) {
		if (i == f->n_inactive)
			return 0;
		f->inactive[i] = f->inactive[--f->n_inactive];
	} else {
		if (i < f->n_inactive)
			return 0;
		if ((e = grow((void **)&f->inactive, &f->cap_inactive, f->n_inactive, sizeof(uint32_t),
			      FOREGROUND_MAX_SESSIONS)) < 0)
			return e;
		f->inactive[f->n_inactive++] = session;
	}
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: session %u %s\n", (unsigned)session, active ? "active" : "inactive");
	foreground_apply(b);
	return 0;
}

/* The audit session id of the process, FOREGROUND_NO_SESSION when it has
 * none, or -errno. */
static int64_t session_of(int pidfd, pid_t pid)
{
	char buf[16];
	int dir, fd;
	ssize_t n;

	if ((dir = process_procdir(pidfd, pid)) < 0)
		return dir;
	fd = openat(dir, "sessionid", O_RDONLY | O_CLOEXEC);
	close(dir);
	if (fd < 0)
		return errno == ENOENT ? (int64_t)FOREGROUND_NO_SESSION : -(int64_t)errno; /* no audit: no sessions */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	return (int64_t)strtoull(buf, NULL, 10);
}

bool foreground_live(struct broker *b, int pidfd, const struct ident *who)
{
	struct foreground *f = b->fg;
	char cg[IMPD_RULE_LEN];
	struct entry *x;
	int64_t s;

	if (!b->cfg.donor_foreground)
		return true;
	if ((s = session_of(pidfd, who->pid)) < 0)
		return false; /* gone */
	if (s == FOREGROUND_NO_SESSION)
		return true;
	for (size_t i = 0; i < f->n_inactive; i++)
		if (f->inactive[i] == (uint32_t)s)
			return false;
	if (!(x = find(f, who->uid)))
		return true;
	switch (x->front) {
	case FRONT_PROCESS:
		return x->ino == who->ino;
	case FRONT_CGROUP:
		return process_cgroup(pidfd, who->pid, cg, sizeof(cg)) == 0 && donor_cgroup_covers(x->cgroup, cg);
	default:
		return false;
	}
}

void foreground_apply(struct broker *b)
{
	struct peer *c;

	TAILQ_FOREACH(c, &b->peer_list, link) {
		struct ident who;
		bool live;

		if (!c->donor || !c->task || c->dead || process_ident(c->pidfd, &who) < 0)
			continue;
		live = foreground_live(b, c->pidfd, &who);
		if (live != c->live) {
			c->live = live;
			imp_task_set_live_donor(c->task, live);
			if (b->cfg.verbose)
				fprintf(stderr, "importanced: pid %d: %s donor\n", (int)who.pid,
					live ? "live" : "background");
		}
	}
	bus_foreground_apply(b);
}

const char *foreground_describe(struct broker *b, uid_t uid, char *buf, size_t size)
{
	struct entry *x = find(b->fg, uid);

	if (!x)
		return NULL;
	if (x->front == FRONT_PROCESS)
		snprintf(buf, size, "pid %d", (int)x->pid);
	else if (x->front == FRONT_CGROUP)
		snprintf(buf, size, "cgroup %s", x->cgroup);
	else
		snprintf(buf, size, "none");
	return buf;
}

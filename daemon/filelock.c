/* File-lock boosts (filelock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "broker.h"
#include "filelock.h"
#include "peer.h"
#include "process.h"

/* Filesystems whose lock calls the kernel answers itself.  Elsewhere a
 * lock query may go to a server or a user-space filesystem (FUSE, NFS,
 * CIFS) that a client controls or that may not answer, and the daemon
 * would wait for it: those files are refused. */
static bool local_locks(int fd)
{
	static const unsigned long local[] = {
		0xEF53,     /* ext2, ext3, ext4 */
		0x58465342, /* xfs */
		0x9123683E, /* btrfs */
		0x01021994, /* tmpfs */
		0xF2F52010, /* f2fs */
		0x794c7630, /* overlayfs */
		0x2fc12fc1, /* zfs */
		0x858458f6, /* ramfs */
	};
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if ((unsigned long)sf.f_type == local[i])
			return true;
	return false;
}

/* how often a wait checks that its holder still holds the lock */
#define RECHECK_USEC (100 * 1000)

struct lockwait {
	uint64_t id;
	struct peer *waiter;
	struct peer *holder;
	int fd;
	struct flock lock;
	sd_event_source *recheck;
	LIST_ENTRY(lockwait) waiter_link, holder_link;
};

static void end_wait(struct lockwait *w)
{
	LIST_REMOVE(w, waiter_link);
	LIST_REMOVE(w, holder_link);
	w->waiter->n_lockwaits--;
	imp_task_drop_file_lock(w->holder->task, 1);
	sd_event_source_unref(w->recheck);
	close(w->fd);
	free(w);
}

/* The peer of pid that is a receiver, if its process is the one alive now. */
static struct peer *receiver_of(struct broker *b, pid_t pid)
{
	struct peer *x;

	TAILQ_FOREACH(x, &b->peer_list, link)
		if (x->actor.pid == pid && !x->dead && x->task && (x->receiver || x->denap) &&
		    process_alive(x->pidfd) == 0)
			return x;
	return NULL;
}

/* Who holds a lock on w's file that conflicts with w's: its pid, or 0. */
static pid_t holder_pid(int fd, const struct flock *want)
{
	struct flock fl = *want;

	if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK || fl.l_pid <= 0)
		return 0;
	return fl.l_pid;
}

static int on_recheck(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct lockwait *w = userdata;

	(void)s;
	if (holder_pid(w->fd, &w->lock) != w->holder->actor.pid || process_alive(w->holder->pidfd) < 0) {
		end_wait(w);
		return 0;
	}
	sd_event_source_set_time(w->recheck, usec + RECHECK_USEC);
	sd_event_source_set_enabled(w->recheck, SD_EVENT_ONESHOT);
	return 0;
}

int filelock_wait(struct broker *b, struct peer *c, int fd, const struct impp_req_filelock *q,
		  uint64_t *id, int32_t *holder_out)
{
	struct lockwait *w;
	struct peer *holder;
	imp_task_info ti;
	struct stat st;
	uint64_t now;
	pid_t pid;
	int e;

	if (fd < 0)
		return -EBADF;
	if (imp_task_get_info(c->task, &ti) < 0 || !ti.is_donor)
		return -EPERM;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EBADF;
	if (!local_locks(fd))
		return -EOPNOTSUPP;
	if ((q->type != F_RDLCK && q->type != F_WRLCK) || q->start < 0 || q->len < 0 || q->pad)
		return -EINVAL;
	if (c->n_lockwaits >= b->cfg.limits.filelocks)
		return -EDQUOT;
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	w->lock.l_type = q->type;
	w->lock.l_whence = SEEK_SET;
	w->lock.l_start = q->start;
	w->lock.l_len = q->len;
	pid = holder_pid(fd, &w->lock);
	if (!pid || pid == c->actor.pid || !(holder = receiver_of(b, pid))) {
		free(w);
		return -ESRCH;
	}
	sd_event_now(b->ev, CLOCK_MONOTONIC, &now);
	if ((e = sd_event_add_time(b->ev, &w->recheck, CLOCK_MONOTONIC, now + RECHECK_USEC, 10000,
				   on_recheck, w)) < 0) {
		free(w);
		return e;
	}
	if ((e = imp_task_hold_file_lock(holder->task, 1)) != 0) {
		sd_event_source_unref(w->recheck);
		free(w);
		return e < 0 ? e : -EOVERFLOW;
	}
	w->id = ++c->next_lockwait;
	w->waiter = c;
	w->holder = holder;
	w->fd = fd;
	LIST_INSERT_HEAD(&c->lockwaits, w, waiter_link);
	LIST_INSERT_HEAD(&holder->lockheld, w, holder_link);
	c->n_lockwaits++;
	*id = w->id;
	*holder_out = holder->actor.pid;
	return 0;
}

int filelock_done(struct broker *b, struct peer *c, uint64_t id)
{
	struct lockwait *w;

	(void)b;
	LIST_FOREACH(w, &c->lockwaits, waiter_link)
		if (w->id == id) {
			end_wait(w);
			return 0;
		}
	return -ENOENT;
}

void filelock_peer_gone(struct broker *b, struct peer *c)
{
	(void)b;
	while (!LIST_EMPTY(&c->lockwaits))
		end_wait(LIST_FIRST(&c->lockwaits));
	while (!LIST_EMPTY(&c->lockheld))
		end_wait(LIST_FIRST(&c->lockheld));
}

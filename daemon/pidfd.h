/*
 * PIDFD_GET_INFO (Linux 6.13): what the kernel says about the process or
 * thread of a pidfd.  The system's headers here predate it, so its first
 * published layout is declared here, once, for every module that asks.
 */
#ifndef IMPD_PIDFD_H
#define IMPD_PIDFD_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

struct pidfd_info_v0 {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid;
	uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};

#define IMPD_PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info_v0)
#define IMPD_PIDFD_INFO_PID 1u   /* pid, tgid, ppid; always answered */
#define IMPD_PIDFD_INFO_CREDS 2u /* the uids and gids; always answered */

/* 0, -ESRCH once the process has exited, or -errno (-ENOTTY: a kernel
 * without PIDFD_GET_INFO). */
static inline int pidfd_get_info(int pidfd, struct pidfd_info_v0 *info)
{
	memset(info, 0, sizeof(*info));
	info->mask = IMPD_PIDFD_INFO_PID | IMPD_PIDFD_INFO_CREDS;
	return ioctl(pidfd, IMPD_PIDFD_GET_INFO, info) < 0 ? -errno : 0;
}

#endif

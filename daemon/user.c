/* Per-uid and global accounting (user.h). */
#include <errno.h>
#include <search.h>
#include <stdlib.h>

#include "broker.h"
#include "user.h"

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

int user_get(struct broker *b, uid_t uid, struct user **out)
{
	void *found = tfind(&uid, &b->users, cmp_uid);
	struct user *u;

	if (found) {
		u = *(struct user **)found;
		u->refs++;
		*out = u;
		return 0;
	}
	if (!(u = calloc(1, sizeof(*u))))
		return -ENOMEM;
	u->uid = uid;
	u->refs = 1;
	if (!tsearch(u, &b->users, cmp_uid)) {
		free(u);
		return -ENOMEM;
	}
	*out = u;
	return 0;
}

void user_put(struct broker *b, struct user *u)
{
	if (!u || --u->refs)
		return;
	tdelete(u, &b->users, cmp_uid);
	free(u);
}

static void limits_of(const struct limits *l, enum usage_kind kind, size_t *per_user, size_t *all)
{
	switch (kind) {
	case USAGE_CONNECTIONS:
		*per_user = l->user_connections;
		*all = l->connections;
		break;
	case USAGE_PORTS:
		*per_user = l->user_ports;
		*all = l->all_ports;
		break;
	case USAGE_NAMES:
		*per_user = l->user_names;
		*all = l->all_names;
		break;
	case USAGE_INFLIGHT:
		*per_user = l->user_inflight;
		*all = l->all_inflight;
		break;
	case USAGE_FDS:
		*per_user = l->user_inflight_fds;
		*all = l->all_inflight_fds;
		break;
	case USAGE_OUT_BYTES:
		*per_user = l->user_out_bytes;
		*all = l->all_out_bytes;
		break;
	case USAGE_BUS_CONNECTIONS:
		*per_user = l->user_bus_connections;
		*all = l->all_bus_connections;
		break;
	default:
		*per_user = l->user_inflight_bytes;
		*all = l->all_inflight_bytes;
		break;
	}
}

int user_charge(struct broker *b, struct user *u, enum usage_kind kind, size_t amount)
{
	size_t per_user, all;

	limits_of(&b->cfg.limits, kind, &per_user, &all);
	if ((u && u->usage.n[kind] + amount > per_user) || b->usage.n[kind] + amount > all)
		return kind == USAGE_CONNECTIONS ? -EUSERS : -EDQUOT;
	if (u)
		u->usage.n[kind] += amount;
	b->usage.n[kind] += amount;
	return 0;
}

void user_uncharge(struct broker *b, struct user *u, enum usage_kind kind, size_t amount)
{
	if (u)
		u->usage.n[kind] -= amount;
	b->usage.n[kind] -= amount;
}

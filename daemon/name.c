/*
 * Names.
 *
 * The registry is a tree of ports by name.  A name is owned by the port's
 * owner while the port lives.  Who may register what is the administrator's
 * choice (name-owner rules): a name that a rule covers is reserved for the
 * uids of the rules that cover it, so a service's name cannot be taken
 * first by another user; other names are first come, first served, or
 * root's alone with names-unlisted root.
 */
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "name.h"
#include "peer.h"
#include "port.h"
#include "user.h"

static bool covers(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, name, n - 1);
	return !strcmp(pattern, name);
}

bool name_allowed(const struct broker_config *cfg, const char *name, uid_t uid)
{
	bool covered = false;

	for (size_t i = 0; i < cfg->n_name_rules; i++) {
		if (!covers(cfg->name_rules[i].pattern, name))
			continue;
		if (cfg->name_rules[i].uid == uid)
			return true;
		covered = true;
	}
	if (covered)
		return false;
	return !cfg->names_unlisted_root || uid == 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct port *)a)->name, ((const struct port *)b)->name);
}

struct port *name_lookup(struct broker *b, const char *name)
{
	struct port key = { .name = (char *)name };
	void *found = tfind(&key, &b->names, cmp_name);

	return found ? *(struct port **)found : NULL;
}

int name_register(struct broker *b, struct port *p, const char *name)
{
	struct peer *owner = p->owner;
	int e;

	if (p->name || name_lookup(b, name))
		return -EEXIST;
	if (!name_allowed(&b->cfg, name, owner->actor.uid))
		return -EACCES;
	if (owner->n_names >= b->cfg.limits.names)
		return -EDQUOT;
	if ((e = user_charge(b, owner->user, USAGE_NAMES, 1)) < 0)
		return e;
	if (!(p->name = strdup(name)) || !tsearch(p, &b->names, cmp_name)) {
		free(p->name);
		p->name = NULL;
		user_uncharge(b, owner->user, USAGE_NAMES, 1);
		return -ENOMEM;
	}
	owner->n_names++;
	return 0;
}

void name_release(struct broker *b, struct port *p)
{
	if (!p->name)
		return;
	tdelete(p, &b->names, cmp_name);
	p->owner->n_names--;
	user_uncharge(b, p->owner->user, USAGE_NAMES, 1);
	free(p->name);
	p->name = NULL;
}

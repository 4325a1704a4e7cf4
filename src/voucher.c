/*
 * Vouchers and the importance attribute manager.
 *
 * A voucher object holds at most one importance value (a task element or
 * an inherit) and is deduplicated: the value points back at the one object
 * holding it.  The object also keeps the voucher layer's "made" count for
 * its value, so that the value is released with sync = made when the last
 * reference to the object goes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Hands one made reference on value to the voucher layer. */
struct imp_voucher *imp__voucher_for_value(imp_domain *d, struct imp__elem *value)
{
	struct imp_voucher *v = value->voucher;

	if (v) {
		v->made++;
		v->refs++;
		return v;
	}
	return imp__voucher_make(d, value, imp__voucher_slot(value));
}

/* ipc_importance_release_value */
static int imp__release_value(imp_domain *d, struct imp__elem *elem, uint32_t sync)
{
	if (sync != elem->made) {
		/* made references handed out concurrently; cannot happen while
		 * both counts change under the one lock */
		d->broken = true;
		return IMP_KERN_FAILURE;
	}
	elem->made = 0;

	if (elem->type == IMP__ELEM_INHERIT) {
		struct imp__inherit *inherit = (struct imp__inherit *)elem;

		if (inherit->donating) {
			struct imp__task_elem *to = inherit->to_task;
			uint32_t boosts = IMP__INHERIT_EXTERN(inherit);

			to->externcnt -= inherit->externcnt;
			to->externdrop -= inherit->externdrop;
			inherit->externcnt = 0;
			inherit->externdrop = 0;
			inherit->donating = false;
			imp__drop_internal_locked(d, to, boosts);
		} else {
			inherit->externcnt = 0;
			inherit->externdrop = 0;
		}
		if (elem->refs == 1 && inherit->from_elem->type == IMP__ELEM_TASK) {
			/* the made reference was the last: the end of the
			 * common voucher pair */
			imp__inherit_sleep(d, inherit);
			return IMP_KERN_SUCCESS;
		}
	}
	imp__elem_release(d, elem); /* the made reference */
	return IMP_KERN_SUCCESS;
}

void imp__voucher_unref_locked(imp_domain *d, struct imp_voucher *v)
{
	struct imp__elem *value;

	if (--v->refs > 0)
		return;
	/* Detach first: a value handed to the voucher layer again while the
	 * release runs (unlocked during a policy update) starts a new object
	 * in the same slot, so v is not touched once the release begins; the
	 * value outlives it (the new object's made reference). */
	value = v->value;
	value->voucher = NULL;
	d->n_vouchers--;
	imp__release_value(d, value, v->made);
}

int imp_voucher_self(imp_task *task, imp_voucher **out)
{
	imp_domain *d;
	struct imp__task_elem *t;
	int r;

	IMP__CHECK_ARG(task && out, "imp_voucher_self: NULL argument");
	*out = NULL;
	d = task->domain;
	if ((r = imp__lock(d)) < 0)
		return r;
	t = task->imp;
	if (task->active && t) {
		/* one element reference stands for all made references */
		if (t->elem.made++ == 0)
			imp__elem_ref(&t->elem);
		*out = imp__voucher_for_value(d, &t->elem);
	}
	imp__unlock(d);
	return 0;
}

int imp_voucher_redeem(imp_voucher *previous, imp_voucher **out)
{
	imp_domain *d;
	int r;

	IMP__CHECK_ARG(out, "imp_voucher_redeem: NULL out");
	*out = NULL;
	if (!previous)
		return 0; /* the default redeems to the default */
	d = previous->domain;
	if ((r = imp__lock(d)) < 0)
		return r;
	previous->value->made++;
	*out = imp__voucher_for_value(d, previous->value);
	imp__unlock(d);
	return 0;
}

imp_voucher *imp_voucher_ref(imp_voucher *v)
{
	if (v) {
		imp__lock_any(v->domain);
		v->refs++;
		pthread_mutex_unlock(&v->domain->lock);
	}
	return v;
}

void imp_voucher_release(imp_voucher *v)
{
	imp_domain *d;

	if (!v)
		return;
	d = v->domain;
	if (imp__in_policy_callback()) {
		/* The last reference may drop boosts: refuse to recurse into
		 * policy, but never lose the reference. */
		imp__lock_any(d);
		if (v->refs > 1) {
			v->refs--;
			pthread_mutex_unlock(&d->lock);
			return;
		}
		pthread_mutex_unlock(&d->lock);
		imp__error(-EDEADLK, "imp_voucher_release: last reference dropped inside a policy callback");
		return;
	}
	imp__lock_any(d);
	imp__voucher_unref_locked(d, v);
	imp__unlock(d);
}

int imp_voucher_command(imp_voucher *v, uint32_t command, const void *in, size_t in_size,
			void *out, size_t *out_size)
{
	struct imp__inherit *inherit;
	struct imp__task_elem *to;
	imp_domain *d;
	uint32_t refs, remaining, *outp = NULL;
	size_t osize = out_size ? *out_size : 0;
	int r;

	if (in_size != sizeof(uint32_t) || (osize != 0 && osize != sizeof(uint32_t)))
		return IMP_KERN_INVALID_ARGUMENT;
	IMP__CHECK_ARG(in && (osize == 0 || out), "imp_voucher_command: NULL content");
	memcpy(&refs, in, sizeof(refs));
	if (osize)
		outp = &remaining;
	if (command != IMP_VOUCHER_CMD_DROP_EXTERNAL)
		return IMP_KERN_NOT_SUPPORTED;
	if (!v || v->value->type != IMP__ELEM_INHERIT)
		return IMP_KERN_INVALID_ARGUMENT;

	d = v->domain;
	if ((r = imp__lock(d)) < 0)
		return r;
	inherit = (struct imp__inherit *)v->value;
	if (refs == 0) {
		remaining = IMP__INHERIT_EXTERN(inherit);
		r = IMP_KERN_SUCCESS;
		goto done;
	}
	if (IMP__INHERIT_EXTERN(inherit) < refs) {
		imp__unlock(d);
		return IMP_KERN_FAILURE;
	}
	to = inherit->to_task;
	if (inherit->donating) {
		inherit->externdrop += refs;
		to->externdrop += refs;
		remaining = IMP__INHERIT_EXTERN(inherit);
		if (remaining == 0) {
			inherit->donating = false;
			to->externcnt -= inherit->externcnt;
			to->externdrop -= inherit->externdrop;
			/* the App Nap hysteresis starts, last boost or not */
			if (to->denap)
				imp__delayed_drop(d, to);
			imp__drop_internal_locked(d, to, refs);
		} else if (to->assertcnt > refs + remaining) {
			to->assertcnt -= refs;
		} else {
			to->assertcnt = remaining; /* defensive, as the reference */
		}
	} else {
		inherit->externdrop += refs;
		remaining = IMP__INHERIT_EXTERN(inherit);
	}
	r = IMP_KERN_SUCCESS;
done:
	imp__unlock(d);
	if (outp)
		memcpy(out, outp, sizeof(remaining));
	return r;
}

int imp_voucher_drop_external(imp_voucher *v, uint32_t refs, uint32_t *remaining)
{
	uint32_t out = 0;
	size_t out_size = remaining ? sizeof(out) : 0;
	int r;

	r = imp_voucher_command(v, IMP_VOUCHER_CMD_DROP_EXTERNAL, &refs, sizeof(refs), &out, &out_size);
	if (r == IMP_KERN_SUCCESS && remaining)
		*remaining = out;
	return r;
}

struct imp__text {
	char *buf;
	size_t size, len;
};

static void imp__text_add(struct imp__text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void imp__text_add(struct imp__text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->len < t->size ? t->buf + t->len : NULL,
		      t->len < t->size ? t->size - t->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
}

int imp_voucher_describe(imp_voucher *v, char *buf, size_t size, size_t *needed)
{
	struct imp__text text = { buf, size, 0 };
	struct imp__elem *elem;

	IMP__CHECK_ARG(buf || size == 0, "imp_voucher_describe: NULL buffer");
	if (size)
		buf[0] = '\0';
	if (!v) {
		if (needed)
			*needed = 0;
		return 0;
	}
	imp__lock_any(v->domain);
	imp__text_add(&text, "Importance for pid ");
	for (elem = v->value; elem;) {
		if (elem->type == IMP__ELEM_TASK) {
			imp__text_add(&text, "%d", imp__elem_pid(elem));
			break;
		} else {
			struct imp__inherit *i = (struct imp__inherit *)elem;

			imp__text_add(&text, "%d (%d of %d boosts) %s from pid ",
				      imp__elem_pid(elem), (int)IMP__INHERIT_EXTERN(i),
				      (int)i->externcnt, i->donating ? "donated" : "linked");
			elem = i->from_elem;
		}
	}
	pthread_mutex_unlock(&v->domain->lock);
	if (size)
		buf[text.len < size ? text.len : size - 1] = '\0';
	if (needed)
		*needed = text.len + 1;
	return 0;
}

int imp_voucher_get_info(imp_voucher *v, imp_voucher_info *info)
{
	IMP__CHECK_ARG(v && info, "imp_voucher_get_info: NULL argument");
	memset(info, 0, sizeof(*info));
	imp__lock_any(v->domain);
	info->refs = v->refs;
	info->made = v->made;
	info->pid = imp__elem_pid(v->value);
	if (v->value->type == IMP__ELEM_INHERIT) {
		struct imp__inherit *i = (struct imp__inherit *)v->value;

		info->holds_inherit = true;
		info->externcnt = i->externcnt;
		info->externdrop = i->externdrop;
		info->donating = i->donating;
		info->depth = i->depth;
	}
	pthread_mutex_unlock(&v->domain->lock);
	return 0;
}

/* Error codes and the per-thread error sentence. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char imp__last_error[256];

int imp__error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(imp__last_error, sizeof(imp__last_error), fmt, ap);
	va_end(ap);
	return code;
}

const char *imp_last_error(void)
{
	return imp__last_error;
}

const char *imp_strerror(int code)
{
	switch (code) {
	case IMP_KERN_SUCCESS:
		return "ok";
	case IMP_KERN_INVALID_ARGUMENT:
		return "invalid argument (KERN_INVALID_ARGUMENT)";
	case IMP_KERN_FAILURE:
		return "failure (KERN_FAILURE)";
	case IMP_KERN_NOT_SUPPORTED:
		return "not supported (KERN_NOT_SUPPORTED)";
	case -EINVAL:
		return "invalid argument";
	case -ENOMEM:
		return "out of memory";
	case -ESRCH:
		return "task has exited";
	case -EPIPE:
		return "port is dead";
	case -EALREADY:
		return "message is not queued";
	case -EBUSY:
		return "task holds importance boosts";
	case -EDEADLK:
		return "called from inside a policy callback";
	case -EUCLEAN:
		return "importance state is inconsistent";
	case -EXDEV:
		return "objects belong to different domains";
	default:
		return code < 0 ? strerror(-code) : "unknown result code";
	}
}

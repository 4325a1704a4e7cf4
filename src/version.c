/* The library's version, which the build and the header must agree on. */
#include "internal.h"

#if IMP_PROJECT_VERSION_MAJOR != IMP_VERSION_MAJOR || IMP_PROJECT_VERSION_MINOR != IMP_VERSION_MINOR || \
	IMP_PROJECT_VERSION_PATCH != IMP_VERSION_PATCH
#error "project(VERSION) in CMakeLists.txt and IMP_VERSION_* in importance.h differ"
#endif

unsigned imp_version(void)
{
	return IMP_VERSION_HEX;
}

#define IMP__STRING(x) #x
#define IMP__NUMBER_STRING(x) IMP__STRING(x)

/* Made from the numbers, so that the test comparing it with
 * IMP_VERSION_STRING catches a header whose two disagree. */
const char *imp_version_string(void)
{
	return IMP__NUMBER_STRING(IMP_VERSION_MAJOR) "." IMP__NUMBER_STRING(IMP_VERSION_MINOR) "."
		IMP__NUMBER_STRING(IMP_VERSION_PATCH);
}

#include <parley/error.h>
#include <parley/version.h>

const char *parley_strerror(int err)
{
	switch (err) {
#define PARLEY__ERR_MSG(name, value, msg)                                                              \
	case value:                                                                                    \
		return msg;
		PARLEY_ERRNO_MAP(PARLEY__ERR_MSG)
#undef PARLEY__ERR_MSG
	}
	return "unknown error";
}

const char *parley_errname(int err)
{
	switch (err) {
#define PARLEY__ERR_NAME(name, value, msg)                                                             \
	case value:                                                                                    \
		return #name;
		PARLEY_ERRNO_MAP(PARLEY__ERR_NAME)
#undef PARLEY__ERR_NAME
	}
	return "UNKNOWN";
}

const char *parley_version(void)
{
	return PARLEY_VERSION_STRING;
}

/* libFuzzer: wire__approval_parse / _verify on arbitrary bytes. A parse either fails with the output
 * zeroed or yields fields within the record's rules; verify never accepts what parse refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "wire/approval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = {1};
	wire_approval a, zero;
	int rc = wire__approval_parse(data, size, &a);

	memset(&zero, 0, sizeof zero);
	if (rc != PARLEY_OK) {
		if (rc != PARLEY_E_APPROVAL_INVALID || memcmp(&a, &zero, sizeof a) != 0)
			abort();
		if (wire__approval_verify(data, size, key, &a) == PARLEY_OK)
			abort();
		return 0;
	}
	if (a.request_id == 0 || a.approver_device == 0 || (a.role != WIRE_ROLE_AGENT && a.role != WIRE_ROLE_BOT && a.role != WIRE_ROLE_GATEWAY) ||
	    size > WIRE_APPROVAL_MAX_BYTES || strlen(a.entity) > WIRE_MAX_HANDLE)
		abort();
	(void)wire__approval_verify(data, size, key, &a);
	return 0;
}

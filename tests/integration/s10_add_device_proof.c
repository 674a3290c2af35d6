/* Security item 10: AddDevice proves possession of the new device key. Without the proof, any account
 * could add someone else's public key (read from a device list, a screen, a QR code) to itself and
 * squat it: the key is unique server-wide, so its owner could never be linked to its own account
 * (DEVICE_KEY_IN_USE). The proof is the new device's signature over the account handle, its key and a
 * timestamp (wire__add_device_signed_bytes); BAD_SIGNATURE without it, LINK_CODE_EXPIRED when older than
 * device_link_max_age_s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "harness.h"

static srv s;

static void squatting_refused(void)
{
	uint8_t apk[32], ask[64], mpk[32], msk[64], vpk[32], vsk[64], opk[32], osk[64];
	int alice, mallory;
	uint32_t id = 0;
	IT_EQ(pw_register(s.port, "alice", apk, ask, &alice), PARLEY_OK);
	IT_EQ(pw_register(s.port, "mallory", mpk, msk, &mallory), PARLEY_OK);
	crypto_sign_keypair(vpk, vsk); /* the victim's new device: only its public key is known to mallory */
	crypto_sign_keypair(opk, osk);

	/* mallory adds the victim's key to her account: no proof, a proof by her own key, a proof the
	 * victim made for another account (alice) replayed, a zero signature */
	IT_EQ(it_add_device_at(mallory, "mallory", vpk, NULL, it_now_ms(), &id), PARLEY_E_BAD_SIGNATURE);
	IT_EQ(it_add_device_at(mallory, "mallory", vpk, osk, it_now_ms(), &id), PARLEY_E_BAD_SIGNATURE);
	IT_EQ(it_add_device_at(mallory, "alice", vpk, vsk, it_now_ms(), &id), PARLEY_E_BAD_SIGNATURE);
	/* an old link code, even a genuine one, is refused */
	IT_EQ(it_add_device_at(alice, "alice", vpk, vsk, it_now_ms() - 3600 * 1000, &id), PARLEY_E_LINK_CODE_EXPIRED);
	IT_EQ(it_add_device_at(alice, "alice", vpk, vsk, it_now_ms() + 3600 * 1000, &id), PARLEY_E_LINK_CODE_EXPIRED);

	/* the key is still free: its owner's own account adds it with a genuine proof */
	IT_EQ(it_add_device_at(alice, "alice", vpk, vsk, it_now_ms(), &id), PARLEY_OK);
	IT_EQ(id, 2);
	int fd = it_connect_as(s.port, "alice", 2, vsk);
	IT_CHECK(fd >= 0);
	close(fd);
	close(alice);
	close(mallory);
}

int main(void)
{
	srv_start(&s, NULL);
	IT_RUN(squatting_refused);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}

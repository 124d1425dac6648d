"""Signing secrets decrypted once per ciphertext in a worker, never a stale one after a rotation."""

from __future__ import annotations

from services.webhook.adapters.batches import OpenSecrets
from shared.crypto import SecretBox


class CountingBox(SecretBox):
    def __init__(self, keys: list[str]) -> None:
        super().__init__(keys)
        self.decrypted = 0

    def decrypt(self, token: str) -> str:
        self.decrypted += 1
        return super().decrypt(token)


def test_a_secret_is_decrypted_once_however_many_attempts_it_signs() -> None:
    box = CountingBox([SecretBox.generate_key()])
    sealed = box.encrypt("whsec_one")
    secrets = OpenSecrets(box)
    assert [secrets.open(sealed, None) for _ in range(50)] == ["whsec_one"] * 50
    assert box.decrypted == 1


def test_a_rotated_secret_is_a_new_ciphertext_and_is_read_afresh() -> None:
    box = CountingBox([SecretBox.generate_key()])
    secrets = OpenSecrets(box)
    assert secrets.open(box.encrypt("whsec_old"), None) == "whsec_old"
    assert secrets.open(box.encrypt("whsec_new"), None) == "whsec_new"
    assert box.decrypted == 2


def test_a_plaintext_row_not_yet_sealed_is_used_as_it_is() -> None:
    secrets = OpenSecrets(SecretBox([SecretBox.generate_key()]))
    assert secrets.open(None, "whsec_plain") == "whsec_plain"
    assert secrets.open(None, None) is None


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used() -> None:
    box = CountingBox([SecretBox.generate_key()])
    secrets = OpenSecrets(box, size=2)
    a, b, c = (box.encrypt(s) for s in ("whsec_a", "whsec_b", "whsec_c"))
    secrets.open(a, None)
    secrets.open(b, None)
    secrets.open(a, None)  # a is the most recent now
    secrets.open(c, None)  # drops b
    before = box.decrypted
    assert secrets.open(a, None) == "whsec_a" and box.decrypted == before
    assert secrets.open(b, None) == "whsec_b" and box.decrypted == before + 1

"""The Fernet key list: the first key encrypts, all decrypt, signatures verify across a rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.crypto import DecryptionError, SecretBox
from shared.settings import SettingsError


def test_a_value_encrypted_under_an_old_key_decrypts_after_a_new_key_is_put_first() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([old]).encrypt("app-password")
    rotated_box = SecretBox([new, old])
    assert rotated_box.decrypt(token) == "app-password"
    rotated = rotated_box.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == "app-password"
    with pytest.raises(DecryptionError):
        SecretBox([new]).decrypt(token)


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    box = SecretBox([SecretBox.generate_key()])
    assert "app-password" not in box.encrypt("app-password")


def test_signatures_are_per_purpose_and_survive_rotation() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    signature = SecretBox([old]).sign("google-state", b"sub-1")
    assert SecretBox([new, old]).verify("google-state", b"sub-1", signature)
    assert not SecretBox([new, old]).verify("feed-credential", b"sub-1", signature)
    assert not SecretBox([new, old]).verify("google-state", b"sub-2", signature)
    assert not SecretBox([new]).verify("google-state", b"sub-1", signature)


def test_a_missing_or_malformed_key_list_is_a_settings_error_that_says_how_to_make_a_key() -> None:
    with pytest.raises(SettingsError, match="KALENDS_ENCRYPTION_KEYS is not set"):
        SecretBox.from_env({})
    with pytest.raises(SettingsError, match=r"Fernet\.generate_key"):
        SecretBox.from_env({"KALENDS_ENCRYPTION_KEYS": "not-a-key"})


def test_the_development_key_is_read_from_env_local_as_make_run_reads_it(tmp_path: Path) -> None:
    from dotenv import dotenv_values

    from shared.crypto import ENV_NAME, development_keys

    key = SecretBox.generate_key()
    env_file = tmp_path / ".env.local"
    env_file.write_text(f"# local settings\nexport {ENV_NAME}='{key}'  # rotated in May\nOTHER=1\n", encoding="utf-8")
    assert development_keys(env_file) == key == dotenv_values(env_file)[ENV_NAME]
    assert development_keys(tmp_path / "absent") is None


def test_a_created_development_key_is_written_once_for_its_owner_only(tmp_path: Path) -> None:
    from shared.crypto import development_keys

    env_file = tmp_path / ".env.local"
    key = development_keys(env_file, create=True)
    assert key is not None and development_keys(env_file, create=True) == key
    assert env_file.stat().st_mode & 0o777 == 0o600
    SecretBox([key])  # a valid Fernet key

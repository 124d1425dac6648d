"""Console users' pure rules: email normalisation, password policy, argon2id hashing."""

from __future__ import annotations

import pytest

from services.auth.domain import users as rules


@pytest.mark.parametrize("email", ["a@b.example", " Ops@Example.COM ", "first.last+tag@sub.example.org"])
def test_valid_emails_are_trimmed_and_lowercased(email: str) -> None:
    assert rules.normalize_email(email) == email.strip().lower()


@pytest.mark.parametrize(
    "email", ["", "   ", "plain", "a@b", "a@@b.example", "a b@c.example", "a@" + "b" * 260 + ".example"]
)
def test_invalid_emails_are_refused_with_a_reason(email: str) -> None:
    with pytest.raises(ValueError, match="email"):
        rules.normalize_email(email)


def test_passwords_must_be_long_enough_short_enough_and_not_the_email() -> None:
    with pytest.raises(rules.UnacceptablePassword, match="at least"):
        rules.check_password("short", "ops@example.com")
    with pytest.raises(rules.UnacceptablePassword, match="at most"):
        rules.check_password("x" * (rules.MAX_PASSWORD + 1), "ops@example.com")
    with pytest.raises(rules.UnacceptablePassword, match="email"):
        rules.check_password("Ops@Example.com", "ops@example.com")
    rules.check_password("a long enough password", "ops@example.com")


def test_a_hash_is_argon2id_salted_and_matches_only_its_password() -> None:
    first, second = rules.hash_password("correct horse"), rules.hash_password("correct horse")
    assert first.startswith("$argon2id$") and first != second
    assert rules.password_matches("correct horse", first)
    assert not rules.password_matches("wrong horse", first)
    assert not rules.password_matches("correct horse", None)
    assert not rules.password_matches("correct horse", "not a hash")

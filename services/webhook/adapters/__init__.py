"""Adapters of the webhook service: PostgreSQL repository, HTTP sender, timer publisher."""

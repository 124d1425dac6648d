"""HTTP API of the webhook service."""

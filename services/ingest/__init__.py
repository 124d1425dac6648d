"""Kalends ingest service."""

"""Kalends feed service."""

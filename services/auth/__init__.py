"""Kalends auth service."""

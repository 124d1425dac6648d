"""Kalends webhook service."""

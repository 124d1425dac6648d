"""Kalends platform code shared by every service: settings, logging, database, broker, messages, web."""

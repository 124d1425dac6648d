"""Kalends services: auth, ingest, feed, webhook."""

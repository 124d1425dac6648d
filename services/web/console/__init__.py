"""The merchant console under `/console/`: server-rendered pages over the public APIs, with the console
user's own access token. Web keeps only the session (services/web/migrations)."""

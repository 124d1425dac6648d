"""The console's page handlers, one module per area."""

"""Pure rules of the webhook service: retry schedule, payloads, signatures, address policy."""

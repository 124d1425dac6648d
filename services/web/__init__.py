"""The web service: the public calendar pages and buttons for subscribers (and the merchant console)."""

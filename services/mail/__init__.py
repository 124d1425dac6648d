"""The mail service: iMIP invitations (RFC 6047) over SMTP, their deliveries, and attendees' replies."""

"""The HTTP API for partners' webhook endpoints and their delivery log."""

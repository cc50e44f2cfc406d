"""Opaque, time-ordered identifiers for the registry's records (one implementation, shared
with the webhook tables)."""

from webhooks.ids import new_id

__all__ = ["new_id"]

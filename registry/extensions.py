"""Extension objects, created once and bound to each app with ``init_app``."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect

# The store is the app's RATELIMIT_STORAGE_URI (``DAYLIGHT_RATELIMIT_STORAGE_URI``):
# memory:// by default, where each web process counts on its own; a Redis URL when several
# processes must share one budget (registry.config).
# If that store stops answering, each process counts in memory until it answers again,
# rather than refusing every resident's comment with a 500.
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, default_limits=[],
                  in_memory_fallback_enabled=True)
csrf = CSRFProtect()

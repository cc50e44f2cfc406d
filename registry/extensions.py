"""Extension objects, created once and bound to each app with ``init_app``."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect

# In-process counters: each web process limits on its own. A shared store (Redis, memcached)
# can be named with RATELIMIT_STORAGE_URI when several processes must share one budget.
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://",
                  headers_enabled=True, default_limits=[])
csrf = CSRFProtect()

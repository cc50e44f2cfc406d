"""Failure drills: each ends with a ``PASS`` or ``FAIL`` verdict line and its counts."""

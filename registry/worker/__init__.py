"""Background work: the scheduler's jobs and the webhook delivery engine."""

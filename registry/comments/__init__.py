"""Residents' comments on a review: posting, receipts, moderation, summaries, exports."""

"""Public reviews: comment periods, meetings, decisions."""

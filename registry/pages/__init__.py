"""Resident pages (server-rendered, no JavaScript required)."""

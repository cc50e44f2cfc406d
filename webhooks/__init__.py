"""Daylight's webhook delivery engine (Standard Webhooks). No Flask; takes a session and a clock."""

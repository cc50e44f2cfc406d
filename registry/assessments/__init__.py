"""Assessments: a technology's record checked against the active policy versions."""

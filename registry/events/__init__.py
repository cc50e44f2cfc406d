"""The append-only event log: every change of state of a public record, in order."""

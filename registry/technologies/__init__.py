"""Technologies: the records at the heart of the registry, and their lifecycle."""

"""Write a new migration by comparing the models with a database upgraded to head.

Usage: ``python -m registry.migrations.new "what changed"`` (uses a temporary SQLite file).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from registry.db import make_engine
from registry.migrate import alembic_config


def main() -> None:
    """Autogenerate a revision against a fresh, fully upgraded SQLite database."""
    message = " ".join(sys.argv[1:]) or "schema change"
    versions = Path(__file__).parent / "versions"
    number = len(list(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'migrate.db'}"
        engine = make_engine(url)
        config = alembic_config(url)
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            command.revision(config, message=message, autogenerate=True, rev_id=f"{number:04d}")
        engine.dispose()


if __name__ == "__main__":
    main()

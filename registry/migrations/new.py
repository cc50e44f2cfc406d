"""Write a new migration by comparing the models with a database upgraded to head.

Usage: ``python -m registry.migrations.new "what changed"`` (uses a temporary SQLite file).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from registry import create_app
from registry.migrate import alembic_config, upgrade


def main() -> None:
    """Autogenerate a revision against a fresh, fully upgraded SQLite database."""
    message = " ".join(sys.argv[1:]) or "schema change"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'migrate.db'}"
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "migrations"})
        upgrade(app)
        versions = Path(__file__).parent / "versions"
        number = len(list(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
        command.revision(alembic_config(url), message=message, autogenerate=True,
                         rev_id=f"{number:04d}")


if __name__ == "__main__":
    main()

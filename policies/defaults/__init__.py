"""The policy documents bundled with Daylight, as raw JSON documents.

They are written from the criteria real oversight programmes use (see the project's domain
notes) and are what a new installation starts with; a city publishes its own versions later.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: The bundled documents, in the order they are offered.
DEFAULT_DOCUMENT_FILES = ("privacy.json", "equity.json")


def default_documents() -> list[dict[str, Any]]:
    """Return fresh copies of the bundled policy documents (privacy, then equity) as JSON.

    Read through importlib.resources so they are found in an installed package too.
    """
    folder = resources.files(__name__)
    documents: list[dict[str, Any]] = []
    for name in DEFAULT_DOCUMENT_FILES:
        documents.append(json.loads(folder.joinpath(name).read_text(encoding="utf-8")))
    return documents

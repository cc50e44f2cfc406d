"""`policies` is a plain library: importing it loads no web framework, database or sibling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import policies

PROJECT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("registry", "webhooks", "flask", "sqlalchemy", "sqlmodel", "alembic")


def test_policies_imports_no_app_framework_or_database() -> None:
    # A fresh interpreter: this test process has already imported the app through conftest.
    script = (
        "import json, sys, policies, policies.evaluator, policies.schema, policies.defaults;"
        "policies.evaluate({}, [policies.load_policy_document(d) "
        "for d in policies.default_documents()]);"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout) == []


def test_the_public_api_is_exported() -> None:
    for name in (
        "load_policy_document",
        "PolicyDocument",
        "PolicyDocumentError",
        "evaluate",
        "Assessment",
        "Finding",
        "default_documents",
        "VOCABULARIES",
    ):
        assert name in policies.__all__
        assert hasattr(policies, name)
    assert policies.__doc__ is not None and "plain library" in policies.__doc__

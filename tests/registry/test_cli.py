"""The command line: tokens, departments, migrations, the worker's start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from registry.auth.models import ApiToken
from registry.cli import main


def test_tokens_create_prints_the_token_last_and_stores_only_its_hash(app, runner):
    runner.invoke(args=["departments", "add", "police", "--name", "Police"])
    result = runner.invoke(args=["tokens", "create", "--role", "staff", "--name", "Ana",
                                 "--department", "police"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("dlt_") and len(secret) > 40
    from registry.database import transaction

    with app.app_context(), transaction() as session:
        stored = session.execute(select(ApiToken)).scalars().one()
        columns = [str(getattr(stored, c)) for c in ApiToken.model_fields]
    assert all(secret not in value for value in columns)
    assert stored.token_hash != secret and len(stored.token_hash) == 64

    listing = runner.invoke(args=["tokens", "list"])
    assert "staff" in listing.output and "Ana" in listing.output
    assert secret not in listing.output


def test_staff_tokens_need_a_department(runner):
    result = runner.invoke(args=["tokens", "create", "--role", "staff", "--name", "Bo"])
    assert result.exit_code != 0
    assert "department" in result.output


def test_unknown_role_is_refused(runner):
    result = runner.invoke(args=["tokens", "create", "--role", "mayor", "--name", "X"])
    assert result.exit_code != 0


def test_departments_add_refuses_duplicates_and_bad_slugs(runner, client):
    assert runner.invoke(args=["departments", "add", "police", "--name", "Police"]).exit_code == 0
    again = runner.invoke(args=["departments", "add", "police", "--name", "Police"])
    assert again.exit_code != 0 and "already exists" in again.output
    bad = runner.invoke(args=["departments", "add", "Police Dept", "--name", "P"])
    assert bad.exit_code != 0
    items = client.get("/api/v1/departments").get_json()["items"]
    assert [d["slug"] for d in items] == ["police"]


def test_revoking_an_unknown_token_fails(runner):
    result = runner.invoke(args=["tokens", "revoke", "tok_nope"])
    assert result.exit_code != 0


# Runs ``daylight worker`` with its first act (opening what fell due) replaced by a report:
# the modules already loaded at that moment that the opening does not need.
_AT_FIRST_OPENING = """
import json, sys
import registry.worker.jobs as jobs
from registry.cli import main

def report(app, clock):
    late = ("flask_limiter", "limits", "flask_smorest", "marshmallow", "registry.comments",
            "registry.pages", "registry.webhook_endpoints", "apscheduler",
            "webhooks.sender", "webhooks.transport")
    print(json.dumps(sorted(m for m in sys.modules if m.startswith(late))))
    raise SystemExit(0)

jobs.run_due_transitions = report
sys.argv = ["daylight", "worker"]
main()
"""


def test_a_restarting_worker_opens_what_fell_due_before_loading_what_it_does_not_need(
        tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'daylight.db'}"}
    result = subprocess.run([sys.executable, "-c", _AT_FIRST_OPENING], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # Not the web app, not flask-limiter's command plugin, not the comments' services.
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_plugin_commands_are_still_found_beside_daylights_own() -> None:
    result = CliRunner().invoke(main, ["limiter", "--help"])
    assert result.exit_code == 0, result.output
    assert "Flask-Limiter" in result.output
    assert "worker" in CliRunner().invoke(main, ["--help"]).output


def test_names_longer_than_their_columns_are_refused_plainly_on_either_database(runner,
                                                                                client):
    # PostgreSQL enforces a column's length (SQLite does not): a plain refusal, not a
    # DataError's traceback, and nothing stored.
    long_department = runner.invoke(args=["departments", "add", "police", "--name", "P" * 201])
    assert long_department.exit_code != 0
    assert "name: Length must be between 1 and 200." in long_department.output
    long_slug = runner.invoke(args=["departments", "add", "p" * 65, "--name", "Police"])
    assert long_slug.exit_code != 0
    assert "slug: Length must be between 1 and 64." in long_slug.output
    assert client.get("/api/v1/departments").get_json()["items"] == []
    token = runner.invoke(args=["tokens", "create", "--role", "admin", "--name", "A" * 201])
    assert token.exit_code != 0
    assert "a token's name is at most 200 characters" in token.output
    assert "A" * 200 not in runner.invoke(args=["tokens", "list"]).output
    assert runner.invoke(args=["tokens", "create", "--role", "admin", "--name",
                               "A" * 200]).exit_code == 0


# Runs ``daylight run`` (or ``daylight worker``) with the server and the worker replaced by
# stand-ins that report, once serving would begin, how many of the process's objects the
# cyclic garbage collector still walks and how many it no longer does.
_ONCE_STARTED = """
import gc, json, os, signal, sys, threading
import werkzeug.serving
import registry.worker.runner as runner
from registry.cli import main

def report():
    print(json.dumps({"walked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}))

class Server:
    server_port = 5000
    def serve_forever(self):
        report()
        raise KeyboardInterrupt
    def server_close(self):
        pass

class Worker:
    def __init__(self, app):
        pass
    def start(self):
        if sys.argv[1] == "worker":  # it waits for a signal once started
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    def stop(self):
        if sys.argv[1] == "worker":
            report()

werkzeug.serving.make_server = lambda *args, **kwargs: Server()
runner.Worker = Worker
sys.argv = ["daylight", sys.argv[1]]
main()
"""


@pytest.mark.parametrize("command", ["run", "worker"])
def test_what_start_made_is_frozen_out_of_later_collections(tmp_path: Path,
                                                            command: str) -> None:
    # A full collection walks every tracked object: in a process only started, the first
    # took 45-70 ms, a pause for the webhook senders (docs/performance.md).
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'daylight.db'}"}
    if command == "worker":  # ``run`` upgrades the database itself
        assert CliRunner(env=env).invoke(main, ["db", "upgrade"]).exit_code == 0
    result = subprocess.run([sys.executable, "-c", _ONCE_STARTED, command], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["frozen"] > 20 * counts["walked"], counts


@pytest.mark.parametrize("args", [
    ["tokens", "list"],
    ["tokens", "create", "--role", "admin", "--name", "Ops"],
    ["tokens", "revoke", "tok_x"],
    ["departments", "add", "police", "--name", "Police"],
    ["import", "technologies", str(Path(__file__).parents[2] / "docs" / "sample-inventory.csv")],
])
def test_a_command_before_the_first_upgrade_says_to_run_it(tmp_path: Path, args) -> None:
    from registry import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "SECRET_KEY": "x"})
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1
    assert "run 'daylight db upgrade' first" in result.output
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    upgraded = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    if args[:2] == ["tokens", "list"]:
        assert "No tokens yet" in app.test_cli_runner().invoke(args=args).output


def test_revoking_a_partner_token_disables_its_webhook_endpoints(app, runner, client, token, clock,
                                                                  make_technology):
    import re

    from registry.worker.jobs import fan_out_new_events
    from webhooks import WebhookDelivery

    created = runner.invoke(args=["tokens", "create", "--role", "partner", "--name", "Org"])
    token_id = re.search(r"Created token (\S+)", created.output).group(1)
    partner = {"Authorization": f"Bearer {created.output.strip().splitlines()[-1]}"}
    endpoint = client.post("/api/v1/webhook-endpoints", headers=partner,
                           json={"url": "http://127.0.0.1:9/hook"}).get_json()
    other = client.post("/api/v1/webhook-endpoints", headers=token("partner"),
                        json={"url": "http://127.0.0.1:9/other"}).get_json()

    revoked = runner.invoke(args=["tokens", "revoke", token_id])
    assert revoked.exit_code == 0, revoked.output
    assert f"Its 1 webhook endpoint(s) are disabled: {endpoint['id']}" in revoked.output
    admin = token("admin")
    stored = client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=admin).get_json()
    assert stored["enabled"] is False and "revoked" in stored["disabled_reason"]
    assert client.get(f"/api/v1/webhook-endpoints/{other['id']}",
                      headers=admin).get_json()["enabled"] is True
    # A cut-off partner receives nothing more; the other partner still does.
    make_technology(submit=True)
    fan_out_new_events(app, clock)
    from registry.database import transaction

    with app.app_context(), transaction() as session:
        targets = {d.endpoint_id for d in session.execute(select(WebhookDelivery)).scalars()}
    assert targets == {other["id"]}


def test_a_command_on_a_database_a_migration_behind_says_to_upgrade(tmp_path: Path) -> None:
    # 0008 adds only a column: every table is there, and the import would fail on it.
    from alembic import command

    from registry import create_app
    from registry.database import engine
    from registry.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'behind.db'}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
    config = alembic_config(url)
    with engine(app).connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        connection.commit()
    sample = str(Path(__file__).parents[2] / "docs" / "sample-inventory.csv")
    result = app.test_cli_runner().invoke(args=["import", "technologies", sample])
    assert result.exit_code == 1
    assert "run 'daylight db upgrade' first" in result.output
    assert app.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
    assert app.test_cli_runner().invoke(args=["departments", "add", "police",
                                              "--name", "Police"]).exit_code == 0

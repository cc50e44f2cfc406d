"""The ``daylight`` command: a Flask CLI group."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from registry.config import ConfigError


def _create_app(*_args: Any) -> Flask:
    from registry import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


class _DaylightGroup(FlaskGroup):
    """Flask's command group, except that a command registered on the group itself is
    found without first loading every installed package's ``flask.commands`` plugins."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        # FlaskGroup imports each plugin before any lookup; flask-limiter's alone costs a
        # restarting worker about a tenth of a second before it can open what fell due.
        own = self.commands.get(name)
        return own if own is not None else super().get_command(ctx, name)


@click.group(cls=_DaylightGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main() -> None:
    """Daylight: the public registry of a city's surveillance technology."""


main.add_command(shell_command)
main.add_command(routes_command)


def _now() -> Any:
    from registry.clock import now

    return now()


def _freeze_what_start_made() -> None:
    """Keep the objects made at start (modules, the app, the scheduler: most of the
    process's objects) out of every later collection of the cyclic garbage collector.

    A full collection walks every tracked object; in a process that has only started, the
    first one (about half a minute in) took 45–70 ms on a slow machine, a pause for every
    thread, webhook senders included, while a period's webhooks were going out
    (docs/performance.md). Frozen, they are never walked: they live as long as the process.
    No collection first: it would be that same pause, now, while the worker sends what it
    opened on starting; the little garbage frozen with them is never freed.
    """
    import gc

    gc.freeze()


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load a sample city first (once).")
@with_appcontext
def run_command(host: str, port: int, demo: bool) -> None:
    """Migrate, then serve the site with the scheduler and webhook worker in this process."""
    from werkzeug.serving import make_server

    from registry import migrate
    from registry.worker.runner import Worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    migrate.upgrade(app)
    if demo:
        from registry.demo import load_demo

        loaded = load_demo(app)
        click.echo("Loaded the demo city." if loaded else "The demo city is already loaded.")
    server = make_server(host, port, app, threaded=True)
    worker = Worker(app)
    worker.start()
    _freeze_what_start_made()
    url = f"http://{host}:{server.server_port}/"
    click.echo(f"Daylight is running at {url}  (API: {url}api/v1/docs; Ctrl-C stops)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        worker.stop()


@main.command("worker", with_appcontext=False)
def worker_command() -> None:
    """Run the scheduler and webhook delivery alone (several may run against PostgreSQL)."""
    import gc
    import signal
    import threading

    # Registered on the group itself, so that the full web app is never built: a worker
    # that restarts catches up on what it missed as fast as the interpreter allows, and
    # opens any period that fell due while it was down before loading anything else.
    # The imports on the way make many long-lived objects and little garbage, so the
    # cyclic collector is held off until then (about 7% of that time); what they made is
    # then frozen out of later collections.
    gc.disable()
    try:
        from registry import create_app
        from registry.worker.jobs import run_due_transitions

        try:
            app = create_app({"SERVE_HTTP": False})
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        run_due_transitions(app, app.extensions["daylight.clock"])
    finally:
        gc.freeze()
        gc.enable()

    from registry.worker.runner import Worker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = Worker(app)
    worker.start()
    _freeze_what_start_made()
    click.echo("Daylight worker started.")
    sys.stdout.flush()
    try:
        stop.wait()
    finally:
        worker.stop()


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply every migration (Alembic)."""
    from registry import migrate

    migrate.upgrade(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo("The database is up to date.")


def _require_schema() -> None:
    """Stop with what to do, not a database traceback, when the schema is not there yet."""
    from sqlalchemy.exc import SQLAlchemyError

    from registry import migrate

    try:
        missing = migrate.schema_gaps(
            current_app._get_current_object())  # type: ignore[attr-defined]
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"The database cannot be reached: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}") from exc
    if missing:
        raise click.ClickException(
            "The database has not been set up, or not for this version of Daylight: "
            "run 'daylight db upgrade' first.")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens."""


@tokens_group.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "reviewer", "staff", "partner"]))
@click.option("--name", required=True, help="Who or what the token is for.")
@click.option("--department", "department", default=None, help="Department slug (staff).")
@with_appcontext
def tokens_create(role: str, name: str, department: str | None) -> None:
    """Create a token. The token itself is the last line printed, and is shown only once."""
    _require_schema()
    from registry.auth.services import TokenError, create_token
    from registry.database import transaction

    try:
        with transaction() as session:
            token, secret = create_token(session, role=role, name=name, now=_now(),
                                         department_slug=department)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created token {token.id} ({token.role}) for {token.name}. "
               "Keep it now: it is not stored and cannot be shown again.")
    click.echo(secret)


@tokens_group.command("list")
@with_appcontext
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    _require_schema()
    from registry.auth.services import list_tokens
    from registry.database import transaction

    with transaction() as session:
        tokens = list_tokens(session)
        for token in tokens:
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            click.echo(f"{token.id}\t{token.role}\t{token.prefix}…\t{state}\t{token.name}")
    if not tokens:
        click.echo("No tokens yet. Create one with: "
                   "daylight tokens create --role admin --name NAME")


@tokens_group.command("revoke")
@click.argument("token_id")
@with_appcontext
def tokens_revoke(token_id: str) -> None:
    """Revoke a token at once."""
    _require_schema()
    from registry.auth.services import owned_endpoints, revoke_token
    from registry.database import transaction

    with transaction() as session:
        token = revoke_token(session, token_id, now=_now())
        endpoints = owned_endpoints(session, token_id) if token is not None else []
    if token is None:
        raise click.ClickException(f"No token {token_id!r}.")
    click.echo(f"Revoked {token_id}.")
    if endpoints:
        click.echo(f"Its {len(endpoints)} webhook endpoint(s) are disabled: "
                   f"{', '.join(endpoints)}. An admin token can enable them again "
                   "(PATCH /api/v1/webhook-endpoints/ID with \"enabled\": true).")


@click.group("departments")
def departments_group() -> None:
    """City departments."""


@departments_group.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@with_appcontext
def departments_add(slug: str, name: str) -> None:
    """Add a department."""
    _require_schema()
    from marshmallow import ValidationError

    from registry.database import transaction
    from registry.departments.routes import DepartmentSchema
    from registry.departments.services import add_department
    from registry.errors import Conflict, flatten_messages

    if not name.strip():
        raise click.ClickException("The name cannot be blank.")
    try:
        # The API's own checks (the slug's form, both lengths): a name longer than its
        # column would otherwise fail in PostgreSQL, after the transaction began.
        DepartmentSchema().load({"slug": slug, "name": name})
    except ValidationError as exc:
        raise click.ClickException("; ".join(
            f"{field}: {' '.join(messages)}"
            for field, messages in flatten_messages(exc.messages).items())) from exc
    try:
        with transaction() as session:
            add_department(session, slug=slug, name=name, now=_now())
    except Conflict as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"Added department {slug}.")


@click.group("import")
def import_group() -> None:
    """Load existing data."""


@import_group.command("technologies")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--submit", is_flag=True,
              help="Submit each one (public and assessed at once) instead of leaving drafts.")
@with_appcontext
def import_technologies(file: Any, submit: bool) -> None:
    """Load an inventory from CSV, all or nothing (format: docs/sample-inventory.csv)."""
    _require_schema()
    from registry.database import transaction
    from registry.errors import Problem
    from registry.importer import ImportFailed, create_rows, read_rows, validate_rows

    try:
        with transaction() as session:
            rows = validate_rows(session, read_rows(file))
            with click.progressbar(length=len(rows), label="Importing") as bar:
                create_rows(session, rows, submit=submit, now=_now(),
                            each=lambda _technology: bar.update(1))
    except ImportFailed as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(
            f"Nothing was imported: fix the {len(exc.errors)} problem(s) above and run the "
            "import again.") from exc
    except Problem as exc:
        raise click.ClickException(f"Nothing was imported: {exc.detail}") from exc
    state = "submitted for review" if submit else "saved as drafts"
    click.echo(f"Imported {len(rows)} technologies, {state}.")


COMMANDS = (run_command, db_group, tokens_group, departments_group,
            import_group)


def register_commands(app: Flask) -> None:
    """Attach Daylight's commands to ``app.cli`` (the ``daylight`` group finds them there)."""
    for command in COMMANDS:
        app.cli.add_command(command)

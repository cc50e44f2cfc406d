"""The command line: tokens, departments, migrations."""

from __future__ import annotations

from sqlalchemy import select

from registry.auth.models import ApiToken


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

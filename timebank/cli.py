"""The ``timebank`` command line: migrate, organisations, imports, demo data, verify, serve.

Each command imports what it needs when it runs, so none waits for the others' imports:
``timebank serve``, for one, plans the run and checks the schema before it imports the
app (the metrics' directory must be set by then: see ``serve``), and ``--help`` answers
at once.
"""

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from timebank.config import get_settings

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.ext.asyncio import AsyncConnection

    from timebank.db import Database
    from timebank.db.schema_version import SchemaStatus

T = TypeVar("T")
console = Console(soft_wrap=True)  # long paths and messages stay on one line in logs
err_console = Console(stderr=True, soft_wrap=True)


def _with_database(work: "Callable[[Database], Awaitable[T]]") -> T:
    """Run ``work`` against the configured database, then close it.

    Returns once the threads the database started have ended, not only been told to end:
    aiosqlite runs each SQLite connection on a thread of its own, which answers the close
    and only then returns. ``serve`` forks its workers only from a process with no other
    thread, and its schema check comes through here just before (on a busy machine the
    closing thread could still be there, and the workers were spawned instead)."""
    from timebank.db import create_database

    async def main() -> T:
        db = create_database(get_settings().database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    threads_before = set(threading.enumerate())
    try:
        return asyncio.run(main())
    finally:
        for thread in set(threading.enumerate()) - threads_before:
            thread.join(timeout=_THREAD_END_SECONDS)


# A bound, not a wait: a closed connection's thread ends at once; one that does not (a
# connection left open by a fault) must not hold the command up for ever.
_THREAD_END_SECONDS = 5.0


def _run(work: "Callable[[Database], Awaitable[T]]") -> T:
    """``_with_database``, with a refusal or a database not yet set up told as one line."""
    from sqlalchemy.exc import DBAPIError

    from timebank.db.retry import sqlstate
    from timebank.ledger import errors

    try:
        return _with_database(work)
    except errors.LedgerError as exc:
        err_console.print(f"[red]Refused:[/] {exc.message}")
        sys.exit(1)
    except DBAPIError as exc:
        if "no such table" in str(exc.orig) or sqlstate(exc) == "42P01":  # undefined_table
            err_console.print("[red]The database is not set up yet:[/] run `timebank migrate` first.")
            sys.exit(1)
        raise


def _password(prompt: str) -> str:
    """From TIMEBANK_INITIAL_PASSWORD, else asked for twice without echo."""
    from_env = os.environ.get("TIMEBANK_INITIAL_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for a password: set TIMEBANK_INITIAL_PASSWORD")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Timebank: a double-entry time-bank ledger. Settings come from TIMEBANK_* variables."""


@main.command()
@click.option("--check", is_flag=True, help="Change nothing: exit 1 unless the database is at the latest migration.")
def migrate(check: bool) -> None:
    """Bring the database schema up to date (safe to run repeatedly)."""
    from timebank.db.migrate import upgrade

    settings = get_settings()
    if check:
        status = _schema_status()
        if not status.is_current:
            err_console.print(f"[red]Not current:[/] {status.describe()}.")
            sys.exit(1)
        console.print(f"Up to date: {status.describe()} ({_describe(settings.database_url)}).")
        return
    upgrade(settings.database_url)
    console.print(f"Database is up to date ({_describe(settings.database_url)}).")


def _schema_status() -> "SchemaStatus":
    from timebank.db.migrate import schema_status

    return _on_a_connection(schema_status)


def _schema_status_unless_current() -> "SchemaStatus | None":
    """``_schema_status``, but None at once for a current database, without importing Alembic
    (its 10 MB would stay in the one worker, or in every forked one: db/schema_version.py)."""
    from timebank.db.schema_version import schema_status_unless_current

    return _on_a_connection(schema_status_unless_current)


def _on_a_connection(check: "Callable[[AsyncConnection], Awaitable[T]]") -> T:
    async def work(db: "Database") -> T:
        async with db.engine.connect() as conn:
            return await check(conn)

    # Not _run: its refusals come from the ledger, which ``serve``'s parent need not import.
    return _with_database(work)


@main.group()
def org() -> None:
    """Organisations."""


@org.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The organisation's name, as people know it.")
@click.option("--coordinator", "coordinator_username", required=True, help="Username of the first coordinator.")
@click.option("--coordinator-name", default=None, help="The coordinator's display name (default: the username).")
@click.option("--timezone", default="Europe/London", show_default=True)
@click.option("--min-balance-hours", default="-20", show_default=True, help="Lowest balance a member may reach.")
def org_create(
    slug: str, name: str, coordinator_username: str, coordinator_name: str | None, timezone: str, min_balance_hours: str
) -> None:
    """Create an organisation with its agency account, pot and first coordinator."""
    from timebank.ledger import hours_to_minutes
    from timebank.orgs.service import FirstCoordinator, create_organisation

    min_balance = hours_to_minutes(min_balance_hours)
    password = _password(f"Password for {coordinator_username}")

    async def work(db: "Database") -> None:
        await create_organisation(
            db,
            slug=slug,
            name=name,
            timezone=timezone,
            min_balance_minutes=min_balance,
            first_coordinator=FirstCoordinator(
                display_name=coordinator_name or coordinator_username, username=coordinator_username, password=password
            ),
            changed_by=None,
        )

    _run(work)
    console.print(f"Created [bold]{name}[/] ({slug}) with coordinator [bold]{coordinator_username}[/].")


@main.group()
def admin() -> None:
    """Site administrators (they create organisations)."""


@admin.command("create")
@click.argument("username")
def admin_create(username: str) -> None:
    """Create a site administrator (password from a prompt or TIMEBANK_INITIAL_PASSWORD)."""
    from timebank.ledger import errors
    from timebank.members.service import add_login, new_login

    password = _password(f"Password for {username}")
    try:  # the login's rules, and its hash before the transaction, as for every login
        login = asyncio.run(new_login(username, password))
    except errors.InvalidEntry as exc:
        raise click.UsageError(exc.message) from None

    async def work(db: "Database") -> None:
        async with db.session() as session:
            await add_login(session, login, None, is_site_admin=True)
            await session.commit()

    _run(work)
    console.print(f"Created site administrator [bold]{username}[/].")


@main.group()
def member() -> None:
    """Members."""


@member.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org_slug", required=True, help="Slug of the organisation to import into.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if some are rejected.")
def member_import(csv_file: Path, org_slug: str, skip_invalid: bool) -> None:
    """Import members (and opening balances) from a CSV file, all or nothing.

    Columns: display_name (required), email, joined_on, role, opening_balance_hours.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from timebank.members.importer import ImportFileError, import_members, parse_member_csv
    from timebank.orgs.service import get_organisation_by_slug

    try:
        parsed = parse_member_csv(csv_file.read_bytes())
    except ImportFileError as exc:
        err_console.print(f"[red]Cannot import {csv_file.name}:[/] {exc}")
        sys.exit(1)
    if parsed.rejected:
        table = Table("line", "why it was rejected", title=f"{len(parsed.rejected)} rejected row(s)")
        for rejected in parsed.rejected:
            table.add_row(str(rejected.line), rejected.reason)
        err_console.print(table)
        if not skip_invalid:
            err_console.print("Nothing was imported. Fix these rows, or pass --skip-invalid to import the rest.")
            sys.exit(1)

    async def work(db: "Database") -> Any:
        organisation = await get_organisation_by_slug(db, org_slug)
        assert organisation.id is not None
        with Progress(
            TextColumn("Importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
        ) as progress:
            task = progress.add_task("import", total=len(parsed.rows))
            return await import_members(db, organisation.id, parsed, on_row=lambda: progress.advance(task))

    result = _run(work)
    console.print(
        f"Imported {result.imported} member(s) into {org_slug}"
        f"{' (read as ' + parsed.encoding + ')' if parsed.encoding != 'utf-8' else ''}; "
        f"{len(parsed.rejected)} row(s) rejected."
    )


@member.command("export")
@click.argument("member_id", type=int)
@click.option("--org", "org_slug", required=True, help="Slug of the member's organisation.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
def member_export(member_id: int, org_slug: str, output: Path | None) -> None:
    """Everything held about one member (a subject access request), as readable JSON."""
    import json

    from timebank.orgs.service import get_organisation_by_slug
    from timebank.privacy.service import export_member

    async def work(db: "Database") -> dict[str, Any]:
        organisation = await get_organisation_by_slug(db, org_slug)
        assert organisation.id is not None
        return await export_member(db, organisation.id, member_id)

    document = _run(work)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(
        f"Wrote everything held about member {member_id} of {org_slug} to {output}: "
        f"{len(document['transactions'])} transactions, login: {'yes' if document['login'] else 'none'}, "
        f"records in other tables: {sum(len(rows) for rows in document['other_records'].values())}."
    )


@member.command("erase")
@click.argument("member_id", type=int)
@click.option("--org", "org_slug", required=True, help="Slug of the member's organisation.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def member_erase(member_id: int, org_slug: str, yes: bool) -> None:
    """Erase a member who has left: name, email, login and descriptions go; their postings stay."""
    from timebank.members.service import get_member
    from timebank.orgs.service import get_organisation_by_slug
    from timebank.privacy.service import erase_member, erased_name

    async def name_of(db: "Database") -> tuple[int, str]:
        organisation = await get_organisation_by_slug(db, org_slug)
        assert organisation.id is not None
        return organisation.id, (await get_member(db, organisation.id, member_id)).display_name

    organisation_id, name = _run(name_of)
    if not yes:
        typed = click.prompt(f"This cannot be undone. Type the member's name ({name}) to erase them")
        if " ".join(typed.split()).casefold() != name.casefold():
            err_console.print("The name does not match; nothing was erased.")
            sys.exit(1)

    async def work(db: "Database") -> Any:
        return await erase_member(db, organisation_id, member_id, by_user_id=None)

    done = _run(work)
    console.print(
        f"Erased member {member_id} of {org_slug}: now '{erased_name(member_id)}'; "
        f"{done.descriptions_removed} description(s) removed; login {done.login}; "
        f"{done.sign_in_records_removed} sign-in record(s) removed. Their postings and balance stay."
    )


@main.command()
def demo() -> None:
    """Load the demo day centre (does nothing if it is already loaded)."""
    from rich.table import Table

    from timebank.demo import DEMO_LOGINS, load_demo

    result = _run(load_demo)
    if result.created:
        console.print(f"Loaded the demo centre '{result.organisation_slug}' with {result.exchanges} transactions.")
    else:
        console.print(f"The demo centre '{result.organisation_slug}' is already loaded; nothing changed.")
    table = Table("username", "password", "who", title="Demo sign-ins")
    for username, password, name, role in DEMO_LOGINS:
        table.add_row(username, password, f"{name} ({role.value})" if role else name)
    console.print(table)


@main.command()
def verify() -> None:
    """Check every ledger invariant over the whole database; exit 1 if any fails."""
    from timebank.ledger.verify import verify_ledger

    problems = _run(verify_ledger)
    if problems:
        for problem in problems:
            err_console.print(f"[red]FAIL[/] {problem}")
        err_console.print(f"{len(problems)} problem(s) found.")
        sys.exit(1)
    console.print("Ledger verified: every invariant holds.")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--prune", is_flag=True, help="With PATH a directory: then delete the backups retention drops.")
@click.option("--keep-daily", default=14, show_default=True, help="Days whose newest backup --prune keeps.")
@click.option("--keep-weekly", default=8, show_default=True, help="Weeks whose newest backup --prune keeps.")
def backup(path: Path, prune: bool, keep_daily: int, keep_weekly: int) -> None:
    """Write a consistent backup while the service runs (PATH: a file, or a directory to name one in)."""
    import datetime as dt

    from timebank.operations.backup import (
        BackupError,
        backup_file_name,
        create_backup,
        prune_backups,
        write_status,
    )

    settings = get_settings()
    directory = path if path.is_dir() else None
    if prune and directory is None:
        raise click.UsageError("--prune needs PATH to be the directory the backups are kept in")
    target = path / backup_file_name(settings.database_url, dt.datetime.now(dt.UTC)) if directory else path
    try:
        result = create_backup(settings.database_url, target, pg_dump=settings.pg_dump)
    except BackupError as exc:
        err_console.print(f"[red]Backup failed:[/] {exc}")
        sys.exit(1)
    write_status(settings.backup_status_file, result)
    console.print(
        f"Backed up {result.transactions:,} transactions from {_describe(settings.database_url)} "
        f"to {result.path} ({_size(result.bytes)}) in {result.seconds:.2f} s."
    )
    console.print(f"Recorded it in {settings.backup_status_file}.")
    if directory is not None and prune:
        removed = prune_backups(directory, daily=keep_daily, weekly=keep_weekly)
        console.print(
            f"Pruned {len(removed)} old backup(s) (keeping the newest of each of {keep_daily} days "
            f"and {keep_weekly} weeks)" + "".join(f"\n  removed {p.name}" for p in removed)
        )


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Restore a backup into the configured database, which must be empty."""
    from timebank.operations.backup import BackupError, restore_backup

    settings = get_settings()
    try:
        result = restore_backup(settings.database_url, path, pg_restore=settings.pg_restore)
    except BackupError as exc:
        err_console.print(f"[red]Restore refused:[/] {exc}")
        sys.exit(1)
    console.print(
        f"Restored {result.transactions:,} transactions from {path} ({_size(result.bytes)}) "
        f"into {_describe(settings.database_url)} in {result.seconds:.2f} s."
    )
    status = _schema_status()
    if not status.is_current:
        console.print(f"Next: {status.describe()}.")
    console.print("Check it with `timebank verify`.")


def _progress(verb: str) -> "Progress":
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(verb), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=False
    )


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def dump(path: Path) -> None:
    """Write everything that matters to PATH (JSON lines), to load into another database."""
    import time

    from timebank.operations.transfer import TransferError, dump_database, open_dump

    settings = get_settings()
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")

    async def work(db: "Database") -> Any:
        with _progress("Dumping") as progress, open_dump(partial, "w") as out:
            task = progress.add_task("dump", total=None)
            return await dump_database(
                db,
                out,
                on_total=lambda total: progress.update(task, total=total),
                on_rows=lambda rows: progress.advance(task, rows),
            )

    try:
        result = _run(work)
    except TransferError as exc:
        partial.unlink(missing_ok=True)
        err_console.print(f"[red]Dump refused:[/] {exc}")
        sys.exit(1)
    partial.replace(path)
    console.print(
        f"Dumped {sum(result.rows.values()):,} rows of {len(result.rows)} tables ({result.transactions:,} "
        f"transactions, schema {result.revision}) from {_describe(settings.database_url)} to {path} "
        f"({_size(path.stat().st_size)}) in {time.perf_counter() - started:.2f} s."
    )


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(path: Path) -> None:
    """Load a dump into the configured database, which must be empty and migrated."""
    import time

    from timebank.operations.transfer import TransferError, load_database, open_dump, read_header

    settings = get_settings()
    started = time.perf_counter()
    try:
        with open_dump(path, "r") as source:
            total = sum(read_header(source)["tables"].values())
    except TransferError as exc:
        err_console.print(f"[red]Load refused:[/] {exc}")
        sys.exit(1)

    async def work(db: "Database") -> Any:
        with _progress("Loading") as progress, open_dump(path, "r") as source:
            task = progress.add_task("load", total=total)
            return await load_database(db, source, on_rows=lambda rows: progress.advance(task, rows))

    try:
        result = _run(work)
    except TransferError as exc:
        err_console.print(f"[red]Load refused:[/] {exc}")
        sys.exit(1)
    console.print(
        f"Loaded {sum(result.rows.values()):,} rows of {len(result.rows)} tables ({result.transactions:,} "
        f"transactions) into {_describe(settings.database_url)} in {time.perf_counter() - started:.2f} s. "
        "Check it with `timebank verify`."
    )


@main.command()
@click.option("--host", default=None, help="Address to listen on (TIMEBANK_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (TIMEBANK_PORT, default 8000).")
@click.option(
    "--workers", type=int, default=None, help="Worker processes (TIMEBANK_WORKERS; default 1, or 2 with --production)."
)
@click.option(
    "--production",
    is_flag=True,
    help="Behind a reverse proxy: environment=production (a real TIMEBANK_SECRET_KEY required), "
    "2 workers on PostgreSQL, one only on SQLite. See docs/operations.md.",
)
def serve(host: str | None, port: int | None, workers: int | None, production: bool) -> None:
    """Serve the web app and API."""
    from sqlalchemy.exc import DBAPIError

    from timebank.serving import RefusedToServe, plan_server, run_server

    # The plan first: it sets the metrics' directory for several workers, which must be
    # in the environment before the schema check imports prometheus-client.
    try:
        plan = plan_server(host=host, port=port, workers=workers, production=production)
    except RefusedToServe as exc:
        err_console.print(f"[red]Not serving:[/] {exc}", soft_wrap=True)
        sys.exit(2)
    try:
        status = _schema_status_unless_current()
    except (OSError, DBAPIError) as exc:  # unreachable: start anyway, answer 503 until it is back
        err_console.print(f"[yellow]Database unreachable ({type(exc).__name__}); the schema is checked at start-up.[/]")
    else:
        if status is not None:
            plan.discard()
            err_console.print(f"[red]Timebank will not start:[/] {status.describe()}.")
            sys.exit(1)
    run_server(plan)


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    raise AssertionError


def _describe(url: str) -> str:
    from timebank.serving import describe_database

    return describe_database(url)

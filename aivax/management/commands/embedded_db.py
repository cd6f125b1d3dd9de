"""Start, stop or locate the embedded PostgreSQL (for people running the pieces by hand)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from aivax import embedded, env


class Command(BaseCommand):
    help = "Manage the embedded PostgreSQL with pgvector kept in .data/postgres."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status", "url"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "start":
            pg = embedded.start_postgres(env.EMBEDDED_PG_DIR, database=env.EMBEDDED_DB_NAME)
            self.stdout.write(f"running; DATABASE_URL={pg.url(env.EMBEDDED_DB_NAME)}")
        elif action == "stop":
            embedded.stop_postgres(env.EMBEDDED_PG_DIR)
            self.stdout.write("stopped")
        elif action == "status":
            self.stdout.write("running" if embedded.postgres_running(env.EMBEDDED_PG_DIR) else "stopped")
        else:
            self.stdout.write(env.embedded_database_url())

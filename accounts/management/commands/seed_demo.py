"""Idempotent demo data for the embedded stack: an organization, its owner, a gateway, and a fresh API key.

The key is printed once and never stored; each run revokes the previous demo key and prints a new one.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts.models import ApiKey, Membership, Organization, Role, Scope, User
from accounts.services import api_key_create, api_key_revoke, organization_create, user_create
from aivax.signals import demo_seeded

DEMO_EMAIL = "owner@demo.aivax.local"
DEMO_PASSWORD = "aivax-demo-password"
DEMO_KEY_NAME = "demo key (rotated by seed_demo)"


class Command(BaseCommand):
    help = "Create (idempotently) the demo organization, owner and gateway; print a fresh API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000/api/v1")
        parser.add_argument("--local-model-url", default="", help="OpenAI-compatible URL of the local model")

    def handle(self, *args: Any, base_url: str, local_model_url: str, **options: Any) -> None:
        with transaction.atomic():
            owner = User.objects.filter(email=DEMO_EMAIL).first()
            if owner is None:
                owner = user_create(
                    email=DEMO_EMAIL,
                    password=DEMO_PASSWORD,
                    username="demo-owner",
                    is_staff=True,
                    is_superuser=True,
                )
            org = Organization.objects.filter(slug="demo").first()
            if org is None:
                org = organization_create(name="Demo", owner=owner, slug="demo")
            Membership.objects.get_or_create(user=owner, organization=org, defaults={"role": Role.OWNER})
            for old in ApiKey.objects.for_org(org).filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
                api_key_revoke(key=old)
            created = api_key_create(organization=org, name=DEMO_KEY_NAME, scopes=list(Scope.values), created_by=owner)
            results = demo_seeded.send(
                sender=self.__class__, organization=org, owner=owner, local_model_url=local_model_url
            )
        model = next((str(value) for _, value in results if value), "<your-gateway-id>")
        key = created.raw
        self.stdout.write(self.style.SUCCESS("\nDemo organization ready."))
        self.stdout.write(f"  console login : {DEMO_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(f"  API key       : {key}   (shown once; a new one is made at every start)")
        self.stdout.write(f"  gateway model : {model}\n")
        self.stdout.write("curl:\n")
        self.stdout.write(
            f"  curl {base_url}/chat/completions -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' "
            f'-d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}\'\n'
        )
        self.stdout.write("OpenAI SDK (Python):\n")
        self.stdout.write(
            "  from openai import OpenAI\n"
            f'  client = OpenAI(base_url="{base_url}", api_key="{key}")\n'
            f'  reply = client.chat.completions.create(model="{model}",\n'
            '      messages=[{"role": "user", "content": "Hello!"}])\n'
            "  print(reply.choices[0].message.content)\n"
        )

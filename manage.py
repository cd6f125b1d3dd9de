#!/usr/bin/env python
import os
import sys


def main() -> None:
    # A developer's tool: the dev settings unless told otherwise (the Docker image and compose set production).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

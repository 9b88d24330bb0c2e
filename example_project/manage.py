#!/usr/bin/env python
"""Django's command-line utility for the example shop."""

import os
import sys
from pathlib import Path


def main() -> None:
    # Run from a checkout without installing: the app lives one directory up.
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

"""`python -m rpm_cli ...` is `rpm ...` (on Red Hat-family systems /usr/bin/rpm is the package manager)."""
import sys

from rpm_cli.cli import main

sys.exit(main())

"""``python -m waylay_jobs``: the ``waylay-jobs`` command (see :mod:`waylay_jobs.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

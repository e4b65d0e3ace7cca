"""``python -m drivevla.cli``: the ``drivevla`` command."""

from drivevla.cli import main

raise SystemExit(main())

"""``python -m steerage_ray`` is the ``steerage`` command."""

import sys

from steerage_ray.cli import main

sys.exit(main())

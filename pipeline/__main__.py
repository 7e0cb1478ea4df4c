"""``python -m pipeline`` is the ``newswash`` command."""

import sys

from pipeline.cli import main

sys.exit(main())

"""python -m bayeux.client: the same as the `bayeux-client` command."""

import sys

from .cli import main

sys.exit(main())

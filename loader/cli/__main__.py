"""`python -m loader.cli`: the same as the `logins` command."""

import sys

from loader.cli import main

sys.exit(main())

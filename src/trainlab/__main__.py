"""`python -m trainlab` is the `trainlab` command."""
import sys

from .cli import main

sys.exit(main())

"""The old name of :mod:`gruinspect.listing` (the `list` command), kept for one release."""
import sys

from . import listing

sys.modules[__name__] = listing

"""The old name of :mod:`gruinspect.splitting` (the `split` command), kept for one release."""
import sys

from . import splitting

sys.modules[__name__] = splitting

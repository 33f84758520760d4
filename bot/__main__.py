"""`python -m bot` is the `zhiban` command."""

import gc

# Importing allocates hundreds of thousands of objects that all live on, and the cyclic
# collector would look through them again and again (about a tenth of the imports' time): it
# is paused while the command line loads, and `zhiban run` pauses it again while it loads the
# bot (bot/cli.py).
gc.disable()
from bot.cli import entry  # noqa: E402

gc.enable()
entry()

"""The ``hebm`` command: ``plugins``, ``config``, ``train``, ``sample``, ``evaluate``, ``run``, ``compare``.

A user error (bad config, unknown name, unreadable checkpoint, diverging sampler, missing file,
unwritable folder) is printed as a single line ``hebm: error: <message>`` on stderr with exit
status 2, never as a traceback (:mod:`~hebm_core.cli.errors`).
"""

from hebm_core.cli.commands import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]

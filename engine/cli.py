"""`energyctl`: the command line. Thin: parse, call the library, render, exit.

Library code never prints or exits; this module does both. Exit codes: 0 success (for
`plan --detailed-exitcode`: nothing to do), 1 error, 2 purchases pending.
"""

from __future__ import annotations

import click

from engine import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="energyctl")
def main() -> None:
    """Declarative TRON energy policies: keep watched addresses supplied with energy."""

"""`python -m bench.unscored serve --port P`: the service exactly as `python -m bot serve`, except
that the dispatcher's after-hook (domain/leads.py: scoring, routing, opportunities) does nothing.

For benchmarks only: bench/leads.py measures the booth mix with and without scoring in one run,
so that what scoring costs each signal is a figure rather than a guess. The hook is still
called (and the signal still marked as waiting for it), so only the work inside it is missing.
"""

from __future__ import annotations

import sys

from bot.signals import Outcome, Signal
from domain.leads import Leads


async def _nothing(self: Leads, signal: Signal, outcome: Outcome) -> None:
    return None


def main() -> int:
    Leads.after = _nothing  # type: ignore[method-assign]
    from bot.cli import main as bot_main

    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

"""An API key read from the environment variable a flag names, never from the flag itself (a key
on the command line is visible to every user of the machine through `ps`)."""

from __future__ import annotations

import os

from rewardforge.errors import UserError


def api_key_from_env(variable: str, flag: str) -> str:
    """The key held in `variable`; a one-line error naming `flag` when it is empty or unset."""
    key = os.environ.get(variable)
    if not key:
        raise UserError(
            f"{flag} {variable}: that environment variable is empty or unset. Export the key "
            f"first, e.g. export {variable}=$(openssl rand -hex 16) for a new one."
        )
    return key

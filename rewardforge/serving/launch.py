"""`serve()`: the rules a server must pass before it listens, then uvicorn over the app.

A server that other machines can reach needs an API key unless the user says `--insecure`; the
key comes from an environment variable, never from a flag.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from rewardforge.api_key import api_key_from_env
from rewardforge.errors import UserError
from rewardforge.serving.config import ServerSettings


def serve(settings: ServerSettings) -> None:
    """Check the address and key, load the model and serve it until the process is stopped."""
    import uvicorn

    from rewardforge.scoring.judge import Judge
    from rewardforge.scoring.reward_model import RewardModel, recipe_before_loading
    from rewardforge.serving.app import create_app

    api_key = server_api_key(settings)
    refuse_an_address_in_use(settings.host, settings.port)
    recipe, resolved = recipe_before_loading(
        settings.model, settings.reward_format, settings.template
    )
    model: RewardModel | Judge
    if recipe.judge is not None and recipe.judge.style == "reasoning":  # it writes: no pass
        assert resolved is not None
        model = Judge.load_resolved(resolved, settings.model)
    else:
        model = RewardModel.load_resolved(resolved, settings.model, aggregate=settings.aggregate)
    app = create_app(model, settings, api_key=api_key)
    uvicorn.run(app, host=settings.host, port=settings.port)


def server_api_key(settings: ServerSettings) -> str | None:
    """The key every request will need, or None; refuses a reachable server without one."""
    if not settings.model:
        raise UserError("serve needs --model DIR; see `rewardforge serve -h`.")
    api_key = None
    if settings.api_key_env is not None:
        api_key = api_key_from_env(settings.api_key_env, "--api-key-env")
    if api_key is None and not settings.insecure and not is_loopback(settings.host):
        raise UserError(
            f"--host {settings.host} lets other machines call the server, and it has no API "
            "key. Pass --api-key-env VAR (and export the key in VAR), or --insecure to serve "
            "without one."
        )
    return api_key


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine. A host name may resolve
    anywhere, so only `localhost` and loopback addresses count."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_an_address_in_use(host: str, port: int) -> None:
    """A port out of range, or one something already listens on, in one line before the model
    loads (uvicorn would say it only after, with its own traceback)."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {port}.")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is in use: stop what listens there, or pick another --port."
            ) from None
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}).") from None

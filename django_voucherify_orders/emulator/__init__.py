"""A faithful in-memory Voucherify (Orders, Exports, Async Actions) for tests and demos.

    emu = Emulator(app_id="test-app-id", secret_key="test-secret-key")
    with emu.mock():                      # requests to https://api.voucherify.io hit emu
        ...
    with emu.serve() as server:           # or a real HTTP server: server.url
        ...
    python -m django_voucherify_orders.emulator --port 8787     # from a shell

pytest fixtures `voucherify_emulator` and `voucherify_emulator_server` come with the
package (see pytest_plugin.py). Standard library only; `responses` is imported lazily by
the responses door. Nothing here imports Django or the rest of django_voucherify_orders.
"""

from .app import Emulator
from .faults import DroppedConnection, Faults
from .response import EmulatorResponse, RequestRecord

__all__ = ["DroppedConnection", "Emulator", "EmulatorResponse", "Faults", "RequestRecord"]

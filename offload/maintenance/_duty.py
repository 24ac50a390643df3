"""What a maintenance duty is: a named piece of work the leader runs every so often."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offload.app._offload import Offload


class Duty(abc.ABC):
    """One leader-only duty; `run` returns how many jobs it touched, for logs and stats."""

    name = "duty"

    def __init__(self, every: float) -> None:
        self.every = every
        self.next_at = 0.0

    @abc.abstractmethod
    def run(self, app: Offload) -> int:
        """Do one round of the duty."""

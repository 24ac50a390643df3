"""Worker processes: the fetch loop, the executor, heartbeats, and the supervisor."""

from offload.worker._executor import Executor, Outcome
from offload.worker._lifeline import watch_supervisor
from offload.worker._process import Worker
from offload.worker._supervisor import Supervisor

__all__ = ["Executor", "Outcome", "Supervisor", "Worker", "watch_supervisor"]

"""The names every layer shares for a job's life: its states and its delivery guarantees.

They sit on the ground floor so that the store, the job declarations, the server and the CLI
speak of a job's state with the same words without importing one another.
"""

from __future__ import annotations

STATES = (
    "scheduled",
    "available",
    "running",
    "completed",
    "retryable",
    "dead",
    "cancelled",
    "shed",
)
FINAL_STATES = ("completed", "dead", "cancelled", "shed")
DELIVERIES = ("at_least_once", "at_most_once")

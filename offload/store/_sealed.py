"""Re-encrypting stored jobs (part of the contract): the rows of encrypted jobs, page by page,
and their arguments and result written back, each only if it is still what was read.

Jobs of an encrypted type record it in their meta (`offload.encrypted`, offload/jobs/_encrypt.py)
and hold sealed values in their arguments and result; `offload keys rotate` reads them here and
seals again, with the newest key, what an older key sealed. The write is a compare-and-set on
the stored arguments and result: a row that changed since it was read (a worker stored its
result meanwhile, say) is left as it is, so the rewrite never undoes a write and needs no lease.
A running job's worker holds its opened arguments in memory: rewriting them under it changes
nothing it sees. Each engine implements these in its `_sealed.py` with the SQL of `sealed.sql`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SEALED_META = "offload.encrypted"  # the meta key that marks an encrypted job


@dataclass(frozen=True, slots=True)
class SealedRow:
    """An encrypted job's stored arguments, result and meta (decoded); `stored` is what the
    store holds of the arguments and the result, to name them in `Reseal`."""

    id: int
    kind: str
    args: dict[str, Any]
    result: Any
    meta: dict[str, Any]
    stored: tuple[Any, Any]


@dataclass(frozen=True, slots=True)
class Reseal:
    """New arguments and result for a job, written only if it still holds `row.stored`."""

    row: SealedRow
    args: dict[str, Any]
    result: Any


class SealedOps(abc.ABC):
    """The re-encryption family."""

    @abc.abstractmethod
    def job_sealed_page(self, after_id: int, limit: int) -> list[SealedRow]:
        """Up to `limit` encrypted jobs with ids above `after_id`, by id; a row whose
        arguments, result or meta cannot be decoded is left out."""

    @abc.abstractmethod
    def job_reseal_many(self, reseals: Sequence[Reseal]) -> int:
        """Write each job's new arguments and result, in one transaction, where the job still
        holds what was read; how many were written."""

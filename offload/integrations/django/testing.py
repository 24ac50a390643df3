"""offload's test helpers (`offload.testing`) for Django tests, on the project's app.

    class SignupTests(OffloadTestMixin, TransactionTestCase):
        def test_welcome(self):
            self.client.post("/signup", {"email": "ada@example.com"})
            self.assertEnqueued("send_welcome", args={"email": "ada@example.com"})
            self.assertEqual(self.drain_jobs().completed, 1)

Use `TransactionTestCase` when jobs are enqueued on Django's connection: a `TestCase` holds
each test in a transaction that `drain` (on offload's own connections) cannot see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload import testing
from offload.integrations.django import get_app

__all__ = ["OffloadTestMixin", "drain"]


def drain(queues: Sequence[str] | None = None, **options: Any) -> testing.DrainResult:
    """Run the project's queued jobs inline until none is left (`offload.testing.drain`)."""
    return testing.drain(get_app(), queues, **options)


class OffloadTestMixin:
    """Assertions on the project's enqueued jobs and `drain_jobs()`, for Django test cases."""

    def drain_jobs(
        self, queues: Sequence[str] | None = None, **options: Any
    ) -> testing.DrainResult:
        """Run the queued jobs inline until none is left."""
        return drain(queues, **options)

    def assertEnqueued(self, kind: str, **match: Any) -> list[Any]:  # noqa: N802 - unittest style
        """One job of `kind` is queued (with `args=`, `queue=` … as `assert_enqueued`)."""
        return testing.assert_enqueued(get_app(), kind, **match)

    def assertNotEnqueued(self, kind: str, **match: Any) -> None:  # noqa: N802
        """No job of `kind` (matching) is queued."""
        testing.refute_enqueued(get_app(), kind, **match)

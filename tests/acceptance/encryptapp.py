"""An application with encrypted job types, for the encryption-at-rest tests.

Imported in subprocesses as `encryptapp:app` (its store given with `--url`); `make(url)` declares
the same job types on an app of the test's own.
"""

from __future__ import annotations

from offload import Offload


def make(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=5.0, maintenance_interval=0.2)

    @app.job(encrypt=("card",), max_attempts=2)
    def charge(card: str, amount: int) -> dict[str, object]:
        """Its result quotes the card: encrypted too."""
        return {"charged": card, "amount": amount}

    @app.job(encrypt=True)
    def shout(note: str) -> str:
        return note.upper()

    @app.job(encrypt=("card",), max_attempts=1)
    def decline(card: str, shop: str) -> None:
        """Fails with a message that quotes its encrypted argument."""
        raise ValueError(f"card {card} declined at {shop}")

    return app


app = make()

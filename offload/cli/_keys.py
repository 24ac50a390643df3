"""`offload keys …`: make an encryption key, and re-encrypt stored jobs with the newest one.

    offload keys new                 # prints a key entry: k20261207120000:<base64>
    offload keys rotate              # re-encrypts what older keys encrypted, in batches

Keys come from $OFFLOAD_KEYS (or the file $OFFLOAD_KEYS_FILE names), newest first
(offload/jobs/_keys.py, docs/security.md). `rotate` walks the encrypted jobs by id, a batch per
transaction, while workers go on; a job written meanwhile is left as it is and counted, and a
run that stops can be run again (or resumed with `--after ID`): what is under the newest key is
not written again.
"""

from __future__ import annotations

import click

from offload.cli._common import Failure, friendly_errors, json_option, opened_app, store_options
from offload.cli._output import print_json
from offload.jobs._encrypt import resealed
from offload.jobs._keys import keyring, new_key_entry
from offload.store._sealed import Reseal

BATCH = 200


@click.group("keys", help="Encryption keys of encrypted job types (docs/security.md).")
def keys() -> None:
    pass


@keys.command("new")
@click.option("--id", "key_id", help="The key's name (default: k and the UTC date and time).")
@friendly_errors
def new_key(key_id: str | None) -> None:
    """Print a new random key as an `id:base64` entry: put it first in $OFFLOAD_KEYS."""
    click.echo(new_key_entry(key_id))


@keys.command("rotate")
@click.option("--batch", default=BATCH, show_default=True, help="Jobs read per batch.")
@click.option("--after", default=0, help="Resume after this job id (a run that stopped).")
@store_options
@json_option
@friendly_errors
def rotate(batch: int, after: int, app_path: str | None, url: str | None, as_json: bool) -> None:
    """Re-encrypt, with the newest key, the arguments and results of stored jobs that an older
    key encrypted; afterwards the older keys can be removed."""
    ring = keyring("offload keys rotate re-encrypts stored jobs")
    assert ring is not None
    if batch < 1:
        raise Failure("--batch must be at least 1")
    written = seen = changed = 0
    unreadable: list[int] = []
    last = after
    with opened_app(app_path, url) as app:
        store = app.store
        while True:
            rows = store.job_sealed_page(last, batch)
            if not rows:
                break
            todo: list[Reseal] = []
            for row in rows:
                try:
                    reseal = resealed(row, ring)
                except Exception:  # a missing key, or data that does not open
                    unreadable.append(row.id)
                    continue
                if reseal is not None:
                    todo.append(reseal)
            done = store.job_reseal_many(todo)
            written += done
            changed += len(todo) - done
            seen += len(rows)
            last = rows[-1].id
            if not as_json:
                click.echo(f"up to job {last}: {written} re-encrypted", err=True)
    if as_json:
        print_json(
            {
                "key": ring.newest,
                "seen": seen,
                "reencrypted": written,
                "changed_meanwhile": changed,
                "unreadable": unreadable,
                "last_id": last,
            }
        )
    else:
        click.echo(
            f"{written} of {seen} encrypted jobs re-encrypted with key {ring.newest!r}"
            + (f"; {changed} changed meanwhile (run again)" if changed else "")
        )
    if unreadable:
        shown = ", ".join(map(str, unreadable[:20])) + (" ..." if len(unreadable) > 20 else "")
        raise Failure(
            f"{len(unreadable)} jobs could not be opened with the keys given (their key is "
            f"missing, or their data does not authenticate): {shown}; keep the older keys"
        )
    if changed:
        raise Failure(f"{changed} jobs changed while being re-encrypted; run the command again")

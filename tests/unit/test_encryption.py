"""Encrypted job types: the `encrypt=` option checked at declaration, the key settings checked
with messages that say what to do, sealed values bound to their field, and `import offload`
without the cipher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from offload import ConfigurationError, EncryptionKeyError, Offload, PayloadDecodeError
from offload.jobs._encrypt import ENCRYPT_META, open_args, open_result
from offload.jobs._keys import keyring, new_key_entry, parse_keys

K1 = new_key_entry("k1")


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Offload:
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    monkeypatch.delenv("OFFLOAD_KEYS_FILE", raising=False)
    return Offload(f"sqlite:///{tmp_path / 'jobs.db'}")


def test_encrypt_names_arguments_of_the_job(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="'crad', which is not an argument"):

        @app.job(encrypt=("crad",))
        def charge(card: str, amount: int) -> None: ...

    with pytest.raises(ConfigurationError, match="'a', 'b', which are not arguments"):

        @app.job(encrypt=["a", "b"])
        def other(card: str) -> None: ...

    for bad in ([], [1], "*", 3):
        with pytest.raises(ConfigurationError, match="encrypt must be True"):

            @app.job(encrypt=bad)
            def third(card: str) -> None: ...

    @app.job(encrypt="card")  # one name
    def fine(card: str, **rest: str) -> None: ...

    @app.job(encrypt=("anything",))  # **kwargs: any name may come
    def open_ended(**rest: str) -> None: ...

    assert fine.options_.encrypt == ("card",)
    with pytest.raises(ConfigurationError, match="belongs to the job type"):
        fine.options(encrypt=False)


def test_only_the_chosen_arguments_are_sealed(app: Offload) -> None:
    @app.job(encrypt=("card",))
    def charge(card: str, amount: int, note: str = "") -> None: ...

    new = charge.prepare("4111", 5).new
    assert new.args["amount"] == 5 and new.args["card"].startswith("enc:v1:k1:")
    assert new.meta[ENCRYPT_META] == ["card"]
    assert "4111" not in (new.args_json or "")
    assert open_args("charge", new.args, new.meta) == {"card": "4111", "amount": 5}

    # Per-call meta cannot claim what offload says is encrypted.
    @app.job()
    def plain(x: int) -> None: ...

    spoofed = plain.options(meta={ENCRYPT_META: ["x"]}).prepare(1).new
    assert ENCRYPT_META not in spoofed.meta


def test_a_sealed_value_opens_only_in_its_own_field(app: Offload) -> None:
    @app.job(encrypt=True)
    def pair(a: str, b: str) -> None: ...

    new = pair.prepare("left", "right").new
    swapped = {"a": new.args["b"], "b": new.args["a"]}
    with pytest.raises(PayloadDecodeError, match="does not authenticate"):
        open_args("pair", swapped, new.meta)
    with pytest.raises(PayloadDecodeError, match="does not authenticate"):
        open_args("other_kind", new.args, new.meta)
    tampered = dict(new.args, a=new.args["a"][:-2] + ("AA" if new.args["a"][-2:] != "AA" else "BB"))
    with pytest.raises(PayloadDecodeError):
        open_args("pair", tampered, new.meta)
    with pytest.raises(PayloadDecodeError, match="not encrypted data"):
        open_result("pair", {"plain": 1}, new.meta)


def test_a_missing_key_is_named(app: Offload, monkeypatch: pytest.MonkeyPatch) -> None:
    @app.job(encrypt=True)
    def secret(a: str) -> None: ...

    new = secret.prepare("x").new
    monkeypatch.setenv("OFFLOAD_KEYS", new_key_entry("k2"))
    with pytest.raises(EncryptionKeyError, match=r"key 'k1', which is not configured here"):
        open_args("secret", new.args, new.meta)
    monkeypatch.delenv("OFFLOAD_KEYS")
    with pytest.raises(EncryptionKeyError, match=r"set \$OFFLOAD_KEYS or \$OFFLOAD_KEYS_FILE"):
        secret.enqueue("x")


def test_key_settings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="not 32 bytes"):
        parse_keys("k1:c2hvcnQ=", "$OFFLOAD_KEYS")
    with pytest.raises(ConfigurationError, match="`id:base64`"):
        parse_keys("no colon here", "$OFFLOAD_KEYS")
    with pytest.raises(ConfigurationError, match="given twice"):
        parse_keys(f"{K1},{K1}", "$OFFLOAD_KEYS")
    with pytest.raises(ConfigurationError, match="holds no key"):
        parse_keys("# nothing\n", "$OFFLOAD_KEYS")
    k2 = new_key_entry("k2")
    ring = parse_keys(f"# newest first\n{k2}\n{K1}  # the old one\n", "file")
    assert [name for name, _ in ring.keys] == ["k2", "k1"] and ring.newest == "k2"

    keys = tmp_path / "keys"
    keys.write_text(f"{K1}\n")
    monkeypatch.delenv("OFFLOAD_KEYS", raising=False)
    monkeypatch.setenv("OFFLOAD_KEYS_FILE", str(keys))
    found = keyring()
    assert found is not None and found.newest == "k1"
    monkeypatch.setenv("OFFLOAD_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="OFFLOAD_KEYS_FILE names"):
        keyring()


def test_import_offload_does_not_load_the_cipher() -> None:
    code = "import sys, offload, offload.worker, offload.cli; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nothing_kept_in_plain_text_is_made_from_an_encrypted_argument(app: Offload) -> None:
    from offload import Limit, Unique

    with pytest.raises(
        ConfigurationError, match="its tenant would be made from the argument 'org'"
    ):

        @app.job(encrypt=("org",), tenant="{org}")
        def by_tenant(org: str) -> None: ...

    with pytest.raises(ConfigurationError, match="its limit key would be made from"):

        @app.job(encrypt=True, limit=Limit(key="api:{host}", concurrency=2))
        def by_limit(host: str) -> None: ...

    with pytest.raises(ConfigurationError, match="its unique keys would be made from every"):

        @app.job(encrypt=("card",), unique=Unique())
        def by_all(card: str, order: int) -> None: ...

    @app.job(encrypt=("card",), unique=Unique(keys=["order"]), tenant="{shop}")
    def fine(card: str, order: int, shop: str) -> None: ...

    assert fine.prepare("4111", 1, "s1").new.tenant == "s1"

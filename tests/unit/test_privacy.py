"""Tests of the privacy building blocks: master key, data keys, sealed fields, key ring."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pathlib
import pickle
import stat
import threading
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.privacy import (
    KeyConfigError,
    KeyFileError,
    KeyRing,
    LedgerSecrets,
    MasterKey,
    MemoryKeyStore,
    SealError,
    command_pii_mac,
    load_master_key_file,
    master_key_from_env,
    new_data_key,
    open_sealed,
    pii_digest,
    rewrap_data_key,
    seal,
    unwrap_data_key,
    unwrap_secret,
    wrap_data_key,
    wrap_secret,
)
from dinsos_ledger.types import Sealed

SUBJECT = uuid.UUID("0b6f4c7e-4d0a-5a7b-9c1e-2f3a4b5c6d7e")
OTHER = uuid.UUID("1c7e5d8f-5e1b-5b8c-8d2f-3a4b5c6d7e8f")
NIK = "6408011203870004"

posix_only = pytest.mark.skipif(os.name != "posix", reason="mode bits exist on POSIX only")


@given(value=st.text(), data_key=st.binary(min_size=32, max_size=32), subject=st.uuids())
def test_sealed_text_opens_to_the_same_text(
    value: str, data_key: bytes, subject: uuid.UUID
) -> None:
    """Any text sealed for a subject and field opens back to itself."""
    sealed = seal(data_key, subject, "head_name", value)
    assert open_sealed(data_key, subject, "head_name", sealed) == value


def test_sealed_field_does_not_open_for_another_subject() -> None:
    """A token copied to another subject is refused."""
    key = new_data_key()
    sealed = seal(key, SUBJECT, "head_nik", NIK)
    with pytest.raises(SealError, match="head_nik"):
        open_sealed(key, OTHER, "head_nik", sealed)


def test_sealed_field_does_not_open_as_another_field() -> None:
    """A token copied to another field of the same subject is refused."""
    key = new_data_key()
    sealed = seal(key, SUBJECT, "head_nik", NIK)
    with pytest.raises(SealError):
        open_sealed(key, SUBJECT, "family_card", sealed)


def test_sealed_field_does_not_open_with_another_key() -> None:
    """A token opened with another data key is refused, and the message holds no secret."""
    key, other = new_data_key(), new_data_key()
    sealed = seal(key, SUBJECT, "head_nik", NIK)
    with pytest.raises(SealError) as info:
        open_sealed(other, SUBJECT, "head_nik", sealed)
    message = str(info.value)
    assert NIK not in message
    assert sealed.token not in message
    assert other.hex() not in message


@pytest.mark.parametrize("token", ["", "not base64!", "AQ", "Ag" + "A" * 60])
def test_malformed_token_is_refused_clearly(token: str) -> None:
    """Empty, non-base64, short or other-version tokens raise SealError."""
    with pytest.raises(SealError, match="format-1 token"):
        open_sealed(new_data_key(), SUBJECT, "head_nik", Sealed(token))


def test_tampered_token_is_refused() -> None:
    """Flipping one byte of the ciphertext makes the token fail to open."""
    key = new_data_key()
    token = seal(key, SUBJECT, "name", "Siti Rahmawati").token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(SealError):
        open_sealed(key, SUBJECT, "name", Sealed(tampered))


def test_sealing_twice_gives_different_tokens() -> None:
    """Fresh nonces: equal personal data cannot be spotted by comparing tokens."""
    key = new_data_key()
    tokens = {seal(key, SUBJECT, "head_nik", NIK).token for _ in range(20)}
    assert len(tokens) == 20


@given(value=st.text(min_size=4))
def test_plaintext_never_appears_in_the_token(value: str) -> None:
    """Neither the text nor its base64 appears in the token."""
    token = seal(new_data_key(), SUBJECT, "head_name", value).token
    plain = value.encode()
    assert value not in token
    assert base64.urlsafe_b64encode(plain).rstrip(b"=").decode()[:-2] not in token


def test_token_is_base64url_without_padding_of_version_nonce_and_ciphertext() -> None:
    """The token layout is version 0x01, 12-byte nonce, ciphertext plus 16-byte tag."""
    token = seal(new_data_key(), SUBJECT, "head_nik", NIK).token
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert raw[0] == 1
    assert len(raw) == 1 + 12 + len(NIK) + 16


def test_sealing_rejects_a_short_data_key_without_showing_it() -> None:
    """A data key of the wrong length is named by its length only."""
    with pytest.raises(ValueError, match=r"'data_key' must be 32 bytes \(got 31 bytes\)"):
        seal(b"k" * 31, SUBJECT, "head_nik", NIK)


def test_sealing_rejects_lone_surrogates_without_showing_the_value() -> None:
    """Text that UTF-8 cannot encode is refused with a message that omits it."""
    with pytest.raises(ValueError, match="UTF-8") as info:
        seal(new_data_key(), SUBJECT, "head_name", "Budi\udc80")
    assert "Budi" not in str(info.value)


def test_sealed_repr_hides_the_token() -> None:
    """A sealed value in a log line shows nothing of its ciphertext."""
    sealed = seal(new_data_key(), SUBJECT, "head_nik", NIK)
    assert sealed.token not in repr(sealed)


@given(subject=st.uuids())
def test_wrapped_key_unwraps_to_the_same_key(subject: uuid.UUID) -> None:
    """A data key wrapped for a subject unwraps to itself."""
    master, key = MasterKey.generate(), new_data_key()
    assert unwrap_data_key(master, subject, wrap_data_key(master, subject, key)) == key


def test_wrapped_key_moved_to_another_subject_does_not_open() -> None:
    """The subject id is bound into the wrapped key."""
    master = MasterKey.generate()
    wrapped = wrap_data_key(master, SUBJECT, new_data_key())
    with pytest.raises(SealError, match="another subject"):
        unwrap_data_key(master, OTHER, wrapped)


def test_wrapped_key_does_not_open_with_another_master_key() -> None:
    """Another master key fails, and the message holds no key material."""
    master, key = MasterKey.generate(), new_data_key()
    wrapped = wrap_data_key(master, SUBJECT, key)
    other = MasterKey.generate()
    with pytest.raises(SealError) as info:
        unwrap_data_key(other, SUBJECT, wrapped)
    message = str(info.value)
    for secret in (key, wrapped):
        assert secret.hex() not in message
        assert base64.b64encode(secret).decode() not in message
    assert other.to_base64() not in message


def test_wrapped_key_of_the_wrong_size_is_refused() -> None:
    """A truncated wrapped key raises SealError naming its size."""
    master = MasterKey.generate()
    wrapped = wrap_data_key(master, SUBJECT, new_data_key())
    with pytest.raises(SealError, match=r"must be 61 bytes .*got 60"):
        unwrap_data_key(master, SUBJECT, wrapped[:-1])


def test_wrapping_twice_gives_different_bytes() -> None:
    """Wrapping uses a fresh nonce each time."""
    master, key = MasterKey.generate(), new_data_key()
    assert wrap_data_key(master, SUBJECT, key) != wrap_data_key(master, SUBJECT, key)


def test_master_key_repr_and_str_hide_the_key() -> None:
    """Neither repr nor str shows the key bytes."""
    raw = os.urandom(32)
    master = MasterKey(raw)
    for shown in (repr(master), str(master), f"{master}"):
        assert shown == "MasterKey(…)"


def test_master_keys_compare_by_value() -> None:
    """Two master keys from the same bytes are equal and hash alike; others differ."""
    raw = os.urandom(32)
    assert MasterKey(raw) == MasterKey(raw)
    assert hash(MasterKey(raw)) == hash(MasterKey(raw))
    assert MasterKey(raw) != MasterKey.generate()


def test_master_key_cannot_be_pickled() -> None:
    """Pickling would copy the key into caches: it is refused."""
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(MasterKey.generate())


def test_master_key_of_the_wrong_length_is_refused() -> None:
    """A master key must be exactly 32 bytes."""
    with pytest.raises(ValueError, match=r"'master key' must be 32 bytes \(got 16 bytes\)"):
        MasterKey(bytes(16))


def test_env_key_round_trips() -> None:
    """The base64 form of a master key reads back as an equal key."""
    master = MasterKey.generate()
    assert master_key_from_env(master.to_base64()) == master


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("", "got 0 bytes"),
        (base64.b64encode(b"s" * 31).decode(), "got 31 bytes"),
        (base64.b64encode(b"s" * 33).decode(), "got 33 bytes"),
        ("this is not base64 at all!", "got text that is not base64"),
    ],
)
def test_env_key_errors_name_the_variable_and_hide_the_value(value: str, got: str) -> None:
    """A malformed DINSOS_LEDGER_KEY is named, described by size only, never echoed."""
    with pytest.raises(KeyConfigError) as info:
        master_key_from_env(value)
    message = str(info.value)
    assert "'DINSOS_LEDGER_KEY' must be base64 of 32 random bytes" in message
    assert got in message
    if value:
        assert value not in message


@posix_only
def test_key_file_is_created_owner_only_and_reloads_equal(tmp_path: pathlib.Path) -> None:
    """A missing key file is created with mode 0600 and reads back as the same key."""
    path = tmp_path / "ledger.sqlite.key"
    created = load_master_key_file(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key_file(path, create=False) == created
    assert len(base64.b64decode(path.read_text())) == 32
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_missing_key_file_is_refused_without_create(tmp_path: pathlib.Path) -> None:
    """With create=False a missing file is an error naming the path."""
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError, match="does not exist") as info:
        load_master_key_file(path, create=False)
    assert str(path) in str(info.value)
    assert isinstance(info.value, OSError)
    assert not path.exists()


@posix_only
def test_concurrent_creators_agree_on_one_key(tmp_path: pathlib.Path) -> None:
    """Processes racing to create the key file all end up with the winner's key."""
    path = tmp_path / "race.key"
    keys: list[MasterKey] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        keys.append(load_master_key_file(path, create=True))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert all(key == keys[0] for key in keys)
    assert load_master_key_file(path, create=False) == keys[0]


def _private_file(path: pathlib.Path, content: bytes) -> pathlib.Path:
    path.write_bytes(content)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("content", "got"),
    [
        (base64.b64encode(b"k" * 31) + b"\n", "got 31 bytes"),
        (b"not base64 !!!\n", "got text that is not base64"),
        (b"", "got 0 bytes"),
        (b"\xff\xfe binary", "got bytes that are not base64 text"),
    ],
)
def test_malformed_key_file_is_refused_without_showing_its_content(
    tmp_path: pathlib.Path, content: bytes, got: str
) -> None:
    """Wrong length or bad base64 is described by size, with the path, never the content."""
    path = _private_file(tmp_path / "bad.key", content)
    with pytest.raises(KeyFileError) as info:
        load_master_key_file(path, create=True)
    message = str(info.value)
    assert f"key file '{path}' must hold base64 of 32 random bytes" in message
    assert got in message
    if content.strip():
        assert content.strip().decode(errors="replace") not in message
    assert path.read_bytes() == content  # never overwritten


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o666])
def test_key_file_readable_by_others_is_refused(tmp_path: pathlib.Path, mode: int) -> None:
    """A key file that group or others may read is refused, with the remedy."""
    secret = MasterKey.generate().to_base64()
    path = tmp_path / "open.key"
    path.write_text(secret + "\n")
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=r"readable by its owner only .*chmod 600") as info:
        load_master_key_file(path, create=False)
    assert oct(mode) in str(info.value)
    assert secret not in str(info.value)


def test_key_file_that_is_a_directory_is_refused(tmp_path: pathlib.Path) -> None:
    """A directory where the key file should be is an error, not a crash."""
    path = tmp_path / "dir.key"
    path.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match=r"dir\.key"):
        load_master_key_file(path, create=True)


def test_key_ring_opens_fields_of_a_stored_subject() -> None:
    """A key stored by the caller opens the fields sealed with it."""
    store = MemoryKeyStore()
    ring = KeyRing(MasterKey.generate(), store)
    data_key, wrapped = ring.data_key_for_new_subject(SUBJECT)
    assert store.get_wrapped(SUBJECT) is None  # the ring never stores: the caller does
    store.put_wrapped(SUBJECT, wrapped)
    sealed = seal(data_key, SUBJECT, "nik", NIK)
    assert ring.open(SUBJECT, "nik", sealed) == NIK


def test_key_ring_returns_none_once_the_key_is_shredded() -> None:
    """After the wrapped key is deleted and the ring forgets, fields read as None."""
    store, master = MemoryKeyStore(), MasterKey.generate()
    ring = KeyRing(master, store)
    data_key, wrapped = ring.data_key_for_new_subject(SUBJECT)
    store.put_wrapped(SUBJECT, wrapped)
    sealed = seal(data_key, SUBJECT, "nik", NIK)
    assert ring.open(SUBJECT, "nik", sealed) == NIK
    store.delete(SUBJECT)
    ring.forget(SUBJECT)
    assert ring.open(SUBJECT, "nik", sealed) is None
    assert KeyRing(master, store).open(SUBJECT, "nik", sealed) is None


def test_key_ring_returns_none_for_a_subject_without_a_key() -> None:
    """A subject never given a key (or a rolled-back registration) reads as None."""
    ring = KeyRing(MasterKey.generate(), MemoryKeyStore())
    ring.data_key_for_new_subject(SUBJECT)  # the transaction that would store it rolled back
    assert ring.open(SUBJECT, "nik", Sealed("AQ")) is None


def test_key_ring_caches_the_unwrapped_key() -> None:
    """The store is read once per subject, however many fields are opened."""

    class CountingStore(MemoryKeyStore):
        reads = 0

        def get_wrapped(self, subject_id: uuid.UUID) -> bytes | None:
            self.reads += 1
            return super().get_wrapped(subject_id)

    store = CountingStore()
    ring = KeyRing(MasterKey.generate(), store)
    data_key, wrapped = ring.data_key_for_new_subject(SUBJECT)
    store.put_wrapped(SUBJECT, wrapped)
    sealed = seal(data_key, SUBJECT, "nik", NIK)
    for _ in range(5):
        ring.open(SUBJECT, "nik", sealed)
    assert store.reads == 1


def test_pii_digest_is_stable_per_key_and_purpose() -> None:
    """Same key, purpose and data give the same digest; any change gives another."""
    master = MasterKey.generate()
    body = b'{"head_nik":"' + NIK.encode() + b'"}'
    digest = pii_digest(master, "command-body", body)
    assert digest == pii_digest(master, "command-body", body)
    assert len(digest) == 64
    assert digest != pii_digest(master, "other-purpose", body)
    assert digest != pii_digest(MasterKey.generate(), "command-body", body)
    assert digest != pii_digest(master, "command-body", body + b" ")


def test_pii_digest_is_not_a_plain_hash() -> None:
    """The digest of a NIK cannot be recomputed without the master key."""
    digest = pii_digest(MasterKey.generate(), "command-body", NIK.encode())
    assert digest != hashlib.sha256(NIK.encode()).hexdigest()


def test_pii_digest_refuses_an_empty_purpose() -> None:
    """A purpose is required, so digests of different uses never coincide."""
    with pytest.raises(ValueError, match="'purpose' must be a non-empty string"):
        pii_digest(MasterKey.generate(), "", b"x")


# --------------------------------------------------------------- the ledger's wrapped secrets


def test_a_secret_opens_only_with_its_master_key_and_its_name() -> None:
    """wrap_secret binds the secret to the master key and to its name."""
    master, secret = MasterKey.generate(), new_data_key()
    wrapped = wrap_secret(master, "index", secret)
    assert unwrap_secret(master, "index", wrapped) == secret
    with pytest.raises(SealError):
        unwrap_secret(MasterKey.generate(), "index", wrapped)
    with pytest.raises(SealError):
        unwrap_secret(master, "idempotency", wrapped)
    with pytest.raises(SealError):
        unwrap_secret(master, "index", wrapped[:-1])


def test_a_data_key_wrapped_as_a_secret_does_not_open_as_a_data_key() -> None:
    """Secrets and data keys are wrapped under different subkeys: no confusion between them."""
    master, key = MasterKey.generate(), new_data_key()
    with pytest.raises(SealError):
        unwrap_data_key(master, uuid.UUID(int=0), wrap_secret(master, "index", key))


@given(st.binary(min_size=32, max_size=32))
def test_rewrapping_keeps_the_data_key_and_changes_its_master(data_key: bytes) -> None:
    """After rewrap_data_key only the new master key opens it, and it is the same data key."""
    old, new, sid = MasterKey.generate(), MasterKey.generate(), uuid.uuid4()
    moved = rewrap_data_key(old, new, sid, wrap_data_key(old, sid, data_key))
    assert unwrap_data_key(new, sid, moved) == data_key
    with pytest.raises(SealError):
        unwrap_data_key(old, sid, moved)


def test_ledger_secrets_survive_a_change_of_master_key() -> None:
    """Re-wrapped under another master key, the secrets give the same digests and index entries."""
    old, new = MasterKey.generate(), MasterKey.generate()
    secrets = LedgerSecrets.generate()
    again = LedgerSecrets.unwrap(new, LedgerSecrets.unwrap(old, secrets.wrapped(old)).wrapped(new))
    assert again.body_digest(b"body") == secrets.body_digest(b"body")
    assert again.index_mac("nik", NIK) == secrets.index_mac("nik", NIK)
    assert again.legacy_subkey is None
    with pytest.raises(SealError):
        LedgerSecrets.unwrap(old, secrets.wrapped(new))


def test_index_entries_match_equal_values_of_one_field_only() -> None:
    """Equal NIKs match; another NIK, or the same digits as a card number, do not."""
    secrets = LedgerSecrets.generate()
    entry = secrets.index_mac("nik", NIK)
    assert entry == secrets.index_mac("nik", NIK)
    assert len(entry) == 64
    assert entry != secrets.index_mac("nik", "6408041203820002")
    assert entry != secrets.index_mac("family_card", NIK)
    assert entry != LedgerSecrets.generate().index_mac("nik", NIK)
    assert NIK not in entry


def test_ledger_secrets_never_show_or_pickle() -> None:
    """repr hides the keys; pickling is refused."""
    import pickle

    secrets = LedgerSecrets.generate()
    assert repr(secrets) == "LedgerSecrets(…)"
    with pytest.raises(TypeError):
        pickle.dumps(secrets)


def test_the_pii_mac_is_keyed_by_the_data_key() -> None:
    """Another data key gives another MAC; the MAC is not a plain hash of the data."""
    key = new_data_key()
    mac = command_pii_mac(key, NIK.encode())
    assert mac == command_pii_mac(key, NIK.encode())
    assert mac != command_pii_mac(new_data_key(), NIK.encode())
    assert mac != hashlib.sha256(NIK.encode()).hexdigest()
    assert mac != hmac.new(key, NIK.encode(), "sha256").hexdigest()

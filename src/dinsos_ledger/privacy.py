"""Encryption of personal data: a master key, per-subject data keys, sealed fields.

Personal data (the subject kinds) is sealed with AES-GCM under a data key that belongs to
one subject. Data keys are stored only wrapped (encrypted) under the master key, so
destroying a subject's wrapped key ("crypto-shredding", the audit and privacy rules) makes every
copy of its sealed fields unreadable, in events, snapshots and backups alike, while the
events themselves stay immutable and the integrity chain stays intact.

Everything here is pure and storage-agnostic: the store of wrapped keys is any object
that follows :class:`KeyStore`. No message raised here contains key material or
personal data, because messages end up in logs and reject files.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import pathlib
import secrets
import stat
import uuid
from collections.abc import Callable
from typing import Final, NoReturn, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dinsos_ledger.errors import LedgerError, StorageError
from dinsos_ledger.types import Sealed

__all__ = [
    "ENV_VAR",
    "KeyConfigError",
    "KeyFileError",
    "KeyRing",
    "KeyStore",
    "LedgerSecrets",
    "MasterKey",
    "MemoryKeyStore",
    "SealError",
    "command_pii_mac",
    "digest_key",
    "key_check_value",
    "keyed_digest",
    "load_master_key_file",
    "load_secret_file",
    "master_key_from_env",
    "new_data_key",
    "open_sealed",
    "pii_digest",
    "rewrap_data_key",
    "seal",
    "unwrap_data_key",
    "unwrap_secret",
    "wrap_data_key",
    "wrap_secret",
]

#: The environment variable that carries the master key (base64 of 32 bytes).
ENV_VAR: Final = "DINSOS_LEDGER_KEY"

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
#: First byte of every sealed token and wrapped key: lets a later format coexist with this one.
FORMAT_V1: Final = b"\x01"

# HKDF info strings. Digest subkeys use "dinsos-ledger/<purpose>" (as documented); the
# wrapping subkey uses a ":" so no purpose string can ever derive the same subkey.
_DIGEST_INFO_PREFIX: Final = b"dinsos-ledger/"
_WRAP_INFO: Final = b"dinsos-ledger:wrap-data-key"
_SECRET_WRAP_INFO: Final = b"dinsos-ledger:wrap-secret"
_CHECK_INFO: Final = b"dinsos-ledger:key-check-value"
_PII_MAC_INFO: Final = b"dinsos-ledger:command-pii-mac"
#: Length in bytes of a key check value (shown as 32 hex digits).
CHECK_BYTES: Final = 16


class SealError(LedgerError, ValueError):
    """Raised when a sealed field or a wrapped key does not open with the key given."""

    code = "sealed"


class KeyConfigError(LedgerError, ValueError):
    """Raised when a key given by configuration (an environment variable) is malformed."""

    code = "key_config"


class KeyFileError(StorageError):
    """Raised when a key file is missing, malformed or readable by others; names the path."""

    def __init__(self, message: str, path: pathlib.Path) -> None:
        super().__init__(message)
        self.path = path


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


class MasterKey:
    """The ledger's 32-byte master key; it wraps data keys and keys digests.

    Its bytes are never shown: ``repr`` and ``str`` hide them, and no method returns them.
    Compared in constant time.
    """

    __slots__ = ("__key", "__subkeys")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            msg = f"'master key' must be bytes (got {type(key).__name__})"
            raise TypeError(msg)
        if len(key) != KEY_BYTES:
            msg = f"'master key' must be {KEY_BYTES} bytes (got {len(key)} bytes)"
            raise ValueError(msg)
        self.__key = key
        self.__subkeys: dict[bytes, bytes] = {}

    @classmethod
    def generate(cls) -> MasterKey:
        """Return a new random master key."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def derive(self, info: bytes) -> bytes:
        """Return the 32-byte subkey for ``info`` (HKDF-SHA256), cached for reuse."""
        subkey = self.__subkeys.get(info)
        if subkey is None:
            subkey = self.__subkeys[info] = _hkdf(self.__key, info)
        return subkey

    def to_base64(self) -> str:
        """Return the key as base64 text, the format of key files and ``DINSOS_LEDGER_KEY``."""
        return base64.b64encode(self.__key).decode("ascii")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return hmac.compare_digest(self.__key, other.__key)

    def __hash__(self) -> int:
        # Hash of a digest, not of the key, so a hash value reveals nothing usable.
        return hash(hashlib.sha256(b"dinsos-ledger:hash|" + self.__key).digest())

    def __repr__(self) -> str:
        return "MasterKey(…)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would copy the key into caches and crash dumps: refuse it.
        msg = "a MasterKey must not be pickled"
        raise TypeError(msg)


def _decode_master_key(text: str) -> bytes | str:
    """Return the key bytes, or a description of what is wrong (never the text itself)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "text that is not base64"
    if len(raw) != KEY_BYTES:
        return f"{len(raw)} bytes"
    return raw


def master_key_from_env(value: str) -> MasterKey:
    """Return the master key given as the value of ``DINSOS_LEDGER_KEY`` (base64 of 32 bytes)."""
    decoded = _decode_master_key(value)
    if isinstance(decoded, str):
        msg = (
            f"'{ENV_VAR}' must be base64 of {KEY_BYTES} random bytes (got {decoded}); "
            'generate one with: python -c "import base64, os; '
            'print(base64.b64encode(os.urandom(32)).decode())"'
        )
        raise KeyConfigError(msg)
    return MasterKey(decoded)


def _check_private(path: pathlib.Path, fd: int) -> None:
    if os.name != "posix":  # Windows has no mode bits to check; ACLs are the owner's care
        return
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        msg = (
            f"key file '{path}' must be readable by its owner only (got mode {mode:#o}); "
            f"run: chmod 600 '{path}'"
        )
        raise KeyFileError(msg, path)


def _read_private(path: pathlib.Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        msg = f"key file '{path}' cannot be read ({exc.strerror})"
        raise KeyFileError(msg, path) from None
    try:
        _check_private(path, fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = f"key file '{path}' must be a regular file"
            raise KeyFileError(msg, path)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _fsync_dir(directory: pathlib.Path) -> None:
    # Durability of the new directory entry; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_exclusive(path: pathlib.Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_exclusive(path: pathlib.Path, content: bytes) -> None:
    """Create ``path`` holding ``content``, mode 0600; FileExistsError if it already exists.

    The content is written to a private temporary file first and then hard-linked into
    place, so a concurrent reader sees either no file or the whole key, never a partial one.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_exclusive(tmp, content)
    try:
        os.link(tmp, path)  # fails with FileExistsError, never replaces: the race is decided here
    except FileExistsError:
        raise
    except OSError:
        # Filesystems without hard links: fall back to writing in place (O_EXCL still decides).
        _write_exclusive(path, content)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_dir(path.parent)


def load_secret_file(path: pathlib.Path, *, create: Callable[[], bytes] | None) -> bytes:
    """Return the content of the private file ``path``, creating it with ``create()`` if missing.

    A created file has mode 0600. When another process creates the file first, its
    content is returned, so every process of one ledger agrees on one key. An existing
    file readable or writable by group or others is refused with :class:`KeyFileError`.
    """
    try:
        return _read_private(path)
    except FileNotFoundError:
        if create is None:
            msg = f"key file '{path}' does not exist"
            raise KeyFileError(msg, path) from None
    content = create()
    try:
        _create_exclusive(path, content)
    except FileExistsError:
        pass  # another process won the race: use its key, not ours
    except OSError as exc:
        msg = f"key file '{path}' cannot be created ({exc.strerror})"
        raise KeyFileError(msg, path) from None
    else:
        return content
    try:
        return _read_private(path)
    except FileNotFoundError:
        msg = f"key file '{path}' vanished while being read"
        raise KeyFileError(msg, path) from None


def load_master_key_file(path: pathlib.Path, *, create: bool) -> MasterKey:
    """Return the master key kept in ``path`` (base64 of 32 bytes), creating it if allowed.

    With ``create=True`` a missing file is created atomically with a new random key and
    mode 0600 (the audit and privacy rules: ``TARGET.key`` beside a SQLite ledger).
    """

    def new_file() -> bytes:
        return MasterKey.generate().to_base64().encode("ascii") + b"\n"

    content = load_secret_file(path, create=new_file if create else None)
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        decoded: bytes | str = "bytes that are not base64 text"
    else:
        decoded = _decode_master_key(text)
    if isinstance(decoded, str):
        msg = f"key file '{path}' must hold base64 of {KEY_BYTES} random bytes (got {decoded})"
        raise KeyFileError(msg, path)
    return MasterKey(decoded)


def new_data_key() -> bytes:
    """Return a new random 32-byte data key for one subject."""
    return secrets.token_bytes(KEY_BYTES)


def _check_subject(subject_id: uuid.UUID) -> None:
    if not isinstance(subject_id, uuid.UUID):
        msg = f"'subject_id' must be a uuid.UUID (got {type(subject_id).__name__})"
        raise TypeError(msg)


def _check_data_key(data_key: bytes) -> None:
    if not isinstance(data_key, bytes):
        msg = f"'data_key' must be bytes (got {type(data_key).__name__})"
        raise TypeError(msg)
    if len(data_key) != KEY_BYTES:
        msg = f"'data_key' must be {KEY_BYTES} bytes (got {len(data_key)} bytes)"
        raise ValueError(msg)


def wrap_data_key(master: MasterKey, subject_id: uuid.UUID, data_key: bytes) -> bytes:
    """Return ``data_key`` encrypted under the master key, bound to ``subject_id``.

    The subject id is the associated data, so a wrapped key copied to another subject
    does not open. Layout: version byte, 12-byte nonce, ciphertext and tag (61 bytes).
    """
    _check_subject(subject_id)
    _check_data_key(data_key)
    nonce = os.urandom(NONCE_BYTES)  # what secrets.token_bytes returns, one call fewer
    sealed = AESGCM(master.derive(_WRAP_INFO)).encrypt(nonce, data_key, subject_id.bytes)
    return FORMAT_V1 + nonce + sealed


def unwrap_data_key(master: MasterKey, subject_id: uuid.UUID, wrapped: bytes) -> bytes:
    """Return the data key that :func:`wrap_data_key` wrapped for ``subject_id``.

    Raises :class:`SealError` when the master key, the subject or the bytes differ.
    """
    _check_subject(subject_id)
    expected = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES
    if not isinstance(wrapped, bytes) or len(wrapped) != expected or wrapped[:1] != FORMAT_V1:
        size = len(wrapped) if isinstance(wrapped, bytes) else type(wrapped).__name__
        msg = (
            f"wrapped key of subject {subject_id} must be {expected} bytes of format 1 (got {size})"
        )
        raise SealError(msg)
    nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
    try:
        return AESGCM(master.derive(_WRAP_INFO)).decrypt(nonce, body, subject_id.bytes)
    except InvalidTag:
        msg = (
            f"wrapped key of subject {subject_id} does not open with this master key "
            "(wrong key, or the wrapped key belongs to another subject)"
        )
        raise SealError(msg) from None


def _field_ad(subject_id: uuid.UUID, field: str) -> bytes:
    # The subject id has a fixed length (16 bytes), so "id|field" cannot be ambiguous.
    return subject_id.bytes + b"|" + field.encode("utf-8")


def _check_field(field: str) -> None:
    if not isinstance(field, str) or not field:
        msg = f"'field' must be a non-empty field name (got {field!r})"
        raise ValueError(msg)


def seal(data_key: bytes, subject_id: uuid.UUID, field: str, value: str) -> Sealed:
    """Return ``value`` encrypted with the subject's data key, bound to subject and field.

    Each call draws a fresh nonce, so sealing one value twice gives different tokens and
    equal personal data cannot be spotted by comparing tokens. The token is base64url
    (no padding) of the version byte, the nonce and the ciphertext with its tag.
    """
    _check_data_key(data_key)
    _check_subject(subject_id)
    _check_field(field)
    if not isinstance(value, str):
        msg = f"'value' of field '{field}' must be text (got {type(value).__name__})"
        raise TypeError(msg)
    try:
        plain = value.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"'value' of field '{field}' must be encodable as UTF-8 (got lone surrogates)"
        raise ValueError(msg) from None
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = AESGCM(data_key).encrypt(nonce, plain, _field_ad(subject_id, field))
    token = base64.urlsafe_b64encode(FORMAT_V1 + nonce + body).rstrip(b"=").decode("ascii")
    return Sealed(token)


def open_sealed(data_key: bytes, subject_id: uuid.UUID, field: str, sealed: Sealed) -> str:
    """Return the text that :func:`seal` sealed for this subject and field.

    Raises :class:`SealError` when the token is malformed or was sealed with another key,
    for another subject or for another field.
    """
    _check_data_key(data_key)
    _check_subject(subject_id)
    _check_field(field)
    token = sealed.token
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < 1 + NONCE_BYTES + TAG_BYTES or raw[:1] != FORMAT_V1:
        msg = f"sealed field '{field}' of subject {subject_id} must be a format-1 token"
        raise SealError(msg)
    nonce, body = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
    try:
        plain = AESGCM(data_key).decrypt(nonce, body, _field_ad(subject_id, field))
    except InvalidTag:
        msg = (
            f"sealed field '{field}' of subject {subject_id} does not open with this key "
            "(wrong key, subject or field)"
        )
        raise SealError(msg) from None
    return plain.decode("utf-8")


def pii_digest(master: MasterKey, purpose: str, data: bytes) -> str:
    """Return a keyed digest (HMAC-SHA256, hex) of ``data`` for ``purpose``.

    For idempotency digests of command bodies: a body holding a NIK has only about 10^10
    plausible values per region, so a plain hash would be reversed by brute force; this
    one cannot be computed without the master key. The key is a subkey derived with HKDF
    (info ``b"dinsos-ledger/" + purpose``), so digests of different purposes never match.
    """
    return keyed_digest(digest_key(master, purpose), data)


def digest_key(master: MasterKey, purpose: str) -> bytes:
    """The subkey of :func:`pii_digest` for ``purpose``, for :func:`keyed_digest`.

    Lets another process of the same import compute digests without the master key.
    """
    if not isinstance(purpose, str) or not purpose:
        msg = f"'purpose' must be a non-empty string (got {purpose!r})"
        raise ValueError(msg)
    return master.derive(_DIGEST_INFO_PREFIX + purpose.encode("utf-8"))


def keyed_digest(subkey: bytes, data: bytes) -> str:
    """HMAC-SHA256 (hex) of ``data`` under a subkey from :func:`digest_key`."""
    # The one-shot form runs in OpenSSL without building an HMAC object per digest.
    return hmac.digest(subkey, data, "sha256").hex()


class KeyStore(Protocol):
    """Where wrapped data keys are kept, one per subject; deleting one shreds the subject."""

    def get_wrapped(self, subject_id: uuid.UUID) -> bytes | None:
        """Return the subject's wrapped data key, or None if it has none (or it was shredded)."""
        ...

    def put_wrapped(self, subject_id: uuid.UUID, wrapped: bytes) -> None:
        """Store the subject's wrapped data key."""
        ...

    def delete(self, subject_id: uuid.UUID) -> None:
        """Destroy the subject's wrapped data key; nothing happens if there is none."""
        ...


class MemoryKeyStore:
    """A :class:`KeyStore` in a dictionary, for tests and throw-away ledgers."""

    def __init__(self) -> None:
        self._wrapped: dict[uuid.UUID, bytes] = {}

    def get_wrapped(self, subject_id: uuid.UUID) -> bytes | None:
        """Return the subject's wrapped data key, or None."""
        return self._wrapped.get(subject_id)

    def put_wrapped(self, subject_id: uuid.UUID, wrapped: bytes) -> None:
        """Store the subject's wrapped data key."""
        self._wrapped[subject_id] = wrapped

    def delete(self, subject_id: uuid.UUID) -> None:
        """Destroy the subject's wrapped data key, if any."""
        self._wrapped.pop(subject_id, None)

    def __len__(self) -> int:
        return len(self._wrapped)

    def __repr__(self) -> str:
        return f"MemoryKeyStore({len(self._wrapped)} keys)"


class KeyRing:
    """Opens sealed fields, caching each subject's unwrapped data key for the application's life.

    The ring never writes to the store: the caller stores a new wrapped key in the same
    transaction as the events that use it, and deletes it in the same transaction as
    the ``forgotten`` event, so keys and events cannot disagree after a crash. A key is
    cached only once it has been read back from the store, so a rolled-back
    registration leaves nothing behind. With several processes, each must call
    :meth:`forget` (or be restarted) after a subject is shredded elsewhere.
    """

    def __init__(self, master: MasterKey, store: KeyStore) -> None:
        self._master = master
        self._store = store
        self._keys: dict[uuid.UUID, bytes] = {}

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} cached keys)"

    def data_key_for_new_subject(self, subject_id: uuid.UUID) -> tuple[bytes, bytes]:
        """Return a new data key and its wrapped form for ``subject_id``, storing neither."""
        data_key = new_data_key()
        return data_key, wrap_data_key(self._master, subject_id, data_key)

    def data_key(self, subject_id: uuid.UUID) -> bytes | None:
        """Return the subject's data key, or None if it has none (or it was shredded)."""
        cached = self._keys.get(subject_id)
        if cached is not None:
            return cached
        wrapped = self._store.get_wrapped(subject_id)
        if wrapped is None:
            return None
        data_key = self._keys[subject_id] = unwrap_data_key(self._master, subject_id, wrapped)
        return data_key

    def open(self, subject_id: uuid.UUID, field: str, sealed: Sealed) -> str | None:
        """Return the sealed field's text, or None once the subject's key has been shredded."""
        data_key = self.data_key(subject_id)
        if data_key is None:
            return None
        return open_sealed(data_key, subject_id, field, sealed)

    def forget(self, subject_id: uuid.UUID) -> None:
        """Drop the subject's cached key (the caller deletes the stored wrapped key)."""
        self._keys.pop(subject_id, None)


# ------------------------------------------------------------------ the ledger's own secrets


def key_check_value(master: MasterKey) -> str:
    """The master key's check value: 32 hex digits that name the key without revealing it.

    A ledger stores the check value of the key it was created with, and refuses any other
    key. It is a subkey (HKDF) of the master key, so it tells nothing about the key or about
    any other subkey, and two keys have equal check values only by a 2**-128 accident.
    """
    return master.derive(_CHECK_INFO)[:CHECK_BYTES].hex()


def _secret_ad(name: str) -> bytes:
    return b"dinsos-ledger:secret|" + name.encode("utf-8")


def wrap_secret(master: MasterKey, name: str, secret: bytes) -> bytes:
    """Return the 32-byte ``secret`` encrypted under the master key, bound to its ``name``.

    For the ledger's own random keys (the idempotency key, the index key), which the master
    key wraps like the subjects' data keys: rotating the master key re-wraps them and
    leaves everything keyed by them (command digests, the keyed index) as it was.
    """
    _check_data_key(secret)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(master.derive(_SECRET_WRAP_INFO)).encrypt(nonce, secret, _secret_ad(name))
    return FORMAT_V1 + nonce + sealed


def unwrap_secret(master: MasterKey, name: str, wrapped: bytes) -> bytes:
    """Return the secret that :func:`wrap_secret` wrapped as ``name``; SealError otherwise."""
    expected = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES
    if not isinstance(wrapped, bytes) or len(wrapped) != expected or wrapped[:1] != FORMAT_V1:
        msg = f"the ledger's wrapped secret '{name}' must be {expected} bytes of format 1"
        raise SealError(msg)
    nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
    try:
        return AESGCM(master.derive(_SECRET_WRAP_INFO)).decrypt(nonce, body, _secret_ad(name))
    except InvalidTag:
        msg = f"the ledger's secret '{name}' does not open with this master key"
        raise SealError(msg) from None


def rewrap_data_key(old: MasterKey, new: MasterKey, subject_id: uuid.UUID, wrapped: bytes) -> bytes:
    """The subject's data key, unwrapped with ``old`` and wrapped again under ``new``."""
    return wrap_data_key(new, subject_id, unwrap_data_key(old, subject_id, wrapped))


def command_pii_mac(data_key: bytes, body: bytes) -> str:
    """HMAC-SHA256 (hex) of a command's personal data under a subkey of the subject's data key.

    The personal-data part of an idempotency digest. It is keyed by the subject's data key,
    which ``forget`` destroys: afterwards no one, not even the holder of the master key,
    can tell which NIK or name it was computed from, so it confirms no guess.
    """
    _check_data_key(data_key)
    subkey = hmac.digest(data_key, _PII_MAC_INFO, "sha256")
    return hmac.digest(subkey, body, "sha256").hex()


#: Names of the ledger's wrapped secrets (see :class:`LedgerSecrets`).
# Names of table rows, not secrets themselves (hence S105 off).
SECRET_IDEMPOTENCY: Final = "idempotency"  # noqa: S105
SECRET_INDEX: Final = "index"  # noqa: S105
SECRET_LEGACY_DIGEST: Final = "legacy-digest"  # noqa: S105
WRAPPED_SECRETS: Final = (SECRET_IDEMPOTENCY, SECRET_INDEX, SECRET_LEGACY_DIGEST)


class LedgerSecrets:
    """The ledger's random keys, unwrapped: what command digests and the keyed index use.

    - ``idempotency``: keys the digest of a command's fields other than personal data
      (:meth:`body_digest`); the import's reader process receives it instead of the master
      key (:attr:`digest_subkey`).
    - ``index``: keys the index of NIK and family-card numbers (:meth:`index_mac`).
    - ``legacy``: for a ledger written before these keys existed, the subkey of the master
      key its older command digests were made with (None for newer ledgers).

    Each is stored wrapped by the master key, so rotating the master key changes only their
    wrapping, never a digest or an index entry.
    """

    __slots__ = ("__idempotency", "__index", "__legacy")

    def __init__(self, *, idempotency: bytes, index: bytes, legacy: bytes | None = None) -> None:
        _check_data_key(idempotency)
        _check_data_key(index)
        if legacy is not None:
            _check_data_key(legacy)
        self.__idempotency = idempotency
        self.__index = index
        self.__legacy = legacy

    @property
    def digest_subkey(self) -> bytes:
        """The key of :meth:`body_digest`, for :func:`keyed_digest` in another process."""
        return self.__idempotency

    @property
    def legacy_subkey(self) -> bytes | None:
        """The key of digests recorded before this design, or None when there are none."""
        return self.__legacy

    def body_digest(self, body: bytes) -> str:
        """HMAC-SHA256 (hex) of a canonical command body without its personal data."""
        return keyed_digest(self.__idempotency, body)

    def index_mac(self, field: str, value: str) -> str:
        """The keyed index entry of a NIK or family-card number: HMAC-SHA256 (hex).

        ``field`` names what is indexed (``"nik"`` for every NIK, whether of a household's
        head or of a veteran, so equal NIKs match across kinds; ``"family_card"``): equal
        values of one field give equal entries, and nothing else can be learnt from an
        entry without the index key.
        """
        _check_field(field)
        if not isinstance(value, str):
            msg = f"'value' of field '{field}' must be text (got {type(value).__name__})"
            raise TypeError(msg)
        return keyed_digest(self.__index, field.encode("utf-8") + b"\x00" + value.encode("utf-8"))

    def wrapped(self, master: MasterKey) -> dict[str, bytes]:
        """Every secret wrapped under ``master``, by name, as the ledger stores them."""
        out = {
            SECRET_IDEMPOTENCY: wrap_secret(master, SECRET_IDEMPOTENCY, self.__idempotency),
            SECRET_INDEX: wrap_secret(master, SECRET_INDEX, self.__index),
        }
        if self.__legacy is not None:
            out[SECRET_LEGACY_DIGEST] = wrap_secret(master, SECRET_LEGACY_DIGEST, self.__legacy)
        return out

    @classmethod
    def unwrap(cls, master: MasterKey, stored: dict[str, bytes]) -> LedgerSecrets:
        """The secrets stored wrapped under ``master`` (SealError if they do not open)."""
        legacy = stored.get(SECRET_LEGACY_DIGEST)
        return cls(
            idempotency=unwrap_secret(master, SECRET_IDEMPOTENCY, stored[SECRET_IDEMPOTENCY]),
            index=unwrap_secret(master, SECRET_INDEX, stored[SECRET_INDEX]),
            legacy=None if legacy is None else unwrap_secret(master, SECRET_LEGACY_DIGEST, legacy),
        )

    @classmethod
    def generate(cls, *, legacy: bytes | None = None) -> LedgerSecrets:
        """New random secrets for a new ledger (``legacy`` for one upgraded from before)."""
        return cls(idempotency=new_data_key(), index=new_data_key(), legacy=legacy)

    def __repr__(self) -> str:
        return "LedgerSecrets(…)"

    def __reduce__(self) -> NoReturn:
        msg = "LedgerSecrets must not be pickled"
        raise TypeError(msg)

"""This user's signature on a run dir's config.json: runs this user made here are trusted.

A run dir's spec may name code to import (a ``fake:module:function`` model, a
``module:function`` metric), and a run dir may come from anyone, so resuming one that does
needs ``trust_code`` — unless its config.json carries this user's signature: an
HMAC-SHA256 of its bytes under a per-user secret key, which only this user's opro can
compute. opro signs every config.json it writes (a new run, a raised cap), in
``.signature`` beside it; a config.json copied from elsewhere, edited by hand, or signed
under another user's key does not match and still needs ``trust_code``.

The key: ``$OPRO_CONFIG_DIR/signing.key``, else ``signing.key`` in the user config dir
(e.g. ~/.config/opro), 32 random bytes in hex, created on first use with mode 0600. A key
that another user owns, that others may read, or that cannot be read or created signs
nothing and verifies nothing: such run dirs simply need ``trust_code``, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

KEY_NAME = "signing.key"
SCHEME = "hmac-sha256:"


def key_path() -> Path:
    """Where this user's key is (or will be)."""
    root = os.environ.get("OPRO_CONFIG_DIR") or platformdirs.user_config_dir("opro")
    return Path(root) / KEY_NAME


def _read_key(path: Path) -> bytes | None:
    """The key at ``path``, if it is this user's own, private, well-formed file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            log.debug("opro: %s is not this user's private file (mode 0600): not used", path)
            return None
        text = os.read(fd, 200).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return None
    return key if len(key) >= 32 else None


def _make_key(path: Path) -> bytes | None:
    """A new key at ``path``, written whole before it appears (two processes creating it at
    once agree on the first one linked into place)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_NAME}.", suffix=".tmp")
    except OSError as exc:
        log.debug("opro: cannot create a signing key in %s: %s", path.parent, exc)
        return None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:  # mkstemp's mode: 0600
            f.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    except OSError as exc:
        log.debug("opro: cannot create the signing key %s: %s", path, exc)
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    return _read_key(path)


def _key(*, create: bool) -> bytes | None:
    path = key_path()
    key = _read_key(path)
    if key is None and create and not os.path.lexists(path):
        key = _make_key(path)
    return key


def sign(config: bytes) -> str | None:
    """The signature of config.json's bytes under this user's key (made on first use), or
    None when there is no usable key."""
    key = _key(create=True)
    if key is None:
        return None
    return SCHEME + hmac.new(key, config, hashlib.sha256).hexdigest()


def signed_here(config: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is this user's signature of ``config``."""
    if not signature or not signature.startswith(SCHEME):
        return False
    key = _key(create=False)
    if key is None:
        return False
    expected = SCHEME + hmac.new(key, config, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().encode("ascii", "replace"))

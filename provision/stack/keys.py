"""Gateway API keys: generation, hashing, and the public demo keys of the dev stack."""

from __future__ import annotations

import hashlib
import re
import secrets

from provision.stack import contract
from provision.stack.contract import KEY_PREFIX

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BODY_LENGTH = 40  # ~238 bits of entropy
KEY_PATTERN = re.compile(contract.KEY_PATTERN)
HASH_PATTERN = re.compile(contract.HASH_PATTERN)

# Demo keys are derived from a PUBLIC seed so that `make dev` on a fresh clone can print
# working keys while the stack file holds only hashes. Anyone can derive them, so the
# Pulumi program refuses them unless the stack sets `allowDemoKeys: true` (see
# docs/decisions/0003-public-demo-keys.md).
_DEMO_SEED = b"llm-gateway public demo key v1:"


def generate_key() -> str:
    """A new key from the OS's cryptographically secure source."""
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LENGTH))


def hash_key(plain: str) -> str:
    """SHA-256 hex of the key as sent by clients: the only form that is ever stored."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def demo_key(key_id: str) -> str:
    """The public, deterministic demo key for `key_id` (dev stack only)."""
    digest = hashlib.sha256(_DEMO_SEED + key_id.encode("utf-8")).digest()
    number = int.from_bytes(digest, "big")
    body = []
    for _ in range(_BODY_LENGTH):
        number, index = divmod(number, len(_ALPHABET))
        body.append(_ALPHABET[index])
    return KEY_PREFIX + "".join(body)


def is_demo_hash(key_id: str, sha256_hex: str) -> bool:
    return hash_key(demo_key(key_id)) == sha256_hex


def mask(plain_or_hash: str) -> str:
    """Enough to recognise a key or hash in a listing, never enough to use it."""
    return f"{plain_or_hash[:12]}…{plain_or_hash[-4:]}"

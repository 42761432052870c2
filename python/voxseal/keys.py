"""The training and archive identities, wrapped under KMS: envelope encryption with a dedicated
key and an encryption context naming the project and the purpose.

A wrapped identity is a small JSON document (`voxseal.wrapped-identity/1`): a 256-bit data key
from KMS `GenerateDataKey` (its KMS ciphertext kept, the plaintext used once), and the age
identity encrypted under it with ChaCha20-Poly1305. It lives in Secrets Manager, so reading the
ciphertext is itself a permission of its own, versioned and logged; only a principal whose role
allows `kms:Decrypt` on that key with that encryption context can unwrap it, and CloudTrail
records every unwrap. Unwrapping happens in memory only.

Python cannot promise to erase memory: the identity string and the data key live in Python
objects until they are collected. Buffers this module owns (`bytearray`) are overwritten after use.

`identity_from_file` reads a plaintext key file: for tests only.
"""

import base64
import json
import os

import pyrage
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

FORMAT = "voxseal.wrapped-identity/1"
PURPOSES = ("training", "archive")


class WrappedKeyError(ValueError):
    """A wrapped identity cannot be used as asked; the message says why."""


def encryption_context(project, purpose):
    """The KMS encryption context of a project's identity for `purpose` (also the AEAD's
    associated data)."""
    if purpose not in PURPOSES:
        raise WrappedKeyError(f"purpose {purpose!r}: use training or archive")
    return {"voxseal:project": project, "voxseal:purpose": purpose}


def _aad(context):
    return json.dumps({"format": FORMAT, **context}, sort_keys=True, separators=(",", ":")).encode()


def wrap(kms, key_id, identity_text, project, purpose):
    """The wrapped document (bytes) of an age identity (`AGE-SECRET-KEY-1...`)."""
    pyrage.x25519.Identity.from_str(identity_text)  # refuse anything that is not an identity
    context = encryption_context(project, purpose)
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    key = bytearray(dk["Plaintext"])
    try:
        nonce = os.urandom(12)
        sealed = ChaCha20Poly1305(bytes(key)).encrypt(nonce, identity_text.encode(), _aad(context))
    finally:
        key[:] = bytes(len(key))
    doc = {
        "format": FORMAT,
        "project": project,
        "purpose": purpose,
        "kms_key_id": dk["KeyId"],
        "wrapped_key": base64.b64encode(dk["CiphertextBlob"]).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return json.dumps(doc, indent=1).encode()


def unwrap(kms, document, project, purpose):
    """The age identity in a wrapped document, decrypted in memory through KMS Decrypt with the
    project's and purpose's encryption context."""
    try:
        doc = json.loads(document)
        ok = isinstance(doc, dict) and doc.get("format") == FORMAT
    except (UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    if not ok:
        raise WrappedKeyError(f"not a wrapped identity ({FORMAT})")
    if (doc.get("project"), doc.get("purpose")) != (project, purpose):
        raise WrappedKeyError(
            f"this wrapped identity is for project {doc.get('project')!r}, purpose {doc.get('purpose')!r};"
            f" asked for {project!r}, {purpose!r}"
        )
    context = encryption_context(project, purpose)
    try:
        wrapped, nonce, sealed = (base64.b64decode(doc[k], validate=True) for k in ("wrapped_key", "nonce", "ciphertext"))
    except (KeyError, ValueError, TypeError):
        raise WrappedKeyError("a wrapped identity with a malformed field") from None
    out = kms.decrypt(CiphertextBlob=wrapped, KeyId=doc["kms_key_id"], EncryptionContext=context)
    key = bytearray(out["Plaintext"])
    try:
        plain = bytearray(ChaCha20Poly1305(bytes(key)).decrypt(nonce, sealed, _aad(context)))
    except Exception:
        raise WrappedKeyError("the wrapped identity does not decrypt under its data key (altered?)") from None
    finally:
        key[:] = bytes(len(key))
    try:
        return pyrage.x25519.Identity.from_str(plain.decode())
    finally:
        plain[:] = bytes(len(plain))


def store(sm, name, document, kms_key_id=None):
    """Puts a wrapped document into Secrets Manager under `name` (a new version if it exists)."""
    try:
        sm.put_secret_value(SecretId=name, SecretBinary=document)
    except sm.exceptions.ResourceNotFoundException:
        args = {"Name": name, "SecretBinary": document, "Description": "Voxseal: a KMS-wrapped age identity"}
        if kms_key_id:
            args["KmsKeyId"] = kms_key_id
        sm.create_secret(**args)


def load(sm, name):
    """The wrapped document stored under `name`."""
    return sm.get_secret_value(SecretId=name)["SecretBinary"]


def identity_text_from_file(path):
    """The `AGE-SECRET-KEY-1...` line of a plaintext identity file."""
    with open(path) as f:
        line = next((l.strip() for l in f if l.startswith("AGE-SECRET-KEY-")), None)
    if line is None:
        raise WrappedKeyError(f"{path}: no AGE-SECRET-KEY line")
    return line


def identity_from_file(path):
    """A plaintext identity file (`voxseal keygen`, `project init`). Tests only: production
    identities are wrapped under KMS."""
    return pyrage.x25519.Identity.from_str(identity_text_from_file(path))

"""Sealing small secrets (TOTP seeds) with KMS: the only module that calls KMS.

A sealed value is the KMS ciphertext of the secret, base64 text, stored in a table item. Every seal is
bound to an encryption context naming the org and the principal it belongs to (KMS authenticates the
context with the ciphertext), so a sealed value copied onto another principal's item, or into another
org, does not open: KMS refuses it, and so does ``open``. Deployed, the key is the template's
``SecondFactorKey``; locally it is moto's KMS (an alias the local stack creates).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from botocore.exceptions import ClientError

from appengine_core.infra import aws
from appengine_core.infra.errors import ServiceUnavailable
from appengine_core.infra.settings import get_settings

# KMS encrypts at most 4 KB directly; the secrets sealed here are tens of bytes.
MAX_PLAINTEXT_BYTES = 4096


class SealBroken(Exception):
    """A sealed value that does not open under its context (tampered, moved, or not a seal at all)."""


def sealing_context(orgid: str, principal_sk: str, purpose: str) -> dict[str, str]:
    """The encryption context of a principal's secret: what a ciphertext is bound to."""
    return {"appengine:orgid": orgid, "appengine:principal": principal_sk, "appengine:purpose": purpose}


class Sealer:
    def __init__(self, key_id: str | None = None) -> None:
        self._key_id = key_id

    @property
    def key_id(self) -> str:
        key_id = self._key_id or get_settings().second_factor_key
        if not key_id:
            raise ServiceUnavailable("two-factor authentication is not configured (no sealing key)")
        return key_id

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        """``plaintext`` encrypted under the key, bound to ``context``: base64 text to store."""
        data = plaintext.encode()
        if len(data) > MAX_PLAINTEXT_BYTES:
            raise ValueError("too large to seal directly")
        response = aws.kms().encrypt(KeyId=self.key_id, Plaintext=data, EncryptionContext=dict(context))
        return base64.b64encode(response["CiphertextBlob"]).decode("ascii")

    def open(self, sealed: str, context: Mapping[str, str]) -> str:
        """The plaintext of a sealed value; ``SealBroken`` when it does not open under ``context``."""
        try:
            blob = base64.b64decode(sealed.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise SealBroken() from exc
        try:
            response = aws.kms().decrypt(
                KeyId=self.key_id, CiphertextBlob=blob, EncryptionContext=dict(context)
            )
        except ClientError as error:
            if aws.client_error_code(error) in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise SealBroken() from error
            raise
        try:
            return response["Plaintext"].decode()
        except UnicodeDecodeError as exc:
            raise SealBroken() from exc

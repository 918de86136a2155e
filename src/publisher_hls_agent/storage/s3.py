"""The S3 client, behind one small interface, with botocore's errors mapped at the edge.

``UploadError.cause`` says what kind of failure it was, because what to do differs:
``network`` (and a server's 5xx) is retried for as long as it lasts; ``credentials``
and ``bucket`` will not fix themselves, so the recording stays local and its job is
marked failed with the reason. Messages never carry the keys.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, SSLError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..config import S3Config
from ..errors import UploadError

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                     "ExpiredToken", "InvalidToken", "InvalidClientTokenId"}


@dataclass(frozen=True)
class Stored:
    key: str
    bytes: int


class S3Store:
    """One client for the process; ``async with S3Store(config)``."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._exit: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    async def __aenter__(self) -> S3Store:
        config = self.config
        boto_config = BotoConfig(
            region_name=config.region,
            s3={"addressing_style": "path" if config.force_path_style else "virtual"},
            retries={"max_attempts": 1, "mode": "standard"},  # ours retry, with backoff
            connect_timeout=5, read_timeout=30,
        )
        self._exit = contextlib.AsyncExitStack()
        self._client = await self._exit.enter_async_context(get_session().create_client(
            "s3", endpoint_url=config.endpoint, region_name=config.region,
            aws_access_key_id=config.access_key, aws_secret_access_key=config.secret_key,
            aws_session_token=config.session_token, config=boto_config))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._exit is not None:
            await self._exit.aclose()

    async def put(self, key: str, body: bytes, content_type: str) -> Stored:
        extra = {"ACL": self.config.object_acl} if self.config.object_acl else {}
        try:
            await self._client.put_object(Bucket=self.config.bucket, Key=key, Body=body,
                                          ContentType=content_type, **extra)
        except Exception as exc:
            raise _mapped(exc) from None
        return Stored(key, len(body))

    async def exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise _mapped(exc) from None
        except Exception as exc:
            raise _mapped(exc) from None
        return True


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _mapped(exc: Exception) -> UploadError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = _status(exc)
        if code in _CREDENTIAL_CODES or status in (401, 403):
            return UploadError("credentials", f"the store refused the credentials ({code})")
        if code == "NoSuchBucket":
            return UploadError("bucket", "the bucket does not exist")
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
            return UploadError("server", f"the store failed ({code or status})")
        return UploadError("other", f"the store answered {code or status}")
    if isinstance(exc, SSLError):  # a certificate not trusted is no passing outage
        return UploadError("tls", "TLS with the store failed (is its certificate trusted? "
                           "AWS_CA_BUNDLE names extra CAs)")
    if isinstance(exc, NoCredentialsError):
        return UploadError("credentials", "no credentials")
    if isinstance(exc, BotoConnectionError | HTTPClientError | aiohttp.ClientError | OSError
                  | TimeoutError):
        return UploadError("network", f"cannot reach the store ({type(exc).__name__})")
    return UploadError("other", type(exc).__name__)

"""MinIO, built with ``go install`` by scripts/install-tools, as the tests' S3 store:
started on a free loopback port with its own data folder, stopped and started again
(same port, same data) for outage tests."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from publisher_hls_agent.config import S3Config

from . import TOOLS
from .livekit_server import free_port

BINARY = TOOLS / "minio"
ACCESS_KEY, SECRET_KEY = "minio-test-user", "minio-test-secret-key"
DOMAIN = "minio.test"  # virtual-hosted-style names: scripts/netns-run maps them to loopback


@dataclass
class MinIO:
    data: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    certs: Path | None = None  # with TLS: public.crt (also the CA to trust), private.key

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.certs else 'http'}://127.0.0.1:{self.port}"

    def s3_config(self, bucket: str, **overrides: object) -> S3Config:
        settings: dict[str, object] = {
            "endpoint": self.endpoint, "bucket": bucket, "region": "us-east-1",
            "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "session_token": None,
            "prefix": "", "use_ssl": False, "force_path_style": True, "object_acl": None,
            "realtime_upload": False, **overrides}
        return S3Config(**settings)  # type: ignore[arg-type]

    def environment(self, bucket: str, **settings: str) -> dict[str, str]:
        """The agent's S3_* variables for this store."""
        return {"S3_ENDPOINT": self.endpoint, "S3_BUCKET": bucket, "S3_ACCESS_KEY": ACCESS_KEY,
                "S3_SECRET_KEY": SECRET_KEY, **settings}

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        """An S3 client with the root credentials (buckets, listings, downloads)."""
        async with get_session().create_client(
                "s3", endpoint_url=self.endpoint, region_name="us-east-1",
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                verify=str(self.certs / "public.crt") if self.certs else None) as client:
            yield client

    async def create_bucket(self, name: str) -> None:
        async with self.client() as client:
            await client.create_bucket(Bucket=name)

    async def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``, downloaded."""
        found = {}
        async with self.client() as client:
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    reply = await client.get_object(Bucket=bucket, Key=entry["Key"])
                    async with reply["Body"] as body:
                        found[entry["Key"]] = await body.read()
        return found

    async def keys(self, bucket: str, prefix: str = "") -> list[str]:
        async with self.client() as client:
            reply = await client.list_objects_v2(Bucket=bucket, Prefix=prefix)
            return [entry["Key"] for entry in reply.get("Contents", [])]

    def start(self) -> None:
        env = {**os.environ, "MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY,
               "MINIO_DOMAIN": DOMAIN, "MINIO_BROWSER": "off",
               "MINIO_UPDATE": "off", "MINIO_CI_CD": "on"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BINARY), "server", str(self.data), "--quiet",
                 *(["--certs-dir", str(self.certs)] if self.certs else []),
                 "--address", f"127.0.0.1:{self.port}",
                 "--console-address", f"127.0.0.1:{free_port()}"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"minio exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(urllib.error.URLError, ConnectionError), \
                    urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1,
                                           context=self._tls_context()) as reply:
                if reply.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("minio did not come up in 30 s")

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.certs is None:
            return None
        return ssl.create_default_context(cafile=str(self.certs / "public.crt"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_minio(work: Path, *, tls: bool = False) -> Iterator[MinIO]:
    """MinIO on loopback; with ``tls``, HTTPS with a self-signed certificate for
    127.0.0.1 (``minio.certs / "public.crt"`` is the CA to trust)."""
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is missing: run scripts/install-tools")
    (work / "data").mkdir(parents=True, exist_ok=True)
    minio = MinIO(work / "data", free_port(), work / "minio.log",
                  certs=_self_signed(work / "certs") if tls else None)
    minio.start()
    try:
        yield minio
    finally:
        minio.stop()


def _self_signed(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minio.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(DOMAIN)]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "public.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "private.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder


async def read_then_list(client: Any, bucket: str, suffix: str) -> tuple[dict[str, bytes],
                                                                         set[str]]:
    """The objects whose keys end with ``suffix``, downloaded, and then every key: what
    a reader sees who fetches those first (a playlist, then its segments). ``client``:
    one of ``MinIO.client()``, kept for many calls (making one costs the loop ~0.1 s)."""
    first = await client.list_objects_v2(Bucket=bucket)
    read = {}
    for entry in first.get("Contents", []):
        if entry["Key"].endswith(suffix):
            reply = await client.get_object(Bucket=bucket, Key=entry["Key"])
            async with reply["Body"] as body:
                read[entry["Key"]] = await body.read()
    after = await client.list_objects_v2(Bucket=bucket)
    return read, {entry["Key"] for entry in after.get("Contents", [])}

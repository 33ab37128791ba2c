"""A throwaway S3 endpoint for tests: moto's server on loopback, in a thread of this process.

    with moto_s3() as s3:          # or the `moto_s3_url` fixture below
        store = build_blob_store(s3.url, tmp)         # s3://<bucket>?endpoint=…&region=…
        other = s3.new_bucket_url()                   # a second, empty bucket
        s3.client().list_multipart_uploads(Bucket=s3.bucket)

The AWS credential/region variables are set for the whole process while the server runs (and
restored afterwards), so anything that builds a boto3 client from the environment (the app
in a TestClient, a store built by the factory) talks to it without further setup. A live
server subprocess must be given `s3.env` explicitly. moto does not verify signatures:
presigned-URL signature checks belong to the local adapter's tests.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

REGION = "us-east-1"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Anything that could point boto3 at real credentials or another endpoint.
_CLEARED = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3")


@dataclass
class MotoS3:
    endpoint: str
    bucket: str
    region: str = REGION
    env: dict[str, str] = field(default_factory=lambda: dict(ENV))
    _client: Any = field(default=None, repr=False)

    def url_for(self, bucket: str, prefix: str | None = None) -> str:
        url = f"s3://{bucket}?endpoint={self.endpoint}&region={self.region}"
        return url if prefix is None else f"{url}&prefix={prefix}"

    @property
    def url(self) -> str:
        return self.url_for(self.bucket)

    def client(self) -> Any:
        """A boto3 S3 client for the server (built once: building one takes ~0.3 s)."""
        if self._client is not None:
            return self._client
        import boto3
        from botocore.config import Config

        self._client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return self._client

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def new_bucket_url(self, prefix: str | None = None) -> str:
        return self.url_for(self.new_bucket(), prefix)


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """Start moto's S3 server on 127.0.0.1 (free port), create a bucket, yield; stop after."""
    pytest.importorskip("moto.server", reason="needs moto[server]")
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.server import ThreadedMotoServer

    # TCP_NODELAY on the server's sockets: werkzeug writes headers and body separately, and
    # Nagle + delayed ACKs would otherwise add up to 40 ms to a request on loopback.
    MotoRequestHandler.disable_nagle_algorithm = True
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    saved = {k: os.environ.get(k) for k in (*ENV, *_CLEARED)}
    for k in _CLEARED:
        os.environ.pop(k, None)
    os.environ.update(ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = MotoS3(endpoint=f"http://{host}:{port}", bucket="")
        s3.bucket = s3.new_bucket()
        yield s3
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def moto_s3_server() -> Iterator[MotoS3]:
    """One moto server for the session; take a fresh bucket per test with new_bucket_url()."""
    with moto_s3() as s3:
        yield s3


@pytest.fixture
def moto_s3_url(moto_s3_server: MotoS3) -> str:
    """The s3:// URL of a fresh, empty bucket on the session's moto server."""
    return moto_s3_server.new_bucket_url()

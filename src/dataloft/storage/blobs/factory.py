"""Build the blob store named by `DATALOFT_BLOB_URL`.

''                       -> a local directory under the data dir (embedded default)
file:///abs/path         -> a local directory at that path
s3://bucket[/prefix/]?endpoint=http://host:9000&region=eu-west-1&prefix=blobs/
                         -> an S3-compatible bucket; credentials come from the standard AWS
                            environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles,
                            instance roles). Optional: part_size (bytes, >= 5 MiB),
                            addressing=path|virtual (default: path with an endpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dataloft.storage.blobs.base import BlobStore

_S3_PARAMS = {"endpoint", "region", "prefix", "part_size", "addressing"}


def build_blob_store(blob_url: str, default_dir: Path) -> BlobStore:
    from dataloft.storage.blobs.local import LocalBlobStore

    blob_url = (blob_url or "").strip()
    if not blob_url:
        return LocalBlobStore(default_dir)
    parts = urlsplit(blob_url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"blob URL {blob_url!r}: write a local directory as file:///abs/path")
        if parts.query or parts.fragment:
            raise ValueError(f"blob URL {blob_url!r}: file URLs take no query or fragment")
        return LocalBlobStore(Path(unquote(parts.path)))
    if scheme == "s3":
        return _s3(blob_url, parts.netloc, parts.path, parts.query, parts.fragment)
    raise ValueError(f"blob URL {blob_url!r} is not supported: use '' (local directory under "
                     "the data dir), file:///path or s3://bucket?endpoint=…&region=…")


def _s3(url: str, bucket: str, path: str, query: str, fragment: str) -> BlobStore:
    if not bucket or "@" in bucket or ":" in bucket:
        raise ValueError(f"blob URL {url!r}: expected s3://bucket?…; credentials belong in "
                         "the AWS environment variables, not in the URL")
    if fragment:
        raise ValueError(f"blob URL {url!r}: s3 URLs take no fragment")
    q = _s3_query(url, query)
    kwargs: dict[str, Any] = {}
    endpoint = q.get("endpoint")
    if endpoint:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.netloc:
            raise ValueError(f"blob URL {url!r}: endpoint must be an http(s) URL, "
                             f"not {endpoint!r}")
        kwargs["endpoint_url"] = endpoint
    if q.get("region"):
        kwargs["region"] = q["region"]
    kwargs.update(_s3_prefix(url, path, q))
    if "part_size" in q:
        if not q["part_size"].isascii() or not q["part_size"].isdigit():
            raise ValueError(f"blob URL {url!r}: part_size must be a number of bytes")
        kwargs["part_size"] = int(q["part_size"])
    if "addressing" in q:
        if q["addressing"] not in ("path", "virtual"):
            raise ValueError(f"blob URL {url!r}: addressing must be path or virtual")
        kwargs["addressing_style"] = q["addressing"]
    try:
        from dataloft.storage.blobs.s3 import S3BlobStore
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise ValueError("s3:// blob URLs need boto3 installed") from exc
    return S3BlobStore(bucket, **kwargs)


def _s3_query(url: str, query: str) -> dict[str, str]:
    try:
        raw = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ValueError(f"blob URL {url!r}: malformed query: {exc}") from exc
    unknown = sorted(set(raw) - _S3_PARAMS)
    if unknown:
        raise ValueError(f"blob URL {url!r}: unknown parameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(_S3_PARAMS))}")
    repeated = sorted(k for k, v in raw.items() if len(v) > 1)
    if repeated:
        raise ValueError(f"blob URL {url!r}: parameter(s) given twice: {', '.join(repeated)}")
    return {k: v[0] for k, v in raw.items()}


def _s3_prefix(url: str, path: str, q: dict[str, str]) -> dict[str, str]:
    path_prefix = path.strip("/")
    if "prefix" in q and path_prefix:
        raise ValueError(f"blob URL {url!r}: give the prefix as the path or as ?prefix=, "
                         "not both")
    if "prefix" in q:
        return {"prefix": q["prefix"]}
    return {"prefix": path_prefix + "/"} if path_prefix else {}

"""The Python client of dataloft: `Client` (sync) and `AsyncClient`, over httpx.

    from dataloft.client import Client
    with Client() as dl:   # DATALOFT_URL, DATALOFT_API_KEY
        ds = dl.create_dataset("notes")
        f = dl.upload("notes.txt")
        dl.attach(ds, f)
        dl.sync(ds, f, wait=60)  # .status == 'completed' once synced
        print(dl.search(ds, "stairs").records[0].text)

It imports nothing of the server, so it works from any machine with httpx and pydantic.
"""

from dataloft.client.async_client import AsyncClient
from dataloft.client.core import ApiError
from dataloft.client.models import (
    Attachment,
    Dataset,
    Event,
    File,
    QueryResult,
    Reply,
    SearchHit,
    SearchResult,
    SyncResult,
    SyncStatus,
)
from dataloft.client.sync_client import Client

__all__ = ["ApiError", "AsyncClient", "Attachment", "Client", "Dataset", "Event", "File",
           "QueryResult", "Reply", "SearchHit", "SearchResult", "SyncResult", "SyncStatus"]

"""Wire shape of a sync request's answer: queued at once, or (with `?wait=SECONDS`) the
attachment's state once the sync ended or the wait ran out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dataloft.files.schemas import AttachmentOut
from dataloft.kit.wire import Out, absent


class SyncAnswer(Out):
    id: str
    status: Literal["queued", "in_progress", "completed", "failed"] = Field(
        description="`queued` without `?wait`; with it, the attachment's state (the least "
                    "advanced one for a file's sync into several datasets).")
    datasetIds: list[str] = absent("For a file's sync: the datasets it was queued into.")
    done: bool = absent("With `?wait`: whether the sync ended before the answer.")
    attachment: AttachmentOut | None = absent("With `?wait` on a dataset's file: its "
                                              "attachment, `lastError` naming a failure.")
    attachments: list[AttachmentOut] = absent("With `?wait` on a file: each attachment.")

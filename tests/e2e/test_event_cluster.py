"""Cluster mode: two API replicas on one PostgreSQL and one bucket. An event written through
one replica reaches a subscriber of the other (streams poll the shared events table), and a
webhook made on one is delivered for an event made on the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import standardwebhooks

from tests.support.api import create_dataset, create_file
from tests.support.live import LiveServer
from tests.support.pg import Databases
from tests.support.receiver import Receiver
from tests.support.s3 import MotoS3

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_events_cross_replicas(tmp_path: Path, pg_databases: Databases,
                               moto_s3_server: MotoS3) -> None:
    database = pg_databases.create()
    receiver = Receiver().start()
    env = {**moto_s3_server.env, "DATALOFT_DATABASE_URL": database,
           "DATALOFT_BLOB_URL": moto_s3_server.new_bucket_url(),
           "DATALOFT_EVENT_POLL_SECONDS": "0.1", "DATALOFT_URL_FETCH_ALLOW": receiver.allow,
           # Replicas with data directories of their own share the signing keys' master key.
           "DATALOFT_SECRET_KEY": "event-cluster-master-key"}
    one = LiveServer(data_dir=tmp_path / "one", env_extra=env).start()
    two = LiveServer(data_dir=tmp_path / "two", env_extra=env).start()
    try:
        with one.client() as c1, two.client() as c2:
            hook = c1.post("/api/v1/webhook/create", json={
                "url": receiver.url, "events": ["file.attached"]}).json()
            ds = create_dataset(c2)
            with c1.stream("POST", "/api/v1/event/log/subscribe", json={}) as sub:
                file_id = create_file(c2, b"across replicas")
                r = c2.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach",
                            json={"type": "source"})
                assert r.status_code == 200, r.text
                for line in sub.iter_lines():
                    obj = json.loads(line)
                    if obj["type"] == "item" and obj["data"]["fileId"] == file_id:
                        assert obj["data"]["type"] == "file.attached"
                        break
        (got,) = receiver.wait(lambda rs: len(rs) >= 1)
        body = standardwebhooks.Webhook(hook["secret"]).verify(got.body, got.headers)
        assert body["data"]["fileId"] == file_id
    finally:
        one.stop()
        two.stop()
        receiver.stop()
        pg_databases.give_back(database)

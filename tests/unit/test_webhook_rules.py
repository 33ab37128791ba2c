"""The pure rules of webhooks: the retry schedule and the Standard Webhooks signature."""

from __future__ import annotations

from datetime import UTC, datetime

import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from dataloft.webhooks import signing
from dataloft.webhooks.tasks import DeliveryConfig, backoff_ms


@given(attempts=st.integers(1, 200), base=st.floats(0.01, 100), cap=st.floats(0.01, 10_000))
def test_backoff_doubles_is_capped_and_jittered_in_its_upper_half(attempts: int, base: float,
                                                                  cap: float) -> None:
    config = DeliveryConfig(retry_base_s=base, retry_max_s=cap)
    full = min(cap, base * 2 ** (attempts - 1)) * 1000
    assert full / 2 - 1 <= backoff_ms(attempts, config) <= full


def test_a_day_of_retries_takes_a_bounded_number_of_attempts() -> None:
    config = DeliveryConfig()  # the defaults: 5 s doubling, capped at an hour
    elapsed, attempts = 0.0, 0
    while elapsed < 86_400_000:
        attempts += 1
        elapsed += backoff_ms(attempts, config)
    assert 20 <= attempts <= 60


@given(body=st.text(max_size=2000), msg=st.text(min_size=1, max_size=40).filter(
    lambda s: "." not in s and s.isprintable()), ts=st.integers(1, 2**33))
def test_signatures_match_the_standardwebhooks_library(body: str, msg: str, ts: int) -> None:
    secret = signing.new_secret()
    when = datetime.fromtimestamp(ts, UTC)
    expected = standardwebhooks.Webhook(secret).sign(msg, when, body)
    assert signing.sign(secret, msg, ts, body.encode()) == expected

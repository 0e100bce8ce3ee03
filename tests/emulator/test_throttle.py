"""ARM throttling: token buckets per subscription for writes and reads, and the load the emulator carries."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import requests

from devtools.emulator.config import Bucket, ThrottleConfig
from devtools.emulator.throttle import Throttle

from .conftest import SHARE, SHARE_BODY, SQL, SQL_BODY, VAULT, VM1, VM2, Client, FakeMonotonic, wait_for

OTHER_VAULT = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-other/providers/" \
    "Microsoft.RecoveryServices/vaults/vault-other"
VM9 = ("IaasVMContainer;iaasvmcontainerv2;rg-other;vm9", "VM;iaasvmcontainerv2;rg-other;vm9")


def test_writes_beyond_the_bucket_are_429_with_retry_after(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(throttle={"writes": {"capacity": 2, "refill_per_second": 0.1}})

    codes = [arm.trigger(VM1).status_code, arm.trigger(VM2).status_code]
    throttled = arm.trigger(SHARE, SHARE_BODY)

    assert codes == [202, 202]
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    stats = arm.stats()
    assert stats["throttled"] == 1 and len(stats["triggers_by_item"]) == 2


def test_reads_have_their_own_bucket_and_subscriptions_are_apart(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(throttle={"writes": {"capacity": 1, "refill_per_second": 0.1},
                             "reads": {"capacity": 3, "refill_per_second": 0.1}})

    assert arm.trigger(VM1).status_code == 202
    assert arm.trigger(SQL, SQL_BODY).status_code == 429
    assert arm.trigger(VM9, vault=OTHER_VAULT).status_code == 202
    reads = [arm.get(f"{VAULT}/backupJobs").status_code for _ in range(4)]
    assert reads == [200, 200, 200, 429]
    remaining = arm.get(f"{OTHER_VAULT}/backupJobs").headers["x-ms-ratelimit-remaining-subscription-reads"]
    assert remaining == "2"


def test_buckets_refill_in_real_time(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(throttle={"reads": {"capacity": 1, "refill_per_second": 20}})

    assert arm.get(f"{VAULT}/backupJobs").status_code == 200
    refused = arm.get(f"{VAULT}/backupJobs")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # 1/20 s to the next token, in ARM's whole seconds
    wait_for(lambda: arm.get(f"{VAULT}/backupJobs").status_code == 200)

    assert arm.stats()["throttled"] >= 1


def test_a_bucket_refills_at_its_rate_and_never_above_its_capacity() -> None:
    clock = FakeMonotonic()
    throttle = Throttle(ThrottleConfig(reads=Bucket(capacity=2, refill_per_second=4)), clock)

    assert [throttle.take("S", "reads").allowed for _ in range(3)] == [True, True, False]
    assert throttle.take("S", "reads").retry_after == 1
    clock.now += 0.25  # one token's worth
    assert [throttle.take("s", "reads").allowed for _ in range(2)] == [True, False]  # subscriptions ignore case
    clock.now += 3600
    assert [throttle.take("S", "reads").allowed for _ in range(3)] == [True, True, False]
    assert throttle.take("other", "reads").allowed
    assert throttle.take("S", "writes").allowed  # writes have a bucket of their own


def test_a_refused_take_asks_for_the_wait_until_the_next_token() -> None:
    clock = FakeMonotonic()
    throttle = Throttle(ThrottleConfig(writes=Bucket(capacity=1, refill_per_second=0.1)), clock)

    throttle.take("S", "writes")
    first = throttle.take("S", "writes")
    clock.now += 4
    later = throttle.take("S", "writes")

    assert (first.allowed, first.retry_after, first.remaining) == (False, 10, 0)
    assert (later.allowed, later.retry_after) == (False, 6)


def test_thousands_of_requests_under_throttling_from_several_clients(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(throttle={"reads": {"capacity": 200, "refill_per_second": 100}})
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    url = arm.url(f"{VAULT}/backupJobs")
    headers = {"Authorization": f"Bearer {arm.token}"}

    def client() -> None:
        local: Counter[int] = Counter()
        with requests.Session() as session:
            for _ in range(500):
                local[session.get(url, headers=headers, verify=arm.ca_bundle, timeout=10).status_code] += 1
        with lock:
            codes.update(local)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert set(codes) == {200, 429} and sum(codes.values()) == 2000
    assert arm.stats()["requests"] == 2001
    assert arm.stats()["throttled"] == codes[429]
    # The bucket never lends: at most its capacity plus what it refilled while the clients ran (elapsed
    # is measured around them, so it can only overstate the refill), and never less than the capacity.
    assert 200 <= codes[200] <= 200 + 100 * elapsed + 1

"""How an IMAP pass splits its mails into batches, and how helper processes are started."""

from __future__ import annotations

import threading

from daemon.adapters.imap import FIRST_BATCH, ramped_batches, tapered_batches
from daemon.processes import start_method


def test_batches_start_small_then_keep_the_configured_size_and_cover_every_uid_once() -> None:
    uids = list(range(1, 1001))
    batches = ramped_batches(uids, 200)
    assert [len(b) for b in batches] == [FIRST_BATCH, 2 * FIRST_BATCH, 4 * FIRST_BATCH, 200, 200, 200, 200, 200 - 175]
    assert [uid for batch in batches for uid in batch] == uids


def test_a_batch_size_under_the_first_batch_is_kept_and_no_uids_make_no_batches() -> None:
    assert [len(b) for b in ramped_batches(list(range(25)), 10)] == [10, 10, 5]
    assert ramped_batches([7], 200) == [[7]]
    assert ramped_batches([], 200) == []


def test_helpers_are_forked_only_from_a_single_thread() -> None:
    assert start_method() == ("fork" if threading.active_count() == 1 else "spawn")
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert start_method() == "spawn"
    finally:
        release.set()
        other.join()


def test_batches_stored_as_they_come_end_small_so_little_is_left_to_send_after_the_last_commit() -> None:
    assert tapered_batches(2000, 200) == [200] * 9 + [25, 100, 50, 25]
    assert tapered_batches(250, 200) == [75, 100, 50, 25]
    assert tapered_batches(160, 150) == [85, 50, 25]  # the tail stays under one batch
    assert tapered_batches(200, 200) == [200] and tapered_batches(7, 200) == [7] and tapered_batches(0, 200) == []
    for total, size in ((5000, 40), (26, 25), (10, 3), (1, 1), (999, 5000)):
        sizes = tapered_batches(total, size)
        assert sum(sizes) == total and all(0 < s <= size for s in sizes)

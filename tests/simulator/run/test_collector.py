from __future__ import annotations

import gc

from simulator.run.collector import run_collector


def test_a_run_freezes_what_is_alive_raises_the_young_threshold_and_puts_both_back() -> None:
    before = gc.get_threshold()
    alive = [object() for _ in range(10)]  # noqa: F841 -- alive when the run starts
    with run_collector(young=12_345):
        assert gc.get_threshold() == (max(12_345, before[0]), before[1], before[2])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_settings_come_back_when_the_run_fails() -> None:
    before = gc.get_threshold()
    try:
        with run_collector():
            raise RuntimeError("the run broke")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0

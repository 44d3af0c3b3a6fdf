"""The shared timing helpers: what they record, not how fast anything is."""

from __future__ import annotations

import time

import pytest
import torch

from replib import timing


def test_stopwatch_records_the_blocks_wall_seconds_even_when_it_raises():
    with timing.stopwatch() as clock:
        time.sleep(0.02)
    assert 0.02 <= clock["seconds"] < 5
    with pytest.raises(RuntimeError), timing.stopwatch() as failed:
        raise RuntimeError("inside")
    assert failed["seconds"] >= 0


def test_interleaved_step_seconds_times_every_candidate_after_its_warmup():
    calls = {"a": 0, "b": 0}

    def step(name):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    times = timing.interleaved_step_seconds({"a": step("a"), "b": step("b")}, steps=3, warmup=2)
    assert calls == {"a": 5, "b": 5} and {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}


def test_torch_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    with timing.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before

"""The steps a run's schedules span: --max-steps, --schedule-steps, or the steps a
--train-time budget will reach, estimated once and kept by --resume."""

from __future__ import annotations

import json

import pytest
from accelerate import Accelerator

from facefilter.errors import UserError
from facefilter.models.base import Progress
from facefilter.models.makeover import MakeoverConfig
from facefilter.runs.config import read_run_config
from facefilter.training import span as span_module
from facefilter.training.config import TrainConfig, check_config
from facefilter.training.engine import train
from facefilter.training.log import METRICS_FILE
from facefilter.training.span import SKIP_STEPS, TIMED_STEPS, ScheduleSpan

TINY = {"encoder": (8, 16), "decoder": (48, 16), "width": 8, "critic": (8, 16)}
DATA = {"data_a": "synth:photo?count=40&where=Male", "data_b": "synth:photo?count=40&where=-Male"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_span(config: TrainConfig, total: int, seconds_per_step: float, deadline: float,
             monkeypatch) -> tuple[ScheduleSpan, int]:  # fmt: skip
    """Steps a ScheduleSpan through a run whose steps take `seconds_per_step`; returns it
    and the step at which it fixed the span (0: never)."""
    clock = Clock()
    monkeypatch.setattr(span_module.time, "monotonic", clock)
    span, fixed_at, summary = ScheduleSpan(config, total), 0, {}
    for step in range(1, 200):
        clock.now += seconds_per_step
        was = span.estimating
        span.observe(step, 0, deadline, Accelerator(cpu=True), summary)
        if was and not span.estimating:
            fixed_at = step
            assert summary == {"schedule_steps": span.steps}
    return span, fixed_at


def test_a_time_budget_spans_the_steps_it_will_reach(tmp_path, monkeypatch):
    """Timed between logged steps (where the engine waited for the device): from the
    first at or after SKIP_STEPS to the first TIMED_STEPS later."""
    config = TrainConfig(out=tmp_path, max_steps=20_000, train_time=10, log_every=10)
    span, fixed_at = run_span(config, 20_000, 0.4, deadline=600.0, monkeypatch=monkeypatch)
    assert (SKIP_STEPS, TIMED_STEPS, fixed_at) == (5, 20, 30)  # timed: steps 11-30
    assert span.steps == 1500  # 600 s at 0.4 s a step


def test_the_span_is_at_most_max_steps_and_given_steps_win(tmp_path, monkeypatch):
    timed = TrainConfig(out=tmp_path, max_steps=800, train_time=10)
    assert run_span(timed, 800, 0.4, 600.0, monkeypatch)[0].steps == 800
    given = TrainConfig(out=tmp_path, max_steps=800, train_time=10, schedule_steps=300)
    span, fixed_at = run_span(given, 800, 0.4, 600.0, monkeypatch)
    assert (span.steps, fixed_at) == (300, 0)
    plain = TrainConfig(out=tmp_path, max_steps=800)  # no budget: nothing to estimate
    span, fixed_at = run_span(plain, 800, 0.4, float("inf"), monkeypatch)
    assert (span.steps, fixed_at) == (800, 0)


def test_a_bad_schedule_steps_is_one_line(tmp_path):
    with pytest.raises(UserError, match="--schedule-steps must be at least 1, got 0"):
        check_config(TrainConfig(out=tmp_path, schedule_steps=0))


def test_the_annealing_half_life_is_a_share_of_the_span_unless_given():
    from facefilter.models import create_family

    family = create_family("makeover", MakeoverConfig(**TINY, annealing_share=0.25), ["a", "b"],
                           "32x40")  # fmt: skip
    assert family.annealing(Progress(250, 1000)) == pytest.approx(0.5)  # a quarter of it
    assert family.annealing(Progress(10_000, 40_000)) == pytest.approx(0.5)  # deep-makeover's
    given = create_family("makeover", MakeoverConfig(**TINY, annealing_half_life=100),
                          ["a", "b"], "32x40")  # fmt: skip
    assert given.annealing(Progress(100, 40_000)) == pytest.approx(0.5)
    with pytest.raises(UserError, match=r"--annealing-share 0\.0 must lie in"):
        MakeoverConfig(annealing_share=0.0).validate(32)


def logged(run) -> list[dict]:
    return [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]


def test_a_timed_run_records_its_span_and_a_resume_keeps_it(tmp_path, capsys):
    """Through the engine: the estimate lands in config.json, the makeover anneals over
    it, and a resumed run takes it from there instead of guessing again."""
    out = tmp_path / "run"
    model = MakeoverConfig(**TINY, annealing_share=0.25, pixel_loss_max=1.0)
    config = TrainConfig(out=out, size="32x40", batch_size=2, max_steps=100_000,
                         train_time=0.5, stop_at=40, num_workers=0, log_every=1,
                         progress=False, **DATA)  # fmt: skip
    train(config, "makeover", model)
    span = read_run_config(out).train["schedule_steps"]
    assert SKIP_STEPS + TIMED_STEPS < span < 100_000
    assert f"the schedules span {span} steps, at the pace of steps 6-25" in (
        capsys.readouterr().out)  # fmt: skip
    resumed = TrainConfig(out=out, size="32x40", batch_size=2, max_steps=100_000,
                          train_time=0.5, stop_at=60, num_workers=0, log_every=1,
                          progress=False, resume=True, **DATA)  # fmt: skip
    train(resumed, "makeover", model)
    assert "the schedules span" not in capsys.readouterr().out
    assert read_run_config(out).train["schedule_steps"] == span
    for row in logged(out):  # every step after the estimate anneals over the same span
        if row["step"] > SKIP_STEPS + TIMED_STEPS:
            a = 0.5 ** ((row["step"] - 1) / (0.25 * span))  # the step's progress: steps before it
            assert row["pixel_share"] == pytest.approx(0.7 + 0.3 * a)


def test_a_run_ends_where_its_schedules_do_and_a_resume_there_is_one_line(tmp_path):
    """Past its span a schedule has decayed to nothing (cyclegan's learning rate is 0):
    the run is over there, and resuming it asks for a longer span in one line."""
    out = tmp_path / "run"
    config = TrainConfig(out=out, size="32x40", batch_size=2, max_steps=1000, schedule_steps=8,
                         num_workers=0, progress=False, **DATA)  # fmt: skip
    train(config, "makeover", MakeoverConfig(**TINY))
    saved = read_run_config(out)
    assert saved.train["finished"] is True and logged(out)[-1]["step"] == 8
    again = TrainConfig(out=out, size="32x40", batch_size=2, max_steps=1000, num_workers=0,
                        progress=False, resume=True, **DATA)  # fmt: skip
    with pytest.raises(UserError, match="at step 8, where its schedules end"):
        train(again, "makeover", MakeoverConfig(**TINY))


def test_progressive_growth_fixes_its_phase_only_once_the_span_is_settled():
    from facefilter.models import config_class, create_family

    config = config_class("pgae")(channels=8, max_channels=16, latent_dim=8)
    family = create_family("pgae", config, ["Smiling", "Male"], 32)
    family.prepare_step(Progress(0, 20_000, settled=False))  # a budget still being timed
    assert family.autoencoder(live=True).growth[2] == 0  # nothing fixed yet
    family.prepare_step(Progress(30, 600))
    assert family.autoencoder(live=True).growth[2] == 600 // (2 * len(family.autoencoder(
        live=True).sizes))  # fmt: skip

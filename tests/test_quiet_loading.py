"""lv.load leaves no "Loading weights" bars in outputs, and gives the user's progress setting back
(issue 19 item 8)."""

import pytest

import lvsal_nb as lv

transformers = pytest.importorskip("transformers")
from huggingface_hub.utils import are_progress_bars_disabled  # noqa: E402
from transformers.utils import logging as tlog  # noqa: E402


@pytest.fixture
def restore_progress():
    was, hub_off = tlog.is_progress_bar_enabled(), are_progress_bars_disabled()
    yield
    tlog.enable_progress_bar() if was else tlog.disable_progress_bar()
    if hub_off:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def test_toy_load_prints_no_loading_bar_and_restores_the_setting(capsys, restore_progress):
    tlog.enable_progress_bar()
    lv.load("toy", device="cpu")
    err = capsys.readouterr().err
    assert "Loading weights" not in err, err
    assert tlog.is_progress_bar_enabled() and not are_progress_bars_disabled()  # the user's "on" is back
    # only ours: a direct from_pretrained of the same files still shows the bar
    from pathlib import Path

    from transformers import LlavaForConditionalGeneration

    assets = Path(lv.__file__).parent / "toy" / "assets"
    LlavaForConditionalGeneration.from_pretrained(assets, local_files_only=True)
    assert "Loading weights" in capsys.readouterr().err


def test_a_user_who_turned_bars_off_keeps_them_off(restore_progress):
    from huggingface_hub.utils import disable_progress_bars

    tlog.enable_progress_bar()
    disable_progress_bars()  # transformers' on, huggingface_hub's off
    lv.load("tiny:llava", device="cpu")
    assert tlog.is_progress_bar_enabled() and are_progress_bars_disabled()
    tlog.disable_progress_bar()
    lv.load("tiny:llava", device="cpu")
    assert not tlog.is_progress_bar_enabled()


def test_bars_come_back_after_a_failed_load(restore_progress):
    from lvsal_nb.errors import ConfigError

    tlog.enable_progress_bar()
    with pytest.raises(ConfigError, match="unknown tiny model"):
        lv.load("tiny:nope", device="cpu")
    assert tlog.is_progress_bar_enabled()

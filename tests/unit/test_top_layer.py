import pytest

from publisher_hls_agent.media.top_layer import TopLayerStart

pytestmark = pytest.mark.unit

TOP, MIDDLE, LOW = (1280, 720), (640, 360), (320, 180)


def test_lower_layers_are_held_back_until_the_top_layer_keyframe() -> None:
    start = TopLayerStart(TOP, wait=2.0)
    assert not start.admits(False, None, 0.0)  # nothing before a keyframe
    start.keyframe_wanted = False  # (asked for one: next test)
    assert not start.admits(True, LOW, 0.1)
    assert not start.admits(False, None, 0.2)
    assert not start.admits(True, MIDDLE, 0.5)
    assert start.admits(True, TOP, 0.9)
    assert start.on_top
    assert start.admits(False, None, 0.95)
    assert start.admits(True, LOW, 5.0)  # a later layer change is not its business
    assert start.held_back == 4
    assert not start.keyframe_wanted


def test_a_top_layer_that_never_comes_is_waited_for_a_bounded_time() -> None:
    start = TopLayerStart(TOP, wait=2.0)
    assert not start.admits(True, LOW, 10.0)
    assert not start.admits(False, None, 11.9)
    assert not start.keyframe_wanted
    assert not start.admits(False, None, 12.0)  # waited out: ask for any keyframe
    assert start.keyframe_wanted
    start.keyframe_wanted = False
    assert not start.admits(False, None, 12.1)
    assert not start.keyframe_wanted  # asked once
    assert start.admits(True, MIDDLE, 12.4)
    assert not start.on_top


def test_a_keyframe_after_the_wait_begins_it_whatever_its_size() -> None:
    start = TopLayerStart(TOP, wait=2.0)
    assert not start.admits(True, LOW, 0.0)
    assert start.admits(True, LOW, 2.0)


def test_sizes_count_by_area_so_a_rotated_picture_is_the_top_layer() -> None:
    assert TopLayerStart(TOP).admits(True, (720, 1280), 0.0)


@pytest.mark.parametrize(("published", "size"), [((0, 0), LOW), (TOP, None)])
def test_what_cannot_be_compared_is_let_through(published: tuple[int, int],
                                                 size: tuple[int, int] | None) -> None:
    assert TopLayerStart(published).admits(True, size, 0.0)


def test_delta_frames_before_any_keyframe_ask_for_one_every_second() -> None:
    start = TopLayerStart(TOP, wait=2.0)
    asked = []
    for tenth in range(25):
        assert not start.admits(False, None, tenth / 10)
        if start.keyframe_wanted:
            start.keyframe_wanted = False
            asked.append(tenth / 10)
    assert asked == [0.0, 1.0, 2.0]
    assert not start.admits(True, LOW, 2.5)  # a keyframe came: the layer wait takes over
    assert not start.admits(False, None, 3.6)
    assert not start.keyframe_wanted

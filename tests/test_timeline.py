"""Who sings where (cocompose.timeline): sections of the song by conditioning, merged where nothing
changes, in seconds; the point of the song a time falls on; and the branch point a duet grows from: the
take under a moment is cut there in one undo step, the first part's codes as they were."""

from __future__ import annotations

import numpy as np
import pytest

from cocompose.song import ArtistBlend, Codes, Conditioning, Node, Sampling, SongTree
from cocompose.store import Project, ProjectError
from cocompose.timeline import (
    Section,
    SongPoint,
    branch_point,
    check_voice_change,
    conditioning_changes,
    conditioning_sections,
    credits,
    cut_take,
    locate,
    sections_json,
    voice_label,
)
from cocompose.tree_mirror import TreeSnapshot

ADA = Conditioning("Ada Tone", "rock")
BO = Conditioning("Bo Noise", "rock")
RATE = 4.0  # codes per second: round numbers of seconds


def codes(n: int, first: int = 0) -> Codes:
    return Codes.of(np.arange(first, first + n) % 64)


def chain(*takes: tuple[int, Conditioning | None], root: Conditioning = ADA) -> SongTree:
    """An empty root carrying `root`, then one take after another: (codes, its own change or None)."""
    tree = SongTree()
    tree.attach([Node(1, None, conditioning=root)])
    for i, (n, conditioning) in enumerate(takes, start=2):
        tree.attach([Node(i, i - 1, codes(n), conditioning, Sampling(i))])
    tree.set_current(len(takes) + 1)
    return tree


def reference_sections(tree: SongTree, rate: float) -> list[tuple[float, float, Conditioning]]:
    """Code by code: the conditioning of every code of the current song, then runs of equal ones."""
    per_code = [tree.conditioning_at(i) for i in tree.current_path for _ in range(len(tree.node(i).codes))]
    runs: list[list] = []
    for k, conditioning in enumerate(per_code):
        if runs and runs[-1][2] == conditioning:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, conditioning])
    return [(start / rate, end / rate, c) for start, end, c in runs]


def as_tuples(sections: list[Section]) -> list[tuple[float, float, Conditioning]]:
    return [(s.start_s, s.end_s, s.conditioning) for s in sections]


def test_takes_under_the_same_conditioning_are_one_section():
    tree = chain((8, None), (4, None), (6, ADA))  # a change to what is already sung is no change
    sections = conditioning_sections(tree, tree.current_path, RATE)
    assert as_tuples(sections) == [(0.0, 4.5, ADA)] == reference_sections(tree, RATE)
    assert conditioning_changes(sections) == []


def test_a_change_at_a_take_boundary_starts_a_section_there_and_lasts_for_the_takes_after_it():
    tree = chain((8, None), (4, BO), (6, None), (2, ADA))
    sections = conditioning_sections(tree, tree.current_path, RATE)
    assert as_tuples(sections) == [(0.0, 2.0, ADA), (2.0, 4.5, BO), (4.5, 5.0, ADA)]
    assert as_tuples(sections) == reference_sections(tree, RATE)
    assert conditioning_changes(sections) == [(2.0, "Bo Noise · rock"), (4.5, "Ada Tone · rock")]


def test_a_blend_and_a_lyrics_change_are_changes_and_the_blend_names_both_artists():
    blend = Conditioning("Ada Tone", "rock", blend=ArtistBlend("Bo Noise", 0.3))
    sung = Conditioning("Ada Tone", "rock", lyrics="la la")
    tree = chain((4, blend), (4, sung), (4, None))
    sections = conditioning_sections(tree, tree.current_path, RATE)
    assert as_tuples(sections) == [(0.0, 1.0, blend), (1.0, 3.0, sung)] == reference_sections(tree, RATE)
    assert sections[0].artists == ("Ada Tone", "Bo Noise")
    assert sections[0].label == voice_label(blend) == "Ada Tone + Bo Noise · rock"
    assert sections[1].artists == ("Ada Tone",) and sections[1].label == "Ada Tone · rock"


def test_a_primed_start_counts_and_an_empty_take_covers_no_time():
    tree = SongTree()
    tree.attach([Node(1, None, codes(4), ADA)])  # primed: a second of music before any take
    tree.attach([Node(2, 1, Codes(), BO, Sampling(2))])  # just started, nothing drawn yet
    tree.attach([Node(3, 2, codes(2), None, Sampling(3))])
    tree.set_current(3)
    sections = conditioning_sections(tree, tree.current_path, RATE)
    assert as_tuples(sections) == [(0.0, 1.0, ADA), (1.0, 1.5, BO)] == reference_sections(tree, RATE)
    assert conditioning_sections(tree, (1, 2, 99), RATE) == [Section(0.0, 1.0, ADA)]  # 99: gone


def test_a_time_falls_on_the_nearest_code_boundary_and_a_take_boundary_is_the_earlier_take_end():
    tree = chain((8, None), (4, None))
    assert locate(tree, 3, 0.0, RATE) == SongPoint(1, 0)  # the empty start: new takes go after it
    assert locate(tree, 3, 1.1, RATE) == SongPoint(2, 4)  # 4.4 codes in: the boundary after code 4
    assert locate(tree, 3, 1.99, RATE) == SongPoint(2, 8)  # rounds to 8: where take 2 ends
    assert locate(tree, 3, 3.0, RATE) == SongPoint(3, 4)  # the song's end is a moment to go on from
    assert locate(tree, 2, 1.5, RATE) == SongPoint(2, 6)  # on the song up to take 2 alone
    with pytest.raises(ProjectError, match=r"ends at 3\.00 s"):
        locate(tree, 3, 3.2, RATE)
    with pytest.raises(ProjectError, match="before its start"):
        locate(tree, 3, -1.0, RATE)
    primed = SongTree()
    primed.attach([Node(1, None, codes(4), ADA)])
    with pytest.raises(ProjectError, match="starts with primed audio"):
        locate(primed, 1, 0.0, RATE)
    assert locate(primed, 1, 1.0, RATE) == SongPoint(1, 4)


# -- on a project: the cut, the change, undo ---------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "song.cocompose", conditioning=ADA, planned_seconds=60) as project:
        yield project


def add_take(project: Project, parent: int, n: int, first: int) -> int:
    (take,) = project.add_takes(parent, [Sampling(first)], [codes(n, first)])
    return take


def test_a_branch_point_inside_a_take_cuts_it_there_in_one_undo_step(project):
    rate = project.song.model.codes_per_second
    first = add_take(project, 1, 40, 0)
    second = add_take(project, first, 30, 7)
    project.pick(second)
    before = TreeSnapshot.of(project.tree)
    whole = project.tree.node(first).codes

    assert branch_point(project, second, 25.4 / rate, rate, "Cut for a new voice") == first
    tree = project.tree
    (rest,) = tree.children(first)
    assert tree.node(first).codes == whole.split(25)[0]  # the first part is untouched
    assert tree.node(rest.id).codes == whole.split(25)[1]  # what followed stays, a branch of its own
    assert tree.node(second).parent_id == rest.id and tree.current_path == (1, first, rest.id, second)
    assert tree.conditioning_at(rest.id) == ADA and tree.conditioning_at(second) == ADA  # nothing relabelled
    assert project.undo() == "Cut for a new voice"
    assert TreeSnapshot.of(project.tree) == before


def test_a_branch_point_on_a_take_boundary_or_at_the_end_cuts_nothing(project):
    rate = project.song.model.codes_per_second
    first = add_take(project, 1, 40, 0)
    second = add_take(project, first, 30, 7)
    before = TreeSnapshot.of(project.tree)
    assert branch_point(project, second, 40 / rate, rate) == first
    assert branch_point(project, second, 70 / rate, rate) == second
    assert branch_point(project, second, 0.0, rate) == 1
    assert TreeSnapshot.of(project.tree) == before


def test_a_voice_change_to_the_voice_already_there_or_past_the_end_is_refused(project):
    rate = project.song.model.codes_per_second
    first = add_take(project, 1, 40, 0)
    with pytest.raises(ProjectError, match="Ada Tone · rock already sings"):
        check_voice_change(project.tree, first, 20 / rate, ADA, rate)
    check_voice_change(project.tree, first, 20 / rate, BO, rate)  # another voice: fine
    with pytest.raises(ProjectError, match="nothing at"):
        check_voice_change(project.tree, first, 41 / rate, BO, rate)


def test_cut_take_is_the_cli_cut_seconds_into_a_take(project):
    rate = project.song.model.codes_per_second
    first = add_take(project, 1, 40, 0)
    whole = project.tree.node(first).codes
    cut = cut_take(project, first, 10.4 / rate, rate)
    assert (cut.node_id, cut.at) == (first, 10)
    assert project.tree.node(first).codes + project.tree.node(cut.second_id).codes == whole
    assert project.tree.node(cut.second_id).conditioning is None  # sounds as the whole take did
    with pytest.raises(ProjectError, match="not in this song"):
        cut_take(project, 99, 0.1, rate)


def test_a_duet_credits_both_artists_and_genres_in_order_and_the_sidecar_lists_its_sections():
    jazz = Conditioning("Cleo Hum", "jazz")
    tree = chain((4, None), (4, BO), (4, jazz), (4, ADA))
    path = tree.current_path
    assert credits(tree, path, RATE) == ("Ada Tone & Bo Noise & Cleo Hum", "rock / jazz")
    assert sections_json(tree, path, RATE) == [
        {"start_s": 0.0, "artist": "Ada Tone", "genre": "rock", "lyrics": ""},
        {"start_s": 1.0, "artist": "Bo Noise", "genre": "rock", "lyrics": ""},
        {"start_s": 2.0, "artist": "Cleo Hum", "genre": "jazz", "lyrics": ""},
        {"start_s": 3.0, "artist": "Ada Tone", "genre": "rock", "lyrics": ""},
    ]
    assert credits(chain(), (1,), RATE) == ("Ada Tone", "rock")  # nothing sampled yet: the start's voice

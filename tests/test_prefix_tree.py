"""A group's sequences as one prefix tree, depth-first (rewardforge/forward/prefix_tree.py)."""

from rewardforge.forward.prefix_tree import flat_prefix_tree
from rewardforge.forward.segments import distinct_segments, prefix_tree_segment


def test_a_single_sequence_comes_out_as_it_went_in():
    tree = flat_prefix_tree([[7, 8, 9]])
    assert tree.ids == [7, 8, 9]
    assert tree.positions == [0, 1, 2]
    assert tree.subtree_sizes == [3, 2, 1]
    assert tree.where == [[0, 1, 2]]


def test_a_prompt_with_two_responses_is_the_shared_prompt_segment():
    tree = flat_prefix_tree([[1, 2, 5, 6], [1, 2, 9]])
    assert tree.ids == [1, 2, 5, 6, 9]
    assert tree.positions == [0, 1, 2, 3, 2]  # the second response restarts after the prompt
    assert tree.subtree_sizes == [5, 4, 2, 1, 1]
    assert tree.where == [[0, 1, 2, 3], [0, 1, 4]]


def test_shared_steps_duplicates_and_prefixes_are_fed_once():
    solutions = [[1, 2, 3, 4], [1, 2, 3, 6, 7], [1, 2, 3, 4], [1, 2], [5]]
    tree = flat_prefix_tree(solutions)
    assert tree.ids == [1, 2, 3, 4, 6, 7, 5]
    assert tree.positions == [0, 1, 2, 3, 3, 4, 0]
    assert tree.subtree_sizes == [6, 5, 4, 1, 2, 1, 1]
    assert tree.where == [[0, 1, 2, 3], [0, 1, 2, 4, 5], [0, 1, 2, 3], [0, 1], [6]]
    for solution, where in zip(solutions, tree.where):  # every token is where it says
        assert [tree.ids[index] for index in where] == solution
        assert [tree.positions[index] for index in where] == list(range(len(solution)))


def test_a_deep_sequence_needs_no_recursion():
    tree = flat_prefix_tree([list(range(5000)), list(range(4999)) + [-3]])
    assert len(tree.ids) == 5001 and tree.subtree_sizes[0] == 5001


def test_segments_keep_each_response_rank():
    shared = prefix_tree_segment([[1, 2], [1, 3]])
    assert shared.ranks == [0, 1] and shared.ids == [1, 2, 3]
    distinct = distinct_segments([[1, 2], [3], [1, 2]], [[0, 1], [0], [0, 1]])
    assert [segment.ids for segment in distinct] == [[1, 2], [3]]
    assert [segment.ranks for segment in distinct] == [[0, 2], [1]]
    assert distinct[0].subtree_sizes == [2, 1]
    assert distinct_segments([[1, 2], [1, 2]], [[0, 0], [0, 1]])[1].token_type_ids == [0, 1]

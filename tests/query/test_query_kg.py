"""Knowledge-graph query structures and the BetaE tuple encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxlib.query import (
    BETAE_STRUCTURES,
    Project,
    QueryError,
    Term,
    betae_name,
    from_betae,
    query_structures,
    structure,
    to_betae,
    to_dnf,
)


def P(relation, query):
    return Project(relation, query)


E1, E2, E3 = Term(101), Term(102), Term(103)

# name -> (ids in flattened BetaE order, the concrete tuple, the query written by hand)
CASES = {
    "1p": ((101, 1), (101, (1,)), P(1, E1)),
    "2p": ((101, 1, 2), (101, (1, 2)), P(2, P(1, E1))),
    "3p": ((101, 1, 2, 3), (101, (1, 2, 3)), P(3, P(2, P(1, E1)))),
    "2i": ((101, 1, 102, 2), ((101, (1,)), (102, (2,))), P(1, E1) & P(2, E2)),
    "3i": ((101, 1, 102, 2, 103, 3), ((101, (1,)), (102, (2,)), (103, (3,))), P(1, E1) & P(2, E2) & P(3, E3)),
    "ip": ((101, 1, 102, 2, 3), (((101, (1,)), (102, (2,))), (3,)), P(3, P(1, E1) & P(2, E2))),
    "pi": ((101, 1, 2, 102, 3), ((101, (1, 2)), (102, (3,))), P(2, P(1, E1)) & P(3, E2)),
    "2in": ((101, 1, 102, 2), ((101, (1,)), (102, (2, -2))), P(1, E1) & ~P(2, E2)),
    "3in": (
        (101, 1, 102, 2, 103, 3),
        ((101, (1,)), (102, (2,)), (103, (3, -2))),
        P(1, E1) & P(2, E2) & ~P(3, E3),
    ),
    "inp": ((101, 1, 102, 2, 3), (((101, (1,)), (102, (2, -2))), (3,)), P(3, P(1, E1) & ~P(2, E2))),
    "pin": ((101, 1, 2, 102, 3), ((101, (1, 2)), (102, (3, -2))), P(2, P(1, E1)) & ~P(3, E2)),
    "pni": ((101, 1, 2, 102, 3), ((101, (1, 2, -2)), (102, (3,))), ~P(2, P(1, E1)) & P(3, E2)),
    "2u": ((101, 1, 102, 2), ((101, (1,)), (102, (2,)), (-1,)), P(1, E1) | P(2, E2)),
    "up": ((101, 1, 102, 2, 3), (((101, (1,)), (102, (2,)), (-1,)), (3,)), P(3, P(1, E1) | P(2, E2))),
    "2u-DM": ((101, 1, 102, 2), (((101, (1, -2)), (102, (2, -2))), (-2,)), ~(~P(1, E1) & ~P(2, E2))),
    "up-DM": (
        (101, 1, 102, 2, 3),
        (((101, (1, -2)), (102, (2, -2))), (-2, 3)),
        P(3, ~(~P(1, E1) & ~P(2, E2))),
    ),
}

# KGReasoning main.py, query_name_dict (snap-stanford/KGReasoning), keys and names verbatim.
KGREASONING_QUERY_NAME_DICT = {
    ("e", ("r",)): "1p",
    ("e", ("r", "r")): "2p",
    ("e", ("r", "r", "r")): "3p",
    (("e", ("r",)), ("e", ("r",))): "2i",
    (("e", ("r",)), ("e", ("r",)), ("e", ("r",))): "3i",
    ((("e", ("r",)), ("e", ("r",))), ("r",)): "ip",
    (("e", ("r", "r")), ("e", ("r",))): "pi",
    (("e", ("r",)), ("e", ("r", "n"))): "2in",
    (("e", ("r",)), ("e", ("r",)), ("e", ("r", "n"))): "3in",
    ((("e", ("r",)), ("e", ("r", "n"))), ("r",)): "inp",
    (("e", ("r", "r")), ("e", ("r", "n"))): "pin",
    (("e", ("r", "r", "n")), ("e", ("r",))): "pni",
    (("e", ("r",)), ("e", ("r",)), ("u",)): "2u-DNF",
    ((("e", ("r",)), ("e", ("r",)), ("u",)), ("r",)): "up-DNF",
    ((("e", ("r", "n")), ("e", ("r", "n"))), ("n",)): "2u-DM",
    ((("e", ("r", "n")), ("e", ("r", "n"))), ("n", "r")): "up-DM",
}


def test_every_kgreasoning_structure_is_named():
    ours = {structure: name for name, structure in BETAE_STRUCTURES.items()}
    assert {ours[s] for s in KGREASONING_QUERY_NAME_DICT} == set(query_structures)
    for structure_tuple, their_name in KGREASONING_QUERY_NAME_DICT.items():
        assert ours[structure_tuple] == their_name.removesuffix("-DNF")


@pytest.mark.parametrize("name", sorted(CASES))
def test_structure(name):
    ids, concrete, expected = CASES[name]
    assert query_structures[name](*ids) == expected
    assert from_betae(concrete) == expected
    assert from_betae(concrete, BETAE_STRUCTURES[name]) == expected
    assert to_betae(expected) == concrete
    assert betae_name(expected) == name
    assert to_betae(structure(expected)) == BETAE_STRUCTURES[name]
    assert from_betae(BETAE_STRUCTURES[name]) == structure(expected)


def test_constructor_parameters_follow_the_flattened_betae_row():
    assert query_structures["pni"].parameters == ("e1", "r1", "r2", "e2", "r3")
    assert query_structures["up"].parameters == ("e1", "r1", "e2", "r2", "r3")
    with pytest.raises(TypeError, match="pni takes 5 ids"):
        query_structures["pni"](1, 2, 3)


def test_union_structures_become_path_branches_in_dnf():
    # KGReasoning evaluates 'up' as two '2p' queries and '2u' as two '1p' queries.
    up = query_structures["up"](101, 1, 102, 2, 3)
    assert set(to_dnf(up)) == {(P(3, P(1, E1)),), (P(3, P(2, E2)),)}
    assert {betae_name(conjunction[0]) for conjunction in to_dnf(up)} == {"2p"}
    # De Morgan forms have the same normal form as their DNF forms
    assert to_dnf(query_structures["2u-DM"](101, 1, 102, 2)) == to_dnf(query_structures["2u"](101, 1, 102, 2))
    assert to_dnf(query_structures["up-DM"](101, 1, 102, 2, 3)) == to_dnf(up)


def test_betae_name_of_other_queries_is_none():
    assert betae_name(Term(1)) is None
    assert betae_name(P(1, E1) & P(2, E2) & P(3, E3) & P(4, E1)) is None


def test_numpy_ids_are_read():
    np = pytest.importorskip("numpy")
    concrete = ((np.int64(101), (np.int64(1),)), (np.int64(102), (np.int64(2), np.int64(-2))))
    assert from_betae(concrete) == P(1, E1) & ~P(2, E2)


@pytest.mark.parametrize(
    "bad",
    [
        101,
        (101,),
        ("x", ("r",)),
        (101, ("r", "x")),
        (101, (1,), (2,)),  # a path has one anchor
        ((101, (1,)), (2,)),  # a path cannot start at a path
        (-5, (1,)),
        (101, (-3,)),
        (True, (1,)),
        ((101, (1,)), (-1,)),  # a union of one branch
        ((101, (1,)), 102),
    ],
)
def test_malformed_tuples_are_query_errors(bad):
    with pytest.raises(QueryError):
        from_betae(bad)


def test_structure_mismatch_is_a_query_error():
    with pytest.raises(QueryError, match="does not have the structure"):
        from_betae((101, (1, 2)), BETAE_STRUCTURES["1p"])


def test_deeply_nested_tuples_are_query_errors_not_recursion_errors():
    node = (101, (1,))
    for _ in range(5_000):
        node = (node, node, (-1,))
    with pytest.raises(QueryError):
        from_betae(node)


@pytest.mark.parametrize(
    "query",
    [
        Term(1),  # an anchor alone
        P(1, E1) & E2,  # an anchor directly in an intersection
        P(1, Term("dog")),  # text names
        P("r", Term(3)),  # ids mixed with placeholders
    ],
)
def test_queries_outside_the_encoding_are_query_errors(query):
    with pytest.raises(QueryError):
        to_betae(query)


def test_nested_set_operations_round_trip():
    query = P(1, E1) & (P(2, E2) | ~P(3, E3)) & (P(4, E1) & P(5, E2))
    assert from_betae(to_betae(query)) == query


@given(st.sampled_from(sorted(BETAE_STRUCTURES)), st.data())
def test_concrete_queries_round_trip(name, data):
    ids = st.integers(0, 2**40)
    kg_structure = query_structures[name]
    query = kg_structure(*(data.draw(ids) for _ in kg_structure.parameters))
    encoded = to_betae(query)
    assert from_betae(encoded, BETAE_STRUCTURES[name]) == query
    assert betae_name(query) == name
    assert to_betae(from_betae(encoded)) == encoded

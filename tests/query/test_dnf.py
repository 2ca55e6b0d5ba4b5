

def test_operand_removals_delete_exactly_one_operand_anywhere():
    from boxlib.query import operand_removals, parse

    got = {str(q) for q in operand_removals(parse("(a or b) and c"))}
    assert got == {"c", "a or b", "a and c", "b and c"}
    assert {str(q) for q in operand_removals(parse("not (a and b)"))} == {"not a", "not b"}
    assert {str(q) for q in operand_removals(parse("a and b and c"))} == {"a and b", "a and c", "b and c"}
    assert list(operand_removals(parse("a"))) == []

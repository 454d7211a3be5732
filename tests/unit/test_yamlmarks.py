"""YAML with marks: positions for every key and value, problems instead of exceptions."""

from __future__ import annotations

from pathlib import Path

from lifeline.config import Checker, Mark, Problem, did_you_mean, format_path, load_yaml, parse_yaml

TEXT = """\
domain: gas
rules:
  - id: gas.methane.high
    for: "2 minutes"
    levels: {blue: 5, red: 50}
    on: yes
"""


def test_yamlmarks_problem_str_is_file_line_col_path_message() -> None:
    """Problem renders exactly as file:line:col: path: message."""
    p = Problem("gas.yaml", 18, 7, "rules[1].for", "expected a duration like '30s', '5m' or '1h' (got '2 minutes')")
    assert str(p) == "gas.yaml:18:7: rules[1].for: expected a duration like '30s', '5m' or '1h' (got '2 minutes')"
    assert str(Problem("gas.yaml", 3, 1, "", "invalid YAML: x")) == "gas.yaml:3:1: invalid YAML: x"
    assert str(Problem("gas.yaml", 0, 0, "", "cannot read")) == "gas.yaml: cannot read"


def test_yamlmarks_did_you_mean_suggests_closest() -> None:
    """did_you_mean gives ' (did you mean ...?)' for a close choice and '' otherwise."""
    assert did_you_mean("treshold", ["threshold", "condition"]) == " (did you mean 'threshold'?)"
    assert did_you_mean("zzz", ["threshold"]) == ""


def test_yamlmarks_format_path_uses_dots_and_indices() -> None:
    """Paths render like rules[1].match.metric."""
    assert format_path(("rules", 1, "match", "metric")) == "rules[1].match.metric"
    assert format_path(()) == ""


def test_yamlmarks_marks_every_key_and_value() -> None:
    """Values and keys carry 1-based line and column; plain values come back as Python values."""
    doc, problems = parse_yaml(TEXT, "gas.yaml")
    assert problems == []
    assert doc.data["rules"][0]["levels"] == {"blue": 5, "red": 50}
    assert doc.mark(("rules", 0, "for")) == Mark("gas.yaml", 4, 10)
    assert doc.mark(("rules", 0, "for"), key=True) == Mark("gas.yaml", 4, 5)
    assert doc.mark(("rules", 0, "levels", "red")) == Mark("gas.yaml", 5, 28)
    assert doc.mark(("rules", 0)) == Mark("gas.yaml", 3, 5)
    problem = doc.problem(("rules", 0, "for"), "bad")
    assert str(problem) == "gas.yaml:4:10: rules[0].for: bad"


def test_yamlmarks_keys_stay_text() -> None:
    """Mapping keys are their source text, so `on:` is 'on', not True; values follow YAML's safe types."""
    doc, _ = parse_yaml(TEXT, "gas.yaml")
    assert doc.data["rules"][0]["on"] is True
    assert "on" in doc.data["rules"][0]


def test_yamlmarks_missing_path_falls_back_to_parent() -> None:
    """A path that is not in the file is marked at its nearest enclosing value."""
    doc, _ = parse_yaml(TEXT, "gas.yaml")
    assert doc.mark(("rules", 0, "title")) == Mark("gas.yaml", 3, 5)


def test_yamlmarks_inline_text_mark_points_into_scalar() -> None:
    """For a one-line quoted scalar, text_mark points at a character inside the text."""
    doc, _ = parse_yaml(TEXT, "gas.yaml")
    assert doc.text_mark(("rules", 0, "for"), 2) == Mark("gas.yaml", 4, 13)


def test_yamlmarks_duplicate_key_is_a_problem() -> None:
    """A repeated key is reported at the repeat, naming the first line; the first value is kept."""
    doc, problems = parse_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")
    assert [str(p) for p in problems] == ["x.yaml:3:1: a: duplicate key 'a' (first at line 1)"]
    assert doc.data == {"a": 1, "b": 2}


def test_yamlmarks_syntax_error_is_a_problem_with_position() -> None:
    """YAML syntax errors become Problems at the error's line and column."""
    _, problems = parse_yaml("a: b: c\n", "x.yaml")
    assert [str(p) for p in problems] == ["x.yaml:1:5: invalid YAML: mapping values are not allowed here"]
    _, problems = parse_yaml("a: [1\nb: 2\n", "x.yaml")
    assert [str(p) for p in problems] == [
        "x.yaml:2:2: invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence at line 1)"
    ]


def test_yamlmarks_never_constructs_python_objects() -> None:
    """Python tags are refused: the safe constructor reports them instead of running code."""
    text = "a: !!python/object/apply:os.system ['true']\nb: !!python/name:os.system x\n"
    doc, problems = parse_yaml(text, "x.yaml")
    assert doc.data == {"a": None, "b": None}
    assert [str(p) for p in problems] == [
        "x.yaml:1:4: a: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        "x.yaml:2:4: b: invalid value: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/name:os.system'",
    ]


def test_yamlmarks_recursive_alias_and_complex_key() -> None:
    """Recursive aliases and non-scalar keys are problems, not crashes."""
    _, problems = parse_yaml("a: &x [*x]\n? [1, 2]\n: v\n", "x.yaml")
    assert [str(p) for p in problems] == [
        "x.yaml:1:4: a[0]: recursive alias",
        "x.yaml:2:3: mapping keys must be plain text",
    ]


def test_yamlmarks_empty_and_multi_document() -> None:
    """An empty file gives None; a second document is a syntax problem."""
    assert parse_yaml("# nothing\n", "x.yaml")[0].data is None
    _, problems = parse_yaml("a: 1\n---\nb: 2\n", "x.yaml")
    assert problems[0].line == 2 and "another document" in problems[0].message


def test_yamlmarks_load_yaml_reports_unreadable_files(tmp_path: Path) -> None:
    """Missing files and non-UTF-8 files are Problems naming the file as given."""
    _, problems = load_yaml(tmp_path / "nope.yaml")
    assert str(problems[0]) == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\n")
    _, problems = load_yaml(bad)
    assert problems[0].message == "not UTF-8 (byte 3)"


def test_yamlmarks_checker_reports_types_and_unknown_keys() -> None:
    """Checker accessors return None and record a located problem for wrong types and keys."""
    doc, _ = parse_yaml("m: {nmae: x, n: 'ten', d: 90, l: a}\n", "x.yaml")
    ck = Checker(doc)
    m = ck.mapping(doc.data["m"], ("m",), ("name", "n", "d", "l"), required=("name",))
    assert m is not None
    assert ck.number(m["n"], ("m", "n")) is None
    assert ck.duration(m["d"], ("m", "d")) is None
    assert ck.strings(m["l"], ("m", "l")) is None
    assert [str(p) for p in ck.problems] == [
        "x.yaml:1:5: m.nmae: unknown key 'nmae' (did you mean 'name'?)",
        "x.yaml:1:4: m: missing required key 'name'",
        "x.yaml:1:17: m.n: expected a number (got 'ten')",
        "x.yaml:1:27: m.d: expected a duration like '30s', '5m' or '1h' (got 90)",
        "x.yaml:1:34: m.l: expected a list of names (got 'a')",
    ]

"""`python -m devtools notebook-time` keeps its figures in its own section of BENCHMARKS.md."""

from __future__ import annotations

from devtools.benchfile import sections, write_section


def test_a_section_is_appended_then_replaced_and_the_rest_kept(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Grading throughput\n\n| a | b |\n")
    write_section(path, "notebook-time", "# Notebook run time\n\nfirst")
    write_section(path, "other", "kept")
    write_section(path, "notebook-time", "# Notebook run time\n\nsecond")
    text = path.read_text()
    assert text.startswith("# Grading throughput\n\n| a | b |\n\n<!-- section: notebook-time -->\n")
    assert "second" in text and "first" not in text
    assert list(sections(text)) == ["notebook-time", "other"]
    assert sections(text)["other"] == "<!-- section: other -->\nkept\n<!-- end: other -->\n"


def test_a_section_is_written_into_a_new_file(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_section(path, "notebook-time", "body")
    assert path.read_text() == "<!-- section: notebook-time -->\nbody\n<!-- end: notebook-time -->\n"


def test_each_notebook_keeps_its_own_section():
    from devtools.notebook_time import section
    from grader.course.layout import Notebook

    names = {section(Notebook("04_attention", "attention")), section(Notebook("05_real_text", "pos_tagging")),
             section(Notebook("02_seq2seq", "seq2seq"))}
    assert len(names) == 3 and "notebook-time" in names  # notebook 4's section keeps the name it always had

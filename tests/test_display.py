"""Tests of lossless.display (tables of result objects, optional progress bars)."""

from lossless.display import html_table, progress, text_table


def test_text_table_aligns_columns():
    out = text_table("T(x=1)", ["name", "value"], [["a", "1.5"], ["long name", "22"]], left=1)
    assert out.splitlines() == ["T(x=1)",
                                "name       value",
                                "a            1.5",
                                "long name     22"]


def test_html_table_escapes_header_and_cells_not_the_caption():
    out = html_table("τ<sub>0</sub> = 1", ["a<b"], [["x&y"]])
    assert out.startswith("<p>τ<sub>0</sub> = 1</p><table>")
    assert "<th>a&lt;b</th>" in out and "<td>x&amp;y</td>" in out


def test_progress_is_a_passthrough_when_disabled_and_wraps_when_enabled():
    items = [1, 2, 3]
    assert progress(items, False, "x") is items
    bar = progress(items, True, "x")
    assert bar is not items and list(bar) == items


def test_fmt_residual_hides_rounding_noise_and_keeps_real_errors():
    from lossless.display import fmt_residual
    assert fmt_residual(2.2e-16) == fmt_residual(-3.5e-16) == fmt_residual(0.0) == "< 1e-12"
    assert fmt_residual(1.8e-2) == "1.8e-02"
    assert fmt_residual(float("nan")) == "nan"


def test_fmt_sig_prints_exact_values_the_same_whatever_the_last_bit():
    from lossless.display import fmt_sig
    one_64 = 0.25**3
    assert fmt_sig(one_64) == fmt_sig(one_64 * (1 + 2e-16)) == fmt_sig(one_64 * (1 - 2e-16))
    assert fmt_sig(0.123456) == "0.1235" and fmt_sig(0.0) == "0"

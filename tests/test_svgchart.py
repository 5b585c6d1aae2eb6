"""SVG line charts: axis ticks, log scale over decades, gaps, the accuracy ceiling, valid XML."""
import re
import xml.etree.ElementTree as ET

from trainlab.svgchart import line_chart, linear_ticks, tick_label


def _texts(svg: str) -> list[str]:
    ET.fromstring(svg)  # well-formed, or a browser would show nothing
    return re.findall(r">([^<>]+)</text>", svg)


def test_ticks_are_round_numbers_covering_the_data():
    lo, hi, ticks = linear_ticks(2.19, 2.293)
    assert abs(lo - 2.175) < 1e-9 and abs(hi - 2.3) < 1e-9
    assert [tick_label(t, 0.025) for t in ticks] == ["2.175", "2.200", "2.225", "2.250", "2.275", "2.300"]
    assert linear_ticks(5.0, 5.0)[0] < 5.0 < linear_ticks(5.0, 5.0)[1]  # a flat series gets room around it


def test_losses_over_decades_get_a_log_axis_and_none_values_are_skipped():
    series = [("train", [1, 2, 3, 4], [10.0, 1.0, 0.01, 0.001]), ("val", [1, 2, 3, 4], [None, 2.0, None, 0.1])]
    svg = line_chart(series, title="loss", ylabel="loss")
    texts = _texts(svg)
    assert {"1e-3", "1e0", "1e1"} <= set(texts) and {"train", "val"} <= set(texts)  # legend for two series
    assert len(re.findall(r"<circle", svg)) == 4 + 2
    assert 'width="440"' in svg and "height=" in svg  # sized, so an <img> of it has a naturalWidth


def test_accuracy_axis_stops_at_100_and_an_empty_chart_says_so():
    texts = _texts(line_chart([("val", [1, 2], [100.0, 100.0])], title="acc", ceiling=100))
    assert "100" in texts and not any(t.startswith("11") for t in texts)
    assert "no data" in _texts(line_chart([("val", [1, 2], [None, None])], title="acc"))
    assert "&lt;b&gt;" in line_chart([("<b>", [1], [1.0]), ("x", [1], [2.0])], title="t")  # labels escaped

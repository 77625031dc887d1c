"""The one number formatter every report uses, across magnitudes and odd values."""

from __future__ import annotations

import math

import pytest

from auditor.report.numbers import format_duration, format_number, plural

SHORT = [
    (0, "0"),
    (-0.0, "0"),
    (1, "1"),
    (-1, "-1"),
    (999, "999"),
    (1000, "1,000"),
    (9999, "9,999"),
    (10_000, "10k"),
    (12_345, "12.3k"),
    (147_968, "148k"),
    (-147_968, "-148k"),
    (999_499, "999k"),
    (999_999, "1M"),
    (1_000_000, "1M"),
    (11_689_512, "11.7M"),
    (1.2e9, "1.2B"),
    (999_999_999, "1B"),
    (3.5e12, "3.5T"),
    (4.2e16, "4.20e+16"),
    (0.5, "0.5"),
    (0.123456, "0.123"),
    (1.5, "1.5"),
    (2.302585, "2.3"),
    (123.456, "123"),
    (1234.5, "1,234"),
    (-0.75, "-0.75"),
    (0.01, "0.01"),
    (0.000123, "1.23e-04"),
    (-0.000123, "-1.23e-04"),
    (1e-12, "1.00e-12"),
    (10_000.5, "10k"),
    (math.nan, "NaN"),
    (math.inf, "inf"),
    (-math.inf, "-inf"),
    (None, "n/a"),
    ("12", "n/a"),
    (True, "n/a"),
]

EXACT = [
    (0, "0"),
    (1, "1"),
    (999, "999"),
    (1000, "1,000"),
    (9999, "9,999"),
    (10_000, "10,000"),
    (147_968, "147,968"),
    (999_999, "999,999"),
    (1e6, "1,000,000"),
    (1.2e9, "1,200,000,000"),
    (-147_968, "-147,968"),
    (0.123456789, "0.123457"),
    (2.302585093, "2.30259"),
    (0.000123, "1.23000e-04"),
    (math.nan, "NaN"),
    (math.inf, "inf"),
    (-math.inf, "-inf"),
    (None, "n/a"),
]


@pytest.mark.parametrize(("value", "text"), SHORT)
def test_short_form(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize(("value", "text"), EXACT)
def test_exact_form(value, text):
    assert format_number(value, exact=True) == text


def test_short_form_never_off_by_a_power_of_ten():
    """Read back, the short form is within rounding of the value at every magnitude."""
    scale = {"": 1, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    for exponent in range(15):
        for mantissa in (1, 1.479, 5, 9.99, 9.9999):
            value = mantissa * 10**exponent
            text = format_number(value).replace(",", "")
            suffix = text[-1] if text[-1] in "kMBT" else ""
            back = float(text.removesuffix(suffix)) * scale[suffix]
            assert abs(back - value) <= 0.006 * value, (value, text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.00 s"),
        (0.4234, "0.42 s"),
        (12.345, "12.3 s"),
        (125, "2 min 5 s"),
        (None, "n/a"),
        (math.nan, "n/a"),
    ],
)
def test_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("count", "word", "text"),
    [
        (0, "error", "no errors"),
        (1, "error", "1 error"),
        (2, "warning", "2 warnings"),
        (0, "info", "no info"),
        (3, "info", "3 info"),
        (12_000, "sample", "12,000 samples"),
    ],
)
def test_plural(count, word, text):
    assert plural(count, word) == text
